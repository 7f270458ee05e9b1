package dlqstore

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"
)

// noText is the rowid bound of an empty full-text index.
const noText = math.MaxInt64

// Which entries lack their text: new entries get theirs in the transaction
// that stores them (insert), so after migration 7 emptied the index the
// entries without text are exactly those below its lowest rowid — the
// rebuild walks down from the newest, and purging an entry removes its
// text with it. The index itself is the rebuild's progress: nothing else
// to keep, and nothing to get out of step.
const (
	lowestTextSQL  = "SELECT coalesce((SELECT rowid FROM entries_fts ORDER BY rowid LIMIT 1), ?)"
	textPendingSQL = "SELECT EXISTS (SELECT 1 FROM entries WHERE id < (" + lowestTextSQL + "))"
)

// rebuildPause is how long RebuildText waits between transactions (at
// least as long as the last one took): SQLite's busy handler lets a
// waiting writer — an indexer, a job — retry every 100 ms at most, and a
// rebuild that took the write lock again at once would starve it.
const rebuildPause = 100 * time.Millisecond

// checkText notes whether entries are missing from the full-text index.
func (s *Store) checkText(ctx context.Context) error {
	var pending bool
	if err := s.db.QueryRowContext(ctx, textPendingSQL, int64(noText)).Scan(&pending); err != nil {
		return fmt.Errorf("check the search index: %w", err)
	}
	s.textPending.Store(pending)
	return nil
}

// RebuildText puts the entries stored before the full-text index had its
// present columns (migration 7 created it anew, empty) into it, the most
// recently indexed first, Tuning.TextRebuildBatch entries a transaction with a pause
// between them, so that indexing, jobs and searches go on meanwhile. It
// returns nil once every entry is in the index — at once when none is
// missing — or ctx's error; a later call resumes where it stopped. Until
// it has finished, a text search may miss older entries, and Page says so
// (TextPending). cmd/console runs it in the background at start.
func (s *Store) RebuildText(ctx context.Context) error {
	if !s.textPending.Load() {
		return nil
	}
	start := time.Now()
	var missing int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM entries WHERE id < ("+lowestTextSQL+")", int64(noText)).Scan(&missing); err != nil {
		return fmt.Errorf("rebuild the search index: %w", err)
	}
	s.logger.Info("dlqstore: rebuilding the search index for older entries; until it is done a search may miss them", "entries", missing)
	done, logged := 0, time.Now()
	for {
		t := time.Now()
		n, err := s.rebuildTextBatch(ctx)
		if err != nil {
			return fmt.Errorf("rebuild the search index: %w", err)
		}
		done += n
		if n == 0 {
			s.textPending.Store(false)
			s.logger.Info("dlqstore: search index rebuilt", "entries", done, "duration", time.Since(start).Round(time.Millisecond).String())
			return nil
		}
		if time.Since(logged) >= 10*time.Second {
			s.logger.Info("dlqstore: rebuilding the search index", "done", done, "of", missing)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(max(rebuildPause, time.Since(t))):
		}
	}
}

// rebuildTextBatch indexes the newest entries without text, up to
// Tuning.TextRebuildBatch, in one write transaction, and returns how many.
// An entry whose record cannot be read still gets its ids and DLQ, so that
// the walk always moves down.
func (s *Store) rebuildTextBatch(ctx context.Context) (int, error) {
	n := 0
	err := s.write(ctx, func(tx *sql.Tx, _ int64) error {
		rows, err := tx.QueryContext(ctx, `SELECT e.id, e.tenant, e.event_type, e.error_code, e.broker, e.cluster, e.destination, e.resource,
	coalesce(e.message_id, ''), b.payload, b.headers, b.record
FROM entries e LEFT JOIN entry_bodies b ON b.id = e.id
WHERE e.id < (`+lowestTextSQL+`) ORDER BY e.id DESC LIMIT ?`, int64(noText), s.tuning.TextRebuildBatch)
		if err != nil {
			return err
		}
		type stored struct {
			id   int64
			text entryText
		}
		var batch []stored
		for rows.Next() {
			var id int64
			var f entryFilters
			var mid string
			var payload, headers, record []byte
			if err := rows.Scan(&id, &f.tenant, &f.eventType, &f.errorCode, &f.broker, &f.cluster, &f.destination, &f.resource,
				&mid, &payload, &headers, &record); err != nil {
				rows.Close()
				return err
			}
			it := IndexItem{MessageID: mid}
			// The envelope's inner payload is not searched (the payload
			// is): no need to parse it again.
			if dl, err := decodeRecord(record, payload, headers, true); err == nil {
				it.DL = dl
			}
			batch = append(batch, stored{id, textOf(id, &it, f)})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		ins, err := tx.PrepareContext(ctx, insertTextSQL)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, b := range batch {
			if _, err := ins.ExecContext(ctx, b.text.args(b.id)...); err != nil {
				return fmt.Errorf("entry %d: %w", b.id, err)
			}
		}
		n = len(batch)
		return nil
	})
	return n, err
}

// textLag says how far the full-text index is behind the entries: behind is
// how long ago the oldest entry stored after the index's newest text was
// captured (0 when the index holds every new entry), and older whether
// entries stored before the index had its present columns are still
// missing (RebuildText). Filters and counts never lag; only text does.
func (s *Store) textLag(context.Context) (behind time.Duration, older bool, err error) {
	return 0, s.textPending.Load(), nil
}

// WaitText returns once the full-text index holds every entry committed
// before the call, or ctx's error.
func (s *Store) WaitText(context.Context) error { return nil }
