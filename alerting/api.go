package alerting

import (
	"time"

	"switchyard/tsdb"
)

// RuleView is a rule as a principal sees it in lists and on its page.
type RuleView struct {
	Rule
	Status RuleStatus `json:"status"`
	// State is the rule's worst alert state now: firing, pending, or
	// inactive ("ok"); "disabled" for a disabled rule.
	State string `json:"state"`
	// CanEdit: the principal may change or delete the rule (manage_alerts
	// over everything it reads).
	CanEdit bool `json:"can_edit"`
}

// RuleFilter selects and orders rules. The zero value lists every visible
// rule by name.
type RuleFilter struct {
	State    string // "", firing, pending, ok, disabled, error, nodata
	Severity string
	Q        string // substring of the name
	Sort     string // name (default), -name, state, updated, -updated
	Limit    int    // default 50, at most 500
	Offset   int
}

// RulePage is one page of rules.
type RulePage struct {
	Rules []RuleView `json:"rules"`
	Total int        `json:"total"`
}

// Link points from an alert to the console page of what it is about.
type Link struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// AlertView is an alert as a principal sees it.
type AlertView struct {
	Alert
	RuleName string `json:"rule_name"`
	Severity string `json:"severity"`
	Links    []Link `json:"links,omitempty"`
}

// AlertFilter selects alerts. State "silenced" lists silenced ones of any
// state; "firing" and "pending" leave silenced ones out; "" lists all.
type AlertFilter struct {
	State    string
	RuleID   int64
	Severity string
	Q        string // substring of any label value
	Sort     string // -active (default: newest first), active, severity, rule
	Limit    int    // default 100, at most 1000
	Offset   int
}

// AlertCounts are the numbers the Alerts page and the overview head show,
// over every visible alert.
type AlertCounts struct {
	Firing   int `json:"firing"`
	Pending  int `json:"pending"`
	Silenced int `json:"silenced"`
}

// AlertPage is one page of alerts.
type AlertPage struct {
	Alerts []AlertView `json:"alerts"`
	Total  int         `json:"total"`
	Counts AlertCounts `json:"counts"`
}

// SilenceFilter selects silences by state at the current time.
type SilenceFilter struct {
	State string // "", active, pending (starts later), expired
}

// SilenceState says where a silence is in its life at a time.
func (s *Silence) State(t time.Time) string {
	switch {
	case !t.Before(s.EndsAt):
		return "expired"
	case t.Before(s.StartsAt):
		return "pending"
	}
	return "active"
}

// Interval is a span in which a previewed rule's alert for one label set
// was pending or firing.
type Interval struct {
	Labels map[string]string `json:"labels"`
	State  State             `json:"state"`
	From   time.Time         `json:"from"`
	To     time.Time         `json:"to"` // the last step it held, or the preview's end when it still does
	Open   bool              `json:"open"`
}

// PreviewSeries is one label set of the previewed expression.
type PreviewSeries struct {
	Labels map[string]string `json:"labels"`
	Points []tsdb.Point      `json:"points"`
}

// Preview is a draft rule evaluated over stored history.
type Preview struct {
	From, To  time.Time       `json:"-"`
	Step      time.Duration   `json:"step_ns"`
	Op        CmpOp           `json:"op"`
	Threshold float64         `json:"threshold"`
	Series    []PreviewSeries `json:"series"`
	// Truncated: more label sets than PreviewMaxSeries; the first ones
	// (by labels) are shown, the intervals cover all.
	Truncated bool       `json:"truncated"`
	Intervals []Interval `json:"intervals"`
	// Notifications is how many notifications the rule would have sent:
	// one when an alert starts firing and one when it resolves.
	Notifications int `json:"notifications"`
	// Fired counts the alerts (label set × firing interval) that fired.
	Fired int `json:"fired"`
	// NoData: no series the rule reads had data in the range.
	NoData bool `json:"no_data"`
}

// PreviewMaxSeries caps the label sets a preview returns for charting.
const PreviewMaxSeries = 50

// TargetStatus is a notification target's health, for the Alerts page and
// /metrics.
type TargetStatus struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"` // alertmanager or webhook
	URL    string `json:"url"`  // without credentials
	Sent   uint64 `json:"sent"`
	Failed uint64 `json:"failed"`
	// ConsecutiveFailures since the last success; a target with some is
	// failing now.
	ConsecutiveFailures int       `json:"consecutive_failures"`
	LastError           string    `json:"last_error,omitempty"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
	LastAttempt         time.Time `json:"last_attempt,omitzero"`
	// Queued is the notifications waiting for this target; InFlightSince
	// is when the request now outstanding was sent (zero when none), so a
	// hung target shows as such.
	Queued        int       `json:"queued"`
	InFlightSince time.Time `json:"in_flight_since,omitzero"`
}

// Notification is what the evaluator hands to the notifiers after each
// cycle: the rule, and its alerts that are firing or resolved lately
// (state inactive with ResolvedAt), silenced ones marked in Silenced.
type Notification struct {
	Rule   *Rule
	Alerts []Alert
}

// Notifier receives the alerts of each evaluation. Notify must not block:
// a notifier queues and sends on its own goroutines, so that a hung target
// never delays an evaluation.
type Notifier interface {
	Notify(at time.Time, ns []Notification)
}
