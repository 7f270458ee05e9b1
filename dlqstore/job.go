package dlqstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// JobRecord is a stored job of package redrive. The store keeps it beside
// the entries so that each ledger outcome and the status change of its
// entry commit together.
//
// A job's targets are where it sends (kafka:<cluster>/<topic> or
// rabbitmq:<vhost>/<queue>: each entry's origin, or the one target of a
// redrive elsewhere); an entry's Destination is the DLQ it sits in.
type JobRecord struct {
	ID                             int64
	Action                         string
	State                          JobState
	Actor, Reason                  string
	Access                         access.Action // what each entry is checked for (discard for a restore); required, see JobViewer
	Request                        []byte        // the caller's JSON
	Targets                        []string
	PerTarget                      map[string]int // frozen entries per target; set by CreateJob only
	Total, Done, Failed, Cancelled int
	Error                          string
	CancelledBy                    string // who asked to cancel it (CancelJob), "" if nobody did
	CanaryUntil                    time.Time
	CreatedAt, UpdatedAt           time.Time
	FinishedAt                     time.Time
}

// JobItem is one ledger row: an entry of a job and its outcome.
type JobItem struct {
	JobID      int64
	Seq        int
	EntryID    int64
	Target     string // where the job sends the entry
	PrevStatus Status
	State      ItemState
	Error      string
	DoneAt     time.Time
}

// SetJobState sets a job's state and error; finished stamps finished_at. A
// job being cancelled keeps that state until it is finished.
func (s *Store) SetJobState(ctx context.Context, id int64, state JobState, errText string, finished bool) error {
	now := unixNano(s.now())
	fin := int64(0)
	if finished {
		fin = now
	}
	// A cancel is not undone by the runner's own updates (a canary or
	// an outage pause ending): only the end of the job replaces it.
	q := "UPDATE jobs SET state = ?, error = ?, updated_at = ?, finished_at = CASE WHEN ? != 0 THEN ? ELSE finished_at END WHERE id = ?"
	args := []any{string(state), errText, now, fin, fin, id}
	if !finished {
		q += " AND finished_at = 0" // an ended job stays ended
		if state != JobCancelling {
			q += " AND state != ?"
			args = append(args, string(JobCancelling))
		}
	}
	if _, err := s.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("job %d: set state: %w", id, err)
	}
	return nil
}

// CancelJob marks a job that has not ended JobCancelling, recording who
// asked (JobRecord.CancelledBy) and errText as its error, and reports
// whether it did; its runner ends it. A job that has ended is left as it
// is (false).
func (s *Store) CancelJob(ctx context.Context, id int64, by, errText string) (bool, error) {
	res, err := s.exec(ctx, "UPDATE jobs SET state = ?, error = ?, cancelled_by = ?, updated_at = ? WHERE id = ? AND finished_at = 0",
		string(JobCancelling), errText, by, unixNano(s.now()), id)
	if err != nil {
		return false, fmt.Errorf("job %d: cancel: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("job %d: cancel: %w", id, err)
	}
	return n == 1, nil
}

// SetCanaryUntil records when a job's canary window ends.
func (s *Store) SetCanaryUntil(ctx context.Context, id int64, until time.Time) error {
	_, err := s.exec(ctx, "UPDATE jobs SET canary_until = ?, updated_at = ? WHERE id = ?", unixNano(until), unixNano(s.now()), id)
	return err
}

const jobColumns = `id, action, state, actor, reason, request, access, destinations, total, done, failed, cancelled, error, cancelled_by, canary_until, created_at, updated_at, finished_at`

// scanJob reads the columns of jobColumns, after the columns pre (a
// query that joins the ledger reads its own first).
func scanJob(r scanner, pre ...any) (JobRecord, error) {
	var j JobRecord
	var targets string
	var cu, ca, ua, fa int64
	if err := r.Scan(append(pre, &j.ID, &j.Action, &j.State, &j.Actor, &j.Reason, &j.Request, &j.Access, &targets, &j.Total, &j.Done, &j.Failed, &j.Cancelled,
		&j.Error, &j.CancelledBy, &cu, &ca, &ua, &fa)...); err != nil {
		return j, err
	}
	if targets != "" {
		_ = json.Unmarshal([]byte(targets), &j.Targets)
	}
	j.CanaryUntil, j.CreatedAt, j.UpdatedAt, j.FinishedAt = fromNano(cu), fromNano(ca), fromNano(ua), fromNano(fa)
	return j, nil
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

// Refailed counts the entries indexed since a job redrove their message:
// re-failures, for the canary.
func (s *Store) Refailed(ctx context.Context, jobID int64) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM entries WHERE redrive_job = ?", jobID).Scan(&n)
	return n, err
}
