package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"switchyard/sqldb"
)

// testSchema stands for a store's schema: two tables with a foreign key
// between them, as the first versions of access's have.
func testSchema() sqldb.Schema {
	return sqldb.Schema{Owner: "test", Migrations: []sqldb.Migration{
		{Version: 1, Name: "users", SQL: `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL, role TEXT NOT NULL, created_at TEXT NOT NULL)`},
		{Version: 2, Name: "api_tokens", SQL: `CREATE TABLE api_tokens (id INTEGER PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id), name TEXT NOT NULL, token_hash TEXT NOT NULL, created_at TEXT NOT NULL)`},
	}}
}

func mustOpen(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), path, testSchema())
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenMigratesAndSetsPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "console.db") // directory created by Open
	db := mustOpen(t, path)
	ctx := context.Background()

	var version int
	if err := db.QueryRow("SELECT MAX(version) FROM schema_migrations").Scan(&version); err != nil {
		t.Fatal(err)
	}
	ms := testSchema().Migrations
	if want := ms[len(ms)-1].Version; version != want {
		t.Errorf("schema version = %d, want %d", version, want)
	}
	for _, q := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
		{"synchronous", "1"}, // NORMAL
	} {
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != q.want {
			t.Errorf("PRAGMA %s = %q, want %q", q.pragma, got, q.want)
		}
	}
	// The first migrations' tables exist and foreign keys are enforced.
	if _, err := db.Exec(`INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (42, 't', 'h', 'now')`); err == nil {
		t.Error("token for a missing user was accepted: foreign keys are off")
	}
	if err := sqldb.Ping(ctx, db); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestOpenTwiceIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.db")
	db := mustOpen(t, path)
	if _, err := db.Exec(`INSERT INTO users (name, password_hash, role, created_at) VALUES ('a', 'x', 'admin', 'now')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = mustOpen(t, path)
	var n, migrations int
	db.QueryRow("SELECT COUNT(*) FROM users").Scan(&n)
	db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&migrations)
	if n != 1 || migrations != len(testSchema().Migrations) {
		t.Errorf("after reopen: users=%d migrations=%d, want 1 and %d", n, migrations, len(testSchema().Migrations))
	}
}

func TestMigrationRollsBackOnFailure(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "console.db"))
	s := testSchema()
	s.Migrations = append(s.Migrations, sqldb.Migration{
		Version: len(s.Migrations) + 1, Name: "broken",
		SQL: "CREATE TABLE half (x INTEGER); INSERT INTO nosuchtable VALUES (1);",
	})
	err := sqldb.Migrate(context.Background(), db, s)
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("Migrate = %v, want an error naming the broken migration", err)
	}
	var n int
	db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'").Scan(&n)
	if n != 0 {
		t.Error("the failed migration's first statement was kept: not run in a transaction")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the path to open
		want  string
	}{
		{"not a database", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "console.db")
			os.WriteFile(p, []byte(strings.Repeat("this is a text file, not SQLite\n", 200)), 0o600)
			return p
		}, "file is not a SQLite database"},
		{"corrupt", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "console.db")
			db := mustOpen(t, p)
			db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
			db.Close()
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			// Keep the 100-byte header, scribble over the schema table.
			for i := 100; i < 4096 && i < len(b); i++ {
				b[i] = 0xA5
			}
			os.WriteFile(p, b, 0o600)
			return p
		}, "corrupt"},
		{"newer schema", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "console.db")
			db := mustOpen(t, p)
			if _, err := db.Exec(`INSERT INTO schema_migrations (owner, version, name, applied_at) VALUES ('test', 999, 'future', 'now')`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			return p
		}, "database schema version 999 is newer than this binary knows"},
		{"directory is a file", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "data")
			os.WriteFile(f, nil, 0o600)
			return filepath.Join(f, "console.db")
		}, "cannot create directory"},
		{"unwritable directory", func(t *testing.T) string {
			if os.Geteuid() == 0 {
				// root writes through permission bits; /proc refuses even root.
				return "/proc/switchyard-test/console.db"
			}
			d := filepath.Join(t.TempDir(), "ro")
			os.Mkdir(d, 0o500)
			return filepath.Join(d, "console.db")
		}, "directory"},
		{"path is a directory", func(t *testing.T) string { return t.TempDir() }, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup(t)
			db, err := sqldb.Open(ctx, p, testSchema())
			if err == nil {
				db.Close()
				t.Fatalf("Open(%s) succeeded, want error containing %q", p, tt.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "open "+p+": ") || !strings.Contains(msg, tt.want) {
				t.Errorf("Open error = %q\nwant prefix %q and containing %q", msg, "open "+p+": ", tt.want)
			}
		})
	}
	var tooNew *sqldb.SchemaTooNewError
	p := filepath.Join(t.TempDir(), "c.db")
	db := mustOpen(t, p)
	db.Exec(`INSERT INTO schema_migrations (owner, version, name, applied_at) VALUES ('test', 999, 'future', 'now')`)
	db.Close()
	if _, err := sqldb.Open(ctx, p, testSchema()); !errors.As(err, &tooNew) || tooNew.Have != 999 {
		t.Errorf("newer schema error = %v, want *SchemaTooNewError{Have: 999}", err)
	}
}

// TestSoftHeapLimitIsProcessWide: the limit set once holds for every
// connection of every database the process opens afterwards, which is
// what bounds the page caches of all the demo's stores together.
func TestSoftHeapLimitIsProcessWide(t *testing.T) {
	ctx := context.Background()
	if err := sqldb.SetSoftHeapLimit(ctx, 24<<20); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sqldb.SetSoftHeapLimit(ctx, 0) })
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got int64
	if err := db.QueryRowContext(ctx, "PRAGMA soft_heap_limit").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != 24<<20 {
		t.Fatalf("soft heap limit seen by another database's connection: %d, want %d", got, 24<<20)
	}
}

// On Linux with cgo (every build of the console), the C allocator takes
// the arena cap the demo sets.
func TestLimitMallocArenas(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("glibc's allocator only")
	}
	if !sqldb.LimitMallocArenas(8) {
		t.Fatal("mallopt(M_ARENA_MAX) was refused")
	}
}

// Pages SQLite freed go back to the system: after a connection with a
// large, full page cache closes, TrimMalloc releases memory the allocator
// still held.
func TestTrimMalloc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("glibc's allocator only")
	}
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "trim.db"))
	sqldb.TrimMalloc() // start from a trimmed heap
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `PRAGMA cache_size = -65536; CREATE TABLE blobs (b BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000) INSERT INTO blobs SELECT randomblob(8000) FROM n`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if !sqldb.TrimMalloc() {
		t.Fatal("malloc_trim released nothing after a 32 MB page cache was freed")
	}
}
