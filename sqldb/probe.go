package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// probeTable is the one row CheckWritable rewrites. It belongs to sqldb,
// like schema_migrations, and is created by Open in every database.
const probeTable = `CREATE TABLE IF NOT EXISTS sqldb_probe (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	at TEXT    NOT NULL
)`

// probeFileSize is what CheckWritable writes beside the database: one
// SQLite page, the least a commit that grows a file needs.
const probeFileSize = 4096

// CheckWritable reports whether db and the filesystem it lives on take
// writes right now. It commits a one-row write in db, then writes, fsyncs
// and removes a small file in the database's directory.
//
// Both halves are needed. The commit catches a database that cannot be
// written (read-only, locked past busy_timeout, an I/O error). It cannot
// catch a full disk on its own: in WAL mode a commit after a checkpoint
// rewrites WAL space that is already allocated, so it succeeds on a full
// filesystem while any write that grows a file (a new session, the audit
// log, dlq.db) fails. The file write needs new blocks, as those do.
//
// Errors say what failed and why without the full path, since /readyz
// shows them to anyone:
// "console.db: write: database or disk is full",
// "data dir: write probe file: no space left on device".
func CheckWritable(ctx context.Context, db *sql.DB) error {
	var seq int
	var name, file string
	if err := db.QueryRowContext(ctx, "PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	base := filepath.Base(file)
	if _, err := db.ExecContext(ctx,
		`INSERT INTO sqldb_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`,
		FormatTime(time.Now())); err != nil {
		return fmt.Errorf("%s: write: %w", base, err)
	}
	if err := writeProbeFile(filepath.Dir(file)); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}

func writeProbeFile(dir string) (err error) {
	f, err := os.CreateTemp(dir, ".switchyard-probe-*")
	if err != nil {
		return fmt.Errorf("create probe file: %w", pathless(err))
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close probe file: %w", pathless(cerr))
		}
		if rerr := os.Remove(f.Name()); err == nil && rerr != nil {
			err = fmt.Errorf("remove probe file: %w", pathless(rerr))
		}
	}()
	if _, err := f.Write(make([]byte, probeFileSize)); err != nil {
		return fmt.Errorf("write probe file: %w", pathless(err))
	}
	// Some filesystems (NFS, XFS with delayed allocation, quotas) only
	// report the missing space when the data is flushed.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync probe file: %w", pathless(err))
	}
	return nil
}

// pathless drops the file name of a *fs.PathError, keeping the cause.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ProberOptions configure a Prober; the zero value is usable.
type ProberOptions struct {
	// Interval is how long a result is reused; default 1 s.
	Interval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Prober runs CheckWritable for a readiness endpoint. Each check commits a
// transaction and fsyncs a file, and /readyz answers anyone, so a result is
// reused for Interval and concurrent callers share one check instead of
// queueing their own writes.
type Prober struct {
	db   *sql.DB
	opts ProberOptions
	// sem is held while a check runs and guards at and err.
	sem chan struct{}
	at  time.Time
	err error
}

// NewProber returns a Prober of db.
func NewProber(db *sql.DB, opts ProberOptions) *Prober {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Prober{db: db, opts: opts, sem: make(chan struct{}, 1)}
}

// Check returns the result of a CheckWritable that ended less than
// Interval ago, or runs one.
func (p *Prober) Check(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("sqlite: %w", ctx.Err())
	}
	defer func() { <-p.sem }()
	if !p.at.IsZero() && p.opts.Now().Sub(p.at) < p.opts.Interval {
		return p.err
	}
	p.err = CheckWritable(ctx, p.db)
	p.at = p.opts.Now()
	return p.err
}
