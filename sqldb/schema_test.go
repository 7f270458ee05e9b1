package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"switchyard/sqldb"
	"switchyard/sqldb/sqldbtest"
)

// otherSchema is a second store in the same file, as the lag windows
// share console.db with access.
func otherSchema() sqldb.Schema {
	return sqldb.Schema{Owner: "other", Migrations: []sqldb.Migration{
		{Version: 1, Name: "windows", SQL: `CREATE TABLE windows (k TEXT PRIMARY KEY, v TEXT NOT NULL)`},
	}}
}

type version struct {
	Owner   string
	Version int
	Name    string
	At      string
}

func versions(t *testing.T, db *sql.DB) []version {
	t.Helper()
	rows, err := db.Query(`SELECT owner, version, name, applied_at FROM schema_migrations ORDER BY owner, version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []version
	for rows.Next() {
		var v version
		if err := rows.Scan(&v.Owner, &v.Version, &v.Name, &v.At); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// Two owners in one file count their versions apart: one's new version
// is applied without the other's list, and one's newer schema stops only
// whoever opens the file with that owner.
func TestOwnersShareAFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "console.db")
	db, err := sqldb.Open(ctx, path, testSchema(), otherSchema())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range versions(t, db) {
		got = append(got, v.Owner+"/"+v.Name)
	}
	if want := []string{"other/windows", "test/users", "test/api_tokens"}; !slices.Equal(got, want) {
		t.Errorf("versions = %v, want %v", got, want)
	}
	db.Close()

	// other gains version 2 on its own.
	next := otherSchema()
	next.Migrations = append(next.Migrations, sqldb.Migration{Version: 2, Name: "windows at", SQL: `ALTER TABLE windows ADD COLUMN at TEXT`})
	db, err = sqldb.Open(ctx, path, next)
	if err != nil {
		t.Fatalf("open with other at version 2: %v", err)
	}
	db.Close()
	// A binary that knows other only at version 1 refuses other's part, not
	// the file: test's part still opens.
	_, err = sqldb.Open(ctx, path, testSchema(), otherSchema())
	var tooNew *sqldb.SchemaTooNewError
	if !errors.As(err, &tooNew) || tooNew.Owner != "other" || tooNew.Have != 2 || tooNew.Known != 1 {
		t.Errorf("open with other at version 1 = %v, want *SchemaTooNewError{other, 2, 1}", err)
	}
	db, err = sqldb.Open(ctx, path, testSchema())
	if err != nil {
		t.Fatalf("open with test only: %v", err)
	}
	db.Close()
}

// legacyFile writes a file as a release before per-owner bookkeeping left
// it: versions 1 and 2 of the test schema recorded without an owner, with
// their old applied_at, and a user row.
func legacyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console.db")
	db, err := sql.Open("sqlite3", path+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	steps := []string{sqldbtest.LegacyBookkeeping}
	for _, m := range testSchema().Migrations {
		steps = append(steps, m.SQL)
	}
	steps = append(steps,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES
	(1, 'users', '2024-05-01T10:00:00.000000000Z'), (2, 'api_tokens', '2024-06-01T10:00:00.000000000Z')`,
		`INSERT INTO users (name, password_hash, role, created_at) VALUES ('anna', 'x', '', '2024-05-02T00:00:00.000000000Z')`)
	for _, q := range steps {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return path
}

// A file whose versions were recorded without an owner opens: the schema
// that adopts them gets them with their names and times, applies what is
// new, and no row is lost; a schema that does not adopt leaves them alone.
func TestUnownedVersionsAreAdopted(t *testing.T) {
	ctx := context.Background()
	path := legacyFile(t)
	next := testSchema()
	next.AdoptUnowned = true
	next.Migrations = append(next.Migrations, sqldb.Migration{Version: 3, Name: "last login", SQL: `ALTER TABLE users ADD COLUMN last_login_at TEXT`})

	// The other owner first (as when the lag-window store opens console.db
	// before access): the bookkeeping gains owners, the old rows wait.
	db, err := sqldb.Open(ctx, path, otherSchema())
	if err != nil {
		t.Fatal(err)
	}
	if got := versions(t, db); len(got) != 3 || got[0].Owner != "" || got[1].Owner != "" || got[2].Owner != "other" {
		t.Errorf("after opening with other only: %+v; want the two old versions unowned and other's", got)
	}
	db.Close()

	db, err = sqldb.Open(ctx, path, next, otherSchema())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := versions(t, db)
	want := []version{
		{"other", 1, "windows", got[0].At},
		{"test", 1, "users", "2024-05-01T10:00:00.000000000Z"},
		{"test", 2, "api_tokens", "2024-06-01T10:00:00.000000000Z"},
		{"test", 3, "last login", got[3].At},
	}
	if !slices.Equal(got, want) {
		t.Errorf("versions = %+v\nwant %+v", got, want)
	}
	var name string
	if err := db.QueryRow(`SELECT name FROM users WHERE last_login_at IS NULL`).Scan(&name); err != nil || name != "anna" {
		t.Errorf("user after the upgrade = %q, %v; want anna with the new column", name, err)
	}
}

// Two processes opening the same old file at once convert its bookkeeping
// once: each version stays one row. Opening it also switches the file from
// its rollback journal to WAL, which SQLite refuses at once to the second
// of two connections doing so together: every open must still succeed
// (sqldb.connect). Without it a round of eight openers lost that race a
// few times in a hundred, so the test runs a hundred rounds (every one of
// ten runs failed without the retry; ~3 s with it).
func TestConcurrentOpensOfAnOldFile(t *testing.T) {
	ctx := context.Background()
	for round := range 100 {
		path := legacyFile(t)
		s := testSchema()
		s.AdoptUnowned = true
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				db, err := sqldb.Open(ctx, path, s)
				if err == nil {
					db.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		db := mustOpen(t, path)
		if got := versions(t, db); len(got) != 2 || got[0].Owner != "test" || got[1].Owner != "test" {
			t.Errorf("round %d: versions = %+v, want test's 1 and 2 once each", round, got)
		}
	}
}

func TestSchemaErrors(t *testing.T) {
	ctx := context.Background()
	adopting := func(s sqldb.Schema) sqldb.Schema { s.AdoptUnowned = true; return s }
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		schemas []sqldb.Schema
		want    string
	}{
		{"another store's file", legacyFile, []sqldb.Schema{adopting(otherSchema())}, `version 1 ("users") was recorded by another store than other`},
		{"unowned versions of a newer binary", legacyFile,
			[]sqldb.Schema{adopting(testSchema().UpTo(1))}, "database schema version 2 is newer than this binary knows (test: 1)"},
		{"out of order", nil, []sqldb.Schema{{Owner: "x", Migrations: []sqldb.Migration{{Version: 2, Name: "two"}}}}, "out of order at version 2"},
		{"no owner", nil, []sqldb.Schema{{Migrations: testSchema().Migrations}}, "needs an owner"},
		{"owner twice", nil, []sqldb.Schema{testSchema(), testSchema()}, "listed twice"},
		{"two adopters", nil, []sqldb.Schema{adopting(testSchema()), adopting(otherSchema())}, "more than one schema adopts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "console.db")
			if tt.path != nil {
				p = tt.path(t)
			}
			db, err := sqldb.Open(ctx, p, tt.schemas...)
			if err == nil {
				db.Close()
				t.Fatalf("Open succeeded, want an error containing %q", tt.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "open "+p+": ") || !strings.Contains(msg, tt.want) {
				t.Errorf("Open error = %q\nwant prefix %q and containing %q", msg, "open "+p+": ", tt.want)
			}
		})
	}
}
