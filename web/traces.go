package web

import (
	"context"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/sqldb"
	"switchyard/tracing"
	"switchyard/web/templates"
)

// The trace area: the search (/traces), one story's waterfall
// (/traces/:id), the saga of a correlation id (/correlations/:id), the
// global search box (/search) and their JSON API. Every route asks only
// for view on "*"; what a caller may see of a trace is the tracing
// service's rule (tenant scope and destination patterns in the store's
// query, hidden spans redacted to their timing, PII attributes masked),
// so these handlers parse, make the call and render.

// Traces is what the trace pages and API need of the tracing service;
// each call applies the caller's rules. *tracing.Service implements it.
type Traces interface {
	// Trace is the story of id as p may see it: the trace and the traces
	// joined to it by span links, spans out of reach redacted to their
	// timing. Errors: ENOTFOUND (also when no span of it is visible).
	Trace(ctx context.Context, p *access.Principal, id tracing.TraceID) (*tracing.TraceView, error)
	// Search pages the spans p may see that match q, newest first.
	// Errors: EINVALID (bad query or cursor).
	Search(ctx context.Context, p *access.Principal, q tracing.SearchQuery) (tracing.SearchResult, error)
	// Span is one span p may see. Errors: ENOTFOUND.
	Span(ctx context.Context, p *access.Principal, t tracing.TraceID, id tracing.SpanID) (tracing.Span, error)
}

func (s *Server) tracesService() (Traces, error) {
	if s.traces == nil {
		return nil, delivery.Errorf(delivery.ENOTFOUND, "tracing is not configured")
	}
	return s.traces, nil
}

// traceQueryParams are the parameters of the search page and API, the
// one list both read (apiQueryParams names them for the API).
var traceQueryParams = []string{
	"trace_id", "correlation_id", "service", "operation", "event_type", "event_id", "status", "tenant",
	"destination", "group", "cluster", "step", "min_duration", "max_duration", "range", "from", "to", "roots", "limit", "cursor",
}

// maxTraceText bounds a text field of a search (bytes).
const maxTraceText = 256

// traceQuery is a search as read from the query string, with the values
// to show back in the form and to carry into the next page's link.
type traceQuery struct {
	Q    tracing.SearchQuery
	Form templates.TraceForm
	// Given is what the request named (trimmed), without the cursor.
	Given url.Values
	// TraceIDText is the trace_id parameter as typed.
	TraceIDText string
}

// parseTraceQuery reads traceQueryParams: the id and text fields (each at
// most maxTraceText bytes), status (ok, error or unset), min_duration and
// max_duration (Go durations: 250ms, 2s, 1m30s), the range (15m … 7d,
// the console's one picker) or from and to (RFC 3339, Unix seconds or a
// browser's datetime-local value in UTC), roots (a checkbox), limit
// (1–500) and the cursor. Errors: EINVALID naming the parameter.
func (s *Server) parseTraceQuery(c *fiber.Ctx) (traceQuery, error) {
	args := queryOf(c)
	var tq traceQuery
	tq.Given = url.Values{}
	get := func(k string) string {
		v := strings.TrimSpace(args.Get(k))
		if v != "" && k != "cursor" {
			tq.Given.Set(k, v)
		}
		return v
	}
	f := &tq.Form
	f.TraceID, f.CorrelationID, f.Service, f.Operation = get("trace_id"), get("correlation_id"), get("service"), get("operation")
	f.EventType, f.Status, f.Tenant = get("event_type"), get("status"), get("tenant")
	f.MinDuration, f.MaxDuration, f.Range, f.From, f.To = get("min_duration"), get("max_duration"), get("range"), get("from"), get("to")
	q := &tq.Q
	q.CorrelationID, q.Service, q.Operation, q.EventType, q.Tenant = f.CorrelationID, f.Service, f.Operation, f.EventType, f.Tenant
	q.EventID, q.Destination, q.Group, q.Cluster, q.Step = get("event_id"), get("destination"), get("group"), get("cluster"), get("step")
	q.After = get("cursor")
	for _, h := range []struct{ k, v string }{{"event_id", q.EventID}, {"destination", q.Destination}, {"group", q.Group}, {"cluster", q.Cluster}, {"step", q.Step}} {
		if h.v != "" {
			f.Hidden = append(f.Hidden, templates.KV{Key: h.k, Value: h.v})
		}
	}
	tq.TraceIDText = f.TraceID
	for _, t := range []struct{ name, v string }{
		{"correlation_id", q.CorrelationID}, {"service", q.Service}, {"operation", q.Operation}, {"event_type", q.EventType},
		{"event_id", q.EventID}, {"tenant", q.Tenant}, {"destination", q.Destination}, {"group", q.Group}, {"cluster", q.Cluster}, {"step", q.Step},
	} {
		if len(t.v) > maxTraceText {
			return tq, delivery.Errorf(delivery.EINVALID, "%s is too long (%d characters at most)", t.name, maxTraceText)
		}
	}
	if len(q.After) > 512 {
		return tq, delivery.Errorf(delivery.EINVALID, "cursor is not one this console issued")
	}
	if f.TraceID != "" {
		id, ok := tracing.ParseTraceID(f.TraceID)
		if !ok {
			return tq, delivery.Errorf(delivery.EINVALID, "trace_id must be 32 hex characters (a W3C trace id)")
		}
		q.TraceID = id
	}
	switch f.Status {
	case "", "ok", "error", "unset":
		q.Status = f.Status
	default:
		return tq, delivery.Errorf(delivery.EINVALID, "status must be ok, error or unset")
	}
	var err error
	if q.MinDuration, err = parseSpanDuration("min_duration", f.MinDuration); err != nil {
		return tq, err
	}
	if q.MaxDuration, err = parseSpanDuration("max_duration", f.MaxDuration); err != nil {
		return tq, err
	}
	if q.MaxDuration > 0 && q.MaxDuration < q.MinDuration {
		return tq, delivery.Errorf(delivery.EINVALID, "max_duration must not be below min_duration")
	}
	if f.Range != "" {
		tr, err := parseRange(f.Range, s.now())
		if err != nil {
			return tq, err
		}
		q.From, q.To = tr.From, tr.To
	}
	if f.From != "" {
		if q.From, err = sqldb.ParseFormTime("from", f.From); err != nil {
			return tq, err
		}
	}
	if f.To != "" {
		if q.To, err = sqldb.ParseFormTime("to", f.To); err != nil {
			return tq, err
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return tq, delivery.Errorf(delivery.EINVALID, "to must be after from")
	}
	switch r := get("roots"); r {
	case "", "0", "false", "off":
	case "1", "true", "on":
		q.Roots, f.Roots = true, true
	default:
		return tq, delivery.Errorf(delivery.EINVALID, "roots must be true or false")
	}
	if l := get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return tq, delivery.Errorf(delivery.EINVALID, "limit must be between 1 and 500")
		}
		q.Limit = n
	}
	return tq, nil
}

// parseSpanDuration reads a duration bound: a Go duration, not negative;
// "" is none.
func parseSpanDuration(name, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, delivery.Errorf(delivery.EINVALID, "%s %q: want a duration such as 250ms, 2s or 1m30s", name, truncateText(v, 40))
	}
	return d, nil
}

// handleTraces is the search page. A trace id typed into the form opens
// that trace.
func (s *Server) handleTraces(c *fiber.Ctx) error {
	tq, err := s.parseTraceQuery(c)
	if err != nil {
		return s.fail(c, err)
	}
	page := templates.Page{Title: "Traces", Area: templates.AreaTraces}
	vm := templates.TraceSearch{Form: tq.Form, Searched: len(tq.Given) > 0}
	if !tq.Q.TraceID.IsZero() {
		return c.Redirect(traceHref(tq.Q.TraceID), fiber.StatusSeeOther)
	}
	if s.traces == nil {
		return s.render(c, page, templates.TraceSearchView(vm))
	}
	vm.Configured = true
	res, err := s.traces.Search(c.UserContext(), principal(c), tq.Q)
	if err != nil {
		return s.fail(c, err)
	}
	now := s.now()
	for i := range res.Spans {
		sp := &res.Spans[i]
		vm.Rows = append(vm.Rows, traceResultRowOf(sp, now))
		vm.Scatter.Dots = append(vm.Scatter.Dots, templates.ScatterPoint{
			T: sp.Start, D: sp.Duration(), Href: spanHref(sp.TraceID, sp.SpanID), Error: sp.Status == tracing.StatusError,
			Label: sp.Service + " " + sp.Name + " " + fmtSpanDuration(sp.Duration()),
		})
	}
	vm.Scatter.From, vm.Scatter.To = scatterAxis(res.Spans, tq.Q.From, tq.Q.To)
	if res.Next != "" {
		next := cloneValues(tq.Given)
		next.Set("cursor", res.Next)
		vm.NextHref = "/traces?" + next.Encode()
	}
	if tq.Q.After != "" {
		vm.FirstHref = "/traces"
		if len(tq.Given) > 0 {
			vm.FirstHref += "?" + tq.Given.Encode()
		}
	}
	return s.render(c, page, templates.TraceSearchView(vm))
}

// traceResultRowOf is a span as a row of results.
func traceResultRowOf(sp *tracing.Span, now time.Time) templates.TraceResultRow {
	return templates.TraceResultRow{
		Start: fmtTime(sp.Start), StartAgo: cmpOr(templates.Ago(now, sp.Start), fmtTime(sp.Start)),
		Service: sp.Service, Operation: sp.Name, Kind: sp.Kind.String(),
		Duration: fmtSpanDuration(sp.Duration()), Status: sp.Status.String(), StatusClass: spanStatusClass(sp.Status),
		Tenant: sp.Tenant, EventType: sp.EventType, TraceID: sp.TraceID.String(),
		Href: spanHref(sp.TraceID, sp.SpanID), Error: sp.StatusMsg,
	}
}

func spanStatusClass(st tracing.Status) string {
	switch st {
	case tracing.StatusError:
		return "badge bad"
	case tracing.StatusOK:
		return "badge ok"
	}
	return "badge"
}

// traceHref is the trace page of id.
func traceHref(id tracing.TraceID) string { return "/traces/" + id.String() }

// spanHref is the trace page at one span: highlighted, its details open,
// scrolled to (the fragment, which needs no script).
func spanHref(t tracing.TraceID, sp tracing.SpanID) string {
	return "/traces/" + t.String() + "?span=" + sp.String() + "#span-" + sp.String()
}

// correlationHref is the saga page of a correlation id.
func correlationHref(id string) string { return "/correlations/" + url.PathEscape(id) }

// fmtSpanDuration prints a span's length: 420µs, 12ms, 1.5s, 2m5s.
func fmtSpanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtSpanDuration(-d)
	case d == 0:
		return "0s"
	case d < time.Millisecond:
		return strconv.FormatInt(int64(math.Round(float64(d)/float64(time.Microsecond))), 10) + "µs"
	case d < 10*time.Millisecond:
		return strings.TrimSuffix(strconv.FormatFloat(math.Round(float64(d)/float64(time.Millisecond)*10)/10, 'f', 1, 64), ".0") + "ms"
	}
	return templates.Seconds(d.Seconds())
}

// groupTraces are a consumer group's ten most recent traces the caller
// may see (one row per trace), for the group's page; nil without a span
// store. A failed search leaves the page standing, without the table.
// Spans name the group only (messaging.consumer.group.name), not the
// cluster: a group of the same name on another cluster shares the list.
func (s *Server) groupTraces(c *fiber.Ctx, cluster, group string) *templates.GroupTraces {
	if s.traces == nil {
		return nil
	}
	// The last day: a group that stopped long ago has none to show, and the
	// search stays a short walk of spans_group.
	q := tracing.SearchQuery{Group: group, Cluster: cluster, Roots: true, Limit: 10, From: s.now().Add(-24 * time.Hour)}
	res, err := s.traces.Search(c.UserContext(), principal(c), q)
	if err != nil {
		s.log.WarnContext(c.UserContext(), "recent traces of a group", "request_id", requestIDOf(c), "err", err)
		return nil
	}
	out := &templates.GroupTraces{MoreHref: "/traces?" + url.Values{"group": {group}, "cluster": {cluster}, "roots": {"1"}, "range": {"24h"}}.Encode()}
	now := s.now()
	for i := range res.Spans {
		out.Rows = append(out.Rows, traceResultRowOf(&res.Spans[i], now))
	}
	return out
}

// exampleTraceLinks lead from the services' rate and latency figures to
// traces of the same window: the failed spans, and those at or above the
// p99 latency (when known).
func exampleTraceLinks(tr timeRange, p99 float64) []templates.ChartLink {
	links := []templates.ChartLink{{Label: "failed", Href: "/traces?" + url.Values{"status": {"error"}, "range": {tr.Key}}.Encode()}}
	if !math.IsNaN(p99) && !math.IsInf(p99, 0) && p99 > 0 {
		d := time.Duration(p99 * float64(time.Second)).Round(time.Millisecond)
		links = append(links, templates.ChartLink{Label: "slowest (≥ p99 " + fmtSpanDuration(d) + ")",
			Href: "/traces?" + url.Values{"min_duration": {d.String()}, "range": {tr.Key}}.Encode()})
	}
	return links
}

// scatterAxis is the time axis of the results' scatter: the query's range
// when the page spreads over it, else the page's own span of time (with a
// little room at both ends), so that a page of the last second's spans is
// not 50 dots on one pixel at the right edge of an hour.
func scatterAxis(spans []tracing.Span, from, to time.Time) (time.Time, time.Time) {
	if len(spans) == 0 {
		return from, to
	}
	lo, hi := spans[0].Start, spans[0].Start
	for _, sp := range spans[1:] {
		if sp.Start.Before(lo) {
			lo = sp.Start
		}
		if sp.Start.After(hi) {
			hi = sp.Start
		}
	}
	if !from.IsZero() && !to.IsZero() && hi.Sub(lo) >= to.Sub(from)/4 {
		return from, to
	}
	pad := max(hi.Sub(lo)/20, time.Second)
	return lo.Add(-pad), hi.Add(pad)
}
