package alerting

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/tsdb"
)

// Caller is who asks the Service, with what the audit log records of the
// request.
type Caller struct {
	P         *access.Principal
	SourceIP  string
	UserAgent string
}

// History is what the Service reads of the time-series store; *tsdb.Store
// implements it.
type History interface {
	Reader
	Catalog
	LabelValues(ctx context.Context, label string, matchers ...tsdb.Matcher) ([]string, error)
}

// ServiceOptions configure a Service. Store, Evaluator and History are
// required.
type ServiceOptions struct {
	Store     *Store
	Evaluator *Evaluator
	History   History
	Policy    access.Policy
	// Audit records every mutation; nil records none (tests of other
	// things).
	Audit interface {
		Append(ctx context.Context, e access.AuditEvent) error
	}
	// ScopeOptions places the services' series for scope checks (the
	// configured Kafka clusters, the known queues); nil places none.
	ScopeOptions func() collector.ScopeOptions
	// Targets reports the notifiers' health; SyncSilences mirrors silences
	// to Alertmanagers after a change. Both may be nil.
	Targets      func() []TargetStatus
	SyncSilences func([]Silence)
	// RawRetention is the history's raw retention: a preview reaching
	// further back reads 1-minute rollups. Default tsdb.DefaultRawRetention.
	RawRetention time.Duration
	// CoarseAfter and CoarseStep are where the history keeps only coarse
	// rollups (tsdb.Options): a preview reaching further back than
	// CoarseAfter reads CoarseStep rollups over its whole range. Defaults
	// tsdb.DefaultCoarseAfter and tsdb.DefaultCoarseStep.
	CoarseAfter, CoarseStep time.Duration
	Now                     func() time.Time
}

// Service is every rule that protects alerting for a principal — which
// rules and alerts one may see, which rules and silences one may write,
// the audit of every change — over the store, the history and the
// evaluator. Pages, the API and the CLI all go through it.
//
// Visibility is decided by what a rule reads: a rule is visible to whoever
// may view every series its selectors can match (collector.SeriesScope
// .Covers), editable by whoever may manage alerts on all of them; an
// alert is visible to whoever may view the series its own labels pin.
// Those checks need the policy's glob semantics over label matchers, which
// SQL cannot express, so lists are filtered here over the whole (small)
// set of rules and alerts, always before paging.
type Service struct {
	opts ServiceOptions
	now  func() time.Time
}

// Limits of the Service.
const (
	MaxPreviewRange = 14 * 24 * time.Hour
	MaxSilence      = 90 * 24 * time.Hour
	previewSteps    = 720 // steps of a preview chart, at most
)

// NewService returns a Service.
func NewService(opts ServiceOptions) (*Service, error) {
	if opts.Store == nil || opts.Evaluator == nil || opts.History == nil {
		return nil, errors.New("alerting: service needs a store, an evaluator and a history")
	}
	if opts.RawRetention <= 0 {
		opts.RawRetention = tsdb.DefaultRawRetention
	}
	if opts.CoarseAfter <= 0 {
		opts.CoarseAfter = tsdb.DefaultCoarseAfter
	}
	if opts.CoarseStep <= 0 {
		opts.CoarseStep = tsdb.DefaultCoarseStep
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{opts: opts, now: opts.Now}, nil
}

// Interval is the evaluation interval.
func (s *Service) Interval() time.Duration { return s.opts.Evaluator.Interval() }

func (s *Service) scope(c Caller, a access.Action) *collector.SeriesScope {
	var so collector.ScopeOptions
	if s.opts.ScopeOptions != nil {
		so = s.opts.ScopeOptions()
	}
	h := s.opts.History
	so.Values = func(ctx context.Context, metric, label string) ([]string, error) {
		return h.LabelValues(ctx, label, tsdb.Matcher{Label: tsdb.MetricName, Op: tsdb.MatchEqual, Value: metric})
	}
	return collector.NewSeriesScope(s.opts.Policy.Rules(c.P, a), so)
}

// resourceLabels are the labels scopes place series by.
var resourceLabels = []string{"cluster", "topic", "group", "vhost", "queue", "destination", "tenant", "resource", "messaging_system"}

// covers reports whether sc covers every selector of r, each narrowed by
// the extra matchers; why explains a refusal. A metric's label set is
// fixed by the code that records it, so a resource label its stored series
// do not carry is pinned to "" (a group's lag in seconds names no topic).
func (s *Service) covers(ctx context.Context, sc *collector.SeriesScope, r *Rule, extra []tsdb.Matcher) (bool, string, error) {
	if sc.All() {
		return true, "", nil
	}
	for _, sel := range r.Selectors() {
		name := storedMetric(&sel)
		has, err := s.opts.History.LabelNames(ctx, name)
		if err != nil {
			return false, "", err
		}
		ms := append(slices.Clip(sel.Matchers), extra...)
		for _, l := range resourceLabels {
			if !slices.Contains(has, l) {
				ms = append(ms, tsdb.Matcher{Label: l, Op: tsdb.MatchEqual, Value: ""})
			}
		}
		ok, why, err := sc.Covers(ctx, name, ms)
		if err != nil || !ok {
			return false, sel.Metric + ": " + why, err
		}
	}
	return true, "", nil
}

// alertMatchers pins an alert's series: its labels that the rule's series
// carry (not the rule's own labels, alertname or severity).
func alertMatchers(r *Rule, labels map[string]string) []tsdb.Matcher {
	var out []tsdb.Matcher
	for k, v := range labels {
		if k == "alertname" || k == "severity" {
			continue
		}
		if _, own := r.Labels[k]; own {
			continue
		}
		out = append(out, tsdb.Matcher{Label: k, Op: tsdb.MatchEqual, Value: v})
	}
	slices.SortFunc(out, func(a, b tsdb.Matcher) int { return strings.Compare(a.Label, b.Label) })
	return out
}

func (s *Service) event(c Caller, action, outcome string) access.AuditEvent {
	ev := access.AuditEvent{Time: s.now(), SourceIP: c.SourceIP, UserAgent: c.UserAgent,
		Action: action, Resource: access.ConsoleAlerts, Outcome: outcome}
	if c.P != nil {
		ev.Actor, ev.Method = c.P.User, c.P.Method
	}
	return ev
}

// audit records a mutation with the outcome err says; an audit failure
// fails a mutation that otherwise succeeded.
func (s *Service) audit(ctx context.Context, c Caller, action string, err error, ids []string, details map[string]any) error {
	if s.opts.Audit == nil {
		return err
	}
	outcome := access.OutcomeSuccess
	switch delivery.ErrorCode(err) {
	case "":
	case delivery.EFORBIDDEN:
		outcome = access.OutcomeDenied
	default:
		outcome = access.OutcomeFailure
	}
	ev := s.event(c, action, outcome)
	ev.AffectedIDs = ids
	ev.Details = details
	if err != nil {
		if ev.Details == nil {
			ev.Details = map[string]any{}
		}
		ev.Details["error"] = delivery.ErrorMessage(err)
	}
	if aerr := s.opts.Audit.Append(ctx, ev); aerr != nil && err == nil {
		return fmt.Errorf("audit %s: %w", action, aerr)
	}
	return err
}

func ruleDetails(r Rule) map[string]any {
	return map[string]any{"name": r.Name, "version": r.Version, "expr": PromQL(&r), "enabled": r.Enabled}
}

// view builds the RuleView of r from the evaluator's snapshot.
func (s *Service) view(ctx context.Context, c Caller, r Rule, snap Snapshot, manage *collector.SeriesScope) (RuleView, error) {
	v := RuleView{Rule: r, Status: snap.Status[r.ID], State: "ok"}
	switch {
	case !r.Enabled:
		v.State = "disabled"
	case v.Status.Firing > 0:
		v.State = string(StateFiring)
	case v.Status.Pending > 0:
		v.State = string(StatePending)
	case v.Status.Error != "":
		v.State = "error"
	case v.Status.NoData && !v.Status.LastEval.IsZero():
		v.State = "nodata"
	}
	ok, _, err := s.covers(ctx, manage, &r, nil)
	v.CanEdit = ok
	return v, err
}

// visibleRules returns the rules the caller may view, with their views.
func (s *Service) visibleRules(ctx context.Context, c Caller) ([]RuleView, error) {
	rules, err := s.opts.Store.ListRules(ctx)
	if err != nil {
		return nil, err
	}
	view, manage := s.scope(c, access.ActionView), s.scope(c, access.ActionManageAlerts)
	snap := s.opts.Evaluator.Snapshot()
	out := make([]RuleView, 0, len(rules))
	for _, r := range rules {
		ok, _, err := s.covers(ctx, view, &r, nil)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		v, err := s.view(ctx, c, r, snap, manage)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// ListRules lists the rules the caller may see, filtered, sorted and paged.
func (s *Service) ListRules(ctx context.Context, c Caller, f RuleFilter) (RulePage, error) {
	if err := f.check(); err != nil {
		return RulePage{}, err
	}
	all, err := s.visibleRules(ctx, c)
	if err != nil {
		return RulePage{}, err
	}
	q := strings.ToLower(strings.TrimSpace(f.Q))
	rows := all[:0]
	for _, v := range all {
		if (f.State == "" || v.State == f.State) && (f.Severity == "" || v.Severity == f.Severity) &&
			(q == "" || strings.Contains(strings.ToLower(v.Name), q)) {
			rows = append(rows, v)
		}
	}
	rank := map[string]int{"firing": 0, "pending": 1, "error": 2, "nodata": 3, "ok": 4, "disabled": 5}
	slices.SortStableFunc(rows, func(a, b RuleView) int {
		byName := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
		switch f.Sort {
		case "-name":
			return -byName
		case "state":
			if d := rank[a.State] - rank[b.State]; d != 0 {
				return d
			}
		case "updated":
			if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
				return c
			}
		case "-updated":
			if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
				return c
			}
		}
		return byName
	})
	return RulePage{Rules: page(rows, f.Offset, f.Limit, 50), Total: len(rows)}, nil
}

func (f *RuleFilter) check() error {
	fe := FieldErrors{}
	switch f.State {
	case "", "firing", "pending", "ok", "disabled", "error", "nodata":
	default:
		fe.Add("state", "want firing, pending, ok, disabled, error or nodata")
	}
	checkSeverity(f.Severity, fe)
	switch f.Sort {
	case "", "name", "-name", "state", "updated", "-updated":
	default:
		fe.Add("sort", "want name, -name, state, updated or -updated")
	}
	checkPage(f.Limit, f.Offset, 500, fe)
	return fe.Err("rule filter")
}

func checkSeverity(sev string, fe FieldErrors) {
	switch sev {
	case "", SeverityCritical, SeverityWarning, SeverityInfo:
	default:
		fe.Add("severity", "want critical, warning or info")
	}
}

func checkPage(limit, offset, max int, fe FieldErrors) {
	if limit < 0 || limit > max {
		fe.Add("limit", "want 1 to %d", max)
	}
	if offset < 0 {
		fe.Add("offset", "must not be negative")
	}
}

func page[T any](rows []T, offset, limit, def int) []T {
	if limit == 0 {
		limit = def
	}
	if offset >= len(rows) {
		return []T{}
	}
	return rows[offset:min(len(rows), offset+limit)]
}

// GetRule returns one rule with its status. ENOTFOUND when it does not
// exist or the caller may not see it.
func (s *Service) GetRule(ctx context.Context, c Caller, id int64) (RuleView, error) {
	r, err := s.opts.Store.GetRule(ctx, id)
	if err != nil {
		return RuleView{}, err
	}
	ok, _, err := s.covers(ctx, s.scope(c, access.ActionView), &r, nil)
	if err != nil {
		return RuleView{}, err
	}
	if !ok {
		return RuleView{}, notFound(id)
	}
	return s.view(ctx, c, r, s.opts.Evaluator.Snapshot(), s.scope(c, access.ActionManageAlerts))
}

func notFound(id int64) error { return delivery.Errorf(delivery.ENOTFOUND, "no alert rule %d", id) }

// checkWrite validates r and checks the caller may manage alerts on all it
// reads.
func (s *Service) checkWrite(ctx context.Context, c Caller, r *Rule) error {
	if err := Validate(ctx, r, s.opts.History); err != nil {
		return err
	}
	ok, why, err := s.covers(ctx, s.scope(c, access.ActionManageAlerts), r, nil)
	if err != nil {
		return err
	}
	if !ok {
		return delivery.Errorf(delivery.EFORBIDDEN, "you may not manage alerts on everything this rule reads: %s", why)
	}
	return nil
}

// CreateRule validates and stores a rule. EINVALID with
// Details["fields"] (map[string]string: field → reason) for a bad rule;
// EFORBIDDEN when the caller may not manage alerts on everything the rule
// reads; ECONFLICT for a duplicate name.
func (s *Service) CreateRule(ctx context.Context, c Caller, r Rule) (Rule, error) {
	r.ID, r.Version = 0, 0
	err := s.checkWrite(ctx, c, &r)
	var out Rule
	if err == nil {
		r.CreatedBy, r.UpdatedBy = c.user(), c.user()
		out, err = s.opts.Store.CreateRule(ctx, r)
	}
	var ids []string
	if out.ID != 0 {
		ids = []string{strconv.FormatInt(out.ID, 10)}
	}
	return out, s.audit(ctx, c, "alert.rule.create", err, ids, ruleDetails(r))
}

func (c Caller) user() string {
	if c.P == nil {
		return ""
	}
	return c.P.User
}

// editable loads rule id and checks the caller may change it: ENOTFOUND
// when the caller may not even see it, EFORBIDDEN when she may see but
// not manage it.
func (s *Service) editable(ctx context.Context, c Caller, id int64) (Rule, error) {
	old, err := s.opts.Store.GetRule(ctx, id)
	if err != nil {
		return Rule{}, err
	}
	if ok, _, err := s.covers(ctx, s.scope(c, access.ActionView), &old, nil); err != nil || !ok {
		if err == nil {
			err = notFound(id)
		}
		return Rule{}, err
	}
	ok, why, err := s.covers(ctx, s.scope(c, access.ActionManageAlerts), &old, nil)
	if err != nil {
		return Rule{}, err
	}
	if !ok {
		return Rule{}, delivery.Errorf(delivery.EFORBIDDEN, "you may not manage alerts on everything rule %d reads: %s", id, why)
	}
	return old, nil
}

// UpdateRule replaces a rule; r.ID and r.Version name what it changes.
// Errors as CreateRule, plus ENOTFOUND, and ECONFLICT when the rule
// changed since r.Version.
func (s *Service) UpdateRule(ctx context.Context, c Caller, r Rule) (Rule, error) {
	old, err := s.editable(ctx, c, r.ID)
	var out Rule
	if err == nil {
		err = s.checkWrite(ctx, c, &r)
	}
	if err == nil {
		r.UpdatedBy, r.CreatedBy = c.user(), old.CreatedBy
		out, err = s.opts.Store.UpdateRule(ctx, r)
	}
	d := ruleDetails(r)
	d["version"] = out.Version
	return out, s.audit(ctx, c, "alert.rule.update", err, []string{strconv.FormatInt(r.ID, 10)}, d)
}

// SetEnabled enables or disables a rule. ENOTFOUND, EFORBIDDEN, ECONFLICT.
func (s *Service) SetEnabled(ctx context.Context, c Caller, id, version int64, enabled bool) (Rule, error) {
	r, err := s.editable(ctx, c, id)
	var out Rule
	if err == nil {
		r.Enabled, r.Version, r.UpdatedBy = enabled, version, c.user()
		out, err = s.opts.Store.UpdateRule(ctx, r)
	}
	action := "alert.rule.disable"
	if enabled {
		action = "alert.rule.enable"
	}
	return out, s.audit(ctx, c, action, err, []string{strconv.FormatInt(id, 10)}, map[string]any{"name": r.Name, "version": out.Version})
}

// DeleteRule deletes a rule, its alerts and history. ENOTFOUND,
// EFORBIDDEN. Its firing alerts are sent as resolved at the next
// evaluation.
func (s *Service) DeleteRule(ctx context.Context, c Caller, id int64) error {
	r, err := s.editable(ctx, c, id)
	if err == nil {
		_, err = s.opts.Store.DeleteRule(ctx, id)
	}
	return s.audit(ctx, c, "alert.rule.delete", err, []string{strconv.FormatInt(id, 10)}, map[string]any{"name": r.Name})
}

// scopedReader narrows every read to what a scope may view, in the store's
// query (SeriesScope.Restrict).
type scopedReader struct {
	rd    Reader
	scope *collector.SeriesScope
}

func (r scopedReader) Select(ctx context.Context, q tsdb.SelectQ) ([]tsdb.Series, error) {
	bq, err := r.scope.Restrict(ctx, tsdb.Q{Name: q.Name, Matchers: q.Matchers, Or: q.Or})
	if err != nil {
		return nil, err
	}
	q.Or = bq.Or
	return r.rd.Select(ctx, q)
}

// PreviewStep is the step of a preview of a range: the evaluation interval
// for short ranges, coarser (a whole number of minutes) so that a range
// has at most previewSteps steps.
func PreviewStep(rng, interval time.Duration) time.Duration {
	step := interval
	if n := rng / previewSteps; n > step {
		step = (n + time.Minute - 1).Truncate(time.Minute)
	}
	return step
}

// Preview evaluates a draft rule (validated as CreateRule does; the scope
// that counts is view, and only what the caller may view is read) over
// [from, to] of stored history, at most MaxPreviewRange. Ranges reaching
// beyond raw retention read 1-minute rollups, and ranges reaching beyond
// CoarseAfter (48 h) read 5-minute rollups throughout, since that is all
// the history keeps of their start (EvalRange widens the windows shorter
// than two of them).
func (s *Service) Preview(ctx context.Context, c Caller, r Rule, from, to time.Time) (Preview, error) {
	now := s.now()
	fe := FieldErrors{}
	switch {
	case to.IsZero() || to.After(now):
		to = now
	}
	if from.IsZero() {
		from = to.Add(-24 * time.Hour)
	}
	switch {
	case !from.Before(to):
		fe.Add("from", "must be before to")
	case to.Sub(from) > MaxPreviewRange:
		fe.Add("from", "a preview covers at most 14 days")
	}
	if err := fe.Err("preview"); err != nil {
		return Preview{}, err
	}
	if err := Validate(ctx, &r, s.opts.History); err != nil {
		return Preview{}, err
	}
	step := PreviewStep(to.Sub(from), s.Interval())
	var res time.Duration
	// Raw samples while the range is within raw retention (a step of
	// slack: "the last 24h" asked a moment ago); 1-minute rollups beyond.
	if now.Sub(from) > s.opts.RawRetention+step {
		res = time.Minute
		if now.Sub(from) > s.opts.CoarseAfter+step {
			res = s.opts.CoarseStep
		}
		if step < res {
			step = res
		}
	}
	from = from.Truncate(step)
	rd := scopedReader{rd: s.opts.History, scope: s.scope(c, access.ActionView)}
	rr, err := EvalRange(ctx, rd, &r, from, to, step, res)
	if err != nil {
		return Preview{}, err
	}
	p := Preview{From: from, To: to, Step: step, Op: r.Op, Threshold: r.Threshold, NoData: len(rr.Series) == 0}
	p.Intervals, p.Notifications, p.Fired = Simulate(&r, rr)
	for i, ser := range rr.Series {
		if i == PreviewMaxSeries {
			p.Truncated = true
			break
		}
		ps := PreviewSeries{Labels: ser.Labels.Map()}
		delete(ps.Labels, tsdb.MetricName)
		for j, v := range ser.Values {
			if !math.IsNaN(v) {
				ps.Points = append(ps.Points, tsdb.Point{T: rr.Steps[j], V: v})
			}
		}
		p.Series = append(p.Series, ps)
	}
	return p, nil
}

// Transitions pages a visible rule's state changes, newest first.
func (s *Service) Transitions(ctx context.Context, c Caller, ruleID, before int64, limit int) ([]Transition, int64, error) {
	if _, err := s.GetRule(ctx, c, ruleID); err != nil {
		return nil, 0, err
	}
	return s.opts.Store.Transitions(ctx, ruleID, before, limit)
}

// visibleAlerts returns every alert the caller may see, with views.
func (s *Service) visibleAlerts(ctx context.Context, c Caller) ([]AlertView, error) {
	rules, err := s.opts.Store.ListRules(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]*Rule, len(rules))
	for i := range rules {
		byID[rules[i].ID] = &rules[i]
	}
	snap := s.opts.Evaluator.Snapshot()
	sils, err := s.opts.Store.ListSilences(ctx, SilenceFilter{State: "active"})
	if err != nil {
		return nil, err
	}
	silencer := NewSilencer(sils, s.now())
	view := s.scope(c, access.ActionView)
	var out []AlertView
	for id, as := range snap.Alerts {
		r := byID[id]
		if r == nil {
			continue
		}
		for _, a := range as {
			if a.State != StatePending && a.State != StateFiring {
				continue
			}
			ok, _, err := s.covers(ctx, view, r, alertMatchers(r, a.Labels))
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			a.Silenced = silencer.Match(a.Labels)
			out = append(out, AlertView{Alert: a, RuleName: r.Name, Severity: r.Severity, Links: Links(r.ID, a.Labels)})
		}
	}
	return out, nil
}

var severityRank = map[string]int{SeverityCritical: 0, SeverityWarning: 1, SeverityInfo: 2}

// Alerts lists the pending, firing and silenced alerts the caller may see,
// filtered before paging, with the counts over all visible ones.
func (s *Service) Alerts(ctx context.Context, c Caller, f AlertFilter) (AlertPage, error) {
	fe := FieldErrors{}
	switch f.State {
	case "", "firing", "pending", "silenced":
	default:
		fe.Add("state", "want firing, pending or silenced")
	}
	checkSeverity(f.Severity, fe)
	switch f.Sort {
	case "", "-active", "active", "severity", "rule":
	default:
		fe.Add("sort", "want -active, active, severity or rule")
	}
	checkPage(f.Limit, f.Offset, 1000, fe)
	if err := fe.Err("alert filter"); err != nil {
		return AlertPage{}, err
	}
	all, err := s.visibleAlerts(ctx, c)
	if err != nil {
		return AlertPage{}, err
	}
	var p AlertPage
	q := strings.ToLower(strings.TrimSpace(f.Q))
	rows := []AlertView{}
	for _, a := range all {
		silenced := len(a.Silenced) > 0
		switch {
		case silenced:
			p.Counts.Silenced++
		case a.State == StateFiring:
			p.Counts.Firing++
		default:
			p.Counts.Pending++
		}
		switch f.State {
		case "silenced":
			if !silenced {
				continue
			}
		case "firing", "pending":
			if silenced || string(a.State) != f.State {
				continue
			}
		}
		if (f.RuleID != 0 && a.RuleID != f.RuleID) || (f.Severity != "" && a.Severity != f.Severity) || !labelsContain(a.Labels, q) {
			continue
		}
		rows = append(rows, a)
	}
	slices.SortStableFunc(rows, func(a, b AlertView) int {
		switch f.Sort {
		case "active":
			if c := a.ActiveAt.Compare(b.ActiveAt); c != 0 {
				return c
			}
		case "severity":
			if d := severityRank[a.Severity] - severityRank[b.Severity]; d != 0 {
				return d
			}
		case "rule":
			if c := strings.Compare(a.RuleName, b.RuleName); c != 0 {
				return c
			}
		}
		if c := b.ActiveAt.Compare(a.ActiveAt); c != 0 {
			return c
		}
		return strings.Compare(a.Fingerprint, b.Fingerprint)
	})
	p.Total = len(rows)
	p.Alerts = page(rows, f.Offset, f.Limit, 100)
	return p, nil
}

func labelsContain(ls map[string]string, q string) bool {
	if q == "" {
		return true
	}
	for _, v := range ls {
		if strings.Contains(strings.ToLower(v), q) {
			return true
		}
	}
	return false
}

// Firing is the overview's head: the visible firing alerts that are not
// silenced, most severe and newest first, at most limit.
func (s *Service) Firing(ctx context.Context, c Caller, limit int) ([]AlertView, int, error) {
	p, err := s.Alerts(ctx, c, AlertFilter{State: "firing", Sort: "severity", Limit: max(1, min(limit, 1000))})
	if err != nil {
		return nil, 0, err
	}
	return p.Alerts, p.Total, nil
}

// Silences lists silences. Every caller who may view alerts sees them:
// they hold matchers and comments, not data.
func (s *Service) Silences(ctx context.Context, c Caller, f SilenceFilter) ([]Silence, error) {
	switch f.State {
	case "", "active", "pending", "expired":
	default:
		return nil, FieldErrors{"state": "want active, pending or expired"}.Err("silence filter")
	}
	return s.opts.Store.ListSilences(ctx, f)
}

// checkSilenceScope: a caller who may manage every alert may silence
// anything; anyone else names the rule (alertname="…") and may silence
// only alerts whose series her manage scope covers, pinned by the
// silence's equality matchers.
func (s *Service) checkSilenceScope(ctx context.Context, c Caller, sil *Silence) error {
	manage := s.scope(c, access.ActionManageAlerts)
	if manage.All() {
		return nil
	}
	var name string
	var extra []tsdb.Matcher
	for _, m := range sil.Matchers {
		switch {
		case m.Label == "alertname" && m.Op == tsdb.MatchEqual:
			name = m.Value
		case m.Op == tsdb.MatchEqual && m.Label != "severity":
			extra = append(extra, m)
		}
	}
	if name == "" {
		return delivery.Errorf(delivery.EFORBIDDEN, "name the rule to silence with alertname=\"…\": you may manage only some alerts")
	}
	rules, err := s.opts.Store.ListRules(ctx)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if r.Name != name {
			continue
		}
		ok, why, err := s.covers(ctx, manage, &r, extra)
		if err != nil {
			return err
		}
		if !ok {
			return delivery.Errorf(delivery.EFORBIDDEN, "this silence could mute alerts you may not manage: %s", why)
		}
		return nil
	}
	return delivery.Errorf(delivery.EFORBIDDEN, "no rule named %q that you may manage", name)
}

// CreateSilence stores a silence. EINVALID (matchers, comment required,
// ends after it starts and in the future, at most 90 days), EFORBIDDEN
// when its matchers reach beyond what the caller may manage.
func (s *Service) CreateSilence(ctx context.Context, c Caller, sil Silence) (Silence, error) {
	now := s.now()
	fe := FieldErrors{}
	if err := CheckMatchers(sil.Matchers); err != nil {
		fe.Add("matchers", "%s", delivery.ErrorMessage(err))
	}
	sil.Comment = strings.TrimSpace(sil.Comment)
	if sil.Comment == "" {
		fe.Add("comment", "required: say why, so the next person knows")
	} else if len(sil.Comment) > 1000 {
		fe.Add("comment", "at most 1,000 characters")
	}
	if sil.StartsAt.IsZero() || sil.StartsAt.Before(now) {
		sil.StartsAt = now
	}
	switch {
	case !sil.EndsAt.After(sil.StartsAt):
		fe.Add("ends_at", "must be after the start")
	case sil.EndsAt.Sub(sil.StartsAt) > MaxSilence:
		fe.Add("ends_at", "a silence lasts at most 90 days")
	}
	err := fe.Err("silence")
	if err == nil {
		err = s.checkSilenceScope(ctx, c, &sil)
	}
	var out Silence
	if err == nil {
		sil.ID, sil.CreatedBy, sil.ExpiredBy = 0, c.user(), ""
		out, err = s.opts.Store.CreateSilence(ctx, sil)
	}
	var ids []string
	if out.ID != 0 {
		ids = []string{strconv.FormatInt(out.ID, 10)}
	}
	err = s.audit(ctx, c, "alert.silence.create", err, ids, silenceDetails(sil))
	if err == nil {
		s.syncSilences(ctx)
	}
	return out, err
}

func silenceDetails(sil Silence) map[string]any {
	ms := make([]string, len(sil.Matchers))
	for i, m := range sil.Matchers {
		ms[i] = m.String()
	}
	return map[string]any{"matchers": ms, "comment": sil.Comment, "ends_at": sil.EndsAt.UTC().Format(time.RFC3339)}
}

func (s *Service) syncSilences(ctx context.Context) {
	if s.opts.SyncSilences == nil {
		return
	}
	active, err := s.opts.Store.ListSilences(ctx, SilenceFilter{})
	if err != nil {
		return // the evaluator's next sync catches up
	}
	s.opts.SyncSilences(active)
}

// ExpireSilence ends a silence now. ENOTFOUND, EFORBIDDEN (someone else's
// silence that reaches beyond what the caller may manage), ECONFLICT
// (already expired).
func (s *Service) ExpireSilence(ctx context.Context, c Caller, id int64) (Silence, error) {
	sil, err := s.opts.Store.GetSilence(ctx, id)
	if err == nil && sil.CreatedBy != c.user() {
		err = s.checkSilenceScope(ctx, c, &sil)
	}
	var out Silence
	if err == nil {
		out, err = s.opts.Store.ExpireSilence(ctx, id, c.user())
	}
	err = s.audit(ctx, c, "alert.silence.expire", err, []string{strconv.FormatInt(id, 10)}, silenceDetails(sil))
	if err == nil {
		s.syncSilences(ctx)
	}
	return out, err
}

// Template returns a draft rule of kind for the labels given (the thing on
// the page where it is offered). EINVALID for an unknown kind or a missing
// label. The draft is not stored.
func (s *Service) Template(ctx context.Context, c Caller, kind string, labels map[string]string) (Rule, error) {
	return NewTemplate(kind, labels)
}

// Targets is the notification targets' health.
func (s *Service) Targets() []TargetStatus {
	if s.opts.Targets == nil {
		return nil
	}
	return s.opts.Targets()
}

// Metrics lists the metric names the history holds, for the rule form.
func (s *Service) Metrics(ctx context.Context) ([]string, error) {
	return s.opts.History.LabelValues(ctx, tsdb.MetricName)
}

// Labels lists the label names of a metric in the history, for the form.
func (s *Service) Labels(ctx context.Context, metric string) ([]string, error) {
	return s.opts.History.LabelNames(ctx, metric)
}

// Status is the evaluator's last cycle: when, and how long it took.
func (s *Service) Status() (at time.Time, took time.Duration) {
	snap := s.opts.Evaluator.Snapshot()
	return snap.At, snap.Took
}

// Validate checks a rule as CreateRule does, but for the caller's scope.
func (s *Service) Validate(ctx context.Context, r Rule) error {
	return Validate(ctx, &r, s.opts.History)
}
