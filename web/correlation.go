package web

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/sqldb"
	"switchyard/tracing"
	"switchyard/web/templates"
)

// sagaSpans is how many spans one saga page reads (the store's maximum
// page); ?cursor= pages on.
const sagaSpans = 500

// sagaDeadLetters is how many dead letters of a correlation id the page lists.
const sagaDeadLetters = 200

// attrCompensation marks a span as a compensating step of a saga.
const attrCompensation = "switchyard.compensation"

// handleCorrelation is the saga page of a correlation id: its spans (the
// tracing service's search), dead letters (the dead-letter service's
// search) and redrive jobs (from the redrive spans), merged in time
// order, one lane per service.
func (s *Server) handleCorrelation(c *fiber.Ctx) error {
	id := param(c, "id")
	if id == "" || len(id) > maxTraceText || !sqldb.ValidText(id) {
		return s.fail(c, delivery.Errorf(delivery.ENOTFOUND, "correlation %s not found", truncateText(id, 40)))
	}
	cursor := strings.TrimSpace(c.Query("cursor"))
	if len(cursor) > 512 {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "cursor is not one this console issued"))
	}
	vm := templates.Saga{ID: id}
	var spans []tracing.Span
	if s.traces == nil {
		vm.Notes = append(vm.Notes, "Tracing is not configured: only dead letters are shown.")
	} else {
		res, err := s.traces.Search(c.UserContext(), principal(c), tracing.SearchQuery{CorrelationID: id, Limit: sagaSpans, After: cursor})
		if err != nil {
			return s.fail(c, err)
		}
		spans = res.Spans
		if res.Next != "" {
			vm.NextHref = correlationHref(id) + "?cursor=" + url.QueryEscape(res.Next)
			vm.Notes = append(vm.Notes, "More than "+strconv.Itoa(sagaSpans)+" spans share this id: the newest are shown; “more spans” pages on.")
		}
	}
	var entries []dlqstore.Entry
	if s.dlq != nil && cursor == "" {
		var note string
		entries, note = s.correlationEntries(c, id)
		if note != "" {
			vm.Notes = append(vm.Notes, note)
		}
	}
	sagaOf(&vm, spans, entries)
	return s.render(c, templates.Page{Title: "Correlation " + id, Area: templates.AreaTraces}, templates.SagaView(vm))
}

// correlationEntries are the caller's dead letters whose correlation id
// is id: a full-text search of the index's ids column, kept to exact
// matches (the search finds the id's words as a phrase, which a longer
// id may also hold).
func (s *Server) correlationEntries(c *fiber.Ctx, id string) ([]dlqstore.Entry, string) {
	if strings.ContainsRune(id, '"') {
		return nil, "Dead letters are not searched for an id with a quote in it."
	}
	page, err := s.dlq.FindEntries(c.UserContext(), callerOf(c), dlqstore.Filter{Q: `ids:"` + id + `"`, Limit: sagaDeadLetters})
	if err != nil {
		if delivery.ErrorCode(err) != delivery.EINVALID {
			s.log.WarnContext(c.UserContext(), "dead letters of a correlation", "request_id", requestIDOf(c), "err", err)
		}
		return nil, "The dead letters of this correlation id could not be read right now."
	}
	out := slices.DeleteFunc(page.Entries, func(e dlqstore.Entry) bool { return correlationOf(e.DL) != id })
	if page.Next != "" {
		return out, "More than " + strconv.Itoa(sagaDeadLetters) + " dead letters share this id: the newest are shown."
	}
	return out, ""
}

// sagaOf merges spans and dead letters into the saga's lanes and items,
// in time order. Pure.
func sagaOf(vm *templates.Saga, spans []tracing.Span, entries []dlqstore.Entry) {
	type item struct {
		at time.Time
		templates.SagaItem
	}
	var items []item
	lane := map[string]int{}
	laneOf := func(name string) int {
		if i, ok := lane[name]; ok {
			return i
		}
		lane[name] = len(vm.Lanes)
		vm.Lanes = append(vm.Lanes, name)
		return lane[name]
	}
	seenTrace := map[tracing.TraceID]bool{}
	seenJob := map[int64]bool{}
	slices.SortStableFunc(spans, func(a, b tracing.Span) int { return a.Start.Compare(b.Start) })
	slices.SortStableFunc(entries, func(a, b dlqstore.Entry) int { return a.DL.LastFailureAt.Compare(b.DL.LastFailureAt) })
	// Lanes follow the first appearance in time across both kinds.
	type first struct {
		at   time.Time
		name string
	}
	var order []first
	for _, sp := range spans {
		order = append(order, first{sp.Start, cmpOr(sp.Service, "unknown service")})
	}
	for _, e := range entries {
		order = append(order, first{e.DL.LastFailureAt, entryLane(e)})
	}
	slices.SortStableFunc(order, func(a, b first) int { return a.at.Compare(b.at) })
	for _, o := range order {
		laneOf(o.name)
	}
	for i := range spans {
		sp := &spans[i]
		if !seenTrace[sp.TraceID] {
			seenTrace[sp.TraceID] = true
			vm.Traces = append(vm.Traces, templates.TraceCorrelation{ID: sp.TraceID.String(), Href: traceHref(sp.TraceID)})
		}
		comp := isCompensation(sp.EventType)
		if v, ok := sp.Attr(attrCompensation); ok && v == "true" {
			comp = true
		}
		detail := sp.Kind.String()
		if sp.EventType != "" {
			detail += " · " + sp.EventType
		}
		if sp.Attempt > 0 {
			detail += " · attempt " + strconv.Itoa(sp.Attempt)
		}
		items = append(items, item{sp.Start, templates.SagaItem{
			Kind: "span", Lane: laneOf(cmpOr(sp.Service, "unknown service")), Time: fmtTimeMilli(sp.Start), Service: sp.Service,
			Title: sp.Name, Detail: detail, Href: spanHref(sp.TraceID, sp.SpanID), Duration: fmtSpanDuration(sp.Duration()),
			Failed: sp.Status == tracing.StatusError, Compensation: comp,
		}})
		if job, ok := sp.Attr(delivery.AttrRedriveJob); ok {
			if n, err := strconv.ParseInt(job, 10, 64); err == nil && n > 0 && !seenJob[n] {
				seenJob[n] = true
				items = append(items, item{sp.Start, templates.SagaItem{
					Kind: "redrive", Lane: laneOf(cmpOr(sp.Service, "unknown service")), Time: fmtTimeMilli(sp.Start), Service: sp.Service,
					Title: "redrive job " + job, Detail: "the job that sent the message again", Href: jobHref(n),
				}})
			}
		}
	}
	for _, e := range entries {
		items = append(items, item{e.DL.LastFailureAt, templates.SagaItem{
			Kind: "dead-letter", Lane: laneOf(entryLane(e)), Time: fmtTimeMilli(e.DL.LastFailureAt), Service: e.DL.Origin.Service,
			Title:  "dead letter " + itoa64(e.ID) + ": " + truncateText(cmpOr(e.DL.Error.Message, e.ErrorCode), 80),
			Detail: e.EventType + " · " + string(e.Status), Href: entryHref(e.ID), Failed: true, Compensation: isCompensation(e.EventType),
		}})
		if e.RedriveJob > 0 && !seenJob[e.RedriveJob] {
			seenJob[e.RedriveJob] = true
			items = append(items, item{e.DL.FirstFailureAt, templates.SagaItem{
				Kind: "redrive", Lane: laneOf(entryLane(e)), Time: fmtTimeMilli(e.DL.FirstFailureAt), Service: e.DL.Origin.Service,
				Title: "redrive job " + itoa64(e.RedriveJob), Detail: "redrove the message before this failure", Href: jobHref(e.RedriveJob),
			}})
		}
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(a.at.UnixNano(), b.at.UnixNano()) })
	for _, it := range items {
		if it.Failed {
			vm.Failures++
		}
		if it.Compensation {
			vm.Compensations++
		}
		vm.Items = append(vm.Items, it.SagaItem)
	}
}

// entryLane is the lane of a dead letter: the service that failed it, its
// consumer group, else a lane of their own.
func entryLane(e dlqstore.Entry) string {
	return cmpOr(e.DL.Origin.Service, cmpOr(e.DL.Origin.ConsumerGroup, "dead letters"))
}

// isCompensation reports whether an event type is a saga's compensating
// step: the platform names them "<domain>.<entity>.cancelled.v1"
// (orders.order.cancelled.v1), others say "compensate".
func isCompensation(eventType string) bool {
	return strings.HasSuffix(eventType, ".cancelled.v1") || strings.Contains(strings.ToLower(eventType), "compensat")
}

// fmtTimeMilli shows milliseconds: the steps of a saga are often within
// one second of each other, and their order is the point of the page.
func fmtTimeMilli(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
}
