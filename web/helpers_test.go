package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/browse"
	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/demo"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/internal/testenv"
	"switchyard/sqldb"
	"switchyard/tracing"
	"switchyard/tsdb"
)

const (
	adminPassword    = "admin password for tests"
	viewerPassword   = "viewer password for tests"
	operatorPassword = "operator password for tests"
	testCluster      = "demo"
	testTopic        = "orders.order.created.v1"
	testDLQ          = "orders.order.created.v1.dlq"
	testGroup        = "billing-service"
	// envTopic holds platform envelopes of tenants t1 and t2 (eventType
	// testTopic, whose email, card.number, key and partition key are PII).
	envTopic = "orders.envelopes.v1"
	// otherTopic is outside "kafka:demo/orders.*", for scoped users.
	otherTopic = "payments.settled.v1"
)

type env struct {
	srv    *Server
	kafka  *kgo.Client
	store  *access.Store
	audit  access.AuditLog
	poller *collector.Poller
	reg    *prometheus.Registry
	series *tsdb.Store
	hist   *collector.History
	svc    *collector.ServiceMetrics
	logs   *testenv.SyncBuffer
	dlq    *dlqstore.Store
	// dlqIDs are the seeded dead letters by fixture name (see dlqSeed).
	dlqIDs map[string]int64
	// dlqOpts built the server's dead-letter service (withJobs adds an
	// engine to them).
	dlqOpts dlq.Options
	// spans is the span store behind the server's tracing service (empty
	// until a test writes spans).
	spans *tracing.Store
	// alerts is the server's alerting service over series, with its
	// store and evaluator (no notifier, never started: a test runs
	// alertEval.Cycle when it wants alerts).
	alerts     *alerting.Service
	alertStore *alerting.Store
	alertEval  *alerting.Evaluator

	mu       sync.Mutex
	sessions map[string]*client // logged-in clients by user, for e.admin
}

type envOptions struct {
	ready    []ReadyCheck
	clusters Clusters // overrides the kfake-backed poller
	// rabbitURL adds the real RabbitMQ management API as cluster "mq".
	rabbitURL string
	// rabbitViews replaces the poller's RabbitMQ views (our own type,
	// for the route matrix; the queue tests use rabbitURL).
	rabbitViews []collector.RabbitView
	// metricsPublic serves /metrics without a token (metrics.auth none).
	metricsPublic bool
}

// Users of every env: admin (admin on everything), vera (viewer on
// everything), tess (operator on kafka:demo/* for tenant t1 only) and otto
// (operator on kafka:other/*, a cluster the test does not even have).
var passwords = map[string]string{
	"admin": adminPassword, "vera": viewerPassword, "tess": operatorPassword, "otto": operatorPassword,
}

// envelopes in envTopic: tenant, note (two per tenant say "refund").
var envelopes = []struct{ tenant, note string }{
	{"t1", "first order"}, {"t2", "REFUND for t2 customer"}, {"t1", "refund please"},
	{"t2", "t2 plain order"}, {"t1", "partial Refund"}, {"t2", "another refund t2"},
}

func emailOf(i int) string { return fmt.Sprintf("customer%d.%s@example.com", i, envelopes[i].tenant) }

// customerOf is envelope i's customer: its record key and
// metadata.partition_key, both PII (as in the demo).
func customerOf(i int) string { return fmt.Sprintf("cust-%04d", 100+i) }

// newEnv starts a real kfake cluster with a topic, its DLQ, a group that
// committed part of the topic and a topic of tenant envelopes, polls it
// once through the collector, and builds a Server over a real SQLite
// access store with the users above, the real policy, PII masker and
// message browser.
//
// Lag, exactly: 3 partitions × 10 messages; the group committed 4, 10 and
// 0 → lag 6 + 0 + 10 = 16.
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	c := testenv.Kafka(t, kfake.SeedTopics(3, testTopic, testDLQ), kfake.SeedTopics(1, envTopic, otherTopic))
	cl := testenv.KafkaClient(t, c.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := range int32(3) {
		for range 10 {
			recs = append(recs, &kgo.Record{Topic: testTopic, Partition: p, Value: []byte("{}")})
		}
	}
	recs = append(recs, &kgo.Record{Topic: testDLQ, Partition: 0, Value: []byte("{}")})
	for i, e := range envelopes {
		env, err := delivery.NewEnvelope(testTopic, "checkout", map[string]any{
			"note": e.note, "email": emailOf(i), "card": map[string]any{"number": "4111111111111111", "brand": "visa"},
		}, delivery.Metadata{PartitionKey: customerOf(i), TenantID: e.tenant})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		recs = append(recs, &kgo.Record{Topic: envTopic, Partition: 0, Key: []byte(customerOf(i)), Value: b,
			Headers: []kgo.RecordHeader{{Key: "tenant_id", Value: []byte(e.tenant)}}})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var offs kadm.Offsets
	offs.AddOffset(testTopic, 0, 4, -1)
	offs.AddOffset(testTopic, 1, 10, -1)
	offs.AddOffset(testTopic, 2, 0, -1)
	if err := kadm.NewClient(cl).CommitAllOffsets(ctx, testGroup, offs); err != nil {
		t.Fatal(err)
	}
	src, err := collector.NewKafkaSource(testCluster, cl, collector.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// History: an hour of it, recorded through collector.History from a
	// first real look at the cluster, then the real poller (with Burrow's
	// evaluator) records every refresh on top.
	series, err := tsdb.Open(ctx, tsdb.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { series.Close() })
	hist := collector.NewHistory(collector.HistoryOptions{Store: series})
	first, err := collector.NewPoller(collector.PollerOptions{Sources: []*collector.KafkaSource{src}})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	backfill(ctx, hist, first.Latest()[0], time.Now())
	ev, err := collector.NewEvaluator(collector.EvaluatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	popts := collector.PollerOptions{Sources: []*collector.KafkaSource{src}, Evaluator: ev, Recorder: hist}
	if o.rabbitURL != "" {
		rs, err := collector.NewRabbitSource("mq", o.rabbitURL, collector.RabbitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		popts.Rabbit = []*collector.RabbitSource{rs}
	}
	poller, err := collector.NewPoller(popts)
	if err != nil {
		t.Fatal(err)
	}
	if err := poller.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "console.db"), access.Schema(), alerting.Schema())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := access.NewStore(db, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.EnsureAdmin(ctx, adminPassword); err != nil {
		t.Fatal(err)
	}
	if err := store.AddUser(ctx, "vera", viewerPassword, access.RoleViewer); err != nil {
		t.Fatal(err)
	}
	by, err := store.PrincipalFor(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	for user, b := range map[string]access.Binding{
		"tess": {Subject: "user:tess", Role: access.RoleOperator, Resources: []string{"kafka:demo/*"}, Tenants: []string{"t1"}},
		"otto": {Subject: "user:otto", Role: access.RoleOperator, Resources: []string{"kafka:other/*"}, Tenants: []string{"*"}},
	} {
		if err := store.CreateUser(ctx, by, user, operatorPassword); err != nil {
			t.Fatal(err)
		}
		if _, err := store.AddBinding(ctx, by, b); err != nil {
			t.Fatal(err)
		}
	}
	masker, err := access.NewMasker(access.PIIRules{testTopic: {"email", "card.number", "$key", "$metadata.partition_key"}})
	if err != nil {
		t.Fatal(err)
	}
	browser, err := browse.New(browse.Options{Clients: map[string]*kgo.Client{testCluster: cl}, Masker: masker})
	if err != nil {
		t.Fatal(err)
	}

	dlqStore, dlqIDs := seedDLQ(t)
	dlqOpts := deadLetterOptions(dlqStore, masker, store.Audit())

	logs := &testenv.SyncBuffer{}
	reg := prometheus.NewRegistry()
	svc, err := collector.NewServiceMetrics(collector.ServiceMetricsOptions{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// What cmd/console does: the broker-derived series on /metrics.
	if err := reg.Register(collector.NewExporter(poller)); err != nil {
		t.Fatal(err)
	}
	var clusters Clusters = poller
	if o.rabbitViews != nil {
		clusters = withRabbit{poller, o.rabbitViews}
	}
	if o.clusters != nil {
		clusters = o.clusters
	}
	// The demo's real "deploy the fix" switch, as `console demo` has it.
	fixes, err := demo.OpenFixes(filepath.Join(t.TempDir(), "fixes.json"))
	if err != nil {
		t.Fatal(err)
	}
	spans, traces := newTraceService(t)
	alertStore := alerting.NewStore(db, nil)
	alertEval, err := alerting.NewEvaluator(alerting.EvaluatorOptions{Store: alertStore, History: series})
	if err != nil {
		t.Fatal(err)
	}
	alerts, err := alerting.NewService(alerting.ServiceOptions{
		Store: alertStore, Evaluator: alertEval, History: series, Policy: access.Policy{}, Audit: store.Audit(),
		ScopeOptions: poller.ScopeOptions,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{
		Alerts:            alerts,
		Traces:            traces,
		Logger:            slog.New(slog.NewJSONHandler(logs, nil)),
		Gatherer:          reg,
		Registerer:        reg,
		MetricsPublic:     o.metricsPublic,
		Auth:              store,
		Policy:            access.Policy{},
		Store:             store,
		Audit:             store.Audit(),
		Browser:           browser,
		AuditPayloadReads: true,
		DLQ:               newDeadLetters(t, dlqOpts),
		Clusters:          clusters,
		Series:            series,
		OTLP:              svc,
		Ready:             o.ready,
		Version:           "test",
		Demo:              fixes,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, kafka: cl, store: store, audit: store.Audit(), poller: poller, reg: reg, logs: logs,
		series: series, hist: hist, svc: svc, sessions: map[string]*client{}, dlq: dlqStore, dlqIDs: dlqIDs, dlqOpts: dlqOpts, spans: spans,
		alerts: alerts, alertStore: alertStore, alertEval: alertEval}
}

// withRabbit serves the poller's Kafka views with fixed RabbitMQ views.
type withRabbit struct {
	*collector.Poller
	rabbit []collector.RabbitView
}

func (w withRabbit) RabbitLatest() []collector.RabbitView { return w.rabbit }

// backfill records an hour of history, one snapshot a minute ending a
// minute before now, derived from a real view: the test topic produced at
// 1–3 msgs/s, its DLQ receiving 0.5/s, the group's lag growing from 0 to
// its current value.
func backfill(ctx context.Context, h *collector.History, v collector.ClusterView, now time.Time) {
	for i := 60; i >= 1; i-- {
		w := v
		w.Snapshot.TakenAt = now.Add(-time.Duration(i) * time.Minute)
		w.TopicRates = map[string]float64{testTopic: float64(1 + i%3), testDLQ: 0.5}
		w.Snapshot.Groups = slices.Clone(v.Snapshot.Groups)
		for gi, g := range w.Snapshot.Groups {
			g.Partitions = slices.Clone(g.Partitions)
			var total int64
			for pi := range g.Partitions {
				g.Partitions[pi].Lag = g.Partitions[pi].Lag * int64(60-i) / 60
				total += g.Partitions[pi].Lag
			}
			g.TotalLag = total
			g.MaxLagSeconds, g.MaxLagTopic = float64(60-i), testTopic
			w.Snapshot.Groups[gi] = g
		}
		h.RecordKafka(ctx, w)
	}
}

type response struct {
	status  int
	header  http.Header
	body    string
	cookies []*http.Cookie
}

// do sends one request through the app (no network).
func (e *env) do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := e.srv.App().Test(req, 20_000)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b), cookies: resp.Cookies()}
}

// get requests path with an Authorization header ("" = anonymous) and
// optional extra headers.
func (e *env) get(t *testing.T, path, auth string, headers ...string) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.do(t, req)
}

// client is a browser: it keeps cookies and the page's CSRF token.
type client struct {
	e       *env
	user    string
	cookies map[string]string
	csrf    string
}

func (e *env) anon() *client { return &client{e: e, cookies: map[string]string{}} }

// as returns a client logged in as user through the real login form,
// cached per env.
func (e *env) as(t *testing.T, user string) *client {
	t.Helper()
	e.mu.Lock()
	c, ok := e.sessions[user]
	e.mu.Unlock()
	if ok {
		return c
	}
	c = e.login(t, user, passwords[user])
	e.mu.Lock()
	e.sessions[user] = c
	e.mu.Unlock()
	return c
}

var (
	csrfInputRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	csrfMetaRE  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
)

// login signs in through GET and POST /login and reads the session's CSRF
// token from the next page's meta tag.
func (e *env) login(t *testing.T, user, password string) *client {
	t.Helper()
	c := e.anon()
	c.user = user
	form := c.get(t, "/login")
	m := csrfInputRE.FindStringSubmatch(form.body)
	if form.status != http.StatusOK || m == nil {
		t.Fatalf("login form = %d without a CSRF field:\n%s", form.status, form.body)
	}
	r := c.send(t, http.MethodPost, "/login", url.Values{"username": {user}, "password": {password}, "_csrf": {m[1]}})
	if r.status != http.StatusSeeOther || c.cookies[sessionCookie] == "" {
		t.Fatalf("login as %s = %d, cookies %v\n%s", user, r.status, c.cookies, r.body)
	}
	c.refreshCSRF(t)
	return c
}

func (c *client) refreshCSRF(t *testing.T) {
	t.Helper()
	page := c.get(t, "/queues") // touches no cluster data
	m := csrfMetaRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no csrf-token meta for %s (status %d)", c.user, page.status)
	}
	c.csrf = m[1]
}

func (c *client) request(method, path string, body io.Reader) *http.Request {
	req := httptest.NewRequest(method, path, body)
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	return req
}

func (c *client) keep(r response) response {
	for _, ck := range r.cookies {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return r
}

func (c *client) get(t *testing.T, path string, headers ...string) response {
	t.Helper()
	req := c.request(http.MethodGet, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return c.keep(c.e.do(t, req))
}

// send posts a form as is (no CSRF token added).
func (c *client) send(t *testing.T, method, path string, form url.Values) response {
	t.Helper()
	req := c.request(method, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.keep(c.e.do(t, req))
}

// post posts a form with the session's CSRF token.
func (c *client) post(t *testing.T, path string, form url.Values) response {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("_csrf", c.csrf)
	return c.send(t, http.MethodPost, path, form)
}

// api sends JSON with the CSRF header, as app.js would.
func (c *client) api(t *testing.T, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := c.request(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(csrfHeader, c.csrf)
	return c.keep(c.e.do(t, req))
}

// bearer sends a request with an API token.
func (e *env) bearer(t *testing.T, token, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return e.do(t, req)
}

func (e *env) admin(t *testing.T, path string, headers ...string) response {
	t.Helper()
	return e.as(t, "admin").get(t, path, headers...)
}

// mustContain fails unless body holds every fragment.
func mustContain(t *testing.T, what, body string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(body, f) {
			t.Errorf("%s: missing %q", what, f)
		}
	}
}

// mustNotContain fails if body holds any fragment.
func mustNotContain(t *testing.T, what, body string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if strings.Contains(body, f) {
			t.Errorf("%s: must not contain %q", what, f)
		}
	}
}

// openTag returns the first opening tag in body that contains attr.
func openTag(body, attr string) string {
	i := strings.Index(body, attr)
	if i < 0 {
		return ""
	}
	start := strings.LastIndex(body[:i], "<")
	end := strings.Index(body[i:], ">")
	return body[start : i+end+1]
}
