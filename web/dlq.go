package web

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/redrive"
	"switchyard/web/templates"
)

// The dead-letter area: failure groups (the landing page), the entries
// list, an entry's detail, triage, jobs, and their JSON API. Routes that
// list ask only for view on "*"; every rule that protects dead letters is
// then the dead-letter service's (package dlq), applied for the caller:
// lists and totals over their scope in the store's query, an entry they
// may not view answering 404 like a missing one, payloads withheld or
// masked, searches kept off payload text they may not probe, payload reads
// and triage audited, jobs authorized by the engine. Handlers parse, make
// one call and render. Triage changes shared state of a cause that may
// span tenants and destinations: it is redrive on console:dlq (operators
// and admins bound to it).

// DeadLetters is what the dead-letter pages and API need of the
// dead-letter service: each call applies the caller's rules (see package
// dlq). *dlq.Service implements it.
type DeadLetters interface {
	// FindEntries pages the caller's entries of a filter. Errors:
	// EINVALID (bad filter, cursor or search, named as typed).
	FindEntries(ctx context.Context, c dlq.Caller, f dlqstore.Filter) (dlqstore.Page, error)
	// Entry is one entry as the caller may see it, the payload read
	// audited. Errors: ENOTFOUND (also for an entry out of reach).
	Entry(ctx context.Context, c dlq.Caller, id int64) (dlq.Entry, error)
	// Groups pages the caller's failure groups. Errors: EINVALID.
	Groups(ctx context.Context, c dlq.Caller, f dlqstore.GroupFilter) ([]dlqstore.Group, string, error)
	// Group is one group over the caller's scope. Errors: ENOTFOUND.
	Group(ctx context.Context, c dlq.Caller, id int64) (dlqstore.Group, error)
	// Trends counts the failures of a page of groups per step, in one
	// query. Errors: EINVALID.
	Trends(ctx context.Context, c dlq.Caller, groupIDs []int64, from, to time.Time, step time.Duration) (map[int64][]int, error)
	// OpenCount is how many of the caller's entries need attention.
	OpenCount(ctx context.Context, c dlq.Caller) (int, error)
	// Sources are the indexed sources the caller may view, and whether
	// any indexer reports at all.
	Sources(ctx context.Context, c dlq.Caller) ([]dlq.Source, bool, error)
	// MayTriage reports whether the caller may change triage state.
	MayTriage(c dlq.Caller) bool
	// SetTriage changes a group's triage state, audited. Errors:
	// EFORBIDDEN, ENOTFOUND, EINVALID.
	SetTriage(ctx context.Context, c dlq.Caller, id int64, t dlqstore.Triage) (dlqstore.Group, error)
	// Actions are the job buttons offered on an entry (nil: on lists).
	Actions(c dlq.Caller, e *dlq.Entry) dlq.Actions
	// Outcome is what became of a redriven entry's message, given the
	// watch window.
	Outcome(e dlqstore.Entry) dlqstore.RedriveOutcome
	DLQJobs
}

var _ DeadLetters = (*dlq.Service)(nil)

func (s *Server) deadLetters() (DeadLetters, error) {
	if s.dlq == nil {
		return nil, delivery.Errorf(delivery.ENOTFOUND, "the dead-letter index is not configured")
	}
	return s.dlq, nil
}

// callerOf is who asks, for the dead-letter service's rules and audit
// records.
func callerOf(c *fiber.Ctx) dlq.Caller {
	return dlq.Caller{Route: routeOf(c), Actor: redrive.Actor{
		P:         principal(c),
		SourceIP:  c.Context().RemoteIP().String(),
		UserAgent: strings.Clone(c.Get(fiber.HeaderUserAgent)),
	}}
}

// loadEntry reads the entry of the :id parameter as the caller may see
// it; anything the service does not find or show is the same 404.
func (s *Server) loadEntry(c *fiber.Ctx) (dlq.Entry, error) {
	st, err := s.deadLetters()
	if err != nil {
		return dlq.Entry{}, err
	}
	raw := param(c, "id")
	notFound := delivery.Errorf(delivery.ENOTFOUND, "dead letter %s not found", raw)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return dlq.Entry{}, notFound
	}
	e, err := st.Entry(c.UserContext(), callerOf(c), id)
	if delivery.ErrorCode(err) == delivery.ENOTFOUND {
		return dlq.Entry{}, notFound
	}
	return e, err
}

// entryQuery is the filter of the entries page and API, as read from the
// query string, with the values to show back in the form.
type entryQuery struct {
	Filter    dlqstore.Filter
	Statuses  []string
	From, To  string // as typed
	Range     string // range picker key, "" = none
	GroupID   string
	LimitText string
}

// parseEntryQuery reads the filter of the query string (the store's codec,
// dlqstore.ParseValues: status, broker, cluster, destination, event_type,
// error_code, tenant, from, to, group, q, limit, cursor) and the page's
// range (15m … 7d), which sets from when from is not given. Errors are
// EINVALID.
func (s *Server) parseEntryQuery(c *fiber.Ctx) (entryQuery, error) {
	args := queryOf(c)
	get := func(k string) string { return strings.TrimSpace(args.Get(k)) }
	eq := entryQuery{From: get("from"), To: get("to"), Range: get("range"), GroupID: get("group"), LimitText: get("limit")}
	f, err := dlqstore.ParseValues(args)
	eq.Filter = f
	for _, st := range f.Status {
		eq.Statuses = append(eq.Statuses, string(st))
	}
	if err != nil {
		return eq, err
	}
	if eq.Range != "" {
		tr, err := parseRange(eq.Range, s.now())
		if err != nil {
			return eq, err
		}
		if eq.From == "" {
			eq.Filter.From = tr.From
			return eq, eq.Filter.Validate() // to must still be after the range's start
		}
	}
	return eq, nil
}

// dlqResource is the console resource that triage is checked on.
const dlqResource = access.ConsoleDLQ

// correlationOf and traceOf read the ids from the envelope, else from the
// propagation headers.
func correlationOf(dl delivery.DeadLetter) string {
	if dl.Envelope != nil && dl.Envelope.CorrelationID != "" {
		return dl.Envelope.CorrelationID
	}
	return dl.Headers.String(delivery.HeaderCorrelationID)
}

func traceOf(dl delivery.DeadLetter) string {
	if dl.Envelope != nil && dl.Envelope.TraceID != "" {
		return dl.Envelope.TraceID
	}
	parts := strings.Split(dl.Headers.String(delivery.HeaderTraceparent), "-")
	if len(parts) == 4 && len(parts[1]) == 32 {
		return parts[1]
	}
	return ""
}

// truncateText cuts s to n runes with an ellipsis.
func truncateText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// totalText is a page's total: exact, or "10,000+" when the count stopped
// at its cap.
func totalText(total int, capped bool) string {
	s := templates.Exact(int64(total))
	if capped {
		s += "+"
	}
	return s
}

// dlqBadge is the count on the navigation entry: open entries the
// principal may view, from the store's running totals (no scan), counted
// once per request (openCount).
func (s *Server) dlqBadge(c *fiber.Ctx) string {
	if s.dlq == nil {
		return ""
	}
	n, err := s.openCount(c)
	if err != nil {
		s.log.Warn("dead-letter counts for the navigation", "request_id", requestIDOf(c), "err", err)
		return ""
	}
	if n > 0 {
		return templates.Count(int64(n))
	}
	return ""
}

// openCountKey holds a request's open count once counted.
type openCountKey struct{}

// openCount is how many entries the caller may view need attention,
// counted once per request: the landing page shows it and the navigation
// badge of the same page reuses it.
func (s *Server) openCount(c *fiber.Ctx) (int, error) {
	if n, ok := c.Locals(openCountKey{}).(int); ok {
		return n, nil
	}
	n, err := s.dlq.OpenCount(c.UserContext(), callerOf(c))
	if err == nil {
		c.Locals(openCountKey{}, n)
	}
	return n, err
}
