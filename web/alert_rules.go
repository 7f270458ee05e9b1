package web

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/alerting"
	"switchyard/delivery"
	"switchyard/tsdb"
	"switchyard/web/templates"
)

// The rule pages: the list, the form (new, from a template, edit) with its
// preview over history, a rule's page, and the forms that change a rule.
// Every mutation is a POST form that redirects with a flash message, or
// shows the form again with the reason next to each field.

// rulesPerPage is the page size of the rules list.
const rulesPerPage = 50

// ruleSorts are the rules list's orders (RuleFilter.Sort).
var ruleSorts = []string{"name", "-name", "state", "updated", "-updated"}

// ruleStates are the rules list's state filter: the values of
// RuleView.State.
var ruleStates = []string{string(alerting.StateFiring), string(alerting.StatePending), "ok", "disabled", "error", "nodata"}

// previewRanges are the preview's ranges, up to the 14 days of rollups
// the history keeps.
var previewRanges = []string{"1h", "6h", "24h", "7d", "14d"}

// ruleChoices are the rule form's choices, from alerting's own.
func ruleChoices() templates.RuleChoices {
	return templates.RuleChoices{
		Severities: alertSeverities, Ranges: previewRanges,
		Ops: []string{string(alerting.OpGT), string(alerting.OpGE), string(alerting.OpLT), string(alerting.OpLE), string(alerting.OpEQ), string(alerting.OpNE)},
		Funcs: []templates.KV{{Key: string(alerting.FuncValue), Value: "value"}, {Key: string(alerting.FuncRate), Value: "rate"},
			{Key: string(alerting.FuncIncrease), Value: "increase"}, {Key: string(alerting.FuncQuantile), Value: "quantile"}},
		Aggs: []templates.KV{{Key: string(alerting.AggNone), Value: "none"}, {Key: string(alerting.AggSum), Value: "sum"},
			{Key: string(alerting.AggMax), Value: "max"}, {Key: string(alerting.AggMin), Value: "min"},
			{Key: string(alerting.AggAvg), Value: "avg"}, {Key: string(alerting.AggCount), Value: "count"}},
	}
}

// handleAlertRules is the rules list: filtered by state, severity and
// name, sorted, paged.
func (s *Server) handleAlertRules(c *fiber.Ctx) error {
	page := templates.Page{Title: "Alert rules", Area: templates.AreaAlerts}
	vm := templates.Rules{CanManage: s.mayManageAlerts(c), States: ruleStates, Severities: alertSeverities}
	if s.alerts == nil {
		return s.render(c, page, templates.RulesView(vm))
	}
	vm.Enabled = true
	q := queryOf(c)
	f := alerting.RuleFilter{
		State: strings.TrimSpace(q.Get("state")), Severity: strings.TrimSpace(q.Get("severity")),
		Q: strings.TrimSpace(q.Get("q")), Sort: strings.TrimSpace(q.Get("sort")), Limit: rulesPerPage,
	}
	// The service refuses a state, severity or sort it does not know.
	if len(f.Q) > 200 {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "the filter is too long (200 characters at most)"))
	}
	n, err := pageNumber(c)
	if err != nil {
		return s.fail(c, err)
	}
	f.Offset = (n - 1) * rulesPerPage
	vm.State, vm.Severity, vm.Q, vm.Sort = f.State, f.Severity, f.Q, f.Sort
	vm.Filtered = f.State != "" || f.Severity != "" || f.Q != ""
	res, err := s.alerts.ListRules(c.UserContext(), alertCaller(c), f)
	if err != nil {
		return s.fail(c, err)
	}
	base := url.Values{}
	for _, k := range []string{"state", "severity", "q"} {
		if v := q.Get(k); v != "" {
			base.Set(k, v)
		}
	}
	for _, so := range ruleSorts {
		sq := cloneValues(base)
		sq.Set("sort", so)
		vm.Sorts = append(vm.Sorts, templates.SortLink{Label: so, Href: withQuery("/alerts/rules", sq), Current: cmpOr(f.Sort, "name") == so})
	}
	if f.Sort != "" {
		base.Set("sort", f.Sort)
	}
	now := s.now()
	for _, r := range res.Rules {
		vm.Rows = append(vm.Rows, templates.RuleRow{
			ID: r.ID, Name: r.Name, Href: ruleHref(r.ID), Severity: r.Severity, SeverityClass: severityClass(r.Severity),
			State: r.State, StateClass: stateClass(r.State),
			LastEval: templates.Ago(now, r.Status.LastEval), LastEvalExact: fmtTime(r.Status.LastEval), EvalError: r.Status.Error,
			NoData: r.Status.NoData, NoDataSince: fmtTime(r.Status.NoDataSince),
			Firing: r.Status.Firing, Pending: r.Status.Pending, Enabled: r.Enabled,
		})
	}
	vm.Paging = pagingOf("/alerts/rules", base, n, rulesPerPage, len(res.Rules), res.Total)
	return s.render(c, page, templates.RulesView(vm))
}

// previewRange reads a preview's range key (PreviewRanges; "" is 24h)
// into its window ending now. The dashboards' picker (parseRange) stops
// at 7d; the preview reaches the 14 days of rollups the history keeps.
// Errors: EINVALID.
func previewRange(key string, now time.Time) (string, time.Time, time.Time, error) {
	key = cmpOr(key, defaultPreviewRange)
	if !slices.Contains(previewRanges, key) {
		return "", time.Time{}, time.Time{}, delivery.Errorf(delivery.EINVALID, "range must be one of %s", strings.Join(previewRanges, ", "))
	}
	if key == "14d" {
		return key, now.Add(-14 * 24 * time.Hour), now, nil
	}
	tr, err := parseRange(key, now)
	if err != nil {
		return "", time.Time{}, time.Time{}, err
	}
	return key, tr.From, tr.To, nil
}

// defaultPreviewRange keeps the first preview fast; a longer look is one
// choice away.
const defaultPreviewRange = "24h"

// ruleForm is a rule as the form posted it: the rule, the form as typed
// and what could not be read, per field.
type ruleForm struct {
	rule   alerting.Rule
	form   templates.RuleForm
	fields alerting.FieldErrors
	id     int64 // the rule edited; 0 for a new one
}

// parseRuleForm reads the rule form (templates.RuleForm: inputs named by
// the rule's JSON paths). What cannot be read becomes a reason for its
// field; the service validates the rest.
func parseRuleForm(c *fiber.Ctx) ruleForm {
	v := formValues(c)
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	f := templates.RuleForm{
		Name: get("name"), Metric: get("expr.metric"), Matchers: v.Get("expr.matchers"), Func: get("expr.func"), Window: get("expr.window"),
		Quantile: get("expr.quantile"), Agg: get("expr.agg"), By: get("expr.by"),
		DivMetric: get("divide_by.metric"), DivMatchers: v.Get("divide_by.matchers"),
		Op: get("op"), Threshold: get("threshold"),
		AndMetric: get("and.metric"), AndMatchers: v.Get("and.matchers"), AndFunc: get("and.func"), AndWindow: get("and.window"),
		AndAgg: get("and.agg"), AndBy: get("and.by"), AndOp: get("and.op"), AndThreshold: get("and.threshold"),
		For: get("for"), KeepFiringFor: get("keep_firing_for"), Severity: get("severity"), Labels: v.Get("labels"),
		Summary: get("annotations.summary"), Description: v.Get("annotations.description"), RunbookURL: get("annotations.runbook_url"),
		GroupBy: get("group_by"), Enabled: checked(get("enabled")), Range: get("range"), Version: get("version"), Template: get("template"),
	}
	out := ruleForm{form: f, fields: alerting.FieldErrors{}}
	fe := out.fields
	r := &out.rule
	r.Name, r.Severity, r.Enabled = f.Name, f.Severity, f.Enabled
	r.Op, r.Expr = alerting.CmpOp(f.Op), formSelector("expr", f.Metric, f.Matchers, f.Func, f.Window, f.Agg, f.By, fe)
	if f.Quantile != "" {
		q, err := strconv.ParseFloat(f.Quantile, 64)
		if err != nil {
			fe.Add("expr.quantile", "%q is not a number", truncateText(f.Quantile, 40))
		}
		r.Expr.Quantile = q
	}
	if f.DivMetric != "" || strings.TrimSpace(f.DivMatchers) != "" {
		if f.DivMetric == "" {
			fe.Add("divide_by.metric", "name the metric to divide by, or clear its matchers")
		}
		d := r.Expr
		d.Metric, d.Matchers = f.DivMetric, formMatchers("divide_by.matchers", f.DivMatchers, fe)
		r.DivideBy = &d
	}
	r.Threshold = formNumber("threshold", f.Threshold, fe)
	if f.AndMetric != "" || strings.TrimSpace(f.AndMatchers) != "" || f.AndThreshold != "" {
		if f.AndMetric == "" {
			fe.Add("and.metric", "name the metric of the second condition, or clear its fields")
		}
		r.And = &alerting.Condition{
			Selector: formSelector("and", f.AndMetric, f.AndMatchers, f.AndFunc, f.AndWindow, f.AndAgg, f.AndBy, fe),
			Op:       alerting.CmpOp(f.AndOp), Threshold: formNumber("and.threshold", f.AndThreshold, fe),
		}
	}
	r.For = formDuration("for", f.For, fe)
	r.KeepFiringFor = formDuration("keep_firing_for", f.KeepFiringFor, fe)
	r.Labels = formLabels(f.Labels, fe)
	for k, val := range map[string]string{"summary": f.Summary, "description": strings.TrimSpace(f.Description), "runbook_url": f.RunbookURL} {
		if val != "" {
			if r.Annotations == nil {
				r.Annotations = map[string]string{}
			}
			r.Annotations[k] = val
		}
	}
	r.GroupBy = commaList(f.GroupBy)
	if f.Version != "" {
		ver, err := strconv.ParseInt(f.Version, 10, 64)
		if err != nil || ver < 0 {
			fe.Add("version", "not a version of this rule: reload the page")
		}
		r.Version = ver
	}
	if id := get("id"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err == nil && n > 0 {
			out.id, r.ID = n, n
		}
	}
	return out
}

func formSelector(prefix, metric, matchers, fn, window, agg, by string, fe alerting.FieldErrors) alerting.Selector {
	return alerting.Selector{
		Metric: metric, Matchers: formMatchers(prefix+".matchers", matchers, fe), Func: alerting.Func(fn),
		Window: formDuration(prefix+".window", window, fe), Agg: alerting.AggOp(agg), By: commaList(by),
	}
}

// formMatchers reads matchers, one per line in PromQL form.
func formMatchers(field, text string, fe alerting.FieldErrors) []tsdb.Matcher {
	var out []tsdb.Matcher
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		m, err := tsdb.ParseMatcher(line)
		if err != nil {
			fe.Add(field, "line %d: %s", i+1, delivery.ErrorMessage(err))
			continue
		}
		out = append(out, m)
	}
	return out
}

func formDuration(field, text string, fe alerting.FieldErrors) alerting.Duration {
	d, err := alerting.ParseDuration(text)
	if err != nil {
		fe.Add(field, "%v", err)
	}
	return d
}

func formNumber(field, text string, fe alerting.FieldErrors) float64 {
	if text == "" {
		fe.Add(field, "required")
		return 0
	}
	v, err := alerting.ParseThreshold(text)
	if err != nil {
		fe.Add(field, "%v", err)
	}
	return v
}

// formLabels reads key=value lines.
func formLabels(text string, fe alerting.FieldErrors) map[string]string {
	var out map[string]string
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			fe.Add("labels", "line %d: want key=value", i+1)
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(val), `"`)
	}
	return out
}

// commaList splits "a, b,c" into names.
func commaList(text string) []string {
	var out []string
	for part := range strings.SplitSeq(text, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// ruleFormOf fills the form from a rule (a template's draft, or the rule
// being edited).
func ruleFormOf(r *alerting.Rule) templates.RuleForm {
	f := templates.RuleForm{
		Name: r.Name, Metric: r.Expr.Metric, Matchers: matchersText(r.Expr.Matchers), Func: string(r.Expr.Func),
		Window: durationField(r.Expr.Window), Agg: string(r.Expr.Agg), By: strings.Join(r.Expr.By, ", "),
		Op: string(r.Op), Threshold: numberField(r.Threshold), For: durationField(r.For), KeepFiringFor: durationField(r.KeepFiringFor),
		Severity: r.Severity, Labels: labelsField(r.Labels), Summary: r.Annotations["summary"], Description: r.Annotations["description"],
		RunbookURL: r.Annotations["runbook_url"], GroupBy: strings.Join(r.GroupBy, ", "), Enabled: r.Enabled,
	}
	if r.Expr.Quantile != 0 {
		f.Quantile = numberField(r.Expr.Quantile)
	}
	if d := r.DivideBy; d != nil {
		f.DivMetric, f.DivMatchers = d.Metric, matchersText(d.Matchers)
	}
	if a := r.And; a != nil {
		f.AndMetric, f.AndMatchers, f.AndFunc, f.AndWindow = a.Metric, matchersText(a.Matchers), string(a.Func), durationField(a.Window)
		f.AndAgg, f.AndBy, f.AndOp, f.AndThreshold = string(a.Agg), strings.Join(a.By, ", "), string(a.Op), numberField(a.Threshold)
	}
	if r.Version > 0 {
		f.Version = strconv.FormatInt(r.Version, 10)
	}
	return f
}

func matchersText(ms []tsdb.Matcher) string {
	lines := make([]string, len(ms))
	for i, m := range ms {
		lines[i] = m.String()
	}
	return strings.Join(lines, "\n")
}

func durationField(d alerting.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func numberField(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func labelsField(m map[string]string) string {
	lines := make([]string, 0, len(m))
	for _, k := range sortedLabelNames(m) {
		lines = append(lines, k+"="+m[k])
	}
	return strings.Join(lines, "\n")
}

// fieldErrorsOf is the per-field reasons of an EINVALID from the service
// (Details["fields"]), nil when there are none.
func fieldErrorsOf(err error) map[string]string {
	var de *delivery.Error
	if !errors.As(err, &de) {
		return nil
	}
	switch f := de.Details["fields"].(type) {
	case map[string]string:
		return f
	case alerting.FieldErrors:
		return f
	case map[string]any:
		out := map[string]string{}
		for k, v := range f {
			out[k] = fmt.Sprint(v)
		}
		return out
	}
	return nil
}

// withError puts err on the form: its message, its reasons per field and
// whether it is a conflict. It reports false for an internal error, which
// fails the request instead.
func withError(f *templates.RuleForm, err error) bool {
	msg, shown := formError(err)
	if !shown {
		return false
	}
	f.Error, f.Conflict = msg, delivery.ErrorCode(err) == delivery.ECONFLICT
	for k, v := range fieldErrorsOf(err) {
		if f.Errors == nil {
			f.Errors = map[string]string{}
		}
		if _, ok := f.Errors[k]; !ok {
			f.Errors[k] = v
		}
	}
	return true
}

// fillForm adds what every rendering of the form needs: where it posts,
// the metric list, whether the caller may save.
func (s *Server) fillForm(c *fiber.Ctx, f *templates.RuleForm, id int64) {
	f.Action, f.PreviewAction, f.Editing, f.ID = "/alerts/rules", "/alerts/rules/preview", id != 0, id
	if id != 0 {
		f.Action = ruleHref(id)
	}
	f.CanSave, f.Choices = s.mayManageAlerts(c), ruleChoices()
	f.Range = cmpOr(f.Range, defaultPreviewRange)
	if f.Template != "" {
		for _, t := range alerting.Templates() {
			if t.Kind == f.Template {
				f.TemplateTitle = t.Title
			}
		}
		f.TemplateTitle = cmpOr(f.TemplateTitle, f.Template)
	}
	if s.alerts != nil {
		if ms, err := s.alerts.Metrics(c.UserContext()); err == nil {
			f.Metrics = ms
		} else {
			s.log.WarnContext(c.UserContext(), "metric names for the rule form", "request_id", requestIDOf(c), "err", err)
		}
	}
}

// formPage renders the form page: new, or editing rule id, with an
// optional preview; status is the answer's (400 for a refused form).
func (s *Server) formPage(c *fiber.Ctx, f templates.RuleForm, id int64, preview *templates.RulePreview, status int) error {
	s.fillForm(c, &f, id)
	vm := templates.RuleFormPage{Heading: "New alert rule", Form: f, Preview: preview}
	if id != 0 {
		vm.Heading, vm.ID = "Edit "+cmpOr(f.Name, "rule #"+itoa64(id)), id
	}
	c.Status(status)
	return s.render(c, templates.Page{Title: vm.Heading, Area: templates.AreaAlerts}, templates.RuleNewView(vm))
}

// handleAlertRuleNew is the form: empty, or pre-filled from a template
// (?template=<kind>&<label>=<value>…).
func (s *Server) handleAlertRuleNew(c *fiber.Ctx) error {
	if s.alerts == nil {
		return s.render(c, templates.Page{Title: "New alert rule", Area: templates.AreaAlerts}, templates.AlertingOff())
	}
	q := queryOf(c)
	kind := strings.TrimSpace(q.Get("template"))
	f := templates.RuleForm{Enabled: true, Severity: alerting.SeverityWarning, Op: string(alerting.OpGT)}
	if kind != "" {
		labels := map[string]string{}
		for k, vs := range q {
			if k != "template" && k != "range" && len(vs) > 0 {
				labels[k] = vs[0]
			}
		}
		draft, err := s.alerts.Template(c.UserContext(), alertCaller(c), kind, labels)
		if err != nil {
			return s.fail(c, err)
		}
		f = ruleFormOf(&draft)
		f.Template = kind
	}
	f.Range = strings.TrimSpace(q.Get("range"))
	if _, _, _, err := previewRange(f.Range, s.now()); err != nil {
		return s.fail(c, err)
	}
	return s.formPage(c, f, 0, nil, fiber.StatusOK)
}

// handleAlertRulePreview renders the posted form with the draft's preview
// below; a draft the service refuses shows the reasons per field.
func (s *Server) handleAlertRulePreview(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	in := parseRuleForm(c)
	key, from, to, err := previewRange(in.form.Range, s.now())
	if err != nil {
		in.fields.Add("range", "%s", delivery.ErrorMessage(err))
	}
	in.form.Range = key
	if err := in.fields.Err("rule"); err != nil {
		withError(&in.form, err)
		return s.formPage(c, in.form, in.id, nil, fiber.StatusBadRequest)
	}
	p, err := svc.Preview(c.UserContext(), alertCaller(c), in.rule, from, to)
	if err != nil {
		if !withError(&in.form, err) {
			return s.fail(c, err)
		}
		return s.formPage(c, in.form, in.id, nil, statusOf(delivery.ErrorCode(err)))
	}
	pv := previewView(p, &in.rule, from, to)
	return s.formPage(c, in.form, in.id, &pv, fiber.StatusOK)
}

// handleAlertRuleCreate saves a new rule and goes to its page.
func (s *Server) handleAlertRuleCreate(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	in := parseRuleForm(c)
	if err := in.fields.Err("rule"); err != nil {
		withError(&in.form, err)
		return s.formPage(c, in.form, 0, nil, fiber.StatusBadRequest)
	}
	in.rule.ID, in.rule.Version = 0, 0
	r, err := svc.CreateRule(c.UserContext(), alertCaller(c), in.rule)
	if err != nil {
		if !withError(&in.form, err) {
			return s.fail(c, err)
		}
		return s.formPage(c, in.form, 0, nil, statusOf(delivery.ErrorCode(err)))
	}
	return s.flash(c, ruleHref(r.ID), fmt.Sprintf("Rule “%s” created: it is evaluated from now on.", r.Name))
}

// ruleID reads the :id parameter; anything but a positive number is the
// 404 of a rule that does not exist.
func ruleID(c *fiber.Ctx) (int64, error) { return positiveID(c, "rule") }

// positiveID reads :id; anything but a positive number is the 404 of a
// thing (rule, silence) that does not exist.
func positiveID(c *fiber.Ctx, thing string) (int64, error) {
	id, err := strconv.ParseInt(param(c, "id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, delivery.Errorf(delivery.ENOTFOUND, "no such %s", thing)
	}
	return id, nil
}

// handleAlertRuleUpdate saves the edit form (its version names what it
// changes); a refusal shows the form again, a conflict says the rule
// changed meanwhile.
func (s *Server) handleAlertRuleUpdate(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := ruleID(c)
	if err != nil {
		return s.fail(c, err)
	}
	in := parseRuleForm(c)
	if err := in.fields.Err("rule"); err != nil {
		withError(&in.form, err)
		return s.formPage(c, in.form, id, nil, fiber.StatusBadRequest)
	}
	in.rule.ID = id
	r, err := svc.UpdateRule(c.UserContext(), alertCaller(c), in.rule)
	if err != nil {
		if code := delivery.ErrorCode(err); code == delivery.ENOTFOUND {
			return s.fail(c, err)
		}
		if !withError(&in.form, err) {
			return s.fail(c, err)
		}
		return s.formPage(c, in.form, id, nil, statusOf(delivery.ErrorCode(err)))
	}
	return s.flash(c, ruleHref(r.ID), fmt.Sprintf("Rule “%s” saved (version %d).", r.Name, r.Version))
}

func (s *Server) handleAlertRuleEnable(c *fiber.Ctx) error  { return s.setRuleEnabled(c, true) }
func (s *Server) handleAlertRuleDisable(c *fiber.Ctx) error { return s.setRuleEnabled(c, false) }

// setRuleEnabled is the enable and disable buttons: back to the rule's
// page with what happened (a conflict or a refusal says so there).
func (s *Server) setRuleEnabled(c *fiber.Ctx, on bool) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := ruleID(c)
	if err != nil {
		return s.fail(c, err)
	}
	ver, err := strconv.ParseInt(strings.TrimSpace(c.FormValue("version")), 10, 64)
	if err != nil || ver < 0 {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "version must be the rule's version: reload the page"))
	}
	r, err := svc.SetEnabled(c.UserContext(), alertCaller(c), id, ver, on)
	switch code := delivery.ErrorCode(err); {
	case err == nil:
		word := "disabled: its alerts resolve and it is not evaluated"
		if on {
			word = "enabled"
		}
		return s.flash(c, ruleHref(r.ID), fmt.Sprintf("Rule “%s” %s.", r.Name, word))
	case code == delivery.ECONFLICT:
		return s.flash(c, ruleHref(id), "Not changed: "+delivery.ErrorMessage(err))
	}
	return s.fail(c, err)
}

// handleAlertRuleDelete deletes a rule with its alerts and history.
func (s *Server) handleAlertRuleDelete(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := ruleID(c)
	if err != nil {
		return s.fail(c, err)
	}
	ctx := c.UserContext()
	caller := alertCaller(c)
	name := "#" + itoa64(id)
	if rv, err := svc.GetRule(ctx, caller, id); err == nil {
		name = "“" + rv.Name + "”"
	}
	if err := svc.DeleteRule(ctx, caller, id); err != nil {
		return s.fail(c, err)
	}
	return s.flash(c, "/alerts/rules", "Rule "+name+" deleted, with its alerts and history.")
}

// historyPerPage is the page size of a rule's transition history.
const historyPerPage = 50

// alertsOfRule is the most alerts a rule's page lists.
const alertsOfRule = 100

// handleAlertRule is a rule's page: definition and PromQL, status, its
// alerts, the preview over ?range=, the transition history (?before=),
// and for whoever may change it the buttons and (?edit=1) the form.
func (s *Server) handleAlertRule(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.render(c, templates.Page{Title: "Alert rule", Area: templates.AreaAlerts}, templates.AlertingOff())
	}
	id, err := ruleID(c)
	if err != nil {
		return s.fail(c, err)
	}
	before, err := int64Query(c, "before")
	if err != nil {
		return s.fail(c, err)
	}
	now := s.now()
	key, from, to, err := previewRange(strings.TrimSpace(c.Query("range")), now)
	if err != nil {
		return s.fail(c, err)
	}
	ctx := c.UserContext()
	caller := alertCaller(c)
	rv, err := svc.GetRule(ctx, caller, id)
	if err != nil {
		return s.fail(c, err)
	}
	r := &rv.Rule
	vm := templates.RuleDetail{
		ID: r.ID, Name: r.Name, Severity: r.Severity, SeverityClass: severityClass(r.Severity),
		State: rv.State, StateClass: stateClass(rv.State), Enabled: r.Enabled, PromQL: alerting.PromQL(r),
		Definition: ruleDefinition(r), LastEval: templates.Ago(now, rv.Status.LastEval), LastEvalExact: fmtTime(rv.Status.LastEval),
		EvalError: rv.Status.Error, NoData: rv.Status.NoData, NoDataSince: fmtTime(rv.Status.NoDataSince),
		Series: rv.Status.Series, Firing: rv.Status.Firing, Pending: rv.Status.Pending, CanEdit: rv.CanEdit && s.mayManageAlerts(c),
		Version: strconv.FormatInt(r.Version, 10), EnableAction: ruleHref(id) + "/enable", DisableAction: ruleHref(id) + "/disable",
		DeleteAction: ruleHref(id) + "/delete",
	}
	if !rv.Status.LastEval.IsZero() {
		vm.EvalDuration = fmtSpanDuration(rv.Status.EvalDuration)
	}
	alerts, err := svc.Alerts(ctx, caller, alerting.AlertFilter{RuleID: id, Limit: alertsOfRule})
	if err != nil {
		return s.fail(c, err)
	}
	for i := range alerts.Alerts {
		vm.Alerts = append(vm.Alerts, alertRowOf(&alerts.Alerts[i], now, vm.CanEdit))
	}
	p, err := svc.Preview(ctx, caller, *r, from, to)
	if err != nil {
		if _, shown := formError(err); !shown {
			return s.fail(c, err)
		}
		vm.Preview = templates.RulePreview{Error: delivery.ErrorMessage(err)}
	} else {
		vm.Preview = previewView(p, r, from, to)
	}
	vm.Preview.Range = previewPicker(ruleHref(id), key)
	ts, next, err := svc.Transitions(ctx, caller, id, before, historyPerPage)
	if err != nil {
		return s.fail(c, err)
	}
	for _, t := range ts {
		vm.History = append(vm.History, templates.TransitionRow{
			At: templates.Ago(now, t.At), AtExact: fmtTime(t.At), Labels: seriesText(t.Labels),
			From: string(t.From), To: transitionTo(t), ToClass: stateClass(string(t.To)), Value: fmtAlertValue(t.Value),
		})
	}
	rangeQ := url.Values{}
	if c.Query("range") != "" {
		rangeQ.Set("range", key)
	}
	if next > 0 {
		nq := cloneValues(rangeQ)
		nq.Set("before", strconv.FormatInt(next, 10))
		vm.HistoryNext = withQuery(ruleHref(id), nq) + "#history"
	}
	if before > 0 {
		vm.HistoryFirst = withQuery(ruleHref(id), rangeQ) + "#history"
	}
	if vm.CanEdit && checked(c.Query("edit")) {
		vm.Edit = true
		vm.Form = ruleFormOf(r)
		s.fillForm(c, &vm.Form, id)
	}
	return s.render(c, templates.Page{Title: r.Name, Area: templates.AreaAlerts}, templates.RuleView(vm))
}

// transitionTo names where a transition went: "resolved" for firing →
// inactive, as operators say it.
func transitionTo(t alerting.Transition) string {
	if t.To == alerting.StateInactive && t.From == alerting.StateFiring {
		return "resolved"
	}
	return string(t.To)
}

// previewPicker is the range links of a rule's preview.
func previewPicker(path, current string) templates.RangePicker {
	p := templates.RangePicker{Current: current}
	for _, k := range previewRanges {
		p.Options = append(p.Options, templates.RangeOption{Key: k, Href: path + "?" + url.Values{"range": {k}}.Encode(), Current: k == current})
	}
	return p
}

// ruleDefinition is what a rule's page lists beside its PromQL.
func ruleDefinition(r *alerting.Rule) []templates.KV {
	kv := []templates.KV{{Key: "for", Value: cmpOr(durationField(r.For), "0s (fires on the first evaluation that holds)")}}
	if r.KeepFiringFor != 0 {
		kv = append(kv, templates.KV{Key: "keep firing for", Value: durationField(r.KeepFiringFor)})
	}
	if len(r.Labels) > 0 {
		kv = append(kv, templates.KV{Key: "labels", Value: labelsText(r.Labels)})
	}
	for _, k := range sortedLabelNames(r.Annotations) {
		kv = append(kv, templates.KV{Key: k, Value: r.Annotations[k]})
	}
	if len(r.GroupBy) > 0 {
		kv = append(kv, templates.KV{Key: "group notifications by", Value: strings.Join(r.GroupBy, ", ")})
	}
	enabled := "yes"
	if !r.Enabled {
		enabled = "no"
	}
	kv = append(kv,
		templates.KV{Key: "enabled", Value: enabled},
		templates.KV{Key: "created", Value: strings.TrimSpace(fmtTime(r.CreatedAt) + " by " + r.CreatedBy)},
		templates.KV{Key: "updated", Value: strings.TrimSpace(fmtTime(r.UpdatedAt) + " by " + r.UpdatedBy)},
		templates.KV{Key: "version", Value: strconv.FormatInt(r.Version, 10)},
	)
	return kv
}

// intervalsShown is the most intervals a preview lists.
const intervalsShown = 50

// previewView is a preview as the page shows it.
func previewView(p alerting.Preview, r *alerting.Rule, from, to time.Time) templates.RulePreview {
	out := templates.RulePreview{Fired: p.Fired, Notifications: p.Notifications, NoData: p.NoData, Truncated: p.Truncated}
	if !p.From.IsZero() && p.To.After(p.From) {
		from, to = p.From, p.To
	}
	ch := templates.PreviewChart{
		Chart:     templates.Chart{ID: "preview", Title: previewTitle(r), Unit: previewUnit(r), From: from, To: to},
		Threshold: p.Threshold,
	}
	for _, sr := range p.Series {
		ch.Series = append(ch.Series, templates.ChartSeries{Name: labelsText(sr.Labels), Points: chartPoints(sr.Points)})
	}
	// Pending bands first, so that firing ones are drawn over them.
	for _, st := range []alerting.State{alerting.StatePending, alerting.StateFiring} {
		for _, iv := range p.Intervals {
			if iv.State == st {
				ch.Bands = append(ch.Bands, templates.ChartBand{From: iv.From, To: iv.To, State: string(iv.State)})
			}
		}
	}
	out.Chart = ch
	for i, iv := range p.Intervals {
		if i >= intervalsShown {
			out.MoreIntervals = len(p.Intervals) - intervalsShown
			break
		}
		out.Intervals = append(out.Intervals, templates.IntervalRow{
			Labels: seriesText(iv.Labels), State: string(iv.State), StateClass: stateClass(string(iv.State)),
			From: fmtTime(iv.From), To: fmtTime(iv.To), Duration: templates.Seconds(iv.To.Sub(iv.From).Seconds()), Open: iv.Open,
		})
	}
	return out
}

// previewTitle says what the preview charts.
func previewTitle(r *alerting.Rule) string {
	t := r.Expr.Metric
	if r.Expr.Func != alerting.FuncValue {
		t = string(r.Expr.Func) + " of " + t
	}
	if r.DivideBy != nil {
		t += " / " + r.DivideBy.Metric
	}
	return cmpOr(t, "the rule's value") + " " + string(r.Op) + " " + numberField(r.Threshold)
}

// previewUnit is the unit the preview's axis prints values in.
func previewUnit(r *alerting.Rule) string {
	switch {
	case r.DivideBy != nil:
		return templates.UnitPercent
	case r.Expr.Func == alerting.FuncQuantile, strings.HasSuffix(r.Expr.Metric, "_seconds") && r.Expr.Func == alerting.FuncValue:
		return templates.UnitSeconds
	case r.Expr.Func == alerting.FuncRate:
		return templates.UnitRate
	}
	return templates.UnitMessages
}
