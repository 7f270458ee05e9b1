package dlqstore_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
)

// A file whose search index lacks its entries — as migration 7 leaves one,
// having created the index anew with more columns — answers a search with
// what the index holds and says so (TextPending) until RebuildText has put
// the older entries back, a batch a transaction; an entry indexed
// meanwhile is found at once. Every column comes back: the code's words,
// the exception's camel-case words, the DLQ topic.
func TestRebuildTextFillsTheSearchIndex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dlq.db")
	s := openAt(t, path, dlqstore.Options{})
	timeout := func(off int64) dlqstoretest.Spec {
		return dlqstoretest.Spec{Off: off, Tenant: "t1", Code: "UPSTREAM_TIMEOUT", Msg: "gateway did not answer within 2700ms",
			Exc: "java.net.SocketTimeoutException"}
	}
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 0, timeout(0), timeout(1), timeout(2), timeout(3), timeout(4))
	if _, err := s.DB().Exec("DELETE FROM entries_fts"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openAt(t, path, dlqstore.Options{Tuning: dlqstore.Tuning{TextRebuildBatch: 2}})
	find := func(q string) ([]int64, bool) {
		t.Helper()
		p := dlqstoretest.Find(t, s, dlqstore.Filter{Q: q})
		return slices.Sorted(slices.Values(dlqstoretest.IDs(p.Entries))), p.TextPending
	}
	if got, pending := find("timeout"); len(got) != 0 || !pending {
		t.Errorf("before the rebuild: %v, pending %v; want none, pending", got, pending)
	}
	if p := dlqstoretest.Find(t, s, dlqstore.Filter{Destination: "orders.dlq"}); p.TextPending || p.Total != 5 {
		t.Errorf("a search without text: total %d, pending %v; want 5, not pending", p.Total, p.TextPending)
	}
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 0, timeout(5))
	if got, pending := find("timeout"); !slices.Equal(got, []int64{6}) || !pending {
		t.Errorf("an entry indexed during the rebuild: %v, pending %v; want [6], pending", got, pending)
	}

	if err := s.RebuildText(ctx); err != nil {
		t.Fatal(err)
	}
	all := []int64{1, 2, 3, 4, 5, 6}
	for _, q := range []string{"timeout", "UPSTREAM_TIMEOUT", "upstream timeout", "exception:Timeout*", "orders.dlq", "2700ms"} {
		if got, pending := find(q); !slices.Equal(got, all) || pending {
			t.Errorf("after the rebuild, %q: %v, pending %v; want %v, not pending", q, got, pending, all)
		}
	}
	if n := countRows(t, s, "entries_fts"); n != 6 {
		t.Errorf("index rows = %d, want 6 (each entry once)", n)
	}
	if err := s.RebuildText(ctx); err != nil {
		t.Errorf("a second rebuild: %v", err)
	}

	// A restart finds nothing left to do.
	s.Close()
	s = openAt(t, path, dlqstore.Options{})
	if _, pending := find("timeout"); pending {
		t.Error("after a restart the rebuild is pending again")
	}
}
