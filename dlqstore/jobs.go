package dlqstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// JobRecord is a stored job of package redrive. The store keeps it beside
// the entries so that each ledger outcome and the status change of its
// entry commit together.
type JobRecord struct {
	ID                             int64
	Action, State, Actor, Reason   string
	Access                         access.Action // what each entry is checked for (discard for a restore); required, see JobViewer
	Request                        []byte        // the caller's JSON
	Destinations                   []string
	PerDestination                 map[string]int // frozen entries per destination; set by CreateJob only
	Total, Done, Failed, Cancelled int
	Error                          string
	CanaryUntil                    time.Time
	CreatedAt, UpdatedAt           time.Time
	FinishedAt                     time.Time
}

// JobItem is one ledger row: an entry of a job and its outcome.
type JobItem struct {
	JobID       int64
	Seq         int
	EntryID     int64
	Destination string
	PrevStatus  Status
	State       string // pending, sent, failed, cancelled
	Error       string
	DoneAt      time.Time
}

// Ledger item states, as package redrive names them.
const (
	itemPending   = "pending"
	itemSent      = "sent"
	itemFailed    = "failed"
	itemCancelled = "cancelled"
)

// Selection is the entries a job acts on: IDs, a Group or a Filter (one of
// them), within Scope (the rules of the job's action; nil = everything),
// and only entries whose status is in Eligible.
type Selection struct {
	IDs      []int64
	Group    int64
	Filter   *Filter
	Scope    *TenantScope
	Eligible []Status
	// Destination, when set, replaces every entry's resource as the
	// ledger's destination (redrive elsewhere).
	Destination string
}

// MaxSelectIDs bounds an explicit id list.
const MaxSelectIDs = 10000

// selectionSQL is the FROM … WHERE of a selection on alias e, without the
// eligibility condition.
func (sel Selection) sql() (string, []any, error) {
	n := 0
	if len(sel.IDs) > 0 {
		n++
	}
	if sel.Group != 0 {
		n++
	}
	if sel.Filter != nil {
		n++
	}
	if n != 1 {
		return "", nil, delivery.Errorf(delivery.EINVALID, "a selection needs exactly one of ids, group or filter")
	}
	var cs []string
	var args []any
	switch {
	case len(sel.IDs) > 0:
		if len(sel.IDs) > MaxSelectIDs {
			return "", nil, delivery.Errorf(delivery.EINVALID, "at most %d ids in one selection; select by filter or group instead", MaxSelectIDs)
		}
		cs = append(cs, "e.id IN ("+placeholders(len(sel.IDs))+")")
		for _, id := range sel.IDs {
			args = append(args, id)
		}
	case sel.Group != 0:
		cs = append(cs, "e.group_id = ?")
		args = append(args, sel.Group)
	default:
		f := *sel.Filter
		if err := f.Validate(); err != nil {
			return "", nil, err
		}
		var match string
		if strings.TrimSpace(f.Q) != "" {
			var err error
			if match, err = ftsQuery(f.Q); err != nil {
				return "", nil, err
			}
		}
		f.Tenants = nil // the scope below is the job's
		w := where{f: f, match: match, mode: ftsSet}
		c, a := w.conds(false)
		cs = append(cs, c...)
		args = append(args, a...)
	}
	tenants, visible := scopeTenants(sel.Scope)
	if !visible {
		cs = append(cs, "0")
	}
	if tenants != nil {
		cs = append(cs, "e.tenant IN ("+placeholders(len(tenants))+")")
		for _, t := range tenants {
			args = append(args, t)
		}
	}
	if c, a := sel.Scope.ruleCond("e.resource", "e.tenant"); c != "" {
		cs = append(cs, c)
		args = append(args, a...)
	}
	if len(cs) == 0 {
		cs = append(cs, "1") // a filter without conditions, for a caller who sees everything
	}
	return "entries e WHERE " + strings.Join(cs, " AND "), args, nil
}

func (sel Selection) eligible() (string, []any) {
	if len(sel.Eligible) == 0 {
		return "1", nil
	}
	var args []any
	for _, st := range sel.Eligible {
		args = append(args, string(st))
	}
	return "e.status IN (" + placeholders(len(sel.Eligible)) + ")", args
}

// SelectionPlan is what a selection holds right now.
type SelectionPlan struct {
	Count         int
	Destinations  map[string]int // by ledger destination
	Ineligible    int            // selected but in a status the action does not apply to
	Sample        []Entry        // the first entries (by id), with bodies
	ByStatus      map[Status]int // eligible entries by status
	TruncatedBody int            // eligible entries whose stored payload was cut
}

// PlanSelection counts a selection as CreateJob would freeze it, per
// destination, with a sample of up to sample entries. Errors: EINVALID.
func (s *Store) PlanSelection(ctx context.Context, sel Selection, sample int) (SelectionPlan, error) {
	from, args, err := sel.sql()
	if err != nil {
		return SelectionPlan{}, err
	}
	elig, eargs := sel.eligible()
	p := SelectionPlan{Destinations: map[string]int{}, ByStatus: map[Status]int{}}
	rows, err := s.db.QueryContext(ctx, "SELECT e.resource, e.status, e.truncated, ("+elig+") AS ok, count(*) FROM "+from+" GROUP BY 1, 2, 3, 4",
		append(slices.Clone(eargs), args...)...)
	if err != nil {
		return p, searchError(filterQ(sel), fmt.Errorf("plan: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var res string
		var st Status
		var trunc, ok, n int
		if err := rows.Scan(&res, &st, &trunc, &ok, &n); err != nil {
			return p, fmt.Errorf("plan: %w", err)
		}
		if ok == 0 {
			p.Ineligible += n
			continue
		}
		p.Count += n
		p.ByStatus[st] += n
		if trunc != 0 {
			p.TruncatedBody += n
		}
		p.Destinations[cmpOr(sel.Destination, res)] += n
	}
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("plan: %w", err)
	}
	rows.Close()
	if sample > 0 && p.Count > 0 {
		q := "SELECT " + entryColumns + ", e.last_failure_at FROM " + from + " AND " + elig + " ORDER BY e.id LIMIT ?"
		srows, err := s.db.QueryContext(ctx, q, append(append(slices.Clone(args), eargs...), sample)...)
		if err != nil {
			return p, fmt.Errorf("plan sample: %w", err)
		}
		for srows.Next() {
			e, _, err := scanEntry(srows)
			if err != nil {
				srows.Close()
				return p, fmt.Errorf("plan sample: %w", err)
			}
			p.Sample = append(p.Sample, e)
		}
		srows.Close()
		if err := srows.Err(); err != nil {
			return p, fmt.Errorf("plan sample: %w", err)
		}
		if err := s.fillBodies(ctx, p.Sample); err != nil {
			return p, fmt.Errorf("plan sample: %w", err)
		}
	}
	return p, nil
}

func filterQ(sel Selection) string {
	if sel.Filter != nil {
		return sel.Filter.Q
	}
	return ""
}

// JobFreezing is the state of a job whose set is being frozen in several
// transactions (a selection of more than freezeOneTx entries); a job found
// in it after a restart was interrupted and is ended by its runner.
const JobFreezing = "freezing"

// freezeOneTx is the largest selection frozen in one transaction, and
// freezeChunk how many entries each transaction of a bigger one takes, so
// that the indexers never wait long on the write lock.
var freezeOneTx, freezeChunk = 20000, 10000

// CreateJob stores j (ID, Total, Destinations and times are set) and
// freezes its selection: one pending ledger item per eligible selected
// entry, in entry id order (the order the records reached their DLQ), and,
// when hold is set, those entries move to hold (redriving) so that no other
// job takes them. Entries that fail later do not join: the set is bounded
// by the highest entry id when it starts. Up to freezeOneTx entries this is
// one transaction; a bigger set is frozen freezeChunk entries at a time
// while the job is JobFreezing, and gets j.State at the end. A selection of
// nothing is EINVALID.
func (s *Store) CreateJob(ctx context.Context, j JobRecord, sel Selection, hold Status) (JobRecord, error) {
	if j.Access == "" {
		return j, fmt.Errorf("create job: the access action its entries are checked against is missing")
	}
	from, args, err := sel.sql()
	if err != nil {
		return j, err
	}
	elig, eargs := sel.eligible()
	var count int
	var maxID int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+from+" AND "+elig+" LIMIT ?)",
		append(append(slices.Clone(args), eargs...), freezeOneTx+1)...).Scan(&count); err != nil {
		return j, fmt.Errorf("create job: %w", searchError(filterQ(sel), err))
	}
	if count == 0 {
		return j, delivery.Errorf(delivery.EINVALID, "the selection holds no entry this action applies to")
	}
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM entries").Scan(&maxID); err != nil {
		return j, fmt.Errorf("create job: %w", err)
	}
	chunked := count > freezeOneTx
	final := j.State
	limit := ""
	if chunked {
		// Walk the entries by id (no index: the set is big, and its
		// order is the id's), a chunk per transaction.
		from = strings.Replace(from, "entries e WHERE", "entries e NOT INDEXED WHERE", 1)
		limit = " LIMIT " + strconv.Itoa(freezeChunk)
	}
	seq, after, done := 0, int64(0), false
	for !done {
		err = s.write(ctx, func(tx *sql.Tx, now int64) error {
			if j.ID == 0 {
				state := final
				if chunked {
					state = JobFreezing
				}
				res, err := tx.ExecContext(ctx, `INSERT INTO jobs (action, state, actor, reason, request, access, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
					j.Action, state, j.Actor, j.Reason, j.Request, string(j.Access), now, now)
				if err != nil {
					return err
				}
				if j.ID, err = res.LastInsertId(); err != nil {
					return err
				}
				j.CreatedAt = fromNano(now)
				if sel.Destination != "" {
					if _, err := tx.ExecContext(ctx, "INSERT INTO job_scopes (job_id, action, resource, tenant) VALUES (?, ?, ?, '')",
						j.ID, string(access.ActionRedriveElsewhere), sel.Destination); err != nil {
						return err
					}
				}
			}
			q := `INSERT INTO job_items (job_id, seq, entry_id, destination, prev_status)
SELECT ?, ? + row_number() OVER (ORDER BY id), id, dest, status FROM (
	SELECT e.id AS id, ` + destExpr(sel) + ` AS dest, e.status AS status FROM ` + from + " AND " + elig + ` AND e.id > ? AND e.id <= ?
	ORDER BY e.id` + limit + `)`
			qargs := []any{j.ID, seq}
			if sel.Destination != "" {
				qargs = append(qargs, sel.Destination)
			}
			qargs = append(append(append(qargs, args...), eargs...), after, maxID)
			res, err := tx.ExecContext(ctx, q, qargs...)
			if err != nil {
				return searchError(filterQ(sel), err)
			}
			n64, _ := res.RowsAffected()
			n := int(n64)
			if n > 0 {
				if err := tx.QueryRowContext(ctx, "SELECT entry_id FROM job_items WHERE job_id = ? AND seq = ?", j.ID, seq+n).Scan(&after); err != nil {
					return err
				}
				// Who may see the job: the chunk's (resource, tenant)
				// pairs, in the transaction that freezes it, so that
				// job_scopes always covers the ledger.
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO job_scopes (job_id, action, resource, tenant)
SELECT DISTINCT i.job_id, ?, e.resource, e.tenant FROM job_items i JOIN entries e ON e.id = i.entry_id WHERE i.job_id = ? AND i.seq > ?`,
					string(j.Access), j.ID, seq); err != nil {
					return err
				}
				if hold != "" {
					if err := holdItems(ctx, tx, now, j.ID, seq, hold); err != nil {
						return err
					}
				}
			}
			seq += n
			done = !chunked || n < freezeChunk
			if !done {
				return nil
			}
			if seq == 0 {
				return delivery.Errorf(delivery.EINVALID, "the selection holds no entry this action applies to")
			}
			j.Total = seq
			return finishFreeze(ctx, tx, now, &j, final)
		})
		if err != nil {
			if j.ID != 0 && chunked {
				// Frozen in part: end it, returning what it held.
				s.abandonJob(context.WithoutCancel(ctx), j.ID, "freezing failed: "+err.Error())
			}
			return j, fmt.Errorf("create job: %w", err)
		}
	}
	return j, nil
}

// finishFreeze records a frozen job's total and destinations and gives it
// its state.
func finishFreeze(ctx context.Context, tx *sql.Tx, now int64, j *JobRecord, state string) error {
	rows, err := tx.QueryContext(ctx, "SELECT destination, count(*) FROM job_items WHERE job_id = ? GROUP BY 1 ORDER BY 1", j.ID)
	if err != nil {
		return err
	}
	var dests []string
	j.PerDestination = map[string]int{}
	for rows.Next() {
		var d string
		var n int
		if err := rows.Scan(&d, &n); err != nil {
			rows.Close()
			return err
		}
		dests = append(dests, d)
		j.PerDestination[d] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	j.Destinations = dests
	db, _ := json.Marshal(dests)
	j.State, j.UpdatedAt = state, fromNano(now)
	_, err = tx.ExecContext(ctx, "UPDATE jobs SET total = ?, destinations = ?, state = ?, scoped = 1, updated_at = ? WHERE id = ?", j.Total, string(db), state, now, j.ID)
	return err
}

// abandonJob ends a job whose freezing did not finish: its items are
// cancelled (entries back in their previous status) and it is failed.
func (s *Store) abandonJob(ctx context.Context, id int64, why string) {
	if err := s.CancelPending(ctx, id, why); err != nil {
		s.logger.Error("dlqstore: abandoning a half-frozen job failed", "job", id, "err", err)
		return
	}
	// Its job_scopes cover the chunks it froze (each written with its
	// chunk), so it is judged like any job from now on; one left freezing
	// by a version before migration 5 only if every entry is still there to
	// say its tenant (as the migration decides).
	if _, err := s.db.ExecContext(ctx, `UPDATE jobs SET total = (SELECT count(*) FROM job_items WHERE job_id = ?1), state = 'failed', error = ?2, updated_at = ?3, finished_at = ?3,
	scoped = NOT EXISTS (SELECT 1 FROM job_items i WHERE i.job_id = ?1 AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.id = i.entry_id))
WHERE id = ?1`,
		id, why, unixNano(s.now())); err != nil {
		s.logger.Error("dlqstore: abandoning a half-frozen job failed", "job", id, "err", err)
	}
}

// AbandonFreezing ends every job left JobFreezing (the process stopped while
// freezing it) and returns their ids.
func (s *Store) AbandonFreezing(ctx context.Context) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id FROM jobs WHERE finished_at = 0 AND state = ?", JobFreezing)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		s.abandonJob(ctx, id, "the console stopped while freezing this job's entries; nothing was sent: start it again")
	}
	return ids, nil
}

func destExpr(sel Selection) string {
	if sel.Destination != "" {
		return "?"
	}
	return "e.resource"
}

// holdItems moves the pending entries of a job after seq from to status,
// 500 at a time.
func holdItems(ctx context.Context, tx *sql.Tx, now, jobID int64, from int, status Status) error {
	for after := from; ; {
		rows, err := tx.QueryContext(ctx, "SELECT seq, entry_id FROM job_items WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT 500", jobID, after)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&after, &id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := setStatusTx(ctx, tx, now, ids, status, ""); err != nil {
			return err
		}
	}
}

// PendingItems returns up to limit pending items of a job after seq
// afterSeq, in order, with their entries (bodies included; the envelope's
// inner payload is not re-parsed, see fillBodiesWith).
func (s *Store) PendingItems(ctx context.Context, jobID int64, afterSeq, limit int) ([]JobItem, []Entry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT i.seq, i.entry_id, i.destination, i.prev_status FROM job_items i
WHERE i.job_id = ? AND i.state = 'pending' AND i.seq > ? ORDER BY i.seq LIMIT ?`, jobID, afterSeq, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("pending items of job %d: %w", jobID, err)
	}
	var items []JobItem
	for rows.Next() {
		it := JobItem{JobID: jobID, State: itemPending}
		if err := rows.Scan(&it.Seq, &it.EntryID, &it.Destination, &it.PrevStatus); err != nil {
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
	State   string // sent, failed or cancelled
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
		if o.State == itemSent {
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
		rows, err := tx.QueryContext(ctx, "UPDATE job_items SET state = 'sent', done_at = ? WHERE job_id = ? AND state = 'pending' AND seq IN ("+
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
		upd, err := tx.PrepareContext(ctx, "UPDATE job_items SET state = ?, error = ?, done_at = ? WHERE job_id = ? AND seq = ? AND state = 'pending' RETURNING prev_status")
		if err != nil {
			return err
		}
		defer upd.Close()
		back := map[Status][]int64{}
		for _, o := range others {
			var prev Status
			err := upd.QueryRowContext(ctx, o.State, o.Error, now, jobID, o.Seq).Scan(&prev)
			if errors.Is(err, sql.ErrNoRows) {
				continue // recorded already
			}
			if err != nil {
				return err
			}
			back[prev] = append(back[prev], o.EntryID)
			if o.State == itemFailed {
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
			outs[i] = Outcome{Seq: it.Seq, EntryID: it.EntryID, State: itemCancelled, Error: why}
		}
		if err := s.CompleteItems(ctx, jobID, outs, "", ""); err != nil {
			return err
		}
	}
}

func (s *Store) pendingSeqs(ctx context.Context, jobID int64, limit int) ([]JobItem, int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT seq, entry_id FROM job_items WHERE job_id = ? AND state = 'pending' ORDER BY seq LIMIT ?", jobID, limit)
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

// SetJobState sets a job's state and error; finished stamps finished_at. A
// job being cancelled keeps that state until it is finished.
func (s *Store) SetJobState(ctx context.Context, id int64, state, errText string, finished bool) error {
	now := unixNano(s.now())
	fin := int64(0)
	if finished {
		fin = now
	}
	// A cancel is not undone by the runner's own updates (a canary or
	// an outage pause ending): only the end of the job replaces it.
	q := "UPDATE jobs SET state = ?, error = ?, updated_at = ?, finished_at = CASE WHEN ? != 0 THEN ? ELSE finished_at END WHERE id = ?"
	if !finished {
		q += " AND finished_at = 0" // an ended job stays ended
		if state != "cancelling" {
			q += " AND state != 'cancelling'"
		}
	}
	_, err := s.db.ExecContext(ctx, q, state, errText, now, fin, fin, id)
	if err != nil {
		return fmt.Errorf("job %d: set state: %w", id, err)
	}
	return nil
}

// SetCanaryUntil records when a job's canary window ends.
func (s *Store) SetCanaryUntil(ctx context.Context, id int64, until time.Time) error {
	_, err := s.db.ExecContext(ctx, "UPDATE jobs SET canary_until = ?, updated_at = ? WHERE id = ?", unixNano(until), unixNano(s.now()), id)
	return err
}

const jobColumns = `id, action, state, actor, reason, request, access, destinations, total, done, failed, cancelled, error, canary_until, created_at, updated_at, finished_at`

func scanJob(r scanner) (JobRecord, error) {
	var j JobRecord
	var dests string
	var cu, ca, ua, fa int64
	if err := r.Scan(&j.ID, &j.Action, &j.State, &j.Actor, &j.Reason, &j.Request, &j.Access, &dests, &j.Total, &j.Done, &j.Failed, &j.Cancelled,
		&j.Error, &cu, &ca, &ua, &fa); err != nil {
		return j, err
	}
	if dests != "" {
		_ = json.Unmarshal([]byte(dests), &j.Destinations)
	}
	j.CanaryUntil, j.CreatedAt, j.UpdatedAt, j.FinishedAt = fromNano(cu), fromNano(ca), fromNano(ua), fromNano(fa)
	return j, nil
}

// JobViewer is a principal asking about jobs, as the rules under which
// they may do each access action a job can need (access.Policy.Rules):
// the job's Access on each of its entries, and redrive_elsewhere on the
// destination of a redrive elsewhere.
//
// A job is visible to a viewer — listed, read, its ledger paged, cancelled,
// shown in an entry's history — only when their rules allow every
// (action, resource, tenant) the job needs (its job_scopes: the distinct
// resources and tenants of its entries, recorded when the set is frozen),
// or when their rules for the job's Access are unrestricted (every
// resource, every tenant: an admin). This is what the engine demanded of
// whoever started the job, so a job is visible to those who could have
// started it. Being its actor counts for nothing: an operator whose
// bindings shrank later no longer sees their old jobs of other tenants
// (an admin still does). A job whose big set is still being frozen has
// an incomplete scope, so only an admin sees it until it is frozen.
type JobViewer struct {
	Rules map[access.Action][]access.Rule
}

// cond is the SQL condition on jobs alias j that keeps the jobs v may
// see: a NOT EXISTS over the job's few job_scopes rows, so that a list
// pages in the query (never a short page) without reading any ledger.
func (v JobViewer) cond() (string, []any) {
	var allowed []string  // per action: a job_scopes row s this viewer's rules allow
	var aargs, free []any // free: actions whose rules are unrestricted
	for _, a := range slices.Sorted(maps.Keys(v.Rules)) {
		if len(v.Rules[a]) == 0 {
			continue
		}
		c, args := (&TenantScope{All: true, Rules: v.Rules[a]}).ruleCond("s.resource", "s.tenant")
		switch c {
		case "0":
			continue
		case "":
			free = append(free, string(a))
			allowed = append(allowed, "s.action = ?")
			aargs = append(aargs, string(a))
		default:
			allowed = append(allowed, "(s.action = ? AND "+c+")")
			aargs = append(append(aargs, string(a)), args...)
		}
	}
	if len(allowed) == 0 {
		return "0", nil
	}
	admin := "0"
	if len(free) > 0 {
		admin = "j.access IN (" + placeholders(len(free)) + ")"
	}
	// A scoped job has rows for its own action (CreateJob refuses an
	// empty set); the EXISTS keeps a job without them to admins anyway.
	return "((j.scoped = 1 AND EXISTS (SELECT 1 FROM job_scopes s WHERE s.job_id = j.id AND s.action = j.access)) OR " + admin + ")" +
			" AND NOT EXISTS (SELECT 1 FROM job_scopes s WHERE s.job_id = j.id AND NOT (" + strings.Join(allowed, " OR ") + "))",
		append(free, aargs...)
}

// Job returns one job, whoever may see it: for the engine's runner. Pages,
// API and CLI read jobs through ViewJob. Errors: ENOTFOUND.
func (s *Store) Job(ctx context.Context, id int64) (JobRecord, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, "SELECT "+jobColumns+" FROM jobs WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, delivery.Errorf(delivery.ENOTFOUND, "job %d not found", id)
	}
	if err != nil {
		return j, fmt.Errorf("job %d: %w", id, err)
	}
	return j, nil
}

// ViewJob returns one job if v may see it (JobViewer). Errors: ENOTFOUND,
// for a job that does not exist and for one v may not see alike, so that
// the answer does not confirm that the job exists.
func (s *Store) ViewJob(ctx context.Context, id int64, v JobViewer) (JobRecord, error) {
	c, args := v.cond()
	j, err := scanJob(s.db.QueryRowContext(ctx, "SELECT "+jobColumns+" FROM jobs j WHERE j.id = ? AND "+c, append([]any{id}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return j, delivery.Errorf(delivery.ENOTFOUND, "job %d not found", id)
	}
	if err != nil {
		return j, fmt.Errorf("job %d: %w", id, err)
	}
	return j, nil
}

// JobQuery selects jobs for Jobs.
type JobQuery struct {
	Running  bool  // only jobs not finished
	Finished bool  // only finished jobs
	Before   int64 // keyset: ids below (0 = from the newest)
	Limit    int   // default 50, at most 500
	// Viewer, when set, keeps only the jobs it may see, in the query;
	// nil is every job (the engine's runner).
	Viewer *JobViewer
}

// Jobs lists jobs newest first and returns the next Before (0 = last
// page). A page is short only when it is the last. Errors: EINVALID.
func (s *Store) Jobs(ctx context.Context, f JobQuery) ([]JobRecord, int64, error) {
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	if f.Running && f.Finished {
		return nil, 0, delivery.Errorf(delivery.EINVALID, "a job is either running or finished: ask for one of them")
	}
	q := "SELECT " + jobColumns + " FROM jobs j WHERE 1"
	var args []any
	switch {
	case f.Running:
		q += " AND j.finished_at = 0"
	case f.Finished:
		q += " AND j.finished_at != 0"
	}
	if f.Before > 0 {
		q += " AND j.id < ?"
		args = append(args, f.Before)
	}
	if f.Viewer != nil {
		c, a := f.Viewer.cond()
		q += " AND " + c
		args = append(args, a...)
	}
	q += " ORDER BY j.id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("jobs: %w", err)
	}
	defer rows.Close()
	var out []JobRecord
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("jobs: %w", err)
	}
	var next int64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
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
		if err := rows.Scan(&it.Seq, &it.EntryID, &it.Destination, &it.PrevStatus, &it.State, &it.Error, &at); err != nil {
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
		var at, cu, ca, ua, fa int64
		var dests string
		j := &h.Job
		if err := rows.Scan(&h.Item.Seq, &h.Item.Destination, &h.Item.PrevStatus, &h.Item.State, &h.Item.Error, &at,
			&j.ID, &j.Action, &j.State, &j.Actor, &j.Reason, &j.Request, &j.Access, &dests, &j.Total, &j.Done, &j.Failed, &j.Cancelled,
			&j.Error, &cu, &ca, &ua, &fa); err != nil {
			return nil, err
		}
		if dests != "" {
			_ = json.Unmarshal([]byte(dests), &j.Destinations)
		}
		h.Item.JobID, h.Item.EntryID, h.Item.DoneAt = j.ID, entryID, fromNano(at)
		j.CanaryUntil, j.CreatedAt, j.UpdatedAt, j.FinishedAt = fromNano(cu), fromNano(ca), fromNano(ua), fromNano(fa)
		out = append(out, h)
	}
	return out, rows.Err()
}

// UnfinishedDestinations returns the destinations of unfinished jobs other
// than except, each with the job holding it.
func (s *Store) UnfinishedDestinations(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, destinations FROM jobs WHERE finished_at = 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id int64
		var d string
		if err := rows.Scan(&id, &d); err != nil {
			return nil, err
		}
		var ds []string
		_ = json.Unmarshal([]byte(d), &ds)
		for _, x := range ds {
			out[x] = id
		}
	}
	return out, rows.Err()
}

// Refailed counts the entries indexed since a job redrove their message:
// re-failures, for the canary.
func (s *Store) Refailed(ctx context.Context, jobID int64) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM entries WHERE redrive_job = ?", jobID).Scan(&n)
	return n, err
}
