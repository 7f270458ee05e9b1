package dlqstore_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
)

// A big selection freezes a chunk per transaction, in entry order, and a
// job the process left half-frozen is ended with its entries given back.
func TestFreezeInChunks(t *testing.T) {
	s, _ := mustOpenWith(t, dlqstore.Options{Tuning: dlqstore.Tuning{FreezeOneTx: 3, FreezeChunk: 2}})
	ctx := context.Background()
	var specs []dlqstoretest.Spec
	for i := range 7 {
		specs = append(specs, dlqstoretest.Spec{Off: int64(i), Msg: "boom", Tenant: "t1"})
	}
	dlqstoretest.IndexKafka(t, s, "f.dlq", 0, specs...)
	if _, err := s.SetStatus(ctx, []int64{4}, dlqstore.StatusResolved); err != nil { // not eligible
		t.Fatal(err)
	}
	sel := dlqstore.Selection{Filter: &dlqstore.Filter{Destination: "f.dlq"}, Eligible: []dlqstore.Status{dlqstore.StatusDead}}
	j, err := s.CreateJob(ctx, dlqstore.JobRecord{Action: "redrive", Access: access.ActionRedrive, State: dlqstore.JobRunning, Actor: "ada", Request: []byte("{}")}, sel, dlqstore.StatusRedriving)
	if err != nil {
		t.Fatal(err)
	}
	if j.Total != 6 || j.State != "running" || j.PerTarget["kafka:main/orders"] != 6 {
		t.Fatalf("job = %+v", j)
	}
	items, _, err := s.JobItems(ctx, j.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for i, it := range items {
		if it.Seq != i+1 || it.PrevStatus != dlqstore.StatusDead {
			t.Errorf("item %d = %+v", i, it)
		}
		got = append(got, it.EntryID)
	}
	if !slices.Equal(got, []int64{1, 2, 3, 5, 6, 7}) {
		t.Errorf("frozen entries = %v", got)
	}
	c, _ := s.Counts(ctx, nil)
	if c.ByStatus[dlqstore.StatusRedriving] != 6 || c.ByStatus[dlqstore.StatusResolved] != 1 {
		t.Errorf("counts = %v", c.ByStatus)
	}
	rec, _ := s.Job(ctx, j.ID)
	if rec.Total != 6 || rec.State != "running" {
		t.Errorf("stored job = %+v", rec)
	}

	// Left freezing by a stopped process: ended, entries back to dead.
	if _, err := s.DB().Exec("UPDATE jobs SET state = ? WHERE id = ?", dlqstore.JobFreezing, j.ID); err != nil {
		t.Fatal(err)
	}
	ids, err := s.AbandonFreezing(ctx)
	if err != nil || !slices.Equal(ids, []int64{j.ID}) {
		t.Fatalf("abandoned %v, %v", ids, err)
	}
	rec, _ = s.Job(ctx, j.ID)
	if rec.State != "failed" || rec.FinishedAt.IsZero() || rec.Cancelled != 6 || !strings.Contains(rec.Error, "start it again") {
		t.Errorf("abandoned job = %+v", rec)
	}
	c, _ = s.Counts(ctx, nil)
	if c.ByStatus[dlqstore.StatusDead] != 6 || c.ByStatus[dlqstore.StatusRedriving] != 0 {
		t.Errorf("counts after abandoning = %v", c.ByStatus)
	}
}

// A big set is frozen a chunk per transaction: its scope covers every
// chunk (a t2 entry in the last one hides it from a t1 operator), and
// while it is still being frozen only an admin sees it.
func TestJobScopeOfAChunkedFreeze(t *testing.T) {
	s, _ := mustOpenWith(t, dlqstore.Options{Tuning: dlqstore.Tuning{FreezeOneTx: 3, FreezeChunk: 2}})
	ctx := context.Background()
	var specs []dlqstoretest.Spec
	for i := range 7 {
		specs = append(specs, dlqstoretest.Spec{Off: int64(i), Msg: "boom", Tenant: "t1"})
	}
	specs[6].Tenant = "t2"
	dlqstoretest.IndexKafka(t, s, "f.dlq", 0, specs...)
	t1 := dlqstore.JobViewer{Rules: map[access.Action][]access.Rule{access.ActionRedrive: {{Resources: []string{"kafka:main/orders"}, Tenants: []string{"t1"}}}}}
	admin := dlqstore.JobViewer{Rules: map[access.Action][]access.Rule{access.ActionRedrive: {{Resources: []string{"*"}}}}}
	freeze := func(ids ...int64) int64 {
		t.Helper()
		j, err := s.CreateJob(ctx, dlqstore.JobRecord{Action: "redrive", Access: access.ActionRedrive, State: dlqstore.JobRunning, Actor: "ada", Request: []byte("{}")},
			dlqstore.Selection{IDs: ids, Eligible: []dlqstore.Status{dlqstore.StatusDead}}, dlqstore.StatusRedriving)
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	mixed := freeze(1, 2, 3, 4, 5, 6, 7) // four transactions; t2 in the last
	if _, err := s.ViewJob(ctx, mixed, t1); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("t1 operator sees a job whose last chunk holds a t2 entry: %v", err)
	}
	if _, err := s.ViewJob(ctx, mixed, admin); err != nil {
		t.Errorf("admin: %v", err)
	}
	if err := s.CancelPending(ctx, mixed, "test"); err != nil {
		t.Fatal(err)
	}
	ours := freeze(1, 2, 3, 4, 5) // t1 only, three transactions
	if _, err := s.ViewJob(ctx, ours, t1); err != nil {
		t.Fatalf("t1 operator does not see a t1 job: %v", err)
	}
	// What the first chunk's transaction commits: the job freezing, its
	// scope not yet complete.
	if _, err := s.DB().Exec("UPDATE jobs SET state = ?, scoped = 0 WHERE id = ?", dlqstore.JobFreezing, ours); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ViewJob(ctx, ours, t1); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("t1 operator sees a job still freezing: %v", err)
	}
	if got := dlqstoretest.VisibleJobs(t, s, t1, 10); len(got) != 0 {
		t.Errorf("t1 operator lists %v while it freezes", got)
	}
	if _, err := s.ViewJob(ctx, ours, admin); err != nil {
		t.Errorf("admin does not see a freezing job: %v", err)
	}
	// Ended after a restart, it is judged by the scope of what it froze.
	if _, err := s.AbandonFreezing(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ViewJob(ctx, ours, t1); err != nil {
		t.Errorf("t1 operator does not see the abandoned t1 job: %v", err)
	}
}
