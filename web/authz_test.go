package web

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/collector"
	"switchyard/grafana"
	"switchyard/redrive"
	"switchyard/tsdb"
)

// matrixUsers are the columns of the expected table, in order.
var matrixUsers = []string{"anonymous", "vera", "tess", "otto", "admin"}

// expected is the status each user gets on each route: anonymous, a
// viewer of everything (vera), an operator of kafka:demo/* for tenant t1
// (tess), an operator of kafka:other/* (otto) and an admin. Keyed by route
// name; a route missing here fails the test, so every new route must be
// classified.
var expected = map[string][5]int{
	"healthz":               {200, 200, 200, 200, 200},
	"readyz":                {200, 200, 200, 200, 200},
	"metrics":               {401, 403, 403, 403, 200}, // scrape: admins and the scraper role (TestMetricsNeedAScrapeToken)
	"static":                {200, 200, 200, 200, 200},
	"login.form":            {200, 200, 200, 200, 200},
	"login":                 {401, 401, 401, 401, 401}, // wrong credentials, valid CSRF
	"logout":                {303, 303, 303, 303, 303},
	"overview":              {303, 200, 200, 200, 200},
	"topic.show":            {303, 200, 200, 403, 200},
	"consumer.show":         {303, 200, 200, 403, 200},
	"consumers.list":        {303, 200, 200, 200, 200},
	"topic.messages":        {303, 403, 200, 403, 200},
	"topic.messages.export": {303, 403, 200, 403, 200},
	"queues":                {303, 200, 200, 200, 200},
	"queue.show":            {303, 200, 403, 403, 200}, // rabbitmq:/notify.email.high
	"otlp.metrics":          {401, 403, 403, 403, 200}, // ingest: admins only
	"otlp.traces":           {401, 403, 403, 403, 404}, // ingest: admins only (the matrix env has no trace receiver: 404 after authorization)
	"dead-letters":          {303, 200, 200, 200, 200},
	// A t1 entry of kafka:demo/orders.order.created.v1: otto may not
	// view it and gets 404, not 403. Triage is redrive on console:dlq.
	"dlq.entries":      {303, 200, 200, 200, 200},
	"dlq.entry":        {303, 200, 200, 404, 200},
	"dlq.group.triage": {303, 403, 403, 403, 303},
	// The group of nf1 (t1 and t2 entries of kafka:demo): a redirect to
	// the newest entry each may view; otto views none of it (404).
	"dlq.group.sample": {303, 303, 303, 404, 303},
	// Dead-letter jobs ask for view; the engine authorizes the entries by
	// the job's action: vera (viewer) may not act at all (403), otto's
	// rules reach none of the demo entries: his plan counts 0 (200) and
	// his job has nothing to do (400). A job is seen and cancelled only by
	// whoever may do its action on every entry of it (or an admin): the
	// admin's redrive of t1 entries of kafka:demo is tess's business, not
	// vera's nor otto's (404, as for a job that does not exist; the list
	// is 200 and leaves it out). Cancelling redirects back to the job,
	// with a flash message when it had already ended. Jobs tess may not
	// act on in full: expectedForeignJob.
	"dlq.jobs":       {303, 200, 200, 200, 200},
	"dlq.job.plan":   {303, 403, 200, 200, 200},
	"dlq.job.start":  {303, 403, 303, 400, 303},
	"dlq.job":        {303, 404, 200, 404, 200},
	"dlq.job.cancel": {303, 404, 303, 404, 303},
	"traces":         {303, 200, 200, 200, 200},
	// A trace of t1 spans on kafka:demo/orders.order.created.v1: otto may
	// view none of it and gets 404, as for a trace that does not exist.
	// Searches and the saga page are lists: filtered, 200 for everyone.
	// The search box redirects (an empty one to /traces).
	"trace":       {303, 200, 200, 404, 200},
	"trace.span":  {303, 200, 200, 404, 200},
	"correlation": {303, 200, 200, 200, 200},
	"search":      {303, 303, 303, 303, 303},
	// Export needs export somewhere: operators and admins, not viewers.
	// The rule file is filtered by the alerting service (otto's is
	// empty, 200); a push answers 200 with a result per dashboard.
	"export":         {303, 403, 200, 200, 200},
	"export.grafana": {303, 403, 200, 200, 200},
	// Alerting: reads are view, filtered by the alerting service; the
	// rule of the matrix reads kafka:demo's billing-service group, which
	// otto may not view (404, as for a rule that does not exist). Writes
	// are manage_alerts, which only admin has here; a preview only reads
	// (otto's reads nothing he may not view: an empty preview, 200).
	"alerts":                {303, 200, 200, 200, 200},
	"alerts.rules":          {303, 200, 200, 200, 200},
	"alerts.rule.new":       {303, 200, 200, 200, 200},
	"alerts.rule.create":    {303, 403, 403, 403, 303},
	"alerts.rule.preview":   {303, 200, 200, 200, 200},
	"alerts.rule":           {303, 200, 200, 404, 200},
	"alerts.rule.update":    {303, 403, 403, 403, 303},
	"alerts.rule.enable":    {303, 403, 403, 403, 303},
	"alerts.rule.disable":   {303, 403, 403, 403, 303},
	"alerts.rule.delete":    {303, 403, 403, 403, 303},
	"alerts.silences":       {303, 200, 200, 200, 200},
	"alerts.silence.create": {303, 403, 403, 403, 303},
	"alerts.silence.expire": {303, 403, 403, 403, 303},

	"admin":                 {303, 403, 403, 403, 200},
	"admin.users":           {303, 403, 403, 403, 200},
	"admin.users.create":    {303, 403, 403, 403, 303},
	"admin.users.disable":   {303, 403, 403, 403, 303},
	"admin.users.enable":    {303, 403, 403, 403, 303},
	"admin.users.password":  {303, 403, 403, 403, 303},
	"admin.tokens":          {303, 403, 403, 403, 200},
	"admin.tokens.issue":    {303, 403, 403, 403, 200}, // the result page shows the token once
	"admin.tokens.revoke":   {303, 403, 403, 403, 303},
	"admin.roles":           {303, 403, 403, 403, 200},
	"admin.roles.save":      {303, 403, 403, 403, 303},
	"admin.roles.delete":    {303, 403, 403, 403, 303},
	"admin.bindings":        {303, 403, 403, 403, 200},
	"admin.bindings.add":    {303, 403, 403, 403, 303},
	"admin.bindings.delete": {303, 403, 403, 403, 303},
	"admin.check":           {303, 403, 403, 403, 200},
	"admin.audit":           {303, 403, 403, 403, 200},
	"admin.audit.export":    {303, 403, 403, 403, 200},

	"api.clusters":                 {401, 200, 200, 200, 200},
	"api.consumer-groups":          {401, 200, 200, 200, 200},
	"api.consumer-group":           {401, 200, 200, 403, 200},
	"api.queues":                   {401, 200, 200, 200, 200},
	"api.series":                   {401, 200, 200, 200, 200},
	"api.topic.messages":           {401, 403, 200, 403, 200},
	"api.dlq.entries":              {401, 200, 200, 200, 200},
	"api.dlq.entry":                {401, 200, 200, 404, 200},
	"api.dlq.groups":               {401, 200, 200, 200, 200},
	"api.dlq.group.triage":         {401, 403, 403, 403, 200},
	"api.dlq.jobs":                 {401, 200, 200, 200, 200},
	"api.dlq.jobs.create":          {401, 403, 201, 400, 201},
	"api.dlq.job":                  {401, 404, 200, 404, 200},
	"api.dlq.job.cancel":           {401, 404, 200, 404, 200},
	"api.traces":                   {401, 200, 200, 200, 200},
	"api.trace":                    {401, 200, 200, 404, 200},
	"api.alerts":                   {401, 200, 200, 200, 200},
	"api.alerts.rules":             {401, 200, 200, 200, 200},
	"api.alerts.rules.create":      {401, 403, 403, 403, 201},
	"api.alerts.rules.preview":     {401, 200, 200, 200, 200},
	"api.alerts.rule":              {401, 200, 200, 404, 200},
	"api.alerts.rule.update":       {401, 403, 403, 403, 200},
	"api.alerts.rule.delete":       {401, 403, 403, 403, 204},
	"api.alerts.rule.history":      {401, 200, 200, 404, 200},
	"api.alerts.silences":          {401, 200, 200, 200, 200},
	"api.alerts.silences.create":   {401, 403, 403, 403, 201},
	"api.alerts.silence.expire":    {401, 403, 403, 403, 200},
	"api.alerts.targets":           {401, 200, 200, 200, 200},
	"api.alerts.template":          {401, 200, 200, 200, 200},
	"api.export.rules":             {401, 403, 200, 200, 200},
	"api.export.rules.recommended": {401, 403, 200, 200, 200},
	"api.export.scrape":            {401, 403, 200, 200, 200},
	"api.export.dashboards":        {401, 403, 200, 200, 200},
	"api.export.provisioning":      {401, 403, 200, 200, 200},
	"api.export.dashboard":         {401, 403, 200, 200, 200},
	"api.export.grafana":           {401, 403, 200, 200, 200},
	"api.admin.users":              {401, 403, 403, 403, 200},
	"api.admin.bindings":           {401, 403, 403, 403, 200},
	"api.admin.bindings.add":       {401, 403, 403, 403, 201},
	"api.admin.bindings.delete":    {401, 403, 403, 403, 204},
	"api.admin.tokens.issue":       {401, 403, 403, 403, 201},
	// The demo's "deploy the fix" switch changes how the platform's
	// services behave: admin only.
	"api.demo.fixes":          {401, 403, 403, 403, 200},
	"api.demo.fixes.deploy":   {401, 403, 403, 403, 200},
	"api.demo.fixes.rollback": {401, 403, 403, 403, 204},
}

// expectedForeignJob is the status of the job routes on redrives admin
// started that tess may not do in full: one of t2 entries and one of t1
// and t2 entries of kafka:demo, each waiting on its canary. Only admin
// sees and cancels them; everyone else gets 404, as for a job that does
// not exist, and the job keeps running.
var expectedForeignJob = map[string][5]int{
	"dlq.job":            {303, 404, 404, 404, 200},
	"dlq.job.cancel":     {303, 404, 404, 404, 303},
	"api.dlq.job":        {401, 404, 404, 404, 200},
	"api.dlq.job.cancel": {401, 404, 404, 404, 200},
}

// matrixGrafanaToken is the token the matrix's Grafana takes.
const matrixGrafanaToken = "glsa_matrix"

// matrixQueue is the RabbitMQ queue of queue.show in the matrix.
const matrixQueue = "notify.email.high"

// matrixFixtures are real objects for the path parameters of admin
// mutations, so that the admin's requests succeed (and nobody else's).
type matrixFixtures struct {
	tokenID, bindingPage, bindingAPI int64
	dlqEntry, dlqGroup               int64
	// dlqJob is a job that waits on its canary (redrive of two extra
	// demo entries by admin); apiCancel are more such jobs, one for each
	// user who may cancel through the API, so that each cancels a running
	// job. start and create are the entries each user's new job
	// quarantines.
	dlqJob        int64
	apiCancel     map[string]int64
	start, create map[string]int64
	// foreignJobs are admin's jobs of expectedForeignJob by kind ("t2",
	// "t1+t2"): the one of the page routes and the one the API cancels.
	foreignJobs map[string][2]int64
	// trace is a trace of t1 spans on kafka:demo (seedMatrixTrace).
	trace string
	// rules are alert rules on kafka:demo's billing-service group by
	// route name (the one that is read, and one for each mutation, so
	// that admin's each change a rule at version 1); silences likewise.
	rules, silences map[string]int64
	// grafana is a recorded-contract Grafana the export pushes go to.
	grafana *fakeGrafana
}

func setupMatrix(t *testing.T, e *env) matrixFixtures {
	t.Helper()
	ctx := context.Background()
	by, err := e.store.PrincipalFor(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateUser(ctx, by, "target", "target password 123"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.IssueToken(ctx, by, "target", "to revoke", time.Hour); err != nil {
		t.Fatal(err)
	}
	toks, err := e.store.ListTokens(ctx, "target")
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens of target: %v %v", toks, err)
	}
	if err := e.store.SaveRole(ctx, by, access.Role{Name: "scratch-del", Actions: []access.Action{access.ActionView}}); err != nil {
		t.Fatal(err)
	}
	f := matrixFixtures{tokenID: toks[0].ID, dlqEntry: e.dlqIDs["nf1"], trace: seedMatrixTrace(t, e),
		rules: map[string]int64{}, silences: map[string]int64{}, grafana: newFakeGrafana(t, matrixGrafanaToken)}
	for _, name := range []string{"alerts.rule", "alerts.rule.update", "alerts.rule.enable", "alerts.rule.disable", "alerts.rule.delete",
		"api.alerts.rule.update", "api.alerts.rule.delete"} {
		r, err := e.alerts.CreateRule(ctx, alerting.Caller{P: by}, matrixRule("matrix "+name))
		if err != nil {
			t.Fatalf("rule for %s: %v", name, err)
		}
		f.rules[name] = r.ID
	}
	for _, name := range []string{"alerts.silence.expire", "api.alerts.silence.expire"} {
		sil, err := e.alerts.CreateSilence(ctx, alerting.Caller{P: by}, alerting.Silence{
			Matchers: []tsdb.Matcher{{Label: "alertname", Op: tsdb.MatchEqual, Value: "matrix " + name}},
			Comment:  "matrix", EndsAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatalf("silence for %s: %v", name, err)
		}
		f.silences[name] = sil.ID
	}
	entry, err := e.dlq.Entry(ctx, f.dlqEntry)
	if err != nil {
		t.Fatal(err)
	}
	f.dlqGroup = entry.GroupID
	for _, id := range []*int64{&f.bindingPage, &f.bindingAPI} {
		if *id, err = e.store.AddBinding(ctx, by, access.Binding{Subject: "user:target", Role: access.RoleViewer, Resources: []string{"kafka:demo/x"}, Tenants: []string{"*"}}); err != nil {
			t.Fatal(err)
		}
	}

	jobs := e.withJobs(t)
	more := seedMoreDLQ(t, e.dlq, "t1", 0, "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10")
	canary := func(a, b string) int64 {
		j, err := jobs.engine.Start(ctx, redrive.Actor{P: by}, redrive.Request{
			Action: redrive.ActionRedrive, Selector: redrive.Selector{IDs: []int64{more[a], more[b]}},
			Canary: 1, CanaryWindow: time.Hour, Reason: "matrix", Force: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	f.dlqJob = canary("m1", "m2")
	f.apiCancel = map[string]int64{"tess": canary("m3", "m4"), "admin": canary("m5", "m6")}
	f.start = map[string]int64{"tess": more["m7"], "admin": more["m8"]}
	f.create = map[string]int64{"tess": more["m9"], "admin": more["m10"]}
	t2 := seedMoreDLQ(t, e.dlq, "t2", 100, "f1", "f2", "f3", "f4", "f5", "f6")
	t1 := seedMoreDLQ(t, e.dlq, "t1", 200, "f7", "f8")
	job := func(a, b int64) int64 {
		j, err := jobs.engine.Start(ctx, redrive.Actor{P: by}, redrive.Request{
			Action: redrive.ActionRedrive, Selector: redrive.Selector{IDs: []int64{a, b}},
			Canary: 1, CanaryWindow: time.Hour, Reason: "foreign", Force: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	f.foreignJobs = map[string][2]int64{
		"t2":    {job(t2["f1"], t2["f2"]), job(t2["f3"], t2["f4"])},
		"t1+t2": {job(t1["f7"], t2["f5"]), job(t1["f8"], t2["f6"])},
	}
	return f
}

// fillPath puts real names into a route's parameters.
func fillPath(rt Route, f matrixFixtures, user string) string {
	p := rt.Path
	name := "target"
	if rt.Name == "admin.roles.delete" {
		name = "scratch-del"
	}
	id := f.tokenID
	switch rt.Name {
	case "admin.bindings.delete":
		id = f.bindingPage
	case "api.admin.bindings.delete":
		id = f.bindingAPI
	case "dlq.entry", "api.dlq.entry":
		id = f.dlqEntry
	case "dlq.group.triage", "api.dlq.group.triage", "dlq.group.sample":
		id = f.dlqGroup
	case "dlq.job", "dlq.job.cancel", "api.dlq.job":
		id = f.dlqJob
	case "api.dlq.job.cancel":
		id = cmp.Or(f.apiCancel[user], f.dlqJob)
	case "alerts.rule", "api.alerts.rule", "api.alerts.rule.history":
		id = f.rules["alerts.rule"]
	case "alerts.rule.update", "alerts.rule.enable", "alerts.rule.disable", "alerts.rule.delete", "api.alerts.rule.update", "api.alerts.rule.delete":
		id = f.rules[rt.Name]
	case "alerts.silence.expire", "api.alerts.silence.expire":
		id = f.silences[rt.Name]
	}
	if rt.Name == "api.series" {
		p += "?name=switchyard_kafka_up"
	}
	switch rt.Name {
	case "trace", "api.trace":
		return strings.Replace(p, ":id", f.trace, 1)
	case "trace.span":
		return strings.NewReplacer(":id", f.trace, ":span", spanID(2).String()).Replace(p)
	case "correlation":
		return strings.Replace(p, ":id", "corr-matrix", 1)
	case "api.alerts.template":
		return strings.Replace(p, ":kind", alerting.TemplateGroupStatus, 1) + "?" + url.Values{"cluster": {testCluster}, "group": {testGroup}}.Encode()
	case "api.export.dashboard":
		ds, err := grafana.Dashboards(grafana.Options{})
		if err != nil || len(ds) == 0 {
			panic(fmt.Sprintf("no dashboards: %v", err))
		}
		return strings.Replace(p, ":uid", ds[0].UID, 1)
	}
	return strings.NewReplacer(
		":cluster", testCluster, ":topic", envTopic, ":group", testGroup,
		":vhost", "%2F", ":queue", matrixQueue, ":code", "PAYMENT_DECLINED",
		":name", name, ":id", strconv.FormatInt(id, 10), "*", "app.css",
	).Replace(p)
}

// formFor is a valid body for each mutation, so that the matrix tests
// authorization and not validation.
func formFor(name, user string, f matrixFixtures) url.Values {
	switch name {
	case "login":
		return url.Values{"username": {"nobody-" + user}, "password": {"not the right password"}}
	case "admin.users.create":
		return url.Values{"name": {"newbie-" + user}, "password": {"a long enough password"}}
	case "admin.users.password":
		return url.Values{"password": {"another long password"}}
	case "admin.tokens.issue":
		return url.Values{"user": {"target"}, "name": {"matrix " + user}, "ttl": {"24h"}}
	case "admin.roles.save":
		return url.Values{"name": {"scratch-" + user}, "actions": {"view", "read_payload"}}
	case "dlq.group.triage":
		return url.Values{"state": {"acknowledged"}, "owner": {user}, "note": {"matrix"}}
	case "dlq.job.plan":
		return url.Values{"action": {"redrive"}, "ids": {strconv.FormatInt(f.dlqEntry, 10)}}
	case "dlq.job.start":
		return url.Values{"action": {"quarantine"}, "ids": {strconv.FormatInt(cmp.Or(f.start[user], f.start["tess"]), 10)}, "reason": {"matrix"}}
	case "admin.bindings.add":
		return url.Values{"subject": {"user:target"}, "role": {"viewer"}, "resources": {"kafka:demo/orders.*\nkafka:demo/group/x"}, "tenants": {"t1, t2"}}
	case "alerts.rule.create", "alerts.rule.preview", "alerts.rule.update":
		v := matrixRuleForm("matrix " + name + " " + user)
		if name == "alerts.rule.update" {
			v.Set("version", "1")
		}
		return v
	case "alerts.rule.enable", "alerts.rule.disable":
		return url.Values{"version": {"1"}}
	case "alerts.silence.create":
		return url.Values{"matchers": {`alertname="matrix"`}, "duration": {"1h"}, "comment": {"matrix " + user}}
	case "export.grafana":
		return url.Values{"url": {f.grafana.URL}, "token": {matrixGrafanaToken}, "folder_uid": {"ops"}}
	}
	return url.Values{}
}

// matrixRule reads kafka:demo's billing-service group: viewers of
// everything and of kafka:demo/* see it, otto does not.
func matrixRule(name string) alerting.Rule {
	return alerting.Rule{Name: name, Severity: alerting.SeverityWarning, Enabled: true, Op: alerting.OpGT, Threshold: 1000,
		Expr: alerting.Selector{Metric: collector.MGroupTotalLag, Matchers: []tsdb.Matcher{
			{Label: "cluster", Op: tsdb.MatchEqual, Value: testCluster}, {Label: "group", Op: tsdb.MatchEqual, Value: testGroup}}}}
}

// matrixRuleForm is matrixRule as the rule form posts it.
func matrixRuleForm(name string) url.Values {
	return url.Values{"name": {name}, "severity": {"warning"}, "enabled": {"1"}, "expr.metric": {collector.MGroupTotalLag},
		"expr.matchers": {`cluster="` + testCluster + `"` + "\n" + `group="` + testGroup + `"`}, "op": {">"}, "threshold": {"1000"}}
}

// matrixRuleJSON is matrixRule as the API takes it.
func matrixRuleJSON(name string, version int64) map[string]any {
	r := map[string]any{"name": name, "severity": "warning", "op": ">", "threshold": 1000,
		"expr": map[string]any{"metric": collector.MGroupTotalLag, "matchers": []string{`cluster="` + testCluster + `"`, `group="` + testGroup + `"`}}}
	if version > 0 {
		r["version"] = version
	}
	return r
}

func jsonFor(name, user string, f matrixFixtures) any {
	switch name {
	case "api.dlq.jobs.create":
		return redrive.Request{Action: redrive.ActionQuarantine, Reason: "matrix",
			Selector: redrive.Selector{IDs: []int64{cmp.Or(f.create[user], f.create["tess"])}}}
	case "api.admin.bindings.add":
		return map[string]any{"subject": "user:target", "role": "viewer", "resources": []string{"kafka:demo/api"}, "tenants": []string{"*"}}
	case "api.admin.tokens.issue":
		return map[string]any{"user": "target", "name": "api token", "ttl": "1h"}
	case "api.dlq.group.triage":
		return map[string]any{"state": "resolved", "note": "matrix"}
	case "api.demo.fixes.deploy":
		return map[string]any{"code": "PAYMENT_DECLINED"}
	case "otlp.metrics", "otlp.traces":
		return map[string]any{} // an empty OTLP JSON export
	case "api.alerts.rules.create":
		return matrixRuleJSON("matrix api "+user, 0)
	case "api.alerts.rules.preview":
		return map[string]any{"rule": matrixRuleJSON("matrix preview", 0)}
	case "api.alerts.rule.update":
		return matrixRuleJSON("matrix api update "+user, 1)
	case "api.export.grafana":
		return map[string]any{"url": f.grafana.URL, "token": matrixGrafanaToken, "folder_uid": "ops"}
	case "api.alerts.silences.create":
		return map[string]any{"matchers": []string{`alertname="matrix api"`}, "duration": "1h", "comment": "matrix " + user}
	}
	return nil
}

// TestAuthorizationMatrix walks every route of Routes() as every kind of
// user and checks the status against the expected table.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t, envOptions{rabbitViews: []collector.RabbitView{{
		Name: testCluster, Polled: true, Reachable: true, HasSnapshot: true,
		Snapshot: collector.RabbitSnapshot{TakenAt: time.Now(), Queues: []collector.Queue{{VHost: "/", Name: matrixQueue, Utilisation: -1}}},
	}}})
	f := setupMatrix(t, e)
	routes := Routes()
	// Logout last: it ends the session the other requests ride on.
	slices.SortStableFunc(routes, func(a, b Route) int {
		switch {
		case a.Name == "logout" && b.Name != "logout":
			return 1
		case b.Name == "logout" && a.Name != "logout":
			return -1
		}
		return 0
	})
	for _, rt := range routes {
		if _, ok := expected[rt.Name]; !ok {
			t.Errorf("route %s %s (%s) has no expected statuses: classify it in the matrix", rt.Method, rt.Path, rt.Name)
		}
	}
	for name := range expectedForeignJob {
		if !slices.ContainsFunc(routes, func(rt Route) bool { return rt.Name == name }) {
			t.Errorf("expectedForeignJob names route %s, which does not exist", name)
		}
	}
	for i, user := range matrixUsers {
		c := e.anon()
		if user != "anonymous" {
			c = e.login(t, user, passwords[user])
		}
		// Jobs tess may not act on in full, before logout ends the session.
		for _, rt := range routes {
			want, ok := expectedForeignJob[rt.Name]
			if !ok {
				continue
			}
			for _, kind := range []string{"t2", "t1+t2"} {
				id := f.foreignJobs[kind][0]
				if rt.Name == "api.dlq.job.cancel" {
					id = f.foreignJobs[kind][1]
				}
				path := strings.Replace(rt.Path, ":id", strconv.FormatInt(id, 10), 1)
				var r response
				switch {
				case rt.Method == fiber.MethodGet:
					r = c.get(t, path)
				case strings.HasPrefix(rt.Path, "/api/"):
					r = c.api(t, rt.Method, path, nil)
				default:
					r = c.post(t, path, nil)
				}
				if r.status != want[i] {
					t.Errorf("%s %s (admin's %s job) as %s = %d, want %d\n%.300s", rt.Method, path, kind, user, r.status, want[i], r.body)
				}
			}
		}
		for _, rt := range routes {
			want, ok := expected[rt.Name]
			if !ok {
				continue
			}
			path := fillPath(rt, f, user)
			var r response
			switch {
			case rt.Method == fiber.MethodGet:
				r = c.get(t, path)
			case rt.Name == "login":
				form := c.get(t, "/login")
				m := csrfInputRE.FindStringSubmatch(form.body)
				if m == nil {
					t.Fatalf("no login CSRF for %s", user)
				}
				body := formFor(rt.Name, user, f)
				body.Set("_csrf", m[1])
				r = c.send(t, rt.Method, path, body)
			case strings.HasPrefix(rt.Path, "/api/") || strings.HasPrefix(rt.Path, "/v1/"):
				r = c.api(t, rt.Method, path, jsonFor(rt.Name, user, f))
			default:
				r = c.post(t, path, formFor(rt.Name, user, f))
			}
			if r.status != want[i] {
				t.Errorf("%s %s as %s = %d, want %d\n%.300s", rt.Method, path, user, r.status, want[i], r.body)
			}
			if r.status == http.StatusSeeOther && user == "anonymous" && !strings.HasPrefix(r.header.Get("Location"), "/login") {
				t.Errorf("%s %s as anonymous redirects to %q, want the login form", rt.Method, path, r.header.Get("Location"))
			}
		}
	}
}
