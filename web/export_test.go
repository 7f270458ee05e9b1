package web

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"switchyard/alerting"
	"switchyard/collector"
	"switchyard/grafana"
	"switchyard/tsdb"
)

// exportRules creates, as admin, a lag rule on the env's group (exported)
// and a rule on one tenant's dead letters, a label only the history has
// (listed as not exported, with the reason).
func exportRules(t *testing.T, e *env) (lag, tenant alerting.Rule) {
	t.Helper()
	ctx := context.Background()
	caller := alerting.Caller{P: mustPrincipal(t, e, "admin")}
	lag, err := e.alerts.CreateRule(ctx, caller, matrixRule("Billing lags"))
	if err != nil {
		t.Fatal(err)
	}
	// Straight into the store: the service checks the metric against the
	// history, which has no dead letters here.
	tenant, err = e.alertStore.CreateRule(ctx, alerting.Rule{Name: "t1 backlog", Severity: alerting.SeverityWarning, Enabled: true,
		Op: alerting.OpGT, Threshold: 100, Expr: alerting.Selector{Metric: collector.MDLQEntries, Agg: alerting.AggSum,
			Matchers: []tsdb.Matcher{{Label: "tenant", Op: tsdb.MatchEqual, Value: "t1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return lag, tenant
}

// hrefs are the links of the elements with this data-testid, unescaped.
func hrefs(body, testid string) []string {
	var out []string
	re := regexp.MustCompile(`<a href="([^"]*)"[^>]*data-testid="` + regexp.QuoteMeta(testid) + `"`)
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// TestExportPageDownloads walks the Export page as an operator would: the
// links to every dashboard, the provisioning file, the rule file with the
// rule it leaves out and why, and the scrape job; pinning a cluster and
// group changes what the links download.
func TestExportPageDownloads(t *testing.T) {
	e := newEnv(t, envOptions{})
	lag, tenant := exportRules(t, e)
	admin := e.as(t, "admin")

	r := admin.get(t, "/export")
	if r.status != http.StatusOK {
		t.Fatalf("/export = %d\n%s", r.status, r.body)
	}
	ds, err := grafana.Dashboards(grafana.Options{})
	if err != nil {
		t.Fatal(err)
	}
	links := hrefs(r.body, "export-dashboard-link")
	if len(links) != len(ds) {
		t.Fatalf("%d dashboard links, want %d (one per dashboard): %v", len(links), len(ds), links)
	}
	for i, d := range ds {
		if !strings.HasPrefix(links[i], "/api/v1/export/dashboards/"+d.UID) {
			t.Errorf("link %d = %q, want dashboard %s", i, links[i], d.UID)
		}
		mustContain(t, "export page", r.body, d.Title, d.File)
	}
	mustContain(t, "export page", r.body, `data-testid="export-provisioning-link"`, `data-testid="export-recommended-link"`,
		`data-testid="export-scrape-link"`, "job_name: switchyard", "credentials_file: /etc/prometheus/switchyard.token",
		"console token create --user prometheus", `type="password" name="token"`)
	if n := testidText(r.body, "export-rules-count"); n != "1" {
		t.Errorf("the rule file holds %q rules, want 1 (the lag rule)", n)
	}
	row := regexp.MustCompile(`(?s)data-testid="export-unexportable-row" data-rule="(\d+)">(.*?)</tr>`).FindStringSubmatch(r.body)
	if row == nil || row[1] != itoa64(tenant.ID) || !strings.Contains(row[2], "t1 backlog") || !strings.Contains(row[2], "tenant") {
		t.Errorf("the tenant rule is not listed as not exported, with a reason naming the tenant label: %v", row)
	}

	// Every download of the page works with the session, and is a file.
	for _, l := range append(links, hrefs(r.body, "export-provisioning-link")[0], hrefs(r.body, "export-rules-link")[0],
		hrefs(r.body, "export-recommended-link")[0], hrefs(r.body, "export-scrape-link")[0]) {
		d := admin.get(t, l)
		if d.status != http.StatusOK || !strings.HasPrefix(d.header.Get("Content-Disposition"), "attachment;") || len(d.body) == 0 {
			t.Errorf("GET %s = %d %q\n%.300s", l, d.status, d.header.Get("Content-Disposition"), d.body)
		}
	}
	rules := admin.get(t, hrefs(r.body, "export-rules-link")[0])
	mustContain(t, "rule file", rules.body, "alert: Billing lags", `expr: `+alerting.PromQL(&lag), "t1 backlog")

	// Pinned: the links carry the pins, the dashboards offer only the
	// pinned values, the rule file keeps the rules that select them.
	r = admin.get(t, "/export?"+url.Values{"cluster": {testCluster}, "group": {testGroup}, "console_url": {"https://console.example.com"}}.Encode())
	if r.status != http.StatusOK {
		t.Fatalf("pinned /export = %d\n%s", r.status, r.body)
	}
	pinned := hrefs(r.body, "export-dashboard-link")
	if len(pinned) != len(ds) {
		t.Fatalf("pinned links: %v", pinned)
	}
	mustContain(t, "pin form", r.body, `value="`+testGroup+`"`, `value="https://console.example.com"`)
	var groupDash string
	for _, l := range pinned {
		u, _ := url.Parse(l)
		if u.Query().Get("cluster") != testCluster || u.Query().Get("group") != testGroup || u.Query().Get("console_url") != "https://console.example.com" {
			t.Errorf("pinned link %q lacks the pins", l)
		}
		d := admin.get(t, l)
		if strings.Contains(d.body, `"name": "group"`) || strings.Contains(d.body, `"name":"group"`) {
			groupDash = d.body
		}
	}
	if groupDash == "" || !strings.Contains(groupDash, testGroup) || !strings.Contains(groupDash, "https://console.example.com") {
		t.Errorf("no pinned dashboard offers the group %s with links to the given console URL", testGroup)
	}
	rl := hrefs(r.body, "export-rules-link")[0]
	if u, _ := url.Parse(rl); u.Query().Get("cluster") != testCluster || u.Query().Get("console_url") != "" {
		t.Errorf("pinned rule link %q", rl)
	}
	r = admin.get(t, "/export?cluster=other")
	if n := testidText(r.body, "export-rules-count"); n != "0" {
		t.Errorf("pinned to another cluster the rule file holds %q rules, want 0", n)
	}
	if r := admin.get(t, "/export?console_url=ftp://x"); r.status != http.StatusBadRequest || !strings.Contains(r.body, "http or https") {
		t.Errorf("a bad console URL = %d, want 400 with the reason", r.status)
	}
}

// TestExportRulesAPI: the rule file as YAML that Prometheus reads, and as
// JSON with the rule it cannot export; filters, and refusals.
func TestExportRulesAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	lag, tenant := exportRules(t, e)
	admin := e.as(t, "admin")

	r := admin.get(t, "/api/v1/export/prometheus-rules")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/yaml") ||
		r.header.Get("Content-Disposition") != `attachment; filename="switchyard-rules.yml"` {
		t.Fatalf("rule file = %d %q %q\n%s", r.status, r.header.Get("Content-Type"), r.header.Get("Content-Disposition"), r.body)
	}
	var file alerting.PromRuleFile
	if err := yaml.Unmarshal([]byte(r.body), &file); err != nil {
		t.Fatalf("the rule file is not YAML: %v\n%s", err, r.body)
	}
	if len(file.Groups) != 1 || len(file.Groups[0].Rules) != 1 || file.Groups[0].Rules[0].Expr != alerting.PromQL(&lag) {
		t.Errorf("rule file groups: %+v", file.Groups)
	}
	mustContain(t, "rule file", r.body, "# Not exported (1)", `"t1 backlog"`)

	r = admin.get(t, "/api/v1/export/prometheus-rules?format=json")
	exp := jsonBody[alerting.RuleExport](t, "export json", r)
	if len(exp.Unexportable) != 1 || exp.Unexportable[0].RuleID != tenant.ID || exp.Unexportable[0].Reason == "" {
		t.Errorf("unexportable: %+v", exp.Unexportable)
	}
	r = admin.get(t, "/api/v1/export/prometheus-rules?format=json&rule="+itoa64(lag.ID))
	if exp := jsonBody[alerting.RuleExport](t, "one rule", r); len(exp.Unexportable) != 0 || len(exp.File.Groups) != 1 ||
		len(exp.File.Groups[0].Rules) != 1 || exp.File.Groups[0].Rules[0].Alert != "Billing lags" {
		t.Errorf("?rule=%d: %+v", lag.ID, exp)
	}
	if r := admin.get(t, "/api/v1/export/prometheus-rules?rule=99999"); r.status != http.StatusNotFound {
		t.Errorf("a rule that does not exist = %d, want 404", r.status)
	}
	for q, want := range map[string]string{
		"?format=xml":  "format",
		"?rule=abc":    "rule",
		"?clusterr=x":  "unknown query parameter clusterr",
		"?console_url": "unknown query parameter console_url",
	} {
		if r := admin.get(t, "/api/v1/export/prometheus-rules"+q); r.status != http.StatusBadRequest || !strings.Contains(r.body, want) {
			t.Errorf("%s = %d, want 400 naming %q\n%s", q, r.status, want, r.body)
		}
	}
	// Otto may export, but sees no rule of kafka:demo: an empty file.
	r = e.as(t, "otto").get(t, "/api/v1/export/prometheus-rules?format=json")
	if exp := jsonBody[alerting.RuleExport](t, "otto", r); len(exp.Unexportable) != 0 || (len(exp.File.Groups) > 0 && len(exp.File.Groups[0].Rules) > 0) {
		t.Errorf("otto's export shows rules he may not view: %+v", exp)
	}
	r = admin.get(t, "/api/v1/export/prometheus-rules/recommended")
	mustContain(t, "recommended rules", r.body, "record:", "alert:", "switchyard-recording")
}

// TestExportDashboardsAPI: the list, each dashboard's JSON (pinned on
// request), the provisioning file and the scrape job.
func TestExportDashboardsAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	r := admin.get(t, "/api/v1/export/dashboards")
	list := jsonBody[[]apiDashboard](t, "dashboards", r)
	ds, err := grafana.Dashboards(grafana.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(ds) {
		t.Fatalf("list %+v, want %d dashboards", list, len(ds))
	}
	for i, d := range ds {
		if list[i] != (apiDashboard{UID: d.UID, Title: d.Title, File: d.File}) {
			t.Errorf("list[%d] = %+v, want %s", i, list[i], d.UID)
		}
		r := admin.get(t, "/api/v1/export/dashboards/"+d.UID)
		if r.status != http.StatusOK || r.body != string(d.JSON) || r.header.Get("Content-Disposition") != `attachment; filename="`+d.File+`"` {
			t.Errorf("dashboard %s = %d %q: not the generated JSON", d.UID, r.status, r.header.Get("Content-Disposition"))
		}
	}
	pinned, err := grafana.Dashboards(grafana.Options{Pins: map[string][]string{"cluster": {"prod"}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := admin.get(t, "/api/v1/export/dashboards/"+ds[0].UID+"?cluster=prod"); r.body != string(pinned[0].JSON) || r.body == string(ds[0].JSON) {
		t.Errorf("?cluster=prod did not pin the dashboard's cluster variable")
	}
	if r := admin.get(t, "/api/v1/export/dashboards/nope"); r.status != http.StatusNotFound || !strings.Contains(r.body, ds[0].UID) {
		t.Errorf("unknown dashboard = %d, want 404 naming the ones there are\n%s", r.status, r.body)
	}
	if r := admin.get(t, "/api/v1/export/dashboards?cluster=x"); r.status != http.StatusBadRequest {
		t.Errorf("the list takes no pins: %d", r.status)
	}
	r = admin.get(t, "/api/v1/export/dashboards/provisioning")
	if r.status != http.StatusOK || r.body != string(grafana.Provisioning()) {
		t.Errorf("provisioning = %d\n%s", r.status, r.body)
	}

	r = admin.get(t, "/api/v1/export/prometheus-scrape")
	var cfg struct {
		ScrapeConfigs []map[string]any `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(r.body), &cfg); err != nil || len(cfg.ScrapeConfigs) != 1 {
		t.Fatalf("scrape job: %v\n%s", err, r.body)
	}
	job := cfg.ScrapeConfigs[0]
	auth, _ := job["authorization"].(map[string]any)
	targets, _ := job["static_configs"].([]any)
	if job["job_name"] != "switchyard" || job["metrics_path"] != "/metrics" || job["scheme"] != "http" || job["scrape_interval"] != "15s" ||
		auth["type"] != "Bearer" || auth["credentials_file"] != scrapeTokenFile || len(targets) != 1 ||
		!strings.Contains(r.body, "example.com") {
		t.Errorf("scrape job:\n%s", r.body)
	}
	mustNotContain(t, "scrape job", r.body, "credentials:")
}

// TestScrapeJobFollowsExternalURL: behind a proxy at a path, the job
// scrapes the external URL's scheme, host and path.
func TestScrapeJobFollowsExternalURL(t *testing.T) {
	b, err := scrapeJobYAML("https://ops.example.com/switchyard")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "scrape job", string(b), "scheme: https", "metrics_path: /switchyard/metrics", "- ops.example.com")
}

// fakeGrafana answers as Grafana's HTTP API does (a recorded contract:
// Grafana cannot run here): POST /api/dashboards/db with the right
// service-account token answers 200 {id, uid, url, status, version,
// slug}; a wrong token 401 {"message":"invalid API key"}. It has no
// /apis (Grafana before 12): 404.
type fakeGrafana struct {
	*httptest.Server
	token string
	mu    sync.Mutex
	auths []string
}

func newFakeGrafana(t *testing.T, token string) *fakeGrafana {
	g := &fakeGrafana{token: token}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.auths = append(g.auths, r.Header.Get("Authorization"))
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+g.token {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"message":"invalid API key","traceID":""}`)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/api/dashboards/db" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"Not found"}`)
			return
		}
		var in struct {
			Dashboard struct {
				UID   string `json:"uid"`
				Title string `json:"title"`
			} `json:"dashboard"`
			FolderUID string `json:"folderUid"`
			Overwrite bool   `json:"overwrite"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !in.Overwrite || in.FolderUID != "ops" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"message":"bad request data"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": 7, "uid": in.Dashboard.UID, "url": "/d/" + in.Dashboard.UID + "/x",
			"status": "success", "version": 3, "slug": "x"})
	}))
	t.Cleanup(g.Close)
	return g
}

// TestExportPushToGrafana: the push form sends every dashboard to the
// Grafana with the token and shows each one's version and link; with a
// token Grafana refuses, each row says so. The token appears in no page,
// no answer and no log line.
func TestExportPushToGrafana(t *testing.T) {
	e := newEnv(t, envOptions{})
	const token = "glsa_s3cretServiceAccountToken_0123456789"
	g := newFakeGrafana(t, token)
	admin := e.as(t, "admin")
	ds, err := grafana.Dashboards(grafana.Options{})
	if err != nil {
		t.Fatal(err)
	}

	r := admin.post(t, "/export/grafana", url.Values{"url": {g.URL}, "token": {token}, "folder_uid": {"ops"}})
	if r.status != http.StatusOK {
		t.Fatalf("push = %d\n%s", r.status, r.body)
	}
	rows := regexp.MustCompile(`data-testid="push-result" data-uid="([^"]*)" data-ok="([^"]*)"`).FindAllStringSubmatch(r.body, -1)
	if len(rows) != len(ds) {
		t.Fatalf("%d result rows, want %d", len(rows), len(ds))
	}
	for _, row := range rows {
		if row[2] != "true" {
			t.Errorf("dashboard %s was not pushed", row[1])
		}
	}
	mustContain(t, "push results", r.body, "version 3", g.URL+"/d/"+ds[0].UID+"/x", `value="`+g.URL+`"`, `value="ops"`)
	mustNotContain(t, "push page", r.body, token)

	r = admin.post(t, "/export/grafana", url.Values{"url": {g.URL}, "token": {"glsa_wrongToken"}, "folder_uid": {"ops"}})
	if r.status != http.StatusOK || strings.Count(r.body, `data-ok="false"`) != len(ds) || strings.Contains(r.body, `data-ok="true"`) {
		t.Fatalf("refused push = %d, want every row failed\n%s", r.status, r.body)
	}
	if msg := testidText(r.body, "push-result-error"); msg == "" {
		t.Errorf("a refused push shows no reason")
	}
	mustNotContain(t, "refused push page", r.body, "glsa_wrongToken")

	// The API: the same results, 200 even when Grafana refused.
	a := admin.api(t, http.MethodPost, "/api/v1/export/grafana", map[string]any{"url": g.URL, "token": token, "folder_uid": "ops", "cluster": testCluster})
	res := jsonBody[apiPush](t, "api push", a)
	if len(res.Results) != len(ds) || res.Failed != 0 || res.Results[0].Version != 3 || res.Results[0].URL != g.URL+"/d/"+ds[0].UID+"/x" {
		t.Errorf("api push: %+v", res)
	}
	a = admin.api(t, http.MethodPost, "/api/v1/export/grafana", map[string]any{"url": g.URL, "token": "glsa_wrongToken", "folder_uid": "ops"})
	if res := jsonBody[apiPush](t, "api refused", a); res.Failed != len(ds) || res.Results[0].OK || res.Results[0].Error == "" {
		t.Errorf("api push with a refused token: %+v", res)
	}
	mustNotContain(t, "api answer", a.body, "glsa_wrongToken")

	g.mu.Lock()
	sentWith := 0
	for _, h := range g.auths {
		if h == "Bearer "+token {
			sentWith++
		}
	}
	g.mu.Unlock()
	if sentWith < 2*len(ds) {
		t.Errorf("the token reached Grafana %d times, want at least once per dashboard and push", sentWith)
	}
	mustNotContain(t, "logs", e.logs.String(), token, "glsa_wrongToken")
	audit := admin.get(t, "/admin/audit")
	mustContain(t, "audit log", audit.body, "grafana.push")
	mustNotContain(t, "audit log", audit.body, token)
}

// TestExportPushRefusals: what cannot be sent is refused with the reason
// per field, the token never echoed; the form needs its CSRF token.
func TestExportPushRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"no url":       {map[string]any{"token": "glsa_x"}, "url"},
		"ftp":          {map[string]any{"url": "ftp://grafana", "token": "glsa_x"}, "url"},
		"user in url":  {map[string]any{"url": "https://u:p@grafana", "token": "glsa_x"}, "url"},
		"no token":     {map[string]any{"url": "https://grafana"}, "token"},
		"token spaces": {map[string]any{"url": "https://grafana", "token": "glsa x\r\nX-Evil: 1"}, "token"},
		"bad folder":   {map[string]any{"url": "https://grafana", "token": "glsa_x", "folder_uid": "../admin"}, "folder_uid"},
	} {
		r := admin.api(t, http.MethodPost, "/api/v1/export/grafana", tc.body)
		fields := fieldErrorsOfBody(t, r)
		if r.status != http.StatusBadRequest || fields[tc.field] == "" {
			t.Errorf("%s = %d fields %v, want 400 with a reason for %s\n%s", name, r.status, fields, tc.field, r.body)
		}
		mustNotContain(t, name, r.body, "X-Evil")
	}
	if r := admin.api(t, http.MethodPost, "/api/v1/export/grafana", map[string]any{"url": "https://g", "token": "x", "password": "y"}); r.status != http.StatusBadRequest ||
		!strings.Contains(r.body, "unknown field") {
		t.Errorf("unknown field = %d\n%s", r.status, r.body)
	}
	r := admin.post(t, "/export/grafana", url.Values{"url": {"not a url"}, "token": {"glsa_formSecret"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, `data-testid="field-error-url"`) {
		t.Errorf("bad form = %d, want the form again with the url's reason\n%s", r.status, r.body)
	}
	mustNotContain(t, "refused form", r.body, "glsa_formSecret")
	if r := admin.send(t, http.MethodPost, "/export/grafana", url.Values{"url": {"https://grafana"}, "token": {"glsa_x"}}); r.status != http.StatusForbidden {
		t.Errorf("push without the CSRF token = %d, want 403", r.status)
	}
}

// fieldErrorsOfBody reads details.fields of an error answer.
func fieldErrorsOfBody(t *testing.T, r response) map[string]string {
	t.Helper()
	var body struct {
		Error struct {
			Details struct {
				Fields map[string]string `json:"fields"`
			} `json:"details"`
		} `json:"error"`
	}
	json.Unmarshal([]byte(r.body), &body) //nolint:errcheck // an empty map fails the caller's check
	return body.Error.Details.Fields
}
