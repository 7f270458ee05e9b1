package web

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/redrive"
)

// The dead-letter jobs API: the same service, engine and rules as the
// pages, errors in the platform contract.

// apiJobPlan is the answer of a dry run.
type apiJobPlan struct {
	Plan redrive.Plan `json:"plan"`
}

type apiJobs struct {
	Jobs       []redrive.Job `json:"jobs"`
	NextBefore int64         `json:"next_before,omitempty"` // ?before= of the next page
}

// apiJobDetail is a job with a page of its ledger and the messages of it
// that came back.
type apiJobDetail struct {
	redrive.Job
	Ledger  []redrive.LedgerItem `json:"ledger"`
	NextSeq int                  `json:"next_seq,omitempty"` // ?after_seq= of the next ledger page
	// Refailures are the entries its messages became when they
	// dead-lettered again (the first refailuresShown the caller may
	// view), of RefailuresTotal.
	Refailures      []apiRefailure `json:"refailures"`
	RefailuresTotal int            `json:"refailures_total"`
}

// apiRefailure is a message of a job that dead-lettered again.
type apiRefailure struct {
	EntryID     int64     `json:"entry_id"`               // the re-failure
	RefailureOf int64     `json:"refailure_of,omitempty"` // the entry it was redriven from; omitted when not known
	Seq         int       `json:"seq,omitempty"`          // that entry's ledger seq
	Canary      bool      `json:"canary"`                 // one of the canary
	Error       string    `json:"error_message"`
	At          time.Time `json:"last_failure_at,omitzero"`
}

// handleAPIDLQJobCreate takes a redrive.Request: with dry_run it answers
// {"plan": …}, else it starts the job and answers 201 with it.
func (s *Server) handleAPIDLQJobCreate(c *fiber.Ctx) error {
	jobs, _, err := s.dlqJobs()
	if err != nil {
		return s.fail(c, err)
	}
	var req redrive.Request
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "body must be a job request {action, selector, reason, …}: %s", jsonProblem(err)))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	if req.DryRun {
		plan, err := jobs.Plan(c.UserContext(), callerOf(c), req)
		if err != nil {
			return s.fail(c, err)
		}
		return c.JSON(apiJobPlan{Plan: plan})
	}
	j, err := jobs.Start(c.UserContext(), callerOf(c), req)
	if err != nil {
		return s.fail(c, err)
	}
	c.Location("/api/v1/dlq/jobs/" + itoa64(j.ID))
	return c.Status(fiber.StatusCreated).JSON(j)
}

// handleAPIDLQJobs lists the jobs the caller may see (the engine filters
// them in its query, so a page is full unless it is the last), newest
// first: ?running=1, limit (1–500, default 50), before (keyset cursor).
func (s *Server) handleAPIDLQJobs(c *fiber.Ctx) error {
	jobs, _, err := s.dlqJobs()
	if err != nil {
		return s.fail(c, err)
	}
	f := redrive.JobFilter{Limit: jobsPerPage}
	switch v := strings.TrimSpace(c.Query("running")); v {
	case "", "0", "false":
	case "1", "true":
		f.Running = true
	default:
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "running must be 1 or 0"))
	}
	if v := c.Query("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 500 {
			return s.fail(c, delivery.Errorf(delivery.EINVALID, "limit must be 1 to 500"))
		}
	}
	if f.Before, err = int64Query(c, "before"); err != nil {
		return s.fail(c, err)
	}
	list, next, err := jobs.Jobs(c.UserContext(), callerOf(c), f)
	if err != nil {
		return s.fail(c, err)
	}
	out := apiJobs{Jobs: list, NextBefore: next}
	if out.Jobs == nil {
		out.Jobs = []redrive.Job{}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// handleAPIDLQJob is a job with a page of its ledger: ?after_seq=,
// limit (1–1000, default 100).
func (s *Server) handleAPIDLQJob(c *fiber.Ctx) error {
	jobs, j, err := s.loadJob(c)
	if err != nil {
		return s.fail(c, err)
	}
	limit := ledgerPerPage
	if v := c.Query("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return s.fail(c, delivery.Errorf(delivery.EINVALID, "limit must be 1 to 1000"))
		}
	}
	items, next, err := jobLedger(c, jobs, j, limit)
	if err != nil {
		return s.fail(c, err)
	}
	if items == nil {
		items = []redrive.LedgerItem{}
	}
	out := apiJobDetail{Job: j, Ledger: items, NextSeq: next, Refailures: []apiRefailure{}}
	if j.Action.Republishes() {
		back, total, err := jobs.Refailures(c.UserContext(), callerOf(c), j.ID, refailuresShown)
		if err != nil {
			return s.fail(c, err)
		}
		out.RefailuresTotal = total
		for _, r := range back {
			out.Refailures = append(out.Refailures, apiRefailure{EntryID: r.Entry.ID, RefailureOf: r.Entry.RefailureOf, Seq: r.Seq,
				Canary: inCanary(j, r.Seq), Error: r.Entry.DL.Error.Message, At: r.Entry.DL.LastFailureAt})
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// handleAPIDLQJobCancel asks a running job to stop and returns it.
func (s *Server) handleAPIDLQJobCancel(c *fiber.Ctx) error {
	jobs, j, err := s.loadJob(c)
	if err != nil {
		return s.fail(c, err)
	}
	if j, err = jobs.Cancel(c.UserContext(), callerOf(c), j.ID); err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(j)
}
