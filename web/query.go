package web

import (
	"net/url"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// checkQuery refuses a query string no handler should have to read: one
// that does not parse (a stray '%', a ';'), or a parameter that is not
// sqldb.ValidText (a NUL would cut the string inside SQLite;
// an escape sequence would reach logs and pages). fasthttp's own parser
// is lenient and would hand such values on, or drop them silently, so
// the check is strict here, once, for every route. Errors: EINVALID
// naming the parameter.
func (s *Server) checkQuery(c *fiber.Ctx) error {
	raw := c.Request().URI().QueryString()
	if len(raw) == 0 {
		return c.Next()
	}
	vals, err := url.ParseQuery(string(raw))
	if err != nil {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "the query string is malformed: escape %% as %%25 and separate parameters with &"))
	}
	for k, vs := range vals {
		if !sqldb.ValidText(k) {
			return s.fail(c, delivery.Errorf(delivery.EINVALID, "a query parameter name is not UTF-8 text without control characters"))
		}
		for _, v := range vs {
			if !sqldb.ValidText(v) {
				return s.fail(c, delivery.Errorf(delivery.EINVALID, "query parameter %s must be UTF-8 text without control characters", truncateText(k, 40)))
			}
		}
	}
	return c.Next()
}
