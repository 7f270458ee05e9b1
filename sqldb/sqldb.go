// Package sqldb opens the console's SQLite database (mattn/go-sqlite3, built
// with the sqlite_fts5 tag) and brings its schema up to date with the
// versioned Migrations. Open is the one entry point; every failure it can
// meet on a user's data directory comes back as one error that says what is
// wrong with which file.
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
	"unicode/utf8"

	"github.com/mattn/go-sqlite3"
)

// TimeLayout is how the console stores timestamps: UTC, fixed width, so that
// string order is time order.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// FormatTime formats t in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime parses a timestamp written by FormatTime.
func ParseTime(s string) (time.Time, error) { return time.Parse(TimeLayout, s) }

// The span of times the console's stores hold and its queries accept.
// Stores keep Unix nanoseconds (which end in 2262) or this layout (which
// ends in 9999): a time outside the span is a mistake to refuse, never a
// bound that silently wraps into "every entry".
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// TimeInRange reports whether t lies in the span the stores accept:
// from 1970-01-01 up to (not including) 2200-01-01, UTC.
func TimeInRange(t time.Time) bool { return !t.Before(minTime) && t.Before(maxTime) }

// TimeRangeText says the span for error messages.
const TimeRangeText = "between 1970-01-01 and 2200-01-01 (UTC)"

// ValidText reports whether s is text the stores accept in a name, an id
// or a search: valid UTF-8 without control characters other than tab and
// newline. A NUL would end the string early inside SQLite and FTS5; the
// others have no business in a filter and would reach logs and pages.
func ValidText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}

// Open opens (creating if needed) the console's SQLite database at path and
// applies any of Migrations it lacks; it is OpenWith(ctx, path, Migrations()).
func Open(ctx context.Context, path string) (*sql.DB, error) {
	return OpenWith(ctx, path, Migrations())
}

// OpenWith opens (creating if needed) the SQLite database at path and
// applies the migrations of ms it lacks. Other stores with their own file
// (dlqstore's dlq.db) bring their own list. Each connection runs in WAL mode with
// busy_timeout=5000, foreign_keys=on and synchronous=NORMAL. Write
// transactions start IMMEDIATE so that two writers queue on busy_timeout
// instead of failing with SQLITE_BUSY half-way through.
//
// Errors name the file and the cause, e.g.
// "open data/console.db: file is not a SQLite database".
func OpenWith(ctx context.Context, path string, ms []Migration) (*sql.DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		// A pool over :memory: would give every connection its own empty
		// database, and '?' would be taken as the start of DSN options.
		return nil, fmt.Errorf("open %q: want a plain file path", path)
	}
	fail := func(err error) (*sql.DB, error) { return nil, fmt.Errorf("open %s: %w", path, err) }

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fail(fmt.Errorf("cannot create directory %s: %w", dir, err))
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fail(errors.New("is a directory, not a database file"))
	}

	dsn := path + "?_busy_timeout=5000&_foreign_keys=on&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return fail(err)
	}
	if err := setup(ctx, db, ms); err != nil {
		db.Close()
		return fail(explain(err, dir))
	}
	return db, nil
}

// setup checks that the file is a usable database and migrates it.
func setup(ctx context.Context, db *sql.DB, ms []Migration) error {
	// Opening a connection applies journal_mode=WAL, which reads the header
	// and writes the -wal file: a foreign file, a corrupt header or an
	// unwritable directory all fail here.
	if err := db.PingContext(ctx); err != nil {
		return err
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("cannot switch to WAL journal mode (got %q)", mode)
	}
	if err := Migrate(ctx, db, ms); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, probeTable); err != nil {
		return fmt.Errorf("create sqldb_probe: %w", err)
	}
	return nil
}

// SchemaTooNewError says that the database was written by a newer binary.
type SchemaTooNewError struct {
	Have, Known int
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this binary knows (%d); run a newer switchyard or use another data directory", e.Have, e.Known)
}

// Migrate applies the migrations of ms that db lacks, each in its own
// transaction. It refuses a database whose schema is newer than ms, since
// an older binary cannot know what a newer migration changed.
func Migrate(ctx context.Context, db *sql.DB, ms []Migration) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var have int
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	known := 0
	for i, m := range ms {
		if m.Version <= known || (i > 0 && m.Version != ms[i-1].Version+1) {
			return fmt.Errorf("migration list out of order at version %d", m.Version)
		}
		known = m.Version
	}
	if have > known {
		return &SchemaTooNewError{Have: have, Known: known}
	}
	for _, m := range ms {
		if m.Version <= have {
			continue
		}
		if err := apply(ctx, db, m); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, m Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.Version, m.Name, FormatTime(time.Now())); err != nil {
		return err
	}
	return tx.Commit()
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
