package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of EvaluatorOptions.
const (
	DefaultInterval    = 15 * time.Second
	DefaultResendDelay = time.Minute
	// transitionsKept is how much history a rule keeps at least, however
	// old; older transitions go after TransitionRetention.
	transitionsKept     = 200
	TransitionRetention = 30 * 24 * time.Hour
)

// EvaluatorOptions configure an Evaluator; Store and History are required.
type EvaluatorOptions struct {
	Store   *Store
	History Reader
	// Notifier receives every cycle's alerts; nil sends nothing.
	Notifier Notifier
	// Interval between evaluations; default 15s.
	Interval time.Duration
	// ResendDelay: how often firing alerts are re-sent (their endsAt).
	ResendDelay time.Duration
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
	Now         func() time.Time
}

// Evaluator evaluates every enabled rule every Interval with Prometheus's
// semantics (Eval, Apply), persists what changed, and hands the alerts to
// the notifier without waiting for it. It is the only writer of alert
// state; its in-memory view is what pages read.
type Evaluator struct {
	opts EvaluatorOptions
	log  *slog.Logger

	cycleMu sync.Mutex // one cycle at a time

	mu       sync.RWMutex
	loaded   bool
	rules    map[int64]*Rule
	active   map[int64]map[string]*Alert
	status   map[int64]RuleStatus
	lastTick time.Time
	lastTook time.Duration

	evals, failures map[int64]uint64 // per rule, for /metrics
	cycles          prometheus.Histogram
}

// NewEvaluator returns an Evaluator; call Load (or Run, which loads) before
// reading from it.
func NewEvaluator(opts EvaluatorOptions) (*Evaluator, error) {
	if opts.Store == nil || opts.History == nil {
		return nil, errors.New("alerting: evaluator needs a store and a history")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.ResendDelay <= 0 {
		opts.ResendDelay = DefaultResendDelay
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Evaluator{opts: opts, log: opts.Logger,
		rules: map[int64]*Rule{}, active: map[int64]map[string]*Alert{}, status: map[int64]RuleStatus{},
		evals: map[int64]uint64{}, failures: map[int64]uint64{},
		cycles: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchyard_alert_evaluation_cycle_seconds",
			Help:    "Time one evaluation of every enabled alert rule took.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		})}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(e.cycles); err != nil {
			return nil, fmt.Errorf("register alerting metrics: %w", err)
		}
		if err := opts.Registerer.Register(evalCollector{e}); err != nil {
			return nil, fmt.Errorf("register alerting metrics: %w", err)
		}
	}
	return e, nil
}

// Interval is the evaluation interval.
func (e *Evaluator) Interval() time.Duration { return e.opts.Interval }

// Load reads the persisted alert state, so that a restart neither re-fires
// an alert (its ActiveAt and FiredAt are kept) nor forgets one.
func (e *Evaluator) Load(ctx context.Context) error {
	alerts, status, err := e.opts.Store.LoadState(ctx)
	if err != nil {
		return fmt.Errorf("load alert state: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, as := range alerts {
		m := make(map[string]*Alert, len(as))
		for i := range as {
			a := as[i]
			m[a.Fingerprint] = &a
		}
		e.active[id] = m
	}
	maps.Copy(e.status, status)
	e.loaded = true
	return nil
}

// Run evaluates every Interval until ctx is done.
func (e *Evaluator) Run(ctx context.Context) error {
	e.mu.RLock()
	loaded := e.loaded
	e.mu.RUnlock()
	if !loaded {
		if err := e.Load(ctx); err != nil {
			return err
		}
	}
	t := time.NewTicker(e.opts.Interval)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		if err := e.Cycle(ctx, e.opts.Now()); err != nil && ctx.Err() == nil {
			e.log.Warn("alert evaluation", "err", err)
		}
		if now := e.opts.Now(); now.Sub(lastPrune) > time.Hour {
			lastPrune = now
			if _, err := e.opts.Store.PruneTransitions(ctx, now.Add(-TransitionRetention), transitionsKept); err != nil && ctx.Err() == nil {
				e.log.Warn("prune alert transitions", "err", err)
			}
			if _, err := e.opts.Store.PruneSilences(ctx, now.Add(-TransitionRetention)); err != nil && ctx.Err() == nil {
				e.log.Warn("prune silences", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Cycle evaluates every enabled rule at t once: reads each distinct series
// selection once (CycleReader), applies the state machine, persists the
// rules whose alerts or status changed in one transaction, and hands the
// firing and lately resolved alerts to the notifier. A rule whose query
// fails keeps its alerts as they were (as Prometheus does) and records the
// error in its status.
func (e *Evaluator) Cycle(ctx context.Context, t time.Time) error {
	e.cycleMu.Lock()
	defer e.cycleMu.Unlock()
	start := time.Now()
	all, err := e.opts.Store.ListRules(ctx)
	if err != nil {
		return err
	}
	sils, err := e.opts.Store.ListSilences(ctx, SilenceFilter{State: "active"})
	if err != nil {
		return err
	}
	silencer := NewSilencer(sils, t)

	rules := make(map[int64]*Rule, len(all))
	var enabled []*Rule
	for i := range all {
		r := &all[i]
		rules[r.ID] = r
		if r.Enabled {
			enabled = append(enabled, r)
		}
	}
	cr := NewCycleReader(e.opts.History)
	planErr := cr.Plan(ctx, enabled, t)

	// Work on copies so that readers never see a half-applied cycle.
	e.mu.RLock()
	active := make(map[int64]map[string]*Alert, len(e.active))
	for id, m := range e.active {
		c := make(map[string]*Alert, len(m))
		for fp, a := range m {
			cp := *a
			c[fp] = &cp
		}
		active[id] = c
	}
	status := maps.Clone(e.status)
	prevRules := e.rules
	e.mu.RUnlock()

	var changes []RuleChange
	var notes []Notification
	evaluated := map[int64]bool{}
	failed := map[int64]bool{}
	for _, r := range enabled {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		evaluated[r.ID] = true
		ruleStart := time.Now()
		m := active[r.ID]
		if m == nil {
			m = map[string]*Alert{}
			active[r.ID] = m
		}
		before := alertDigest(m)
		prev := status[r.ID]
		st := RuleStatus{RuleID: r.ID, LastEval: t, NoDataSince: prev.NoDataSince}
		res, err := Eval(ctx, cr, r, t)
		if err == nil && planErr != nil {
			err = planErr
		}
		var trans []Transition
		if err != nil {
			st.Error = err.Error()
			failed[r.ID] = true
			st.Series, st.NoData = prev.Series, prev.NoData
		} else {
			trans = Apply(r, m, res.Holding, t)
			st.Series = len(res.Values)
			st.NoData = len(res.Values) == 0
			switch {
			case st.NoData && prev.NoDataSince.IsZero():
				st.NoDataSince = t
			case !st.NoData:
				st.NoDataSince = time.Time{}
			}
		}
		for _, a := range m {
			switch a.State {
			case StateFiring:
				st.Firing++
			case StatePending:
				st.Pending++
			}
		}
		st.EvalDuration = time.Since(ruleStart)
		status[r.ID] = st

		ch := RuleChange{RuleID: r.ID, Transitions: trans}
		if len(trans) > 0 || alertDigest(m) != before {
			ch.Alerts = alertList(m)
		}
		if statusChanged(prev, st) {
			s := st
			ch.Status = &s
		}
		if ch.Alerts != nil || ch.Status != nil || len(ch.Transitions) > 0 {
			changes = append(changes, ch)
		}
		if n := e.notification(r, m, silencer, t); len(n.Alerts) > 0 {
			notes = append(notes, n)
		}
	}
	// Rules disabled or deleted since the last cycle: their firing alerts
	// resolve now and are sent once as resolved; then they are gone.
	for id, m := range active {
		if evaluated[id] {
			continue
		}
		r, deleted := rules[id], false
		if r == nil {
			r, deleted = prevRules[id], true // its alerts still resolve as the rule they were
		}
		var gone []Alert
		for _, a := range m {
			if a.State == StateFiring {
				a.State, a.ResolvedAt = StateInactive, t
				gone = append(gone, *a)
			}
		}
		if r != nil && len(gone) > 0 {
			for i := range gone {
				gone[i].Silenced = silencer.Match(gone[i].Labels)
			}
			notes = append(notes, Notification{Rule: r, Alerts: gone})
		}
		delete(active, id)
		if !deleted && len(m) > 0 {
			changes = append(changes, RuleChange{RuleID: id, Alerts: []Alert{}})
		}
		if !deleted && r != nil {
			s := RuleStatus{RuleID: id}
			status[id] = s
		} else {
			delete(status, id)
		}
	}

	saveErr := e.opts.Store.SaveCycle(ctx, changes)
	took := time.Since(start)
	e.mu.Lock()
	e.rules = rules
	e.active = active
	e.status = status
	e.lastTick, e.lastTook = t, took
	for id := range evaluated {
		e.evals[id]++
		if failed[id] {
			e.failures[id]++
		}
	}
	for id := range e.evals {
		if _, ok := rules[id]; !ok {
			delete(e.evals, id)
			delete(e.failures, id)
		}
	}
	e.mu.Unlock()
	e.cycles.Observe(took.Seconds())
	if e.opts.Notifier != nil && len(notes) > 0 {
		e.opts.Notifier.Notify(t, notes)
	}
	if saveErr != nil {
		return fmt.Errorf("save alert state: %w", saveErr)
	}
	return nil
}

// notification is the rule's alerts to hand to the notifiers: firing
// ones with the endsAt they are valid until, and resolved ones still
// retained; silenced ones marked.
func (e *Evaluator) notification(r *Rule, m map[string]*Alert, sil *Silencer, t time.Time) Notification {
	n := Notification{Rule: r}
	for _, a := range m {
		switch {
		case a.State == StateFiring:
			a.ValidUntil = ValidUntil(t, e.opts.ResendDelay, e.opts.Interval)
		case a.State == StateInactive && !a.ResolvedAt.IsZero():
		default:
			continue
		}
		cp := *a
		cp.Silenced = sil.Match(a.Labels)
		n.Alerts = append(n.Alerts, cp)
	}
	slices.SortFunc(n.Alerts, func(a, b Alert) int { return strings.Compare(a.Fingerprint, b.Fingerprint) })
	return n
}

// alertDigest summarizes what of a rule's alerts is worth persisting: the
// states and their times, not the value that changes every cycle.
func alertDigest(m map[string]*Alert) string {
	fps := slices.Sorted(maps.Keys(m))
	b := make([]byte, 0, 64*len(fps))
	for _, fp := range fps {
		a := m[fp]
		b = append(b, fp...)
		b = append(b, a.State...)
		b = strconv.AppendInt(b, a.ActiveAt.UnixNano(), 36)
		b = strconv.AppendInt(b, a.FiredAt.UnixNano(), 36)
		b = strconv.AppendInt(b, a.ResolvedAt.UnixNano(), 36)
		b = strconv.AppendInt(b, a.KeepFiringSince.UnixNano(), 36)
	}
	return string(b)
}

func alertList(m map[string]*Alert) []Alert {
	out := make([]Alert, 0, len(m))
	for _, fp := range slices.Sorted(maps.Keys(m)) {
		a := *m[fp]
		a.Silenced = nil
		out = append(out, a)
	}
	return out
}

// statusChanged: what of a status is worth a write. LastEval and the
// duration change every cycle and live in memory.
func statusChanged(a, b RuleStatus) bool {
	return a.Error != b.Error || a.NoData != b.NoData || a.Firing != b.Firing || a.Pending != b.Pending ||
		!a.NoDataSince.Equal(b.NoDataSince) || (a.Series == 0) != (b.Series == 0)
}

// Snapshot is the evaluator's view at its last cycle.
type Snapshot struct {
	At     time.Time
	Took   time.Duration
	Alerts map[int64][]Alert
	Status map[int64]RuleStatus
}

// Snapshot returns copies of every rule's alerts and status.
func (e *Evaluator) Snapshot() Snapshot {
	e.mu.RLock()
	defer e.mu.RUnlock()
	s := Snapshot{At: e.lastTick, Took: e.lastTook, Alerts: make(map[int64][]Alert, len(e.active)), Status: maps.Clone(e.status)}
	for id, m := range e.active {
		if len(m) > 0 {
			s.Alerts[id] = alertList(m)
		}
	}
	return s
}

// evalCollector serves the per-rule figures on /metrics from the
// evaluator's memory, so a deleted rule's series go with it.
type evalCollector struct{ e *Evaluator }

var (
	descEvals = prometheus.NewDesc("switchyard_alert_rule_evaluations_total",
		"Evaluations of an alert rule since the console started.", []string{"rule_id", "rule"}, nil)
	descFailures = prometheus.NewDesc("switchyard_alert_rule_evaluation_failures_total",
		"Evaluations of an alert rule that failed (its query could not be read).", []string{"rule_id", "rule"}, nil)
	descDuration = prometheus.NewDesc("switchyard_alert_rule_evaluation_duration_seconds",
		"How long the last evaluation of an alert rule took.", []string{"rule_id", "rule"}, nil)
	descLastEval = prometheus.NewDesc("switchyard_alert_rule_last_evaluation_timestamp_seconds",
		"When an alert rule was last evaluated.", []string{"rule_id", "rule"}, nil)
	descAlerts = prometheus.NewDesc("switchyard_alerts",
		"Alerts by state (pending or firing) now.", []string{"state"}, nil)
)

func (c evalCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEvals, descFailures, descDuration, descLastEval, descAlerts} {
		ch <- d
	}
}

func (c evalCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.e
	e.mu.RLock()
	defer e.mu.RUnlock()
	var firing, pending int
	for id, n := range e.evals {
		r := e.rules[id]
		if r == nil {
			continue
		}
		ls := []string{strconv.FormatInt(id, 10), r.Name}
		ch <- prometheus.MustNewConstMetric(descEvals, prometheus.CounterValue, float64(n), ls...)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(e.failures[id]), ls...)
		st := e.status[id]
		ch <- prometheus.MustNewConstMetric(descDuration, prometheus.GaugeValue, st.EvalDuration.Seconds(), ls...)
		if !st.LastEval.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastEval, prometheus.GaugeValue, float64(st.LastEval.UnixMilli())/1000, ls...)
		}
	}
	for _, m := range e.active {
		for _, a := range m {
			switch a.State {
			case StateFiring:
				firing++
			case StatePending:
				pending++
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.GaugeValue, float64(firing), string(StateFiring))
	ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.GaugeValue, float64(pending), string(StatePending))
}
