package web

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/tracing"
)

// The trace JSON API: the search and one story, with the same parameters
// and access rules as the pages; ids as lower-case hex, times RFC 3339,
// durations in milliseconds (fractions allowed).

// apiSpan is one span; a redacted one carries its ids, times and flags.
type apiSpan struct {
	TraceID       string          `json:"trace_id"`
	SpanID        string          `json:"span_id"`
	ParentSpanID  string          `json:"parent_span_id,omitempty"`
	Service       string          `json:"service"`
	Name          string          `json:"name"`
	Kind          string          `json:"kind"`
	Start         time.Time       `json:"start"`
	End           time.Time       `json:"end"`
	DurationMS    float64         `json:"duration_ms"`
	Status        string          `json:"status"`
	StatusMessage string          `json:"status_message,omitempty"`
	Attrs         []tracing.Attr  `json:"attrs"`
	ResourceAttrs []tracing.Attr  `json:"resource_attrs"`
	Events        []tracing.Event `json:"events"`
	Links         []tracing.Link  `json:"links"`
	Flags         []string        `json:"flags"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	EventID       string          `json:"event_id,omitempty"`
	EventType     string          `json:"event_type,omitempty"`
	System        string          `json:"system,omitempty"`
	Destination   string          `json:"destination,omitempty"`
	Cluster       string          `json:"cluster,omitempty"`
	Group         string          `json:"group,omitempty"`
	Tenant        string          `json:"tenant,omitempty"`
	Attempt       int             `json:"attempt,omitempty"`
	Step          string          `json:"step,omitempty"`
	SkewMS        float64         `json:"skew_ms,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// orEmpty is list, or an empty one: the API answers [] rather than null.
func orEmpty[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

func apiSpanOf(sp *tracing.Span) apiSpan {
	out := apiSpan{
		TraceID: sp.TraceID.String(), SpanID: sp.SpanID.String(), Service: sp.Service, Name: sp.Name, Kind: sp.Kind.String(),
		Start: sp.Start.UTC(), End: sp.End.UTC(), DurationMS: ms(sp.Duration()), Status: sp.Status.String(), StatusMessage: sp.StatusMsg,
		Attrs: orEmpty(sp.Attrs), ResourceAttrs: orEmpty(sp.ResourceAttrs), Events: orEmpty(sp.Events), Links: orEmpty(sp.Links),
		CorrelationID: sp.CorrelationID, EventID: sp.EventID, EventType: sp.EventType, System: sp.System, Destination: sp.Destination,
		Cluster: sp.Cluster, Group: sp.Group, Tenant: sp.Tenant, Attempt: sp.Attempt, Step: sp.Step, SkewMS: ms(sp.Skew),
	}
	if !sp.ParentSpanID.IsZero() {
		out.ParentSpanID = sp.ParentSpanID.String()
	}
	out.Flags = sp.Flags.Names()
	return out
}

type apiTraceSearch struct {
	Spans      []apiSpan `json:"spans"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// handleAPITraces searches spans: the page's parameters (traceQueryParams),
// newest first, paged by next_cursor.
func (s *Server) handleAPITraces(c *fiber.Ctx) error {
	tq, err := s.parseTraceQuery(c)
	if err != nil {
		return s.fail(c, err)
	}
	ts, err := s.tracesService()
	if err != nil {
		return s.fail(c, err)
	}
	res, err := ts.Search(c.UserContext(), principal(c), tq.Q)
	if err != nil {
		return s.fail(c, err)
	}
	out := apiTraceSearch{Spans: make([]apiSpan, 0, len(res.Spans)), NextCursor: res.Next}
	for i := range res.Spans {
		out.Spans = append(out.Spans, apiSpanOf(&res.Spans[i]))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// apiTraceRef is one trace of a story.
type apiTraceRef struct {
	TraceID     string    `json:"trace_id"`
	Role        string    `json:"role"`
	RootService string    `json:"root_service"`
	RootName    string    `json:"root_name"`
	Start       time.Time `json:"start"`
	Spans       int       `json:"spans"`
}

// apiRow is one span of the waterfall, placed on the story's axis.
type apiRow struct {
	Span         apiSpan `json:"span"`
	Depth        int     `json:"depth"`
	Parent       int     `json:"parent"`
	Descendants  int     `json:"descendants"`
	OffsetMS     float64 `json:"offset_ms"`
	LengthMS     float64 `json:"length_ms"`
	ViaLink      bool    `json:"via_link"`
	Trace        int     `json:"trace"`
	Critical     bool    `json:"critical"`
	BrokerWaitMS float64 `json:"broker_wait_ms,omitempty"`
	BackoffMS    float64 `json:"backoff_ms,omitempty"`
	Error        string  `json:"error,omitempty"`
}

// apiTraceView is a story as the trace page draws it.
type apiTraceView struct {
	TraceID    string        `json:"trace_id"`
	Start      time.Time     `json:"start"`
	End        time.Time     `json:"end"`
	Traces     []apiTraceRef `json:"traces"`
	Services   []string      `json:"services"`
	Spans      int           `json:"spans"`
	Errors     int           `json:"errors"`
	CriticalMS float64       `json:"critical_ms"`
	Truncated  bool          `json:"truncated"`
	Warnings   []string      `json:"warnings"`
	Rows       []apiRow      `json:"rows"`
}

// handleAPITrace is one story: 404 when the caller may see none of it.
func (s *Server) handleAPITrace(c *fiber.Ctx) error {
	tv, _, err := s.story(c)
	if err != nil {
		return s.fail(c, err)
	}
	out := apiTraceView{
		TraceID: tv.TraceID.String(), Start: tv.Start.UTC(), End: tv.End.UTC(), Traces: []apiTraceRef{},
		Services: append([]string{}, tv.Services...), Spans: tv.Spans, Errors: tv.Errors, CriticalMS: ms(tv.Critical),
		Truncated: tv.Truncated, Warnings: append([]string{}, tv.Warnings...), Rows: make([]apiRow, 0, len(tv.Rows)),
	}
	for _, t := range tv.Traces {
		out.Traces = append(out.Traces, apiTraceRef{TraceID: t.TraceID.String(), Role: t.Role, RootService: t.RootService,
			RootName: t.RootName, Start: t.Start.UTC(), Spans: t.Spans})
	}
	for i := range tv.Rows {
		r := &tv.Rows[i]
		out.Rows = append(out.Rows, apiRow{Span: apiSpanOf(&r.Span), Depth: r.Depth, Parent: r.Parent, Descendants: r.Descendants,
			OffsetMS: ms(r.Offset), LengthMS: ms(r.Length), ViaLink: r.ViaLink, Trace: r.Trace, Critical: r.Critical,
			BrokerWaitMS: ms(r.BrokerWait), BackoffMS: ms(r.Backoff), Error: r.Error})
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}
