package web

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/tracing"
	"switchyard/web/templates"
)

// maxStoryDLQTraces bounds how many traces of a story the dead-letter
// index is asked about (one full-text query each).
const maxStoryDLQTraces = 10

// handleTrace is one message's story: the waterfall of the tracing
// service's view, then the dead letters and redrive jobs it touched.
// ?span= highlights one span and opens its details.
func (s *Server) handleTrace(c *fiber.Ctx) error {
	tv, focus, err := s.story(c)
	if err != nil {
		return s.fail(c, err)
	}
	vm := waterfallOf(tv, focus)
	s.storyDeadLetters(c, tv, &vm)
	return s.render(c, templates.Page{Title: "Trace " + tv.TraceID.String(), Area: templates.AreaTraces}, templates.TraceView(vm))
}

// eagerPanels is how many rows a trace may have for every row's details
// to be rendered into the page: at 5,000 spans they would be ~9 MB of
// HTML; each row's details are ~1.8 KB.
const eagerPanels = 300

// fillPanel puts a visible span's details into its row.
func fillPanel(row *templates.WaterfallRow, sp *tracing.Span) {
	row.Attrs = attrKVs(sp.Attrs)
	row.ResourceAttrs = attrKVs(sp.ResourceAttrs)
	for _, e := range sp.Events {
		row.Events = append(row.Events, spanEventOf(e))
	}
	for _, l := range sp.Links {
		row.Links = append(row.Links, templates.SpanLink{TraceID: l.TraceID.String(), SpanID: l.SpanID.String(),
			Href: spanHref(l.TraceID, l.SpanID), Attrs: attrKVs(l.Attrs)})
	}
}

// spanPanelHref is where the waterfall loads one span's details.
func spanPanelHref(t tracing.TraceID, id tracing.SpanID) string {
	return "/traces/" + t.String() + "/spans/" + id.String()
}

// handleTraceSpan is one span's details: the panel the waterfall loads
// when a row of a large trace is opened (HX-Request), or a page of its own.
// A span the caller may not view is a 404, as a missing one.
func (s *Server) handleTraceSpan(c *fiber.Ctx) error {
	id, ok := tracing.ParseTraceID(param(c, "id"))
	sid, sok := tracing.ParseSpanID(param(c, "span"))
	if !ok || !sok {
		return s.fail(c, delivery.Errorf(delivery.ENOTFOUND, "span %s of trace %s not found",
			truncateText(param(c, "span"), 20), truncateText(param(c, "id"), 40)))
	}
	ts, err := s.tracesService()
	if err != nil {
		return s.fail(c, err)
	}
	sp, err := ts.Span(c.UserContext(), principal(c), id, sid)
	if err != nil {
		return s.fail(c, err)
	}
	row := templates.WaterfallRow{
		SpanID: sp.SpanID.String(), TraceID: sp.TraceID.String(), Service: sp.Service, Operation: sp.Name,
		Kind: sp.Kind.String(), Status: sp.Status.String(), Start: fmtTime(sp.Start),
		Duration: fmtSpanDuration(sp.Duration()), Error: sp.ErrorLine(), Flags: flagTexts(&sp),
	}
	fillPanel(&row, &sp)
	return s.render(c, templates.Page{Title: sp.Service + " " + sp.Name, Area: templates.AreaTraces}, templates.SpanPanel(row))
}

// story is the caller's view of the story of :id (the page and the API
// alike), and the span ?span= focuses.
func (s *Server) story(c *fiber.Ctx) (*tracing.TraceView, tracing.SpanID, error) {
	id, focus, err := traceParams(c)
	if err != nil {
		return nil, focus, err
	}
	ts, err := s.tracesService()
	if err != nil {
		return nil, focus, err
	}
	tv, err := ts.Trace(c.UserContext(), principal(c), id)
	return tv, focus, err
}

// traceParams reads :id (a malformed one is a trace that does not exist:
// 404) and ?span= (400 when malformed).
func traceParams(c *fiber.Ctx) (tracing.TraceID, tracing.SpanID, error) {
	raw := param(c, "id")
	id, ok := tracing.ParseTraceID(raw)
	if !ok {
		return id, tracing.SpanID{}, delivery.Errorf(delivery.ENOTFOUND, "trace %s not found", truncateText(raw, 40))
	}
	var focus tracing.SpanID
	if v := strings.TrimSpace(c.Query("span")); v != "" {
		if focus, ok = tracing.ParseSpanID(v); !ok {
			return id, focus, delivery.Errorf(delivery.EINVALID, "span must be 16 hex characters (a W3C span id)")
		}
	}
	return id, focus, nil
}

// waterfallOf builds the page's view model from the assembled story. Pure.
func waterfallOf(tv *tracing.TraceView, focus tracing.SpanID) templates.TraceWaterfall {
	vm := templates.TraceWaterfall{
		TraceID: tv.TraceID.String(), Spans: tv.Spans, Errors: tv.Errors,
		Critical: fmtSpanDuration(tv.Critical), Start: fmtTime(tv.Start),
		Truncated: tv.Truncated, Warnings: tv.Warnings,
	}
	if !focus.IsZero() {
		vm.Focus = focus.String()
	}
	total := tv.End.Sub(tv.Start)
	if total <= 0 {
		total = 1
	}
	vm.Total = fmtSpanDuration(tv.End.Sub(tv.Start))
	for k := range 5 {
		vm.Ticks = append(vm.Ticks, templates.AxisTick{Pos: strconv.Itoa(k * 250), Label: fmtSpanDuration(total * time.Duration(k) / 4)})
	}
	classOf := map[string]string{}
	for i, svc := range tv.Services {
		classOf[svc] = "c" + strconv.Itoa(i%8)
		vm.Services = append(vm.Services, templates.ServiceChip{Name: svc, Class: classOf[svc]})
	}
	for i, t := range tv.Traces {
		ref := templates.TraceRefView{TraceID: t.TraceID.String(), Role: t.Role, RootService: t.RootService, RootName: t.RootName,
			Start: fmtTime(t.Start), Spans: t.Spans}
		if i > 0 {
			ref.Href = traceHref(t.TraceID)
		}
		vm.Traces = append(vm.Traces, ref)
	}
	per := func(d int64) string {
		return strconv.FormatFloat(roundTo(float64(d)*1000/float64(total), 2), 'f', -1, 64)
	}
	// Past eagerPanels rows, a row's details load when it is opened.
	lazy := len(tv.Rows) > eagerPanels
	seenCorr := map[string]bool{}
	seenJob := map[string]bool{}
	vm.Rows = make([]templates.WaterfallRow, 0, len(tv.Rows))
	for i := range tv.Rows {
		r := &tv.Rows[i]
		sp := &r.Span
		redacted := sp.Flags.Has(tracing.FlagRedacted)
		row := templates.WaterfallRow{
			Index: i, Parent: r.Parent, Depth: r.Depth, Descendants: r.Descendants,
			SpanID: sp.SpanID.String(), TraceID: sp.TraceID.String(),
			Service: sp.Service, ServiceClass: classOf[sp.Service], Operation: sp.Name,
			Kind: sp.Kind.String(), Status: sp.Status.String(), Start: fmtTime(sp.Start),
			Duration: fmtSpanDuration(sp.Duration()),
			Left:     per(int64(r.Offset)), Width: per(max(int64(r.Length), int64(total)/500)),
			Critical: r.Critical, Failed: !redacted && sp.Status == tracing.StatusError, Redacted: redacted,
			ViaLink: r.ViaLink, Skewed: sp.Flags.Has(tracing.FlagSkewed), Error: r.Error, Attempt: sp.Attempt,
			Focus: !focus.IsZero() && sp.SpanID == focus,
		}
		if redacted {
			row.Service, row.ServiceClass = "", ""
		}
		switch {
		case r.Parent >= 0 && r.Parent < len(tv.Rows):
			row.Boundary = tv.Rows[r.Parent].Span.TraceID != sp.TraceID
		case i > 0:
			row.Boundary = r.Trace != 0
		}
		row.Boundary = row.Boundary || r.ViaLink
		if row.Boundary {
			row.TraceHref = traceHref(sp.TraceID)
		}
		if row.Skewed {
			row.Skew = "+" + fmtSpanDuration(sp.Skew)
		}
		if r.BrokerWait > 0 {
			row.BrokerWait = fmtSpanDuration(r.BrokerWait)
			row.BrokerLeft, row.BrokerWidth = per(int64(r.Offset-r.BrokerWait)), per(int64(r.BrokerWait))
		}
		if r.Backoff > 0 {
			row.Backoff = fmtSpanDuration(r.Backoff)
		}
		row.Flags = flagTexts(sp)
		if lazy && !row.Focus && !redacted {
			row.Lazy, row.PanelHref = true, spanPanelHref(sp.TraceID, sp.SpanID)
		}
		if !redacted {
			if !row.Lazy {
				fillPanel(&row, sp)
			}
			if id := sp.CorrelationID; id != "" && !seenCorr[id] {
				seenCorr[id] = true
				vm.Correlations = append(vm.Correlations, templates.TraceCorrelation{ID: id, Href: correlationHref(id)})
			}
			if job, ok := sp.Attr(delivery.AttrRedriveJob); ok && !seenJob[job] {
				if n, err := strconv.ParseInt(job, 10, 64); err == nil && n > 0 {
					seenJob[job] = true
					vm.Jobs = append(vm.Jobs, templates.TraceJob{ID: job, Href: jobHref(n)})
				}
			}
		}
		vm.Rows = append(vm.Rows, row)
	}
	return vm
}

func roundTo(v float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// flagTexts says what was wrong with a span, one line per flag.
func flagTexts(sp *tracing.Span) []string {
	var out []string
	for _, f := range []struct {
		flag tracing.Flags
		text string
	}{
		{tracing.FlagAttrsCut, "attributes, events or links were cut to the store's caps"},
		{tracing.FlagDuplicate, "another span with this id was received too"},
		{tracing.FlagNonPositive, "it ends at or before its start (drawn with no length)"},
		{tracing.FlagFuture, "it starts in the future of when it was received"},
		{tracing.FlagNoIDs, "it came without valid ids; the console gave it some"},
		{tracing.FlagUnknownParent, "its parent span was not received"},
		{tracing.FlagSkewed, "moved by " + fmtSpanDuration(sp.Skew) + " to start no earlier than its parent (clock skew)"},
	} {
		if sp.Flags.Has(f.flag) {
			out = append(out, f.text)
		}
	}
	return out
}

func attrKVs(attrs []tracing.Attr) []templates.KV {
	if len(attrs) == 0 {
		return nil
	}
	out := make([]templates.KV, len(attrs))
	for i, a := range attrs {
		out[i] = templates.KV{Key: a.Key, Value: a.Value}
	}
	return out
}

// spanEventOf is an event for the details panel; an exception's type,
// message and stack are shown as such rather than as attributes.
func spanEventOf(e tracing.Event) templates.SpanEvent {
	out := templates.SpanEvent{Time: fmtTime(e.Time), Name: e.Name, Exception: e.Name == "exception"}
	for _, a := range e.Attrs {
		switch {
		case out.Exception && a.Key == "exception.type":
			out.Type = a.Value
		case out.Exception && a.Key == "exception.message":
			out.Msg = a.Value
		case out.Exception && a.Key == "exception.stacktrace":
			out.Stack = a.Value
		default:
			out.Attrs = append(out.Attrs, templates.KV{Key: a.Key, Value: a.Value})
		}
	}
	return out
}

// storyDeadLetters fills the dead letters of the story's traces (the
// dead-letter index's full-text "ids" column holds trace ids) as the
// dead-letter service shows them to the caller, and the redrive jobs
// that sent them. A failure here leaves the waterfall standing and says
// so.
func (s *Server) storyDeadLetters(c *fiber.Ctx, tv *tracing.TraceView, vm *templates.TraceWaterfall) {
	if s.dlq == nil {
		vm.DLQNote = "The dead-letter index is not configured."
		return
	}
	seen := map[int64]bool{}
	seenJob := map[string]bool{}
	for _, j := range vm.Jobs {
		seenJob[j.ID] = true
	}
	for i, t := range tv.Traces {
		if i == maxStoryDLQTraces {
			vm.DLQNote = "Only the dead letters of the first " + strconv.Itoa(maxStoryDLQTraces) + " traces of this story are listed."
			break
		}
		page, err := s.dlq.FindEntries(c.UserContext(), callerOf(c), dlqstore.Filter{Q: "ids:" + t.TraceID.String(), Limit: 50})
		if err != nil {
			s.log.WarnContext(c.UserContext(), "dead letters of a trace", "request_id", requestIDOf(c), "err", err)
			vm.DLQNote = "The dead letters of this story could not be read right now."
			return
		}
		for _, e := range page.Entries {
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			vm.DeadLetters = append(vm.DeadLetters, templates.TraceDeadLetter{
				ID: e.ID, Href: entryHref(e.ID), Title: truncateText(cmpOr(e.DL.Error.Message, e.ErrorCode), 120),
				Status: string(e.Status), Event: e.EventType, Destination: e.Destination, Tenant: e.Tenant,
				LastFail: fmtTime(e.DL.LastFailureAt),
			})
			if e.RedriveJob > 0 {
				if id := itoa64(e.RedriveJob); !seenJob[id] {
					seenJob[id] = true
					vm.Jobs = append(vm.Jobs, templates.TraceJob{ID: id, Href: jobHref(e.RedriveJob)})
				}
			}
		}
	}
	slices.SortFunc(vm.DeadLetters, func(a, b templates.TraceDeadLetter) int { return cmp.Compare(a.ID, b.ID) })
}
