package dlqstore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
)

// A file whose search index lacks its entries — as migration 9 leaves one,
// having created the index anew with more columns — gets them back from
// the text indexer after Open; RebuildText returns once they are all in,
// and every column comes back: the code's words, the exception's
// camel-case words, the DLQ topic. (textindex_test.go steps the walk:
// new entries first, then the older ones newest first, TextPending
// meanwhile.)
func TestRebuildTextFillsTheSearchIndex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dlq.db")
	s := openAt(t, path, dlqstore.Options{})
	timeout := func(off int64) dlqstoretest.Spec {
		return dlqstoretest.Spec{Off: off, Tenant: "t1", Code: "UPSTREAM_TIMEOUT", Msg: "gateway did not answer within 2700ms",
			Exc: "java.net.SocketTimeoutException"}
	}
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 0, timeout(0), timeout(1), timeout(2), timeout(3), timeout(4))
	s.Close()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM entries_fts; UPDATE text_progress SET above = 5, below = 5"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = openAt(t, path, dlqstore.Options{})
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 0, timeout(5))
	if err := s.RebuildText(ctx); err != nil {
		t.Fatal(err)
	}
	find := func(q string) ([]int64, bool) {
		t.Helper()
		p := dlqstoretest.Find(t, s, dlqstore.Filter{Q: q})
		return slices.Sorted(slices.Values(dlqstoretest.IDs(p.Entries))), p.TextPending
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
