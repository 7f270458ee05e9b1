package tsdb

import (
	"database/sql"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"switchyard/delivery/deliverytest"
	"switchyard/sqldb/sqldbtest"
)

// previousTSDB is, verbatim, how the release before per-owner bookkeeping
// created tsdb.db: its own DSN (auto_vacuum first), the owner-less
// schema_migrations and version 1.
const (
	previousDSN    = "?_busy_timeout=5000&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate&_auto_vacuum=incremental"
	previousSchema = `
CREATE TABLE series (
	id             INTEGER PRIMARY KEY,
	labels         TEXT    NOT NULL UNIQUE,
	sealed_through INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE raw_chunks (
	id        INTEGER PRIMARY KEY,
	series_id INTEGER NOT NULL,
	start     INTEGER NOT NULL,
	data      BLOB    NOT NULL
);
CREATE UNIQUE INDEX raw_chunks_series ON raw_chunks(series_id, start);
CREATE INDEX raw_chunks_start ON raw_chunks(start);
CREATE TABLE rollup_chunks (
	id        INTEGER PRIMARY KEY,
	series_id INTEGER NOT NULL,
	start     INTEGER NOT NULL,
	data      BLOB    NOT NULL
);
CREATE UNIQUE INDEX rollup_chunks_series ON rollup_chunks(series_id, start);
CREATE INDEX rollup_chunks_start ON rollup_chunks(start);
CREATE TABLE head_log (
	seq  INTEGER PRIMARY KEY,
	data BLOB NOT NULL
);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'tsdb', '2025-06-01T00:00:00.000000000Z');`
)

// A tsdb.db of the previous release opens with this one: its version
// becomes tsdb's with its first time, every sealed chunk and logged batch
// is kept and queried as before, and the pragmas stay (auto_vacuum
// incremental, WAL, synchronous NORMAL).
func TestTSDBOfThePreviousReleaseUpgrades(t *testing.T) {
	// The points: 70 minutes of two series, so that a window is sealed
	// into chunks and the open one lives in head_log.
	c := deliverytest.NewClock(t0)
	src := t.TempDir()
	s := mustOpen(t, Options{Dir: src, Now: c.Now})
	fill(t, s, c, []Labels{lag("a"), lag("b")}, t0, t0.Add(70*time.Minute), func(i, cycle int) float64 { return float64(i*1000 + cycle) })
	q := Q{Name: "switchyard_consumer_group_lag", From: t0, To: t0.Add(70 * time.Minute), Step: 10 * time.Second}
	want := mustQuery(t, s, q)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The previous release's file, holding those rows.
	dir := t.TempDir()
	old, err := sql.Open("sqlite3", filepath.Join(dir, FileName)+previousDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := old.Exec(sqldbtest.LegacyBookkeeping + ";" + previousSchema); err != nil {
		t.Fatalf("previous release's schema: %v", err)
	}
	if _, err := old.Exec(`ATTACH DATABASE ? AS src`, filepath.Join(src, FileName)); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"series", "raw_chunks", "rollup_chunks", "head_log"} {
		if _, err := old.Exec(`INSERT INTO ` + table + ` SELECT * FROM src.` + table); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.Exec(`DETACH DATABASE src`); err != nil {
		t.Fatal(err)
	}
	before, shape := sqldbtest.Rows(t, old), sqldbtest.Shape(t, old)
	if len(before["raw_chunks"]) == 0 || len(before["head_log"]) == 0 {
		t.Fatalf("fixture without sealed chunks or logged batches: %d, %d", len(before["raw_chunks"]), len(before["head_log"]))
	}
	old.Close()

	s2 := mustOpen(t, Options{Dir: dir, Now: c.Now})
	if got := mustQuery(t, s2, q); !seriesEqual(got, want) {
		t.Errorf("after the upgrade: %d series, want %d with the same points", len(got), len(want))
	}
	if !maps.EqualFunc(sqldbtest.RowsIn(t, s2.db, shape), before, slices.Equal) {
		t.Errorf("rows changed by the upgrade")
	}
	if n := sqldbtest.Rows(t, s2.db)["coarse_chunks"]; len(n) != 0 {
		t.Errorf("coarse_chunks holds %d rows on open, want none before a compaction", len(n))
	}
	var owner, name, at string
	if err := s2.db.QueryRow(`SELECT owner, name, applied_at FROM schema_migrations WHERE version = 1`).Scan(&owner, &name, &at); err != nil ||
		owner != "tsdb" || name != "tsdb" || at != "2025-06-01T00:00:00.000000000Z" {
		t.Errorf("version 1 = %s %s %s, %v; want tsdb's, as first recorded", owner, name, at, err)
	}
	for pragma, want := range map[string]string{"auto_vacuum": "2", "journal_mode": "wal", "synchronous": "1"} {
		var got string
		if err := s2.db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
		}
	}
}

// A new tsdb.db gets incremental auto_vacuum, which SQLite takes only
// before the first table: Maintain depends on it to return pages.
func TestNewFileVacuumsIncrementally(t *testing.T) {
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: deliverytest.NewClock(t0).Now})
	var mode int
	if err := s.db.QueryRow("PRAGMA auto_vacuum").Scan(&mode); err != nil || mode != 2 {
		t.Errorf("auto_vacuum = %d, %v; want 2 (incremental)", mode, err)
	}
}
