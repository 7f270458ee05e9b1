package tracing

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	"switchyard/access"
	"switchyard/delivery"
)

// Defaults of ServiceOptions.
const (
	DefaultMaxSpans        = 10_000
	DefaultMaxLinkedTraces = 50
)

// maxSearchField bounds each text field of a SearchQuery: an id, a name or
// a destination is far shorter, and a megabyte of "service" is an attack.
const maxSearchField = 512

// ServiceOptions configure a Service. The zero value shows everything the
// policy allows, without PII rules, with the default limits.
type ServiceOptions struct {
	Policy access.Policy
	// Masker masks PII in span attributes for callers without read_pii;
	// nil: no PII rules.
	Masker *access.Masker
	// MaxSpans caps the spans of one story (≤ 0: DefaultMaxSpans): a
	// runaway trace shows its first MaxSpans spans instead of taking the
	// page down.
	MaxSpans int
	// MaxLinkedTraces caps the traces joined to the asked one by links
	// (≤ 0: DefaultMaxLinkedTraces): a topic's hot producer can be linked
	// from thousands of consumer traces.
	MaxLinkedTraces int
}

// Service is what the trace pages and API call: it reads a story from the
// Store, decides span by span what the caller may see (Trace, Span) or
// scopes the query (Search), masks PII, and lays the story out (Assemble).
// The access rules live here, below the handlers, so that no page can
// show a span its caller may not see. Safe for concurrent use.
type Service struct {
	store     *Store
	policy    access.Policy
	masker    *access.Masker
	maxSpans  int
	maxLinked int
}

// NewService returns a Service over st.
func NewService(st *Store, o ServiceOptions) *Service {
	if o.MaxSpans <= 0 {
		o.MaxSpans = DefaultMaxSpans
	}
	if o.MaxLinkedTraces <= 0 {
		o.MaxLinkedTraces = DefaultMaxLinkedTraces
	}
	return &Service{store: st, policy: o.Policy, masker: o.Masker, maxSpans: o.MaxSpans, maxLinked: o.MaxLinkedTraces}
}

// Trace assembles the story of trace id for p: the trace, the traces its
// spans link to and the traces that link to it, followed transitively (up
// to MaxLinkedTraces) so that failure → dead letter → redrive → success is
// one chain.
//
// p may view a span when its tenant is in p's view scope and, when the
// span names a destination (Span.Resource), p may view that resource for
// that tenant. Other spans stay in the story as FlagRedacted rows with
// only their ids, times, kind, flags and links' targets: a gap with its
// timing, never its names or attributes. Visible spans have their PII
// attributes masked unless p may read_pii on the span's resource.
//
// Errors: delivery.ENOTFOUND when no span of trace id is visible to p (so
// that a trace out of reach looks like one that does not exist).
func (s *Service) Trace(ctx context.Context, p *access.Principal, id TraceID) (*TraceView, error) {
	notFound := delivery.Errorf(delivery.ENOTFOUND, "trace %s not found", id)
	if id.IsZero() {
		return nil, notFound
	}
	g := s.gate(p)
	spans, truncated, err := s.store.Spans(ctx, []TraceID{id}, s.maxSpans)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", id, err)
	}
	if !slices.ContainsFunc(spans, func(sp Span) bool { return g.visible(&sp) }) {
		return nil, notFound
	}

	// Walk the links out from the asked trace, one ring of traces at a
	// time: the traces its new spans link to, and those linking to it.
	story := map[TraceID]bool{id: true}
	ring, fresh := []TraceID{id}, spans
	linked, capped := 0, false
	for len(ring) > 0 && len(spans) <= s.maxSpans {
		var next []TraceID
		add := func(t TraceID) {
			switch {
			case t.IsZero() || story[t]:
			case linked >= s.maxLinked:
				capped = true
			default:
				story[t] = true
				linked++
				next = append(next, t)
			}
		}
		for k := range fresh {
			for _, l := range fresh[k].Links {
				add(l.TraceID)
			}
		}
		from, err := s.store.LinkingTraces(ctx, ring, s.maxLinked+len(story))
		if err != nil {
			return nil, fmt.Errorf("trace %s: %w", id, err)
		}
		for _, t := range from {
			add(t)
		}
		if len(next) == 0 {
			break
		}
		more, cut, err := s.store.Spans(ctx, next, s.maxSpans)
		if err != nil {
			return nil, fmt.Errorf("trace %s: %w", id, err)
		}
		spans, truncated = append(spans, more...), truncated || cut
		ring, fresh = next, more
	}

	for k := range spans {
		g.show(&spans[k])
	}
	v := Assemble(id, spans, s.maxSpans)
	if truncated && !v.Truncated {
		v.Truncated = true
		v.Warnings = append(v.Warnings, fmt.Sprintf("the story has more spans than shown: the first %s by start time",
			numbered(len(v.Rows), "span")))
	}
	if capped {
		v.Warnings = append(v.Warnings, fmt.Sprintf("more traces are linked to this story than shown: the first %d", s.maxLinked))
	}
	return v, nil
}

// Search returns one page of the spans matching q that p may view, newest
// first: p's view scope (tenants and resource patterns,
// access.ScopeFor) is a condition of the store's query, so a page is full
// whenever more visible spans match. PII attributes are masked as in
// Trace.
//
// Errors: delivery.EINVALID for a bad query (limit outside 1–500, negative
// durations, a maximum below the minimum, an empty or reversed time range,
// an unknown status, an oversized field, a bad cursor).
func (s *Service) Search(ctx context.Context, p *access.Principal, q SearchQuery) (SearchResult, error) {
	if err := validSearch(q); err != nil {
		return SearchResult{}, err
	}
	res, err := s.store.Search(ctx, q, access.ScopeFor(s.policy, p, access.ActionView))
	if err != nil {
		return SearchResult{}, err
	}
	g := s.gate(p)
	for k := range res.Spans {
		g.mask(&res.Spans[k])
	}
	return res, nil
}

// Span returns span id of trace t as p may see it (masked as in Trace),
// for a detail panel or the API. When the id is stored twice (a
// duplicate), the first copy is returned.
//
// Errors: delivery.ENOTFOUND when the span does not exist or p may not
// view it.
func (s *Service) Span(ctx context.Context, p *access.Principal, t TraceID, id SpanID) (Span, error) {
	spans, err := s.store.Span(ctx, t, id)
	if err != nil {
		return Span{}, fmt.Errorf("span %s of trace %s: %w", id, t, err)
	}
	g := s.gate(p)
	for k := range spans {
		if sp := &spans[k]; g.visible(sp) {
			g.mask(sp)
			return *sp, nil
		}
	}
	return Span{}, delivery.Errorf(delivery.ENOTFOUND, "span %s of trace %s not found", id, t)
}

// validSearch refuses what no search means; the store checks the cursor.
func validSearch(q SearchQuery) error {
	bad := func(format string, args ...any) error { return delivery.Errorf(delivery.EINVALID, format, args...) }
	switch {
	case q.Limit < 0 || q.Limit > MaxSearchLimit:
		return bad("limit %d: want 1 to %d", q.Limit, MaxSearchLimit)
	case q.MinDuration < 0 || q.MaxDuration < 0:
		return bad("durations cannot be negative")
	case q.MaxDuration != 0 && q.MaxDuration < q.MinDuration:
		return bad("maximum duration %v is below the minimum %v", q.MaxDuration, q.MinDuration)
	case !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To):
		return bad("time range: the start must be before the end")
	}
	if _, ok := ParseStatus(q.Status); !ok && q.Status != "" {
		return bad("status %q: want ok, error or unset", truncateField(q.Status))
	}
	for _, f := range []struct{ name, v string }{
		{"correlation id", q.CorrelationID}, {"service", q.Service}, {"operation", q.Operation},
		{"event type", q.EventType}, {"event id", q.EventID}, {"tenant", q.Tenant},
		{"destination", q.Destination}, {"group", q.Group}, {"step", q.Step}, {"cursor", q.After},
	} {
		if len(f.v) > maxSearchField {
			return bad("%s: longer than %d bytes", f.name, maxSearchField)
		}
		if !utf8.ValidString(f.v) {
			return bad("%s: not UTF-8", f.name)
		}
	}
	return nil
}

// truncateField keeps an echoed value short in an error message.
func truncateField(v string) string {
	if len(v) <= 40 {
		return v
	}
	return v[:40] + "…"
}

// gate decides, span by span, what one caller may see, remembering the
// policy's answer per resource and tenant (a story touches few).
type gate struct {
	s     *Service
	p     *access.Principal
	scope access.Scope
	view  map[access.Resource]bool
	pii   map[access.Resource]bool
}

func (s *Service) gate(p *access.Principal) *gate {
	return &gate{
		s: s, p: p, scope: s.policy.Scope(p, access.ActionView, "*"),
		view: map[access.Resource]bool{}, pii: map[access.Resource]bool{},
	}
}

// visible reports whether the caller may view sp (see Service.Trace).
func (g *gate) visible(sp *Span) bool {
	if !g.scope.Allows(sp.Tenant) {
		return false
	}
	if sp.Resource == "" {
		return true
	}
	return g.can(g.view, access.ActionView, access.Resource{Name: sp.Resource, Tenant: sp.Tenant})
}

func (g *gate) can(memo map[access.Resource]bool, a access.Action, r access.Resource) bool {
	ok, seen := memo[r]
	if !seen {
		ok = g.s.policy.Can(g.p, a, r)
		memo[r] = ok
	}
	return ok
}

// show makes sp what the caller may see of it: redacted when it may not
// view it, masked otherwise.
func (g *gate) show(sp *Span) {
	if g.visible(sp) {
		g.mask(sp)
		return
	}
	links := make([]Link, len(sp.Links))
	for k, l := range sp.Links {
		links[k] = Link{TraceID: l.TraceID, SpanID: l.SpanID}
	}
	*sp = Span{
		TraceID: sp.TraceID, SpanID: sp.SpanID, ParentSpanID: sp.ParentSpanID,
		Kind: sp.Kind, Start: sp.Start, End: sp.End, Flags: sp.Flags | FlagRedacted,
		Links: links,
	}
}

// mask replaces the values of PII attributes (access.Masker.AttrMasked,
// by the span's event type) with access.PIIMask in the span's, its
// resource's, its events' and its links' attributes, unless the caller may
// read_pii on the span's resource ("*" when it names none) and tenant.
func (g *gate) mask(sp *Span) {
	m := g.s.masker
	if m == nil {
		return
	}
	name := sp.Resource
	if name == "" {
		name = "*"
	}
	if g.can(g.pii, access.ActionReadPII, access.Resource{Name: name, Tenant: sp.Tenant}) {
		return
	}
	sp.Attrs = maskedAttrs(m, sp.EventType, sp.Attrs)
	sp.ResourceAttrs = maskedAttrs(m, sp.EventType, sp.ResourceAttrs)
	// The span is the caller's own copy, read for this request.
	for k := range sp.Events {
		sp.Events[k].Attrs = maskedAttrs(m, sp.EventType, sp.Events[k].Attrs)
	}
	for k := range sp.Links {
		sp.Links[k].Attrs = maskedAttrs(m, sp.EventType, sp.Links[k].Attrs)
	}
}

// maskedAttrs returns attrs with PII values masked: attrs itself when
// nothing is, else a copy (the input may be shared).
func maskedAttrs(m *access.Masker, eventType string, attrs []Attr) []Attr {
	var out []Attr
	for k, a := range attrs {
		if a.Value == "" || a.Value == access.PIIMask || !m.AttrMasked(eventType, a.Key) {
			continue
		}
		if out == nil {
			out = slices.Clone(attrs)
		}
		out[k].Value = access.PIIMask
	}
	if out == nil {
		return attrs
	}
	return out
}
