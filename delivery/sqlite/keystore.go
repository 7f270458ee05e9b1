// Package sqlite implements delivery.IdempotencyKeyStore on SQLite:
// KeyStore keeps keys in one table of a database the caller opens, so that
// a consumer's idempotency keys live beside its own state and survive
// restarts. The SQL is plain SQLite (3.24+ for the upsert); the caller picks
// the driver (mattn/go-sqlite3, built with -tags sqlite_fts5, in this repo)
// and should set a busy timeout when several connections write.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"switchyard/delivery"
)

var _ delivery.IdempotencyKeyStore = (*KeyStore)(nil)

// DefaultTable is the table KeyStore uses when Options.Table is empty.
const DefaultTable = "idempotency_keys"

// Options configure a KeyStore. The zero value is valid.
type Options struct {
	// Table is the table name (letters, digits, '_'); default
	// "idempotency_keys". It is created when missing.
	Table string
	// Now defaults to time.Now.
	Now func() time.Time
}

// KeyStore is an IdempotencyKeyStore in a SQLite table
// (key TEXT PRIMARY KEY, expires_at INTEGER: Unix nanoseconds, 0 = never).
// Expired keys are invisible to Has at once and removed by Sweep.
type KeyStore struct {
	db  *sql.DB
	now func() time.Time

	hasSQL, putSQL, sweepSQL string
}

var tableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// New returns a store on db, creating its table and expiry index if they
// are missing.
func New(ctx context.Context, db *sql.DB, opts Options) (*KeyStore, error) {
	if db == nil {
		return nil, errors.New("idempotency key store: nil db")
	}
	table := opts.Table
	if table == "" {
		table = DefaultTable
	}
	// The name is interpolated into SQL, so only plain identifiers pass.
	if !tableRE.MatchString(table) {
		return nil, fmt.Errorf("idempotency key store: table name %q must be letters, digits and _", table)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	q := `"` + table + `"`
	ddl := []string{
		`CREATE TABLE IF NOT EXISTS ` + q + ` (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL DEFAULT 0)`,
		// Partial index: Sweep only ever looks at keys that expire.
		`CREATE INDEX IF NOT EXISTS "` + table + `_expires_at" ON ` + q + ` (expires_at) WHERE expires_at > 0`,
	}
	for _, stmt := range ddl {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create table %s: %w", table, err)
		}
	}
	return &KeyStore{
		db:       db,
		now:      now,
		hasSQL:   `SELECT EXISTS (SELECT 1 FROM ` + q + ` WHERE key = ? AND (expires_at = 0 OR expires_at > ?))`,
		putSQL:   `INSERT INTO ` + q + ` (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at`,
		sweepSQL: `DELETE FROM ` + q + ` WHERE expires_at > 0 AND expires_at <= ?`,
	}, nil
}

// Has reports whether key was put and its ttl has not passed.
func (s *KeyStore) Has(ctx context.Context, key string) (bool, error) {
	var ok bool
	if err := s.db.QueryRowContext(ctx, s.hasSQL, key, s.now().UnixNano()).Scan(&ok); err != nil {
		return false, fmt.Errorf("has idempotency key: %w", err)
	}
	return ok, nil
}

// Put records key for ttl (≤ 0: forever), replacing any earlier expiry.
func (s *KeyStore) Put(ctx context.Context, key string, ttl time.Duration) error {
	var exp int64
	if ttl > 0 {
		now := s.now().UnixNano()
		exp = math.MaxInt64 // a ttl past year 2262 is as good as forever, but still expires
		if ttl < time.Duration(math.MaxInt64-now) {
			exp = now + int64(ttl)
		}
	}
	if _, err := s.db.ExecContext(ctx, s.putSQL, key, exp); err != nil {
		return fmt.Errorf("put idempotency key: %w", err)
	}
	return nil
}

// Sweep deletes expired keys and returns how many it deleted. Has already
// ignores them; Sweep keeps the table from growing.
func (s *KeyStore) Sweep(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.sweepSQL, s.now().UnixNano())
	if err != nil {
		return 0, fmt.Errorf("sweep idempotency keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sweep idempotency keys: %w", err)
	}
	return n, nil
}
