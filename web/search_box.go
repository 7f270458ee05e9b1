package web

import (
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/tracing"
)

// maxSearchBox bounds what the layout's search box takes (bytes).
const maxSearchBox = 200

// handleSearch is the layout's global search box: a trace id opens its
// trace; a correlation id some visible span carries opens its saga;
// anything else is a dead-letter search. An empty box goes to the trace
// search.
func (s *Server) handleSearch(c *fiber.Ctx) error {
	q := strings.TrimSpace(queryOf(c).Get("q"))
	if len(q) > maxSearchBox {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "the search is too long (%d characters at most)", maxSearchBox))
	}
	if q == "" {
		return c.Redirect("/traces", fiber.StatusSeeOther)
	}
	if id, ok := tracing.ParseTraceID(q); ok {
		return c.Redirect(traceHref(id), fiber.StatusSeeOther)
	}
	if s.traces != nil {
		res, err := s.traces.Search(c.UserContext(), principal(c), tracing.SearchQuery{CorrelationID: q, Limit: 1})
		switch {
		case err == nil && len(res.Spans) > 0:
			return c.Redirect(correlationHref(q), fiber.StatusSeeOther)
		case err != nil && delivery.ErrorCode(err) != delivery.EINVALID:
			return s.fail(c, err)
		}
	}
	return c.Redirect("/dead-letters/entries?q="+url.QueryEscape(q), fiber.StatusSeeOther)
}
