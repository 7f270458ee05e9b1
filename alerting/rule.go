package alerting

import (
	"time"

	"github.com/prometheus/common/model"

	"switchyard/tsdb"
)

// Duration is a rule's duration, written as Prometheus writes them ("30s",
// "5m", "1h30m", "2d") in JSON and in forms.
type Duration = model.Duration

// Func is what a selector computes from each selected series before
// aggregation.
type Func string

// The functions of a selector. Each has a PromQL equivalent (PromQL), and
// the evaluator reproduces Prometheus's arithmetic for it exactly.
const (
	// FuncValue is the series' latest sample no older than Lookback: the
	// plain instant selector `metric{…}`.
	FuncValue Func = ""
	// FuncRate is rate(metric{…}[window]): per-second increase of a
	// counter, extrapolated as Prometheus does.
	FuncRate Func = "rate"
	// FuncIncrease is increase(metric{…}[window]).
	FuncIncrease Func = "increase"
	// FuncQuantile is histogram_quantile(q, sum by (le, by…)
	// (rate(metric_bucket{…}[window]))): Metric names the histogram
	// (event_processing_duration_seconds), not its _bucket series.
	FuncQuantile Func = "quantile"
)

// AggOp aggregates the selected series over labels.
type AggOp string

// The aggregations. AggNone keeps every series (its labels, without the
// metric name, become the alert's).
const (
	AggNone  AggOp = ""
	AggSum   AggOp = "sum"
	AggMax   AggOp = "max"
	AggMin   AggOp = "min"
	AggAvg   AggOp = "avg"
	AggCount AggOp = "count"
)

// CmpOp compares a value with a threshold.
type CmpOp string

// The comparisons, as in PromQL.
const (
	OpGT CmpOp = ">"
	OpGE CmpOp = ">="
	OpLT CmpOp = "<"
	OpLE CmpOp = "<="
	OpEQ CmpOp = "=="
	OpNE CmpOp = "!="
)

// Holds reports whether v op threshold holds; NaN never does.
func (op CmpOp) Holds(v, threshold float64) bool {
	switch op {
	case OpGT:
		return v > threshold
	case OpGE:
		return v >= threshold
	case OpLT:
		return v < threshold
	case OpLE:
		return v <= threshold
	case OpEQ:
		return v == threshold
	case OpNE:
		return v != threshold
	}
	return false
}

// Lookback is how far back an instant selector looks for a series' latest
// sample: Prometheus's default staleness window. A series with no sample
// in it is absent, never zero.
const Lookback = 5 * time.Minute

// Selector reads one metric of the history store and reduces it to one
// value per label set.
type Selector struct {
	// Metric is the metric name: a switchyard_* series or a service
	// metric (event_processed_total, event_failed_total,
	// event_processing_duration_seconds for FuncQuantile).
	Metric string `json:"metric"`
	// Matchers select series by label, in PromQL syntax
	// (`group=~"orders.*"`), all of which must hold.
	Matchers []tsdb.Matcher `json:"matchers,omitempty"`
	// Func and its Window (required for rate, increase and quantile) and
	// Quantile (0 < q < 1, FuncQuantile only).
	Func     Func     `json:"func,omitempty"`
	Window   Duration `json:"window,omitempty"`
	Quantile float64  `json:"quantile,omitempty"`
	// Agg aggregates the series by the labels By (all labels dropped when
	// empty). Required for FuncQuantile, which always sums buckets by le
	// and By.
	Agg AggOp    `json:"agg,omitempty"`
	By  []string `json:"by,omitempty"`
}

// Condition is a second selector that must also hold for the same labels
// (PromQL `and on(By)`; all labels when the rule does not aggregate): "a
// queue with ready messages AND no consumers".
type Condition struct {
	Selector
	Op        CmpOp   `json:"op"`
	Threshold float64 `json:"threshold"`
}

// Rule is an alert rule: Expr (optionally divided by DivideBy, one to one
// on labels) compared with Threshold, and the optional And condition,
// yielding one alert per label set, with Prometheus's for and
// keep_firing_for.
type Rule struct {
	ID   int64  `json:"id"`
	Name string `json:"name"` // the alertname label; letters, digits, _ and spaces

	Expr      Selector   `json:"expr"`
	DivideBy  *Selector  `json:"divide_by,omitempty"` // a ratio: failed / processed
	Op        CmpOp      `json:"op"`
	Threshold float64    `json:"threshold"`
	And       *Condition `json:"and,omitempty"`

	For           Duration `json:"for,omitempty"`
	KeepFiringFor Duration `json:"keep_firing_for,omitempty"`

	Severity string `json:"severity"` // critical, warning or info
	// Labels are added to every alert of the rule; Annotations are
	// expanded per alert: {{ $labels.group }}, {{ $value }}. Known keys:
	// summary, description, runbook_url.
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// GroupBy are the labels notifications of this rule are grouped by
	// (besides the rule itself) for webhooks: Alertmanager's group_by.
	GroupBy []string `json:"group_by,omitempty"`

	Enabled bool `json:"enabled"`

	// Set by the store.
	CreatedBy string    `json:"created_by,omitempty"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Version increases with every change; an update names the version it
	// changes (optimistic locking), so two editors do not overwrite each
	// other silently.
	Version int64 `json:"version"`
}

// Selectors returns every selector the rule reads.
func (r *Rule) Selectors() []Selector {
	out := []Selector{r.Expr}
	if r.DivideBy != nil {
		out = append(out, *r.DivideBy)
	}
	if r.And != nil {
		out = append(out, r.And.Selector)
	}
	return out
}

// Severities, in decreasing order.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// State is an alert's state, as Prometheus names them.
type State string

// The states of an alert. An alert that resolves is kept as inactive (with
// ResolvedAt) for ResolvedRetention so that notifiers learn of it.
const (
	StateInactive State = "inactive"
	StatePending  State = "pending"
	StateFiring   State = "firing"
)

// ResolvedRetention is how long a resolved alert is kept and re-sent as
// resolved (Prometheus's resolvedRetention).
const ResolvedRetention = 15 * time.Minute

// Alert is one label set of one rule that is, or was lately, active.
type Alert struct {
	RuleID int64 `json:"rule_id"`
	// Fingerprint identifies the label set (hash of Labels).
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"` // series labels without __name__, plus the rule's, plus alertname and severity
	Annotations map[string]string `json:"annotations,omitempty"`
	State       State             `json:"state"`
	Value       float64           `json:"value"`

	ActiveAt        time.Time `json:"active_at"`                  // when it became pending
	FiredAt         time.Time `json:"fired_at,omitzero"`          // when it became firing
	ResolvedAt      time.Time `json:"resolved_at,omitzero"`       // when it stopped (inactive)
	KeepFiringSince time.Time `json:"keep_firing_since,omitzero"` // when its series stopped while keep_firing_for holds it
	LastSentAt      time.Time `json:"last_sent_at,omitzero"`      // to Alertmanagers
	ValidUntil      time.Time `json:"valid_until,omitzero"`       // endsAt sent while firing

	// Silenced lists the silences that match the alert now (filled when
	// the alert is read, not stored).
	Silenced []int64 `json:"silenced_by,omitempty"`
}

// Transition is one change of an alert's state, kept per rule.
type Transition struct {
	ID          int64             `json:"id"`
	RuleID      int64             `json:"rule_id"`
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	From        State             `json:"from"`
	To          State             `json:"to"`
	At          time.Time         `json:"at"`
	Value       float64           `json:"value"`
}

// Silence mutes the alerts whose labels match all its matchers between
// StartsAt and EndsAt.
type Silence struct {
	ID        int64          `json:"id"`
	Matchers  []tsdb.Matcher `json:"matchers"`
	CreatedBy string         `json:"created_by"`
	Comment   string         `json:"comment"`
	StartsAt  time.Time      `json:"starts_at"`
	EndsAt    time.Time      `json:"ends_at"`
	CreatedAt time.Time      `json:"created_at"`
	// ExpiredBy is set when someone ended the silence early.
	ExpiredBy string `json:"expired_by,omitempty"`
}

// Active reports whether the silence mutes alerts at t.
func (s *Silence) Active(t time.Time) bool {
	return !t.Before(s.StartsAt) && t.Before(s.EndsAt)
}

// RuleStatus is the evaluator's last word on a rule.
type RuleStatus struct {
	RuleID       int64         `json:"rule_id"`
	LastEval     time.Time     `json:"last_eval,omitzero"`
	EvalDuration time.Duration `json:"eval_duration_ns"`
	Error        string        `json:"error,omitempty"`
	Series       int           `json:"series"` // label sets the expression returned (before the threshold)
	Firing       int           `json:"firing"`
	Pending      int           `json:"pending"`
	// NoData is true when no series the rule reads had a sample within
	// Lookback: "the series vanished".
	NoData bool `json:"no_data"`
	// NoDataSince is when the rule last stopped seeing data.
	NoDataSince time.Time `json:"no_data_since,omitzero"`
}
