package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"switchyard/alerting"
	"switchyard/tsdb"
)

// postableAlert is Alertmanager API v2's postableAlert.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// amMatcher and postableSilence are API v2's matcher and postableSilence.
type amMatcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

type postableSilence struct {
	Matchers  []amMatcher `json:"matchers"`
	StartsAt  time.Time   `json:"startsAt"`
	EndsAt    time.Time   `json:"endsAt"`
	CreatedBy string      `json:"createdBy"`
	Comment   string      `json:"comment"`
}

// amState is an Alertmanager target's silence mirror.
type amState struct {
	mu       sync.Mutex
	silences []alerting.Silence // the latest list SyncSilences handed over
	pending  bool

	// remote maps console silence ids to the Alertmanager's ids. Run's
	// load fills it before the target's goroutine starts, which alone
	// uses it from then on.
	remote map[int64]string
}

func (s *amState) setSilences(ss []alerting.Silence) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silences = slices.Clone(ss)
	s.pending = true
}

func (s *amState) takeSilences() ([]alerting.Silence, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pending {
		return nil, false
	}
	s.pending = false
	return s.silences, true
}

// dueAlerts is Prometheus's sendAlerts for the Alertmanagers: the alerts of
// ns that need sending at `at`, encoded. Silenced alerts are sent too: the
// silence is mirrored there, so Alertmanager shows them suppressed and
// does the muting.
func (d *Dispatcher) dueAlerts(at time.Time, ns []alerting.Notification) [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out [][]byte
	seen := make(map[alertKey]bool, len(d.lastSent))
	for _, n := range ns {
		if n.Rule == nil {
			continue
		}
		for i := range n.Alerts {
			a := &n.Alerts[i]
			k := keyOf(n.Rule, a)
			seen[k] = true
			if a.State != alerting.StateFiring && (a.State != alerting.StateInactive || a.ResolvedAt.IsZero()) {
				continue // pending, or not an alert that ever fired
			}
			sent := *a
			if last := d.lastSent[k]; last.After(sent.LastSentAt) {
				sent.LastSentAt = last
			}
			if !alerting.NeedsSending(&sent, at, d.opts.ResendDelay) {
				continue
			}
			d.lastSent[k] = at
			p := postableAlert{
				Labels:       a.Labels,
				Annotations:  a.Annotations,
				StartsAt:     a.FiredAt,
				EndsAt:       a.ResolvedAt,
				GeneratorURL: d.link(n.Rule, a),
			}
			if a.State == alerting.StateFiring {
				p.EndsAt = alerting.ValidUntil(at, d.opts.ResendDelay, d.opts.Interval)
			}
			b, err := json.Marshal(p)
			if err != nil {
				// Maps of strings and times always encode.
				d.log.Error("encode alert", "rule", n.Rule.ID, "err", err)
				continue
			}
			out = append(out, b)
		}
	}
	// Alerts the evaluator no longer hands over are gone for good; a
	// label set that comes back is a new alert.
	maps.DeleteFunc(d.lastSent, func(k alertKey, _ time.Time) bool { return !seen[k] })
	return out
}

// postAlerts posts one batch of alerts. A batch that fails after the
// retries is dropped, as Prometheus drops it: firing alerts are re-sent
// after ResendDelay anyway.
func (t *target) postAlerts(ctx context.Context, batch []item) {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, it := range batch {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(it.alert)
	}
	buf.WriteByte(']')
	if _, _, err := t.send(ctx, "post alerts", http.MethodPost, t.endpoint("/api/v2/alerts"), buf.Bytes()); err != nil && ctx.Err() == nil {
		t.d.log.Warn("alerts not delivered to Alertmanager", "target", t.cfg.Name, "alerts", len(batch), "err", err)
	}
}

func (t *target) endpoint(path string) string {
	return strings.TrimRight(t.cfg.URL, "/") + path
}

// syncSilences makes the Alertmanager's copies match ss: a silence that is
// active or pending gets a copy if it has none; the copy of one that
// ended, or is no longer in ss, is expired. What fails is tried again at
// the next SyncSilences.
func (t *target) syncSilences(ctx context.Context, ss []alerting.Silence) {
	now := t.d.now()
	want := map[int64]alerting.Silence{}
	for _, s := range ss {
		if now.Before(s.EndsAt) {
			want[s.ID] = s
		}
	}
	st := t.d.opts.Store
	// A record must be written even if the console is stopping: without
	// it the next start would copy the silence again.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if _, ok := t.am.remote[id]; ok || ctx.Err() != nil {
			continue
		}
		rid, err := t.createSilence(ctx, want[id])
		if err != nil {
			t.d.log.Warn("silence not mirrored to Alertmanager", "target", t.cfg.Name, "silence", id, "err", err)
			continue
		}
		t.am.remote[id] = rid
		if st != nil {
			if err := st.SetRemoteSilence(sctx, alerting.RemoteSilence{Target: t.cfg.Name, SilenceID: id, RemoteID: rid}); err != nil {
				t.d.log.Error("record mirrored silence", "target", t.cfg.Name, "silence", id, "err", err)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(t.am.remote)) {
		if _, ok := want[id]; ok || ctx.Err() != nil {
			continue
		}
		if err := t.expireSilence(ctx, t.am.remote[id]); err != nil {
			t.d.log.Warn("mirrored silence not expired at Alertmanager", "target", t.cfg.Name, "silence", id, "err", err)
			continue
		}
		delete(t.am.remote, id)
		if st != nil {
			if err := st.DeleteRemoteSilence(sctx, t.cfg.Name, id); err != nil {
				t.d.log.Error("forget mirrored silence", "target", t.cfg.Name, "silence", id, "err", err)
			}
		}
	}
}

func (t *target) createSilence(ctx context.Context, s alerting.Silence) (string, error) {
	p := postableSilence{
		Matchers:  amMatchers(s.Matchers),
		StartsAt:  s.StartsAt,
		EndsAt:    s.EndsAt,
		CreatedBy: s.CreatedBy + " via switchyard",
		Comment:   s.Comment,
	}
	if s.CreatedBy == "" {
		p.CreatedBy = "switchyard"
	}
	if p.Comment == "" {
		p.Comment = "silenced in switchyard" // Alertmanager requires one
	}
	body, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode silence: %w", err)
	}
	_, resp, err := t.send(ctx, "create silence", http.MethodPost, t.endpoint("/api/v2/silences"), body)
	if err != nil {
		return "", err
	}
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	if err := json.Unmarshal(resp, &out); err != nil || out.SilenceID == "" {
		return "", &sendError{msg: "create silence: the response has no silenceID"}
	}
	return out.SilenceID, nil
}

// expireSilence expires a remote copy. One the Alertmanager no longer has
// (it answers a DELETE of those with a 500) or has expired already is
// done: look first, so that a gone copy costs no failed requests.
func (t *target) expireSilence(ctx context.Context, rid string) error {
	u := t.endpoint("/api/v2/silence/" + url.PathEscape(rid))
	status, resp, err := t.send(ctx, "read silence", http.MethodGet, u, nil, http.StatusNotFound)
	if err != nil {
		return err
	}
	var got struct {
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if status == http.StatusNotFound || (json.Unmarshal(resp, &got) == nil && got.Status.State == "expired") {
		return nil
	}
	_, _, err = t.send(ctx, "expire silence", http.MethodDelete, u, nil)
	return err
}

func amMatchers(ms []tsdb.Matcher) []amMatcher {
	out := make([]amMatcher, 0, len(ms))
	for _, m := range ms {
		out = append(out, amMatcher{
			Name:    m.Label,
			Value:   m.Value,
			IsRegex: m.Op == tsdb.MatchRegexp || m.Op == tsdb.MatchNotRegexp,
			IsEqual: m.Op == tsdb.MatchEqual || m.Op == tsdb.MatchRegexp,
		})
	}
	return out
}
