package dlqstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
)

// The SQLite store passes the contract's conformance suite; the tests
// below are about what is particular to it: its file, schema and
// migrations, transactions, how it stores records, its search modes and
// how it freezes big selections.
func TestConformance(t *testing.T) {
	dlqstoretest.TestBackend(t, func(t *testing.T, now func() time.Time) dlqstore.Backend {
		s, err := dlqstore.Open(context.Background(), filepath.Join(t.TempDir(), "dlq.db"), dlqstore.Options{Now: now})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

var t0 = dlqstoretest.T0()

// mustOpen opens a store in a new file, its clock an hour after t0.
func mustOpen(t *testing.T) (*dlqstore.Store, *deliverytest.Clock) {
	t.Helper()
	return mustOpenWith(t, dlqstore.Options{})
}

// mustOpenWith is mustOpen with options (Now is the returned clock's).
func mustOpenWith(t *testing.T, opts dlqstore.Options) (*dlqstore.Store, *deliverytest.Clock) {
	t.Helper()
	clk := deliverytest.NewClock(t0.Add(time.Hour))
	opts.Now = clk.Now
	return openAt(t, filepath.Join(t.TempDir(), "dlq.db"), opts), clk
}

// openAt opens the store at path, closed when t ends.
func openAt(t *testing.T, path string, opts dlqstore.Options) *dlqstore.Store {
	t.Helper()
	s, err := dlqstore.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func countRows(t *testing.T, s *dlqstore.Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMigratesEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dlq.db")
	for i := 0; i < 2; i++ { // the second open finds the schema in place
		s, err := dlqstore.Open(context.Background(), path, dlqstore.Options{})
		if err != nil {
			t.Fatalf("dlqstore.Open #%d: %v", i, err)
		}
		var v int
		var mode string
		if err := s.DB().QueryRow("SELECT max(version) FROM schema_migrations").Scan(&v); err != nil || v != len(dlqstore.Migrations()) {
			t.Fatalf("schema version = %d, %v; want %d", v, err, len(dlqstore.Migrations()))
		}
		if err := s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal mode = %q, %v; want wal", mode, err)
		}
		for _, tbl := range []string{"entries", "entry_bodies", "entries_fts", "kafka_offsets", "groups", "group_stats"} {
			countRows(t, s, tbl)
		}
		s.Close()
	}
}

// failAfter is a context whose Err turns non-nil after n checks: the
// batch fails half-way, after some rows are written inside the transaction.
type failAfter struct {
	context.Context
	mu sync.Mutex
	n  int
}

func (c *failAfter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	if c.n < 0 {
		return context.Canceled
	}
	return nil
}

func TestIndexKafkaFailedBatchLeavesNeitherEntriesNorOffset(t *testing.T) {
	s, _ := mustOpen(t)
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 0, dlqstoretest.Spec{Off: 0, Msg: "a"}, dlqstoretest.Spec{Off: 1, Msg: "b"})
	before := map[string]int{}
	for _, tbl := range []string{"entries", "entry_bodies", "groups", "group_stats"} {
		before[tbl] = countRows(t, s, tbl)
	}
	var items []dlqstore.IndexItem
	for i := int64(2); i < 10; i++ {
		items = append(items, dlqstoretest.Spec{Dest: "orders.dlq", Off: i, Msg: fmt.Sprintf("new failure kind %c", 'a'+i)}.Item())
	}
	// Cancelled after 5 rows are in the transaction.
	_, err := s.IndexKafka(&failAfter{Context: context.Background(), n: 5}, "main", "orders.dlq", 0, items, 10)
	if err == nil {
		t.Fatal("IndexKafka with a context cancelled mid-batch succeeded")
	}
	// A constraint error half-way: an offset outside the batch's range.
	bad := append(items[:3:3], dlqstoretest.Spec{Dest: "orders.dlq", Off: 20}.Item())
	if _, err := s.IndexKafka(context.Background(), "main", "orders.dlq", 0, bad, 10); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Fatalf("offset beyond next offset: %v, want EINVALID", err)
	}
	offs, _ := s.KafkaOffsets(context.Background(), "main")
	if got := offs[dlqstore.TopicPartition{"orders.dlq", 0}]; got != 2 {
		t.Fatalf("offset after failed batches = %d, want 2", got)
	}
	for tbl, n := range before {
		if got := countRows(t, s, tbl); got != n {
			t.Errorf("%s rows = %d after failed batches, want %d", tbl, got, n)
		}
	}
	if p := dlqstoretest.Find(t, s, dlqstore.Filter{Q: "kind"}); len(p.Entries) != 0 {
		t.Errorf("full-text rows of a failed batch are searchable: %d", len(p.Entries))
	}
	// The retry stores all of it.
	res, err := s.IndexKafka(context.Background(), "main", "orders.dlq", 0, items, 10)
	if err != nil || res.Inserted != 8 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
}

// A stack trace that a header carries verbatim is stored once, in the
// header's copy, and restored in both places (the rest of the round trip
// is the suite's EntryRoundTripsHostileInput).
func TestStackIsStoredOnce(t *testing.T) {
	s, _ := mustOpen(t)
	it := dlqstoretest.Spec{Dest: "d", Off: 0, Msg: "boom"}.Item()
	stack := "java.lang.IllegalStateException: boom\n\tat com.acme.Orders.handle(Orders.java:42)\n\tat java.base/java.lang.Thread.run(Thread.java:1583)"
	it.DL.Error.Stack = stack
	it.DL.Headers = append(it.DL.Headers, delivery.Header{Key: "kafka_dlt-exception-stacktrace", Value: []byte(stack)})
	if _, err := s.IndexKafka(context.Background(), "main", "d", 0, []dlqstore.IndexItem{it}, 1); err != nil {
		t.Fatal(err)
	}
	e, err := s.Entry(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var record string
	s.DB().QueryRow("SELECT record FROM entry_bodies WHERE id = 1").Scan(&record)
	if e.DL.Error.Stack != stack || e.DL.Headers.String("kafka_dlt-exception-stacktrace") != stack || strings.Contains(record, "Thread.run") {
		t.Errorf("stack = %q, stored twice: %v", e.DL.Error.Stack, strings.Contains(record, "Thread.run"))
	}
}

// Purge deletes an entry's body with it (the suite checks what the
// contract shows: counts, totals, search).
func TestPurgeDeletesBodies(t *testing.T) {
	s, clk := mustOpen(t)
	ctx := context.Background()
	var specs []dlqstoretest.Spec
	for i := range 5 {
		specs = append(specs, dlqstoretest.Spec{Off: int64(i), Msg: "boom"})
	}
	dlqstoretest.IndexKafka(t, s, "d", 0, specs...)
	if _, err := s.SetStatus(ctx, []int64{1, 2}, dlqstore.StatusResolved); err != nil {
		t.Fatal(err)
	}
	clk.Advance(90 * 24 * time.Hour)
	if n, err := s.Purge(ctx, clk.Now().Add(-30*24*time.Hour)); err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2", n, err)
	}
	if got, bodies := countRows(t, s, "entries"), countRows(t, s, "entry_bodies"); got != 3 || bodies != 3 {
		t.Fatalf("entries = %d, bodies = %d, want 3", got, bodies)
	}
}
