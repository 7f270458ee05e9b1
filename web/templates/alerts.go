package templates

import (
	"maps"
	"math"
	"slices"
	"time"
)

// The alerting pages' view models: the Alerts page, the rules list, a
// rule's page and form with its preview, silences, the overview's firing
// head and the "Alert on this" links of other pages.

// AlertOn is one "Alert on this" link: the rule form pre-filled from a
// template for the thing on the page.
type AlertOn struct{ Label, Href string }

// Tab is one tab of a page's tab strip.
type Tab struct {
	Key, Label, Href string
	Count            string // "" for none
	Current          bool
}

// Paging moves through a long list by offset.
type Paging struct {
	Total              int
	First, Last        int // 1-based positions of the rows shown
	PrevHref, NextHref string
}

// SortLink is one order a list offers.
type SortLink struct {
	Label, Href string
	Current     bool
}

// AlertRow is one alert in a table.
type AlertRow struct {
	Fingerprint             string
	Severity, SeverityClass string
	RuleName, RuleHref      string
	Labels                  []KV
	Value                   string
	State, StateClass       string
	Since, SinceExact       string
	Silenced                []AlertOn // the silences that mute it, linked
	Links                   []AlertOn // the group, queue, DLQ group or trace it is about
	// SilenceHref opens the silence form pre-filled with its labels; ""
	// when the principal may not manage alerts.
	SilenceHref string
	Summary     string
}

// TargetRow is a notification target's health.
type TargetRow struct {
	Name, Kind, URL string
	Sent, Failed    string
	Queued          int
	// Failing: failures since the last success; Hung: a request has been
	// outstanding for longer than a notification should take.
	Failing, Hung bool
	Failures      int
	LastError     string
	LastSuccess   string
	InFlightSince string
}

// Alerts is /alerts.
type Alerts struct {
	// Enabled is false when the console runs without alerting.
	Enabled    bool
	Firing     int
	Pending    int
	Silenced   int
	Tabs       []Tab
	State      string // the tab: "", firing, pending, silenced
	Severity   string
	Q          string
	Sort       string
	Sorts      []SortLink
	Rows       []AlertRow
	Paging     Paging
	Targets    []TargetRow
	Rules      int    // rules the principal may see
	Interval   string // "15s": how often rules are evaluated
	CanManage  bool
	Filtered   bool     // a severity or text filter is set
	Severities []string // the severity filter's choices
}

// RuleRow is one rule in the rules list.
type RuleRow struct {
	ID                      int64
	Name, Href              string
	Severity, SeverityClass string
	State, StateClass       string
	LastEval, LastEvalExact string
	EvalError               string
	NoData                  bool
	NoDataSince             string
	Firing, Pending         int
	Enabled                 bool
}

// Rules is /alerts/rules.
type Rules struct {
	Enabled    bool
	State      string
	Severity   string
	Q          string
	Sort       string
	States     []string
	Sorts      []SortLink
	Rows       []RuleRow
	Paging     Paging
	CanManage  bool
	Filtered   bool
	Severities []string
}

// RuleForm is the rule form's fields as typed, shown back with the reason
// per field. Input names are the fields' JSON paths ("expr.metric"), the
// keys of the service's field errors.
type RuleForm struct {
	Action        string // where Save posts
	PreviewAction string
	Version       string // of the rule being edited
	Template      string // the template kind it was pre-filled from
	TemplateTitle string

	Name                             string
	Metric, Matchers, Func, Window   string
	Quantile, Agg, By                string
	DivMetric, DivMatchers           string
	Op, Threshold                    string
	AndMetric, AndMatchers, AndFunc  string
	AndWindow, AndAgg, AndBy, AndOp  string
	AndThreshold                     string
	For, KeepFiringFor               string
	Severity, Labels                 string
	Summary, Description, RunbookURL string
	GroupBy                          string
	Enabled                          bool
	Range                            string // of the preview
	Errors                           map[string]string
	Error                            string // what is wrong, in a sentence
	Conflict                         bool   // changed meanwhile
	Metrics                          []string
	CanSave                          bool
	Editing                          bool
	ID                               int64 // the rule edited
	Choices                          RuleChoices
}

// Err is the reason given for a field, "" when none.
func (f RuleForm) Err(field string) string { return f.Errors[field] }

// RuleChoices are the rule form's choices: value and label for functions
// and aggregations.
type RuleChoices struct {
	Severities, Ops, Ranges []string
	Funcs, Aggs             []KV
}

// ChartBand shades a span of a chart: an interval in which the previewed
// rule would have been pending or firing.
type ChartBand struct {
	From, To time.Time
	State    string // pending or firing
}

// PreviewChart is a chart of a previewed rule: its series, the threshold
// as a dashed line, and the pending and firing intervals shaded.
type PreviewChart struct {
	Chart
	Threshold float64
	Bands     []ChartBand
}

// IntervalRow is one pending or firing interval of a preview.
type IntervalRow struct {
	Labels            string
	State, StateClass string
	From, To          string
	Duration          string
	Open              bool
}

// RulePreview is a rule evaluated over stored history.
type RulePreview struct {
	Range         RangePicker // links on a rule's page; the form has a select
	Chart         PreviewChart
	Intervals     []IntervalRow
	MoreIntervals int
	Fired         int
	Notifications int
	NoData        bool
	Truncated     bool
	Error         string
}

// TransitionRow is one state change of a rule's alerts.
type TransitionRow struct {
	At, AtExact string
	Labels      string
	From, To    string
	ToClass     string
	Value       string
}

// RuleDetail is /alerts/rules/:id.
type RuleDetail struct {
	ID                      int64
	Name                    string
	Severity, SeverityClass string
	State, StateClass       string
	Enabled                 bool
	PromQL                  string
	Definition              []KV
	LastEval, LastEvalExact string
	EvalDuration            string
	EvalError               string
	NoData                  bool
	NoDataSince             string
	Series, Firing, Pending int
	Alerts                  []AlertRow
	Preview                 RulePreview
	History                 []TransitionRow
	HistoryNext             string
	HistoryFirst            string
	CanEdit                 bool
	// Edit shows the form open (?edit=1, or a refused update).
	Edit          bool
	Form          RuleForm
	Version       string
	EnableAction  string
	DisableAction string
	DeleteAction  string
}

// RuleFormPage is /alerts/rules/new, a refused edit, and the preview of
// a draft.
type RuleFormPage struct {
	Heading string
	ID      int64 // the rule edited; 0 for a new one
	Form    RuleForm
	Preview *RulePreview
}

// SilenceRow is one silence.
type SilenceRow struct {
	ID                 int64
	Matchers           []string
	CreatedBy, Comment string
	Starts, StartsAgo  string
	Ends, EndsIn       string
	State, StateClass  string
	ExpiredBy          string
	ExpireAction       string // "" when it may not be expired here
}

// SilenceForm is the create form's fields as typed.
type SilenceForm struct {
	Matchers, Duration, EndsAt, Comment string
	Errors                              map[string]string
	Error                               string
}

// Err is the reason given for a field.
func (f SilenceForm) Err(field string) string { return f.Errors[field] }

// Silences is /alerts/silences.
type Silences struct {
	Enabled   bool
	State     string
	Tabs      []Tab
	Rows      []SilenceRow
	Form      SilenceForm
	CanManage bool
	// Prefilled: the form came from an alert's "Silence" button.
	Prefilled bool
}

// FiringHead is the overview's head: the firing alerts the principal may
// see, most severe and newest first.
type FiringHead struct {
	Rows  []AlertRow
	Total int // firing, of which Rows are the first
}

// previewBand is a ChartBand placed on the drawing.
type previewBand struct {
	X, W  float64
	State string
}

// previewLayout is a preview chart's drawing: the chart's own layout with
// the threshold line and the bands.
type previewLayout struct {
	chartLayout
	ThresholdPath  string
	ThresholdLabel string
	Bands          []previewBand
}

// previewLayoutOf lays out a preview chart. The threshold is laid out as
// a series of its own over the whole range, so that the value axis
// includes it and the time axis is the range's own (the bands are placed
// on it); it is then drawn dashed, apart from the lines. Pure.
func previewLayoutOf(p PreviewChart) previewLayout {
	c := p.Chart
	from, to := c.From, c.To
	if !to.After(from) {
		to = from.Add(time.Minute)
	}
	const thresholdName = "\x00threshold"
	c.Series = append([]ChartSeries{{Name: thresholdName, Points: []ChartPoint{{T: from, V: p.Threshold}, {T: to, V: p.Threshold}}}}, c.Series...)
	l := layout(c)
	out := previewLayout{ThresholdLabel: FormatValue(p.Threshold, c.Unit)}
	for _, ln := range l.Lines {
		if ln.Name == thresholdName {
			out.ThresholdPath = ln.Path
			continue
		}
		out.Lines = append(out.Lines, ln)
	}
	out.XTicks, out.YTicks, out.More = l.XTicks, l.YTicks, l.More
	out.Summary = p.Title + " — threshold " + out.ThresholdLabel
	span := to.Sub(from).Seconds()
	x := func(t time.Time) float64 {
		return plotLeft + plotW*math.Max(0, math.Min(1, t.Sub(from).Seconds()/span))
	}
	for _, b := range p.Bands {
		x0, x1 := x(b.From), x(b.To)
		if x1-x0 < 1 {
			x1 = x0 + 1 // an interval of one step is still visible
		}
		out.Bands = append(out.Bands, previewBand{X: round1(x0), W: round1(x1 - x0), State: b.State})
	}
	return out
}

// bandFill is the colour of a band's state, as SVG presentation
// attributes (the CSP allows no inline style).
func bandFill(state string) string {
	if state == "firing" {
		return "#b42318"
	}
	return "#a15c00"
}

// sortedKeys are a map's keys in order, for listing field errors.
func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
