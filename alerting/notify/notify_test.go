package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"switchyard/alerting"
	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/internal/testenv"
	"switchyard/sqldb"
)

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// harness is a running Dispatcher whose webhook groups flush only when the
// test calls flush, on a manual clock.
type harness struct {
	d     *Dispatcher
	clock *deliverytest.Clock
	reg   *prometheus.Registry
	logs  *testenv.SyncBuffer
	stop  func() // cancels Run and waits for it (also at cleanup)
}

// start runs a Dispatcher of o. Retries wait a millisecond instead of
// seconds: the tests check which requests are retried, not the backoff
// (TestBackoff does).
func start(t *testing.T, o Options) *harness {
	t.Helper()
	h := &harness{clock: deliverytest.NewClock(t0), reg: prometheus.NewRegistry(), logs: &testenv.SyncBuffer{}}
	if o.Now == nil {
		o.Now = h.clock.Now
	}
	if o.ExternalURL == "" {
		o.ExternalURL = "http://console.test"
	}
	o.Registerer = h.reg
	o.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	d.backoff = func(int) time.Duration { return time.Millisecond }
	d.tick = 0
	h.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not return within 5s of its context ending")
			}
		})
	}
	t.Cleanup(h.stop)
	select {
	case <-d.loaded:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(testenv.Wait):
		t.Fatal("Run did not load its state")
	}
	return h
}

// idle: every queue is empty and no payload is being delivered or waits
// for its group to learn how it went.
func (d *Dispatcher) idle() bool {
	for _, t := range d.targets {
		if !t.idle() {
			return false
		}
		if t.wh != nil {
			t.wh.mu.Lock()
			out := false
			for _, g := range t.wh.m {
				out = out || g.outstanding
			}
			t.wh.mu.Unlock()
			if out {
				return false
			}
		}
	}
	return true
}

func (h *harness) waitIdle(t *testing.T) {
	t.Helper()
	testenv.WaitFor(t, "every notification delivered", h.d.idle)
}

// flushAt moves the clock to at and flushes, returning what it queued.
func (h *harness) flushAt(at time.Time) int {
	h.clock.Set(at)
	return h.d.flush(at)
}

func (h *harness) status(t *testing.T, name string) alerting.TargetStatus {
	t.Helper()
	for _, s := range h.d.Targets() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no target %q in %+v", name, h.d.Targets())
	return alerting.TargetStatus{}
}

// receiver is a webhook receiver that records what it gets.
type receiver struct {
	srv *httptest.Server
	// answer gives the status of the n-th request (1-based); nil: 200.
	answer func(n int, r *http.Request) (int, string)

	mu   sync.Mutex
	reqs []*http.Request
	msgs []receivedMsg
}

type receivedMsg struct {
	raw map[string]any
	msg amWebhook
}

// amWebhook is Alertmanager's webhook payload as its documentation
// describes it, written independently of the code under test.
type amWebhook struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	} `json:"alerts"`
}

func newReceiver(t *testing.T, answer func(n int, r *http.Request) (int, string)) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, r)
		n := len(rc.reqs)
		rc.mu.Unlock()
		code, body := http.StatusOK, ""
		if rc.answer != nil {
			code, body = rc.answer(n, r)
		}
		if code/100 == 2 {
			var m receivedMsg
			if err := json.Unmarshal(b, &m.raw); err != nil {
				t.Errorf("payload is not JSON: %v: %s", err, b)
			}
			if err := json.Unmarshal(b, &m.msg); err != nil {
				t.Errorf("payload does not decode: %v: %s", err, b)
			}
			rc.mu.Lock()
			rc.msgs = append(rc.msgs, m)
			rc.mu.Unlock()
		}
		w.WriteHeader(code)
		io.WriteString(w, body) //nolint:errcheck // the test reads what arrives
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

func (rc *receiver) messages() []receivedMsg {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.msgs)
}

// last waits for the n-th delivered payload and returns it.
func (rc *receiver) nth(t *testing.T, n int) amWebhook {
	t.Helper()
	testenv.WaitFor(t, "webhook payload", func() bool { return len(rc.messages()) >= n })
	return rc.messages()[n-1].msg
}

func rule(id int64, name string, groupBy ...string) *alerting.Rule {
	return &alerting.Rule{ID: id, Name: name, Severity: "warning", GroupBy: groupBy, Enabled: true,
		Annotations: map[string]string{"summary": "{{ $labels.group }} lags"}}
}

// firing is an alert of r on the labels kv, firing since at.
func firing(r *alerting.Rule, at time.Time, kv ...string) alerting.Alert {
	ls := map[string]string{"alertname": r.Name, "severity": r.Severity}
	for i := 0; i+1 < len(kv); i += 2 {
		ls[kv[i]] = kv[i+1]
	}
	return alerting.Alert{
		RuleID:      r.ID,
		Fingerprint: alerting.Fingerprint(ls),
		Labels:      ls,
		Annotations: map[string]string{"summary": ls["group"] + " lags"},
		State:       alerting.StateFiring,
		Value:       42,
		ActiveAt:    at.Add(-time.Minute),
		FiredAt:     at,
	}
}

func resolved(a alerting.Alert, at time.Time) alerting.Alert {
	a.State, a.ResolvedAt = alerting.StateInactive, at
	return a
}

func silenced(a alerting.Alert, ids ...int64) alerting.Alert {
	a.Silenced = ids
	return a
}

func notif(r *alerting.Rule, as ...alerting.Alert) alerting.Notification {
	return alerting.Notification{Rule: r, Alerts: as}
}

// openStore opens the real alerting store in a temp console.db.
func openStore(t *testing.T, path string) *alerting.Store {
	t.Helper()
	db, err := sqldb.Open(context.Background(), path, alerting.Schema())
	if err != nil {
		t.Fatalf("open console.db: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return alerting.NewStore(db, nil)
}

func TestNewValidates(t *testing.T) {
	hook := func(name, u string) Target { return Target{Name: name, Kind: KindWebhook, URL: u} }
	tests := []struct {
		name  string
		opts  Options
		field string
	}{
		{"duplicate names", Options{Targets: []Target{hook("a", "http://x/"), hook("a", "http://y/")}}, "targets[1].name"},
		{"empty name", Options{Targets: []Target{hook("", "http://x/")}}, "targets[0].name"},
		{"name with a space", Options{Targets: []Target{hook("on call", "http://x/")}}, "targets[0].name"},
		{"relative url", Options{Targets: []Target{hook("a", "/hook")}}, "targets[0].url"},
		{"ftp url", Options{Targets: []Target{hook("a", "ftp://x/hook")}}, "targets[0].url"},
		{"unknown kind", Options{Targets: []Target{{Name: "a", Kind: "pagerduty", URL: "http://x/"}}}, "targets[0].kind"},
		{"token and password", Options{Targets: []Target{{Name: "a", Kind: KindWebhook, URL: "http://x/", BearerToken: "t", User: "u", Password: "p"}}}, "targets[0].bearer_token"},
		{"password without user", Options{Targets: []Target{{Name: "a", Kind: KindWebhook, URL: "http://x/", Password: "p"}}}, "targets[0].user"},
		{"negative timeout", Options{Targets: []Target{{Name: "a", Kind: KindWebhook, URL: "http://x/", Timeout: -time.Second}}}, "targets[0].timeout"},
		{"authorization header twice", Options{Targets: []Target{{Name: "a", Kind: KindWebhook, URL: "http://x/", BearerToken: "t", Headers: map[string]string{"authorization": "x"}}}}, "targets[0].headers"},
		{"negative group wait", Options{GroupWait: -time.Second}, "group_wait"},
		{"negative queue", Options{QueueSize: -1}, "queue_size"},
		{"relative external url", Options{ExternalURL: "console"}, "external_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if delivery.ErrorCode(err) != delivery.EINVALID {
				t.Fatalf("New: %v, want EINVALID", err)
			}
			var de *delivery.Error
			if !errors.As(err, &de) {
				t.Fatalf("%T is not a *delivery.Error", err)
			}
			fields, _ := de.Details["fields"].(map[string]string)
			if _, ok := fields[tt.field]; !ok {
				t.Errorf("fields = %v, want a reason for %s", fields, tt.field)
			}
		})
	}
	t.Run("zero value", func(t *testing.T) {
		d, err := New(Options{})
		if err != nil {
			t.Fatalf("New(Options{}): %v", err)
		}
		if got := d.Targets(); len(got) != 0 {
			t.Errorf("Targets() = %v, want none", got)
		}
		o := d.opts
		if o.GroupWait != 30*time.Second || o.GroupInterval != 5*time.Minute || o.RepeatInterval != 4*time.Hour ||
			o.ResendDelay != time.Minute || o.Retries != 3 || o.QueueSize != 1000 {
			t.Errorf("defaults = %+v", o)
		}
	})
}

func TestBackoff(t *testing.T) {
	for attempt, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 40: 30 * time.Second} {
		for range 50 {
			got := backoff(attempt)
			lo, hi := time.Duration(float64(base)*0.8), min(time.Duration(float64(base)*1.2), 30*time.Second)
			if got < lo || got > hi {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", attempt, got, lo, hi)
			}
		}
	}
}

// TestHungTargetDoesNotBlock: a webhook and an Alertmanager that never
// answer (60s timeouts) delay neither Notify nor the other webhook, and
// show as hung on the page and in the metrics.
func TestHungTargetDoesNotBlock(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) }) // before hung.Close, which waits for handlers
	ok := newReceiver(t, nil)

	h := start(t, Options{Targets: []Target{
		{Name: "hung-hook", Kind: KindWebhook, URL: hung.URL + "/hook", Timeout: 60 * time.Second},
		{Name: "hung-am", Kind: KindAlertmanager, URL: hung.URL, Timeout: 60 * time.Second},
		{Name: "ok-hook", Kind: KindWebhook, URL: ok.srv.URL + "/hook"},
	}})

	// Each evaluation hands over every rule's alerts; the first ten rules
	// fire from the start, ten more from the second round on.
	rules := make([]*alerting.Rule, 20)
	for i := range rules {
		rules[i] = rule(int64(i+1), "rule "+string(rune('A'+i)))
	}
	evaluation := func(at time.Time, n int) []alerting.Notification {
		ns := make([]alerting.Notification, n)
		for i := range n {
			ns[i] = notif(rules[i], firing(rules[i], t0, "group", "orders"))
		}
		return ns
	}
	timeNotify := func(at time.Time, n int) time.Duration {
		ns := evaluation(at, n)
		begin := time.Now()
		for range 100 {
			h.d.Notify(at, ns)
		}
		return time.Since(begin)
	}

	// Blocking on a hung target would take its 60 s timeout; 2 s leaves a
	// loaded CI machine room (the calls take a few milliseconds) and still
	// tells the two apart.
	const notBlocked = 2 * time.Second
	if took := timeNotify(t0, 10); took > notBlocked {
		t.Errorf("100 Notify calls took %s, want < %s", took, notBlocked)
	}
	if got := h.flushAt(t0.Add(30 * time.Second)); got != 20 {
		t.Fatalf("flush queued %d payloads, want 10 per webhook", got)
	}
	testenv.WaitWithin(t, 5*time.Second, "the healthy webhook's 10 payloads", func() bool { return len(ok.messages()) == 10 })
	testenv.WaitFor(t, "the hung webhook's request outstanding", func() bool {
		s := h.status(t, "hung-hook")
		return !s.InFlightSince.IsZero() && s.Queued == 9
	})
	testenv.WaitFor(t, "the hung Alertmanager's request outstanding", func() bool {
		return !h.status(t, "hung-am").InFlightSince.IsZero()
	})

	// With both hung targets stuck, evaluations go on at full speed.
	at := t0.Add(31 * time.Second)
	if took := timeNotify(at, 20); took > notBlocked {
		t.Errorf("100 Notify calls with two hung targets took %s, want < %s", took, notBlocked)
	}
	if got := h.flushAt(at.Add(30 * time.Second)); got != 20 {
		t.Fatalf("second flush queued %d payloads, want 10 new groups per webhook", got)
	}
	testenv.WaitWithin(t, 5*time.Second, "the healthy webhook's 20 payloads", func() bool { return len(ok.messages()) == 20 })

	hook, am := h.status(t, "hung-hook"), h.status(t, "hung-am")
	if hook.Queued != 19 || hook.InFlightSince.IsZero() {
		t.Errorf("hung webhook: queued %d, in flight since %v; want 19 queued behind one in flight", hook.Queued, hook.InFlightSince)
	}
	if am.Queued != 10 || am.InFlightSince.IsZero() {
		t.Errorf("hung Alertmanager: queued %d alerts, in flight since %v; want the 10 new alerts behind the first batch", am.Queued, am.InFlightSince)
	}
	if hook.Failed != 0 || hook.Sent != 0 {
		t.Errorf("hung webhook sent %d, failed %d; want nothing finished", hook.Sent, hook.Failed)
	}
	if s := h.status(t, "ok-hook"); s.Sent != 20 || s.ConsecutiveFailures != 0 || s.LastSuccess.IsZero() {
		t.Errorf("healthy webhook status %+v, want 20 sent and no failures", s)
	}

	m := h.d.metrics
	if got := testutil.ToFloat64(m.queueLength.WithLabelValues("hung-hook")); got != 19 {
		t.Errorf("queue_length{hung-hook} = %v, want 19", got)
	}
	if got := testutil.ToFloat64(m.queueLength.WithLabelValues("hung-am")); got != 10 {
		t.Errorf("queue_length{hung-am} = %v, want 10", got)
	}
	if got := testutil.ToFloat64(m.notifications.WithLabelValues("ok-hook", "webhook")); got != 20 {
		t.Errorf("notifications_total{ok-hook} = %v, want 20", got)
	}
	if got := testutil.ToFloat64(m.failed.WithLabelValues("ok-hook", "webhook")); got != 0 {
		t.Errorf("notifications_failed_total{ok-hook} = %v, want 0", got)
	}
	if got := histCount(t, h.reg, "ok-hook"); got != 20 {
		t.Errorf("duration{ok-hook} observed %d requests, want 20", got)
	}
	if got := histCount(t, h.reg, "hung-hook"); got != 0 {
		t.Errorf("duration{hung-hook} observed %d requests, want none finished", got)
	}

	// Stopping does not wait out the 60s timeouts.
	begin := time.Now()
	h.stop()
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("Run took %s to stop with requests hung", took)
	}
}

// TestQueueDropsOldest: a target that cannot keep up loses its oldest
// payloads, counted, and those groups are tried again at the next tick.
func TestQueueDropsOldest(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) })
	h := start(t, Options{QueueSize: 5, Targets: []Target{{Name: "slow", Kind: KindWebhook, URL: hung.URL, Timeout: time.Minute}}})

	var ns []alerting.Notification
	for i := range 20 {
		r := rule(int64(i+1), "rule")
		ns = append(ns, notif(r, firing(r, t0)))
	}
	h.d.Notify(t0, ns)
	if got := h.flushAt(t0.Add(30 * time.Second)); got != 20 {
		t.Fatalf("flush queued %d, want 20", got)
	}
	testenv.WaitFor(t, "one payload in flight", func() bool { return !h.status(t, "slow").InFlightSince.IsZero() })
	s := h.status(t, "slow")
	dropped := testutil.ToFloat64(h.d.metrics.dropped.WithLabelValues("slow"))
	if s.Queued > 5 || dropped < 14 || int(dropped)+s.Queued+1 != 20 {
		t.Errorf("queued %d, dropped %v: want at most 5 queued, the rest but the one in flight dropped", s.Queued, dropped)
	}
	// The dropped groups were not notified, so the next tick tries them
	// again (the queued and in-flight ones are still pending).
	if got := h.flushAt(t0.Add(30*time.Second + 5*time.Minute)); got != int(dropped) {
		t.Errorf("next tick queued %d, want the %v dropped groups again", got, dropped)
	}
}

// TestTargetsHideCredentials: the page shows no credentials, errors and
// logs carry none, and the receiver gets them.
func TestTargetsHideCredentials(t *testing.T) {
	const token, password, apiKey = "tok-s3cr3t-1", "pw-s3cr3t-2", "key-s3cr3t-3"
	var mu sync.Mutex
	var auths []string
	echo := newReceiver(t, func(n int, r *http.Request) (int, string) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization")+"|"+r.Header.Get("X-Api-Key"))
		mu.Unlock()
		// A receiver that echoes what it got into its error.
		return http.StatusBadRequest, "bad request from " + r.Header.Get("Authorization") + " " + r.Header.Get("X-Api-Key")
	})
	u := strings.Replace(echo.srv.URL, "http://", "http://ops:"+password+"@", 1)
	h := start(t, Options{Targets: []Target{
		{Name: "bearer", Kind: KindWebhook, URL: echo.srv.URL + "/hook?token=" + token, BearerToken: token, Headers: map[string]string{"X-Api-Key": apiKey}},
		{Name: "basic", Kind: KindWebhook, URL: u + "/hook"},
	}})
	r := rule(1, "Lag")
	h.d.Notify(t0, []alerting.Notification{notif(r, firing(r, t0))})
	if got := h.flushAt(t0.Add(30 * time.Second)); got != 2 {
		t.Fatalf("flush queued %d, want 2", got)
	}
	h.waitIdle(t)

	mu.Lock()
	got := slices.Clone(auths)
	mu.Unlock()
	slices.Sort(got)
	want := []string{"Basic b3BzOnB3LXMzY3IzdC0y|", "Bearer " + token + "|" + apiKey}
	if !slices.Equal(got, want) {
		t.Errorf("receiver got Authorization|X-Api-Key %q, want %q", got, want)
	}
	for _, s := range h.d.Targets() {
		all, _ := json.Marshal(s)
		for _, sec := range []string{token, password, apiKey} {
			if strings.Contains(string(all), sec) {
				t.Errorf("target status shows a secret: %s", all)
			}
		}
		if s.ConsecutiveFailures != 1 || !strings.Contains(s.LastError, "400") {
			t.Errorf("%s: status %+v, want one failure with the status", s.Name, s)
		}
	}
	if s := h.status(t, "bearer"); !strings.Contains(s.LastError, "<secret>") {
		t.Errorf("LastError %q does not show where the echoed secret was", s.LastError)
	}
	if s := h.status(t, "basic"); strings.Contains(s.URL, "ops") || !strings.HasSuffix(s.URL, "/hook") {
		t.Errorf("basic target URL shown as %q, want it without user", s.URL)
	}
	if s := h.status(t, "bearer"); strings.Contains(s.URL, token) {
		t.Errorf("bearer target URL shown as %q", s.URL)
	}
	h.stop()
	for _, sec := range []string{token, password, apiKey} {
		if strings.Contains(h.logs.String(), sec) {
			t.Errorf("logs contain a secret:\n%s", h.logs.String())
		}
	}
	if !strings.Contains(h.logs.String(), "webhook notification not delivered") {
		t.Errorf("logs lack the failure:\n%s", h.logs.String())
	}
}

// keys returns the sorted keys of a decoded JSON object.
func keys(m any) []string {
	o, _ := m.(map[string]any)
	return slices.Sorted(maps.Keys(o))
}

// histCount is how many observations the duration histogram has for target.
func histCount(t *testing.T, reg *prometheus.Registry, target string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "switchyard_alert_notification_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" && l.GetValue() == target {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// BenchmarkNotify: one evaluation of 100 firing rules handed to two
// webhooks and an Alertmanager (the evaluator calls Notify every cycle).
func BenchmarkNotify(b *testing.B) {
	d, err := New(Options{Targets: []Target{
		{Name: "a", Kind: KindWebhook, URL: "http://127.0.0.1:1/"},
		{Name: "b", Kind: KindWebhook, URL: "http://127.0.0.1:1/"},
		{Name: "am", Kind: KindAlertmanager, URL: "http://127.0.0.1:1/"},
	}})
	if err != nil {
		b.Fatal(err)
	}
	var ns []alerting.Notification
	for i := range 100 {
		r := rule(int64(i+1), "rule")
		ns = append(ns, notif(r, firing(r, t0, "group", "orders")))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Notify(t0.Add(time.Duration(i)*time.Millisecond), ns)
	}
}
