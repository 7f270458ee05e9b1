package dlqstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// Selection is the entries a job acts on: IDs, a Group, a Filter or the
// rest of a job (one of them), within Scope (the rules of the job's
// action; nil = everything), and only entries whose status is in
// Eligible.
type Selection struct {
	IDs    []int64
	Group  int64
	Filter *Filter
	// RestOf selects what job RestOf did not get through: the entries of
	// its ledger it did not send or apply (failed or cancelled) and the
	// re-failures of the messages it sent (entries whose redrive job it
	// is). Re-planning them after a stopped job retries every message that
	// is not known to be delivered.
	RestOf   int64
	Scope    *TenantScope
	Eligible []Status
	// Target, when set, replaces every entry's resource as the ledger's
	// target (redrive elsewhere: kafka:<cluster>/<topic> or
	// rabbitmq:<vhost>/<queue>).
	Target string
	// Exclusive: one job per destination. No other unfinished job may
	// have a target of this one; CreateJob checks it in each transaction
	// that freezes entries, against every job committed before it, so of
	// two starts at once on one destination (in one process or two) one
	// gets the job and the other ECONFLICT, its Cause a *BusyError.
	Exclusive bool
}

// BusyError is why an exclusive job (Selection.Exclusive) was refused:
// unfinished job Job already has its target Target. Its message does not
// name the job, so that it can be shown to anyone; a caller names it to
// whoever may see it.
type BusyError struct {
	Job    int64
	Target string
}

func (e *BusyError) Error() string {
	return "another job is still running on " + e.Target
}

// MaxSelectIDs bounds an explicit id list.
const MaxSelectIDs = 10000

// sql is the FROM … WHERE of a selection on alias e, without the
// eligibility condition. Its filter is read without the filter's own
// Tenants: the selection's Scope (the job's) is the one it keeps to.
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
	if sel.RestOf != 0 {
		n++
	}
	if n != 1 {
		return "", nil, delivery.Errorf(delivery.EINVALID, "a selection needs exactly one of ids, group, filter or the rest of a job")
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
	case sel.RestOf != 0:
		cs = append(cs, `e.id IN (SELECT entry_id FROM job_items WHERE job_id = ? AND state IN (`+lit(ItemFailed)+`, `+lit(ItemCancelled)+`)
	UNION ALL SELECT id FROM entries WHERE redrive_job = ?)`)
		args = append(args, sel.RestOf, sel.RestOf)
	default:
		f := *sel.Filter
		if err := f.Validate(); err != nil {
			return "", nil, err
		}
		var match string
		if strings.TrimSpace(f.Q) != "" {
			var err error
			if match, err = ftsQuery(f.Q, f.NoPayloadText); err != nil {
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
	if c, a := scopeCond(sel.Scope, tenants, "e.tenant", "e.resource"); c != "" {
		cs = append(cs, c)
		args = append(args, a...)
	}
	if len(cs) == 0 {
		cs = append(cs, "1") // a filter without conditions, for a caller who sees everything
	}
	return "entries e WHERE " + strings.Join(cs, " AND "), args, nil
}

// eligible is the condition that a selected entry is one a new job may
// take: held by no job, and in one of the Eligible statuses (its own, as
// it is held by none). A job that will hold its entries (holds) takes none
// that another job has pending either, so that what it holds is its own
// until it lets go; a job that holds nothing may share entries with
// another such job, as the status column decides between them.
func (sel Selection) eligible(holds bool) (string, []any) {
	free := heldStatus("e") + " IS NULL"
	if holds {
		free = notInAJob("e")
	}
	if len(sel.Eligible) == 0 {
		return free, nil
	}
	var args []any
	for _, st := range sel.Eligible {
		args = append(args, string(st))
	}
	return "e.status IN (" + placeholders(len(sel.Eligible)) + ") AND " + free, args
}

// SelectionPlan is what a selection holds right now.
type SelectionPlan struct {
	Count         int
	Targets       map[string]int // by ledger target
	Ineligible    int            // selected but in a status the action does not apply to
	Sample        []Entry        // the first entries (by id), with bodies
	ByStatus      map[Status]int // eligible entries by status
	TruncatedBody int            // eligible entries whose stored payload was cut
	// TextBehind and TextPending: the selection's filter has text, and the
	// full-text index does not hold the entries captured in the last
	// TextBehind, or older ones yet (Page's): the counts leave out those
	// that match. CreateJob waits for the newest (Tuning.TextWait).
	TextBehind  time.Duration
	TextPending bool
}

// hasText reports whether the selection's filter searches text.
func (sel Selection) hasText() bool {
	return sel.Filter != nil && strings.TrimSpace(sel.Filter.Q) != ""
}

// PlanSelection counts a selection as CreateJob would freeze it, per
// target, with a sample of up to sample entries — except that an entry
// pending in another job that holds nothing (a discard under way) counts,
// where a holding job's CreateJob leaves it out. Errors: EINVALID.
func (s *Store) PlanSelection(ctx context.Context, sel Selection, sample int) (SelectionPlan, error) {
	from, args, err := sel.sql()
	if err != nil {
		return SelectionPlan{}, err
	}
	elig, eargs := sel.eligible(false)
	p := SelectionPlan{Targets: map[string]int{}, ByStatus: map[Status]int{}}
	if sel.hasText() {
		if p.TextBehind, p.TextPending, err = s.textLag(ctx); err != nil {
			return p, fmt.Errorf("plan: %w", err)
		}
	}
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
		p.Targets[cmpOr(sel.Target, res)] += n
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

// CreateJob stores j (ID, Total, Targets and times are set) and
// freezes its selection: one pending ledger item per eligible selected
// entry in no other job, in entry id order (the order the records reached
// their DLQ); when hold is set, the job holds them (hold.go): they show and
// count as hold (redriving) while pending, and nothing else takes them.
// Entries that fail later do not join: the set is bounded
// by the highest entry id when it starts. Up to Tuning.FreezeOneTx entries
// this is one transaction; a bigger set is frozen Tuning.FreezeChunk at a time
// while the job is JobFreezing, and gets j.State at the end. A selection of
// nothing is EINVALID; an exclusive one whose target another unfinished job
// has is ECONFLICT (Selection.Exclusive).
func (s *Store) CreateJob(ctx context.Context, j JobRecord, sel Selection, hold Status) (JobRecord, error) {
	if j.Access == "" {
		return j, fmt.Errorf("create job: the access action its entries are checked against is missing")
	}
	from, args, err := sel.sql()
	if err != nil {
		return j, err
	}
	elig, eargs := sel.eligible(hold != "")
	var count int
	var maxID int64
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM entries").Scan(&maxID); err != nil {
		return j, fmt.Errorf("create job: %w", err)
	}
	if sel.hasText() {
		if err := s.waitTextUpTo(ctx, maxID); err != nil {
			return j, err
		}
	}
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+from+" AND "+elig+" AND e.id <= ? LIMIT ?)",
		append(append(slices.Clone(args), eargs...), maxID, s.tuning.FreezeOneTx+1)...).Scan(&count); err != nil {
		return j, fmt.Errorf("create job: %w", searchError(filterQ(sel), err))
	}
	if count == 0 {
		return j, delivery.Errorf(delivery.EINVALID, "the selection holds no entry this action applies to")
	}
	chunked := count > s.tuning.FreezeOneTx
	final := j.State
	limit := ""
	if chunked {
		// Walk the entries by id (no index: the set is big, and its
		// order is the id's), a chunk per transaction.
		from = strings.Replace(from, "entries e WHERE", "entries e NOT INDEXED WHERE", 1)
		limit = " LIMIT " + strconv.Itoa(s.tuning.FreezeChunk)
	}
	seq, after, done := 0, int64(0), false
	for !done {
		err = s.write(ctx, func(tx *sql.Tx, now int64) error {
			if j.ID == 0 {
				state := final
				if chunked {
					state = JobFreezing
				}
				res, err := tx.ExecContext(ctx, `INSERT INTO jobs (action, state, actor, reason, request, access, hold, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					j.Action, string(state), j.Actor, j.Reason, j.Request, string(j.Access), string(hold), now, now)
				if err != nil {
					return err
				}
				if j.ID, err = res.LastInsertId(); err != nil {
					return err
				}
				j.CreatedAt = fromNano(now)
				if sel.Target != "" {
					if _, err := tx.ExecContext(ctx, "INSERT INTO job_scopes (job_id, action, resource, tenant) VALUES (?, ?, ?, '')",
						j.ID, string(access.ActionRedriveElsewhere), sel.Target); err != nil {
						return err
					}
				}
			}
			q := `INSERT INTO job_items (job_id, seq, entry_id, destination, prev_status)
SELECT ?, ? + row_number() OVER (ORDER BY id), id, target, status FROM (
	SELECT e.id AS id, ` + targetExpr(sel) + ` AS target, e.status AS status FROM ` + from + " AND " + elig + ` AND e.id > ? AND e.id <= ?
	ORDER BY e.id` + limit + `)`
			qargs := []any{j.ID, seq}
			if sel.Target != "" {
				qargs = append(qargs, sel.Target)
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
				if sel.Exclusive {
					if err := checkNotBusy(ctx, tx, j.ID, seq); err != nil {
						return err
					}
				}
				if hold != "" {
					if err := holdItems(ctx, tx, now, j.ID, seq, hold); err != nil {
						return err
					}
				}
			}
			seq += n
			done = !chunked || n < s.tuning.FreezeChunk
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

// finishFreeze records a frozen job's total and targets and gives it its
// state.
func finishFreeze(ctx context.Context, tx *sql.Tx, now int64, j *JobRecord, state JobState) error {
	rows, err := tx.QueryContext(ctx, "SELECT destination, count(*) FROM job_items WHERE job_id = ? GROUP BY 1 ORDER BY 1", j.ID)
	if err != nil {
		return err
	}
	var targets []string
	j.PerTarget = map[string]int{}
	for rows.Next() {
		var t string
		var n int
		if err := rows.Scan(&t, &n); err != nil {
			rows.Close()
			return err
		}
		targets = append(targets, t)
		j.PerTarget[t] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	j.Targets = targets
	tb, _ := json.Marshal(targets)
	j.State, j.UpdatedAt = state, fromNano(now)
	_, err = tx.ExecContext(ctx, "UPDATE jobs SET total = ?, destinations = ?, state = ?, scoped = 1, updated_at = ? WHERE id = ?", j.Total, string(tb), string(state), now, j.ID)
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
	if _, err := s.exec(ctx, `UPDATE jobs SET total = (SELECT count(*) FROM job_items WHERE job_id = ?1), state = ?4, error = ?2, updated_at = ?3, finished_at = ?3,
	scoped = NOT EXISTS (SELECT 1 FROM job_items i WHERE i.job_id = ?1 AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.id = i.entry_id))
WHERE id = ?1`,
		id, why, unixNano(s.now()), string(JobFailed)); err != nil {
		s.logger.Error("dlqstore: abandoning a half-frozen job failed", "job", id, "err", err)
	}
}

// AbandonFreezing ends every job left JobFreezing (the process stopped while
// freezing it) and returns their ids.
func (s *Store) AbandonFreezing(ctx context.Context) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id FROM jobs WHERE finished_at = 0 AND state = ?", string(JobFreezing))
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

// checkNotBusy returns ECONFLICT with a *BusyError when an unfinished job
// other than jobID has a target of the chunk of jobID's ledger after seq
// from: a frozen job by its destinations, one still freezing by its
// ledger so far. It runs in the freeze's write transaction (BEGIN
// IMMEDIATE), so no other job can be frozen between the check and the
// commit, in this process or another.
func checkNotBusy(ctx context.Context, tx *sql.Tx, jobID int64, from int) error {
	var id int64
	var target string
	err := tx.QueryRowContext(ctx, `SELECT o.id, c.destination
FROM (SELECT DISTINCT destination FROM job_items WHERE job_id = ?1 AND seq > ?2) c
JOIN jobs o ON o.finished_at = 0 AND o.id != ?1
WHERE CASE WHEN o.state = ?3
	THEN EXISTS (SELECT 1 FROM job_items x WHERE x.job_id = o.id AND x.destination = c.destination)
	ELSE EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(o.destinations) THEN o.destinations ELSE '[]' END) WHERE value = c.destination)
END
ORDER BY o.id, c.destination LIMIT 1`, jobID, from, string(JobFreezing)).Scan(&id, &target)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return &delivery.Error{Code: delivery.ECONFLICT, Message: "another job is still running on " + target + ": wait for it, or start anyway with force",
		Cause: &BusyError{Job: id, Target: target}}
}

// targetExpr is the SQL of an item's target: the selection's one target,
// or each entry's resource.
func targetExpr(sel Selection) string {
	if sel.Target != "" {
		return "?"
	}
	return "e.resource"
}

// holdItems counts the pending entries of a job after seq from in its hold
// status: the chunk just frozen, in one statement (moveItemsTx). The
// entries themselves are not written: the ledger holds them (heldStatus).
func holdItems(ctx context.Context, tx *sql.Tx, now, jobID int64, from int, hold Status) error {
	_, err := moveItemsTx(ctx, tx, now, jobID, from, math.MaxInt, itemMove{To: hold})
	return err
}
