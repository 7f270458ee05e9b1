// Package sqldbtest helps the stores' tests prove that a data directory of
// an older release opens with the new code and keeps every row:
// LegacyBookkeeping is schema_migrations as the releases before per-owner
// bookkeeping created it, MakeLegacy turns a file's bookkeeping back into
// that form, and Rows reads every row of every table, to compare before and
// after (RowsIn over the old file's Shape when the upgrade adds tables or
// columns).
package sqldbtest

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// LegacyBookkeeping is, verbatim, the schema_migrations table of the
// releases before per-owner bookkeeping: one store's versions per file,
// without an owner.
const LegacyBookkeeping = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at TEXT    NOT NULL
)`

// MakeLegacy rewrites the bookkeeping of db as such a release left it: the
// versions of owner, with their names and times, in LegacyBookkeeping.
// Every other table stays as it is.
func MakeLegacy(t testing.TB, db *sql.DB, owner string) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for _, step := range []struct {
		q    string
		args []any
	}{
		{q: "ALTER TABLE schema_migrations RENAME TO schema_migrations_owned"},
		{q: LegacyBookkeeping},
		{q: `INSERT INTO schema_migrations (version, name, applied_at)
	SELECT version, name, applied_at FROM schema_migrations_owned WHERE owner = ?`, args: []any{owner}},
		{q: "DROP TABLE schema_migrations_owned"},
	} {
		if _, err := tx.ExecContext(ctx, step.q, step.args...); err != nil {
			t.Fatalf("make the bookkeeping legacy: %s: %v", step.q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// Rows returns the rows of every ordinary table of db (virtual tables
// left out: their shadow tables hold their data), each row as the text of
// its values, sorted; schema_migrations is left out, since an upgrade
// rewrites it.
func Rows(t testing.TB, db *sql.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range tables(t, db) {
		out[table] = tableRows(t, db, table, nil)
	}
	return out
}

// Shape is the columns of every table Rows reads, in their order.
func Shape(t testing.TB, db *sql.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range tables(t, db) {
		rows, err := db.Query(`SELECT * FROM "` + table + `" LIMIT 0`)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		rows.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[table] = cols
	}
	return out
}

// RowsIn is Rows over the tables and columns of shape only (an older
// file's Shape): what an upgrade must have kept of that file, whatever
// tables and columns it added.
func RowsIn(t testing.TB, db *sql.DB, shape map[string][]string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for table, cols := range shape {
		out[table] = tableRows(t, db, table, cols)
	}
	return out
}

func tables(t testing.TB, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var name, ddl string
		if err := rows.Scan(&name, &ddl); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(strings.ToUpper(ddl), "CREATE VIRTUAL") {
			out = append(out, name)
		}
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tableRows reads the columns of table (nil: all of them).
func tableRows(t testing.TB, db *sql.DB, table string, columns []string) []string {
	t.Helper()
	sel := "*"
	if columns != nil {
		quoted := make([]string, len(columns))
		for i, c := range columns {
			quoted[i] = `"` + c + `"`
		}
		sel = strings.Join(quoted, ", ")
	}
	rows, err := db.Query(`SELECT ` + sel + ` FROM "` + table + `"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteString(" | ")
			}
			fmt.Fprintf(&b, "%s=%v", cols[i], v)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// WITHOUT ROWID and rowid tables alike: order by content.
	slices.Sort(out)
	return out
}
