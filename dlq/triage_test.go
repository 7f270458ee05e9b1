package dlq_test

import (
	"context"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

// Triage is redrive on console:dlq, on a group the caller can see; every
// change the store makes or refuses is in the audit log, and the group
// comes back as the caller sees it.
func TestTriageIsScopedAndAudited(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	groups, _, err := w.svc.Groups(ctx, admin, dlqstore.GroupFilter{Sort: "count"})
	if err != nil || len(groups) != 2 {
		t.Fatalf("groups = %+v (%v)", groups, err)
	}
	a, b := groups[0], groups[1] // A has 9 entries, B 4
	// tom triages, but views only orders of t1.
	tom := callerWith("tom", grant(orders, t1, access.ActionView), grant([]string{"console:dlq"}, everything, access.ActionRedrive))
	if !w.svc.MayTriage(tom) || w.svc.MayTriage(olga) {
		t.Errorf("MayTriage: tom %v, olga %v; want true, false", w.svc.MayTriage(tom), w.svc.MayTriage(olga))
	}

	snooze := dlqstore.Triage{State: dlqstore.TriageSnoozed, Owner: " tom ", Note: " after the deploy ", SnoozedUntil: time.Now().Add(time.Hour)}
	if _, err := w.svc.SetTriage(ctx, olga, a.ID, snooze); delivery.ErrorCode(err) != delivery.EFORBIDDEN {
		t.Errorf("olga's triage = %v, want EFORBIDDEN", err)
	}
	if _, err := w.svc.SetTriage(ctx, tom, b.ID, snooze); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("tom's triage of group B = %v, want ENOTFOUND", err)
	}
	if recs := w.records(t, "dlq.triage"); len(recs) != 0 {
		t.Fatalf("refused before the store, yet recorded: %+v", recs)
	}

	g, err := w.svc.SetTriage(ctx, tom, a.ID, snooze)
	if err != nil {
		t.Fatal(err)
	}
	if g.Triage.State != dlqstore.TriageSnoozed || g.Triage.UpdatedBy != "tom" || g.Count != 6 {
		t.Errorf("tom's group = %+v, want snoozed by tom, his 6 entries", g)
	}
	if _, err := w.svc.SetTriage(ctx, tom, a.ID, dlqstore.Triage{State: "bogus"}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("a bogus state = %v, want EINVALID", err)
	}
	recs := w.records(t, "dlq.triage")
	if len(recs) != 2 {
		t.Fatalf("dlq.triage records = %+v, want the change and the refusal", recs)
	}
	bad, ok := recs[0], recs[1]
	if ok.Actor != "tom" || ok.Outcome != access.OutcomeSuccess || ok.Resource != "console:dlq" || ok.Reason != "after the deploy" ||
		ok.Details["state"] != dlqstore.TriageSnoozed || ok.Details["owner"] != "tom" || ok.Details["snoozed_until"] == nil ||
		len(ok.AffectedIDs) != 1 || ok.AffectedIDs[0] != itoa(a.ID) {
		t.Errorf("the change's record = %+v", ok)
	}
	if bad.Outcome != access.OutcomeFailure || bad.Details["state"] != "bogus" {
		t.Errorf("the refusal's record = %+v", bad)
	}
}
