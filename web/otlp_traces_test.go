package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/sqldb"
	"switchyard/tracing"
)

// ingestEnv is a console web server on a loopback port with a real access
// store, a real span store behind the trace receiver, and self-tracing
// into that same store, as cmd/console wires them.
type ingestEnv struct {
	base          string
	spans         *tracing.Store
	reg           *prometheus.Registry
	admin, viewer string // API tokens: admin may ingest, the viewer not
}

func newIngestEnv(t testing.TB, maxOTLPBody int, selfTrace bool) *ingestEnv {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "console.db"), access.Schema())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	users, err := access.NewStore(db, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := users.EnsureAdmin(ctx, adminPassword); err != nil {
		t.Fatal(err)
	}
	if err := users.AddUser(ctx, "vera", viewerPassword, access.RoleViewer); err != nil {
		t.Fatal(err)
	}
	e := &ingestEnv{reg: prometheus.NewRegistry()}
	if e.admin, err = users.CreateToken(ctx, "admin", "exporter", time.Hour); err != nil {
		t.Fatal(err)
	}
	if e.viewer, err = users.CreateToken(ctx, "vera", "not an exporter", time.Hour); err != nil {
		t.Fatal(err)
	}
	if e.spans, err = tracing.Open(ctx, filepath.Join(t.TempDir(), "traces.db"), tracing.Options{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.spans.Close() })
	recv, err := tracing.NewReceiver(e.spans, tracing.ReceiverOptions{Registerer: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Logger: slog.New(slog.DiscardHandler), Gatherer: e.reg, Registerer: e.reg, Auth: users, Policy: access.Policy{},
		TraceReceiver: recv, MaxOTLPBody: maxOTLPBody, Version: "test"}
	var self *sdktrace.TracerProvider
	if selfTrace {
		self = sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracing.NewLocalExporter(e.spans, e.spans.Limits())),
			sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("switchyard-console"))))
		opts.TracerProvider = self
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx) //nolint:errcheck // the test is over
		<-done
		if self != nil {
			self.Shutdown(ctx) //nolint:errcheck // the test is over
		}
	})
	e.base = "http://" + ln.Addr().String()
	return e
}

// postTraces sends body to /v1/traces over the loopback.
func (e *ingestEnv) postTraces(t testing.TB, contentType, encoding, token string, body []byte) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// scrapeMetrics reads /metrics as a scraper would, with the admin's token.
func (e *ingestEnv) scrapeMetrics(t *testing.T) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// A service's real OTLP/HTTP exporter (protobuf, gzip) with an ingest
// token lands its spans in the store; the console's own server span of
// that request lands there too (self-tracing), and the export is counted.
func TestOTLPTracesWithRealExporter(t *testing.T) {
	e := newIngestEnv(t, 0, true)
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(e.base+"/v1/traces"),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + e.admin}),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("billing"))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) }) //nolint:errcheck // best effort
	_, span := tp.Tracer("test").Start(ctx, "orders.order.created.v1 process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String(delivery.AttrCorrelationID, "corr-http"), attribute.Int(delivery.AttrAttempt, 3),
			attribute.String(delivery.AttrTenant, "t2")))
	span.End()
	// ForceFlush fails unless the console answered 2xx with a valid response.
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("export to the console: %v", err)
	}
	res, err := e.spans.Search(ctx, tracing.SearchQuery{CorrelationID: "corr-http"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Spans) != 1 {
		t.Fatalf("search by correlation id found %d spans, want the exported one", len(res.Spans))
	}
	got := res.Spans[0]
	if got.TraceID != tracing.TraceID(span.SpanContext().TraceID()) || got.Service != "billing" || got.Attempt != 3 || got.Tenant != "t2" {
		t.Errorf("stored span = %+v", got)
	}
	// The console traced the request that brought it, into its own store.
	self, err := e.spans.Search(ctx, tracing.SearchQuery{Service: "switchyard-console", Operation: "POST otlp.traces"}, nil)
	if err != nil || len(self.Spans) != 1 || self.Spans[0].Kind != tracing.KindServer {
		t.Errorf("the console's own span of the export = %+v, %v; want one server span", self.Spans, err)
	}
	mustContain(t, "/metrics", e.scrapeMetrics(t),
		`switchyard_otlp_ingest_requests_total{account="admin",outcome="success"} 1`,
		"switchyard_traces_spans_received_total 1\n",
		`switchyard_traces_spans_flagged_total{flag="future"} 0`)
}

// OTLP/JSON, with its hex ids, is stored under the same trace id and
// answered in JSON.
func TestOTLPTracesJSON(t *testing.T) {
	e := newIngestEnv(t, 0, true)
	start := time.Now().Add(-time.Second).UnixNano()
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"invoices"}}]},
	  "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"invoice render",
	  "kind":1,"startTimeUnixNano":"` + strconv.FormatInt(start, 10) + `","endTimeUnixNano":"` + strconv.FormatInt(start+int64(time.Millisecond), 10) + `",
	  "status":{"code":2,"message":"template missing"}}]}]}]}`
	code, h, resp := e.postTraces(t, "application/json", "", e.admin, []byte(body))
	if code != http.StatusOK || h.Get("Content-Type") != "application/json" || resp != "{}" {
		t.Fatalf("JSON export = %d %q %s", code, h.Get("Content-Type"), resp)
	}
	tid, _ := tracing.ParseTraceID("5b8efff798038103d269b633813fc60c")
	spans, _, err := e.spans.Spans(context.Background(), []tracing.TraceID{tid}, 10)
	if err != nil || len(spans) != 1 {
		t.Fatalf("spans of the JSON trace = %+v, %v", spans, err)
	}
	if s := spans[0]; s.SpanID.String() != "eee19b7ec3c1b174" || s.Service != "invoices" || s.Status != tracing.StatusError || s.StatusMsg != "template missing" {
		t.Errorf("JSON span read back as %+v", s)
	}
}

// Bad input gets a 4xx in the platform error contract, never a 500.
func TestOTLPTracesBadInput(t *testing.T) {
	e := newIngestEnv(t, 64<<10, false)
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 1<<20)) //nolint:errcheck // a bytes.Buffer
	zw.Close()
	for name, tc := range map[string]struct {
		ct, enc, token string
		body           []byte
		want           int
		code           string
	}{
		"malformed protobuf":                    {"application/x-protobuf", "", e.admin, []byte("\xff\xff\xff not protobuf"), 400, delivery.EINVALID},
		"malformed JSON":                        {"application/json", "", e.admin, []byte(`{"resourceSpans": [`), 400, delivery.EINVALID},
		"other media type":                      {"text/plain", "", e.admin, []byte("a span"), 400, delivery.EINVALID},
		"over the limit":                        {"application/x-protobuf", "", e.admin, make([]byte, 64<<10+1), 413, delivery.ETOOLARGE},
		"gzip over the limit once decompressed": {"application/x-protobuf", "gzip", e.admin, bomb.Bytes(), 413, delivery.ETOOLARGE},
		"no token":                              {"application/json", "", "", []byte(`{}`), 401, delivery.EUNAUTHORIZED},
		"viewer token":                          {"application/json", "", e.viewer, []byte(`{}`), 403, delivery.EFORBIDDEN},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, body := e.postTraces(t, tc.ct, tc.enc, tc.token, tc.body)
			if code != tc.want || !strings.Contains(body, `{"error":{"code":"`+tc.code+`"`) {
				t.Errorf("= %d %.300s; want %d %s", code, body, tc.want, tc.code)
			}
		})
	}
	if st, err := e.spans.Search(context.Background(), tracing.SearchQuery{Service: "billing"}, nil); err != nil || len(st.Spans) != 0 {
		t.Errorf("refused exports stored %+v, %v", st.Spans, err)
	}
}
