package dlqstore_test

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
)

var (
	dead, redriving = dlqstore.StatusDead, dlqstore.StatusRedriving
	redriveJob      = dlqstore.JobRecord{Action: "redrive", Access: access.ActionRedrive, State: dlqstore.JobRunning, Actor: "ada", Request: []byte("{}")}
	discardJob      = dlqstore.JobRecord{Action: "discard", Access: access.ActionDiscard, State: dlqstore.JobRunning, Actor: "ada", Request: []byte("{}")}
)

// listed returns the ids of the entries a status filter lists, every page.
func listed(t *testing.T, s *dlqstore.Store, sts ...dlqstore.Status) []int64 {
	t.Helper()
	ids, _ := listedApart(t, s, sts...)
	return ids
}

// listedApart is listed, and how many of them are not re-failed (the
// counts by status keep re-failed entries apart).
func listedApart(t *testing.T, s *dlqstore.Store, sts ...dlqstore.Status) ([]int64, int) {
	t.Helper()
	var ids []int64
	notRefailed := 0
	f := dlqstore.Filter{Status: sts, Limit: 2}
	for {
		p, err := s.FindEntries(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			if !slices.Contains(sts, e.Status) {
				t.Errorf("filter %v lists entry %d as %s", sts, e.ID, e.Status)
			}
			ids = append(ids, e.ID)
			if e.RefailedAs == 0 {
				notRefailed++
			}
		}
		if p.Next == "" {
			break
		}
		f.Cursor = p.Next
	}
	slices.Sort(ids)
	return ids, notRefailed
}

// countsAgree checks that the counts by status are what the status filters
// list, for every status (re-failed entries apart).
func countsAgree(t *testing.T, s *dlqstore.Store) map[dlqstore.Status]int {
	t.Helper()
	c, err := s.Counts(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range dlqstore.Statuses() {
		if _, n := listedApart(t, s, st); n != c.ByStatus[st] {
			t.Errorf("%s: counted %d, listed %d", st, c.ByStatus[st], n)
		}
	}
	return c.ByStatus
}

// A redrive holds its entries in its ledger: while pending they show, list
// and count as redriving although the freeze wrote none of them; no other
// job and no status change takes them; a redrive takes none that another
// job has pending; and as the job records outcomes they move to redriven or
// back to the status they kept.
func TestARedriveHoldsItsEntriesInItsLedger(t *testing.T) {
	s, _ := mustOpen(t)
	ctx := context.Background()
	var specs []dlqstoretest.Spec
	for i := range 6 {
		specs = append(specs, dlqstoretest.Spec{Off: int64(i), Msg: "boom", Tenant: "t1"})
	}
	dlqstoretest.IndexKafka(t, s, "f.dlq", 0, specs...)
	var updated int64
	if err := s.DB().QueryRow("SELECT max(updated_at) FROM entries").Scan(&updated); err != nil {
		t.Fatal(err)
	}
	sel := func(ids ...int64) dlqstore.Selection {
		return dlqstore.Selection{IDs: ids, Eligible: []dlqstore.Status{dead, dlqstore.StatusQuarantined}}
	}
	// A discard (which holds nothing) has 5 and 6 pending: the redrive
	// leaves them to it.
	if _, err := s.CreateJob(ctx, discardJob, sel(5, 6), ""); err != nil {
		t.Fatal(err)
	}
	j, err := s.CreateJob(ctx, redriveJob, sel(1, 2, 3, 4, 5, 6), redriving)
	if err != nil || j.Total != 4 {
		t.Fatalf("redrive = %+v, %v; want the 4 entries no other job has", j, err)
	}
	if got := listed(t, s, redriving); !slices.Equal(got, []int64{1, 2, 3, 4}) {
		t.Errorf("redriving lists %v, want [1 2 3 4]", got)
	}
	if got := listed(t, s, dead); !slices.Equal(got, []int64{5, 6}) {
		t.Errorf("dead lists %v, want [5 6]", got)
	}
	if got := listed(t, s, dead, redriving); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("dead or redriving lists %v, want all six", got)
	}
	if e, err := s.Entry(ctx, 2); err != nil || e.Status != redriving {
		t.Errorf("entry 2 = %s, %v; want redriving", e.Status, err)
	}
	if c := countsAgree(t, s); c[redriving] != 4 || c[dead] != 2 {
		t.Errorf("counts %v, want 4 redriving and 2 dead", c)
	}
	// The freeze wrote the ledger, not the entries.
	var written int
	if err := s.DB().QueryRow("SELECT count(*) FROM entries WHERE status != 'dead' OR updated_at != ?", updated).Scan(&written); err != nil || written != 0 {
		t.Errorf("%d entries written by the freeze, %v", written, err)
	}

	// Held: no other job, holding or not, and no status change takes them.
	if _, err := s.CreateJob(ctx, redriveJob, sel(1, 2, 3, 4), redriving); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("a second redrive of held entries: %v, want EINVALID (nothing to take)", err)
	}
	if _, err := s.CreateJob(ctx, discardJob, sel(1, 2), ""); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("a discard of held entries: %v, want EINVALID", err)
	}
	if n, err := s.SetStatus(ctx, []int64{1, 6}, dlqstore.StatusResolved); err != nil || n != 1 {
		t.Errorf("resolving a held and a free entry changed %d, %v; want only the free one", n, err)
	}
	if e, _ := s.Entry(ctx, 1); e.Status != redriving {
		t.Errorf("held entry 1 = %s after a status change, want redriving", e.Status)
	}

	// Outcomes: 1 and 2 sent, 3 failed, 4 cancelled.
	outs := []dlqstore.Outcome{{Seq: 1, EntryID: 1, State: dlqstore.ItemSent}, {Seq: 2, EntryID: 2, State: dlqstore.ItemSent},
		{Seq: 3, EntryID: 3, State: dlqstore.ItemFailed, Error: "broker down"}}
	if err := s.CompleteItems(ctx, j.ID, outs, dlqstore.StatusRedriven, "redriven by job"); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelPending(ctx, j.ID, "stopped"); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int64]dlqstore.Status{1: dlqstore.StatusRedriven, 2: dlqstore.StatusRedriven, 3: dead, 4: dead} {
		if e, _ := s.Entry(ctx, id); e.Status != want {
			t.Errorf("entry %d = %s, want %s", id, e.Status, want)
		}
	}
	if c := countsAgree(t, s); c[redriving] != 0 || c[dlqstore.StatusRedriven] != 2 || c[dead] != 3 || c[dlqstore.StatusResolved] != 1 {
		t.Errorf("counts after the job %v, want 2 redriven, 3 dead, 1 resolved", c)
	}
	// Let go: another redrive takes what came back.
	if j2, err := s.CreateJob(ctx, redriveJob, sel(1, 2, 3, 4), redriving); err != nil || j2.Total != 2 {
		t.Errorf("redrive of what came back = %+v, %v; want 3 and 4", j2, err)
	}
}

// A redrive left unfinished by the version before ledger holds held its
// pending entries by writing redriving into them: the migration gives it
// the hold and the entries back the status its ledger kept, so they still
// show and count as redriving, and a cancel returns them to it.
func TestLedgerHoldMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dlq.db")
	s := openAt(t, path, dlqstore.Options{})
	var specs []dlqstoretest.Spec
	for i := range 5 {
		specs = append(specs, dlqstoretest.Spec{Off: int64(i), Msg: "boom", Tenant: "t1"})
	}
	dlqstoretest.IndexKafka(t, s, "f.dlq", 0, specs...)
	if _, err := s.SetStatus(ctx, []int64{4}, dlqstore.StatusQuarantined); err != nil {
		t.Fatal(err)
	}
	j, err := s.CreateJob(ctx, redriveJob, dlqstore.Selection{IDs: []int64{1, 2, 3, 4}, Eligible: []dlqstore.Status{dead, dlqstore.StatusQuarantined}}, redriving)
	if err != nil {
		t.Fatal(err)
	}
	// What version 9 left: the entries in redriving, no hold column (and
	// none of the later migrations).
	for _, q := range []string{
		"UPDATE entries SET status = 'redriving' WHERE id <= 4",
		"ALTER TABLE jobs DROP COLUMN hold",
		"DROP TABLE body_dicts",
		"DELETE FROM schema_migrations WHERE owner = 'dlqstore' AND version >= 10",
	} {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()

	s = openAt(t, path, dlqstore.Options{})
	var own []string
	rows, err := s.DB().Query("SELECT status FROM entries ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			t.Fatal(err)
		}
		own = append(own, st)
	}
	rows.Close()
	if want := []string{"dead", "dead", "dead", "quarantined", "dead"}; !slices.Equal(own, want) {
		t.Errorf("entries' own statuses after the migration %v, want %v (the ledger's)", own, want)
	}
	if got := listed(t, s, redriving); !slices.Equal(got, []int64{1, 2, 3, 4}) {
		t.Errorf("redriving lists %v after the migration, want [1 2 3 4]", got)
	}
	if c := countsAgree(t, s); c[redriving] != 4 || c[dead] != 1 {
		t.Errorf("counts after the migration %v", c)
	}
	if err := s.CancelPending(ctx, j.ID, "stopped"); err != nil {
		t.Fatal(err)
	}
	if c := countsAgree(t, s); c[redriving] != 0 || c[dead] != 4 || c[dlqstore.StatusQuarantined] != 1 {
		t.Errorf("counts after cancelling the migrated job %v, want 4 dead and 1 quarantined", c)
	}
}

// A redriven message can fail again before its job has recorded it sent
// (the consumer is fast, the batch still in flight): its original, still
// held, leaves the counts of redriving entries for those of re-failed
// ones, and when the job records it the counts still agree with the lists.
func TestRefailureOfAHeldEntry(t *testing.T) {
	s, _ := mustOpen(t)
	ctx := context.Background()
	fail := dlqstoretest.Spec{Tenant: "t1", Code: "E", Msg: "order 7 not found"}
	a, b := fail, fail
	a.Off, b.Off = 0, 1
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 0, a, b)
	j, err := s.CreateJob(ctx, redriveJob, dlqstore.Selection{IDs: []int64{1, 2}, Eligible: []dlqstore.Status{dead}}, redriving)
	if err != nil {
		t.Fatal(err)
	}
	back := fail
	back.Off, back.Headers = 0, delivery.Headers{
		{Key: delivery.HeaderRedriveJob, Value: []byte(strconv.FormatInt(j.ID, 10))},
		{Key: delivery.HeaderRedriveCount, Value: []byte("1")},
		{Key: delivery.HeaderRedriveFrom, Value: []byte("kafka:main/orders.dlq/0@0")},
	}
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 1, back)
	if e, _ := s.Entry(ctx, 1); e.RefailedAs != 3 || e.Status != redriving {
		t.Fatalf("original = %s, refailed as %d; want redriving, refailed as 3", e.Status, e.RefailedAs)
	}
	c := countsAgree(t, s)
	total, err := s.Counts(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c[redriving] != 1 || c[dead] != 1 || total.FailedAgain != 1 {
		t.Errorf("counts with the original held and re-failed %v, failed again %d; want 1 redriving (2), 1 dead (3), 1 failed again (1)", c, total.FailedAgain)
	}
	if err := s.CompleteItems(ctx, j.ID, []dlqstore.Outcome{{Seq: 1, EntryID: 1, State: dlqstore.ItemSent}, {Seq: 2, EntryID: 2, State: dlqstore.ItemSent}}, dlqstore.StatusRedriven, ""); err != nil {
		t.Fatal(err)
	}
	c = countsAgree(t, s)
	if total, _ = s.Counts(ctx, nil); c[redriving] != 0 || c[dlqstore.StatusRedriven] != 1 || total.FailedAgain != 1 {
		t.Errorf("counts after the job %v, failed again %d; want 1 redriven (2) and 1 failed again (1)", c, total.FailedAgain)
	}
}

// A redriven message can come back more than once — sent twice after a
// crash, or dead-lettered again by a second consumer — in one batch of the
// indexer or in later ones. Every copy is linked to its original, the
// original names the first, and it moves in the counts once: out of its
// group's messages and into failed again.
func TestARefailureThatArrivesTwiceMovesItsOriginalOnce(t *testing.T) {
	s, _ := mustOpen(t)
	ctx := context.Background()
	fail := dlqstoretest.Spec{Tenant: "t1", Code: "E", Msg: "order 7 not found"}
	var originals []dlqstoretest.Spec
	for i := range 3 {
		o := fail
		o.Off = int64(i)
		originals = append(originals, o)
	}
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 0, originals...)
	j, err := s.CreateJob(ctx, redriveJob, dlqstore.Selection{IDs: []int64{1, 2, 3}, Eligible: []dlqstore.Status{dead}}, redriving)
	if err != nil {
		t.Fatal(err)
	}
	back := func(off, from int64) dlqstoretest.Spec {
		b := fail
		b.Off, b.Headers = off, delivery.Headers{
			{Key: delivery.HeaderRedriveJob, Value: []byte(strconv.FormatInt(j.ID, 10))},
			{Key: delivery.HeaderRedriveCount, Value: []byte("1")},
			{Key: delivery.HeaderRedriveFrom, Value: []byte("kafka:main/orders.dlq/0@" + strconv.FormatInt(from, 10))},
		}
		return b
	}
	// One batch: entry 1's message twice (4, 5), entry 2's once (6).
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 1, back(0, 0), back(1, 0), back(2, 1))
	// A later batch: entry 1's a third time (7), entry 2's a second (8).
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 1, back(3, 0), back(4, 1))

	for id, want := range map[int64]struct{ of, as int64 }{1: {0, 4}, 2: {0, 6}, 3: {0, 0}, 4: {1, 0}, 5: {1, 0}, 6: {2, 0}, 7: {1, 0}, 8: {2, 0}} {
		e, err := s.Entry(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.RefailureOf != want.of || e.RefailedAs != want.as {
			t.Errorf("entry %d: re-failure of %d, refailed as %d; want %d and %d", id, e.RefailureOf, e.RefailedAs, want.of, want.as)
		}
	}
	c := countsAgree(t, s)
	total, err := s.Counts(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c[redriving] != 1 || c[dead] != 5 || total.FailedAgain != 2 {
		t.Errorf("counts %v, failed again %d; want 1 redriving (3), 5 dead (4–8), 2 failed again (1, 2)", c, total.FailedAgain)
	}
	// The group: eight entries, of which two are counted as their re-failures.
	gs, _, err := s.Groups(ctx, dlqstore.GroupFilter{})
	if err != nil || len(gs) != 1 {
		t.Fatalf("groups %v: %v", gs, err)
	}
	g, err := s.Group(ctx, gs[0].ID, &dlqstore.TenantScope{Tenants: []string{"t1"}})
	if err != nil {
		t.Fatal(err)
	}
	if gs[0].Count != 6 || g.Count != 6 || g.FailedAgain != 2 {
		t.Errorf("group: %d messages in the list, %d in t1 with %d failed again; want 6, 6 and 2", gs[0].Count, g.Count, g.FailedAgain)
	}
}
