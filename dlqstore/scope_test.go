package dlqstore

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/sqldb"
)

// A principal bound to some topics sees entries, totals, groups, counts
// and trends of those topics only, computed by the store.
func TestResourceRulesLimitEveryAggregate(t *testing.T) {
	s, _ := mustOpen(t)
	ctx := context.Background()
	var specs []spec
	off := int64(0)
	add := func(n int, origin, tenant, msg string) {
		for range n {
			specs = append(specs, spec{off: off, origin: origin, tenant: tenant, msg: msg, code: "E", at: t0.Add(time.Duration(off) * time.Minute)})
			off++
		}
	}
	add(3, "orders", "t1", "order 1 not found")   // group A
	add(4, "payments", "t1", "order 2 not found") // group A, other topic
	add(2, "payments", "t1", "card declined")     // group B, only payments
	add(5, "orders", "t2", "order 3 not found")   // group A, other tenant
	indexKafka(t, s, "mixed.dlq", 0, specs...)

	// kafka:main/orders* in t1 (as an operator bound to it would be).
	sc := &TenantScope{Tenants: []string{"t1"}, Rules: []access.Rule{{Resources: []string{"kafka:main/orders*"}, Tenants: []string{"t1"}}}}
	p := find(t, s, Filter{Tenants: sc, Limit: 2})
	if p.Total != 3 || p.TotalCapped || len(p.Entries) != 2 {
		t.Fatalf("orders-only page: total %d capped %v, %d entries; want 3 exact", p.Total, p.TotalCapped, len(p.Entries))
	}
	for _, e := range p.Entries {
		if e.Resource != "kafka:main/orders" || e.Tenant != "t1" {
			t.Errorf("entry %d of %s/%s is outside the rule", e.ID, e.Resource, e.Tenant)
		}
	}
	if p := find(t, s, Filter{Tenants: sc, Q: "declined"}); p.Total != 0 || len(p.Entries) != 0 {
		t.Errorf("text search finds %d entries of a topic outside the rule", p.Total)
	}
	gs, _, err := s.Groups(ctx, GroupFilter{Tenants: sc})
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Count != 3 || gs[0].Open != 3 || !slices.Equal(gs[0].Tenants, []string{"t1"}) {
		t.Fatalf("groups under the rule = %+v, want one group of 3", gs)
	}
	all, _, _ := s.Groups(ctx, GroupFilter{})
	var declined int64
	for _, g := range all {
		if g.Title == "card declined" {
			declined = g.ID
		}
	}
	if _, err := s.Group(ctx, declined, sc); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("a group with entries only outside the rule is readable: %v", err)
	}
	if g, err := s.Group(ctx, gs[0].ID, sc); err != nil || g.Count != 3 {
		t.Errorf("group under the rule = %+v, %v", g, err)
	}
	if tr, err := s.Trend(ctx, gs[0].ID, sc, t0, t0.Add(20*time.Minute), 10*time.Minute); err != nil || !slices.Equal(tr, []int{3, 0}) {
		t.Errorf("trend under the rule = %v, %v; want [3 0]", tr, err)
	}
	c, err := s.Counts(ctx, sc)
	if err != nil || c.ByStatus[StatusDead] != 3 || c.ByDestination["mixed.dlq"] != 3 {
		t.Errorf("counts under the rule = %+v, %v", c, err)
	}
	// Two rules are a union; a rule with every tenant sees t2 too.
	sc2 := &TenantScope{All: true, Rules: []access.Rule{
		{Resources: []string{"kafka:main/payments"}, Tenants: []string{"t1"}},
		{Resources: []string{"kafka:*/orders"}},
	}}
	if p := find(t, s, Filter{Tenants: sc2}); p.Total != 14 {
		t.Errorf("union of rules: total %d, want 14", p.Total)
	}
	if p := find(t, s, Filter{Tenants: &TenantScope{All: true, Rules: []access.Rule{{Resources: []string{"kafka:other/*"}}}}}); p.Total != 0 {
		t.Errorf("a rule on another cluster sees %d entries", p.Total)
	}
	if p := find(t, s, Filter{Tenants: &TenantScope{All: true, Rules: []access.Rule{}}}); p.Total != 0 {
		t.Errorf("empty rules see %d entries", p.Total)
	}
	// '[' in a pattern is literal, as in access.MatchResource.
	if p := find(t, s, Filter{Tenants: &TenantScope{All: true, Rules: []access.Rule{{Resources: []string{"kafka:main/[o]rders"}}}}}); p.Total != 0 {
		t.Errorf("'[' acted as a class: %d entries", p.Total)
	}
	// Counts and gauges follow status changes per resource.
	if n, err := s.SetStatus(ctx, ids(p.Entries), StatusResolved); err != nil || n != 2 {
		t.Fatal(n, err)
	}
	if c, _ := s.Counts(ctx, sc); c.ByStatus[StatusDead] != 1 || c.ByStatus[StatusResolved] != 2 {
		t.Errorf("counts under the rule after resolving 2 = %+v", c.ByStatus)
	}
	g, _ := s.EntryGauges(ctx)
	got := map[Status]int{}
	for _, x := range g {
		if x.Cluster != "main" || x.Destination != "mixed.dlq" {
			t.Errorf("gauge %+v", x)
		}
		got[x.Status] += x.Count
	}
	if got[StatusDead] != 12 || got[StatusResolved] != 2 {
		t.Errorf("gauges = %v, want 12 dead and 2 resolved", got)
	}
}

// Entries stored before migration 2 get their resource from the origin in
// their record, and their group stats are rebuilt with it.
func TestMigrationBackfillsResource(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dlq.db")
	db, err := sqldb.OpenWith(ctx, path, Migrations()[:1])
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO groups (id, fingerprint, title, count, first_seen, last_seen) VALUES (1, 'fp', 'boom', 3, 1, 3)`)
	type old struct {
		broker, cluster, vhost, dest, tenant, record string
	}
	rows := []old{
		{"kafka", "main", "", "orders.dlq", "t1", `{"origin":{"broker":"kafka","cluster":"east","topic":"orders"}}`},
		{"rabbitmq", "rmq", "/", "notify.dlq", "t1", `{"origin":{"broker":"rabbitmq","vhost":"/","queue":"notify"}}`},
		{"kafka", "main", "", "raw.dlq", "t2", `{"origin":{}}`},
	}
	for i, r := range rows {
		var part, off any
		if r.broker == "kafka" {
			part, off = 0, i
		}
		exec(`INSERT INTO entries (id, broker, cluster, vhost, destination, kpartition, koffset, tenant, fingerprint, group_id,
	first_failure_at, last_failure_at, indexed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'fp', 1, ?, ?, 1, 1)`,
			i+1, r.broker, r.cluster, r.vhost, r.dest, part, off, r.tenant, i+1, i+1)
		exec(`INSERT INTO entry_bodies (id, payload, record) VALUES (?, x'', ?)`, i+1, r.record)
		exec(`INSERT INTO group_stats VALUES (1, ?, ?, ?, '', 'dead', 1, ?, ?)`, r.tenant, r.broker, r.dest, i+1, i+1)
	}
	db.Close()

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []string{"kafka:east/orders", "rabbitmq:/notify", "kafka:main/raw.dlq"}
	for i, w := range want {
		e, err := s.Entry(ctx, int64(i+1))
		if err != nil || e.Resource != w {
			t.Errorf("entry %d resource = %q, %v; want %q", i+1, e.Resource, err, w)
		}
	}
	sc := &TenantScope{All: true, Rules: []access.Rule{{Resources: []string{"rabbitmq:/*", "kafka:east/*"}}}}
	c, err := s.Counts(ctx, sc)
	if err != nil || c.ByStatus[StatusDead] != 2 || c.ByDestination["raw.dlq"] != 0 {
		t.Errorf("counts after migration = %+v, %v", c, err)
	}
	var n int
	if err := s.db.QueryRow("SELECT count(*) FROM group_stats WHERE cluster != ''").Scan(&n); err != nil || n != 3 {
		t.Errorf("rebuilt group_stats rows with a cluster = %d, %v", n, err)
	}
}

// A job over a filter without conditions, by someone who sees everything,
// selects every eligible entry.
func TestSelectionWithoutConditions(t *testing.T) {
	s, _ := mustOpen(t)
	indexKafka(t, s, "a.dlq", 0, spec{off: 0, msg: "x"}, spec{off: 1, msg: "y"})
	p, err := s.PlanSelection(context.Background(), Selection{Filter: &Filter{}, Eligible: []Status{StatusDead}}, 1)
	if err != nil || p.Count != 2 || len(p.Sample) != 1 {
		t.Fatalf("plan of an empty filter = %+v, %v", p, err)
	}
	// Full text in a job's filter.
	p, err = s.PlanSelection(context.Background(), Selection{Filter: &Filter{Q: "y"}, Eligible: []Status{StatusDead}}, 5)
	if err != nil || p.Count != 1 || len(p.Sample) != 1 || p.Sample[0].DL.Error.Message != "y" {
		t.Fatalf("plan of q=y = %+v, %v", p, err)
	}
	j, err := s.CreateJob(context.Background(), JobRecord{Action: "discard", Access: access.ActionDiscard, State: "running", Request: []byte("{}")},
		Selection{Filter: &Filter{Q: "x OR y"}, Eligible: []Status{StatusDead}}, "")
	if err != nil || j.Total != 2 {
		t.Fatalf("job of q='x OR y' = %+v, %v", j, err)
	}
}

// Every way a text search can run (driven by the full-text index, the
// matches in a temporary table, or probing per entry) gives the same
// pages, cursors and totals as the others.
func TestFullTextModesAgree(t *testing.T) {
	s, _ := mustOpen(t)
	var specs []spec
	words := []string{"timed out", "deadlock found", "order missing", "timed out again"}
	for i := range 120 {
		specs = append(specs, spec{off: int64(i), tenant: []string{"t1", "t2", "t3"}[i%3], typ: []string{"a.b", "c.d"}[i%2],
			msg: words[i%len(words)], code: "E", at: t0.Add(time.Duration(i%40) * time.Minute)})
	}
	indexKafka(t, s, "m.dlq", 0, specs...)
	if _, err := s.SetStatus(context.Background(), []int64{3, 4, 5, 30, 31}, StatusResolved); err != nil {
		t.Fatal(err)
	}
	filters := []Filter{
		{Q: "timed"},
		{Q: `"timed out"`, Limit: 7},
		{Q: "deadlock OR missing", Tenants: &TenantScope{Tenants: []string{"t1", "t2"}}, Limit: 5},
		{Q: "timed", Status: []Status{StatusDead}, EventType: "a.b", Limit: 4},
		{Q: "timed", Tenants: &TenantScope{Tenants: []string{"t3"}}, Status: []Status{StatusDead, StatusResolved}, Limit: 3},
		{Q: "out", From: t0.Add(10 * time.Minute), To: t0.Add(30 * time.Minute), Limit: 6},
		{Q: "timed", Tenants: &TenantScope{All: true, Rules: []access.Rule{{Resources: []string{"kafka:main/orders"}, Tenants: []string{"t2"}}}}, Limit: 4},
	}
	// Walk every page of f, returning the ids in order and the first total.
	walk := func(f Filter) ([]int64, int, bool) {
		var all []int64
		p := find(t, s, f)
		total, capped := p.Total, p.TotalCapped
		for {
			all = append(all, ids(p.Entries)...)
			if p.Next == "" {
				return all, total, capped
			}
			f.Cursor = p.Next
			p = find(t, s, f)
		}
	}
	defer func(d, m, c, f int) { ftsDriveMax, ftsMemberMax, chunkScanMax, chunkFirst = d, m, c, f }(ftsDriveMax, ftsMemberMax, chunkScanMax, chunkFirst)
	for i, f := range filters {
		ftsDriveMax, ftsMemberMax, chunkScanMax, chunkFirst = 20000, 300000, 50000, 512 // drive: few matches
		want, wantTotal, _ := walk(f)
		if len(want) == 0 {
			t.Fatalf("filter %d finds nothing", i)
		}
		for _, m := range []struct {
			name                     string
			drive, memb, scan, first int
		}{
			{"member", 1, 150000, 50000, 512}, {"probe", 1, 2, 50000, 512},
			{"small chunks", 1, 150000, 50000, 3}, {"chunks then match set", 1, 150000, 5, 2},
		} {
			ftsDriveMax, ftsMemberMax, chunkScanMax, chunkFirst = m.drive, m.memb, m.scan, m.first
			got, total, capped := walk(f)
			if !slices.Equal(got, want) {
				t.Errorf("filter %d in %s mode: %v, want %v", i, m.name, got, want)
			}
			if total > wantTotal || (!capped && total != wantTotal) || total < min(wantTotal, len(want)) && !capped {
				t.Errorf("filter %d in %s mode: total %d (capped %v), want %d", i, m.name, total, capped, wantTotal)
			}
		}
	}
}

// A big selection freezes a chunk per transaction, in entry order, and a
// job the process left half-frozen is ended with its entries given back.
func TestFreezeInChunks(t *testing.T) {
	defer func(o, c int) { freezeOneTx, freezeChunk = o, c }(freezeOneTx, freezeChunk)
	freezeOneTx, freezeChunk = 3, 2
	s, _ := mustOpen(t)
	ctx := context.Background()
	var specs []spec
	for i := range 7 {
		specs = append(specs, spec{off: int64(i), msg: "boom", tenant: "t1"})
	}
	indexKafka(t, s, "f.dlq", 0, specs...)
	if _, err := s.SetStatus(ctx, []int64{4}, StatusResolved); err != nil { // not eligible
		t.Fatal(err)
	}
	sel := Selection{Filter: &Filter{Destination: "f.dlq"}, Eligible: []Status{StatusDead}}
	j, err := s.CreateJob(ctx, JobRecord{Action: "redrive", Access: access.ActionRedrive, State: "running", Actor: "ada", Request: []byte("{}")}, sel, StatusRedriving)
	if err != nil {
		t.Fatal(err)
	}
	if j.Total != 6 || j.State != "running" || j.PerDestination["kafka:main/orders"] != 6 {
		t.Fatalf("job = %+v", j)
	}
	items, _, err := s.JobItems(ctx, j.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for i, it := range items {
		if it.Seq != i+1 || it.PrevStatus != StatusDead {
			t.Errorf("item %d = %+v", i, it)
		}
		got = append(got, it.EntryID)
	}
	if !slices.Equal(got, []int64{1, 2, 3, 5, 6, 7}) {
		t.Errorf("frozen entries = %v", got)
	}
	c, _ := s.Counts(ctx, nil)
	if c.ByStatus[StatusRedriving] != 6 || c.ByStatus[StatusResolved] != 1 {
		t.Errorf("counts = %v", c.ByStatus)
	}
	rec, _ := s.Job(ctx, j.ID)
	if rec.Total != 6 || rec.State != "running" {
		t.Errorf("stored job = %+v", rec)
	}

	// Left freezing by a stopped process: ended, entries back to dead.
	if _, err := s.db.Exec("UPDATE jobs SET state = ? WHERE id = ?", JobFreezing, j.ID); err != nil {
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
	if c.ByStatus[StatusDead] != 6 || c.ByStatus[StatusRedriving] != 0 {
		t.Errorf("counts after abandoning = %v", c.ByStatus)
	}
}
