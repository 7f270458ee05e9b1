package alerting_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/alerting/notify"
	"switchyard/internal/testenv"
)

// A webhook that hangs for 60 s holds up neither the evaluations that
// follow nor the other target: the evaluator hands its alerts over and goes
// on, the healthy webhook gets its notification, and the hung one shows as
// in flight.
func TestHungWebhookDoesNotDelayEvaluation(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(60 * time.Second):
		}
	}))
	t.Cleanup(func() { close(release); hung.Close() })
	var got atomic.Int32
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Status string `json:"status"`
			Alerts []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if json.NewDecoder(r.Body).Decode(&p) == nil && p.Status == "firing" && len(p.Alerts) == 1 {
			got.Add(1)
		}
	}))
	t.Cleanup(healthy.Close)

	disp, err := notify.New(notify.Options{
		Targets: []notify.Target{
			{Name: "hung", Kind: notify.KindWebhook, URL: hung.URL, Timeout: 60 * time.Second},
			{Name: "healthy", Kind: notify.KindWebhook, URL: healthy.URL},
		},
		GroupWait: time.Millisecond, GroupInterval: time.Second, RepeatInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, disp)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan struct{})
	go func() { defer close(done); _ = disp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	w.record(t, lagSeries[:1], 100)
	r := svcLagRule("orders lag", `cluster="prod"`, `group="orders-svc"`)
	r.For = 0
	if _, err := w.svc.CreateRule(ctx, admin, r); err != nil {
		t.Fatal(err)
	}
	if err := w.eval.Cycle(ctx, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	testenv.WaitWithin(t, 10*time.Second, "the healthy webhook's notification", func() bool { return got.Load() > 0 })
	testenv.WaitWithin(t, 10*time.Second, "the hung webhook in flight", func() bool {
		for _, ts := range disp.Targets() {
			if ts.Name == "hung" && !ts.InFlightSince.IsZero() {
				return true
			}
		}
		return false
	})
	// Ten more evaluations while the hung request is outstanding: each
	// takes what reading and deciding take, not the target's timeout.
	for i := 0; i < 10; i++ {
		w.clock.Advance(15 * time.Second)
		w.record(t, lagSeries[:1], 100)
		start := time.Now()
		if err := w.eval.Cycle(ctx, w.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("evaluation %d took %s with a hung webhook", i, took)
		}
	}
	if a := w.eval.Snapshot().Alerts; len(a) != 1 {
		t.Fatalf("alerts = %+v", a)
	}
	for _, ts := range disp.Targets() {
		if ts.Name == "hung" && ts.InFlightSince.IsZero() {
			t.Fatal("the hung webhook is no longer shown in flight")
		}
	}
}
