package notify

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"switchyard/alerting"
	"switchyard/internal/testenv"
)

// alertsOf lists a payload's alerts as "group=<value> <status>".
func alertsOf(m amWebhook) []string {
	var out []string
	for _, a := range m.Alerts {
		out = append(out, "group="+a.Labels["group"]+" "+a.Status)
	}
	return out
}

func wantAlerts(t *testing.T, m amWebhook, want ...string) {
	t.Helper()
	if got := alertsOf(m); !slices.Equal(got, want) {
		t.Errorf("payload alerts %q, want %q", got, want)
	}
}

// TestWebhookGrouping follows one group through Alertmanager's route
// timing on a manual clock: group_wait, a change at the next
// group_interval, silence while unchanged, repeat_interval, resolves, and
// the group's end.
func TestWebhookGrouping(t *testing.T) {
	rc := newReceiver(t, nil)
	h := start(t, Options{Targets: []Target{{Name: "ops-hook", Kind: KindWebhook, URL: rc.srv.URL + "/alerts"}}})
	r := rule(7, "Consumer lag", "cluster")
	a := firing(r, t0, "cluster", "prod", "group", "orders")
	b := firing(r, t0.Add(time.Minute), "cluster", "prod", "group", "billing")

	// A new group waits group_wait (30s).
	h.d.Notify(t0, []alerting.Notification{notif(r, a)})
	if got := h.flushAt(t0.Add(29 * time.Second)); got != 0 {
		t.Fatalf("flush before group_wait queued %d", got)
	}
	if got := h.flushAt(t0.Add(30 * time.Second)); got != 1 {
		t.Fatalf("flush at group_wait queued %d, want 1", got)
	}
	m := rc.nth(t, 1)
	h.waitIdle(t)

	t.Run("payload is Alertmanager's webhook v4", func(t *testing.T) {
		raw := rc.messages()[0].raw
		if got, want := keys(raw), []string{"alerts", "commonAnnotations", "commonLabels", "externalURL", "groupKey", "groupLabels", "receiver", "status", "truncatedAlerts", "version"}; !slices.Equal(got, want) {
			t.Errorf("payload keys %q, want %q", got, want)
		}
		alert := raw["alerts"].([]any)[0]
		if got, want := keys(alert), []string{"annotations", "endsAt", "fingerprint", "generatorURL", "labels", "startsAt", "status"}; !slices.Equal(got, want) {
			t.Errorf("alert keys %q, want %q", got, want)
		}
		if got := alert.(map[string]any)["endsAt"]; got != "0001-01-01T00:00:00Z" {
			t.Errorf("a firing alert's endsAt is %v, want Alertmanager's zero time", got)
		}
		if m.Version != "4" || m.Status != "firing" || m.Receiver != "ops-hook" || m.TruncatedAlerts != 0 || m.ExternalURL != "http://console.test" {
			t.Errorf("payload head %+v", m)
		}
		if want := `rule/7:{alertname="Consumer lag", cluster="prod"}`; m.GroupKey != want {
			t.Errorf("groupKey %q, want %q", m.GroupKey, want)
		}
		if want := map[string]string{"alertname": "Consumer lag", "cluster": "prod"}; !mapsEqual(m.GroupLabels, want) {
			t.Errorf("groupLabels %v, want %v", m.GroupLabels, want)
		}
		if !mapsEqual(m.CommonLabels, a.Labels) || !mapsEqual(m.CommonAnnotations, a.Annotations) {
			t.Errorf("common labels %v, annotations %v; want the one alert's", m.CommonLabels, m.CommonAnnotations)
		}
		got := m.Alerts[0]
		if got.Status != "firing" || !mapsEqual(got.Labels, a.Labels) || !mapsEqual(got.Annotations, a.Annotations) ||
			!got.StartsAt.Equal(t0) || !got.EndsAt.IsZero() || got.GeneratorURL != "http://console.test/alerts/rules/7" {
			t.Errorf("alert %+v", got)
		}
		// That it is Alertmanager's own fingerprint of the labels, the
		// real Alertmanager's API confirms (TestAlertmanager).
		if got.Fingerprint != labelsFingerprint(a.Labels) || len(got.Fingerprint) != 16 {
			t.Errorf("fingerprint %q, want %q", got.Fingerprint, labelsFingerprint(a.Labels))
		}
	})

	// A second alert joins: told at the next group_interval tick, not at
	// once, and not again before.
	h.d.Notify(t0.Add(time.Minute), []alerting.Notification{notif(r, a, b)})
	if got := h.flushAt(t0.Add(time.Minute)); got != 0 {
		t.Fatalf("flush right after the change queued %d", got)
	}
	if got := h.flushAt(t0.Add(5*time.Minute + 29*time.Second)); got != 0 {
		t.Fatalf("flush before group_interval queued %d", got)
	}
	if got := h.flushAt(t0.Add(5*time.Minute + 30*time.Second)); got != 1 {
		t.Fatalf("flush at group_interval queued %d, want 1", got)
	}
	m = rc.nth(t, 2)
	h.waitIdle(t)
	wantAlerts(t, m, "group=billing firing", "group=orders firing")
	if want := map[string]string{"alertname": "Consumer lag", "cluster": "prod", "severity": "warning"}; !mapsEqual(m.CommonLabels, want) {
		t.Errorf("commonLabels %v, want %v (group differs)", m.CommonLabels, want)
	}

	// Unchanged: nothing until repeat_interval (4h) has passed since the
	// last notification, at a group_interval tick.
	last := t0.Add(5*time.Minute + 30*time.Second)
	for at := last.Add(5 * time.Minute); !at.After(last.Add(4 * time.Hour)); at = at.Add(5 * time.Minute) {
		h.d.Notify(at, []alerting.Notification{notif(r, a, b)})
		if got := h.flushAt(at); got != 0 {
			t.Fatalf("unchanged group notified again at +%s", at.Sub(last))
		}
	}
	repeat := last.Add(4*time.Hour + 5*time.Minute)
	if got := h.flushAt(repeat); got != 1 {
		t.Fatalf("flush after repeat_interval queued %d, want 1", got)
	}
	m = rc.nth(t, 3)
	h.waitIdle(t)
	wantAlerts(t, m, "group=billing firing", "group=orders firing")

	// b resolves: told at the next tick, with its endsAt.
	at := repeat.Add(time.Minute)
	h.d.Notify(at, []alerting.Notification{notif(r, a, resolved(b, at))})
	if got := h.flushAt(repeat.Add(5 * time.Minute)); got != 1 {
		t.Fatalf("flush after a resolve queued %d, want 1", got)
	}
	m = rc.nth(t, 4)
	h.waitIdle(t)
	wantAlerts(t, m, "group=billing resolved", "group=orders firing")
	if m.Status != "firing" || !m.Alerts[0].EndsAt.Equal(at) {
		t.Errorf("status %q, resolved endsAt %v; want firing and %v", m.Status, m.Alerts[0].EndsAt, at)
	}

	// The evaluator keeps handing the resolved b over (resolved
	// retention): no news.
	h.d.Notify(repeat.Add(6*time.Minute), []alerting.Notification{notif(r, a, resolved(b, at))})
	if got := h.flushAt(repeat.Add(10 * time.Minute)); got != 0 {
		t.Fatalf("a resolve already told was told again (%d)", got)
	}

	// a resolves too: the group says "resolved" once and is gone.
	at2 := repeat.Add(11 * time.Minute)
	h.d.Notify(at2, []alerting.Notification{notif(r, resolved(a, at2), resolved(b, at))})
	if got := h.flushAt(repeat.Add(15 * time.Minute)); got != 1 {
		t.Fatalf("flush after the last resolve queued %d, want 1", got)
	}
	m = rc.nth(t, 5)
	h.waitIdle(t)
	if m.Status != "resolved" {
		t.Errorf("status %q, want resolved", m.Status)
	}
	wantAlerts(t, m, "group=billing resolved", "group=orders resolved")
	for i := range 4 {
		at := repeat.Add(time.Duration(16+5*i) * time.Minute)
		h.d.Notify(at, []alerting.Notification{notif(r, resolved(a, at2), resolved(b, at))})
		if got := h.flushAt(at.Add(30 * time.Second)); got != 0 {
			t.Fatalf("a resolved group notified again (%d)", got)
		}
	}
	if got := rc.requests(); got != 5 {
		t.Errorf("receiver got %d requests, want 5", got)
	}
}

// TestWebhookGroupsByLabels: alerts of one rule with other GroupBy values
// are other groups, each with its own timing; other rules too.
func TestWebhookGroupsByLabels(t *testing.T) {
	rc := newReceiver(t, nil)
	h := start(t, Options{GroupWait: 10 * time.Second, Targets: []Target{{Name: "hook", Kind: KindWebhook, URL: rc.srv.URL}}})
	r := rule(1, "Lag", "cluster")
	other := rule(2, "DLQ")
	h.d.Notify(t0, []alerting.Notification{
		notif(r, firing(r, t0, "cluster", "prod", "group", "a"), firing(r, t0, "cluster", "prod", "group", "b"), firing(r, t0, "cluster", "test", "group", "a")),
		notif(other, firing(other, t0, "cluster", "prod", "group", "a")),
	})
	if got := h.flushAt(t0.Add(10 * time.Second)); got != 3 {
		t.Fatalf("flush queued %d payloads, want one per group (3)", got)
	}
	testenv.WaitFor(t, "3 payloads", func() bool { return len(rc.messages()) == 3 })
	var got []string
	for _, m := range rc.messages() {
		got = append(got, m.msg.GroupKey+" "+strings.Join(alertsOf(m.msg), ","))
	}
	slices.Sort(got)
	want := []string{
		`rule/1:{alertname="Lag", cluster="prod"} group=a firing,group=b firing`,
		`rule/1:{alertname="Lag", cluster="test"} group=a firing`,
		`rule/2:{alertname="DLQ"} group=a firing`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("groups\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestWebhookOldAlertNotWaiting: as Alertmanager, a group whose alert has
// fired for longer than group_wait (a console restart, a new target) is
// told at once.
func TestWebhookOldAlertNotWaiting(t *testing.T) {
	rc := newReceiver(t, nil)
	h := start(t, Options{Targets: []Target{{Name: "hook", Kind: KindWebhook, URL: rc.srv.URL}}})
	r := rule(1, "Lag")
	now := t0.Add(time.Hour)
	h.d.Notify(now, []alerting.Notification{notif(r, firing(r, t0))})
	if got := h.flushAt(now); got != 1 {
		t.Fatalf("flush queued %d, want the old alert at once", got)
	}
	rc.nth(t, 1)
}

// TestWebhookSilenced: silenced alerts never reach webhooks; the rest of
// their group does, and an alert whose silence ends is news.
func TestWebhookSilenced(t *testing.T) {
	rc := newReceiver(t, nil)
	h := start(t, Options{Targets: []Target{{Name: "hook", Kind: KindWebhook, URL: rc.srv.URL}}})
	r := rule(3, "Lag")
	a := firing(r, t0, "group", "orders")
	b := firing(r, t0.Add(time.Minute), "group", "billing")

	h.d.Notify(t0, []alerting.Notification{notif(r, silenced(a, 9))})
	if got := h.flushAt(t0.Add(30 * time.Second)); got != 0 {
		t.Fatalf("a group of silenced alerts queued %d payloads", got)
	}
	h.d.Notify(t0.Add(time.Minute), []alerting.Notification{notif(r, silenced(a, 9), b)})
	if got := h.flushAt(t0.Add(5*time.Minute + 30*time.Second)); got != 1 {
		t.Fatalf("flush queued %d, want 1", got)
	}
	wantAlerts(t, rc.nth(t, 1), "group=billing firing")
	h.waitIdle(t)

	// The silence ends: a is news.
	h.d.Notify(t0.Add(6*time.Minute), []alerting.Notification{notif(r, a, b)})
	if got := h.flushAt(t0.Add(10*time.Minute + 30*time.Second)); got != 1 {
		t.Fatalf("flush after the silence queued %d, want 1", got)
	}
	wantAlerts(t, rc.nth(t, 2), "group=billing firing", "group=orders firing")
}

// TestWebhookRetries: what may get better (5xx, 429, timeouts) is retried
// up to Retries times; other 4xx answers are not.
func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name     string
		answers  []int // per request; the last one repeats
		timeout  time.Duration
		requests int
		ok       bool
	}{
		{"500 then success", []int{500, 500, 200}, 0, 3, true},
		{"429 then success", []int{429, 200}, 0, 2, true},
		{"503 every time", []int{503}, 0, 3, false},
		{"400 not retried", []int{400}, 0, 1, false},
		{"404 not retried", []int{404}, 0, 1, false},
		{"timeout retried", []int{0}, 50 * time.Millisecond, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, func(n int, r *http.Request) (int, string) {
				code := tt.answers[min(n, len(tt.answers))-1]
				if code == 0 {
					<-r.Context().Done() // hangs until the client gives up
					return http.StatusOK, ""
				}
				return code, "answer " + http.StatusText(code)
			})
			h := start(t, Options{Retries: 2, Targets: []Target{{Name: "hook", Kind: KindWebhook, URL: rc.srv.URL, Timeout: tt.timeout}}})
			r := rule(1, "Lag")
			h.d.Notify(t0, []alerting.Notification{notif(r, firing(r, t0))})
			if got := h.flushAt(t0.Add(30 * time.Second)); got != 1 {
				t.Fatalf("flush queued %d, want 1", got)
			}
			h.waitIdle(t)
			if got := rc.requests(); got != tt.requests {
				t.Errorf("receiver got %d requests, want %d", got, tt.requests)
			}
			s := h.status(t, "hook")
			m := h.d.metrics
			failed := float64(tt.requests)
			if tt.ok {
				failed--
			}
			if got := testutil.ToFloat64(m.notifications.WithLabelValues("hook", "webhook")); got != float64(tt.requests) {
				t.Errorf("notifications_total = %v, want %d", got, tt.requests)
			}
			if got := testutil.ToFloat64(m.failed.WithLabelValues("hook", "webhook")); got != failed {
				t.Errorf("notifications_failed_total = %v, want %v", got, failed)
			}
			up := testutil.ToFloat64(m.up.WithLabelValues("hook"))
			if tt.ok {
				if up != 1 || s.ConsecutiveFailures != 0 || s.LastError != "" || s.Sent != 1 {
					t.Errorf("after success: up %v, status %+v", up, s)
				}
				// Delivered: the group is not told again.
				if got := h.flushAt(t0.Add(30*time.Second + 5*time.Minute)); got != 0 {
					t.Errorf("a delivered group was sent again (%d)", got)
				}
				return
			}
			if up != 0 || s.ConsecutiveFailures != tt.requests || s.Failed != uint64(tt.requests) || s.LastError == "" {
				t.Errorf("after failure: up %v, status %+v", up, s)
			}
			if tt.timeout == 0 && !strings.Contains(s.LastError, http.StatusText(tt.answers[len(tt.answers)-1])) {
				t.Errorf("LastError %q lacks the receiver's answer", s.LastError)
			}
			if tt.timeout > 0 && !strings.Contains(s.LastError, "no response within 50ms") {
				t.Errorf("LastError %q, want the timeout", s.LastError)
			}
			// Not delivered: the next tick tries again, as Alertmanager does.
			if got := h.flushAt(t0.Add(30*time.Second + 5*time.Minute)); got != 1 {
				t.Errorf("an undelivered group was not tried again at the next tick (%d)", got)
			}
		})
	}
}

// TestWebhookRestart: the group state persisted in console.db (the real
// alerting store) means a restarted console neither repeats an unchanged
// group nor forgets one that resolved meanwhile.
func TestWebhookRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.db")
	rc := newReceiver(t, nil)
	r := rule(4, "Lag", "cluster")
	a := firing(r, t0, "cluster", "prod", "group", "orders")
	b := firing(r, t0, "cluster", "prod", "group", "billing")
	gone := rule(5, "Gone")
	g := firing(gone, t0, "group", "x")
	opts := func(st StateStore) Options {
		return Options{Store: st, Targets: []Target{{Name: "hook", Kind: KindWebhook, URL: rc.srv.URL}}}
	}

	st := openStore(t, path)
	h := start(t, opts(st))
	h.d.Notify(t0, []alerting.Notification{notif(r, a), notif(gone, g)})
	if got := h.flushAt(t0.Add(30 * time.Second)); got != 2 {
		t.Fatalf("first flush queued %d, want 2", got)
	}
	h.waitIdle(t)
	testenv.WaitFor(t, "both groups persisted", func() bool {
		gs, err := st.LoadGroups(context.Background())
		return err == nil && len(gs) == 2
	})
	h.stop()

	t.Run("unchanged group not repeated", func(t *testing.T) {
		h := start(t, opts(openStore(t, path)))
		at := t0.Add(10 * time.Minute)
		for i := range 3 {
			now := at.Add(time.Duration(i) * 5 * time.Minute)
			h.d.Notify(now, []alerting.Notification{notif(r, a)})
			if got := h.flushAt(now); got != 0 {
				t.Fatalf("restarted dispatcher re-notified an unchanged group at %s (%d)", now, got)
			}
		}
		h.stop()
	})

	t.Run("a group that vanished is forgotten", func(t *testing.T) {
		gs, err := openStore(t, path).LoadGroups(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) != 1 || !strings.HasPrefix(gs[0].Key, "rule/4:") {
			t.Errorf("groups kept after restart: %+v, want only rule 4's", gs)
		}
	})

	t.Run("a resolve during the restart is told", func(t *testing.T) {
		h := start(t, opts(openStore(t, path)))
		at := t0.Add(30 * time.Minute)
		h.d.Notify(at, []alerting.Notification{notif(r, resolved(a, at))})
		if got := h.flushAt(at); got != 1 {
			t.Fatalf("flush queued %d, want the resolve", got)
		}
		m := rc.nth(t, 3)
		if m.Status != "resolved" {
			t.Errorf("status %q, want resolved", m.Status)
		}
		h.waitIdle(t)
		h.stop()
	})

	t.Run("a new alert after the restart is told", func(t *testing.T) {
		h := start(t, opts(openStore(t, path)))
		at := t0.Add(40 * time.Minute)
		h.d.Notify(at, []alerting.Notification{notif(r, a, b)})
		if got := h.flushAt(at); got != 1 {
			t.Fatalf("flush queued %d, want 1", got)
		}
		wantAlerts(t, rc.nth(t, 4), "group=billing firing", "group=orders firing")
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
