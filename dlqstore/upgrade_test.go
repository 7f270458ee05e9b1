package dlqstore_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"switchyard/dlqstore"
	"switchyard/sqldb"
	"switchyard/sqldb/sqldbtest"
)

// A dlq.db of the release before per-owner bookkeeping — migrations 1-5,
// whose SQL is never edited, recorded without an owner — opens with this
// one: its versions become dlqstore's with their first times, the newer
// ones apply, and no row is lost.
func TestDLQDBOfThePreviousReleaseUpgrades(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dlq.db")
	old, err := sqldb.Open(ctx, path, dlqstore.Schema().UpTo(5))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO groups (fingerprint, title, count, first_seen, last_seen) VALUES ('fp1', 'OrderNotFound in billing', 1, 10, 10)`,
		`INSERT INTO entries (broker, cluster, destination, kpartition, koffset, tenant, fingerprint, group_id,
	first_failure_at, last_failure_at, indexed_at, updated_at, resource)
	VALUES ('kafka', 'demo', 'orders.dlq', 0, 7, 't1', 'fp1', 1, 10, 10, 11, 11, 'kafka:demo/orders')`,
		`INSERT INTO entry_bodies (id, payload, headers, record) VALUES (1, x'7b7d', '[]', '{}')`,
		`INSERT INTO kafka_offsets (cluster, topic, kpartition, next_offset, updated_at) VALUES ('demo', 'orders.dlq', 0, 8, 11)`,
		`UPDATE schema_migrations SET applied_at = '2025-02-0' || version || 'T00:00:00.000000000Z'`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sqldbtest.MakeLegacy(t, old, "dlqstore")
	// Later versions add tables and columns: every row keeps what it had.
	// The full-text index's tables are derived from the entries (migration
	// 9 recreates it, and the text indexer fills it in the background).
	shape := sqldbtest.Shape(t, old)
	for tbl := range shape {
		if strings.HasPrefix(tbl, "entries_fts") {
			delete(shape, tbl)
		}
	}
	before := sqldbtest.RowsIn(t, old, shape)
	old.Close()

	s, err := dlqstore.Open(ctx, path, dlqstore.Options{})
	if err != nil {
		t.Fatalf("open the previous release's dlq.db: %v", err)
	}
	s.Close()
	db, err := sqldb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if after := sqldbtest.RowsIn(t, db, shape); !maps.EqualFunc(after, before, slices.Equal) {
		t.Errorf("rows changed by the upgrade:\nbefore %v\nafter  %v", before, after)
	}
	rows, err := db.Query(`SELECT owner, version, applied_at FROM schema_migrations ORDER BY owner, version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var owner, at string
		var v int
		if err := rows.Scan(&owner, &v, &at); err != nil {
			t.Fatal(err)
		}
		n++
		if owner != "dlqstore" || v != n || (v <= 5 && at != fmt.Sprintf("2025-02-0%dT00:00:00.000000000Z", v)) {
			t.Errorf("schema_migrations row %d = %s %d %s; want dlqstore's versions in order, the first five with their old times", n, owner, v, at)
		}
	}
	if n != len(dlqstore.Migrations()) {
		t.Errorf("%d versions recorded, want %d", n, len(dlqstore.Migrations()))
	}
}
