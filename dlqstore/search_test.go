package dlqstore_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
)

// Every way a text search can run (driven by the full-text index, the
// matches in a temporary table, or probing per entry) gives the same
// pages, cursors and totals as the others.
func TestFullTextModesAgree(t *testing.T) {
	// One file, searched by stores of different tuning: each mode runs
	// over the same index.
	path := filepath.Join(t.TempDir(), "dlq.db")
	s := openAt(t, path, dlqstore.Options{})
	var specs []dlqstoretest.Spec
	words := []string{"timed out", "deadlock found", "order missing", "timed out again"}
	for i := range 120 {
		specs = append(specs, dlqstoretest.Spec{Off: int64(i), Tenant: []string{"t1", "t2", "t3"}[i%3], Type: []string{"a.b", "c.d"}[i%2],
			Msg: words[i%len(words)], Code: "E", At: t0.Add(time.Duration(i%40) * time.Minute)})
	}
	dlqstoretest.IndexKafka(t, s, "m.dlq", 0, specs...)
	if _, err := s.SetStatus(context.Background(), []int64{3, 4, 5, 30, 31}, dlqstore.StatusResolved); err != nil {
		t.Fatal(err)
	}
	filters := []dlqstore.Filter{
		{Q: "timed"},
		{Q: `"timed out"`, Limit: 7},
		{Q: "deadlock OR missing", Tenants: &dlqstore.TenantScope{Tenants: []string{"t1", "t2"}}, Limit: 5},
		{Q: "timed", Status: []dlqstore.Status{dlqstore.StatusDead}, EventType: "a.b", Limit: 4},
		{Q: "timed", Tenants: &dlqstore.TenantScope{Tenants: []string{"t3"}}, Status: []dlqstore.Status{dlqstore.StatusDead, dlqstore.StatusResolved}, Limit: 3},
		{Q: "out", From: t0.Add(10 * time.Minute), To: t0.Add(30 * time.Minute), Limit: 6},
		{Q: "timed", Tenants: &dlqstore.TenantScope{All: true, Rules: []access.Rule{{Resources: []string{"kafka:main/orders"}, Tenants: []string{"t2"}}}}, Limit: 4},
		// Kept off the payload column, every mode runs the same wrapped query.
		{Q: "timed", NoPayloadText: true, Limit: 4},
		{Q: "deadlock OR message:missing", NoPayloadText: true, Tenants: &dlqstore.TenantScope{Tenants: []string{"t1", "t2"}}, Limit: 5},
	}
	// Walk every page of f, returning the ids in order and the first total.
	walk := func(s *dlqstore.Store, f dlqstore.Filter) ([]int64, int, bool) {
		var all []int64
		p := dlqstoretest.Find(t, s, f)
		total, capped := p.Total, p.TotalCapped
		for {
			all = append(all, dlqstoretest.IDs(p.Entries)...)
			if p.Next == "" {
				return all, total, capped
			}
			f.Cursor = p.Next
			p = dlqstoretest.Find(t, s, f)
		}
	}
	modes := []struct {
		name                     string
		drive, memb, scan, first int
	}{
		{"member", 1, 150000, 50000, 512}, {"probe", 1, 2, 50000, 512},
		{"small chunks", 1, 150000, 50000, 3}, {"chunks then match set", 1, 150000, 5, 2},
	}
	stores := make([]*dlqstore.Store, len(modes))
	for k, m := range modes {
		stores[k] = openAt(t, path, dlqstore.Options{Tuning: dlqstore.Tuning{FTSDriveMax: m.drive, FTSMemberMax: m.memb, ChunkScanMax: m.scan, ChunkFirst: m.first}})
	}
	for i, f := range filters {
		want, wantTotal, _ := walk(s, f) // the default tuning: drive, few matches
		if len(want) == 0 {
			t.Fatalf("filter %d finds nothing", i)
		}
		for k, m := range modes {
			got, total, capped := walk(stores[k], f)
			if !slices.Equal(got, want) {
				t.Errorf("filter %d in %s mode: %v, want %v", i, m.name, got, want)
			}
			if total > wantTotal || (!capped && total != wantTotal) || total < min(wantTotal, len(want)) && !capped {
				t.Errorf("filter %d in %s mode: total %d (capped %v), want %d", i, m.name, total, capped, wantTotal)
			}
		}
	}
}
