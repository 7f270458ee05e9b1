package tsdb

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// This file holds the coarse rollups. A chart over days needs no minute
// resolution, and 14 days of 1-minute rollups of 10,000 series is 200
// million buckets; so Maintain compacts the 1-minute rollups of every whole
// coarse window (six chunk windows, 6 h by default) that ended more than
// CoarseAfter (48 h) ago into one chunk of CoarseStep (5-minute) buckets in
// coarse_chunks, in the rollup format, and deletes them. A 5-minute bucket
// is the 1-minute ones merged as a query would merge them (agg.addAgg, in
// time order): min of mins, max of maxes, sums and counts added, the
// latest last, so a query at CoarseStep reads the same values before and
// after, bit for bit, and one at a multiple of it the same up to the
// rounding of sums added in another grouping. A counter's increase is computed from
// the last values (Increase), which stay exact at the coarse points; a
// reset and regrowth within one bucket is no more visible than within one
// minute before.
//
// Each transaction compacts whole windows of a batch of series, so an
// interrupted compaction leaves every window either fine or coarse, never
// both; the next Maintain carries on. Rollups written by a release before
// format 2 are decoded as they are and rewritten in format 2 when they are
// compacted: that is the upgrade path of an old file, which has shed its
// old rollups CoarseAfter later.

// compactBatch is how many series one compaction transaction takes on:
// enough to amortise the commit, short enough (tens of milliseconds) not to
// hold up Append for long.
const compactBatch = 200

// coarseCut is the end of the latest coarse window that is wholly older
// than CoarseAfter at now: rollup chunks starting before it are compacted.
func (s *Store) coarseCut(now int64) int64 {
	return floorDiv(now-s.coarseAfter, s.coarseWindow) * s.coarseWindow
}

// compact turns the 1-minute rollup chunks older than coarseCut into
// coarse chunks, compactBatch series per transaction, until none is left
// or ctx is done. It does not need s.mu: the chunks it reads are sealed
// and no longer change, and a query reads both tables in one statement, so
// it sees a window before or after its transaction.
func (s *Store) compact(ctx context.Context, now int64) error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	cut := s.coarseCut(now)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ids, err := s.pendingCompaction(ctx, cut)
		if err != nil || len(ids) == 0 {
			return err
		}
		if err := s.compactSeries(ctx, ids, cut); err != nil {
			return err
		}
		if s.compacted != nil {
			s.compacted(len(ids))
		}
	}
}

// pendingCompaction returns up to compactBatch series with rollup chunks
// starting before cut.
func (s *Store) pendingCompaction(ctx context.Context, cut int64) ([]uint64, error) {
	limit := s.compactBatch
	if limit <= 0 {
		limit = compactBatch
	}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT series_id FROM rollup_chunks WHERE start < ? LIMIT ?`, cut, limit)
	if err != nil {
		return nil, fmt.Errorf("find rollups to compact: %w", err)
	}
	defer rows.Close()
	var ids []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find rollups to compact: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// compactSeries compacts, in one transaction, the rollup chunks of ids
// starting before cut.
func (s *Store) compactSeries(ctx context.Context, ids []uint64, cut int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("compact rollups: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for _, id := range ids {
		if err := s.compactOne(ctx, tx, id, cut); err != nil {
			return fmt.Errorf("compact rollups of series %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("compact rollups: %w", err)
	}
	return nil
}

// timedAgg is one bucket summary at its start time (ms).
type timedAgg struct {
	t int64
	a agg
}

func (s *Store) compactOne(ctx context.Context, tx *sql.Tx, id uint64, cut int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT start, data FROM rollup_chunks WHERE series_id = ? AND start < ? ORDER BY start`, id, cut)
	if err != nil {
		return err
	}
	all := [numCols]bool{true, true, true, true, true}
	windows := map[int64][]timedAgg{}
	for rows.Next() {
		var start int64
		var data []byte
		if err := rows.Scan(&start, &data); err != nil {
			rows.Close()
			return err
		}
		ts, aggs, err := decodeRollup(data, start, all)
		if err != nil {
			// One unreadable chunk must not stop every later compaction:
			// it is dropped with a warning, as an unreadable log row is.
			s.log.Warn("tsdb: dropping unreadable rollup chunk", "series", id, "start", start, "err", err)
			continue
		}
		w := floorDiv(start, s.coarseWindow) * s.coarseWindow
		for i, t := range ts {
			windows[w] = append(windows[w], timedAgg{t, aggs[i]})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, w := range slices.Sorted(maps.Keys(windows)) {
		parts := windows[w]
		// A window compacted before (only if chunks were sealed after
		// CoarseAfter, with unusual options) is merged, not overwritten.
		var old []byte
		switch err := tx.QueryRowContext(ctx, `SELECT data FROM coarse_chunks WHERE series_id = ? AND start = ?`, id, w).Scan(&old); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			ts, aggs, err := decodeRollup(old, w, all)
			if err != nil {
				return fmt.Errorf("coarse chunk at %d: %w", w, err)
			}
			for i, t := range ts {
				parts = append(parts, timedAgg{t, aggs[i]})
			}
		}
		data := mergeCoarse(parts, w, s.coarseStep)
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO coarse_chunks (series_id, start, data) VALUES (?, ?, ?)`, id, w, data); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM rollup_chunks WHERE series_id = ? AND start < ?`, id, cut)
	return err
}

// mergeCoarse folds bucket summaries into step buckets of the window
// starting at start, in time order, and encodes them.
func mergeCoarse(parts []timedAgg, start, step int64) []byte {
	slices.SortStableFunc(parts, func(a, b timedAgg) int { return cmp.Compare(a.t, b.t) })
	var idx []int64
	var buckets []agg
	for _, p := range parts {
		b := floorDiv(p.t-start, step)
		if len(idx) == 0 || idx[len(idx)-1] != b {
			idx = append(idx, b)
			buckets = append(buckets, agg{})
		}
		buckets[len(buckets)-1].addAgg(p.a)
	}
	return encodeAggs(step, idx, buckets)
}
