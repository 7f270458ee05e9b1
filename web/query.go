package web

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/dlqstore"
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

// apiQueryParams lists, for every GET route of the JSON API, the query
// parameters its handler reads: the one place that says so. Any other is
// refused (allowQuery), so that a mistyped filter (?code=X for
// ?error_code=X) is an error rather than a list silently left unfiltered.
// register refuses a GET API route without an entry. Pages are not held
// to a list: a browser's form may carry more than its handler reads.
var apiQueryParams = map[string][]string{
	"api.clusters":        nil,
	"api.consumer-groups": nil,
	"api.consumer-group":  nil,
	"api.queues":          nil,
	"api.series":          {"name", "agg", "match[]", "match", "from", "to", "step"},
	// The filter codec's fields (dlqstore.ParseValues), the page's range,
	// and paging.
	"api.dlq.entries":    append(dlqstore.FilterFields(), "range", "limit", "cursor"),
	"api.dlq.entry":      nil,
	"api.dlq.groups":     {"state", "broker", "destination", "q", "sort", "limit", "cursor"},
	"api.dlq.jobs":       {"running", "limit", "before"},
	"api.dlq.job":        {"limit", "after_seq"},
	"api.topic.messages": {"partition", "limit", "seek", "offset", "timestamp", "cursor", "q", "key", "value", "header"},
	"api.admin.users":    nil,
	"api.admin.bindings": nil,
	"api.demo.fixes":     nil,
	"api.traces":         traceQueryParams,
	"api.trace":          nil,
	// Alerting; a template takes the labels of the thing it is about.
	"api.alerts":              alertQueryParams,
	"api.alerts.rules":        ruleQueryParams,
	"api.alerts.rule":         nil,
	"api.alerts.rule.history": {"before", "limit"},
	"api.alerts.silences":     {"state"},
	"api.alerts.targets":      nil,
	"api.alerts.template":     templateLabelParams(),
	// Export: pins of the dashboard variables and the rule file's filter.
	"api.export.rules":             exportRuleParams,
	"api.export.rules.recommended": nil,
	"api.export.scrape":            nil,
	"api.export.dashboards":        nil,
	"api.export.provisioning":      nil,
	"api.export.dashboard":         exportDashboardParams,
}

// checksQuery reports whether a route's query parameters are held to
// apiQueryParams: the GET routes of the JSON API.
func checksQuery(rt Route) bool {
	return rt.Method == fiber.MethodGet && strings.HasPrefix(rt.Path, "/api/")
}

// allowQuery refuses a query parameter the route does not read, naming
// it and the ones it does. Errors: EINVALID.
func (s *Server) allowQuery(known []string) fiber.Handler {
	takes := "none"
	if len(known) > 0 {
		takes = strings.Join(known, ", ")
	}
	known = append([]string{}, known...) // [] rather than null in the details
	return func(c *fiber.Ctx) error {
		var unknown []string
		c.Context().QueryArgs().VisitAll(func(k, _ []byte) {
			if name := truncateText(string(k), 40); !slices.Contains(known, string(k)) && !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
		})
		if len(unknown) == 0 {
			return c.Next()
		}
		slices.Sort(unknown)
		return s.fail(c, &delivery.Error{Code: delivery.EINVALID,
			Message: fmt.Sprintf("unknown query parameter %s: this endpoint takes %s", strings.Join(unknown, ", "), takes),
			Details: map[string]any{"unknown": unknown, "known": known}})
	}
}
