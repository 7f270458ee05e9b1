package dlq_test

import (
	"context"
	"testing"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/redrive"
)

// The buttons a page offers are the caller's grants for each job action,
// on an entry only those that apply to its status; edit and redrive only
// on a JSON payload the caller reads in full. Without an engine nothing is
// offered and every job call is ENOTFOUND.
func TestActionsOffered(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	entry := func(svc *dlq.Service, c dlq.Caller, id int64) *dlq.Entry {
		t.Helper()
		e, err := svc.Entry(ctx, c, id)
		if err != nil {
			t.Fatal(err)
		}
		return &e
	}
	dead, quarantined := w.ids[0], w.ids[3] // orders of t1
	if _, err := w.store.SetStatus(ctx, []int64{quarantined}, dlqstore.StatusQuarantined); err != nil {
		t.Fatal(err)
	}

	if got := w.svc.Actions(admin, entry(w.svc, admin, dead)); got != (dlq.Actions{}) {
		t.Errorf("without an engine: %+v, want nothing", got)
	}
	svc := w.withJobs(t, true)
	editor := []access.Action{access.ActionView, access.ActionReadPayload, access.ActionRedrive, access.ActionEdit}
	edith := callerWith("edith", grant(orders, t1, editor...))                                                // no read_pii
	eric := callerWith("eric", grant(orders, t1, append(editor, access.ActionReadPII)...))                    // reads in full
	evan := callerWith("evan", grant(orders, t1, access.ActionView, access.ActionRedrive, access.ActionEdit)) // no read_payload
	for _, tc := range []struct {
		name string
		c    dlq.Caller
		id   int64 // 0: on lists
		want dlq.Actions
	}{
		{"olga on lists", olga, 0, dlq.Actions{Enabled: true, Redrive: true, Quarantine: true, Discard: true, Restore: true}},
		{"vera on lists", vera, 0, dlq.Actions{Enabled: true}},
		{"olga on a dead entry", olga, dead, dlq.Actions{Enabled: true, Redrive: true, Quarantine: true, Discard: true}},
		{"olga on a quarantined entry", olga, quarantined, dlq.Actions{Enabled: true, Redrive: true, Discard: true, Restore: true}},
		{"eric edits", eric, dead, dlq.Actions{Enabled: true, Redrive: true, Edit: true}},
		{"edith reads masked", edith, dead, dlq.Actions{Enabled: true, Redrive: true,
			EditNote: "Edit and redrive needs the unmasked payload (read_pii): masked values would be sent."}},
		{"evan reads nothing", evan, dead, dlq.Actions{Enabled: true, Redrive: true,
			EditNote: "Edit and redrive needs read access to the payload."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *dlq.Entry
			if tc.id != 0 {
				e = entry(svc, tc.c, tc.id)
			}
			if got := svc.Actions(tc.c, e); got != tc.want {
				t.Errorf("Actions = %+v, want %+v", got, tc.want)
			}
		})
	}
	// Edit and redrive turned off: the form is not offered, nor a note.
	if got := w.withJobs(t, false).Actions(eric, entry(svc, eric, dead)); got.Edit || got.EditNote != "" {
		t.Errorf("edit turned off: %+v", got)
	}
}

// Without an engine every job call is ENOTFOUND.
func TestJobsNotConfigured(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	req := redrive.Request{Action: redrive.ActionDiscard, Reason: "x", Selector: redrive.Selector{IDs: w.ids[:1]}}
	_, err1 := w.svc.JobOptions()
	_, err2 := w.svc.Plan(ctx, admin, req)
	_, err3 := w.svc.Start(ctx, admin, req)
	_, err4 := w.svc.Job(ctx, admin, 1)
	_, _, err5 := w.svc.Jobs(ctx, admin, redrive.JobFilter{})
	_, _, err6 := w.svc.Ledger(ctx, admin, 1, 0, 10)
	_, err7 := w.svc.Cancel(ctx, admin, 1)
	_, err8 := w.svc.History(ctx, admin, w.ids[0])
	for i, err := range []error{err1, err2, err3, err4, err5, err6, err7, err8} {
		if delivery.ErrorCode(err) != delivery.ENOTFOUND || delivery.ErrorMessage(err) != "dead-letter jobs are not configured" {
			t.Errorf("call %d = %v, want ENOTFOUND", i+1, err)
		}
	}
}

// Job calls carry the caller to the engine: a plan counts only what the
// caller's rules for the action reach, and with payload text off limits.
func TestJobCallsCarryTheCaller(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	svc := w.withJobs(t, false)
	plan := func(c dlq.Caller, q string) int {
		t.Helper()
		p, err := svc.Plan(ctx, c, redrive.Request{Action: redrive.ActionDiscard, Selector: redrive.Selector{Filter: &dlqstore.Filter{Q: q}}})
		if err != nil {
			t.Fatal(err)
		}
		return p.Count
	}
	if got := plan(admin, "failure"); got != len(fixtures) {
		t.Errorf("admin's plan = %d, want %d", got, len(fixtures))
	}
	if got := plan(olga, "failure"); got != 6 {
		t.Errorf("olga's plan = %d, want her 6", got)
	}
	if got := plan(olga, `"zoe muller"`); got != 0 {
		t.Errorf("olga's plan of the masked customer = %d, want 0", got)
	}
	if opts, err := svc.JobOptions(); err != nil || opts.MaxRate != redrive.DefaultMaxRate || opts.EditEnabled {
		t.Errorf("JobOptions = %+v (%v)", opts, err)
	}
}
