package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/redrive"
	"switchyard/web/templates"
)

// handleDLQJobs lists the jobs the principal may see: on the first page
// the running ones, then the finished ones newest first with keyset paging
// (?before=), both filtered by the engine in its query.
func (s *Server) handleDLQJobs(c *fiber.Ctx) error {
	jobs, _, err := s.dlqJobs()
	if err != nil {
		return s.fail(c, err)
	}
	before, err := int64Query(c, "before")
	if err != nil {
		return s.fail(c, err)
	}
	a := callerOf(c)
	ctx := c.UserContext()
	now := s.now()
	var vm templates.JobsList
	if before == 0 {
		running, _, err := jobs.Jobs(ctx, a, redrive.JobFilter{Running: true, Limit: runningJobsMax})
		if err != nil {
			return s.fail(c, err)
		}
		for _, j := range running {
			vm.Running = append(vm.Running, jobRowOf(j, now))
		}
	} else {
		vm.FirstHref = "/dead-letters/jobs"
	}
	list, next, err := jobs.Jobs(ctx, a, redrive.JobFilter{Finished: true, Before: before, Limit: jobsPerPage})
	if err != nil {
		return s.fail(c, err)
	}
	for _, j := range list {
		vm.Finished = append(vm.Finished, jobRowOf(j, now))
	}
	if next > 0 {
		vm.NextHref = "/dead-letters/jobs?before=" + itoa64(next)
	}
	return s.render(c, templates.Page{Title: "Dead letters · jobs", Area: templates.AreaDeadLetters, Refresh: len(vm.Running) > 0},
		templates.JobsView(vm))
}
