package web

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/dlqstore"
)

// groupSampleHref opens an example dead letter of a failure group.
func groupSampleHref(id int64) string {
	return "/dead-letters/groups/" + strconv.FormatInt(id, 10) + "/sample"
}

// handleDLQGroupSample opens one dead letter of a failure group, the
// newest the caller may view (their scope, in the store's query), so that
// a group card leads straight to an example without costing the groups
// page a query per card. A group with none in their scope is 404, as one
// that does not exist.
func (s *Server) handleDLQGroupSample(c *fiber.Ctx) error {
	st, err := s.deadLetters()
	if err != nil {
		return s.fail(c, err)
	}
	raw := param(c, "id")
	notFound := delivery.Errorf(delivery.ENOTFOUND, "failure group %s not found", raw)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return s.fail(c, notFound)
	}
	page, err := st.FindEntries(c.UserContext(), callerOf(c), dlqstore.Filter{GroupID: id, Limit: 1})
	if err != nil {
		return s.fail(c, err)
	}
	if len(page.Entries) == 0 {
		return s.fail(c, notFound)
	}
	return c.Redirect(entryHref(page.Entries[0].ID), fiber.StatusSeeOther)
}
