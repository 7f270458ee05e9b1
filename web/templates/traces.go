package templates

import (
	"math"
	"strconv"
	"time"
)

// TraceSearch is /traces: the search form, one page of matching spans
// newest first, and their duration over time.
type TraceSearch struct {
	Form TraceForm
	// Configured is false when the console has no span store; the page
	// then says so instead of "no results".
	Configured bool
	Rows       []TraceResultRow
	Scatter    TraceScatter
	// NextHref is the next page (same search, the cursor); "" on the last.
	NextHref string
	// FirstHref goes back to the first page when this one is not it.
	FirstHref string
	// Searched is false when the form is empty (the newest spans are
	// listed), so that the empty state can say what to change.
	Searched bool
}

// TraceForm is the search form's fields as typed, shown back.
type TraceForm struct {
	TraceID, CorrelationID, Service, Operation, EventType string
	Status, Tenant, MinDuration, MaxDuration              string
	Range, From, To                                       string
	Roots                                                 bool
	// Hidden are the API's other filters a link carried (group,
	// destination, event_id, step), kept by the form as hidden fields.
	Hidden []KV
}

// TraceStatuses are the status choices of the search form.
func TraceStatuses() []string { return []string{"", "error", "ok", "unset"} }

// TraceRanges are the time range choices of the search form ("" = all
// retained spans); the same keys as every page's range picker.
func TraceRanges() []string { return []string{"", "15m", "1h", "6h", "24h", "7d"} }

// TraceResultRow is one span of the results.
type TraceResultRow struct {
	Start, StartAgo    string
	Service, Operation string
	Kind               string
	Duration           string
	Status             string
	StatusClass        string
	Tenant             string
	EventType          string
	TraceID            string
	Href               string // the trace, at this span
	Error              string // the status message of a failed span
}

// TraceScatter is the duration-over-time scatter of a page of results,
// each dot a link to its trace at that span.
type TraceScatter struct {
	From, To time.Time
	Dots     []ScatterPoint
}

// ScatterPoint is one span of the scatter.
type ScatterPoint struct {
	T     time.Time
	D     time.Duration
	Href  string
	Error bool
	Label string // service, operation, duration: the dot's tooltip
}

// scatterDot is a ScatterPoint placed on the drawing.
type scatterDot struct {
	X, Y        float64
	Href, Label string
	Error       bool
}

type scatterLayout struct {
	XTicks, YTicks []chartTick
	Dots           []scatterDot
}

// layout places the dots: time on x over the results' own span (at least
// a minute), duration on y from 0 to a nice maximum. Pure.
func (s TraceScatter) layout() scatterLayout {
	var l scatterLayout
	from, to := s.From, s.To
	for _, d := range s.Dots {
		if from.IsZero() || d.T.Before(from) {
			from = d.T
		}
		if to.IsZero() || d.T.After(to) {
			to = d.T
		}
	}
	if to.Sub(from) < minChartSpan {
		mid := from.Add(to.Sub(from) / 2)
		from, to = mid.Add(-minChartSpan/2), mid.Add(minChartSpan/2)
	}
	hi := 0.0
	for _, d := range s.Dots {
		hi = math.Max(hi, d.D.Seconds())
	}
	step := niceStep(hi / 4)
	if step <= 0 {
		step = 0.001
	}
	hi = math.Ceil(hi/step) * step
	if hi <= 0 {
		hi = step
	}
	span := to.Sub(from).Seconds()
	x := func(t time.Time) float64 { return plotLeft + plotW*t.Sub(from).Seconds()/span }
	y := func(v float64) float64 { return plotBottom - plotH*v/hi }
	for v := 0.0; v <= hi+step/2; v += step {
		l.YTicks = append(l.YTicks, chartTick{Pos: round1(y(v)), Label: Seconds(v)})
	}
	tstep := scatterTimeStep(to.Sub(from))
	for t := from.Truncate(tstep).Add(tstep); !t.After(to); t = t.Add(tstep) {
		label := t.UTC().Format("15:04")
		if tstep < time.Minute {
			label = t.UTC().Format("15:04:05")
		} else if to.Sub(from) > 48*time.Hour {
			label = t.UTC().Format("Jan 2")
		}
		l.XTicks = append(l.XTicks, chartTick{Pos: round1(x(t)), Label: label})
	}
	for _, d := range s.Dots {
		l.Dots = append(l.Dots, scatterDot{X: round1(x(d.T)), Y: round1(y(math.Max(0, d.D.Seconds()))), Href: d.Href, Label: d.Label, Error: d.Error})
	}
	return l
}

// scatterTimeStep is timeStep with steps below a minute, for results that
// all fall within a few minutes.
func scatterTimeStep(d time.Duration) time.Duration {
	for _, s := range []time.Duration{10 * time.Second, 15 * time.Second, 30 * time.Second} {
		if d/s <= 7 {
			return s
		}
	}
	return timeStep(d)
}

// TraceWaterfall is /traces/:id: one message's story on one time axis.
type TraceWaterfall struct {
	TraceID   string
	Traces    []TraceRefView
	Services  []ServiceChip
	Spans     int
	Errors    int
	Critical  string // total of the critical path
	Total     string // length of the axis
	Start     string // the axis' start, UTC
	Truncated bool
	Warnings  []string
	Ticks     []AxisTick
	Rows      []WaterfallRow
	// Focus is the span id of ?span=, highlighted and scrolled to.
	Focus string
	// The story's dead letters and redrive jobs, and the correlation ids
	// it carries.
	DeadLetters  []TraceDeadLetter
	DLQNote      string // why the list may be empty or short
	Jobs         []TraceJob
	Correlations []TraceCorrelation
}

// TraceRefView is one trace of a story.
type TraceRefView struct {
	TraceID, Role, RootService, RootName, Start string
	Spans                                       int
	Href                                        string // "" for the asked trace
}

// ServiceChip is a service of the story with its colour (a class c0…c7;
// red is kept for errors).
type ServiceChip struct{ Name, Class string }

// AxisTick is one label of the time axis, at Pos per mille of its width.
type AxisTick struct {
	Pos   string
	Label string
}

// WaterfallRow is one span of the waterfall. Left and Width place the
// bar per mille of the axis (SVG attributes: the CSP allows no inline
// styles).
type WaterfallRow struct {
	Index, Parent, Depth, Descendants int
	SpanID, TraceID                   string
	Service, ServiceClass             string
	Operation, Kind, Status           string
	Start, Duration                   string
	Left, Width                       string
	Critical, Failed, Redacted        bool
	ViaLink, Skewed, Focus            bool
	// Boundary: the row belongs to another trace than its parent row (a
	// hop over a span link); TraceHref opens that trace.
	Boundary  bool
	TraceHref string
	Skew      string
	Error     string
	// BrokerWait is the time in the broker before this consumer span,
	// drawn as a segment from BrokerLeft, BrokerWidth long.
	BrokerWait              string
	BrokerLeft, BrokerWidth string
	Backoff                 string // retry backoff before this attempt
	Attempt                 int
	Flags                   []string
	Attrs, ResourceAttrs    []KV
	Events                  []SpanEvent
	Links                   []SpanLink
	// Lazy: the details are not in the page; PanelHref loads them.
	Lazy      bool
	PanelHref string
}

// IndentClass indents a row by its depth (classes d0…d24; deeper rows
// stay at 24: the CSP allows no inline styles).
func (r WaterfallRow) IndentClass() string { return "d" + strconv.Itoa(min(r.Depth, 24)) }

// SpanEvent is one event of a span; an exception carries its stack.
type SpanEvent struct {
	Time, Name string
	Attrs      []KV
	Exception  bool
	Type, Msg  string
	Stack      string
}

// SpanLink is one link of a span, to a span of another trace.
type SpanLink struct {
	TraceID, SpanID, Href string
	Attrs                 []KV
}

// TraceDeadLetter is a dead letter of the story.
type TraceDeadLetter struct {
	ID                            int64
	Href, Title, Status, Event    string
	Destination, Tenant, LastFail string
}

// TraceJob is a redrive job of the story.
type TraceJob struct {
	ID   string
	Href string
}

// TraceCorrelation is a correlation id of the story, linking its page.
type TraceCorrelation struct{ ID, Href string }

// Saga is /correlations/:id: everything that shares a correlation id, in
// time order, one lane per service.
type Saga struct {
	ID    string
	Lanes []string // services, in order of first appearance
	Items []SagaItem
	// Failures and Compensations count the marked items.
	Failures, Compensations int
	// NextHref pages through spans past the first page; "" on the last.
	NextHref string
	// Notes say what could not be read or was cut.
	Notes []string
	// TraceHrefs are the story's traces.
	Traces []TraceCorrelation
}

// SagaItem is one span, dead letter or redrive job, in its lane.
type SagaItem struct {
	Kind         string // "span", "dead-letter", "redrive"
	Lane         int    // index into Saga.Lanes
	Time, Ago    string
	Service      string
	Title        string
	Detail       string
	Href         string
	Failed       bool
	Compensation bool
	Duration     string
}

// GroupTraces are a consumer group's recent traces, one row per trace,
// and the search of all of them.
type GroupTraces struct {
	Rows     []TraceResultRow
	MoreHref string
}
