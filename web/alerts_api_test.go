package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/collector"
)

// apiError is the platform's error contract.
type apiError struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

func jsonBody[T any](t *testing.T, what string, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, r.body)
	}
	return v
}

// lagRuleJSON is the test group's total lag above threshold, as the API
// takes a rule.
func lagRuleJSON(name string, threshold any) map[string]any {
	return map[string]any{
		"name": name, "severity": "warning", "op": ">", "threshold": threshold, "for": "1m",
		"expr": map[string]any{"metric": collector.MGroupTotalLag, "matchers": []string{`cluster="demo"`, `group="billing-service"`}},
	}
}

// A rule's life through the API: created, read with its PromQL, updated
// with the version read, refused on a stale version, deleted.
func TestAlertRulesAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")

	r := admin.api(t, http.MethodPost, "/api/v1/alerts/rules", lagRuleJSON("Billing lag", 5))
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d\n%s", r.status, r.body)
	}
	type rule struct {
		ID       int64   `json:"id"`
		Name     string  `json:"name"`
		Version  int64   `json:"version"`
		For      string  `json:"for"`
		Thresh   float64 `json:"threshold"`
		PromQL   string  `json:"promql"`
		CanEdit  bool    `json:"can_edit"`
		State    string  `json:"state"`
		Enabled  bool    `json:"enabled"`
		Created  string  `json:"created_by"`
		Matchers struct {
			Matchers []string `json:"matchers"`
		} `json:"expr"`
	}
	created := jsonBody[rule](t, "create", r)
	loc := r.header.Get("Location")
	if created.ID == 0 || created.Version != 1 || loc != "/api/v1/alerts/rules/"+itoa64(created.ID) || created.Created != "admin" || !created.Enabled {
		t.Fatalf("created = %+v at %q", created, loc)
	}
	got := jsonBody[rule](t, "get", admin.get(t, loc))
	if got.Name != "Billing lag" || got.For != "1m" || !strings.Contains(got.PromQL, collector.MGroupTotalLag) || !strings.Contains(got.PromQL, "> 5") ||
		!got.CanEdit || !slices.Equal(got.Matchers.Matchers, []string{`cluster="demo"`, `group="billing-service"`}) {
		t.Errorf("get = %+v", got)
	}

	upd := lagRuleJSON("Billing lag", 10)
	upd["version"] = 1
	r = admin.api(t, http.MethodPut, loc, upd)
	if r.status != http.StatusOK {
		t.Fatalf("update = %d\n%s", r.status, r.body)
	}
	if u := jsonBody[rule](t, "update", r); u.Version != 2 || u.Thresh != 10 {
		t.Errorf("updated = %+v", u)
	}
	// Someone else's edit from version 1 now conflicts.
	upd["threshold"] = 20
	r = admin.api(t, http.MethodPut, loc, upd)
	if r.status != http.StatusConflict || jsonBody[apiError](t, "stale", r).Error.Code != "ECONFLICT" {
		t.Errorf("stale update = %d\n%s", r.status, r.body)
	}
	delete(upd, "version")
	if r := admin.api(t, http.MethodPut, loc, upd); r.status != http.StatusBadRequest || !strings.Contains(r.body, `"version"`) {
		t.Errorf("update without a version = %d\n%s", r.status, r.body)
	}

	list := jsonBody[struct {
		Rules []rule `json:"rules"`
		Total int    `json:"total"`
	}](t, "list", admin.get(t, "/api/v1/alerts/rules?sort=-name&limit=10"))
	if list.Total != 1 || len(list.Rules) != 1 || list.Rules[0].Thresh != 10 {
		t.Errorf("list = %+v", list)
	}
	hist := admin.get(t, loc+"/history?limit=5")
	if hist.status != http.StatusOK || !strings.Contains(hist.body, `"transitions":[]`) {
		t.Errorf("history = %d %s", hist.status, hist.body)
	}

	if r := admin.api(t, http.MethodDelete, loc, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete = %d\n%s", r.status, r.body)
	}
	for _, path := range []string{loc, "/api/v1/alerts/rules/abc", "/api/v1/alerts/rules/-1", "/api/v1/alerts/rules/99999"} {
		if r := admin.get(t, path); r.status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, r.status)
		}
	}
	if r := admin.api(t, http.MethodDelete, loc, nil); r.status != http.StatusNotFound {
		t.Errorf("second delete = %d, want 404", r.status)
	}
}

// A bad rule is refused with 400 and the reason for each bad field in
// details.fields.
func TestAlertRulesAPIFieldErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	for _, tc := range []struct {
		name, field, reason string
		change              func(map[string]any)
	}{
		{"unknown metric", "expr.metric", "unknown metric", func(r map[string]any) {
			r["expr"] = map[string]any{"metric": "switchyard_no_such_metric"}
		}},
		{"matcher on a label the metric lacks", "expr.matchers", "can match nothing", func(r map[string]any) {
			r["expr"] = map[string]any{"metric": collector.MGroupTotalLag, "matchers": []string{`queue="orders"`}}
		}},
		{"threshold not a number", "threshold", "not a number", func(r map[string]any) { r["threshold"] = "lots" }},
		{"negative for", "for", "negative", func(r map[string]any) { r["for"] = "-5m" }},
		{"unknown severity", "severity", "critical, warning or info", func(r map[string]any) { r["severity"] = "panic" }},
		{"rate without a window", "expr.window", "window", func(r map[string]any) {
			r["expr"] = map[string]any{"metric": collector.MGroupTotalLag, "func": "rate"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := lagRuleJSON("Bad "+tc.name, 5)
			tc.change(body)
			r := admin.api(t, http.MethodPost, "/api/v1/alerts/rules", body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400\n%s", r.status, r.body)
			}
			e := jsonBody[apiError](t, tc.name, r)
			fields, _ := e.Error.Details["fields"].(map[string]any)
			reason, _ := fields[tc.field].(string)
			if e.Error.Code != "EINVALID" || !strings.Contains(reason, tc.reason) {
				t.Errorf("details.fields = %v, want %s: …%s…", fields, tc.field, tc.reason)
			}
		})
	}
	if r := admin.get(t, "/api/v1/alerts/rules"); !strings.Contains(r.body, `"total":0`) {
		t.Errorf("refused rules were stored: %s", r.body)
	}
}

// GET routes refuse parameters they do not read, and bad values with
// 400, never 500.
func TestAlertsAPIQueryParameters(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	for path, want := range map[string]int{
		"/api/v1/alerts?status=firing":          http.StatusBadRequest, // the parameter is state
		"/api/v1/alerts?state=burning":          http.StatusBadRequest,
		"/api/v1/alerts?limit=0":                http.StatusBadRequest,
		"/api/v1/alerts?limit=5000":             http.StatusBadRequest,
		"/api/v1/alerts?offset=-1":              http.StatusBadRequest,
		"/api/v1/alerts?rule=x":                 http.StatusBadRequest,
		"/api/v1/alerts?sort=loudest":           http.StatusBadRequest,
		"/api/v1/alerts/rules?state=sleeping":   http.StatusBadRequest,
		"/api/v1/alerts/rules?page=2":           http.StatusBadRequest,
		"/api/v1/alerts/silences?state=someday": http.StatusBadRequest,
		"/api/v1/alerts/targets?verbose=1":      http.StatusBadRequest,
		"/api/v1/alerts?state=firing&severity=critical&rule=1&q=orders&sort=severity&limit=10&offset=0": http.StatusOK,
	} {
		r := admin.get(t, path)
		if r.status != want {
			t.Errorf("GET %s = %d, want %d\n%s", path, r.status, want, r.body)
		}
	}
	r := admin.get(t, "/api/v1/alerts?status=firing")
	if d := jsonBody[apiError](t, "unknown parameter", r).Error.Details; !strings.Contains(r.body, "unknown query parameter status") || d["known"] == nil {
		t.Errorf("unknown parameter: %s", r.body)
	}
	r = admin.get(t, "/api/v1/alerts")
	if r.status != http.StatusOK || !strings.Contains(r.body, `"alerts":[]`) || !strings.Contains(r.body, `"counts":{"firing":0,"pending":0,"silenced":0}`) {
		t.Errorf("empty alerts = %d %s", r.status, r.body)
	}
	if r := admin.get(t, "/api/v1/alerts/targets"); r.body != `{"targets":[]}` {
		t.Errorf("targets = %s", r.body)
	}
}

// The preview answers the series, the threshold, the intervals and what
// the rule would have sent, over the range asked.
func TestAlertRulePreviewAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	to := time.Now().UTC().Truncate(time.Second)
	from := to.Add(-time.Hour)
	r := admin.api(t, http.MethodPost, "/api/v1/alerts/rules/preview", map[string]any{
		"rule": lagRuleJSON("Preview", 5), "from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)})
	if r.status != http.StatusOK {
		t.Fatalf("preview = %d\n%s", r.status, r.body)
	}
	type previewJSON struct {
		From      time.Time `json:"from"`
		To        time.Time `json:"to"`
		Step      int64     `json:"step_ns"`
		Op        string    `json:"op"`
		Threshold float64   `json:"threshold"`
		Series    []struct {
			Labels map[string]string `json:"labels"`
			Points []struct {
				T time.Time `json:"T"`
				V float64   `json:"V"`
			} `json:"points"`
		} `json:"series"`
		Intervals []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
			From   time.Time         `json:"from"`
			To     time.Time         `json:"to"`
			Open   bool              `json:"open"`
		} `json:"intervals"`
		Notifications int  `json:"notifications"`
		Fired         int  `json:"fired"`
		NoData        bool `json:"no_data"`
		Truncated     bool `json:"truncated"`
	}
	p := jsonBody[previewJSON](t, "preview", r)
	if !p.From.Equal(from) || !p.To.Equal(to) || p.Step <= 0 || p.Op != ">" || p.Threshold != 5 || p.NoData {
		t.Errorf("preview head = from %v to %v step %d op %q threshold %v nodata %v", p.From, p.To, p.Step, p.Op, p.Threshold, p.NoData)
	}
	if len(p.Series) != 1 || p.Series[0].Labels["group"] != testGroup || len(p.Series[0].Points) == 0 {
		t.Fatalf("series = %+v", p.Series)
	}
	var pending, firing bool
	for _, iv := range p.Intervals {
		pending = pending || iv.State == "pending"
		firing = firing || (iv.State == "firing" && iv.Open)
	}
	if !pending || !firing || p.Fired != 1 || p.Notifications != 1 {
		t.Errorf("intervals %+v, fired %d, notifications %d: want pending for 1m, then firing until now (one notification)", p.Intervals, p.Fired, p.Notifications)
	}
	for body, field := range map[string]string{
		`{"from":"2026-01-01T00:00:00Z"}`: "rule",
		`{"rule":{"name":"x"},"extra":1}`: "extra",
	} {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/alerts/rules/preview", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(csrfHeader, admin.csrf)
		for k, v := range admin.cookies {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		r := e.do(t, req)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, field) {
			t.Errorf("preview of %s = %d %s", body, r.status, r.body)
		}
	}
}

// Silences through the API: created with a duration, listed, expired;
// expiring twice conflicts; a bad one says which field.
func TestAlertSilencesAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	r := admin.api(t, http.MethodPost, "/api/v1/alerts/silences", map[string]any{
		"matchers": []string{`alertname="Billing lag"`, `group=~"billing.*"`}, "duration": "2h", "comment": "deploying"})
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d\n%s", r.status, r.body)
	}
	type silenceJSON struct {
		ID        int64     `json:"id"`
		Matchers  []string  `json:"matchers"`
		CreatedBy string    `json:"created_by"`
		EndsAt    time.Time `json:"ends_at"`
		ExpiredBy string    `json:"expired_by"`
	}
	sil := jsonBody[silenceJSON](t, "silence", r)
	if sil.ID == 0 || sil.CreatedBy != "admin" || !slices.Contains(sil.Matchers, `group=~"billing.*"`) || time.Until(sil.EndsAt) < 119*time.Minute {
		t.Errorf("silence = %+v", sil)
	}
	if r := admin.get(t, "/api/v1/alerts/silences?state=active"); !strings.Contains(r.body, `"comment":"deploying"`) {
		t.Errorf("active silences: %s", r.body)
	}
	path := "/api/v1/alerts/silences/" + itoa64(sil.ID)
	r = admin.api(t, http.MethodDelete, path, nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, `"expired_by":"admin"`) {
		t.Errorf("expire = %d %s", r.status, r.body)
	}
	if r := admin.api(t, http.MethodDelete, path, nil); r.status != http.StatusConflict {
		t.Errorf("second expire = %d, want 409", r.status)
	}
	if r := admin.get(t, "/api/v1/alerts/silences?state=active"); r.body != `{"silences":[]}` {
		t.Errorf("active after expiry: %s", r.body)
	}
	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"no comment":       {map[string]any{"matchers": []string{`alertname="x"`}, "duration": "1h"}, "comment"},
		"no end":           {map[string]any{"matchers": []string{`alertname="x"`}, "comment": "c"}, "ends_at"},
		"bad matcher":      {map[string]any{"matchers": []string{`alertname~"x"`}, "duration": "1h", "comment": "c"}, "matchers"},
		"matches all":      {map[string]any{"matchers": []string{`alertname=~".*"`}, "duration": "1h", "comment": "c"}, "matchers"},
		"bad duration":     {map[string]any{"matchers": []string{`alertname="x"`}, "duration": "soon", "comment": "c"}, "duration"},
		"longer than 90 d": {map[string]any{"matchers": []string{`alertname="x"`}, "duration": "100d", "comment": "c"}, "ends_at"},
	} {
		r := admin.api(t, http.MethodPost, "/api/v1/alerts/silences", tc.body)
		fields, _ := jsonBody[apiError](t, name, r).Error.Details["fields"].(map[string]any)
		if r.status != http.StatusBadRequest || fields[tc.field] == nil {
			t.Errorf("%s = %d, fields %v, want a reason for %s", name, r.status, fields, tc.field)
		}
	}
	for _, path := range []string{"/api/v1/alerts/silences/abc", "/api/v1/alerts/silences/424242"} {
		if r := admin.api(t, http.MethodDelete, path, nil); r.status != http.StatusNotFound {
			t.Errorf("DELETE %s = %d, want 404", path, r.status)
		}
	}
}

// The one-click templates answer a draft rule for the labels of the
// query; an unknown kind or a missing label is 400.
func TestAlertTemplatesAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	r := admin.get(t, "/api/v1/alerts/templates/lag_seconds?cluster=demo&group=billing-service")
	if r.status != http.StatusOK || !strings.Contains(r.body, collector.MGroupMaxLagSeconds) || !strings.Contains(r.body, `group=\"billing-service\"`) ||
		!strings.Contains(r.body, `"id":0`) {
		t.Errorf("template = %d %s", r.status, r.body)
	}
	for path, want := range map[string]int{
		"/api/v1/alerts/templates/no_such_kind":                         http.StatusBadRequest,
		"/api/v1/alerts/templates/lag_seconds?cluster=demo":             http.StatusBadRequest,
		"/api/v1/alerts/templates/lag_seconds?cluster=demo&colour=blue": http.StatusBadRequest,
	} {
		if r := admin.get(t, path); r.status != want {
			t.Errorf("GET %s = %d, want %d: %s", path, r.status, want, r.body)
		}
	}
	if r := admin.get(t, "/api/v1/alerts/rules"); !strings.Contains(r.body, `"total":0`) {
		t.Errorf("a template stored a rule: %s", r.body)
	}
}

// Without alerting the pages say so and the API answers 404.
func TestAlertingOff(t *testing.T) {
	e := newEnv(t, envOptions{})
	srv, err := New(Options{Auth: e.store, Store: e.store, Policy: access.Policy{}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.store.IssueToken(context.Background(), mustPrincipal(t, e, "admin"), "admin", "off", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := srv.App().Test(req, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	for _, path := range []string{"/api/v1/alerts", "/api/v1/alerts/rules", "/api/v1/alerts/silences", "/api/v1/alerts/targets"} {
		if code, body := get(path); code != http.StatusNotFound || !strings.Contains(body, "alerting is not configured") {
			t.Errorf("GET %s without alerting = %d %s", path, code, body)
		}
	}
	for _, path := range []string{"/alerts", "/alerts/rules", "/alerts/silences", "/alerts/rules/new", "/alerts/rules/1"} {
		if code, body := get(path); code != http.StatusOK || !strings.Contains(body, `data-testid="alerting-off"`) {
			t.Errorf("GET %s without alerting = %d", path, code)
		}
	}
	// Nor does any other page offer "Alert on this".
	if _, body := get("/"); strings.Contains(body, `data-testid="alert-on"`) {
		t.Errorf("the overview offers alert links without alerting")
	}
}
