package web

import (
	"context"
	"math"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/redrive"
)

// Dead-letter jobs: the plan (a dry run) and its confirmation form
// (dlq_job_form.go), starting a job, the jobs list (dlq_job_list.go), a
// job's page with its ledger (dlq_job_show.go), cancelling
// (dlq_job_cancel.go), their view models (dlq_job_views.go) and the JSON
// API (api_dlq_jobs.go). The routes ask only for view: the dead-letter
// service hands every call to the engine with the caller, which
// authorizes every entry of a job by the caller's rules for the job's
// action (a filter's text kept off payloads they may not probe); its
// EFORBIDDEN, EINVALID and ECONFLICT answers are shown on the page. Which
// jobs a caller sees and may cancel is the engine's rule too (those whose
// every entry they may act on, or all for an admin); a job they may not
// see is ENOTFOUND, a 404 like a job that does not exist. The buttons on
// the dead-letter pages are the service's offer (dlq.Actions).

// DLQJobs is what the job pages and API need of the dead-letter service.
// Every call answers ENOTFOUND when jobs are not configured.
type DLQJobs interface {
	// JobOptions are the limits a job form shows.
	JobOptions() (dlq.JobOptions, error)
	// Plan is the dry run of req: the exact count, per destination, and a
	// sample. Errors: EINVALID, EFORBIDDEN.
	Plan(ctx context.Context, c dlq.Caller, req redrive.Request) (redrive.Plan, error)
	// Start freezes the set, audits and runs the job in the background.
	// Errors: EINVALID, EFORBIDDEN, ECONFLICT (another job runs on a
	// destination; retry with Force).
	Start(ctx context.Context, c dlq.Caller, req redrive.Request) (redrive.Job, error)
	// Job is a job the caller may see. Errors: ENOTFOUND (also for a job
	// they may not see).
	Job(ctx context.Context, c dlq.Caller, id int64) (redrive.Job, error)
	// Jobs lists the jobs the caller may see, newest first, filtered in
	// the store's query; the int64 is the next Before cursor (0 on the
	// last page). Errors: EINVALID.
	Jobs(ctx context.Context, c dlq.Caller, f redrive.JobFilter) ([]redrive.Job, int64, error)
	// Ledger pages the entries of a job the caller may see after
	// afterSeq; the int is the next afterSeq (0 at the end). Errors:
	// ENOTFOUND, EINVALID.
	Ledger(ctx context.Context, c dlq.Caller, id int64, afterSeq, limit int) ([]redrive.LedgerItem, int, error)
	// Cancel stops a job the caller may see. Errors: ENOTFOUND (also for
	// a job they may not see), EINVALID (already ended).
	Cancel(ctx context.Context, c dlq.Caller, id int64) (redrive.Job, error)
	// History is every job the caller may see that acted on an entry,
	// oldest first.
	History(ctx context.Context, c dlq.Caller, entryID int64) ([]redrive.HistoryItem, error)
	// Refailures lists the entries a job's messages became when they
	// dead-lettered again, those the caller may view, oldest first, up to
	// limit, with their total. Errors: ENOTFOUND (as Job).
	Refailures(ctx context.Context, c dlq.Caller, jobID int64, limit int) ([]dlqstore.Refailure, int, error)
}

// Page sizes.
const (
	jobsPerPage    = 50
	runningJobsMax = 100
	ledgerPerPage  = 100
)

// dlqJobs is the job side of the dead-letter service with its limits.
// Errors: ENOTFOUND when jobs are not configured (no service, or one
// without an engine).
func (s *Server) dlqJobs() (DLQJobs, dlq.JobOptions, error) {
	if s.dlq == nil {
		return nil, dlq.JobOptions{}, dlq.JobsNotConfigured()
	}
	opts, err := s.dlq.JobOptions()
	if err != nil {
		return nil, opts, err
	}
	return s.dlq, opts, nil
}

// loadJob reads the job of the :id parameter if the caller may see it
// (the engine decides), with the job side of the service for what
// follows; anything else is the same 404, or ENOTFOUND when jobs are not
// configured.
func (s *Server) loadJob(c *fiber.Ctx) (DLQJobs, redrive.Job, error) {
	jobs, _, err := s.dlqJobs()
	if err != nil {
		return nil, redrive.Job{}, err
	}
	raw := param(c, "id")
	notFound := delivery.Errorf(delivery.ENOTFOUND, "job %s not found", truncateText(raw, 40))
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return nil, redrive.Job{}, notFound
	}
	j, err := jobs.Job(c.UserContext(), callerOf(c), id)
	if err != nil {
		if delivery.ErrorCode(err) == delivery.ENOTFOUND {
			return nil, redrive.Job{}, notFound
		}
		return nil, redrive.Job{}, err
	}
	return jobs, j, nil
}

// jobLedger reads the page of j's ledger that ?after_seq= asks for.
// Errors: EINVALID for a bad after_seq, and Ledger's.
func jobLedger(c *fiber.Ctx, jobs DLQJobs, j redrive.Job, limit int) ([]redrive.LedgerItem, int, error) {
	after, err := int64Query(c, "after_seq")
	if err != nil || after > math.MaxInt32 {
		return nil, 0, delivery.Errorf(delivery.EINVALID, "after_seq must be a ledger sequence number")
	}
	return jobs.Ledger(c.UserContext(), callerOf(c), j.ID, int(after), limit)
}

// int64Query reads a non-negative integer query parameter; 0 when absent.
func int64Query(c *fiber.Ctx, name string) (int64, error) {
	raw := strings.TrimSpace(c.Query(name))
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, delivery.Errorf(delivery.EINVALID, "%s must be a non-negative integer", name)
	}
	return n, nil
}
