package alerting_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"switchyard/alerting"
	"switchyard/alerting/notify"
	"switchyard/internal/testenv"
	"switchyard/tsdb"
)

// amAlert is what the test reads of Alertmanager's GET /api/v2/alerts.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	GeneratorURL string            `json:"generatorURL"`
	EndsAt       time.Time         `json:"endsAt"`
	Status       struct {
		State      string   `json:"state"`
		SilencedBy []string `json:"silencedBy"`
	} `json:"status"`
}

func amAlerts(t *testing.T, base string) []amAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts?active=true&silenced=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []amAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// From a rule to the real Alertmanager: the lag crosses the threshold, the
// evaluator fires the alert after its for, Alertmanager shows it with the
// console's annotations and link; a silence made in the console mutes it
// there; the lag goes back down and the alert resolves there.
func TestAlertFiresIsSilencedAndResolvesInAlertmanager(t *testing.T) {
	am := testenv.Alertmanager(t)
	w0 := newWorld(t, nil)
	// Alertmanager judges endsAt by its own clock: run close to it.
	w0.clock.Set(time.Now().Add(-3 * time.Minute))
	disp, err := notify.New(notify.Options{
		Targets:     []notify.Target{{Name: "am", Kind: notify.KindAlertmanager, URL: am}},
		ExternalURL: "https://console.example", Store: w0.store, Now: w0.clock.Now,
		Link: func(r *alerting.Rule, a *alerting.Alert) string { return alerting.Links(r.ID, a.Labels)[0].URL },
	})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorldOn(t, w0, disp)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = disp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	one := lagSeries[:1]
	w.record(t, one, 5)
	r := svcLagRule("orders lag", `cluster="prod"`, `group="orders-svc"`)
	r.Annotations = map[string]string{"summary": "{{ $labels.group }} is {{ $value }}s behind"}
	if _, err := w.svc.CreateRule(ctx, admin, r); err != nil {
		t.Fatal(err)
	}
	step := func(v float64) {
		t.Helper()
		w.clock.Advance(15 * time.Second)
		w.record(t, one, v)
		if err := w.eval.Cycle(ctx, w.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"alertname": "orders lag", "cluster": "prod", "group": "orders-svc", "severity": "warning"}
	find := func() (amAlert, bool) {
		for _, a := range amAlerts(t, am) {
			if len(a.Labels) == len(want) && a.Labels["alertname"] == want["alertname"] && a.Labels["group"] == want["group"] {
				return a, true
			}
		}
		return amAlert{}, false
	}
	for range 4 { // pending for the first minute: nothing is sent
		step(100)
	}
	if _, ok := find(); ok {
		t.Fatal("a pending alert reached Alertmanager")
	}
	step(100) // 60s after it went pending: firing
	testenv.WaitWithin(t, 10*time.Second, "the alert in Alertmanager", func() bool { _, ok := find(); return ok })
	a, _ := find()
	if a.Status.State != "active" || a.Annotations["summary"] != "orders-svc is 100s behind" ||
		a.GeneratorURL != "https://console.example/consumers/prod/orders-svc" {
		t.Fatalf("in Alertmanager: %+v", a)
	}

	sil, err := w.svc.CreateSilence(ctx, admin, alerting.Silence{
		Matchers: []tsdb.Matcher{{Label: "alertname", Op: tsdb.MatchEqual, Value: "orders lag"}},
		EndsAt:   time.Now().Add(time.Hour), Comment: "deploying the fix",
	})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := w.svc.Silences(ctx, admin, alerting.SilenceFilter{})
	if err != nil {
		t.Fatal(err)
	}
	disp.SyncSilences(ss)
	testenv.WaitWithin(t, 10*time.Second, "the alert suppressed in Alertmanager", func() bool {
		a, ok := find()
		return ok && a.Status.State == "suppressed" && len(a.Status.SilencedBy) == 1
	})
	if page, _ := w.svc.Alerts(ctx, admin, alerting.AlertFilter{State: "silenced"}); len(page.Alerts) != 1 || page.Alerts[0].Silenced[0] != sil.ID {
		t.Fatalf("the console's silenced alerts: %+v", page.Alerts)
	}

	step(0) // the lag is gone: resolved, sent with its endsAt
	testenv.WaitWithin(t, 10*time.Second, "the alert resolved in Alertmanager", func() bool { _, ok := find(); return !ok })
}
