package web

import (
	"context"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/delivery"
	"switchyard/web/templates"
)

// The alerting area: the Alerts page (/alerts), rules (alert_rules.go),
// silences (alert_silences.go), their JSON API (alerts_api.go), the
// overview's firing head and the "Alert on this" links of other pages.
// Reads ask for view on "*" and writes for manage_alerts on "*" ("has it
// somewhere"); which rules, alerts and silences a caller may see or write
// is the alerting service's rule (the series a rule reads against the
// caller's scope), so these handlers parse, make the call and render.

// AlertService is what the alerting pages, API and CLI need of the
// alerting service; every call applies the caller's rules.
// *alerting.Service implements it.
type AlertService interface {
	// ListRules pages the rules the caller may see. Errors: EINVALID.
	ListRules(ctx context.Context, c alerting.Caller, f alerting.RuleFilter) (alerting.RulePage, error)
	// GetRule is one rule with its status. Errors: ENOTFOUND (also when
	// out of the caller's reach).
	GetRule(ctx context.Context, c alerting.Caller, id int64) (alerting.RuleView, error)
	// CreateRule errors: EINVALID (Details["fields"]), EFORBIDDEN,
	// ECONFLICT (duplicate name).
	CreateRule(ctx context.Context, c alerting.Caller, r alerting.Rule) (alerting.Rule, error)
	// UpdateRule errors: as CreateRule, ENOTFOUND, ECONFLICT (stale
	// version).
	UpdateRule(ctx context.Context, c alerting.Caller, r alerting.Rule) (alerting.Rule, error)
	// SetEnabled errors: ENOTFOUND, EFORBIDDEN, ECONFLICT.
	SetEnabled(ctx context.Context, c alerting.Caller, id, version int64, enabled bool) (alerting.Rule, error)
	// DeleteRule errors: ENOTFOUND, EFORBIDDEN.
	DeleteRule(ctx context.Context, c alerting.Caller, id int64) error
	// Preview evaluates a draft over history. Errors: EINVALID
	// (Details["fields"]), EFORBIDDEN.
	Preview(ctx context.Context, c alerting.Caller, r alerting.Rule, from, to time.Time) (alerting.Preview, error)
	// Transitions pages a rule's state changes, newest first. Errors:
	// ENOTFOUND.
	Transitions(ctx context.Context, c alerting.Caller, ruleID, before int64, limit int) ([]alerting.Transition, int64, error)
	// Alerts pages the alerts the caller may see. Errors: EINVALID.
	Alerts(ctx context.Context, c alerting.Caller, f alerting.AlertFilter) (alerting.AlertPage, error)
	// Silences lists silences by state. Errors: EINVALID.
	Silences(ctx context.Context, c alerting.Caller, f alerting.SilenceFilter) ([]alerting.Silence, error)
	// CreateSilence errors: EINVALID, EFORBIDDEN.
	CreateSilence(ctx context.Context, c alerting.Caller, s alerting.Silence) (alerting.Silence, error)
	// ExpireSilence errors: ENOTFOUND, EFORBIDDEN, ECONFLICT.
	ExpireSilence(ctx context.Context, c alerting.Caller, id int64) (alerting.Silence, error)
	// Template is a draft rule of a one-click kind. Errors: EINVALID.
	Template(ctx context.Context, c alerting.Caller, kind string, labels map[string]string) (alerting.Rule, error)
	// Targets is the notification targets' health.
	Targets() []alerting.TargetStatus
	// Metrics lists the metric names rules may read.
	Metrics(ctx context.Context) ([]string, error)
	// Firing is the caller's firing alerts (not silenced), most severe and
	// newest first, at most limit, and how many fire in all.
	Firing(ctx context.Context, c alerting.Caller, limit int) ([]alerting.AlertView, int, error)
	// Interval is how often rules are evaluated.
	Interval() time.Duration
	// ExportRules is the rules the caller may see that match f, as a
	// Prometheus rule file, with the rules it cannot express and why.
	ExportRules(ctx context.Context, c alerting.Caller, f alerting.ExportFilter) (alerting.RuleExport, error)
}

var _ AlertService = (*alerting.Service)(nil)

// alertService is the service, or ENOTFOUND when alerting is off (the
// API's answer; pages say so instead).
func (s *Server) alertService() (AlertService, error) {
	if s.alerts == nil {
		return nil, delivery.Errorf(delivery.ENOTFOUND, "alerting is not configured")
	}
	return s.alerts, nil
}

// alertCaller is who asks, for the alerting service's rules and audit.
func alertCaller(c *fiber.Ctx) alerting.Caller {
	return alerting.Caller{P: principal(c), SourceIP: c.Context().RemoteIP().String(),
		UserAgent: strings.Clone(c.Get(fiber.HeaderUserAgent))}
}

// mayManageAlerts reports whether the pages offer rule and silence forms
// and "Alert on this" links: alerting is on and the principal has
// manage_alerts somewhere (the service checks the exact scope on save).
func (s *Server) mayManageAlerts(c *fiber.Ctx) bool {
	return s.alerts != nil && s.policy.Can(principal(c), access.ActionManageAlerts, access.Res("*"))
}

// alertOn is one "Alert on this" link for a template kind and the labels
// of the thing it is offered on (name, value pairs), or nil when the
// principal may not manage alerts.
func (s *Server) alertOn(c *fiber.Ctx, label, kind string, nameValues ...string) []templates.AlertOn {
	if !s.mayManageAlerts(c) {
		return nil
	}
	return []templates.AlertOn{{Label: label, Href: templateHref(kind, nameValues...)}}
}

// templateHref is the rule form pre-filled from a template.
func templateHref(kind string, nameValues ...string) string {
	q := url.Values{"template": {kind}}
	for i := 0; i+1 < len(nameValues); i += 2 {
		q.Set(nameValues[i], nameValues[i+1])
	}
	return "/alerts/rules/new?" + q.Encode()
}

// ruleHref is a rule's page.
func ruleHref(id int64) string { return alerting.RuleURL(id) }

// alertSeverities are the severities, most severe first.
var alertSeverities = []string{alerting.SeverityCritical, alerting.SeverityWarning, alerting.SeverityInfo}

// severityClass is the badge of a severity.
func severityClass(s string) string {
	switch s {
	case alerting.SeverityCritical:
		return "badge bad"
	case alerting.SeverityWarning:
		return "badge warn"
	}
	return "badge"
}

// stateClass is the badge of an alert's state or a rule's (RuleView.State:
// firing, pending, ok, disabled, error, nodata).
func stateClass(s string) string {
	switch s {
	case string(alerting.StateFiring), "error":
		return "badge bad"
	case string(alerting.StatePending), "nodata":
		return "badge warn"
	case "ok", string(alerting.StateInactive):
		return "badge ok"
	}
	return "badge"
}

// alertsPerPage is the page size of the Alerts page.
const alertsPerPage = 50

// alertSorts are the Alerts page's orders: label and AlertFilter.Sort.
var alertSorts = []struct{ label, key string }{
	{"newest", "-active"}, {"oldest", "active"}, {"severity", "severity"}, {"rule", "rule"},
}

// alertStates are the Alerts page's tabs.
var alertStates = []struct{ key, label string }{
	{"", "All"}, {"firing", "Firing"}, {"pending", "Pending"}, {"silenced", "Silenced"},
}

// pageNumber reads ?page= (1-based). Errors: EINVALID.
func pageNumber(c *fiber.Ctx) (int, error) {
	p := strings.TrimSpace(c.Query("page"))
	if p == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 100_000 {
		return 0, delivery.Errorf(delivery.EINVALID, "page must be a positive number")
	}
	return n, nil
}

// handleAlerts is the Alerts page: counts, tabs by state, the filtered
// and sorted table, and the notification targets' health.
func (s *Server) handleAlerts(c *fiber.Ctx) error {
	page := templates.Page{Title: "Alerts", Area: templates.AreaAlerts, Refresh: true}
	vm := templates.Alerts{CanManage: s.mayManageAlerts(c), Severities: alertSeverities}
	if s.alerts == nil {
		return s.render(c, page, templates.AlertsView(vm))
	}
	vm.Enabled, vm.Interval = true, templates.Seconds(s.alerts.Interval().Seconds())
	q := queryOf(c)
	f := alerting.AlertFilter{
		State: strings.TrimSpace(q.Get("state")), Severity: strings.TrimSpace(q.Get("severity")),
		Q: strings.TrimSpace(q.Get("q")), Sort: strings.TrimSpace(q.Get("sort")), Limit: alertsPerPage,
	}
	// The service refuses a state, severity or sort it does not know.
	if len(f.Q) > 200 {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "the filter is too long (200 characters at most)"))
	}
	n, err := pageNumber(c)
	if err != nil {
		return s.fail(c, err)
	}
	f.Offset = (n - 1) * alertsPerPage
	vm.State, vm.Severity, vm.Q, vm.Sort = f.State, f.Severity, f.Q, f.Sort
	vm.Filtered = f.Severity != "" || f.Q != ""
	caller := alertCaller(c)
	ctx := c.UserContext()
	res, err := s.alerts.Alerts(ctx, caller, f)
	if err != nil {
		return s.fail(c, err)
	}
	vm.Firing, vm.Pending, vm.Silenced = res.Counts.Firing, res.Counts.Pending, res.Counts.Silenced
	keep := url.Values{}
	for _, k := range []string{"severity", "q", "sort"} {
		if v := q.Get(k); v != "" {
			keep.Set(k, v)
		}
	}
	for _, st := range alertStates {
		t := templates.Tab{Key: cmpOr(st.key, "all"), Label: st.label, Current: st.key == f.State}
		tq := cloneValues(keep)
		if st.key != "" {
			tq.Set("state", st.key)
		}
		t.Href = withQuery("/alerts", tq)
		switch st.key {
		case "firing":
			t.Count = strconv.Itoa(res.Counts.Firing)
		case "pending":
			t.Count = strconv.Itoa(res.Counts.Pending)
		case "silenced":
			t.Count = strconv.Itoa(res.Counts.Silenced)
		}
		vm.Tabs = append(vm.Tabs, t)
	}
	base := cloneValues(keep)
	if f.State != "" {
		base.Set("state", f.State)
	}
	for _, so := range alertSorts {
		sq := cloneValues(base)
		sq.Set("sort", so.key)
		vm.Sorts = append(vm.Sorts, templates.SortLink{Label: so.label, Href: withQuery("/alerts", sq), Current: cmpOr(f.Sort, "-active") == so.key})
	}
	now := s.now()
	for i := range res.Alerts {
		vm.Rows = append(vm.Rows, alertRowOf(&res.Alerts[i], now, vm.CanManage))
	}
	vm.Paging = pagingOf("/alerts", base, n, alertsPerPage, len(res.Alerts), res.Total)
	if len(vm.Rows) == 0 && !vm.Filtered && f.State == "" {
		rules, err := s.alerts.ListRules(ctx, caller, alerting.RuleFilter{Limit: 1})
		if err != nil {
			return s.fail(c, err)
		}
		vm.Rules = rules.Total
	}
	vm.Targets = targetRowsOf(s.alerts.Targets(), now)
	return s.render(c, page, templates.AlertsView(vm))
}

// pagingOf is the pager of a list shown page n at per rows a page, with
// shown rows on this page of total; links keep q.
func pagingOf(path string, q url.Values, n, per, shown, total int) templates.Paging {
	p := templates.Paging{Total: total}
	if shown > 0 {
		p.First, p.Last = (n-1)*per+1, (n-1)*per+shown
	}
	link := func(page int) string {
		lq := cloneValues(q)
		if page > 1 {
			lq.Set("page", strconv.Itoa(page))
		}
		return withQuery(path, lq)
	}
	if n > 1 {
		p.PrevHref = link(n - 1)
	}
	if n*per < total {
		p.NextHref = link(n + 1)
	}
	return p
}

// alertRowOf is an alert as a table row. silence adds the "Silence"
// button, pre-filled with the alert's labels.
func alertRowOf(a *alerting.AlertView, now time.Time, silence bool) templates.AlertRow {
	r := templates.AlertRow{
		Fingerprint: a.Fingerprint, Severity: a.Severity, SeverityClass: severityClass(a.Severity),
		RuleName: a.RuleName, RuleHref: ruleHref(a.RuleID), Labels: alertLabels(a.Labels),
		Value: fmtAlertValue(a.Value), State: string(a.State), StateClass: stateClass(string(a.State)),
		Summary: a.Annotations["summary"],
	}
	since := a.ActiveAt
	if a.State == alerting.StateFiring && !a.FiredAt.IsZero() {
		since = a.FiredAt
	}
	r.Since, r.SinceExact = templates.Ago(now, since), fmtTime(since)
	for _, id := range a.Silenced {
		r.Silenced = append(r.Silenced, templates.AlertOn{Label: "silenced by #" + itoa64(id), Href: silenceHref(id)})
	}
	for _, l := range a.Links {
		r.Links = append(r.Links, templates.AlertOn{Label: l.Label, Href: l.URL})
	}
	if silence {
		r.SilenceHref = "/alerts/silences?" + url.Values{"matchers": {strings.Join(labelMatchers(a.Labels), "\n")}}.Encode()
	}
	return r
}

// silenceHref is a silence in the silences list.
func silenceHref(id int64) string { return "/alerts/silences?state=all#silence-" + itoa64(id) }

// alertLabels are an alert's labels in order, without alertname and
// severity (the table shows them in their own columns).
func alertLabels(m map[string]string) []templates.KV {
	out := make([]templates.KV, 0, len(m))
	for _, k := range sortedLabelNames(m) {
		if k == "alertname" || k == "severity" {
			continue
		}
		out = append(out, templates.KV{Key: k, Value: m[k]})
	}
	return out
}

func sortedLabelNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// labelMatchers are equality matchers for every label, in PromQL form:
// the silence of exactly this alert.
func labelMatchers(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range sortedLabelNames(m) {
		out = append(out, eq(k, m[k]).String())
	}
	return out
}

// seriesText is an alert's label set as one line without alertname and
// severity, which every alert of a rule shares.
func seriesText(m map[string]string) string {
	kvs := alertLabels(m)
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = eq(kv.Key, kv.Value).String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// labelsText is a label set as one line, {a="b", c="d"}.
func labelsText(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	return "{" + strings.Join(labelMatchers(m), ", ") + "}"
}

// fmtAlertValue prints an alert's value: integers as such, others with
// four significant digits.
func fmtAlertValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// hungAfter is how long an outstanding notification request may take
// before the target shows as hung.
const hungAfter = 30 * time.Second

func targetRowsOf(ts []alerting.TargetStatus, now time.Time) []templates.TargetRow {
	out := make([]templates.TargetRow, 0, len(ts))
	for _, t := range ts {
		r := templates.TargetRow{
			Name: t.Name, Kind: t.Kind, URL: t.URL, Sent: templates.Exact(int64(t.Sent)), Failed: templates.Exact(int64(t.Failed)),
			Queued: t.Queued, Failing: t.ConsecutiveFailures > 0, Failures: t.ConsecutiveFailures, LastError: t.LastError,
			LastSuccess: cmpOr(templates.Ago(now, t.LastSuccess), "never"),
		}
		if !t.InFlightSince.IsZero() && now.Sub(t.InFlightSince) >= hungAfter {
			r.Hung, r.InFlightSince = true, fmtTime(t.InFlightSince)+" ("+templates.Ago(now, t.InFlightSince)+")"
		}
		out = append(out, r)
	}
	return out
}

// firingShown is how many firing alerts the overview lists.
const firingShown = 10

// firingHead is the overview's head: nil when alerting is off, nothing
// fires the caller may see, or the alerts cannot be read (the overview
// still renders; the failure is logged).
func (s *Server) firingHead(c *fiber.Ctx) *templates.FiringHead {
	if s.alerts == nil {
		return nil
	}
	caller := alertCaller(c)
	ctx := c.UserContext()
	list, total, err := s.alerts.Firing(ctx, caller, firingShown)
	if err != nil {
		s.log.WarnContext(ctx, "firing alerts for the overview", "request_id", requestIDOf(c), "err", err)
		return nil
	}
	if len(list) == 0 {
		return nil
	}
	h := &templates.FiringHead{Total: total}
	now := s.now()
	manage := s.mayManageAlerts(c)
	for i := range list {
		h.Rows = append(h.Rows, alertRowOf(&list[i], now, manage))
	}
	return h
}
