package dlqstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// PendingItems returns up to limit pending items of a job after seq
// afterSeq, in order, with their entries as far as sending them takes
// (pendingSends): one query over the ledger, entries and bodies, and of
// each record only what a send reads. An entry purged meanwhile comes back
// with ID 0. Every caller is a job's runner; a page that shows an entry
// reads it whole with Entry.
func (s *Store) PendingItems(ctx context.Context, jobID int64, afterSeq, limit int) ([]JobItem, []Entry, error) {
	return s.pendingSends(ctx, jobID, afterSeq, limit)
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
	var sent []int
	var others []Outcome
	for _, o := range outs {
		if o.State == ItemSent {
			sent = append(sent, o.Seq)
		} else {
			others = append(others, o)
		}
	}
	var nDone, nFailed, nCancelled int
	// A job that holds its entries has them counted in its hold status.
	var hold Status
	if err := tx.QueryRowContext(ctx, "SELECT hold FROM jobs WHERE id = ?", jobID).Scan(&hold); err != nil {
		return fmt.Errorf("job %d: %w", jobID, err)
	}
	// Sent items by runs of consecutive seqs (a whole batch is one run
	// when nothing in it failed): their entries' status and the ledger
	// rows, each a statement per run over the rows still pending.
	slices.Sort(sent)
	for i := 0; i < len(sent); {
		j := i + 1
		for j < len(sent) && sent[j] <= sent[j-1]+1 {
			j++
		}
		lo, hi := sent[i], sent[j-1]
		i = j
		if _, err := moveItemsTx(ctx, tx, now, jobID, lo-1, hi, itemMove{From: hold, To: done, Reason: reason, Write: true}); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE job_items SET state = "+lit(ItemSent)+", done_at = ? WHERE job_id = ? AND state = "+lit(ItemPending)+
			" AND seq > ? AND seq <= ?", now, jobID, lo-1, hi)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		nDone += int(n)
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
				if _, err := setStatusTx(ctx, tx, now, chunk, st, "", hold); err != nil {
					return err
				}
			}
		}
	}
	_, err := tx.ExecContext(ctx, "UPDATE jobs SET done = done + ?, failed = failed + ?, cancelled = cancelled + ?, updated_at = ? WHERE id = ?",
		nDone, nFailed, nCancelled, now, jobID)
	return err
}

// itemMove is what moveItemsTx does to the entries of a range of a job's
// pending items: move them in the counts from From ("" = each entry's own
// status, and only entries not in To already) to To, and, when Write is
// set, set their status to To (those not in it already), with Reason.
type itemMove struct {
	From, To Status
	Reason   string
	Write    bool
}

// moveItemsTx moves the entries of a job's pending items with seq in
// (after, upTo] as m says, inside tx, and returns how many moved in the
// counts. It is setStatusTx for a range of the ledger: the entries are
// found through the ledger in SQL, the stats rows they leave and join are
// summed by SQL per key (a batch of one group and tenant is one row), and
// the entries change in one UPDATE, instead of a bound id each.
func moveItemsTx(ctx context.Context, tx *sql.Tx, now, jobID int64, after, upTo int, m itemMove) (int, error) {
	ids := `SELECT entry_id FROM job_items WHERE job_id = ?2 AND state = ` + lit(ItemPending) + ` AND seq > ?3 AND seq <= ?4`
	from, which, args := "?5", "1", []any{string(m.To), jobID, after, upTo, string(m.From)}
	if m.From == "" {
		from, which, args = "status", "status != ?1", args[:4]
	}
	rows, err := tx.QueryContext(ctx, `SELECT group_id, tenant, broker, cluster, destination, resource, event_type, `+from+`, refailed_as != 0,
	count(*), min(last_failure_at), max(last_failure_at)
FROM entries WHERE `+which+` AND id IN (`+ids+`) GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9`, args...)
	if err != nil {
		return 0, err
	}
	stats := map[statKey]*statDelta{}
	add := func(k statKey, n int, first, last int64) {
		d := stats[k]
		if d == nil {
			d = &statDelta{first: first, last: last}
			stats[k] = d
		}
		d.n += n
		d.first, d.last = min(d.first, first), max(d.last, last)
	}
	moved := 0
	for rows.Next() {
		var k statKey
		var n int
		var first, last int64
		if err := rows.Scan(&k.group, &k.tenant, &k.broker, &k.cluster, &k.destination, &k.resource, &k.eventType, &k.status, &k.refailed, &n, &first, &last); err != nil {
			rows.Close()
			return 0, err
		}
		if k.status == m.To {
			continue // counted in To already
		}
		add(k, -n, first, last)
		k.status = m.To
		add(k, n, first, last)
		moved += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if m.Write {
		if _, err := tx.ExecContext(ctx, "UPDATE entries SET status = ?1, status_reason = ?5, updated_at = ?6 WHERE status != ?1 AND id IN ("+ids+")",
			string(m.To), jobID, after, upTo, m.Reason, now); err != nil {
			return 0, err
		}
	}
	return moved, applyStats(ctx, tx, stats)
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
