package dlqstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"switchyard/delivery"
)

// purgeBatch is how many entries one Purge transaction deletes, so that
// indexing is never blocked for long.
const purgeBatch = 1000

// Purge deletes resolved and discarded entries whose last status change is
// before resolvedBefore, with their bodies and full-text rows, in batches of one
// transaction each, and returns how many it deleted. Dead, quarantined,
// redriving and redriven entries are never purged: unresolved failures do
// not disappear silently.
func (s *Store) Purge(ctx context.Context, resolvedBefore time.Time) (int64, error) {
	var total int64
	for {
		var n int
		err := s.writeThen(ctx, func(tx *sql.Tx, _ int64) error {
			var err error
			n, err = purgeOnce(ctx, tx, unixNano(resolvedBefore))
			return err
		}, func() {
			if n > 0 {
				s.clearTextQueue()
			}
		})
		if err != nil {
			return total, fmt.Errorf("purge: %w", err)
		}
		total += int64(n)
		if n < purgeBatch {
			return total, nil
		}
	}
}

func purgeOnce(ctx context.Context, tx *sql.Tx, before int64) (int, error) {
	// The condition repeats the partial index's WHERE so that SQLite uses it.
	rows, err := tx.QueryContext(ctx, `SELECT id, group_id, tenant, broker, cluster, destination, resource, event_type, status, refailed_as != 0 FROM entries
WHERE status IN (`+lit(StatusResolved)+`, `+lit(StatusDiscarded)+`) AND updated_at < ? LIMIT ?`, before, purgeBatch)
	if err != nil {
		return 0, err
	}
	type victim struct {
		id int64
		k  statKey
	}
	var vs []victim
	for rows.Next() {
		var v victim
		if err := rows.Scan(&v.id, &v.k.group, &v.k.tenant, &v.k.broker, &v.k.cluster, &v.k.destination, &v.k.resource, &v.k.eventType, &v.k.status, &v.k.refailed); err != nil {
			rows.Close()
			return 0, err
		}
		vs = append(vs, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(vs) == 0 {
		return 0, nil
	}
	delFTS, err := tx.PrepareContext(ctx, "DELETE FROM entries_fts WHERE rowid = ?")
	if err != nil {
		return 0, err
	}
	defer delFTS.Close()
	delEntry, err := tx.PrepareContext(ctx, "DELETE FROM entries WHERE id = ?")
	if err != nil {
		return 0, err
	}
	defer delEntry.Close()
	delBody, err := tx.PrepareContext(ctx, "DELETE FROM entry_bodies WHERE id = ?")
	if err != nil {
		return 0, err
	}
	defer delBody.Close()
	prog, err := readProgress(ctx, tx)
	if err != nil {
		return 0, err
	}
	stats := map[statKey]*statDelta{}
	groups := map[int64]int{}
	for _, v := range vs {
		// Only (below, above] has its text (rebuild.go); the text
		// indexer checks that what it read was not purged meanwhile.
		if v.id > prog.below && v.id <= prog.above {
			if _, err := delFTS.ExecContext(ctx, v.id); err != nil {
				return 0, fmt.Errorf("delete text of entry %d: %w", v.id, err)
			}
		}
		if _, err := delEntry.ExecContext(ctx, v.id); err != nil {
			return 0, fmt.Errorf("delete entry %d: %w", v.id, err)
		}
		if _, err := delBody.ExecContext(ctx, v.id); err != nil {
			return 0, fmt.Errorf("delete entry %d: %w", v.id, err)
		}
		d := stats[v.k]
		if d == nil {
			d = &statDelta{}
			stats[v.k] = d
		}
		d.n--
		if !v.k.refailed { // a re-failed entry is no longer in its group's count
			groups[v.k.group]++
		}
	}
	for gid, n := range groups {
		if _, err := tx.ExecContext(ctx, "UPDATE groups SET count = max(count - ?, 0) WHERE id = ?", n, gid); err != nil {
			return 0, err
		}
	}
	// Entry ids are rowids without AUTOINCREMENT: with the highest ones
	// gone, the next entries reuse them, and the text indexer must take
	// them for new.
	if _, err := tx.ExecContext(ctx, `UPDATE text_progress SET above = min(above, m), below = min(below, m), purges = purges + 1
FROM (SELECT coalesce(max(id), 0) AS m FROM entries) WHERE id = 1`); err != nil {
		return 0, fmt.Errorf("text progress: %w", err)
	}
	return len(vs), applyStats(ctx, tx, stats)
}

// SetStatus sets the status of the given entries and returns how many
// changed. Status changes go through here (and the job ledger, which uses
// the same transaction step) so that the per-tenant counts stay exact;
// retention counts from this change. Errors: EINVALID for an unknown status.
func (s *Store) SetStatus(ctx context.Context, ids []int64, status Status) (int, error) {
	if !status.Valid() {
		return 0, delivery.Errorf(delivery.EINVALID, "unknown status %q", status)
	}
	changed := 0
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		err := s.write(ctx, func(tx *sql.Tx, now int64) error {
			n, err := setStatusTx(ctx, tx, now, chunk, status, "", "")
			changed += n
			return err
		})
		if err != nil {
			return changed, fmt.Errorf("set status %s: %w", status, err)
		}
	}
	return changed, nil
}

// setStatusTx moves the entries ids (at most 500) that are not already in
// status to it, with reason as their status_reason, and updates
// group_stats, inside tx. from is the status the counts hold them in: a
// job's hold for the entries it gives back (they move in the counts even
// when their own status is status already), or "" for their own, and then
// an entry a job holds is left alone (it is the job's to move).
func setStatusTx(ctx context.Context, tx *sql.Tx, now int64, ids []int64, status Status, reason string, from Status) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	idArgs := make([]any, 0, len(ids))
	for _, id := range ids {
		idArgs = append(idArgs, id)
	}
	in := placeholders(len(ids))
	// Which entries move: their own status decides (the held ones are
	// left to their job), or the job's hold, for all of them.
	free := " AND " + heldStatus("entries") + " IS NULL"
	col, which, args := "status", "status != ?"+free, append([]any{string(status)}, idArgs...)
	if from != "" {
		free = ""
		col, which, args = lit(from), "1", idArgs
	}
	rows, err := tx.QueryContext(ctx, `SELECT group_id, tenant, broker, cluster, destination, resource, event_type, `+col+`, refailed_as != 0, last_failure_at FROM entries
WHERE `+which+` AND id IN (`+in+`)`, args...)
	if err != nil {
		return 0, err
	}
	stats := map[statKey]*statDelta{}
	n := 0
	for rows.Next() {
		var k statKey
		var t int64
		if err := rows.Scan(&k.group, &k.tenant, &k.broker, &k.cluster, &k.destination, &k.resource, &k.eventType, &k.status, &k.refailed, &t); err != nil {
			rows.Close()
			return 0, err
		}
		if k.status == status {
			continue // given back to the status it kept
		}
		addStat(stats, k, -1, t)
		k.status = status
		addStat(stats, k, 1, t)
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	uargs := append([]any{string(status), reason, now}, idArgs...)
	if _, err := tx.ExecContext(ctx, "UPDATE entries SET status = ?1, status_reason = ?2, updated_at = ?3 WHERE status != ?1"+free+" AND id IN ("+in+")", uargs...); err != nil {
		return 0, err
	}
	return n, applyStats(ctx, tx, stats)
}
