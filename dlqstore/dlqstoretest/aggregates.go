package dlqstoretest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

func testTenantScopeOfGroupsAndCounts(t *testing.T, open Opener) {
	s, clk := setup(t, open)
	// dlqstore.Group A: 3 in t1, 5 in t2; group B: only t2 (4); group C: no tenant (2).
	var specs []Spec
	off := int64(0)
	add := func(n int, tenant, msg, dest string) {
		for i := 0; i < n; i++ {
			specs = append(specs, Spec{Off: off, Tenant: tenant, Msg: msg, Code: "E", At: T0().Add(time.Duration(off) * time.Minute), Dest: dest})
			off++
		}
	}
	add(3, "t1", "order 1 not found", "a.dlq")
	add(5, "t2", "order 2 not found", "b.dlq")
	add(4, "t2", "secret t2 failure", "b.dlq")
	add(2, "", "shared failure", "a.dlq")
	for _, dest := range []string{"a.dlq", "b.dlq"} {
		var items []dlqstore.IndexItem
		for _, sp := range specs {
			if sp.Dest == dest {
				items = append(items, sp.Item())
			}
		}
		if _, err := s.IndexKafka(context.Background(), "main", dest, 0, items, off); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	t1 := &dlqstore.TenantScope{Tenants: []string{"t1"}}
	gs, _, err := s.Groups(ctx, dlqstore.GroupFilter{Tenants: t1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, g := range gs {
		got[g.Title] = g.Count
		if slices.Contains(g.Tenants, "t2") {
			t.Errorf("t1 scope sees tenant t2 in group %q", g.Title)
		}
	}
	if want := map[string]int{"order <num> not found": 3, "shared failure": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("t1 groups = %v, want %v", got, want)
	}
	all, _, err := s.Groups(ctx, dlqstore.GroupFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].Title != "order <num> not found" || all[0].Count != 8 || all[0].Open != 8 || !slices.Equal(all[0].Tenants, []string{"t1", "t2"}) {
		t.Fatalf("all groups = %+v", all)
	}
	var secret int64
	for _, g := range all {
		if g.Title == "secret t2 failure" {
			secret = g.ID
		}
	}
	if _, err := s.Group(ctx, secret, t1); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("t1 reads a t2-only group: %v", err)
	}
	ga, err := s.Group(ctx, all[0].ID, t1)
	if err != nil || ga.Count != 3 || !ga.LastSeen.Equal(T0().Add(2*time.Minute)) {
		t.Errorf("group A in t1 scope = %+v, %v", ga, err)
	}
	trends, err := s.Trends(ctx, []int64{all[0].ID, secret}, t1, T0(), T0().Add(10*time.Minute), 5*time.Minute)
	if err != nil || !slices.Equal(trends[all[0].ID], []int{3, 0}) || !slices.Equal(trends[secret], []int{0, 0}) {
		t.Errorf("t1 trends = %v, %v; want [3 0] for A, [0 0] for the t2-only group", trends, err)
	}
	trends, _ = s.Trends(ctx, []int64{all[0].ID}, nil, T0(), T0().Add(10*time.Minute), 5*time.Minute)
	if !slices.Equal(trends[all[0].ID], []int{5, 3}) {
		t.Errorf("trend = %v, want [5 3]", trends[all[0].ID])
	}
	c, err := s.Counts(ctx, t1)
	if err != nil || c.ByStatus[dlqstore.StatusDead] != 5 || c.ByDestination["b.dlq"] != 0 || c.ByDestination["a.dlq"] != 5 {
		t.Errorf("t1 counts = %+v, %v", c, err)
	}
	c, _ = s.Counts(ctx, nil)
	if c.ByStatus[dlqstore.StatusDead] != 14 || c.ByDestination["b.dlq"] != 9 {
		t.Errorf("counts = %+v", c)
	}
	if p := Find(t, s, dlqstore.Filter{Tenants: t1, Q: "secret"}); len(p.Entries) != 0 || p.Total != 0 {
		t.Errorf("t1 finds t2 entries by text: %d", p.Total)
	}
	if gs, _, _ := s.Groups(ctx, dlqstore.GroupFilter{Tenants: &dlqstore.TenantScope{}}); len(gs) != 0 {
		t.Errorf("empty scope sees %d groups", len(gs))
	}
	// dlqstore.Triage filter and snooze expiry.
	if _, err := s.SetTriage(ctx, secret, dlqstore.Triage{State: dlqstore.TriageSnoozed, SnoozedUntil: clk.Now().Add(time.Hour), UpdatedBy: "ann"}); err != nil {
		t.Fatal(err)
	}
	if gs, _, _ := s.Groups(ctx, dlqstore.GroupFilter{State: dlqstore.TriageSnoozed}); len(gs) != 1 || gs[0].ID != secret || gs[0].Triage.UpdatedBy != "ann" {
		t.Errorf("snoozed groups = %+v", gs)
	}
	clk.Advance(2 * time.Hour)
	if gs, _, _ := s.Groups(ctx, dlqstore.GroupFilter{State: dlqstore.TriageOpen}); len(gs) != 3 {
		t.Errorf("after the snooze ran out, open groups = %d, want 3", len(gs))
	}
	// Paging by last seen.
	p1, next, err := s.Groups(ctx, dlqstore.GroupFilter{Sort: "last_seen", Limit: 2})
	if err != nil || len(p1) != 2 || next == "" {
		t.Fatalf("page 1 = %v, %q, %v", p1, next, err)
	}
	p2, next2, _ := s.Groups(ctx, dlqstore.GroupFilter{Sort: "last_seen", Limit: 2, Cursor: next})
	if len(p2) != 1 || next2 != "" || !p1[1].LastSeen.After(p2[0].LastSeen) {
		t.Fatalf("page 2 = %v, %q", p2, next2)
	}
}

// A principal bound to some topics sees entries, totals, groups, counts
// and trends of those topics only, computed by the store.
func testResourceRulesLimitEveryAggregate(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	ctx := context.Background()
	var specs []Spec
	off := int64(0)
	add := func(n int, origin, tenant, msg string) {
		for range n {
			specs = append(specs, Spec{Off: off, Origin: origin, Tenant: tenant, Msg: msg, Code: "E", At: T0().Add(time.Duration(off) * time.Minute)})
			off++
		}
	}
	add(3, "orders", "t1", "order 1 not found")   // group A
	add(4, "payments", "t1", "order 2 not found") // group A, other topic
	add(2, "payments", "t1", "card declined")     // group B, only payments
	add(5, "orders", "t2", "order 3 not found")   // group A, other tenant
	IndexKafka(t, s, "mixed.dlq", 0, specs...)

	// kafka:main/orders* in t1 (as an operator bound to it would be).
	sc := &dlqstore.TenantScope{Tenants: []string{"t1"}, Rules: []access.Rule{{Resources: []string{"kafka:main/orders*"}, Tenants: []string{"t1"}}}}
	p := Find(t, s, dlqstore.Filter{Tenants: sc, Limit: 2})
	if p.Total != 3 || p.TotalCapped || len(p.Entries) != 2 {
		t.Fatalf("orders-only page: total %d capped %v, %d entries; want 3 exact", p.Total, p.TotalCapped, len(p.Entries))
	}
	for _, e := range p.Entries {
		if e.Resource != "kafka:main/orders" || e.Tenant != "t1" {
			t.Errorf("entry %d of %s/%s is outside the rule", e.ID, e.Resource, e.Tenant)
		}
	}
	if p := Find(t, s, dlqstore.Filter{Tenants: sc, Q: "declined"}); p.Total != 0 || len(p.Entries) != 0 {
		t.Errorf("text search finds %d entries of a topic outside the rule", p.Total)
	}
	gs, _, err := s.Groups(ctx, dlqstore.GroupFilter{Tenants: sc})
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Count != 3 || gs[0].Open != 3 || !slices.Equal(gs[0].Tenants, []string{"t1"}) {
		t.Fatalf("groups under the rule = %+v, want one group of 3", gs)
	}
	all, _, _ := s.Groups(ctx, dlqstore.GroupFilter{})
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
	if tr, err := s.Trends(ctx, []int64{gs[0].ID, declined}, sc, T0(), T0().Add(20*time.Minute), 10*time.Minute); err != nil ||
		!slices.Equal(tr[gs[0].ID], []int{3, 0}) || !slices.Equal(tr[declined], []int{0, 0}) {
		t.Errorf("trends under the rule = %v, %v; want [3 0], and [0 0] for the group outside it", tr, err)
	}
	c, err := s.Counts(ctx, sc)
	if err != nil || c.ByStatus[dlqstore.StatusDead] != 3 || c.ByDestination["mixed.dlq"] != 3 {
		t.Errorf("counts under the rule = %+v, %v", c, err)
	}
	// Two rules are a union; a rule with every tenant sees t2 too.
	sc2 := &dlqstore.TenantScope{All: true, Rules: []access.Rule{
		{Resources: []string{"kafka:main/payments"}, Tenants: []string{"t1"}},
		{Resources: []string{"kafka:*/orders"}},
	}}
	if p := Find(t, s, dlqstore.Filter{Tenants: sc2}); p.Total != 14 {
		t.Errorf("union of rules: total %d, want 14", p.Total)
	}
	if p := Find(t, s, dlqstore.Filter{Tenants: &dlqstore.TenantScope{All: true, Rules: []access.Rule{{Resources: []string{"kafka:other/*"}}}}}); p.Total != 0 {
		t.Errorf("a rule on another cluster sees %d entries", p.Total)
	}
	if p := Find(t, s, dlqstore.Filter{Tenants: &dlqstore.TenantScope{All: true, Rules: []access.Rule{}}}); p.Total != 0 {
		t.Errorf("empty rules see %d entries", p.Total)
	}
	// '[' in a pattern is literal, as in access.MatchResource.
	if p := Find(t, s, dlqstore.Filter{Tenants: &dlqstore.TenantScope{All: true, Rules: []access.Rule{{Resources: []string{"kafka:main/[o]rders"}}}}}); p.Total != 0 {
		t.Errorf("'[' acted as a class: %d entries", p.Total)
	}
	// dlqstore.Counts and gauges follow status changes per resource.
	if n, err := s.SetStatus(ctx, IDs(p.Entries), dlqstore.StatusResolved); err != nil || n != 2 {
		t.Fatal(n, err)
	}
	if c, _ := s.Counts(ctx, sc); c.ByStatus[dlqstore.StatusDead] != 1 || c.ByStatus[dlqstore.StatusResolved] != 2 {
		t.Errorf("counts under the rule after resolving 2 = %+v", c.ByStatus)
	}
	g, _ := s.EntryGauges(ctx)
	got := map[dlqstore.Status]int{}
	for _, x := range g {
		if x.Cluster != "main" || x.Destination != "mixed.dlq" {
			t.Errorf("gauge %+v", x)
		}
		got[x.Status] += x.Count
	}
	if got[dlqstore.StatusDead] != 12 || got[dlqstore.StatusResolved] != 2 {
		t.Errorf("gauges = %v, want 12 dead and 2 resolved", got)
	}
}

func testTriageValidation(t *testing.T, open Opener) {
	s, clk := setup(t, open)
	IndexKafka(t, s, "d", 0, Spec{Off: 0, Msg: "x"})
	ctx := context.Background()
	tests := []struct {
		name string
		tr   dlqstore.Triage
		code string
	}{
		{"ack without owner", dlqstore.Triage{State: dlqstore.TriageAcknowledged}, delivery.EINVALID},
		{"snooze without time", dlqstore.Triage{State: dlqstore.TriageSnoozed}, delivery.EINVALID},
		{"snooze into the past", dlqstore.Triage{State: dlqstore.TriageSnoozed, SnoozedUntil: clk.Now().Add(-time.Minute)}, delivery.EINVALID},
		{"unknown", dlqstore.Triage{State: "ignored"}, delivery.EINVALID},
		{"ack", dlqstore.Triage{State: dlqstore.TriageAcknowledged, Owner: "bob", Note: "on it"}, ""},
		{"resolve", dlqstore.Triage{State: dlqstore.TriageResolved}, ""},
		{"snooze", dlqstore.Triage{State: dlqstore.TriageSnoozed, SnoozedUntil: clk.Now().Add(time.Hour)}, ""},
		{"reopen", dlqstore.Triage{State: dlqstore.TriageOpen}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := s.SetTriage(ctx, 1, tt.tr)
			if delivery.ErrorCode(err) != tt.code {
				t.Fatalf("SetTriage = %v, want code %q", err, tt.code)
			}
			if err == nil && (g.Triage.State != tt.tr.State || g.Triage.Owner != tt.tr.Owner || !g.Triage.UpdatedAt.Equal(clk.Now())) {
				t.Fatalf("triage = %+v", g.Triage)
			}
		})
	}
	if _, err := s.SetTriage(ctx, 42, dlqstore.Triage{State: dlqstore.TriageOpen}); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Fatalf("unknown group: %v", err)
	}
}

func testPurgeNeverTouchesUnresolved(t *testing.T, open Opener) {
	s, clk := setup(t, open)
	var specs []Spec
	for i := 0; i < 2500; i++ {
		specs = append(specs, Spec{Off: int64(i), Msg: fmt.Sprintf("failure kind %d", i%3), Tenant: "t1"})
	}
	IndexKafka(t, s, "d", 0, specs...)
	ctx := context.Background()
	var resolve, discard []int64
	for id := int64(1); id <= 2500; id++ {
		switch id % 5 {
		case 0:
			resolve = append(resolve, id)
		case 1:
			discard = append(discard, id)
		}
	}
	s.SetStatus(ctx, resolve, dlqstore.StatusResolved)
	s.SetStatus(ctx, discard, dlqstore.StatusDiscarded)
	s.SetStatus(ctx, []int64{2, 7}, dlqstore.StatusRedriven)
	s.SetStatus(ctx, []int64{3}, dlqstore.StatusQuarantined)
	// Everything is old, even the dead ones.
	clk.Advance(90 * 24 * time.Hour)
	n, err := s.Purge(ctx, clk.Now().Add(-30*24*time.Hour))
	if err != nil || n != 1000 {
		t.Fatalf("Purge = %d, %v; want 1000", n, err)
	}
	c, _ := s.Counts(ctx, nil)
	if c.ByStatus[dlqstore.StatusResolved] != 0 || c.ByStatus[dlqstore.StatusDiscarded] != 0 || c.ByStatus[dlqstore.StatusDead] != 1497 || c.ByStatus[dlqstore.StatusRedriven] != 2 || c.ByStatus[dlqstore.StatusQuarantined] != 1 {
		t.Fatalf("counts after purge = %v", c.ByStatus)
	}
	// (That bodies go with their entries is the SQLite store's own test.)
	if got := Find(t, s, dlqstore.Filter{}).Total; got != 1500 {
		t.Fatalf("entries = %d, want 1500", got)
	}
	if p := Find(t, s, dlqstore.Filter{Q: "ids:5 OR ids:6 OR ids:2"}); !slices.Equal(IDs(p.Entries), []int64{2}) {
		t.Fatalf("full-text rows of purged entries remain: %v", IDs(p.Entries))
	}
	gs, _, _ := s.Groups(ctx, dlqstore.GroupFilter{})
	sum := 0
	for _, g := range gs {
		sum += g.Count
	}
	if sum != 1500 {
		t.Fatalf("group counts = %d after purge, want 1500", sum)
	}
	// A recent resolution is kept.
	s.SetStatus(ctx, []int64{8}, dlqstore.StatusResolved)
	if n, _ := s.Purge(ctx, clk.Now().Add(-30*24*time.Hour)); n != 0 {
		t.Fatalf("recently resolved entry purged")
	}
}

// Trends counts a whole page of groups in one call: each group's failures
// per bucket by last failure time, buckets [from+k·step, next) with the
// last one cut at to, over the scope only, and a zero trend for a group
// the scope has nothing of (or that does not exist).
func testTrendsOfManyGroupsInOneCall(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	ctx := context.Background()
	const groups = 30
	var specs []Spec
	off := int64(0)
	add := func(g int, tenant string, at time.Time) {
		specs = append(specs, Spec{Off: off, Tenant: tenant, Code: fmt.Sprintf("E_%c%c", 'A'+g/26, 'A'+g%26),
			Msg: fmt.Sprintf("cause %c%c failed", 'a'+g/26, 'a'+g%26), At: at})
		off++
	}
	// Group g: two t1 failures at T0+g minutes, one t2 failure 30 s later.
	for g := range groups {
		at := T0().Add(time.Duration(g) * time.Minute)
		add(g, "t1", at)
		add(g, "t1", at)
		add(g, "t2", at.Add(30*time.Second))
	}
	// Group 0 again: in the last, partial bucket, and at to itself (out).
	add(0, "t1", T0().Add(31*time.Minute))
	add(0, "t1", T0().Add(32*time.Minute))
	add(0, "t1", T0().Add(-time.Second)) // before from (out)
	IndexKafka(t, s, "many.dlq", 0, specs...)

	all, _, err := s.Groups(ctx, dlqstore.GroupFilter{Limit: 500})
	if err != nil || len(all) != groups {
		t.Fatalf("groups = %d (%v), want %d", len(all), err, groups)
	}
	idOf := map[string]int64{}
	ids := []int64{999_999} // no such group
	for _, g := range all {
		idOf[g.ErrorCode] = g.ID
		ids = append(ids, g.ID)
	}
	from, to, step := T0(), T0().Add(32*time.Minute), 5*time.Minute // 7 buckets, the last 2 minutes
	for _, tc := range []struct {
		name     string
		scope    *dlqstore.TenantScope
		perGroup int // failures of group g in bucket g/5
		late     int // group 0's in the last, partial bucket
	}{
		{"every tenant", nil, 3, 1},
		{"tenant t1", &dlqstore.TenantScope{Tenants: []string{"t1"}}, 2, 1},
		{"tenant t2", &dlqstore.TenantScope{Tenants: []string{"t2"}}, 1, 0},
		{"nothing", &dlqstore.TenantScope{}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Trends(ctx, ids, tc.scope, from, to, step)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(ids) {
				t.Errorf("trends of %d groups, want one per id asked (%d)", len(got), len(ids))
			}
			for g := range groups {
				code := fmt.Sprintf("E_%c%c", 'A'+g/26, 'A'+g%26)
				w := make([]int, 7)
				w[g/5] = tc.perGroup
				if g == 0 {
					w[6] = tc.late
				}
				if gotG := got[idOf[code]]; !slices.Equal(gotG, w) {
					t.Errorf("trend of group %s = %v, want %v", code, gotG, w)
				}
			}
			if z := got[999_999]; !slices.Equal(z, make([]int, 7)) {
				t.Errorf("trend of a group that does not exist = %v, want 7 zeros", z)
			}
		})
	}
	for _, tc := range []struct {
		name     string
		ids      []int64
		from, to time.Time
		step     time.Duration
	}{
		{"no step", ids, from, to, 0},
		{"to before from", ids, to, from, step},
		{"too many buckets", ids, from, from.Add(10 * 24 * time.Hour), time.Second},
		{"too many groups", make([]int64, 501), from, to, step},
	} {
		if _, err := s.Trends(ctx, tc.ids, nil, tc.from, tc.to, tc.step); delivery.ErrorCode(err) != delivery.EINVALID {
			t.Errorf("%s: %v, want EINVALID", tc.name, err)
		}
	}
}
