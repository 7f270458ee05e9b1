package redrive

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

// The plan's time counts the canary window a canary holds the rest back
// for, and says it in seconds too; a canary as big as the set holds
// nothing back and says so.
func TestPlanEstimateIncludesTheCanaryWindow(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 20, 3, 0)
	ctx := context.Background()
	p, err := r.engine.Plan(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, Rate: 50,
		Canary: 5, CanaryWindowSeconds: 30})
	if err != nil {
		t.Fatal(err)
	}
	// 20 at 50/s is under a second; the canary waits 30 s.
	if p.EstimatedTime < 30*time.Second || p.EstimatedSeconds != p.EstimatedTime.Seconds() || p.CanaryWindow != 30*time.Second {
		t.Errorf("plan = %s (%g s), canary window %s; want at least 30s", p.EstimatedTime, p.EstimatedSeconds, p.CanaryWindow)
	}
	b, _ := json.Marshal(p)
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil || raw["estimated_time_seconds"] != 30.0 {
		t.Errorf("plan JSON estimated_time_seconds = %v (%s)", raw["estimated_time_seconds"], b)
	}
	whole, err := r.engine.Plan(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids[:5]}, Rate: 50, Canary: 5})
	if err != nil {
		t.Fatal(err)
	}
	if whole.EstimatedTime >= 30*time.Second || len(whole.Warnings) == 0 {
		t.Errorf("a canary of the whole set: %s, warnings %q; want no window and a warning", whole.EstimatedTime, whole.Warnings)
	}
	if _, err := r.engine.Plan(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, Canary: 5,
		CanaryWindow: time.Second, CanaryWindowSeconds: 30}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("disagreeing canary windows = %v, want EINVALID", err)
	}
}

// A plan that asks for the default canary gets it above the threshold
// only; a job started so keeps it.
func TestCanaryDefaultAboveTheThreshold(t *testing.T) {
	r := newRig(t, Options{CanaryDefault: 2, CanaryThreshold: 4}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 6, 3, 0)
	ctx := context.Background()
	for _, tc := range []struct {
		ids  []int64
		want int
	}{{ids, 2}, {ids[:4], 0}} {
		p, err := r.engine.Plan(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: tc.ids}, CanaryDefault: true})
		if err != nil {
			t.Fatal(err)
		}
		if p.Canary != tc.want || (tc.want > 0) != (p.CanaryWindow == DefaultCanaryWindow) {
			t.Errorf("plan of %d: canary %d (window %s), want %d", len(tc.ids), p.Canary, p.CanaryWindow, tc.want)
		}
	}
	j, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, CanaryDefault: true,
		CanaryWindow: time.Hour, Reason: "default canary"})
	if err != nil {
		t.Fatal(err)
	}
	if j.Canary != 2 || j.CanaryWindowSeconds != 3600 {
		t.Errorf("job canary %d, window %g s; want 2 and 3600", j.Canary, j.CanaryWindowSeconds)
	}
	waitJob(t, r.engine, j.ID, dlqstore.JobCanaryWait)
	r.engine.Cancel(ctx, admin, j.ID)
}

// A canary that comes back: the job lists which canaries came back,
// linked to the entries they were redriven from, and its rest — the
// unsent entries and the re-failure — can be planned again once it has
// stopped, by whoever may see it.
func TestCanaryRefailuresAndTheRest(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 12, 3, 0)
	ctx := context.Background()
	j, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, Canary: 3, CanaryWindow: time.Minute, Rate: 1000, Reason: "canary"})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, r.engine, j.ID, dlqstore.JobCanaryWait)
	rest := Request{Action: ActionRedrive, Selector: Selector{RestOf: j.ID}}
	if _, err := r.engine.Plan(ctx, admin, rest); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("the rest of a running job = %v, want EINVALID", err)
	}
	// The consumer still fails: the second canary message comes back.
	recs := consume(t, r.brokers, "orders", 3)
	h := r.refail(t, recs[1], "order still not found")
	from, err := delivery.ParseLocation(h.String(delivery.HeaderRedriveFrom))
	if err != nil {
		t.Fatalf("the redriven record says it came from %q: %v", h.String(delivery.HeaderRedriveFrom), err)
	}
	end := waitJob(t, r.engine, j.ID, dlqstore.JobCanaryFailed)
	got, total, err := r.engine.Refailures(ctx, admin, j.ID, 10)
	if err != nil || total != 1 || len(got) != 1 {
		t.Fatalf("re-failures = %+v (%d), %v", got, total, err)
	}
	orig, err := r.store.Entry(ctx, got[0].Entry.RefailureOf)
	if err != nil {
		t.Fatal(err)
	}
	if orig.Partition != from.Partition || orig.Offset != from.Offset || orig.RefailedAs != got[0].Entry.ID ||
		got[0].Seq < 1 || got[0].Seq > 3 || got[0].Entry.DL.Error.Message != "order still not found" {
		t.Errorf("re-failure %+v of entry %d (%d@%d, refailed as %d); want the canary redriven from %d@%d",
			got[0], orig.ID, orig.Partition, orig.Offset, orig.RefailedAs, from.Partition, from.Offset)
	}
	if _, _, err := r.engine.Refailures(ctx, viewer, j.ID, 10); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("a viewer's re-failures of the job = %v, want ENOTFOUND", err)
	}

	p, err := r.engine.Plan(ctx, admin, rest)
	if err != nil {
		t.Fatal(err)
	}
	if want := end.Cancelled + 1; p.Count != want {
		t.Errorf("the rest = %d entries, want %d (the unsent and the re-failure)", p.Count, want)
	}
	otto := Actor{P: &access.Principal{User: "otto", Method: access.MethodSession, Grants: []access.Grant{
		{Role: "operator", Actions: []access.Action{access.ActionView, access.ActionRedrive}, Resources: []string{"kafka:main/orders"}, Tenants: []string{"t2"}}}}}
	if _, err := r.engine.Plan(ctx, otto, rest); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("the rest of a job otto may not see = %v, want ENOTFOUND", err)
	}
	again, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{RestOf: j.ID}, Rate: 1000, Reason: "the rest"})
	if err != nil {
		t.Fatal(err)
	}
	if done := waitJob(t, r.engine, again.ID, dlqstore.JobCompleted); done.Done != p.Count {
		t.Errorf("the rest's job = %+v, want %d sent", done, p.Count)
	}
}

// The ETA is the measured rate's, plus the canary window ahead; the rate
// is measured over sending time, from the second batch on.
func TestETAFromTheMeasuredRate(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		j     Job
		until time.Time
		want  time.Duration
	}{
		{"nothing measured: the job's rate", Job{Rate: 10, Total: 100, Remaining: 100, State: dlqstore.JobRunning}, time.Time{}, 10 * time.Second},
		{"measured", Job{Rate: 10, CurrentRate: 4, Total: 100, Remaining: 40, State: dlqstore.JobRunning}, time.Time{}, 10 * time.Second},
		{"canary ahead", Job{Rate: 10, Canary: 5, CanaryWindow: 30 * time.Second, Total: 100, Remaining: 100, State: dlqstore.JobRunning}, time.Time{}, 40 * time.Second},
		{"waiting on it", Job{Rate: 10, Canary: 5, CanaryWindow: 30 * time.Second, Total: 100, Remaining: 95, State: dlqstore.JobCanaryWait}, now.Add(12 * time.Second), 21*time.Second + 500*time.Millisecond},
		{"past it", Job{Rate: 10, Canary: 5, CanaryWindow: 30 * time.Second, Total: 100, Remaining: 50, State: dlqstore.JobRunning}, now.Add(-time.Minute), 5 * time.Second},
		{"a canary of the whole set", Job{Rate: 10, Canary: 5, CanaryWindow: 30 * time.Second, Total: 5, Remaining: 5, State: dlqstore.JobRunning}, time.Time{}, 500 * time.Millisecond},
	} {
		if got := eta(tc.j, tc.until, now, false); got != tc.want.Round(time.Second) {
			t.Errorf("%s: eta = %s, want %s", tc.name, got, tc.want.Round(time.Second))
		}
	}
	var rs runState
	t0 := now
	if rs.add(t0, 50); rs.rate() != 0 {
		t.Errorf("rate after the first batch = %g, want 0 (not measured yet)", rs.rate())
	}
	rs.add(t0.Add(time.Second), 50)
	rs.add(t0.Add(2*time.Second), 50)
	if got := rs.rate(); got != 50 {
		t.Errorf("rate = %g, want 50", got)
	}
	rs.restart()
	if rs.add(t0.Add(time.Hour), 5); rs.rate() != 0 {
		t.Errorf("rate after a restart = %g, want 0", rs.rate())
	}
}
