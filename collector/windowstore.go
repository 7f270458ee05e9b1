package collector

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"switchyard/sqldb"
)

// WindowStore persists the Evaluator's windows (commits and the recent
// polls' high watermarks), so that a restart does not leave every
// partition "window incomplete" for Window cycles, nor forget that a
// consumer was caught up at the last polls (the recent-lag-zero rule).
// SQLiteWindowStore implements it; windowtest.TestWindowStore is the
// contract every implementation (a PostgreSQL one too) runs.
type WindowStore interface {
	// Load returns every stored window. Rows it cannot read are left out
	// and reported in the error, alongside the windows it could read.
	// A window saved before watermarks were kept has none.
	Load(ctx context.Context) (map[PartitionKey]PartitionWindow, error)
	// Save replaces the stored windows of the given partitions, all in one
	// transaction: a cycle's worth of changes lands whole or not at all,
	// and one fsync serves thousands of partitions. A window without
	// commits deletes the partition's.
	Save(ctx context.Context, windows map[PartitionKey]PartitionWindow) error
	// Forget deletes the given partitions' windows in one transaction;
	// unknown keys are not an error.
	Forget(ctx context.Context, keys ...PartitionKey) error
}

var _ WindowStore = (*SQLiteWindowStore)(nil)

// SQLiteWindowStore keeps windows in the console's SQLite database, one row
// per partition with the commits and the watermarks as JSON (ten small
// values each; nothing queries inside them).
type SQLiteWindowStore struct {
	db *sql.DB
}

// NewSQLiteWindowStore returns a store over db, bringing its lag_windows
// table up to date (WindowSchema) first, so that it works over any
// database sqldb opened.
func NewSQLiteWindowStore(ctx context.Context, db *sql.DB) (*SQLiteWindowStore, error) {
	if db == nil {
		return nil, errors.New("lag window store: nil db")
	}
	if err := sqldb.Migrate(ctx, db, WindowSchema()); err != nil {
		return nil, fmt.Errorf("lag window store: %w", err)
	}
	return &SQLiteWindowStore{db: db}, nil
}

// WindowSchema is the lag_windows table, which this package owns in
// console.db beside access's tables. The table is a cache the evaluator
// can rebuild from scratch: dropping it costs Window cycles of
// "incomplete", never data.
//
// Releases before it created the same table ad hoc, without recording a
// version; version 1 is therefore CREATE TABLE IF NOT EXISTS, which keeps
// such a table and its rows and only records the version. Version 2 adds
// the recent polls' high watermarks (Burrow's recent-lag-zero rule); rows
// of before it read as having none, which is what a fresh start has too.
func WindowSchema() sqldb.Schema {
	// "partition" is quoted: SQLite knows PARTITION as a window-function
	// keyword. updated_at is the time of the newest commit in the window.
	return sqldb.Schema{Owner: "lag_windows", Migrations: []sqldb.Migration{
		{Version: 1, Name: "lag windows", SQL: `CREATE TABLE IF NOT EXISTS lag_windows (
	cluster     TEXT NOT NULL,
	grp         TEXT NOT NULL,
	topic       TEXT NOT NULL,
	"partition" INTEGER NOT NULL,
	window_json TEXT NOT NULL,
	updated_at  TEXT NOT NULL,
	PRIMARY KEY (cluster, grp, topic, "partition")
) WITHOUT ROWID`},
		{Version: 2, Name: "lag window watermarks", SQL: `ALTER TABLE lag_windows ADD COLUMN watermarks_json TEXT NOT NULL DEFAULT '[]'`},
	}}
}

// Load implements WindowStore.
func (s *SQLiteWindowStore) Load(ctx context.Context) (map[PartitionKey]PartitionWindow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT cluster, grp, topic, "partition", window_json, watermarks_json FROM lag_windows`)
	if err != nil {
		return nil, fmt.Errorf("load lag windows: %w", err)
	}
	defer rows.Close()
	out := make(map[PartitionKey]PartitionWindow)
	var bad []error
	for rows.Next() {
		var k PartitionKey
		var commits, marks string
		if err := rows.Scan(&k.Cluster, &k.Group, &k.Topic, &k.Partition, &commits, &marks); err != nil {
			return out, fmt.Errorf("load lag windows: %w", err)
		}
		var w PartitionWindow
		if err := errors.Join(json.Unmarshal([]byte(commits), &w.Commits), json.Unmarshal([]byte(marks), &w.Watermarks)); err != nil {
			bad = append(bad, fmt.Errorf("lag window %s/%s/%s/%d: %w", k.Cluster, k.Group, k.Topic, k.Partition, err))
			continue
		}
		out[k] = w
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("load lag windows: %w", err)
	}
	return out, errors.Join(bad...)
}

// Save implements WindowStore.
func (s *SQLiteWindowStore) Save(ctx context.Context, windows map[PartitionKey]PartitionWindow) error {
	if len(windows) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save lag windows: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	upsert, err := tx.PrepareContext(ctx, `INSERT INTO lag_windows (cluster, grp, topic, "partition", window_json, watermarks_json, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (cluster, grp, topic, "partition") DO UPDATE SET
	window_json = excluded.window_json, watermarks_json = excluded.watermarks_json, updated_at = excluded.updated_at`)
	if err != nil {
		return fmt.Errorf("save lag windows: %w", err)
	}
	defer upsert.Close()
	del, err := tx.PrepareContext(ctx, `DELETE FROM lag_windows WHERE cluster = ? AND grp = ? AND topic = ? AND "partition" = ?`)
	if err != nil {
		return fmt.Errorf("save lag windows: %w", err)
	}
	defer del.Close()
	for k, pw := range windows {
		w := pw.Commits
		if len(w) == 0 {
			if _, err := del.ExecContext(ctx, k.Cluster, k.Group, k.Topic, k.Partition); err != nil {
				return fmt.Errorf("save lag window %s/%s/%s/%d: %w", k.Cluster, k.Group, k.Topic, k.Partition, err)
			}
			continue
		}
		js, err := json.Marshal(w)
		if err != nil {
			return fmt.Errorf("encode lag window %s/%s/%s/%d: %w", k.Cluster, k.Group, k.Topic, k.Partition, err)
		}
		marks := []byte("[]")
		if len(pw.Watermarks) > 0 {
			marks, err = json.Marshal(pw.Watermarks)
		}
		if err != nil {
			return fmt.Errorf("encode lag window %s/%s/%s/%d: %w", k.Cluster, k.Group, k.Topic, k.Partition, err)
		}
		if _, err := upsert.ExecContext(ctx, k.Cluster, k.Group, k.Topic, k.Partition, string(js), string(marks), sqldb.FormatTime(w[len(w)-1].Time)); err != nil {
			return fmt.Errorf("save lag window %s/%s/%s/%d: %w", k.Cluster, k.Group, k.Topic, k.Partition, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save lag windows: %w", err)
	}
	return nil
}

// Forget implements WindowStore.
func (s *SQLiteWindowStore) Forget(ctx context.Context, keys ...PartitionKey) error {
	if len(keys) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("forget lag windows: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	del, err := tx.PrepareContext(ctx, `DELETE FROM lag_windows WHERE cluster = ? AND grp = ? AND topic = ? AND "partition" = ?`)
	if err != nil {
		return fmt.Errorf("forget lag windows: %w", err)
	}
	defer del.Close()
	for _, k := range keys {
		if _, err := del.ExecContext(ctx, k.Cluster, k.Group, k.Topic, k.Partition); err != nil {
			return fmt.Errorf("forget lag window %s/%s/%s/%d: %w", k.Cluster, k.Group, k.Topic, k.Partition, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("forget lag windows: %w", err)
	}
	return nil
}
