package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/sqldb"
)

const (
	adminPassword  = "admin password for tests"
	viewerPassword = "viewer password for tests"
	testTopic      = "orders.order.created.v1"
	testDLQ        = "orders.order.created.v1.dlq"
	testGroup      = "billing-service"
)

// syncBuffer is a log sink the server and the test may touch at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type env struct {
	srv    *Server
	kafka  *kgo.Client
	store  *access.Store
	poller *collector.Poller
	reg    *prometheus.Registry
	logs   *syncBuffer
}

type envOptions struct {
	ready    []ReadyCheck
	clusters Clusters // overrides the kfake-backed poller
}

// newEnv starts a real kfake cluster with a topic, its DLQ and a group that
// committed part of the topic, polls it once through the collector, and
// builds a Server over a real SQLite user store (admin and viewer).
//
// Lag, exactly: 3 partitions × 10 messages; the group committed 4, 10 and
// 0 → lag 6 + 0 + 10 = 16.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, testTopic, testDLQ))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	var recs []*kgo.Record
	for p := range int32(3) {
		for range 10 {
			recs = append(recs, &kgo.Record{Topic: testTopic, Partition: p, Value: []byte("{}")})
		}
	}
	recs = append(recs, &kgo.Record{Topic: testDLQ, Partition: 0, Value: []byte("{}")})
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
	src, err := collector.NewKafkaSource("local", cl)
	if err != nil {
		t.Fatal(err)
	}
	poller, err := collector.NewPoller(collector.PollerOptions{Sources: []*collector.KafkaSource{src}})
	if err != nil {
		t.Fatal(err)
	}
	if err := poller.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "console.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := access.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.EnsureAdmin(ctx, adminPassword); err != nil {
		t.Fatal(err)
	}
	if err := store.AddUser(ctx, "vera", viewerPassword, access.RoleViewer); err != nil {
		t.Fatal(err)
	}

	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	var clusters Clusters = poller
	if o.clusters != nil {
		clusters = o.clusters
	}
	srv, err := New(Options{
		Logger:     slog.New(slog.NewJSONHandler(logs, nil)),
		Gatherer:   reg,
		Registerer: reg,
		Auth:       store,
		Policy:     access.Policy{},
		Clusters:   clusters,
		Ready:      o.ready,
		Version:    "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, kafka: cl, store: store, poller: poller, reg: reg, logs: logs}
}

func basicAuth(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

type response struct {
	status int
	header http.Header
	body   string
}

// get requests path as user ("" = anonymous) with optional extra headers.
func (e *env) get(t *testing.T, path, auth string, headers ...string) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.srv.App().Test(req, 10_000)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (e *env) admin(t *testing.T, path string, headers ...string) response {
	t.Helper()
	return e.get(t, path, basicAuth("admin", adminPassword), headers...)
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
