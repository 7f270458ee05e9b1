package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/alerting"
)

// maxBatch is how many alerts one POST to an Alertmanager carries, as
// Prometheus's notifier batches them.
const maxBatch = 64

// item is one queue entry: an alert for an Alertmanager (already encoded
// as a postableAlert), or a payload for a webhook.
type item struct {
	alert []byte
	note  *note
}

// target is one configured target: its queue, the goroutine that empties
// it, and its health.
type target struct {
	cfg     Target
	display string
	d       *Dispatcher
	secrets []string // what must never appear in an error text

	mu     sync.Mutex
	queue  []item
	busy   bool // a delivery taken off the queue is not finished
	status alerting.TargetStatus

	wake chan struct{} // capacity 1: "there is work"

	am *amState // KindAlertmanager
	wh *groups  // KindWebhook

	sent, failed, dropped prometheus.Counter
	queued, up            prometheus.Gauge
	duration              prometheus.Observer
}

func newTarget(d *Dispatcher, c configured) *target {
	name, kind := c.cfg.Name, string(c.cfg.Kind)
	t := &target{
		cfg:      c.cfg,
		display:  c.display,
		d:        d,
		wake:     make(chan struct{}, 1),
		status:   alerting.TargetStatus{Name: name, Kind: kind, URL: c.display},
		sent:     d.metrics.notifications.WithLabelValues(name, kind),
		failed:   d.metrics.failed.WithLabelValues(name, kind),
		dropped:  d.metrics.dropped.WithLabelValues(name),
		queued:   d.metrics.queueLength.WithLabelValues(name),
		up:       d.metrics.up.WithLabelValues(name),
		duration: d.metrics.duration.WithLabelValues(name),
	}
	t.up.Set(1)
	t.queued.Set(0)
	for _, s := range []string{c.cfg.BearerToken, c.cfg.Password} {
		if s != "" {
			t.secrets = append(t.secrets, s)
		}
	}
	for _, v := range c.cfg.Headers {
		if v != "" {
			t.secrets = append(t.secrets, v)
		}
	}
	if c.cfg.Kind == KindAlertmanager {
		t.am = &amState{remote: map[int64]string{}}
	} else {
		t.wh = newGroups(d, c.cfg.Name)
	}
	return t
}

func (t *target) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// push appends items, dropping the oldest ones beyond QueueSize: a target
// that cannot keep up loses its oldest news, never the caller's time.
func (t *target) push(items []item) {
	if len(items) == 0 {
		return
	}
	var lost []item
	t.mu.Lock()
	for _, it := range items {
		if len(t.queue) >= t.d.opts.QueueSize {
			lost = append(lost, t.queue[0])
			t.queue[0] = item{}
			t.queue = t.queue[1:]
		}
		t.queue = append(t.queue, it)
	}
	n := len(t.queue)
	t.mu.Unlock()
	t.queued.Set(float64(n))
	if len(lost) > 0 {
		t.dropped.Add(float64(len(lost)))
		for _, it := range lost {
			if it.note != nil {
				t.wh.done(it.note, false)
			}
		}
		t.d.log.Warn("notification queue full; dropped the oldest", "target", t.cfg.Name, "dropped", len(lost))
	}
	t.signal()
}

func (t *target) pushAlerts(alerts [][]byte) {
	items := make([]item, len(alerts))
	for i, a := range alerts {
		items[i].alert = a
	}
	t.push(items)
}

func (t *target) pushNotes(notes []*note) {
	items := make([]item, len(notes))
	for i, n := range notes {
		items[i].note = n
	}
	t.push(items)
}

// pop takes the next delivery: up to maxBatch alerts, or one payload.
func (t *target) pop() []item {
	t.mu.Lock()
	defer func() {
		n := len(t.queue)
		t.mu.Unlock()
		t.queued.Set(float64(n))
	}()
	t.busy = len(t.queue) > 0
	if !t.busy {
		return nil
	}
	n := 1
	if t.am != nil {
		n = min(len(t.queue), maxBatch)
	}
	out := make([]item, n)
	copy(out, t.queue)
	clear(t.queue[:n])
	t.queue = t.queue[n:]
	if len(t.queue) == 0 {
		t.queue = nil // let the backing array go
	}
	return out
}

// idle: nothing queued or being delivered.
func (t *target) idle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue) == 0 && !t.busy
}

func (t *target) snapshot() alerting.TargetStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.status
	s.Queued = len(t.queue)
	return s
}

// run delivers the queue, and for an Alertmanager mirrors silences, until
// ctx is done.
func (t *target) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		}
		for ctx.Err() == nil {
			if t.am != nil {
				if ss, ok := t.am.takeSilences(); ok {
					t.syncSilences(ctx, ss)
				}
			}
			batch := t.pop()
			if len(batch) == 0 {
				break
			}
			if t.am != nil {
				t.postAlerts(ctx, batch)
			} else {
				t.postNote(ctx, batch[0].note)
			}
			t.mu.Lock()
			t.busy = false
			t.mu.Unlock()
		}
	}
}

// sendError is a failed request, in words safe to show and log.
type sendError struct {
	status int // 0 when no response came
	msg    string
	retry  bool
}

func (e *sendError) Error() string { return e.msg }

// send makes a request, retrying what may get better (connection errors,
// timeouts, 429 and 5xx) with backoff; a status in ok counts as success
// besides 2xx. It returns the status and body of the last response.
func (t *target) send(ctx context.Context, what, method, u string, body []byte, ok ...int) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		status, resp, err := t.attempt(ctx, what, method, u, body, ok)
		if err == nil {
			return status, resp, nil
		}
		var se *sendError
		if !errors.As(err, &se) || !se.retry || attempt >= t.d.opts.Retries || ctx.Err() != nil {
			return status, resp, err
		}
		wait := time.NewTimer(t.d.backoff(attempt + 1))
		select {
		case <-ctx.Done():
			wait.Stop()
			return status, resp, err
		case <-wait.C:
		}
	}
}

// attempt makes one request and records its outcome in the target's
// health and metrics.
func (t *target) attempt(ctx context.Context, what, method, u string, body []byte, ok []int) (int, []byte, error) {
	at := t.d.now()
	t.mu.Lock()
	t.status.LastAttempt, t.status.InFlightSince = at, at
	t.mu.Unlock()

	start := time.Now()
	status, resp, err := t.do(ctx, what, method, u, body, ok)
	t.duration.Observe(time.Since(start).Seconds())

	t.mu.Lock()
	t.status.InFlightSince = time.Time{}
	if err == nil {
		t.status.Sent++
		t.status.ConsecutiveFailures = 0
		t.status.LastError = ""
		t.status.LastSuccess = t.d.now()
	} else {
		t.status.Failed++
		t.status.ConsecutiveFailures++
		t.status.LastError = err.Error()
	}
	t.mu.Unlock()
	t.sent.Inc()
	if err == nil {
		t.up.Set(1)
	} else {
		t.failed.Inc()
		t.up.Set(0)
	}
	return status, resp, err
}

func (t *target) do(ctx context.Context, what, method, u string, body []byte, ok []int) (int, []byte, error) {
	rctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, u, rd)
	if err != nil {
		return 0, nil, &sendError{msg: what + ": cannot build the request"}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "switchyard")
	for k, v := range t.cfg.Headers {
		req.Header.Set(k, v)
	}
	switch {
	case t.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+t.cfg.BearerToken)
	case t.cfg.User != "":
		req.SetBasicAuth(t.cfg.User, t.cfg.Password)
	}
	resp, err := t.d.client.Do(req)
	if err != nil {
		return 0, nil, t.transportError(ctx, rctx, what, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) //nolint:errcheck // draining for reuse only
	if resp.StatusCode/100 == 2 || contains(ok, resp.StatusCode) {
		return resp.StatusCode, out, nil
	}
	msg := fmt.Sprintf("%s: %s", what, resp.Status)
	if s := strings.TrimSpace(string(out)); s != "" {
		msg += ": " + truncate(s, 200)
	}
	return resp.StatusCode, out, &sendError{
		status: resp.StatusCode,
		msg:    t.redact(msg),
		// Any other 4xx is our request's fault and will not get better.
		retry: resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500,
	}
}

// transportError words a failed round trip without its URL, which may hold
// a token in its path or query.
func (t *target) transportError(ctx, rctx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return &sendError{msg: what + ": stopped"}
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		return &sendError{msg: fmt.Sprintf("%s: no response within %s", what, t.cfg.Timeout), retry: true}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &sendError{msg: t.redact(fmt.Sprintf("%s: %v", what, err)), retry: true}
}

func (t *target) redact(s string) string {
	for _, sec := range t.secrets {
		s = strings.ReplaceAll(s, sec, "<secret>")
	}
	return s
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// backoff is the wait before retry attempt (1, 2, …): 1s doubling, capped
// at 30s, with ±20% jitter so that targets failing together do not retry
// in step.
func backoff(attempt int) time.Duration {
	attempt = max(attempt, 1)
	d := 30 * time.Second
	if attempt < 6 {
		d = time.Second << (attempt - 1)
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(d, 30*time.Second)
}
