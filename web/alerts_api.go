package web

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/alerting"
	"switchyard/delivery"
)

// The alerting JSON API: rules, their preview and history, alerts,
// silences, the targets' health and the one-click templates, with the
// same service and rules as the pages. Errors are the platform contract;
// a refused rule or silence is 400 with the reason per field in
// details.fields. Every route answers 404 when alerting is off.

// alertQueryParams are the query parameters of GET /api/v1/alerts.
var alertQueryParams = []string{"state", "severity", "rule", "q", "sort", "limit", "offset"}

// ruleQueryParams are those of GET /api/v1/alerts/rules.
var ruleQueryParams = []string{"state", "severity", "q", "sort", "limit", "offset"}

// templateLabelParams are the labels the one-click templates take, the
// query parameters of GET /api/v1/alerts/templates/:kind.
func templateLabelParams() []string {
	var out []string
	for _, t := range alerting.Templates() {
		for _, l := range t.Labels {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	slices.Sort(out)
	return out
}

// limitOffset reads ?limit= (1..maxLimit; 0 when absent: the service's
// default) and ?offset= (≥ 0). Errors: EINVALID.
func limitOffset(c *fiber.Ctx, maxLimit int) (int, int, error) {
	var limit, offset int
	if v := strings.TrimSpace(c.Query("limit")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return 0, 0, delivery.Errorf(delivery.EINVALID, "limit must be 1 to %d", maxLimit)
		}
		limit = n
	}
	if v := strings.TrimSpace(c.Query("offset")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			return 0, 0, delivery.Errorf(delivery.EINVALID, "offset must be a non-negative number")
		}
		offset = n
	}
	return limit, offset, nil
}

// apiAlerts is a page of alerts.
type apiAlerts struct {
	Alerts []alerting.AlertView `json:"alerts"`
	Total  int                  `json:"total"`
	Counts alerting.AlertCounts `json:"counts"`
}

// handleAPIAlerts lists the caller's alerts: state (firing, pending,
// silenced), severity, rule (id), q, sort (-active, active, severity,
// rule), limit (1–1000), offset.
func (s *Server) handleAPIAlerts(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	f := alerting.AlertFilter{State: strings.TrimSpace(c.Query("state")), Severity: strings.TrimSpace(c.Query("severity")),
		Q: strings.TrimSpace(c.Query("q")), Sort: strings.TrimSpace(c.Query("sort"))}
	// The service refuses a state, severity or sort it does not know,
	// naming the field.
	if len(f.Q) > 200 {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "q is too long (200 characters at most)"))
	}
	if v := strings.TrimSpace(c.Query("rule")); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return s.fail(c, delivery.Errorf(delivery.EINVALID, "rule must be a rule id"))
		}
		f.RuleID = id
	}
	if f.Limit, f.Offset, err = limitOffset(c, 1000); err != nil {
		return s.fail(c, err)
	}
	page, err := svc.Alerts(c.UserContext(), alertCaller(c), f)
	if err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(apiAlerts{Alerts: orEmpty(page.Alerts), Total: page.Total, Counts: page.Counts})
}

// apiRules is a page of rules.
type apiRules struct {
	Rules []alerting.RuleView `json:"rules"`
	Total int                 `json:"total"`
}

// handleAPIAlertRules lists the rules the caller may see: state,
// severity, q, sort, limit (1–500), offset.
func (s *Server) handleAPIAlertRules(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	f := alerting.RuleFilter{State: strings.TrimSpace(c.Query("state")), Severity: strings.TrimSpace(c.Query("severity")),
		Q: strings.TrimSpace(c.Query("q")), Sort: strings.TrimSpace(c.Query("sort"))}
	if len(f.Q) > 200 {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "q is too long (200 characters at most)"))
	}
	if f.Limit, f.Offset, err = limitOffset(c, 500); err != nil {
		return s.fail(c, err)
	}
	page, err := svc.ListRules(c.UserContext(), alertCaller(c), f)
	if err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(apiRules{Rules: orEmpty(page.Rules), Total: page.Total})
}

// apiRule is a rule with its status and its PromQL.
type apiRule struct {
	alerting.RuleView
	PromQL string `json:"promql"`
}

// handleAPIAlertRule is one rule.
func (s *Server) handleAPIAlertRule(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := ruleID(c)
	if err != nil {
		return s.fail(c, err)
	}
	rv, err := svc.GetRule(c.UserContext(), alertCaller(c), id)
	if err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(apiRule{RuleView: rv, PromQL: alerting.PromQL(&rv.Rule)})
}

// handleAPIAlertRuleCreate stores the rule of the body (alerting's rule
// JSON) and answers 201 with it.
func (s *Server) handleAPIAlertRuleCreate(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	r, err := alerting.DecodeRule(c.Body())
	if err != nil {
		return s.fail(c, err)
	}
	r.ID, r.Version = 0, 0
	created, err := svc.CreateRule(c.UserContext(), alertCaller(c), r)
	if err != nil {
		return s.fail(c, err)
	}
	c.Location("/api/v1/alerts/rules/" + itoa64(created.ID))
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(created)
}

// handleAPIAlertRuleUpdate replaces a rule; the body's version names the
// version it changes (409 when the rule changed since).
func (s *Server) handleAPIAlertRuleUpdate(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := ruleID(c)
	if err != nil {
		return s.fail(c, err)
	}
	r, err := alerting.DecodeRule(c.Body())
	if err != nil {
		return s.fail(c, err)
	}
	if r.ID != 0 && r.ID != id {
		return s.fail(c, fieldsError("rule", map[string]string{"id": "the body's id differs from the path's"}))
	}
	if r.Version <= 0 {
		return s.fail(c, fieldsError("rule", map[string]string{"version": "required: the version you read (optimistic locking)"}))
	}
	r.ID = id
	updated, err := svc.UpdateRule(c.UserContext(), alertCaller(c), r)
	if err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(updated)
}

// fieldsError is EINVALID with reasons per field, as the service answers.
func fieldsError(what string, fields map[string]string) error {
	fe := alerting.FieldErrors{}
	for k, v := range fields {
		fe.Add(k, "%s", v)
	}
	return fe.Err(what)
}

// handleAPIAlertRuleDelete deletes a rule with its alerts and history.
func (s *Server) handleAPIAlertRuleDelete(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := ruleID(c)
	if err != nil {
		return s.fail(c, err)
	}
	if err := svc.DeleteRule(c.UserContext(), alertCaller(c), id); err != nil {
		return s.fail(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// apiPreviewRequest is the body of a preview: a draft rule and the range
// (RFC 3339 or Unix seconds; default the last 24 hours).
type apiPreviewRequest struct {
	Rule json.RawMessage `json:"rule"`
	From string          `json:"from"`
	To   string          `json:"to"`
}

// apiPreview is a preview with its range.
type apiPreview struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	alerting.Preview
}

// handleAPIAlertRulePreview evaluates the draft of the body over history.
func (s *Server) handleAPIAlertRulePreview(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	var in apiPreviewRequest
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "body must be {rule, from, to}: %s", jsonProblem(err)))
	}
	if len(in.Rule) == 0 || string(in.Rule) == "null" {
		return s.fail(c, fieldsError("preview", map[string]string{"rule": "required: the draft rule"}))
	}
	r, err := alerting.DecodeRule(in.Rule)
	if err != nil {
		return s.fail(c, err)
	}
	to := s.now()
	if in.To != "" {
		if to, err = parseTime("to", in.To); err != nil {
			return s.fail(c, err)
		}
	}
	from := to.Add(-24 * time.Hour)
	if in.From != "" {
		if from, err = parseTime("from", in.From); err != nil {
			return s.fail(c, err)
		}
	}
	if !to.After(from) {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "to must be after from"))
	}
	p, err := svc.Preview(c.UserContext(), alertCaller(c), r, from, to)
	if err != nil {
		return s.fail(c, err)
	}
	p.Series, p.Intervals = orEmpty(p.Series), orEmpty(p.Intervals)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(apiPreview{From: from.UTC(), To: to.UTC(), Preview: p})
}

// apiHistory is a page of a rule's transitions, newest first.
type apiHistory struct {
	Transitions []alerting.Transition `json:"transitions"`
	NextBefore  int64                 `json:"next_before,omitempty"` // ?before= of the next page
}

// handleAPIAlertRuleHistory pages a rule's transitions: before, limit
// (1–500).
func (s *Server) handleAPIAlertRuleHistory(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := ruleID(c)
	if err != nil {
		return s.fail(c, err)
	}
	before, err := int64Query(c, "before")
	if err != nil {
		return s.fail(c, err)
	}
	limit, _, err := limitOffset(c, 500)
	if err != nil {
		return s.fail(c, err)
	}
	ts, next, err := svc.Transitions(c.UserContext(), alertCaller(c), id, before, limit)
	if err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(apiHistory{Transitions: orEmpty(ts), NextBefore: next})
}

type apiSilences struct {
	Silences []alerting.Silence `json:"silences"`
}

// handleAPIAlertSilences lists silences: state (active, pending,
// expired; all by default).
func (s *Server) handleAPIAlertSilences(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	st := strings.TrimSpace(c.Query("state"))
	list, err := svc.Silences(c.UserContext(), alertCaller(c), alerting.SilenceFilter{State: st})
	if err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(apiSilences{Silences: orEmpty(list)})
}

// apiSilenceRequest is the body of a new silence: matchers in PromQL
// form, the comment, and ends_at or a duration ("2h"); starts_at
// defaults to now.
type apiSilenceRequest struct {
	Matchers []string   `json:"matchers"`
	Comment  string     `json:"comment"`
	StartsAt *time.Time `json:"starts_at"`
	EndsAt   *time.Time `json:"ends_at"`
	Duration string     `json:"duration"`
}

// handleAPIAlertSilenceCreate stores a silence and answers 201 with it.
func (s *Server) handleAPIAlertSilenceCreate(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	var in apiSilenceRequest
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "body must be {matchers, comment, ends_at or duration}: %s", jsonProblem(err)))
	}
	now := s.now()
	fe := alerting.FieldErrors{}
	sil := alerting.Silence{Comment: strings.TrimSpace(in.Comment), StartsAt: now,
		Matchers: formMatchers("matchers", strings.Join(in.Matchers, "\n"), fe)}
	if in.StartsAt != nil {
		sil.StartsAt = *in.StartsAt
	}
	switch {
	case in.EndsAt != nil && in.Duration != "":
		fe.Add("duration", "give ends_at or duration, not both")
	case in.EndsAt != nil:
		sil.EndsAt = *in.EndsAt
	case in.Duration != "":
		d, err := alerting.ParseDuration(in.Duration)
		if err != nil || d <= 0 {
			fe.Add("duration", "want a duration such as 30m, 2h or 1d")
		}
		sil.EndsAt = sil.StartsAt.Add(time.Duration(d))
	default:
		fe.Add("ends_at", "required: ends_at, or a duration")
	}
	if err := fe.Err("silence"); err != nil {
		return s.fail(c, err)
	}
	created, err := svc.CreateSilence(c.UserContext(), alertCaller(c), sil)
	if err != nil {
		return s.fail(c, err)
	}
	c.Location("/api/v1/alerts/silences")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(created)
}

// handleAPIAlertSilenceExpire ends a silence now and returns it.
func (s *Server) handleAPIAlertSilenceExpire(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := silenceID(c)
	if err != nil {
		return s.fail(c, err)
	}
	sil, err := svc.ExpireSilence(c.UserContext(), alertCaller(c), id)
	if err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(sil)
}

type apiTargets struct {
	Targets []alerting.TargetStatus `json:"targets"`
}

// handleAPIAlertTargets is the notification targets' health.
func (s *Server) handleAPIAlertTargets(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(apiTargets{Targets: orEmpty(svc.Targets())})
}

// handleAPIAlertTemplate is the draft rule of a template kind for the
// labels of the query (the thing it is about); nothing is stored.
func (s *Server) handleAPIAlertTemplate(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	labels := map[string]string{}
	for k, vs := range queryOf(c) {
		if len(vs) > 0 {
			labels[k] = strings.TrimSpace(vs[0])
		}
	}
	r, err := svc.Template(c.UserContext(), alertCaller(c), param(c, "kind"), labels)
	if err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(r)
}
