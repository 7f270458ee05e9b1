package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/delivery/sqlite"
)

// openDB opens (or reopens) the SQLite file at path in WAL mode.
func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_busy_timeout=10000")
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("ping %s: %v", path, err)
	}
	return db
}

// mustOpen returns a fresh database file in a temp dir.
func mustOpen(t *testing.T) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.db")
	return openDB(t, path), path
}

func mustNew(t *testing.T, db *sql.DB, opts sqlite.Options) *sqlite.KeyStore {
	t.Helper()
	s, err := sqlite.New(context.Background(), db, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestKeyStoreContract(t *testing.T) {
	deliverytest.TestIdempotencyKeyStore(t, func(t *testing.T, now func() time.Time) delivery.IdempotencyKeyStore {
		db, _ := mustOpen(t)
		return mustNew(t, db, sqlite.Options{Now: now})
	})
}

func TestKeyStoreJournalIsWAL(t *testing.T) {
	db, _ := mustOpen(t)
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
}

func TestKeyStoreSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	db, path := mustOpen(t)
	s := mustNew(t, db, sqlite.Options{})
	if err := s.Put(ctx, "evt-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "evt-forever", 0); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s2 := mustNew(t, openDB(t, path), sqlite.Options{}) // table exists: New must not fail
	for _, key := range []string{"evt-1", "evt-forever"} {
		ok, err := s2.Has(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("Has(%q) after reopening the database = false, want true", key)
		}
	}
}

func TestKeyStoreSweep(t *testing.T) {
	ctx := context.Background()
	db, _ := mustOpen(t)
	clock := deliverytest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s := mustNew(t, db, sqlite.Options{Now: clock.Now})
	for key, ttl := range map[string]time.Duration{"a": time.Minute, "b": time.Minute, "c": time.Hour, "d": 0} {
		if err := s.Put(ctx, key, ttl); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("Sweep before anything expired deleted %d keys, want 0", n)
	}
	clock.Advance(time.Minute)
	if n, err = s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("Sweep after 1m deleted %d keys, want 2 (a, b)", n)
	}
	rows := map[string]bool{}
	r, err := db.Query(`SELECT key FROM idempotency_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		var k string
		if err := r.Scan(&k); err != nil {
			t.Fatal(err)
		}
		rows[k] = true
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || !rows["c"] || !rows["d"] {
		t.Fatalf("rows left after sweep = %v, want c and d", rows)
	}
}

func TestKeyStoreTable(t *testing.T) {
	ctx := context.Background()
	db, _ := mustOpen(t)
	s := mustNew(t, db, sqlite.Options{Table: "billing_keys"})
	if err := s.Put(ctx, "k", 0); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM billing_keys WHERE key = 'k' AND expires_at = 0`).Scan(&n); err != nil {
		t.Fatalf("custom table not used: %v", err)
	}
	if n != 1 {
		t.Fatalf("rows for k in billing_keys = %d, want 1", n)
	}
	// A second store on another table of the same database is independent.
	other := mustNew(t, db, sqlite.Options{})
	if ok, err := other.Has(ctx, "k"); err != nil || ok {
		t.Fatalf("Has on the default table = %v, %v; want false, nil", ok, err)
	}
}

func TestNewRejects(t *testing.T) {
	db, _ := mustOpen(t)
	for _, table := range []string{"keys; DROP TABLE x", `a"b`, "1keys", "my-keys"} {
		if _, err := sqlite.New(context.Background(), db, sqlite.Options{Table: table}); err == nil {
			t.Errorf("New with table %q succeeded, want an error", table)
		}
	}
	if _, err := sqlite.New(context.Background(), nil, sqlite.Options{}); err == nil {
		t.Error("New with a nil db succeeded, want an error")
	}
}

func TestKeyStoreLongTTL(t *testing.T) {
	ctx := context.Background()
	db, _ := mustOpen(t)
	clock := deliverytest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s := mustNew(t, db, sqlite.Options{Now: clock.Now})
	// A ttl that overflows Unix nanoseconds must not wrap into the past.
	if err := s.Put(ctx, "k", time.Duration(1<<63-1)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(100 * 365 * 24 * time.Hour)
	if ok, err := s.Has(ctx, "k"); err != nil || !ok {
		t.Fatalf("Has after 100 years with a max ttl = %v, %v; want true, nil", ok, err)
	}
}
