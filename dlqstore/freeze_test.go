package dlqstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// One job per destination holds in the store: of two exclusive starts at
// once on one destination — here from two handles on the file, as two
// processes would be — one gets the job and the other ECONFLICT naming the
// job that has it; a job still freezing counts by its ledger so far; a
// start on another destination, or one not exclusive (forced), is not
// refused.
func TestExclusiveJobsOneDestination(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlq.db")
	s1 := openAt(t, path, dlqstore.Options{})
	s2 := openAt(t, path, dlqstore.Options{})
	ctx := context.Background()
	var specs []dlqstoretest.Spec
	for i := range 400 {
		specs = append(specs, dlqstoretest.Spec{Off: int64(i), Msg: "boom", Tenant: "t1"})
	}
	specs = append(specs, dlqstoretest.Spec{Off: 400, Msg: "boom", Tenant: "t1", Origin: "payments"})
	dlqstoretest.IndexKafka(t, s1, "f.dlq", 0, specs...)
	const orders = "kafka:main/orders"
	rec := dlqstore.JobRecord{Action: "redrive", Access: access.ActionRedrive, State: dlqstore.JobRunning, Actor: "ada", Request: []byte("{}")}
	exclusive := func(ids ...int64) dlqstore.Selection {
		return dlqstore.Selection{IDs: ids, Eligible: []dlqstore.Status{dlqstore.StatusDead}, Exclusive: true}
	}
	end := func(s *dlqstore.Store, id int64) {
		t.Helper()
		if err := s.CancelPending(ctx, id, "test"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetJobState(ctx, id, dlqstore.JobCancelled, "", true); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 20 {
		stores := []*dlqstore.Store{s1, s2}
		jobs := make([]dlqstore.JobRecord, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			lo := int64(round*20 + i*10 + 1)
			ids := []int64{lo, lo + 1, lo + 2, lo + 3, lo + 4, lo + 5, lo + 6, lo + 7, lo + 8, lo + 9}
			wg.Go(func() {
				jobs[i], errs[i] = stores[i].CreateJob(ctx, rec, exclusive(ids...), dlqstore.StatusRedriving)
			})
		}
		wg.Wait()
		won := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		if won < 0 || errs[1-won] == nil {
			t.Fatalf("round %d: %v, want one job and one refusal", round, errs)
		}
		var busy *dlqstore.BusyError
		if delivery.ErrorCode(errs[1-won]) != delivery.ECONFLICT || !errors.As(errs[1-won], &busy) || busy.Job != jobs[won].ID || busy.Target != orders {
			t.Fatalf("round %d: refusal %v, want ECONFLICT naming job %d on %s", round, errs[1-won], jobs[won].ID, orders)
		}
		if msg := delivery.ErrorMessage(errs[1-won]); strings.Contains(msg, strconv.FormatInt(jobs[won].ID, 10)) || !strings.Contains(msg, orders) {
			t.Errorf("round %d: message %q: it names the destination, not the job (the caller names it to whoever may see it)", round, msg)
		}
		if c, _ := s1.Counts(ctx, nil); c.ByStatus[dlqstore.StatusRedriving] != 10 {
			t.Fatalf("round %d: %d redriving, want the winner's 10: the refused start held nothing", round, c.ByStatus[dlqstore.StatusRedriving])
		}
		end(stores[won], jobs[won].ID)
	}

	// A job of another destination starts beside a running one; a forced
	// (not exclusive) one on the same destination too.
	first, err := s1.CreateJob(ctx, rec, exclusive(1, 2), dlqstore.StatusRedriving)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s2.CreateJob(ctx, rec, exclusive(401), dlqstore.StatusRedriving)
	if err != nil {
		t.Fatalf("a job on kafka:main/payments beside one on orders: %v", err)
	}
	forced, err := s2.CreateJob(ctx, rec, dlqstore.Selection{IDs: []int64{3}, Eligible: []dlqstore.Status{dlqstore.StatusDead}}, dlqstore.StatusRedriving)
	if err != nil {
		t.Fatalf("a forced job: %v", err)
	}
	for _, id := range []int64{first.ID, other.ID, forced.ID} {
		end(s1, id)
	}

	// A job still freezing (its destinations not yet recorded) holds the
	// destinations its ledger has so far.
	freezing, err := s1.CreateJob(ctx, rec, exclusive(5), dlqstore.StatusRedriving)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s1.DB().Exec("UPDATE jobs SET state = ?, destinations = '' WHERE id = ?", dlqstore.JobFreezing, freezing.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s2.CreateJob(ctx, rec, exclusive(6), dlqstore.StatusRedriving)
	var busy *dlqstore.BusyError
	if !errors.As(err, &busy) || busy.Job != freezing.ID {
		t.Fatalf("beside a job still freezing on orders: %v, want it named busy", err)
	}
}
