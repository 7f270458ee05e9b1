package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Migration is one step of a store's schema. Versions are applied in
// order, each in its own transaction, and recorded in schema_migrations.
// A migration is never edited after release: a change is a new version.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Schema is what one owner, a store, keeps in a database: its migrations,
// versions 1, 2, … in order, recorded in schema_migrations under Owner.
// Several owners may share a file (access and the lag windows in
// console.db) and each counts its own versions, so that a store can add a
// version without knowing who else lives there. An Owner is never renamed:
// it is the key of the versions recorded in users' files.
//
// The stores declare their Schema beside their queries (access.Schema,
// dlqstore.Schema, tsdb's and collector's own); sqldb only applies them.
type Schema struct {
	Owner      string
	Migrations []Migration
	// AdoptUnowned claims the versions that releases before per-owner
	// bookkeeping recorded without an owner. Those releases kept one
	// schema per file in schema_migrations — access in console.db,
	// dlqstore in dlq.db, tsdb in tsdb.db — and each of those sets it.
	// Adoption checks every such version against Migrations, by number
	// and name, so that a file of another store is refused rather than
	// taken over.
	AdoptUnowned bool
}

// UpTo returns s as it stood at version: its first version migrations.
// Tests build an older release's database with it.
func (s Schema) UpTo(version int) Schema {
	s.Migrations = s.Migrations[:version:version]
	return s
}

// check refuses a schema Migrate could not apply safely.
func (s Schema) check() error {
	if s.Owner == "" {
		return errors.New("a schema needs an owner")
	}
	for i, m := range s.Migrations {
		if m.Version != i+1 {
			return fmt.Errorf("migrations of %s out of order at version %d", s.Owner, m.Version)
		}
	}
	return nil
}

// checkSchemas checks the schemas of one file: each valid, each owner
// once, and at most one that adopts unowned versions (they were one
// store's).
func checkSchemas(ss []Schema) error {
	var owners []string
	adopters := 0
	for _, s := range ss {
		if err := s.check(); err != nil {
			return err
		}
		if slices.Contains(owners, s.Owner) {
			return fmt.Errorf("schema %s listed twice", s.Owner)
		}
		owners = append(owners, s.Owner)
		if s.AdoptUnowned {
			adopters++
		}
	}
	if adopters > 1 {
		return errors.New("more than one schema adopts the versions recorded without an owner")
	}
	return nil
}

// SchemaTooNewError says that an owner's part of the database was written
// by a newer binary.
type SchemaTooNewError struct {
	Owner       string
	Have, Known int
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this binary knows (%s: %d); run a newer switchyard or use another data directory", e.Have, e.Owner, e.Known)
}

// Migrate applies the migrations of s that db lacks, each in its own
// transaction together with the record of its version. First it brings
// schema_migrations itself to the per-owner form (a file of an older
// release keeps versions without an owner) and, when s adopts them, gives
// those versions to s. It refuses a database whose part of s is newer than
// s, since an older binary cannot know what a newer migration changed;
// versions of other owners are theirs and never looked at.
func Migrate(ctx context.Context, db *sql.DB, s Schema) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := ownedBookkeeping(ctx, db); err != nil {
		return fmt.Errorf("schema_migrations: %w", err)
	}
	if s.AdoptUnowned {
		if err := adopt(ctx, db, s); err != nil {
			return err
		}
	}
	var have int
	if err := db.QueryRowContext(ctx,
		"SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE owner = ?", s.Owner).Scan(&have); err != nil {
		return fmt.Errorf("read schema version of %s: %w", s.Owner, err)
	}
	if known := len(s.Migrations); have > known {
		return &SchemaTooNewError{Owner: s.Owner, Have: have, Known: known}
	}
	for _, m := range s.Migrations[have:] {
		if err := apply(ctx, db, s.Owner, m); err != nil {
			return fmt.Errorf("migration %d of %s (%s): %w", m.Version, s.Owner, m.Name, err)
		}
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, owner string, m Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO schema_migrations (owner, version, name, applied_at) VALUES (?, ?, ?, ?)",
		owner, m.Version, m.Name, FormatTime(time.Now())); err != nil {
		return err
	}
	return tx.Commit()
}

// migrationsTable is the bookkeeping: one row per applied version of each
// owner. unowned is the owner of rows that a release before owners wrote,
// until a schema adopts them.
const (
	migrationsTable = `CREATE TABLE schema_migrations (
	owner      TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	applied_at TEXT    NOT NULL,
	PRIMARY KEY (owner, version)
)`
	unowned = ""
)

// queryer is what *sql.DB and *sql.Tx share for reading.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// bookkeepingColumns returns the columns of schema_migrations, none when
// the table does not exist.
func bookkeepingColumns(ctx context.Context, q queryer) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT name FROM pragma_table_info('schema_migrations')")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// ownedBookkeeping creates schema_migrations, or rebuilds the one of an
// older release — (version, name, applied_at), one store per file — with
// an owner column, its rows kept with the unowned owner and their
// applied_at unchanged. The check is repeated inside the write
// transaction, so two processes opening the same old file convert it once.
func ownedBookkeeping(ctx context.Context, db *sql.DB) error {
	cols, err := bookkeepingColumns(ctx, db)
	if err != nil {
		return err
	}
	if slices.Contains(cols, "owner") {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if cols, err = bookkeepingColumns(ctx, tx); err != nil {
		return err
	}
	if len(cols) == 0 {
		if _, err := tx.ExecContext(ctx, migrationsTable); err != nil {
			return err
		}
		return tx.Commit()
	}
	if slices.Contains(cols, "owner") {
		return nil // another process converted it meanwhile
	}
	for _, step := range []struct {
		q    string
		args []any
	}{
		{q: "ALTER TABLE schema_migrations RENAME TO schema_migrations_unowned"},
		{q: migrationsTable},
		{q: `INSERT INTO schema_migrations (owner, version, name, applied_at)
	SELECT ?, version, name, applied_at FROM schema_migrations_unowned`, args: []any{unowned}},
		{q: "DROP TABLE schema_migrations_unowned"},
	} {
		if _, err := tx.ExecContext(ctx, step.q, step.args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// adopt gives the versions recorded without an owner to s, after checking
// that each is s's own migration of that number and name: a release before
// owners kept one schema per file, and a file whose versions are another
// store's is the wrong file (dlq.db opened as console.db), not one to take
// over. Versions beyond s's are a newer binary's.
func adopt(ctx context.Context, db *sql.DB, s Schema) error {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE owner = ?", unowned).Scan(&n); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	if n == 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	rows, err := tx.QueryContext(ctx, "SELECT version, name FROM schema_migrations WHERE owner = ? ORDER BY version", unowned)
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	newest := 0
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		switch {
		case v > len(s.Migrations):
			newest = v
		case v < 1 || s.Migrations[v-1].Name != name:
			return fmt.Errorf("schema_migrations: version %d (%q) was recorded by another store than %s; is this the right file?", v, name, s.Owner)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	if newest > 0 {
		return &SchemaTooNewError{Owner: s.Owner, Have: newest, Known: len(s.Migrations)}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE schema_migrations SET owner = ? WHERE owner = ?", s.Owner, unowned); err != nil {
		return fmt.Errorf("adopt schema_migrations: %w", err)
	}
	return tx.Commit()
}
