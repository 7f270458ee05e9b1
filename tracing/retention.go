package tracing

import (
	"context"
	"fmt"
	"time"
)

// retainChunk is how many spans one retention transaction deletes: small
// enough that ingest waits milliseconds, not seconds, for the write lock.
const retainChunk = 5000

// Retain deletes the oldest spans (by start time) until none is older than
// MaxAge and the file is under MaxBytes, and returns how many it deleted.
// Age goes first, then size: while the file is too big it deletes the
// oldest share of spans the excess suggests (at least a chunk) and gives
// the freed pages back (incremental vacuum), so the file shrinks on disk
// and the next measure is true. Index pages of the deleted spans are only
// freed once empty, so the loop measures again rather than trusting the
// estimate. Resources no span points at any more go at the end.
func (s *Store) Retain(ctx context.Context) (int64, error) {
	var total int64
	cutoff := s.opts.Now().Add(-s.opts.MaxAge).UnixNano()
	for {
		n, err := s.deleteOldest(ctx, cutoff, retainChunk)
		total += n
		if err != nil {
			return total, fmt.Errorf("retention by age: %w", err)
		}
		if n < retainChunk {
			break
		}
	}
	if total > 0 {
		if err := s.vacuum(ctx); err != nil {
			return total, fmt.Errorf("retention: %w", err)
		}
	}
	for {
		size, err := s.size(ctx)
		if err != nil {
			return total, fmt.Errorf("retention by size: %w", err)
		}
		if size <= s.opts.MaxBytes {
			break
		}
		var count int64
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM spans`).Scan(&count); err != nil {
			return total, fmt.Errorf("retention by size: %w", err)
		}
		if count == 0 {
			break // the rest is the schema and free pages vacuum could not return
		}
		want := max(int64(float64(count)*float64(size-s.opts.MaxBytes)/float64(size)), min(count, retainChunk))
		for want > 0 {
			n, err := s.deleteOldest(ctx, 0, int(min(want, retainChunk)))
			total += n
			if err != nil {
				return total, fmt.Errorf("retention by size: %w", err)
			}
			if n == 0 {
				break
			}
			want -= n
		}
		if err := s.vacuum(ctx); err != nil {
			return total, fmt.Errorf("retention: %w", err)
		}
	}
	return total, nil
}

// deleteOldest deletes up to n of the oldest spans, only those starting
// before cutoff when cutoff is not 0, with their links, in one
// transaction.
func (s *Store) deleteOldest(ctx context.Context, cutoff int64, n int) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	// The same SELECT twice in one write transaction picks the same rows.
	sel := `SELECT id FROM spans INDEXED BY spans_start ORDER BY start_ns LIMIT ?`
	args := []any{n}
	if cutoff != 0 {
		sel = `SELECT id FROM spans INDEXED BY spans_start WHERE start_ns < ? ORDER BY start_ns LIMIT ?`
		args = []any{cutoff, n}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM span_links WHERE span_row IN (`+sel+`)`, args...); err != nil {
		return 0, err
	}
	r, err := tx.ExecContext(ctx, `DELETE FROM spans WHERE id IN (`+sel+`)`, args...)
	if err != nil {
		return 0, err
	}
	deleted, err := r.RowsAffected()
	if err != nil {
		return 0, err
	}
	return deleted, tx.Commit()
}

// vacuum drops the resources no span points at any more and returns the
// free pages to the file system. A resource's last_ns is the latest start
// of its spans, so one whose last_ns is before the oldest stored span has
// none left: no scan of spans is needed.
func (s *Store) vacuum(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM resources WHERE last_ns < COALESCE((SELECT MIN(start_ns) FROM spans), 9223372036854775807)`); err != nil {
		return err
	}
	s.resources = map[string]int64{}
	// incremental_vacuum frees one page per step of the statement: Exec
	// steps once, so the rows must be read to the end.
	rows, err := s.db.QueryContext(ctx, `PRAGMA incremental_vacuum`)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	return rows.Close()
}

// RunRetention calls Retain every interval (default a minute) until ctx
// ends, logging what it deleted and any failure; the owner runs it in a
// goroutine it waits for.
func (s *Store) RunRetention(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := s.Retain(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.opts.Logger.Error("span retention", "err", err, "deleted", n)
		case n > 0:
			s.opts.Logger.Info("span retention", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
