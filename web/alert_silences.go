package web

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/alerting"
	"switchyard/delivery"
	"switchyard/sqldb"
	"switchyard/tsdb"
	"switchyard/web/templates"
)

// The silences page: the silences by state, the form that creates one
// (pre-filled from an alert's "Silence" button) and expiring one.

// silenceTabs are the silences page's tabs: key, label, and the service's
// SilenceFilter.State ("" = all).
var silenceTabs = []struct{ key, label, state string }{
	{"active", "Active", "active"}, {"pending", "Pending", "pending"}, {"expired", "Expired", "expired"}, {"all", "All", ""},
}

// maxAlertsScanned bounds the look-up of ?alert=<fingerprint>: one page
// of the caller's alerts at the service's largest size.
const maxAlertsScanned = 1000

// handleAlertSilences is the silences page.
func (s *Server) handleAlertSilences(c *fiber.Ctx) error {
	q := queryOf(c)
	form := templates.SilenceForm{Matchers: strings.Join(q["matchers"], "\n"), Duration: "2h"}
	vm := templates.Silences{CanManage: s.mayManageAlerts(c), Prefilled: form.Matchers != ""}
	if s.alerts == nil {
		return s.render(c, templates.Page{Title: "Silences", Area: templates.AreaAlerts}, templates.SilencesView(vm))
	}
	if fp := strings.TrimSpace(q.Get("alert")); fp != "" && vm.CanManage {
		page, err := s.alerts.Alerts(c.UserContext(), alertCaller(c), alerting.AlertFilter{Limit: maxAlertsScanned})
		if err != nil {
			return s.fail(c, err)
		}
		found := false
		for _, a := range page.Alerts {
			if a.Fingerprint == fp {
				form.Matchers, found = strings.Join(labelMatchers(a.Labels), "\n"), true
				break
			}
		}
		if !found {
			form.Error = "That alert is no longer pending or firing; write the matchers yourself."
		}
		vm.Prefilled = true
	}
	return s.silencesPage(c, vm, form, strings.TrimSpace(q.Get("state")), fiber.StatusOK)
}

// silencesPage renders the list of the tab and the form.
func (s *Server) silencesPage(c *fiber.Ctx, vm templates.Silences, form templates.SilenceForm, tab string, status int) error {
	vm.Enabled, vm.Form = true, form
	tab = cmpOr(tab, "active")
	state, ok := "", false
	for _, t := range silenceTabs {
		if t.key == tab {
			state, ok = t.state, true
		}
		vm.Tabs = append(vm.Tabs, templates.Tab{Key: t.key, Label: t.label, Href: "/alerts/silences?state=" + t.key, Current: t.key == tab})
	}
	if !ok {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "state must be active, pending, expired or all"))
	}
	vm.State = strings.ToLower(tab)
	if tab == "all" {
		vm.State = ""
	}
	list, err := s.alerts.Silences(c.UserContext(), alertCaller(c), alerting.SilenceFilter{State: state})
	if err != nil {
		return s.fail(c, err)
	}
	now := s.now()
	for i := range list {
		sl := &list[i]
		st := sl.State(now)
		row := templates.SilenceRow{
			ID: sl.ID, CreatedBy: sl.CreatedBy, Comment: sl.Comment, Starts: fmtTime(sl.StartsAt), StartsAgo: relTime(now, sl.StartsAt),
			Ends: fmtTime(sl.EndsAt), EndsIn: relTime(now, sl.EndsAt), State: st, StateClass: silenceStateClass(st), ExpiredBy: sl.ExpiredBy,
		}
		row.Matchers = matcherStrings(sl.Matchers)
		if vm.CanManage && st != "expired" {
			row.ExpireAction = "/alerts/silences/" + itoa64(sl.ID) + "/expire"
		}
		vm.Rows = append(vm.Rows, row)
	}
	c.Status(status)
	return s.render(c, templates.Page{Title: "Silences", Area: templates.AreaAlerts}, templates.SilencesView(vm))
}

func silenceStateClass(st string) string {
	switch st {
	case "active":
		return "badge ok"
	case "pending":
		return "badge warn"
	}
	return "badge"
}

// relTime is t from now: "3m ago" or "in 2h".
func relTime(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if t.After(now) {
		return "in " + templates.Seconds(t.Sub(now).Round(time.Second).Seconds())
	}
	return templates.Ago(now, t)
}

// maxSilenceComment bounds a silence's comment (characters).
const maxSilenceComment = 1000

// parseSilenceForm reads matchers (one per line, PromQL form), a duration
// ("2h", "1d") or an end time (UTC), and the comment. What cannot be read
// becomes a reason for its field.
func parseSilenceForm(v url.Values, now time.Time) (alerting.Silence, templates.SilenceForm, alerting.FieldErrors) {
	f := templates.SilenceForm{
		Matchers: v.Get("matchers"), Duration: strings.TrimSpace(v.Get("duration")),
		EndsAt: strings.TrimSpace(v.Get("ends_at")), Comment: strings.TrimSpace(v.Get("comment")),
	}
	fe := alerting.FieldErrors{}
	sil := alerting.Silence{Comment: f.Comment, StartsAt: now, Matchers: formMatchers("matchers", f.Matchers, fe)}
	if len(sil.Matchers) == 0 && fe["matchers"] == "" {
		fe.Add("matchers", "at least one matcher, such as alertname=\"Lag\"")
	}
	switch {
	case f.EndsAt != "":
		t, err := sqldb.ParseFormTime("ends_at", f.EndsAt)
		if err != nil {
			fe.Add("ends_at", "%s", delivery.ErrorMessage(err))
		}
		sil.EndsAt = t
	case f.Duration != "":
		d, err := alerting.ParseDuration(f.Duration)
		if err != nil || d <= 0 {
			fe.Add("duration", "want a duration such as 30m, 2h or 1d")
		}
		sil.EndsAt = now.Add(time.Duration(d))
	default:
		fe.Add("duration", "give a duration such as 2h, or an end time")
	}
	if len([]rune(f.Comment)) > maxSilenceComment {
		fe.Add("comment", "at most %d characters", maxSilenceComment)
	}
	return sil, f, fe
}

// handleAlertSilenceCreate stores a silence; a refusal shows the form
// again with the reasons.
func (s *Server) handleAlertSilenceCreate(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	sil, form, fe := parseSilenceForm(formValues(c), s.now())
	vm := templates.Silences{CanManage: s.mayManageAlerts(c), Prefilled: true}
	if err := fe.Err("silence"); err != nil {
		form.Error, form.Errors = delivery.ErrorMessage(err), fe
		return s.silencesPage(c, vm, form, "active", fiber.StatusBadRequest)
	}
	created, err := svc.CreateSilence(c.UserContext(), alertCaller(c), sil)
	if err != nil {
		msg, shown := formError(err)
		if !shown {
			return s.fail(c, err)
		}
		form.Error, form.Errors = msg, fieldErrorsOf(err)
		return s.silencesPage(c, vm, form, "active", statusOf(delivery.ErrorCode(err)))
	}
	return s.flash(c, "/alerts/silences", fmt.Sprintf("Silence #%d created until %s.", created.ID, fmtTime(created.EndsAt)))
}

// handleAlertSilenceExpire ends a silence now.
func (s *Server) handleAlertSilenceExpire(c *fiber.Ctx) error {
	svc, err := s.alertService()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := silenceID(c)
	if err != nil {
		return s.fail(c, err)
	}
	sil, err := svc.ExpireSilence(c.UserContext(), alertCaller(c), id)
	switch code := delivery.ErrorCode(err); {
	case err == nil:
		return s.flash(c, "/alerts/silences", fmt.Sprintf("Silence #%d expired: its alerts are sent again.", sil.ID))
	case code == delivery.ECONFLICT:
		return s.flash(c, "/alerts/silences?state=expired", fmt.Sprintf("Silence #%d had already ended.", id))
	}
	return s.fail(c, err)
}

// silenceID reads :id; anything but a positive number is a 404.
func silenceID(c *fiber.Ctx) (int64, error) { return positiveID(c, "silence") }

// matcherStrings are matchers in PromQL form.
func matcherStrings(ms []tsdb.Matcher) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}
