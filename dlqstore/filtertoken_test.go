package dlqstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
)

// The filter tokens of the full-text index only narrow a search: for many
// random filter + text + scope combinations, in every mode of the planner
// (small tunings force each one over a small index), every page — its ids,
// their order, its cursor — and the total are those of the same search
// without the tokens (Tuning.NoFilterTokens), and an exact total is the
// number of entries the pages hold (a capped one is a lower bound).
func TestFilterTokensAgreeWithSQL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlq.db")
	s := openAt(t, path, dlqstore.Options{})
	var (
		tenants  = []string{"", "acme", "globex", "initech"}
		types    = []string{"order.created", "payment.failed", "stock.reserved"}
		codes    = []string{"TIMEOUT", "NOT_FOUND", ""}
		origins  = []string{"orders", "payments"}
		messages = []string{"call timed out", "order not found", "timed out again", "deadlock found", "schema missing in registry"}
		topics   = []string{"orders.dlq", "payments.dlq", "audit.dlq"}
		clusters = []string{"main", "eu"}
	)
	r := rand.New(rand.NewPCG(16, 3))
	var rabbit []dlqstore.IndexItem
	for i := range 600 {
		sp := dlqstoretest.Spec{
			Off: int64(i), Tenant: tenants[r.IntN(len(tenants))], Type: types[r.IntN(len(types))], Code: codes[r.IntN(len(codes))],
			Msg: messages[r.IntN(len(messages))], Origin: origins[r.IntN(len(origins))], At: t0.Add(time.Duration(r.IntN(300)) * time.Minute),
		}
		if i%7 == 0 {
			sp.Broker, sp.Cluster, sp.Dest = delivery.BrokerRabbitMQ, "main", "orders.dead"
			sp.MsgID = fmt.Sprintf("m-%d", i)
			rabbit = append(rabbit, sp.Item())
			continue
		}
		sp.Cluster, sp.Dest = clusters[i%len(clusters)], topics[r.IntN(len(topics))]
		it := sp.Item()
		if _, err := s.IndexKafka(context.Background(), sp.Cluster, sp.Dest, 0, []dlqstore.IndexItem{it}, sp.Off+1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.IndexRabbit(context.Background(), rabbit); err != nil {
		t.Fatal(err)
	}
	var resolved []int64
	for id := int64(1); id <= 600; id += 5 {
		resolved = append(resolved, id)
	}
	if _, err := s.SetStatus(context.Background(), resolved, dlqstore.StatusResolved); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitText(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Each mode of the planner, with and without the tokens.
	modes := []struct {
		name string
		tu   dlqstore.Tuning
	}{
		{"drive", dlqstore.Tuning{}},
		{"member", dlqstore.Tuning{FTSDriveMax: 1, FTSMemberMax: 100000, ChunkRangeMax: 0.001}},
		{"member, exact count", dlqstore.Tuning{FTSDriveMax: 1, FTSMemberMax: 100000, ChunkRangeMax: 0.001, ExactCountMax: 100000}},
		{"probe", dlqstore.Tuning{FTSDriveMax: 1, FTSMemberMax: 2, ChunkRangeMax: 0.001, CountScanMax: 20}},
		{"chunks", dlqstore.Tuning{FTSDriveMax: 1, FTSMemberMax: 100000, ChunkFirst: 3, ChunkRangeMax: 1e9}},
		{"chunks, bounded count", dlqstore.Tuning{FTSDriveMax: 1, FTSMemberMax: 100000, ChunkFirst: 3, ChunkRangeMax: 1e9, ExactSetMax: 1, CountScanMax: 20}},
		{"chunks then match set", dlqstore.Tuning{FTSDriveMax: 1, FTSMemberMax: 100000, ChunkFirst: 2, ChunkScanMax: 5, ChunkRangeMax: 1e9}},
		// With a filter the matches are loaded up to ExactSetMax; past it
		// the rest is counted, loaded for a member walk, or asked of the
		// full-text index.
		{"member, loaded in two", dlqstore.Tuning{FTSDriveMax: 1, FTSMemberMax: 100000, ChunkRangeMax: 0.001, ExactSetMax: 3}},
		{"probe, loaded in part", dlqstore.Tuning{FTSDriveMax: 1, FTSMemberMax: 5, ChunkRangeMax: 0.001, CountScanMax: 20, ExactSetMax: 3}},
		{"chunks then match set, loaded in part", dlqstore.Tuning{FTSDriveMax: 1, FTSMemberMax: 100000, ChunkFirst: 2, ChunkScanMax: 5, ChunkRangeMax: 1e9, ExactSetMax: 3}},
	}
	type pair struct{ with, without *dlqstore.Store }
	stores := make([]pair, len(modes))
	for k, m := range modes {
		without := m.tu
		without.NoFilterTokens = true
		stores[k] = pair{openAt(t, path, dlqstore.Options{Tuning: m.tu}), openAt(t, path, dlqstore.Options{Tuning: without})}
	}

	resource := func() string {
		if r.IntN(4) == 0 {
			return access.RabbitQueue("/", "orders.dead").Name
		}
		return access.KafkaTopic(clusters[r.IntN(len(clusters))], origins[r.IntN(len(origins))]).Name
	}
	pick := func(vs []string) string { return vs[r.IntN(len(vs))] }
	queries := []string{"timed", `"timed out"`, "found", "deadlock OR registry", "timed NOT again", "message:found", "code:timeout",
		"orders", "order*", "acme", "exception:x OR timed", "payments"}
	randomFilter := func() dlqstore.Filter {
		f := dlqstore.Filter{Q: pick(queries), Limit: 4 + r.IntN(30), NoPayloadText: r.IntN(4) == 0}
		if r.IntN(3) == 0 {
			f.Tenant = pick(tenants[1:])
		}
		if r.IntN(3) == 0 {
			f.EventType = pick(types)
		}
		if r.IntN(4) == 0 {
			f.ErrorCode = pick(codes[:2])
		}
		if r.IntN(4) == 0 {
			f.Destination = pick(append(slices.Clone(topics), "orders.dead"))
		}
		if r.IntN(5) == 0 {
			f.Cluster = pick(clusters)
		}
		if r.IntN(5) == 0 {
			f.Broker = pick([]string{delivery.BrokerKafka, delivery.BrokerRabbitMQ})
		}
		if r.IntN(3) == 0 {
			f.Status = []dlqstore.Status{dlqstore.StatusDead}
			if r.IntN(2) == 0 {
				f.Status = append(f.Status, dlqstore.StatusResolved)
			}
		}
		if r.IntN(6) == 0 {
			f.From = t0.Add(time.Duration(r.IntN(200)) * time.Minute)
			f.To = f.From.Add(time.Duration(1+r.IntN(150)) * time.Minute)
		}
		switch r.IntN(5) {
		case 0: // a tenant list
			f.Tenants = &dlqstore.TenantScope{Tenants: []string{pick(tenants[1:]), pick(tenants[1:])}}
		case 1: // exact resources: resource tokens too
			a, b := pick(tenants[1:]), pick(tenants[1:])
			f.Tenants = &dlqstore.TenantScope{Tenants: []string{a, b}, Rules: []access.Rule{
				{Resources: []string{resource()}, Tenants: []string{a}}, {Resources: []string{resource(), resource()}, Tenants: []string{b}}}}
		case 2: // a pattern: no resource tokens
			f.Tenants = &dlqstore.TenantScope{All: true, Rules: []access.Rule{{Resources: []string{"kafka:*/orders", resource()}}}}
		case 3: // every tenant, exact resources
			f.Tenants = &dlqstore.TenantScope{All: true, Rules: []access.Rule{{Resources: []string{resource()}}}}
		}
		return f
	}
	// walk returns every page of f, the ids of each, and the first
	// page's total.
	walk := func(s *dlqstore.Store, f dlqstore.Filter) (pages [][]int64, cursors []string, total int, capped bool) {
		p := dlqstoretest.Find(t, s, f)
		total, capped = p.Total, p.TotalCapped
		for {
			pages = append(pages, dlqstoretest.IDs(p.Entries))
			cursors = append(cursors, p.Next)
			if p.Next == "" {
				return pages, cursors, total, capped
			}
			f.Cursor = p.Next
			p = dlqstoretest.Find(t, s, f)
		}
	}
	found := 0
	exact := map[string]int{} // mode → searches of more than one page with an exact total
	for i := range 120 {
		f := randomFilter()
		for k, m := range modes {
			want, wantCursors, wantTotal, wantCapped := walk(stores[k].without, f)
			got, gotCursors, total, capped := walk(stores[k].with, f)
			if !slices.EqualFunc(got, want, slices.Equal) || !slices.Equal(gotCursors, wantCursors) {
				t.Fatalf("search %d (%+v) in %s mode: pages %v, want %v", i, f, m.name, got, want)
			}
			n := 0
			for _, p := range got {
				n += len(p)
			}
			if !wantCapped && wantTotal != n {
				t.Fatalf("search %d (%+v) in %s mode without tokens: total %d of %d entries", i, f, m.name, wantTotal, n)
			}
			if !capped && total != n || capped && total > n {
				t.Errorf("search %d (%+v) in %s mode: total %d (capped %v), the pages hold %d", i, f, m.name, total, capped, n)
			}
			if k == 0 && n > 0 {
				found++
			}
			if len(got) > 1 && !capped {
				exact[m.name]++
			}
		}
	}
	// Not vacuous: most searches find something.
	if found < 50 {
		t.Errorf("only %d of 120 searches found entries", found)
	}
	// The chunked page counts a small filter's matches exactly from the
	// match set, where the bounded count only gives a lower bound.
	if exact["chunks"] <= exact["chunks, bounded count"] {
		t.Errorf("exact totals of searches over several pages: %d with the match set count, %d bounded; want more with the match set", exact["chunks"], exact["chunks, bounded count"])
	}
}

// A search never reads the filters column: typing an entry's token, a
// prefix of the tokens or "filters:" finds nothing and is no error, while
// the filter the token stands for still narrows a text search.
func TestSearchNeverMatchesFilterTokens(t *testing.T) {
	s, _ := mustOpen(t)
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 0,
		dlqstoretest.Spec{Off: 0, Tenant: "acme", Type: "order.created", Code: "TIMEOUT", Msg: "call timed out"},
		dlqstoretest.Spec{Off: 1, Tenant: "globex", Type: "order.created", Code: "TIMEOUT", Msg: "call timed out"})
	tok := dlqstore.FilterTokenForTest('t', "acme")
	for _, q := range []string{tok, strings.ToUpper(tok), "zf*", "zft*", "filters:" + tok, "filters:(" + tok + ")", `"` + tok + `"`, "filters:acme"} {
		for _, noPayload := range []bool{false, true} {
			p, err := s.FindEntries(context.Background(), dlqstore.Filter{Q: q, NoPayloadText: noPayload})
			if err != nil {
				t.Errorf("search %q: %v", q, err)
				continue
			}
			if len(p.Entries) != 0 || p.Total != 0 {
				t.Errorf("search %q (no payload text %v) found %v", q, noPayload, dlqstoretest.IDs(p.Entries))
			}
		}
	}
	// The tenant is in the payload's envelope: found as text there, and
	// as a filter with text.
	if p := dlqstoretest.Find(t, s, dlqstore.Filter{Q: "acme"}); !slices.Equal(dlqstoretest.IDs(p.Entries), []int64{1}) {
		t.Errorf("search acme: %v, want [1]", dlqstoretest.IDs(p.Entries))
	}
	if p := dlqstoretest.Find(t, s, dlqstore.Filter{Q: "timed", Tenant: "globex"}); !slices.Equal(dlqstoretest.IDs(p.Entries), []int64{2}) || p.Total != 1 {
		t.Errorf("timed in tenant globex: %v (total %d), want [2]", dlqstoretest.IDs(p.Entries), p.Total)
	}
}
