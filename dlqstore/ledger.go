package dlqstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// PendingItems returns up to limit pending items of a job after seq
// afterSeq, in order, with their entries (bodies included; the envelope's
// inner payload is not re-parsed, see fillBodiesWith).
func (s *Store) PendingItems(ctx context.Context, jobID int64, afterSeq, limit int) ([]JobItem, []Entry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT i.seq, i.entry_id, i.destination, i.prev_status FROM job_items i
WHERE i.job_id = ? AND i.state = `+lit(ItemPending)+` AND i.seq > ? ORDER BY i.seq LIMIT ?`, jobID, afterSeq, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("pending items of job %d: %w", jobID, err)
	}
	var items []JobItem
	for rows.Next() {
		it := JobItem{JobID: jobID, State: ItemPending}
		if err := rows.Scan(&it.Seq, &it.EntryID, &it.Target, &it.PrevStatus); err != nil {
			rows.Close()
			return nil, nil, err
		}
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if len(items) == 0 {
		return nil, nil, nil
	}
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.EntryID
	}
	byID, err := s.entriesByID(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	entries := make([]Entry, len(items))
	for i, it := range items {
		entries[i] = byID[it.EntryID] // ID 0 when the entry was purged meanwhile
	}
	if err := s.fillBodiesWith(ctx, entries, false); err != nil {
		return nil, nil, err
	}
	return items, entries, nil
}

// Outcome is the result of one ledger item.
type Outcome struct {
	Seq     int
	EntryID int64
	State   ItemState // sent, failed or cancelled
	Error   string
}

// CompleteItems records outcomes in one transaction: each item's ledger
// state, and its entry's status — done (with reason) for sent items, back
// to the status it had before the job for failed and cancelled ones — and
// the job's counters.
func (s *Store) CompleteItems(ctx context.Context, jobID int64, outs []Outcome, done Status, reason string) error {
	if len(outs) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		return completeTx(ctx, tx, now, jobID, outs, done, reason)
	})
	if err != nil {
		return fmt.Errorf("job %d: record outcomes: %w", jobID, err)
	}
	return nil
}

func completeTx(ctx context.Context, tx *sql.Tx, now, jobID int64, outs []Outcome, done Status, reason string) error {
	var sentSeqs []any
	var others []Outcome
	for _, o := range outs {
		if o.State == ItemSent {
			sentSeqs = append(sentSeqs, o.Seq)
		} else {
			others = append(others, o)
		}
	}
	var nDone, nFailed, nCancelled int
	// Sent items in bulk: the ledger rows that were still pending, then
	// their entries' status.
	for len(sentSeqs) > 0 {
		chunk := sentSeqs[:min(len(sentSeqs), 500)]
		sentSeqs = sentSeqs[len(chunk):]
		rows, err := tx.QueryContext(ctx, "UPDATE job_items SET state = "+lit(ItemSent)+", done_at = ? WHERE job_id = ? AND state = "+lit(ItemPending)+" AND seq IN ("+
			placeholders(len(chunk))+") RETURNING entry_id", append([]any{now, jobID}, chunk...)...)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		nDone += len(ids)
		if _, err := setStatusTx(ctx, tx, now, ids, done, reason); err != nil {
			return err
		}
	}
	if len(others) > 0 {
		upd, err := tx.PrepareContext(ctx, "UPDATE job_items SET state = ?, error = ?, done_at = ? WHERE job_id = ? AND seq = ? AND state = "+lit(ItemPending)+" RETURNING prev_status")
		if err != nil {
			return err
		}
		defer upd.Close()
		back := map[Status][]int64{}
		for _, o := range others {
			var prev Status
			err := upd.QueryRowContext(ctx, string(o.State), o.Error, now, jobID, o.Seq).Scan(&prev)
			if errors.Is(err, sql.ErrNoRows) {
				continue // recorded already
			}
			if err != nil {
				return err
			}
			back[prev] = append(back[prev], o.EntryID)
			if o.State == ItemFailed {
				nFailed++
			} else {
				nCancelled++
			}
		}
		for st, ids := range back {
			for len(ids) > 0 {
				chunk := ids[:min(len(ids), 500)]
				ids = ids[len(chunk):]
				if _, err := setStatusTx(ctx, tx, now, chunk, st, ""); err != nil {
					return err
				}
			}
		}
	}
	_, err := tx.ExecContext(ctx, "UPDATE jobs SET done = done + ?, failed = failed + ?, cancelled = cancelled + ?, updated_at = ? WHERE id = ?",
		nDone, nFailed, nCancelled, now, jobID)
	return err
}

// CancelPending ends every pending item of a job as cancelled (its entry
// back in its previous status), in transactions of 500.
func (s *Store) CancelPending(ctx context.Context, jobID int64, why string) error {
	for {
		items, _, err := s.pendingSeqs(ctx, jobID, 500)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return nil
		}
		outs := make([]Outcome, len(items))
		for i, it := range items {
			outs[i] = Outcome{Seq: it.Seq, EntryID: it.EntryID, State: ItemCancelled, Error: why}
		}
		if err := s.CompleteItems(ctx, jobID, outs, "", ""); err != nil {
			return err
		}
	}
}

func (s *Store) pendingSeqs(ctx context.Context, jobID int64, limit int) ([]JobItem, int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT seq, entry_id FROM job_items WHERE job_id = ? AND state = "+lit(ItemPending)+" ORDER BY seq LIMIT ?", jobID, limit)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []JobItem
	for rows.Next() {
		var it JobItem
		if err := rows.Scan(&it.Seq, &it.EntryID); err != nil {
			return nil, 0, err
		}
		out = append(out, it)
	}
	return out, len(out), rows.Err()
}

// JobItems returns a page of a job's ledger after seq afterSeq, and the
// seq to continue after (0 = end).
func (s *Store) JobItems(ctx context.Context, jobID int64, afterSeq, limit int) ([]JobItem, int, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, entry_id, destination, prev_status, state, error, done_at FROM job_items
WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?`, jobID, afterSeq, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("ledger of job %d: %w", jobID, err)
	}
	defer rows.Close()
	var out []JobItem
	for rows.Next() {
		it := JobItem{JobID: jobID}
		var at int64
		if err := rows.Scan(&it.Seq, &it.EntryID, &it.Target, &it.PrevStatus, &it.State, &it.Error, &at); err != nil {
			return nil, 0, err
		}
		it.DoneAt = fromNano(at)
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	next := 0
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Seq
	}
	return out, next, nil
}

// EntryJob is a ledger row of one entry with its job.
type EntryJob struct {
	Job  JobRecord
	Item JobItem
}

// EntryHistory returns the jobs that acted on an entry, oldest first:
// those v may see (JobViewer), every one when v is nil. A job's reason and
// actor are the job's, which may concern other tenants' entries too, so
// the entry's page shows only the jobs its reader could open.
func (s *Store) EntryHistory(ctx context.Context, entryID int64, v *JobViewer) ([]EntryJob, error) {
	q := `SELECT i.seq, i.destination, i.prev_status, i.state, i.error, i.done_at, j.` + strings.ReplaceAll(jobColumns, ", ", ", j.") + `
FROM job_items i JOIN jobs j ON j.id = i.job_id WHERE i.entry_id = ?`
	args := []any{entryID}
	if v != nil {
		c, a := v.cond()
		q += " AND " + c
		args = append(args, a...)
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY j.id", args...)
	if err != nil {
		return nil, fmt.Errorf("history of entry %d: %w", entryID, err)
	}
	defer rows.Close()
	var out []EntryJob
	for rows.Next() {
		var h EntryJob
		var at int64
		if h.Job, err = scanJob(rows, &h.Item.Seq, &h.Item.Target, &h.Item.PrevStatus, &h.Item.State, &h.Item.Error, &at); err != nil {
			return nil, err
		}
		h.Item.JobID, h.Item.EntryID, h.Item.DoneAt = h.Job.ID, entryID, fromNano(at)
		out = append(out, h)
	}
	return out, rows.Err()
}
