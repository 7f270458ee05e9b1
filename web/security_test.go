package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"switchyard/access"
)

func bindingCount(t *testing.T, e *env) int {
	t.Helper()
	bs, err := e.store.ListBindings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(bs)
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.as(t, "admin")
	before := bindingCount(t, e)
	form := func() url.Values {
		return url.Values{"subject": {"user:vera"}, "role": {"operator"}, "resources": {"kafka:demo/*"}, "tenants": {"*"}}
	}
	// No token, a wrong token: refused, nothing changed.
	for name, token := range map[string]string{"missing": "", "wrong": strings.Repeat("x", len(a.csrf))} {
		f := form()
		if token != "" {
			f.Set("_csrf", token)
		}
		r := a.send(t, http.MethodPost, "/admin/bindings", f)
		if r.status != http.StatusForbidden {
			t.Errorf("%s CSRF token: status %d, want 403", name, r.status)
		}
		mustContain(t, name+" CSRF page", r.body, "did not come from the console")
		if n := bindingCount(t, e); n != before {
			t.Errorf("%s CSRF token: bindings %d → %d", name, before, n)
		}
	}
	// The JSON API with a session needs the header just the same.
	r := a.api(t, http.MethodPost, "/api/v1/admin/bindings", map[string]any{"subject": "user:vera", "role": "viewer", "resources": []string{"*"}, "tenants": []string{"*"}})
	if r.status != http.StatusCreated {
		t.Errorf("session API POST with X-CSRF-Token = %d, want 201: %s", r.status, r.body)
	}
	saved := a.csrf
	a.csrf = "nope"
	if r := a.api(t, http.MethodPost, "/api/v1/admin/bindings", map[string]any{"subject": "user:vera", "role": "viewer", "resources": []string{"*"}, "tenants": []string{"*"}}); r.status != http.StatusForbidden {
		t.Errorf("session API POST with a wrong header = %d, want 403", r.status)
	}
	a.csrf = saved
	// The right token works.
	if r := a.post(t, "/admin/bindings", form()); r.status != http.StatusSeeOther {
		t.Fatalf("POST with the token = %d: %s", r.status, r.body)
	}
	if n := bindingCount(t, e); n != before+2 {
		t.Errorf("bindings = %d, want %d", n, before+2)
	}
	// A token-authenticated request has no ambient credentials: no CSRF.
	tok, err := e.store.CreateToken(context.Background(), "admin", "automation", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r = e.bearer(t, tok, http.MethodPost, "/api/v1/admin/bindings", map[string]any{"subject": "group:ops", "role": "viewer", "resources": []string{"kafka:demo/*"}, "tenants": []string{"*"}, "proxy": true})
	if r.status != http.StatusCreated {
		t.Fatalf("Bearer POST = %d: %s", r.status, r.body)
	}
	// …and is audited as an API mutation.
	recs, _, err := e.audit.List(context.Background(), access.AuditFilter{Action: "api.mutation"})
	if err != nil || len(recs) != 1 || recs[0].Actor != "admin" || recs[0].Outcome != "success" || recs[0].Method != access.MethodToken {
		t.Errorf("api.mutation audit = %+v, %v; want one success by admin's token", recs, err)
	}
	// A refused token mutation is audited as denied.
	vtok, err := e.store.CreateToken(context.Background(), "vera", "script", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.bearer(t, vtok, http.MethodPost, "/api/v1/admin/tokens", map[string]any{"user": "vera", "name": "x"}); r.status != http.StatusForbidden {
		t.Errorf("viewer token POST = %d, want 403", r.status)
	}
	recs, _, _ = e.audit.List(context.Background(), access.AuditFilter{Action: "api.mutation", Outcome: "denied"})
	if len(recs) != 1 || recs[0].Actor != "vera" {
		t.Errorf("denied api.mutation audit = %+v", recs)
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	c := e.anon()
	form := c.get(t, "/login?next=/consumers")
	m := csrfInputRE.FindStringSubmatch(form.body)
	if m == nil {
		t.Fatal("no CSRF field on the login form")
	}
	var loginCookie *http.Cookie
	for _, ck := range form.cookies {
		if ck.Name == loginCSRFCookie {
			loginCookie = ck
		}
	}
	if loginCookie == nil || !loginCookie.HttpOnly || loginCookie.SameSite != http.SameSiteStrictMode || loginCookie.Value != m[1] {
		t.Errorf("login CSRF cookie = %+v, want HttpOnly, SameSite=Strict, the form's token", loginCookie)
	}
	mustContain(t, "login form", form.body, `name="next" value="/consumers"`)

	// No CSRF token: refused before the password is even checked.
	r := c.send(t, http.MethodPost, "/login", url.Values{"username": {"admin"}, "password": {adminPassword}})
	if r.status != http.StatusForbidden || c.cookies[sessionCookie] != "" {
		t.Errorf("login without CSRF = %d, session %q", r.status, c.cookies[sessionCookie])
	}

	// Wrong password and unknown user: one message, and an audit row.
	for _, user := range []string{"admin", "nobody"} {
		r = c.send(t, http.MethodPost, "/login", url.Values{"username": {user}, "password": {"wrong password!!"}, "_csrf": {m[1]}})
		if r.status != http.StatusUnauthorized {
			t.Errorf("wrong credentials for %s = %d, want 401", user, r.status)
		}
		mustContain(t, "wrong password", r.body, `data-testid="form-error">Wrong user name or password.<`)
	}
	recs, _, err := e.audit.List(ctx, access.AuditFilter{Action: "login", Outcome: "failure"})
	if err != nil || len(recs) != 2 {
		t.Errorf("login failures audited = %d (%v), want 2", len(recs), err)
	}

	// Throttled: after repeated failures the form says how long to wait,
	// even for the right password.
	var last response
	for range 10 {
		last = c.send(t, http.MethodPost, "/login", url.Values{"username": {"vera"}, "password": {"wrong password!!"}, "_csrf": {m[1]}})
		if last.status == http.StatusTooManyRequests {
			break
		}
	}
	if last.status != http.StatusTooManyRequests {
		t.Fatalf("never throttled: last status %d", last.status)
	}
	mustContain(t, "throttled", last.body, "Too many attempts, try again in 15 minutes")
	r = c.send(t, http.MethodPost, "/login", url.Values{"username": {"vera"}, "password": {viewerPassword}, "_csrf": {m[1]}})
	if r.status != http.StatusTooManyRequests {
		t.Errorf("right password while throttled = %d, want 429", r.status)
	}

	// Success: session cookie flags, redirect to next.
	r = c.send(t, http.MethodPost, "/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "_csrf": {m[1]}, "next": {"/consumers?sort=name"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/consumers?sort=name" {
		t.Errorf("login = %d to %q, want 303 to next", r.status, r.header.Get("Location"))
	}
	var sess *http.Cookie
	for _, ck := range r.cookies {
		if ck.Name == sessionCookie {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" || sess.Secure {
		t.Errorf("session cookie = %+v; want HttpOnly, SameSite=Lax, Path=/, not Secure on plain HTTP", sess)
	}
	if !strings.Contains(strings.Join(r.header.Values("Set-Cookie"), "\n"), sessionCookie+"=") {
		t.Error("no session cookie set")
	}
	if p := c.get(t, "/consumers"); p.status != http.StatusOK {
		t.Errorf("after login GET /consumers = %d", p.status)
	}

	// Open redirects are ignored.
	for _, next := range []string{"//evil.com", "https://evil.com/", "/\\evil.com", "evil.com"} {
		c2 := e.anon()
		f2 := c2.get(t, "/login?next="+url.QueryEscape(next))
		mustNotContain(t, "form next", f2.body, "evil.com")
		tok := csrfInputRE.FindStringSubmatch(f2.body)[1]
		r := c2.send(t, http.MethodPost, "/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "_csrf": {tok}, "next": {next}})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
			t.Errorf("next=%s: redirected to %q, want /", next, r.header.Get("Location"))
		}
	}

	// Logout ends the session on the server: the old cookie is useless.
	old := c.cookies[sessionCookie]
	page := c.get(t, "/queues")
	tok := csrfMetaRE.FindStringSubmatch(page.body)[1]
	r = c.send(t, http.MethodPost, "/logout", url.Values{"_csrf": {tok}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Errorf("logout = %d to %q", r.status, r.header.Get("Location"))
	}
	if c.cookies[sessionCookie] != "" {
		t.Error("logout did not clear the cookie")
	}
	replay := e.anon()
	replay.cookies[sessionCookie] = old
	if r := replay.get(t, "/"); r.status != http.StatusSeeOther {
		t.Errorf("old session after logout = %d, want 303 to login", r.status)
	}
}

// messages returns the data-tenant of every message on a browser page.
func messageTenants(body string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`data-testid="message" data-partition="\d+" data-offset="\d+" data-tenant="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

type apiMessages struct {
	Messages []struct {
		Tenant string          `json:"tenant"`
		Value  json.RawMessage `json:"value"`
	} `json:"messages"`
}

func jsonLines(t *testing.T, body string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON lines: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestTenantIsolationAndPIIMasking(t *testing.T) {
	e := newEnv(t, envOptions{})
	base := "/topics/demo/" + envTopic + "/messages"
	api := "/api/v1/topics/demo/" + envTopic + "/messages"
	tess, admin := e.as(t, "tess"), e.as(t, "admin")

	countTenants := func(ts []string) map[string]int {
		m := map[string]int{}
		for _, x := range ts {
			m[x]++
		}
		return m
	}
	for _, tc := range []struct {
		who    *client
		query  string
		t1, t2 int
	}{
		{tess, "", 3, 0},
		{tess, "?q=refund", 2, 0},
		{admin, "", 3, 3},
		{admin, "?q=REFUND", 2, 2},
	} {
		what := tc.who.user + " " + tc.query
		// Page.
		r := tc.who.get(t, base+tc.query)
		if r.status != http.StatusOK {
			t.Fatalf("%s page = %d", what, r.status)
		}
		if got := countTenants(messageTenants(r.body)); got["t1"] != tc.t1 || got["t2"] != tc.t2 {
			t.Errorf("%s page tenants = %v, want t1:%d t2:%d", what, got, tc.t1, tc.t2)
		}
		if tc.t2 == 0 {
			// Nothing of t2, not even how many there were.
			mustNotContain(t, what+" page", r.body, "t2 customer", "t2 plain", "customer1.t2", `tenant t2`, "messages hidden", "other tenant")
		}
		// API.
		r = tc.who.get(t, api+tc.query)
		var am apiMessages
		if err := json.Unmarshal([]byte(r.body), &am); err != nil || r.status != http.StatusOK {
			t.Fatalf("%s API = %d %v", what, r.status, err)
		}
		var ts []string
		for _, m := range am.Messages {
			ts = append(ts, m.Tenant)
		}
		if got := countTenants(ts); got["t1"] != tc.t1 || got["t2"] != tc.t2 {
			t.Errorf("%s API tenants = %v", what, got)
		}
		if tc.t2 == 0 {
			mustNotContain(t, what+" API", r.body, "t2")
		}
		// Export.
		r = tc.who.get(t, base+"/export"+tc.query)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/x-ndjson") {
			t.Fatalf("%s export = %d %q", what, r.status, r.header.Get("Content-Type"))
		}
		ts = nil
		for _, m := range jsonLines(t, r.body) {
			ts = append(ts, m["tenant"].(string))
		}
		if got := countTenants(ts); got["t1"] != tc.t1 || got["t2"] != tc.t2 {
			t.Errorf("%s export tenants = %v", what, got)
		}
		if tc.t2 == 0 {
			mustNotContain(t, what+" export", r.body, "t2")
		}
	}

	// PII: tess has no read_pii and sees masks everywhere; the admin sees
	// the real values.
	for _, path := range []string{base, api, base + "/export"} {
		r := tess.get(t, path)
		mustContain(t, "tess "+path, r.body, "***", "first order")
		mustNotContain(t, "tess "+path, r.body, emailOf(0), "4111111111111111")
		r = admin.get(t, path)
		mustContain(t, "admin "+path, r.body, emailOf(0), emailOf(1), "4111111111111111")
	}
	// Masked fields cannot be probed by searching for them.
	if r := tess.get(t, base+"?q="+url.QueryEscape(emailOf(0))); len(messageTenants(r.body)) != 0 {
		t.Errorf("search for a masked email found %d messages", len(messageTenants(r.body)))
	}
	// Reads are audited.
	recs, _, err := e.audit.List(context.Background(), access.AuditFilter{Action: "payload.read", Actor: "tess"})
	if err != nil || len(recs) == 0 || recs[0].Resource != "kafka:demo/"+envTopic {
		t.Errorf("payload.read audit = %+v %v", recs, err)
	}
	// A missing topic is a clear 404; a tenant-less topic list stays.
	r := admin.get(t, "/topics/demo/no.such.topic/messages")
	if r.status != http.StatusNotFound {
		t.Errorf("missing topic = %d", r.status)
	}
	mustContain(t, "missing topic", r.body, `topic &#34;no.such.topic&#34; not found on cluster &#34;demo&#34;`)
	// Partition filter and pretty JSON.
	r = admin.get(t, base+"?partition=0&limit=2")
	if n := len(messageTenants(r.body)); n != 2 {
		t.Errorf("limit=2 shows %d messages", n)
	}
	mustContain(t, "pretty JSON", r.body, "&#34;payload&#34;: {\n")
	if r := admin.get(t, base+"?partition=x"); r.status != http.StatusBadRequest {
		t.Errorf("bad partition = %d", r.status)
	}
}

// TestListsAreFiltered: tess (kafka:demo/* tenants t1) sees demo; otto
// (kafka:other/*) sees no cluster at all, nor any count of it.
func TestListsAreFiltered(t *testing.T) {
	e := newEnv(t, envOptions{})
	otto, tess := e.as(t, "otto"), e.as(t, "tess")
	r := otto.get(t, "/")
	mustContain(t, "otto overview", r.body, `data-testid="empty-clusters"`)
	mustNotContain(t, "otto overview", r.body, testTopic, testGroup, `data-testid="cluster-topics"`)
	r = otto.get(t, "/consumers")
	mustNotContain(t, "otto consumers", r.body, testGroup)
	r = otto.get(t, "/api/v1/clusters")
	if r.body != `{"clusters":[]}` && r.body != `{"clusters":null}` {
		t.Errorf("otto API clusters = %s", r.body)
	}
	r = tess.get(t, "/")
	mustContain(t, "tess overview", r.body, `data-testid="cluster-topics">4<`, `data-group="`+testGroup+`"`)
}

func TestAdminPages(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	a := e.as(t, "admin")

	r := a.post(t, "/admin/users", url.Values{"name": {"carol"}, "password": {"carol password 123"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("create user = %d: %s", r.status, r.body)
	}
	page := a.get(t, r.header.Get("Location"))
	mustContain(t, "users page", page.body, `data-testid="flash"`, "User carol created", `data-user="carol"`)
	// The flash shows once.
	mustNotContain(t, "users page again", a.get(t, "/admin/users").body, `data-testid="flash"`)
	// A form error re-renders the form with the message.
	r = a.post(t, "/admin/users", url.Values{"name": {"dave"}, "password": {"short"}})
	if r.status != http.StatusBadRequest {
		t.Errorf("short password = %d", r.status)
	}
	mustContain(t, "user form error", r.body, `data-testid="form-error"`, "password must be", `value="dave"`)

	r = a.post(t, "/admin/bindings", url.Values{"subject": {"user:carol"}, "role": {"operator"}, "resources": {"kafka:demo/orders.*"}, "tenants": {"t1"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("bind = %d: %s", r.status, r.body)
	}
	r = a.get(t, "/admin/check?user=carol&resource="+url.QueryEscape("kafka:demo/orders.x")+"&tenant=t1")
	mustContain(t, "check page", r.body,
		`data-action="redrive" data-allowed="true"`, `data-action="admin" data-allowed="false"`,
		"granted by role operator via user:carol on kafka:demo/orders.*, tenants t1")
	r = a.get(t, "/admin/check?user=carol&resource="+url.QueryEscape("kafka:demo/orders.x")+"&tenant=t2")
	mustContain(t, "check t2", r.body, `data-action="redrive" data-allowed="false"`)

	// Custom role with checkboxes, then edit.
	r = a.post(t, "/admin/roles", url.Values{"name": {"reader"}, "actions": {"view", "read_payload"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("save role = %d: %s", r.status, r.body)
	}
	r = a.get(t, "/admin/roles?edit=reader")
	mustContain(t, "roles", r.body, `data-role="reader"`, "view, read_payload", `value="read_payload" checked`)
	if r := a.post(t, "/admin/roles", url.Values{"name": {"viewer"}, "actions": {"admin"}}); r.status != http.StatusBadRequest {
		t.Errorf("editing a built-in role = %d, want 400", r.status)
	}

	// Issue a token: the plaintext appears once.
	r = a.post(t, "/admin/tokens", url.Values{"user": {"carol"}, "name": {"ci"}, "ttl": {"30d"}})
	m := regexp.MustCompile(`data-testid="token-plaintext">(sy_[^<]+)<`).FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("issue token = %d, no plaintext:\n%s", r.status, r.body)
	}
	token := m[1]
	list := a.get(t, "/admin/tokens")
	mustNotContain(t, "token list", list.body, token)
	if r := e.bearer(t, token, http.MethodGet, "/api/v1/clusters", nil); r.status != http.StatusOK {
		t.Errorf("carol's token = %d", r.status)
	}
	list = a.get(t, "/admin/tokens")
	idm := regexp.MustCompile(`data-token-id="(\d+)" data-token-name="ci"`).FindStringSubmatch(list.body)
	if idm == nil {
		t.Fatal("token ci not listed")
	}
	mustContain(t, "token last used", list.body, `data-token-name="ci"`)
	if r := a.post(t, "/admin/tokens/"+idm[1]+"/revoke", nil); r.status != http.StatusSeeOther {
		t.Errorf("revoke = %d", r.status)
	}
	if r := e.bearer(t, token, http.MethodGet, "/api/v1/clusters", nil); r.status != http.StatusUnauthorized {
		t.Errorf("revoked token = %d, want 401", r.status)
	}

	// Disable carol: her token-less login no longer works.
	if r := a.post(t, "/admin/users/carol/disable", nil); r.status != http.StatusSeeOther {
		t.Errorf("disable = %d", r.status)
	}
	c := e.anon()
	f := c.get(t, "/login")
	if r := c.send(t, http.MethodPost, "/login", url.Values{"username": {"carol"}, "password": {"carol password 123"}, "_csrf": {csrfInputRE.FindStringSubmatch(f.body)[1]}}); r.status != http.StatusUnauthorized {
		t.Errorf("disabled user login = %d", r.status)
	}

	// JSON API.
	r = a.get(t, "/api/v1/admin/users")
	var users struct{ Users []access.User }
	if err := json.Unmarshal([]byte(r.body), &users); err != nil || len(users.Users) < 5 {
		t.Errorf("API users = %s", r.body)
	}
	r = a.api(t, http.MethodPost, "/api/v1/admin/tokens", map[string]any{"user": "vera", "name": "api"})
	var issued struct{ Token string }
	if json.Unmarshal([]byte(r.body), &issued); r.status != http.StatusCreated || !strings.HasPrefix(issued.Token, "sy_") {
		t.Errorf("API token issue = %d %s", r.status, r.body)
	}

	// The audit page lists what happened, with filters and an export.
	r = a.get(t, "/admin/audit")
	for _, action := range []string{"user.create", "binding.add", "role.save", "token.issue", "token.revoke", "login"} {
		mustContain(t, "audit page", r.body, `data-action="`+action+`"`)
	}
	r = a.get(t, "/admin/audit?action=token.issue&actor=admin")
	if n := strings.Count(r.body, `data-testid="audit-row"`); n != 2 {
		t.Errorf("filtered audit rows = %d, want 2 (page and API issue)", n)
	}
	mustContain(t, "audit export link", r.body, `href="/admin/audit/export?action=token.issue&amp;actor=admin"`)
	r = a.get(t, "/admin/audit/export?action=token.issue")
	lines := jsonLines(t, r.body)
	if len(lines) != 2 || lines[0]["action"] != "token.issue" {
		t.Errorf("audit export = %d lines: %s", len(lines), r.body)
	}
	mustNotContain(t, "audit export", r.body, token, "carol password 123")
	if r := a.get(t, "/admin/audit?since=yesterday"); r.status != http.StatusBadRequest {
		t.Errorf("bad since = %d", r.status)
	}
	_ = ctx
}

func TestAuditPaging(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	for i := range auditLimit + 5 {
		if err := e.audit.Append(ctx, access.AuditEvent{Actor: "bot", Action: "test.event", Outcome: "success", Details: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	a := e.as(t, "admin")
	r := a.get(t, "/admin/audit?actor=bot")
	if n := strings.Count(r.body, `data-testid="audit-row"`); n != auditLimit {
		t.Errorf("first page = %d rows", n)
	}
	m := regexp.MustCompile(`href="(/admin/audit\?[^"]+)" data-testid="audit-older"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatal("no Older link")
	}
	r = a.get(t, strings.ReplaceAll(m[1], "&amp;", "&"))
	if n := strings.Count(r.body, `data-testid="audit-row"`); n != 5 {
		t.Errorf("second page = %d rows, want 5", n)
	}
	mustNotContain(t, "last page", r.body, `data-testid="audit-older"`)
}

// TestEveryPostFormCarriesCSRF reads the templates: a POST form without
// the CSRF field would be refused, and should not be written.
func TestEveryPostFormCarriesCSRF(t *testing.T) {
	files, err := filepath.Glob("templates/*.templ")
	if err != nil || len(files) == 0 {
		t.Fatalf("templates: %v", err)
	}
	forms := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		for {
			i := strings.Index(src, `<form method="post"`)
			if i < 0 {
				break
			}
			src = src[i:]
			end := strings.Index(src, "</form>")
			if end < 0 || !strings.Contains(src[:end], "@CSRFField()") {
				t.Errorf("%s: a POST form without @CSRFField()", f)
			}
			forms++
			src = src[len(`<form`):]
		}
	}
	if forms < 8 {
		t.Errorf("found %d POST forms; the scan is broken", forms)
	}
}

func TestSecureCookies(t *testing.T) {
	e := newEnv(t, envOptions{})
	srv, err := New(Options{Auth: e.store, Store: e.store, SecureCookies: true, Logger: e.srv.log})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.App().Test(httptest.NewRequest(http.MethodGet, "/login", nil), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cks := resp.Cookies()
	if len(cks) != 1 || !cks[0].Secure {
		t.Errorf("cookies with SecureCookies = %+v, want Secure", cks)
	}
}
