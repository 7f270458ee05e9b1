package dlqstoretest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

// redriven creates a redrive job of ids and records every one sent (their
// entries redriven), as the engine does.
func redriven(t *testing.T, s dlqstore.Backend, ids ...int64) int64 {
	t.Helper()
	ctx := context.Background()
	j, err := s.CreateJob(ctx, dlqstore.JobRecord{Action: "redrive", Access: access.ActionRedrive, State: dlqstore.JobRunning, Request: []byte("{}")},
		dlqstore.Selection{IDs: ids, Eligible: []dlqstore.Status{dlqstore.StatusDead}}, dlqstore.StatusRedriving)
	if err != nil {
		t.Fatal(err)
	}
	items, _, err := s.JobItems(ctx, j.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var outs []dlqstore.Outcome
	for _, it := range items {
		outs = append(outs, dlqstore.Outcome{Seq: it.Seq, EntryID: it.EntryID, State: dlqstore.ItemSent})
	}
	if err := s.CompleteItems(ctx, j.ID, outs, dlqstore.StatusRedriven, ""); err != nil {
		t.Fatal(err)
	}
	return j.ID
}

// provenance is what a redriven message carries when it dead-letters
// again (delivery.RedriveHeaders).
func provenance(job int64, from string) delivery.Headers {
	return delivery.Headers{
		{Key: delivery.HeaderRedriveJob, Value: []byte(strconv.FormatInt(job, 10))},
		{Key: delivery.HeaderRedriveCount, Value: []byte("1")},
		{Key: delivery.HeaderRedriveFrom, Value: []byte(from)},
	}
}

func mustEntry(t *testing.T, s dlqstore.ViewStore, id int64) dlqstore.Entry {
	t.Helper()
	e, err := s.Entry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A redriven message that dead-letters again is linked both ways to the
// entry it was redriven from, and counted once: the group counts
// messages, the counts keep the re-failed original apart from the
// redriven ones, and neither an index of the same record again, nor a
// status change or purge of the original, counts it twice.
func testRefailureLinksBothWays(t *testing.T, open Opener) {
	s, clk := setup(t, open)
	ctx := context.Background()
	fail := Spec{Tenant: "t1", Code: "E", Msg: "order 7 not found"}
	a, b, c := fail, fail, fail
	a.Off, b.Off, c.Off = 0, 1, 2
	IndexKafka(t, s, "orders.dlq", 0, a, b, c)
	const ea, eb, ec = 1, 2, 3
	job := redriven(t, s, ea, eb)

	// a's message fails again; so does a message that names an entry
	// outside the job's ledger (c): that one keeps only its job.
	back := fail
	back.Off, back.Headers = 0, provenance(job, "kafka:main/orders.dlq/0@0")
	stray := fail
	stray.Off, stray.Headers = 1, provenance(job, "kafka:main/orders.dlq/0@2")
	IndexKafka(t, s, "orders.dlq", 1, back, stray)
	const eBack, eStray = 4, 5
	if res := IndexKafka(t, s, "orders.dlq", 1, back); res.Duplicates != 1 {
		t.Fatalf("re-indexing the re-failure = %+v, want a duplicate", res)
	}

	got := mustEntry(t, s, eBack)
	if got.RefailureOf != ea || got.RedriveJob != job || got.Status != dlqstore.StatusDead {
		t.Errorf("re-failure: of %d, job %d, %s; want of %d, job %d, dead", got.RefailureOf, got.RedriveJob, got.Status, ea, job)
	}
	if e := mustEntry(t, s, eStray); e.RefailureOf != 0 || e.RedriveJob != job {
		t.Errorf("stray re-failure: of %d, job %d; want of none, job %d", e.RefailureOf, e.RedriveJob, job)
	}
	if e := mustEntry(t, s, ec); e.RefailedAs != 0 {
		t.Errorf("entry outside the job was linked to %d", e.RefailedAs)
	}
	orig, other := mustEntry(t, s, ea), mustEntry(t, s, eb)
	if orig.RefailedAs != eBack || orig.Status != dlqstore.StatusRedriven {
		t.Errorf("original: refailed as %d, %s; want %d, redriven", orig.RefailedAs, orig.Status, eBack)
	}
	now, watch := clk.Now(), 10*time.Minute
	for _, tc := range []struct {
		e    dlqstore.Entry
		at   time.Time
		want dlqstore.RedriveOutcome
	}{
		{orig, now, dlqstore.OutcomeFailedAgain},
		{other, now, dlqstore.OutcomeWatching},
		{other, now.Add(watch), dlqstore.OutcomeNotSeenAgain},
		{got, now, dlqstore.OutcomeNone},
	} {
		if o := tc.e.Outcome(tc.at, watch); o != tc.want {
			t.Errorf("entry %d outcome at %s = %q, want %q", tc.e.ID, tc.at, o, tc.want)
		}
	}

	// Five entries, four messages: c, b (redriven, not back), and the two
	// re-failures — a is counted as its re-failure.
	check := func(when string, messages, dead, redriven, failedAgain, resolved int) {
		t.Helper()
		for _, scope := range []*dlqstore.TenantScope{nil, {Tenants: []string{"t1"}}} {
			c, err := s.Counts(ctx, scope)
			if err != nil {
				t.Fatal(err)
			}
			if c.ByStatus[dlqstore.StatusDead] != dead || c.ByStatus[dlqstore.StatusRedriven] != redriven ||
				c.FailedAgain != failedAgain || c.ByStatus[dlqstore.StatusResolved] != resolved {
				t.Errorf("%s: counts (scope %v) = %v, failed again %d; want %d dead, %d redriven, %d failed again, %d resolved",
					when, scope, c.ByStatus, c.FailedAgain, dead, redriven, failedAgain, resolved)
			}
			g, err := s.Group(ctx, orig.GroupID, scope)
			if err != nil {
				t.Fatal(err)
			}
			gs, _, err := s.Groups(ctx, dlqstore.GroupFilter{Tenants: scope})
			if err != nil || len(gs) != 1 {
				t.Fatalf("groups = %+v, %v", gs, err)
			}
			for _, g := range []dlqstore.Group{g, gs[0]} {
				if g.Count != messages || g.FailedAgain != failedAgain || g.Open != dead {
					t.Errorf("%s: group (scope %v) count %d, failed again %d, open %d; want %d, %d, %d",
						when, scope, g.Count, g.FailedAgain, g.Open, messages, failedAgain, dead)
				}
			}
		}
	}
	check("after the re-failure", 4, 3, 1, 1, 0)
	if rs, n, err := s.Refailures(ctx, job, nil, 10); err != nil || n != 2 || len(rs) != 2 ||
		rs[0].Entry.ID != eBack || rs[0].Seq != 1 || rs[0].Entry.RefailureOf != ea || rs[0].Entry.DL.Error.Message != fail.Msg ||
		rs[1].Entry.ID != eStray || rs[1].Seq != 0 {
		t.Errorf("re-failures of job %d = %+v (%d), %v", job, rs, n, err)
	}
	if rs, n, _ := s.Refailures(ctx, job, &dlqstore.TenantScope{Tenants: []string{"t2"}}, 10); n != 0 || len(rs) != 0 {
		t.Errorf("t2 sees %d re-failures of a t1 job", n)
	}

	// Resolving the original and purging it later moves nothing back into
	// the group's count.
	if _, err := s.SetStatus(ctx, []int64{ea}, dlqstore.StatusResolved); err != nil {
		t.Fatal(err)
	}
	check("after resolving the original", 4, 3, 1, 1, 0)
	clk.Advance(time.Hour)
	if n, err := s.Purge(ctx, clk.Now()); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v", n, err)
	}
	check("after purging it", 4, 3, 1, 0, 0)
}

// A RabbitMQ location names no message: the message id picks the entry.
func testRefailureOfARabbitMQMessage(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	ctx := context.Background()
	rabbit := func(sp Spec) {
		t.Helper()
		sp.Broker, sp.Dest = delivery.BrokerRabbitMQ, "notify.dlq"
		if _, err := s.IndexRabbit(ctx, []dlqstore.IndexItem{sp.Item()}); err != nil {
			t.Fatal(err)
		}
	}
	rabbit(Spec{MsgID: "m-1", Death: 1, Tenant: "t1", Msg: "mailbox full"})
	rabbit(Spec{MsgID: "m-2", Death: 1, Tenant: "t1", Msg: "mailbox full"})
	job := redriven(t, s, 1, 2)
	from := delivery.LocationString(delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: "main", VHost: "/", Queue: "notify.dlq"})
	rabbit(Spec{MsgID: "m-2", Death: 1, Tenant: "t1", Msg: "mailbox full", Headers: provenance(job, from)})
	if e := mustEntry(t, s, 3); e.RefailureOf != 2 {
		t.Errorf("rabbitmq re-failure of %d, want 2", e.RefailureOf)
	}
	if a, b := mustEntry(t, s, 1), mustEntry(t, s, 2); a.RefailedAs != 0 || b.RefailedAs != 3 {
		t.Errorf("refailed as: 1→%d, 2→%d; want 0 and 3", a.RefailedAs, b.RefailedAs)
	}
}

// The rest of a stopped job is what it did not get through: the entries
// it did not send (failed, cancelled) and the re-failures of those it
// sent — not what it sent and did not come back, nor any other entry.
func testRestOfAJob(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	ctx := context.Background()
	var specs []Spec
	for i := range 5 {
		specs = append(specs, Spec{Off: int64(i), Tenant: "t1", Msg: "boom"})
	}
	IndexKafka(t, s, "orders.dlq", 0, specs...)
	j, err := s.CreateJob(ctx, dlqstore.JobRecord{Action: "redrive", Access: access.ActionRedrive, State: dlqstore.JobRunning, Request: []byte("{}")},
		dlqstore.Selection{IDs: []int64{1, 2, 3, 4}, Eligible: []dlqstore.Status{dlqstore.StatusDead}}, dlqstore.StatusRedriving)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteItems(ctx, j.ID, []dlqstore.Outcome{{Seq: 1, EntryID: 1, State: dlqstore.ItemSent}, {Seq: 2, EntryID: 2, State: dlqstore.ItemSent},
		{Seq: 3, EntryID: 3, State: dlqstore.ItemFailed, Error: "too large"}}, dlqstore.StatusRedriven, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelPending(ctx, j.ID, "canary failed"); err != nil {
		t.Fatal(err)
	}
	IndexKafka(t, s, "orders.dlq", 1, Spec{Off: 0, Tenant: "t1", Msg: "boom", Headers: provenance(j.ID, "kafka:main/orders.dlq/0@0")})
	rest := dlqstore.Selection{RestOf: j.ID, Eligible: []dlqstore.Status{dlqstore.StatusDead, dlqstore.StatusQuarantined}}
	p, err := s.PlanSelection(ctx, rest, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := IDs(p.Sample); p.Count != 3 || p.Ineligible != 0 || len(got) != 3 || got[0] != 3 || got[1] != 4 || got[2] != 6 {
		t.Errorf("rest of job %d = %d entries %v (%d ineligible), want 3, 4 and the re-failure 6", j.ID, p.Count, got, p.Ineligible)
	}
	rest.Scope = &dlqstore.TenantScope{Tenants: []string{"t2"}}
	if p, _ := s.PlanSelection(ctx, rest, 0); p.Count != 0 {
		t.Errorf("t2's rest of a t1 job = %d", p.Count)
	}
}

// A dead letter whose redrive provenance is hostile or garbled — a from
// header that is no location, names a negative offset, a RabbitMQ queue
// without a name, is 10 KB long, or names an entry of another job — is
// indexed like any other: it keeps its job, is linked to nothing, and
// leaves the redriven entries alone.
func testRefailureWithGarbledProvenance(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	fail := Spec{Tenant: "t1", Code: "E", Msg: "order 7 not found"}
	a, b := fail, fail
	a.Off, b.Off = 0, 1
	IndexKafka(t, s, "orders.dlq", 0, a, b)
	const ea, eb = 1, 2
	job := redriven(t, s, ea)
	redriven(t, s, eb) // another job: its entry is not job's to link
	froms := []string{"garbage", "kafka:main/orders.dlq/0@-5", "kafka:main/orders.dlq/x@0", "rabbitmq:main/%2F/",
		"kafka:main/" + strings.Repeat("o", 10_000) + "/0@0", "kafka:main/orders.dlq/0@1"} // the last: other's entry
	var specs []Spec
	for i, from := range froms {
		sp := fail
		sp.Off, sp.Headers = int64(i), provenance(job, from)
		specs = append(specs, sp)
	}
	if res := IndexKafka(t, s, "orders.dlq", 1, specs...); res.Inserted != len(froms) {
		t.Fatalf("indexing %d garbled re-failures = %+v", len(froms), res)
	}
	for i := range froms {
		id := int64(3 + i)
		if e := mustEntry(t, s, id); e.RefailureOf != 0 || e.RedriveJob != job || e.Status != dlqstore.StatusDead {
			t.Errorf("from %.40q: entry %d of %d, job %d, %s; want of none, job %d, dead", froms[i], id, e.RefailureOf, e.RedriveJob, e.Status, job)
		}
	}
	for _, id := range []int64{ea, eb} {
		if e := mustEntry(t, s, id); e.RefailedAs != 0 || e.Status != dlqstore.StatusRedriven {
			t.Errorf("redriven entry %d: refailed as %d, %s; want none, redriven", id, e.RefailedAs, e.Status)
		}
	}
}
