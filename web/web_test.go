package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/internal/testenv"
)

func TestOverviewShowsClusterFromKafka(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.admin(t, "/")
	if r.status != http.StatusOK {
		t.Fatalf("GET / = %d\n%s", r.status, r.body)
	}
	mustContain(t, "overview", r.body,
		`data-testid="cluster" data-cluster="`+testCluster+`"`,
		`data-testid="cluster-reachable"`,
		`data-testid="cluster-brokers">1<`,
		`data-testid="cluster-topics">4<`,
		`data-testid="topic-row" data-topic="`+testTopic+`"`,
		`data-testid="group-row" data-group="`+testGroup+`"`,
		`data-testid="group-lag" title="16">16<`,
		`data-testid="whoami">admin<`,
		`href="/topics/demo/`+testTopic+`"`,
	)
	// Exactly one DLQ badge: on the .dlq topic, not on its source.
	dlqRow := regexp.MustCompile(`(?s)data-topic="` + regexp.QuoteMeta(testDLQ) + `".*?</tr>`).FindString(r.body)
	if !strings.Contains(dlqRow, `data-testid="dlq-badge"`) || strings.Count(r.body, `data-testid="dlq-badge"`) != 1 {
		t.Errorf("DLQ badge: want it on %s only", testDLQ)
	}
	// The current area is highlighted, and every area has its link.
	mustContain(t, "current nav link", openTag(r.body, `data-testid="nav-overview"`), `class="nav current"`, `aria-current="page"`)
	if strings.Contains(openTag(r.body, `data-testid="nav-consumers"`), "current") {
		t.Error("Consumers highlighted on the overview")
	}
	for _, a := range []string{"overview", "consumers", "queues", "dead-letters", "traces", "alerts", "export", "admin"} {
		mustContain(t, "nav", r.body, `data-testid="nav-`+a+`"`)
	}
	if strings.Contains(r.body, "<script>") || strings.Contains(r.body, "style=") {
		t.Error("inline script or style in the page: the CSP blocks it")
	}
}

func TestTopicAndGroupPages(t *testing.T) {
	e := newEnv(t, envOptions{})

	r := e.admin(t, "/topics/demo/"+testTopic)
	if r.status != http.StatusOK {
		t.Fatalf("topic page = %d\n%s", r.status, r.body)
	}
	mustContain(t, "topic page", r.body,
		`data-testid="topic-name"`,
		`data-testid="topic-messages"><span title="30">30<`,
		`data-testid="partition-row" data-partition="2"`,
		`data-testid="partition-high">10<`,
		`data-testid="group-row" data-group="`+testGroup+`"`,
		`data-testid="group-lag" title="16">16<`,
	)

	r = e.admin(t, "/consumers/demo/"+testGroup)
	if r.status != http.StatusOK {
		t.Fatalf("group page = %d\n%s", r.status, r.body)
	}
	mustContain(t, "group page", r.body,
		`data-testid="group-total-lag" title="16">16<`,
		`data-testid="group-state">Empty<`,
	)
	mustContain(t, "current nav link", openTag(r.body, `data-testid="nav-consumers"`), `class="nav current"`)
	// Per partition: committed / high / lag.
	for _, want := range [][3]string{{"4", "10", "6"}, {"10", "10", "0"}, {"0", "10", "10"}} {
		mustContain(t, "group partitions", r.body, `data-testid="committed">`+want[0]+`</td><td class="num mono" data-testid="high">`+want[1]+`</td><td class="num mono" data-testid="lag">`+want[2]+`<`)
	}

	for path, want := range map[string]int{
		"/topics/demo/no.such.topic.v1":  http.StatusNotFound,
		"/topics/elsewhere/" + testTopic: http.StatusNotFound,
		"/consumers/demo/no-such-group":  http.StatusNotFound,
		"/consumers?sort=members":        http.StatusBadRequest,
		"/nowhere":                       http.StatusNotFound,
	} {
		if r := e.admin(t, path); r.status != want {
			t.Errorf("GET %s = %d, want %d", path, r.status, want)
		} else {
			mustContain(t, path, r.body, `data-testid="error-page"`)
		}
	}
}

func TestConsumersSorting(t *testing.T) {
	views := []collector.ClusterView{{
		Name: "a", Polled: true, Reachable: true, HasSnapshot: true,
		Snapshot: collector.ClusterSnapshot{Groups: []collector.Group{
			{Name: "alpha", TotalLag: 5}, {Name: "beta", TotalLag: 500}, {Name: "gamma", TotalLag: 50},
		}},
	}}
	e := newEnv(t, envOptions{clusters: fixedClusters(views)})
	order := func(body string) string {
		var names []string
		for _, m := range regexp.MustCompile(`data-testid="group-row" data-group="([^"]+)"`).FindAllStringSubmatch(body, -1) {
			names = append(names, m[1])
		}
		return strings.Join(names, ",")
	}
	if got := order(e.admin(t, "/consumers").body); got != "beta,gamma,alpha" {
		t.Errorf("default order = %s, want by lag: beta,gamma,alpha", got)
	}
	if got := order(e.admin(t, "/consumers?sort=name").body); got != "alpha,beta,gamma" {
		t.Errorf("sort=name order = %s", got)
	}
}

type fixedClusters []collector.ClusterView

func (f fixedClusters) Latest() []collector.ClusterView { return f }

func (f fixedClusters) RabbitLatest() []collector.RabbitView { return nil }

func TestEmptyStatesAndUnreachable(t *testing.T) {
	now := time.Now()
	views := []collector.ClusterView{
		{Name: "fresh", Polled: true, Reachable: true, HasSnapshot: true, Snapshot: collector.ClusterSnapshot{TakenAt: now}},
		{Name: "down", Polled: true, Error: "dial tcp 10.0.0.1:9092: connection refused", UnreachableSince: now.Add(-3 * time.Minute)},
	}
	e := newEnv(t, envOptions{clusters: fixedClusters(views)})
	r := e.admin(t, "/")
	mustContain(t, "overview", r.body,
		`data-testid="empty-topics"`, "No topics yet",
		`data-testid="empty-groups"`, "No consumer groups yet",
		`data-testid="cluster-unreachable"`, "since 3m ago",
		"connection refused",
	)
	mustContain(t, "queues without RabbitMQ", e.admin(t, "/queues").body, `data-testid="empty-rabbit"`)
	// An empty span store: the trace search says where spans come from.
	mustContain(t, "/traces", e.admin(t, "/traces").body, `data-testid="traces-empty"`, "No spans received yet")
	// No rules: the Alerts page says nothing fires and where rules are.
	mustContain(t, "/alerts", e.admin(t, "/alerts").body, `data-testid="alerts-empty"`, "No alerts firing.")
	r = e.admin(t, "/export")
	if r.status != http.StatusOK {
		t.Errorf("GET /export = %d", r.status)
	}
	mustContain(t, "/export", r.body, `data-testid="export-dashboards"`, `data-testid="export-push-form"`)
}

func TestFragmentForAutoRefresh(t *testing.T) {
	e := newEnv(t, envOptions{})
	full := e.admin(t, "/consumers")
	frag := e.admin(t, "/consumers", "HX-Request", "true")
	if !strings.Contains(full.body, "<html") || !strings.Contains(full.body, `data-refresh-ms="5000"`) {
		t.Error("full page lacks the layout or the refresh marker")
	}
	if strings.Contains(frag.body, "<html") || strings.Contains(frag.body, `data-testid="nav-`) {
		t.Error("fragment carries the layout")
	}
	mustContain(t, "fragment", frag.body, `data-group="`+testGroup+`"`)
	if v := frag.header.Get("Vary"); v != "HX-Request" {
		t.Errorf("Vary = %q, want HX-Request so caches keep the two apart", v)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, envOptions{})
	// A browser without a session goes to the login form, and comes back.
	r := e.get(t, "/consumers?sort=name", "")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?next=%2Fconsumers%3Fsort%3Dname" {
		t.Errorf("anonymous GET /consumers = %d to %q; want 303 to the login form", r.status, r.header.Get("Location"))
	}
	if r := e.get(t, "/", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+adminPassword))); r.status != http.StatusSeeOther {
		t.Errorf("Basic auth = %d; it is gone, want the login redirect", r.status)
	}
	if r := e.admin(t, "/"); r.status != http.StatusOK {
		t.Errorf("admin GET / = %d, want 200", r.status)
	}
	vera := e.as(t, "vera")
	if r := vera.get(t, "/consumers"); r.status != http.StatusOK {
		t.Errorf("viewer GET /consumers = %d, want 200", r.status)
	}
	r = vera.get(t, "/admin")
	if r.status != http.StatusForbidden {
		t.Errorf("viewer GET /admin = %d, want 403", r.status)
	}
	mustContain(t, "403 page", r.body, `data-testid="error-page" data-status="403"`, "you may not admin console:admin")
	if r := vera.get(t, "/export"); r.status != http.StatusForbidden {
		t.Errorf("viewer GET /export = %d, want 403", r.status)
	}
	// The viewer's navigation hides what they cannot open.
	page := vera.get(t, "/")
	mustContain(t, "viewer nav", page.body, `data-testid="nav-overview"`, `data-testid="nav-consumers"`)
	mustNotContain(t, "viewer nav", page.body, `data-testid="nav-admin"`, `data-testid="nav-export"`)
	// API tokens work as Bearer.
	tok, err := e.store.CreateToken(context.Background(), "vera", "script", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.get(t, "/api/v1/clusters", "Bearer "+tok); r.status != http.StatusOK {
		t.Errorf("token GET /api/v1/clusters = %d, want 200", r.status)
	}
	if r := e.get(t, "/api/v1/clusters", "Bearer sy_not-a-token"); r.status != http.StatusUnauthorized {
		t.Errorf("bad token = %d, want 401", r.status)
	}
	// Public endpoints need nothing (/metrics needs a scrape token:
	// TestMetricsNeedAScrapeToken).
	for _, p := range []string{"/healthz", "/readyz", "/static/app.css", "/login"} {
		if r := e.get(t, p, ""); r.status != http.StatusOK {
			t.Errorf("anonymous GET %s = %d, want 200", p, r.status)
		}
	}
}

func TestSecurityHeadersAndRequestID(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, r := range []response{e.admin(t, "/"), e.get(t, "/", ""), e.get(t, "/healthz", "")} {
		for h, want := range map[string]string{
			"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "same-origin",
			"X-Frame-Options":         "DENY",
		} {
			if got := r.header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		if r.header.Get("X-Request-ID") == "" {
			t.Error("no X-Request-ID on the response")
		}
	}
	r := e.admin(t, "/", "X-Request-ID", "trace-me-42")
	if got := r.header.Get("X-Request-ID"); got != "trace-me-42" {
		t.Errorf("request id = %q, want the client's", got)
	}
	r = e.admin(t, "/", "X-Request-ID", "<script>alert(1)</script>")
	if got := r.header.Get("X-Request-ID"); strings.ContainsAny(got, "<>") || got == "" {
		t.Errorf("unsafe client request id kept: %q", got)
	}
	// The access log names the request and the user, never the
	// credentials: no password, session cookie or CSRF token.
	logs := e.logs.String()
	mustContain(t, "access log", logs, `"request_id":"trace-me-42"`, `"user":"admin"`, `"route":"overview"`, `"status":200`)
	a := e.as(t, "admin")
	mustNotContain(t, "log", logs, adminPassword, a.cookies[sessionCookie], a.csrf)
}

func TestReadyz(t *testing.T) {
	down := errors.New("dial tcp: connection refused")
	check := func(err error) func(context.Context) error { return func(context.Context) error { return err } }
	tests := []struct {
		name       string
		store, bus error
		status     int
		want       string
	}{
		{"ready", nil, nil, 200, "ready"},
		{"broker down is degraded", nil, down, 200, "degraded"},
		{"store down is unready", down, nil, 503, "unready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{ready: []ReadyCheck{
				{Name: "store", Check: check(tt.store), Critical: true},
				{Name: "kafka:local", Check: check(tt.bus)},
			}})
			r := e.get(t, "/readyz", "")
			var got readiness
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatalf("readyz body %q: %v", r.body, err)
			}
			if r.status != tt.status || got.Status != tt.want {
				t.Errorf("readyz = %d %q, want %d %q", r.status, got.Status, tt.status, tt.want)
			}
			if tt.bus != nil && (got.Checks["kafka:local"].OK || got.Checks["kafka:local"].Error != down.Error()) {
				t.Errorf("kafka check = %+v, want the broker error", got.Checks["kafka:local"])
			}
			if !got.Checks["store"].OK && tt.store == nil {
				t.Errorf("store check = %+v", got.Checks["store"])
			}
		})
	}
}

func TestMetricsExposeRequests(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.admin(t, "/")
	e.get(t, "/", "")
	if got := testutil.ToFloat64(e.srv.metrics.requests.WithLabelValues("overview", "GET", "200")); got != 1 {
		t.Errorf("requests{overview,GET,200} = %v, want 1", got)
	}
	r := e.scrape(t)
	mustContain(t, "/metrics", r.body,
		`switchyard_http_requests_total{code="200",method="GET",route="overview"} 1`,
		`switchyard_http_requests_total{code="303",method="GET",route="overview"} 1`,
		`switchyard_http_requests_total{code="303",method="POST",route="login"} 1`,
		`switchyard_http_request_duration_seconds_bucket{method="GET",route="overview"`,
	)
}

func TestAPIErrorContract(t *testing.T) {
	e := newEnv(t, envOptions{})
	decode := func(r response) delivery.ErrorResponse {
		t.Helper()
		var er delivery.ErrorResponse
		if err := json.Unmarshal([]byte(r.body), &er); err != nil {
			t.Fatalf("error body %q is not the contract: %v", r.body, err)
		}
		return er
	}
	r := e.admin(t, "/api/v1/nope")
	if er := decode(r); r.status != 404 || er.Error.Code != delivery.ENOTFOUND || er.Error.Details["request_id"] == "" {
		t.Errorf("unknown API route = %d %+v, want 404 ENOTFOUND with request_id", r.status, er)
	}
	r = e.get(t, "/api/v1/clusters", "")
	if er := decode(r); r.status != 401 || er.Error.Code != delivery.EUNAUTHORIZED {
		t.Errorf("anonymous API = %d %+v, want 401 EUNAUTHORIZED", r.status, er)
	}
	r = e.admin(t, "/api/v1/clusters")
	var body struct {
		Clusters []collector.ClusterView `json:"clusters"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != 200 {
		t.Fatalf("GET /api/v1/clusters = %d %v", r.status, err)
	}
	if len(body.Clusters) != 1 || !body.Clusters[0].Reachable {
		t.Fatalf("clusters = %+v", body.Clusters)
	}
	if g, ok := body.Clusters[0].Snapshot.Group(testGroup); !ok || g.TotalLag != 16 {
		t.Errorf("group over the API = %+v, want lag 16", g)
	}
}

// panicky is a dependency that blows up.
type panicky struct{}

func (panicky) Latest() []collector.ClusterView { panic("secret internal detail") }

func (panicky) RabbitLatest() []collector.RabbitView { return nil }

func TestInternalErrorsDoNotLeak(t *testing.T) {
	e := newEnv(t, envOptions{clusters: panicky{}})
	a := e.as(t, "admin")
	before := strings.Count(e.logs.String(), "secret internal detail")
	for _, p := range []string{"/", "/api/v1/clusters"} {
		rid := "rid" + strings.ReplaceAll(p, "/", "-")
		r := a.get(t, p, "X-Request-ID", rid)
		if r.status != http.StatusInternalServerError {
			t.Errorf("GET %s = %d, want 500", p, r.status)
		}
		if strings.Contains(r.body, "secret internal detail") || strings.Contains(r.body, "goroutine") {
			t.Errorf("GET %s leaks the panic: %s", p, r.body)
		}
		mustContain(t, p, r.body, "Something went wrong (request id "+rid+")")
	}
	if n := strings.Count(e.logs.String(), "secret internal detail") - before; n != 2 {
		t.Errorf("panic logged %d times for 2 requests, want once each", n)
	}
}

func TestStaticFiles(t *testing.T) {
	e := newEnv(t, envOptions{})
	page := e.admin(t, "/")
	m := regexp.MustCompile(`href="(/static/app\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("page does not link app.css with a version")
	}
	r := e.get(t, m[1], "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") || !strings.Contains(r.header.Get("Cache-Control"), "immutable") {
		t.Errorf("versioned css = %d %q %q", r.status, r.header.Get("Content-Type"), r.header.Get("Cache-Control"))
	}
	mustContain(t, "app.css", r.body, "nav.side")
	if r := e.get(t, "/static/app.js", ""); r.status != 200 || r.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("unversioned js = %d %q", r.status, r.header.Get("Cache-Control"))
	}
	// Every page, the login form too, names the console's icon, served
	// from the same assets.
	for _, p := range []string{page.body, e.get(t, "/login", "").body} {
		icon := regexp.MustCompile(`<link rel="icon" type="image/svg\+xml" href="(/static/favicon\.svg\?v=[0-9a-f]+)"`).FindStringSubmatch(p)
		if icon == nil {
			t.Fatalf("page does not link the favicon: %.400s", p)
		}
		if r := e.get(t, icon[1], ""); r.status != 200 || r.header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(r.body, "<svg") {
			t.Errorf("favicon = %d %q %.60q", r.status, r.header.Get("Content-Type"), r.body)
		}
	}
	for _, p := range []string{"/static/static.go", "/static/../server.go", "/static/nope.css"} {
		if r := e.get(t, p, ""); r.status != 404 {
			t.Errorf("GET %s = %d, want 404", p, r.status)
		}
	}
}

// TestEveryRouteHasAPolicy walks the fiber router: a route registered
// without an entry in Routes() would bypass the policy.
func TestEveryRouteHasAPolicy(t *testing.T) {
	e := newEnv(t, envOptions{})
	table := map[string]Route{}
	for _, rt := range Routes() {
		table[rt.Method+" "+rt.Path] = rt
		if !rt.Public && !rt.Self && (rt.Action == "") {
			t.Errorf("%s %s: not public and no action", rt.Method, rt.Path)
		}
		if rt.Self && rt.Path != "/logout" {
			t.Errorf("%s: only logout acts on the caller's own session without a policy check", rt.Path)
		}
		if rt.PublicIf != nil && rt.Path != "/metrics" {
			t.Errorf("%s: only /metrics may be opened by configuration (metrics.auth none)", rt.Path)
		}
	}
	public := map[string]bool{"/healthz": true, "/readyz": true, "/static/*": true, "/login": true}
	registered := 0
	for _, r := range e.srv.App().GetRoutes(true) {
		rt, ok := table[r.Method+" "+r.Path]
		if !ok {
			t.Errorf("route %s %s is served but has no entry in Routes()", r.Method, r.Path)
			continue
		}
		if rt.Public && !public[rt.Path] {
			t.Errorf("route %s is public; only %v may be", rt.Path, public)
		}
		registered++
	}
	if registered != len(table) {
		t.Errorf("%d routes served, table has %d", registered, len(table))
	}
}

// blocking holds Latest until released, to keep a request in flight.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) Latest() []collector.ClusterView {
	close(b.entered)
	<-b.release
	return nil
}

func (b *blocking) RabbitLatest() []collector.RabbitView { return nil }

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	b := &blocking{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, envOptions{clusters: b})
	admin := e.as(t, "admin")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ln) }()

	type result struct {
		status int
		err    error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/api/v1/clusters", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: admin.cookies[sessionCookie]})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		resp.Body.Close()
		got <- result{status: resp.StatusCode}
	}()
	select {
	case <-b.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("request never reached the handler")
	}
	shut := make(chan error, 1)
	var once sync.Once
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- e.srv.Shutdown(ctx)
	}()
	// New connections are refused once shutdown has begun.
	testenv.WaitWithin(t, 20*time.Second, "new connections refused after Shutdown", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	once.Do(func() { close(b.release) })
	if r := <-got; r.err != nil || r.status != fiber.StatusOK {
		t.Errorf("in-flight request = %+v, want 200", r)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after shutdown", err)
	}
}

// A connection that has sent nothing (a browser's speculative connection
// ahead of the next click) does not hold up a graceful shutdown: fasthttp
// would wait for it up to the 30 s ReadTimeout, past Shutdown's deadline,
// and the console took 15 s to stop and then exited with an error.
func TestShutdownClosesConnectionsWithoutARequest(t *testing.T) {
	e := newEnv(t, envOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ln) }()
	quiet, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	testenv.WaitWithin(t, 20*time.Second, "the quiet connection accepted", func() bool {
		ql := e.srv.listener.Load()
		return ql != nil && ql.open() == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a connection that sent nothing = %v, want nil well before its deadline", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after shutdown", err)
	}
	quiet.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // a failed read below says enough
	if n, err := quiet.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read on the quiet connection after shutdown = %d, %v; want EOF (closed by the server)", n, err)
	}
	// Closing it is not a failed request: nothing for the error log.
	if strings.Contains(e.logs.String(), "request failed") {
		t.Errorf("shutdown logged a failed request:\n%s", e.logs.String())
	}
}
