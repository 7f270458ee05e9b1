package dlqstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"switchyard/access"
	"switchyard/delivery"
)

// JobViewer is a principal asking about jobs, as the rules under which
// they may do each access action a job can need (access.Policy.Rules):
// the job's Access on each of its entries, and redrive_elsewhere on the
// target of a redrive elsewhere.
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
		c, args := scopeCond(&TenantScope{All: true, Rules: v.Rules[a]}, nil, "s.tenant", "s.resource")
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
