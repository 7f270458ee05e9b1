package web

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
)

// handleDLQJobCancel asks a running job to stop, then back to its page.
func (s *Server) handleDLQJobCancel(c *fiber.Ctx) error {
	jobs, j, err := s.loadJob(c)
	if err != nil {
		return s.fail(c, err)
	}
	cj, err := jobs.Cancel(c.UserContext(), callerOf(c), j.ID)
	if err != nil {
		if code := delivery.ErrorCode(err); code == delivery.EINVALID || code == delivery.ECONFLICT {
			return s.flash(c, jobHref(j.ID), "Not cancelled: "+delivery.ErrorMessage(err))
		}
		return s.fail(c, err)
	}
	j = cj
	return s.flash(c, jobHref(j.ID), fmt.Sprintf("Job #%d is %s: it stops after the batch in flight; what was already %s stays %s.",
		j.ID, jobStateText(j.State), doneVerb(j.Action), doneVerb(j.Action)))
}
