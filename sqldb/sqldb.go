// Package sqldb is the mechanism every SQLite store of the console shares,
// and owns no store's tables: OpenWith opens a file with the console's
// pragmas and brings each given Schema up to date, Migrate runs one
// owner's migrations with the version bookkeeping per owner
// (schema_migrations), CheckWritable and Prober are the write probe of
// /readyz, and values.go holds how times and text are stored. Each store
// owns its Schema beside its queries: access (users, sessions, tokens,
// roles, bindings, audit log) and collector's lag windows in console.db,
// dlqstore in dlq.db, tsdb in tsdb.db. Every failure Open can meet on a
// user's data directory comes back as one error that says what is wrong
// with which file.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Options tune how OpenWith opens a file. The zero value is what every
// console database uses.
type Options struct {
	// IncrementalVacuum sets auto_vacuum=incremental, so that
	// PRAGMA incremental_vacuum can give freed pages back to the file
	// system. SQLite takes the mode only while the file has no table yet:
	// a store that wants it must ask for it from the file's first Open on
	// (tsdb does).
	IncrementalVacuum bool
	// PageSize, when non-zero, is the page size of a file that OpenWith
	// creates (a power of two from 512 to 65536). SQLite fixes the page
	// size when the file gets its first page and WAL mode cannot change it
	// afterwards, so an existing file keeps the size it was created with:
	// only new databases get it.
	PageSize int
}

// Open opens (creating if needed) the SQLite database at path with the
// zero Options and brings each of schemas up to date: it is
// OpenWith(ctx, path, Options{}, schemas...).
func Open(ctx context.Context, path string, schemas ...Schema) (*sql.DB, error) {
	return OpenWith(ctx, path, Options{}, schemas...)
}

// OpenWith opens (creating if needed) the SQLite database at path and
// applies, schema by schema, the migrations it lacks (see Migrate). The
// stores that share a file are listed by whoever opens it. Each connection
// runs in WAL mode with busy_timeout=5000, foreign_keys=on and
// synchronous=NORMAL. Write transactions start IMMEDIATE so that two
// writers queue on busy_timeout instead of failing with SQLITE_BUSY
// half-way through.
//
// Errors name the file and the cause, e.g.
// "open data/console.db: file is not a SQLite database".
func OpenWith(ctx context.Context, path string, o Options, schemas ...Schema) (*sql.DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		// A pool over :memory: would give every connection its own empty
		// database, and '?' would be taken as the start of DSN options.
		return nil, fmt.Errorf("open %q: want a plain file path", path)
	}
	fail := func(err error) (*sql.DB, error) { return nil, fmt.Errorf("open %s: %w", path, err) }
	if err := checkSchemas(schemas); err != nil {
		return fail(err)
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fail(fmt.Errorf("cannot create directory %s: %w", dir, err))
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fail(errors.New("is a directory, not a database file"))
	}

	if o.PageSize > 0 {
		if err := createWithPageSize(path, o.PageSize); err != nil {
			return fail(explain(err, dir))
		}
	}

	dsn := fmt.Sprintf("%s?_busy_timeout=%d&_foreign_keys=on&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate", path, busyTimeout.Milliseconds())
	if o.IncrementalVacuum {
		dsn += "&_auto_vacuum=incremental"
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return fail(err)
	}
	if err := setup(ctx, db, schemas); err != nil {
		db.Close()
		return fail(explain(err, dir))
	}
	return db, nil
}

// createWithPageSize creates the database file at path with the given page
// size, in WAL mode, when no file (or an empty one) is there yet; an
// existing database is left alone. The page size must be set before the
// first page is written, which the DSN's journal_mode=WAL would otherwise
// do with the default size.
func createWithPageSize(path string, size int) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if size < 512 || size > 65536 || size&(size-1) != 0 {
		return fmt.Errorf("page size %d: want a power of two from 512 to 65536", size)
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(fmt.Sprintf("PRAGMA page_size = %d; PRAGMA journal_mode = WAL", size))
	return err
}

// setup checks that the file is a usable database and migrates it.
func setup(ctx context.Context, db *sql.DB, schemas []Schema) error {
	// Opening a connection applies journal_mode=WAL, which reads the header
	// and writes the -wal file: a foreign file, a corrupt header or an
	// unwritable directory all fail here.
	if err := connect(ctx, db); err != nil {
		return err
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("cannot switch to WAL journal mode (got %q)", mode)
	}
	for _, sc := range schemas {
		if err := Migrate(ctx, db, sc); err != nil {
			return err
		}
	}
	if _, err := db.ExecContext(ctx, probeTable); err != nil {
		return fmt.Errorf("create sqldb_probe: %w", err)
	}
	return nil
}

// busyTimeout is the DSN's _busy_timeout: how long a connection waits for
// another's lock before SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// connect opens the pool's first connection. On a file still in rollback
// journal mode (written before this package, or by another tool) that
// connection switches it to WAL: it reads the header under a shared lock,
// then takes the write lock to change it. When two connections do so at
// once (two processes, or two stores, opening the file together), SQLite
// answers the second's upgrade with SQLITE_BUSY at once rather than
// through the busy handler, which could deadlock on it. connect retries
// that, as busy_timeout would, until the other has switched the file; the
// retry's connection then finds it in WAL mode already.
func connect(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := db.PingContext(ctx)
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || se.Code != sqlite3.ErrBusy || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// explain turns SQLite's terse result codes into the one sentence a user
// needs, keeping the original error in the chain.
func explain(err error, dir string) error {
	var tooNew *SchemaTooNewError
	if errors.As(err, &tooNew) {
		return err
	}
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code {
	case sqlite3.ErrNotADB:
		return fmt.Errorf("file is not a SQLite database: %w", err)
	case sqlite3.ErrCorrupt:
		return fmt.Errorf("database file is corrupt; restore it from a backup: %w", err)
	case sqlite3.ErrCantOpen, sqlite3.ErrReadonly, sqlite3.ErrPerm, sqlite3.ErrAuth:
		return fmt.Errorf("cannot write the database or its directory %s (check permissions): %w", dir, err)
	case sqlite3.ErrIoErr:
		return fmt.Errorf("i/o error on the database file: %w", err)
	}
	return err
}

// Ping checks that the database answers a query. It says nothing about
// writes: readiness uses CheckWritable.
func Ping(ctx context.Context, db *sql.DB) error {
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// SetSoftHeapLimit sets SQLite's soft heap limit for the whole process
// (PRAGMA soft_heap_limit, sqlite3_soft_heap_limit64), in bytes: once the
// memory SQLite holds — mostly the page caches of every connection of
// every store — nears it, caches recycle their pages instead of growing.
// 0 removes the limit. A process setting: main calls it, never a store or
// a test.
func SetSoftHeapLimit(ctx context.Context, bytes int64) error {
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		return fmt.Errorf("soft heap limit: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA soft_heap_limit = %d", bytes)); err != nil {
		return fmt.Errorf("soft heap limit: %w", err)
	}
	return nil
}
