package dlq

import (
	"context"

	"switchyard/delivery"
	"switchyard/redrive"
)

// Jobs go to the redrive engine with the caller: the engine validates and
// authorizes every request (each entry by the caller's rules for the job's
// action, a filter's text kept off payloads they may not probe), and
// which jobs a caller may see and cancel is its rule too, applied in the
// store's query (those whose every entry they may act on, or all for an
// admin); a job they may not see is ENOTFOUND like a missing one. Without
// an engine every call is ENOTFOUND (JobsNotConfigured).

// JobsNotConfigured is the error of every job call without an engine.
func JobsNotConfigured() error {
	return delivery.Errorf(delivery.ENOTFOUND, "dead-letter jobs are not configured")
}

// JobOptions are the limits a job form shows.
type JobOptions struct {
	MaxRate     float64 // the highest rate a request may ask for, messages/s
	EditEnabled bool    // edit and redrive is turned on
}

// JobOptions returns the engine's limits. Errors: ENOTFOUND
// (JobsNotConfigured).
func (s *Service) JobOptions() (JobOptions, error) {
	if s.jobs == nil {
		return JobOptions{}, JobsNotConfigured()
	}
	return JobOptions{MaxRate: s.jobs.MaxRate(), EditEnabled: s.jobs.EditEnabled()}, nil
}

func (s *Service) engine() (*redrive.Engine, error) {
	if s.jobs == nil {
		return nil, JobsNotConfigured()
	}
	return s.jobs, nil
}

// Plan is the dry run of req: the exact count, per target, and a sample.
// Errors: EINVALID, EFORBIDDEN, ENOTFOUND.
func (s *Service) Plan(ctx context.Context, c Caller, req redrive.Request) (redrive.Plan, error) {
	e, err := s.engine()
	if err != nil {
		return redrive.Plan{}, err
	}
	return e.Plan(ctx, c.Actor, req)
}

// Start freezes the set, audits and runs the job in the background.
// Errors: EINVALID, EFORBIDDEN, ECONFLICT (another job runs on a target;
// retry with Force), ENOTFOUND.
func (s *Service) Start(ctx context.Context, c Caller, req redrive.Request) (redrive.Job, error) {
	e, err := s.engine()
	if err != nil {
		return redrive.Job{}, err
	}
	defer s.cache.Invalidate() // the set frozen (see also Cache.WatchJobs)
	return e.Start(ctx, c.Actor, req)
}

// Job is a job the caller may see. Errors: ENOTFOUND (also for a job they
// may not see).
func (s *Service) Job(ctx context.Context, c Caller, id int64) (redrive.Job, error) {
	e, err := s.engine()
	if err != nil {
		return redrive.Job{}, err
	}
	return e.Job(ctx, c.Actor, id)
}

// Jobs lists the jobs the caller may see, newest first, filtered in the
// store's query; the int64 is the next Before cursor (0 on the last page).
// Errors: EINVALID, ENOTFOUND.
func (s *Service) Jobs(ctx context.Context, c Caller, f redrive.JobFilter) ([]redrive.Job, int64, error) {
	e, err := s.engine()
	if err != nil {
		return nil, 0, err
	}
	return e.Jobs(ctx, c.Actor, f)
}

// Ledger pages the entries of a job the caller may see after afterSeq; the
// int is the next afterSeq (0 at the end). Errors: ENOTFOUND, EINVALID.
func (s *Service) Ledger(ctx context.Context, c Caller, id int64, afterSeq, limit int) ([]redrive.LedgerItem, int, error) {
	e, err := s.engine()
	if err != nil {
		return nil, 0, err
	}
	return e.Ledger(ctx, c.Actor, id, afterSeq, limit)
}

// Cancel stops a job the caller may see. Errors: ENOTFOUND (also for a job
// they may not see), EINVALID (already ended).
func (s *Service) Cancel(ctx context.Context, c Caller, id int64) (redrive.Job, error) {
	e, err := s.engine()
	if err != nil {
		return redrive.Job{}, err
	}
	defer s.cache.Invalidate()
	return e.Cancel(ctx, c.Actor, id)
}

// History is every job the caller may see that acted on an entry, oldest
// first. Errors: ENOTFOUND (no engine).
func (s *Service) History(ctx context.Context, c Caller, entryID int64) ([]redrive.HistoryItem, error) {
	e, err := s.engine()
	if err != nil {
		return nil, err
	}
	return e.History(ctx, c.Actor, entryID)
}
