package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/collector"
	"switchyard/tsdb"
)

// lagRuleForm is a rule on the test group's total lag, as the rule form
// posts it: the env's history has the lag grow from 0 to 16 over the last
// hour, so above 5 it fires for the last forty minutes or so, and now.
func lagRuleForm(name, threshold string) url.Values {
	return url.Values{
		"name": {name}, "severity": {"critical"}, "enabled": {"1"},
		"expr.metric": {collector.MGroupTotalLag}, "expr.matchers": {`cluster="` + testCluster + `"` + "\n" + `group="` + testGroup + `"`},
		"op": {">"}, "threshold": {threshold}, "annotations.summary": {"{{ $labels.group }} lags {{ $value }} messages"},
		"range": {"1h"},
	}
}

// testidRE finds an element by data-testid and captures its text up to
// the next tag.
func testidText(body, testid string) string {
	m := regexp.MustCompile(`data-testid="` + regexp.QuoteMeta(testid) + `"[^>]*>([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

// TestAlertsFromRuleToSilence walks the pages as an operator would: the
// empty Alerts page, a rule previewed on the history and saved, its page,
// the alert it fires on the Alerts page and the overview, the "Silence"
// button pre-filling a silence that then mutes it.
func TestAlertsFromRuleToSilence(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	admin := e.as(t, "admin")

	r := admin.get(t, "/alerts")
	if r.status != http.StatusOK {
		t.Fatalf("/alerts = %d\n%s", r.status, r.body)
	}
	mustContain(t, "empty alerts page", r.body, `data-testid="alerts-empty"`, "0 rules evaluated every 15s", `data-testid="alerts-new-rule"`,
		`data-testid="targets-empty"`)
	if r = admin.get(t, "/alerts/rules"); !strings.Contains(r.body, `data-testid="rules-empty"`) {
		t.Errorf("empty rules page:\n%s", r.body)
	}
	r = admin.get(t, "/alerts/rules/new")
	mustContain(t, "new rule form", r.body, `data-testid="rule-form"`, `<option value="`+collector.MGroupTotalLag+`">`,
		`data-testid="rule-preview"`, `data-testid="rule-save"`)

	// Preview: the chart with its threshold and the firing band, and what
	// it would have done; the form keeps what was typed.
	form := lagRuleForm("Billing lags", "5")
	r = admin.post(t, "/alerts/rules/preview", form)
	if r.status != http.StatusOK {
		t.Fatalf("preview = %d\n%s", r.status, r.body)
	}
	mustContain(t, "preview", r.body, `data-testid="preview-chart"`, `data-testid="preview-threshold"`,
		`data-testid="preview-band" data-state="firing"`, `data-testid="preview-interval" data-state="firing"`, `value="Billing lags"`)
	if n := testidText(r.body, "preview-fired"); n != "1" {
		t.Errorf("preview fired %q times, want 1 (the lag stays above 5 once it gets there)", n)
	}

	r = admin.post(t, "/alerts/rules", form)
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/alerts/rules/") {
		t.Fatalf("save = %d → %q\n%s", r.status, loc, r.body)
	}
	r = admin.get(t, loc)
	mustContain(t, "rule page", r.body, `data-testid="flash"`, "Billing lags", collector.MGroupTotalLag, "&gt; 5",
		`data-testid="rule-disable"`, `data-testid="rule-edit"`, `data-testid="preview-chart"`, `data-testid="rule-history-empty"`)

	// The evaluator fires it now (for 0s): the Alerts page and the
	// overview show it, with links to the group it is about.
	if err := e.alertEval.Cycle(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	r = admin.get(t, "/alerts")
	mustContain(t, "alerts page", r.body, `data-testid="alert-row"`, `data-state="firing"`, `href="`+loc+`"`,
		`data-label="group"`, `href="/consumers/demo/billing-service"`, "billing-service lags 16 messages")
	if n := testidText(r.body, "count-firing"); n != "1" {
		t.Errorf("firing count = %q, want 1", n)
	}
	r = admin.get(t, "/")
	mustContain(t, "overview head", r.body, `data-testid="firing-head"`, "1 firing", "Billing lags")

	// Silence it from its row.
	m := regexp.MustCompile(`href="(/alerts/silences\?matchers=[^"]+)" data-testid="alert-silence"`).FindStringSubmatch(admin.get(t, "/alerts").body)
	if m == nil {
		t.Fatal("no Silence button on the alert row")
	}
	r = admin.get(t, strings.ReplaceAll(m[1], "&amp;", "&"))
	mustContain(t, "silence form", r.body, `alertname=&#34;Billing lags&#34;`, `group=&#34;billing-service&#34;`)
	r = admin.post(t, "/alerts/silences", url.Values{"matchers": {`alertname="Billing lags"` + "\n" + `group="billing-service"`},
		"duration": {"2h"}, "comment": {"deploying the fix"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("silence = %d\n%s", r.status, r.body)
	}
	r = admin.get(t, "/alerts?state=silenced")
	mustContain(t, "silenced tab", r.body, `data-testid="alert-silenced-by"`, "Billing lags")
	if n := testidText(r.body, "count-silenced"); n != "1" {
		t.Errorf("silenced count = %q, want 1", n)
	}
	if r = admin.get(t, "/"); strings.Contains(r.body, `data-testid="firing-head"`) {
		t.Errorf("the overview still lists a silenced alert as firing")
	}
	r = admin.get(t, "/alerts/silences")
	mustContain(t, "silences", r.body, `data-testid="silence-row"`, "deploying the fix", `data-testid="silence-expire"`)
}

// The rule form keeps what was typed and says what is wrong next to each
// field: first what cannot be read at all, then what the service refuses.
func TestRuleFormShowsFieldErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	form := lagRuleForm("Broken rule", "lots")
	form.Set("for", "-5m")
	r := admin.post(t, "/alerts/rules", form)
	if r.status != http.StatusBadRequest {
		t.Fatalf("unreadable form = %d, want 400", r.status)
	}
	mustContain(t, "unreadable form", r.body, `data-testid="field-error-threshold"`, `&#34;lots&#34; is not a number`,
		`data-testid="field-error-for"`, "must not be negative", `value="Broken rule"`, `value="lots"`, `value="-5m"`)

	form = lagRuleForm("Broken rule", "5")
	form.Set("expr.metric", "switchyard_no_such_metric")
	r = admin.post(t, "/alerts/rules", form)
	if r.status != http.StatusBadRequest {
		t.Fatalf("unknown metric = %d, want 400", r.status)
	}
	mustContain(t, "unknown metric", r.body, `data-testid="field-error-expr.metric"`, "unknown metric", `value="switchyard_no_such_metric"`)

	form = lagRuleForm("Broken rule", "5")
	form.Set("expr.matchers", `queue="orders"`)
	r = admin.post(t, "/alerts/rules", form)
	mustContain(t, "matcher on a missing label", r.body, `data-testid="field-error-expr.matchers"`, "can match nothing")
	// The preview refuses the same way, and nothing was saved.
	r = admin.post(t, "/alerts/rules/preview", form)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, `data-testid="field-error-expr.matchers"`) {
		t.Errorf("preview of a bad rule = %d", r.status)
	}
	if page, err := e.alerts.ListRules(context.Background(), alerting.Caller{P: mustPrincipal(t, e, "admin")}, alerting.RuleFilter{}); err != nil || page.Total != 0 {
		t.Errorf("rules after refused forms: %d, %v", page.Total, err)
	}
}

func mustPrincipal(t *testing.T, e *env, user string) *access.Principal {
	t.Helper()
	p, err := e.store.PrincipalFor(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every alerting form needs the session's CSRF token.
func TestAlertFormsNeedCSRF(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	for path, form := range map[string]url.Values{
		"/alerts/rules":    lagRuleForm("No token", "5"),
		"/alerts/silences": {"matchers": {`alertname="x"`}, "duration": {"1h"}, "comment": {"no token"}},
	} {
		if r := admin.send(t, http.MethodPost, path, form); r.status != http.StatusForbidden {
			t.Errorf("POST %s without the CSRF token = %d, want 403", path, r.status)
		}
	}
	if page, _ := e.alerts.ListRules(context.Background(), alerting.Caller{P: mustPrincipal(t, e, "admin")}, alerting.RuleFilter{}); page.Total != 0 {
		t.Errorf("a rule was created without the token")
	}
	// The rendered forms carry it.
	for _, path := range []string{"/alerts/rules/new", "/alerts/silences"} {
		if r := admin.get(t, path); !strings.Contains(r.body, `name="_csrf" value="`+admin.csrf+`"`) {
			t.Errorf("%s: a form without the CSRF token", path)
		}
	}
}

// topicRule is a rule on a topic's retained messages of the test
// cluster; every topic's series exists, so it fires for any topic.
func topicRuleForm(name, cluster, topic string) url.Values {
	return url.Values{"name": {name}, "severity": {"warning"}, "enabled": {"1"}, "expr.metric": {collector.MKafkaTopicMessages},
		"expr.matchers": {`cluster="` + cluster + `"` + "\n" + `topic="` + topic + `"`}, "op": {">="}, "threshold": {"0"}}
}

// A principal scoped to some topics sees only the rules and alerts on
// them, and may write rules only inside what she may manage.
func TestScopedAlerting(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	by := mustPrincipal(t, e, "admin")
	if err := e.store.SaveRole(ctx, by, access.Role{Name: "alerter", Actions: []access.Action{access.ActionView, access.ActionManageAlerts}}); err != nil {
		t.Fatal(err)
	}
	for user, role := range map[string]string{"olga": "alerter", "vicky": access.RoleViewer} {
		if err := e.store.CreateUser(ctx, by, user, operatorPassword); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.AddBinding(ctx, by, access.Binding{Subject: "user:" + user, Role: role,
			Resources: []string{"kafka:" + testCluster + "/orders.*"}, Tenants: []string{"t1"}}); err != nil {
			t.Fatal(err)
		}
	}
	olga := e.login(t, "olga", operatorPassword)
	vicky := e.login(t, "vicky", operatorPassword)
	admin := e.as(t, "admin")

	// Olga writes rules on her topics, not on another cluster's nor on a
	// topic outside her patterns.
	r := olga.post(t, "/alerts/rules", topicRuleForm("Orders retained", testCluster, testTopic))
	if r.status != http.StatusSeeOther {
		t.Fatalf("olga's rule on her topic = %d\n%s", r.status, r.body)
	}
	for name, form := range map[string]url.Values{
		"another cluster": topicRuleForm("Dev orders", "dev", testTopic),
		"another topic":   topicRuleForm("Payments", testCluster, otherTopic),
	} {
		r := olga.post(t, "/alerts/rules", form)
		if r.status != http.StatusForbidden {
			t.Errorf("olga's rule on %s = %d, want 403", name, r.status)
		}
		mustContain(t, "olga's refused rule on "+name, r.body, `data-testid="form-error"`, "you may not manage alerts", `value="`+form.Get("name")+`"`)
	}
	if r := vicky.post(t, "/alerts/rules", topicRuleForm("Vicky's", testCluster, testTopic)); r.status != http.StatusForbidden {
		t.Errorf("a viewer's rule = %d, want 403", r.status)
	}

	// Admin adds a rule on a topic out of their reach; both fire.
	r = admin.post(t, "/alerts/rules", topicRuleForm("Payments retained", testCluster, otherTopic))
	if r.status != http.StatusSeeOther {
		t.Fatalf("admin's rule = %d\n%s", r.status, r.body)
	}
	paymentsRule := r.header.Get("Location")
	if err := e.alertEval.Cycle(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r := admin.get(t, "/alerts"); strings.Count(r.body, `data-testid="alert-row"`) != 2 {
		t.Fatalf("admin sees %d alerts, want both", strings.Count(r.body, `data-testid="alert-row"`))
	}
	for _, c := range []*client{olga, vicky} {
		r := c.get(t, "/alerts/rules")
		mustContain(t, c.user+"'s rules", r.body, `data-rule="Orders retained"`)
		mustNotContain(t, c.user+"'s rules", r.body, "Payments retained")
		r = c.get(t, "/alerts")
		if n := strings.Count(r.body, `data-testid="alert-row"`); n != 1 || !strings.Contains(r.body, "Orders retained") {
			t.Errorf("%s sees %d alerts, want only the one on her topic", c.user, n)
		}
		if r := c.get(t, paymentsRule); r.status != http.StatusNotFound {
			t.Errorf("%s opens a rule out of reach: %d, want 404", c.user, r.status)
		}
	}
	// Olga may edit her rule (the page offers it), Vicky may only read it.
	rules := olga.get(t, "/alerts/rules").body
	m := regexp.MustCompile(`href="(/alerts/rules/\d+)" data-testid="rule-link">Orders retained`).FindStringSubmatch(rules)
	if m == nil {
		t.Fatalf("no link to olga's rule:\n%s", rules)
	}
	if r := olga.get(t, m[1]); !strings.Contains(r.body, `data-testid="rule-actions"`) {
		t.Errorf("olga's own rule offers no buttons")
	}
	if r := vicky.get(t, m[1]); r.status != http.StatusOK || strings.Contains(r.body, `data-testid="rule-actions"`) || strings.Contains(r.body, `data-testid="rule-save"`) {
		t.Errorf("a viewer's rule page = %d, with buttons: %v", r.status, strings.Contains(r.body, "rule-actions"))
	}
	_ = tsdb.MatchEqual
}

// withMore serves the poller's Kafka views plus more, and fixed RabbitMQ
// views: an unreachable cluster for the overview, queues for the queue
// pages.
type withMore struct {
	*collector.Poller
	kafka  []collector.ClusterView
	rabbit []collector.RabbitView
}

func (w withMore) Latest() []collector.ClusterView { return append(w.Poller.Latest(), w.kafka...) }

func (w withMore) RabbitLatest() []collector.RabbitView { return w.rabbit }

var alertOnRE = regexp.MustCompile(`<a href="([^"]+)" data-testid="alert-on"`)

// alertOnLinks are the "Alert on this" links of a page, unescaped.
func alertOnLinks(body string) []string {
	var out []string
	for _, m := range alertOnRE.FindAllStringSubmatch(body, -1) {
		out = append(out, strings.ReplaceAll(m[1], "&amp;", "&"))
	}
	return out
}

// "Alert on this" appears where each problem shows, for principals who
// may manage alerts, and every link opens the rule form filled in from
// its template (so each passes the labels its template needs).
func TestAlertOnLinks(t *testing.T) {
	e := newEnv(t, envOptions{})
	now := time.Now()
	e.srv.clusters = withMore{Poller: e.poller,
		kafka: []collector.ClusterView{{Name: "down", Polled: true, Error: "connection refused", UnreachableSince: now.Add(-time.Minute)}},
		rabbit: []collector.RabbitView{{Name: "mq", Polled: true, Reachable: true, HasSnapshot: true, Snapshot: collector.RabbitSnapshot{TakenAt: now,
			Queues: []collector.Queue{{VHost: "/", Name: "stuck", Ready: 5, Utilisation: -1}, {VHost: "/", Name: "fine", Ready: 0, Consumers: 2, Utilisation: -1}}}}},
	}
	admin, vera := e.as(t, "admin"), e.as(t, "vera")
	for _, tc := range []struct {
		page  string
		wants []string // a link's query must contain each, in order of the links
	}{
		{"/consumers/demo/billing-service", []string{"template=group_status&cluster=demo&group=billing-service", "template=lag_seconds&cluster=demo&group=billing-service"}},
		{"/", []string{"template=cluster_down&cluster=down&kind=kafka"}},
		{"/queues", []string{"template=queue_no_consumers&cluster=mq&queue=stuck&vhost=%2F"}},
		{"/queues/mq/%2F/fine", []string{"template=queue_no_consumers&cluster=mq&queue=fine&vhost=%2F"}},
		{"/topics/demo/" + testDLQ, []string{"template=dlq_destination&broker=kafka&cluster=demo&destination=" + testDLQ}},
	} {
		links := alertOnLinks(admin.get(t, tc.page).body)
		if len(links) != len(tc.wants) {
			t.Errorf("%s offers %d links %v, want %d", tc.page, len(links), links, len(tc.wants))
			continue
		}
		for i, l := range links {
			u, _ := url.Parse(l)
			if got := sortedQuery(u.Query()); u.Path != "/alerts/rules/new" || got != sortedQuery(mustQuery(tc.wants[i])) {
				t.Errorf("%s link %d = %s, want …?%s", tc.page, i, l, tc.wants[i])
			}
			if r := admin.get(t, l); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="rule-template"`) || !strings.Contains(r.body, `data-testid="rule-save"`) {
				t.Errorf("%s: following %s = %d", tc.page, l, r.status)
			}
		}
		if links := alertOnLinks(vera.get(t, tc.page).body); len(links) != 0 {
			t.Errorf("a viewer is offered %v on %s", links, tc.page)
		}
	}
	// Failure groups: one link per card, for its group.
	body := admin.get(t, "/dead-letters").body
	cards, links := strings.Count(body, `data-testid="group" data-group-id=`), alertOnLinks(body)
	if cards == 0 || len(links) != cards {
		t.Fatalf("dead-letter groups: %d cards, links %v", cards, links)
	}
	first := regexp.MustCompile(`data-testid="group" data-group-id="(\d+)"`).FindStringSubmatch(body)[1]
	if u, _ := url.Parse(links[0]); u.Query().Get("template") != "dlq_group" || u.Query().Get("dlq_group") != first {
		t.Errorf("first card (group %s) links %s", first, links[0])
	}
	if r := admin.get(t, links[0]); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="rule-template"`) {
		t.Errorf("following %s = %d", links[0], r.status)
	}
}

func mustQuery(q string) url.Values {
	v, _ := url.ParseQuery(q)
	return v
}

func sortedQuery(v url.Values) string { return v.Encode() } // Encode sorts by key

// A rule's page edits it with the version it shows (an edit from an older
// version says the rule changed meanwhile), disables it and deletes it.
func TestRulePageEditDisableDelete(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	r := admin.post(t, "/alerts/rules", lagRuleForm("Billing lags", "5"))
	page := r.header.Get("Location")
	if r.status != http.StatusSeeOther {
		t.Fatalf("create = %d", r.status)
	}
	r = admin.get(t, page+"?edit=1")
	mustContain(t, "edit form", r.body, `data-testid="rule-edit-form"`, `name="version" value="1"`, `value="Billing lags"`, `action="`+page+`"`)

	form := lagRuleForm("Billing lags", "10")
	form.Set("version", "1")
	if r := admin.post(t, page, form); r.status != http.StatusSeeOther {
		t.Fatalf("edit = %d\n%s", r.status, r.body)
	}
	mustContain(t, "after the edit", admin.get(t, page).body, "saved (version 2)", "&gt; 10")
	form.Set("threshold", "20")
	r = admin.post(t, page, form)
	if r.status != http.StatusConflict {
		t.Fatalf("edit from version 1 = %d, want 409", r.status)
	}
	mustContain(t, "conflict", r.body, `data-testid="form-conflict"`, `value="20"`)

	if r := admin.post(t, page+"/disable", url.Values{"version": {"2"}}); r.status != http.StatusSeeOther {
		t.Fatalf("disable = %d", r.status)
	}
	mustContain(t, "disabled", admin.get(t, page).body, "disabled: its alerts resolve", `data-testid="rule-enable"`)
	if rows := admin.get(t, "/alerts/rules?state=disabled").body; !strings.Contains(rows, `data-rule="Billing lags" data-state="disabled"`) {
		t.Errorf("rules list does not show it disabled")
	}
	// The stale button says so, and changes nothing.
	admin.post(t, page+"/enable", url.Values{"version": {"2"}})
	mustContain(t, "stale enable", admin.get(t, page).body, "Not changed:", `data-testid="rule-enable"`)

	if r := admin.post(t, page+"/delete", nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/alerts/rules" {
		t.Fatalf("delete = %d → %s", r.status, r.header.Get("Location"))
	}
	mustContain(t, "after delete", admin.get(t, "/alerts/rules").body, "Rule “Billing lags” deleted", `data-testid="rules-empty"`)
	for path, want := range map[string]int{
		page: http.StatusNotFound, "/alerts/rules/abc": http.StatusNotFound, "/alerts/rules/0": http.StatusNotFound,
		"/alerts/rules/new?range=3d": http.StatusBadRequest, "/alerts?state=burning": http.StatusBadRequest,
		"/alerts?page=0": http.StatusBadRequest, "/alerts/rules?sort=size": http.StatusBadRequest,
		"/alerts/silences?state=later": http.StatusBadRequest,
	} {
		if r := admin.get(t, path); r.status != want {
			t.Errorf("GET %s = %d, want %d", path, r.status, want)
		}
	}
}

// The targets panel shows a failing target with its last error and a
// hung one with the time its request has been waiting since, so that an
// operator sees why notifications do not arrive.
func TestAlertsTargetsPanel(t *testing.T) {
	e := newEnv(t, envOptions{})
	now := time.Now()
	svc, err := alerting.NewService(alerting.ServiceOptions{Store: e.alertStore, Evaluator: e.alertEval, History: e.series, Policy: access.Policy{},
		Targets: func() []alerting.TargetStatus {
			return []alerting.TargetStatus{
				{Name: "am", Kind: "alertmanager", URL: "http://am:9093", Sent: 12, LastSuccess: now.Add(-time.Minute)},
				{Name: "pager", Kind: "webhook", URL: "https://pager.example/hook", Sent: 3, Failed: 4, ConsecutiveFailures: 4,
					LastError: "503 Service Unavailable", LastAttempt: now.Add(-10 * time.Second)},
				{Name: "slow", Kind: "webhook", URL: "http://slow:8080/", Queued: 7, InFlightSince: now.Add(-2 * time.Minute)},
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.alerts = svc
	body := e.as(t, "admin").get(t, "/alerts").body
	row := func(name string) string {
		i := strings.Index(body, `data-target="`+name+`"`)
		if i < 0 {
			t.Fatalf("no row for target %s", name)
		}
		end := strings.Index(body[i:], "</tr>")
		return body[i : i+end]
	}
	mustContain(t, "healthy target", row("am"), `data-failing="false" data-hung="false"`, "http://am:9093", "1m ago")
	mustContain(t, "failing target", row("pager"), `data-failing="true"`, `data-testid="target-failing"`, "4 in a row: 503 Service Unavailable")
	mustContain(t, "hung target", row("slow"), `data-hung="true"`, `data-testid="target-hung"`, "waiting since", "2m ago", ">7<")
	if r := e.as(t, "admin").get(t, "/api/v1/alerts/targets"); !strings.Contains(r.body, `"consecutive_failures":4`) || !strings.Contains(r.body, `"in_flight_since"`) {
		t.Errorf("targets API: %s", r.body)
	}
}
