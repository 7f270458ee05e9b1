package web

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// Forty wrong passwords sent at once over real connections to a real
// server, as a password-guessing script would: the throttle counts each
// attempt before its password is checked, so only the first five are
// checked (401) and audited as wrong passwords, the other 35 are refused
// unchecked (429 with Retry-After), and the right password right after is
// refused as well.
func TestParallelWrongPasswordsAreThrottled(t *testing.T) {
	e := newEnv(t, envOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(ln) //nolint:errcheck // Shutdown below ends it
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx) //nolint:errcheck // best effort in cleanup
	})
	base := "http://" + ln.Addr().String()
	hc := &http.Client{
		Timeout:       60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	// The login form's CSRF token and its cookie, as a browser gets them.
	resp, err := hc.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInputRE.FindStringSubmatch(string(body))
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == loginCSRFCookie {
			cookie = ck
		}
	}
	if m == nil || cookie == nil {
		t.Fatalf("login form without a CSRF token or cookie: %d", resp.StatusCode)
	}
	type result struct {
		status     int
		retryAfter string
		err        error
	}
	login := func(password string) result {
		form := url.Values{"username": {"vera"}, "password": {password}, csrfField: {m[1]}}
		req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: loginCSRFCookie, Value: cookie.Value})
		resp, err := hc.Do(req)
		if err != nil {
			return result{err: err}
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the status matters
		resp.Body.Close()
		return result{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	}

	const attempts = 40
	start := make(chan struct{})
	results := make(chan result, attempts)
	var wg sync.WaitGroup
	for range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results <- login("wrong password, attempt in parallel")
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	statuses := map[int]int{}
	for r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		statuses[r.status]++
		if r.status == http.StatusTooManyRequests {
			if secs, err := strconv.Atoi(r.retryAfter); err != nil || secs < 1 || secs > 15*60 {
				t.Errorf("429 with Retry-After %q, want the seconds of the lockout", r.retryAfter)
			}
		}
	}
	if statuses[http.StatusUnauthorized] > 5 || statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != attempts {
		t.Errorf("40 parallel wrong passwords: statuses %v; want at most 5 checked (401) and the rest 429", statuses)
	}
	recs, _, err := e.audit.List(context.Background(), access.AuditFilter{Action: "login", Outcome: access.OutcomeFailure, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range recs {
		if r.Reason == "wrong password" {
			checked++
		}
	}
	if checked > 5 || checked != statuses[http.StatusUnauthorized] {
		t.Errorf("%d \"wrong password\" audit records for %d 401s; want at most 5, one per checked attempt", checked, statuses[http.StatusUnauthorized])
	}
	if r := login(viewerPassword); r.err != nil || r.status != http.StatusTooManyRequests {
		t.Errorf("the right password after the burst: %+v, want 429 while locked", r)
	}
}

// The Add-binding form and the admin API never bind a role on everything
// by accident: an empty Resources or Tenants field is a 400 that says to
// type *, nothing is created; a user that does not exist is refused; a
// group is refused unless marked as an SSO group, and then accepted with a
// note that it cannot match while the proxy mode is off.
func TestBindingsRefuseAccidentalGrants(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.as(t, "admin")

	page := a.get(t, "/admin/bindings")
	for _, attr := range []string{`data-testid="binding-resources"`, `data-testid="binding-tenants"`} {
		tag := openTag(page.body, attr)
		if !strings.Contains(tag, `placeholder="required`) || !strings.Contains(tag, "required") {
			t.Errorf("%s: %s; want a required field whose placeholder does not look like a value", attr, tag)
		}
	}

	type tcase struct {
		name              string
		subject           string
		resources, tenant string
		proxy             bool
		status            int
		say               string
	}
	cases := []tcase{
		{"empty resources", "user:vera", "", "t1", false, http.StatusBadRequest, "type * to bind the role on every resource"},
		{"blank resources", "user:vera", " \r\n ", "t1", false, http.StatusBadRequest, "type * to bind the role on every resource"},
		{"empty tenants", "user:vera", "kafka:demo/*", "", false, http.StatusBadRequest, "type * to bind the role for every tenant"},
		{"unknown user", "user:veronica", "kafka:demo/*", "t1", false, http.StatusBadRequest, `there is no user &#34;veronica&#34;`},
		{"unconfirmed group", "group:ops", "kafka:demo/*", "t1", false, http.StatusBadRequest, "could never match"},
	}
	for _, tc := range cases {
		t.Run("form/"+tc.name, func(t *testing.T) {
			before := bindingCount(t, e)
			form := url.Values{"subject": {tc.subject}, "role": {"operator"}, "resources": {tc.resources}, "tenants": {tc.tenant}}
			r := a.post(t, "/admin/bindings", form)
			if r.status != tc.status {
				t.Errorf("status %d, want %d", r.status, tc.status)
			}
			mustContain(t, "form error", r.body, `data-testid="form-error"`, tc.say)
			if n := bindingCount(t, e); n != before {
				t.Errorf("bindings %d → %d: a refused form created one", before, n)
			}
		})
		t.Run("api/"+tc.name, func(t *testing.T) {
			before := bindingCount(t, e)
			body := map[string]any{"subject": tc.subject, "role": "operator", "resources": splitList(tc.resources, "\r\n"), "tenants": splitList(tc.tenant, ",")}
			r := a.api(t, http.MethodPost, "/api/v1/admin/bindings", body)
			var er struct {
				Error struct{ Code, Message string }
			}
			json.Unmarshal([]byte(r.body), &er) //nolint:errcheck // checked below
			if r.status != tc.status || er.Error.Code != delivery.EINVALID || !strings.Contains(er.Error.Message, strings.ReplaceAll(tc.say, "&#34;", `"`)) {
				t.Errorf("= %d %s; want %d EINVALID saying %q", r.status, r.body, tc.status, tc.say)
			}
			if n := bindingCount(t, e); n != before {
				t.Errorf("bindings %d → %d: a refused request created one", before, n)
			}
		})
	}

	// "*" typed, an SSO group marked as such: accepted, and told that the
	// group matches nobody while the proxy mode is off.
	r := a.post(t, "/admin/bindings", url.Values{"subject": {"user:vera"}, "role": {"operator"}, "resources": {"*"}, "tenants": {"*"}})
	if r.status != http.StatusSeeOther {
		t.Errorf("binding with * typed = %d: %s", r.status, r.body)
	}
	r = a.post(t, "/admin/bindings", url.Values{"subject": {"group:ops"}, "role": {"viewer"}, "resources": {"kafka:demo/*"}, "tenants": {"t1"}, "proxy": {"1"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("SSO group from the form = %d: %s", r.status, r.body)
	}
	mustContain(t, "flash", a.get(t, r.header.Get("Location")).body, "Bound group:ops to role viewer.", "matches nobody until it is enabled")
	r = a.api(t, http.MethodPost, "/api/v1/admin/bindings", map[string]any{"subject": "group:devs", "role": "viewer",
		"resources": []string{"kafka:demo/*"}, "tenants": []string{"t1"}, "proxy": true})
	var created struct {
		ID   int64  `json:"id"`
		Note string `json:"note"`
	}
	if err := json.Unmarshal([]byte(r.body), &created); err != nil || r.status != http.StatusCreated || created.ID == 0 || !strings.Contains(created.Note, "matches nobody") {
		t.Errorf("SSO group from the API = %d %s; want 201 with the id and a note", r.status, r.body)
	}
	bs, err := e.store.ListBindings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Subject == "group:ops" && (strings.Join(b.Resources, ",") != "kafka:demo/*" || strings.Join(b.Tenants, ",") != "t1") {
			t.Errorf("stored group binding = %+v", b)
		}
	}
}
