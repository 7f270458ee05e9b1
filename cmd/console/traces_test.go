package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"switchyard/demo"
	"switchyard/internal/testenv"
	"switchyard/tracing"
)

func TestTracingConfig(t *testing.T) {
	c := defaultConfig()
	if !c.Tracing.Store || c.Tracing.GRPCAddr != ":4317" || time.Duration(c.Tracing.MaxAge) != 72*time.Hour || c.Tracing.MaxBytes != 2<<30 {
		t.Errorf("tracing defaults = %+v, want the store on, gRPC on :4317, 72h, 2 GiB", c.Tracing)
	}
	if err := c.loadEnv(envMap("CONSOLE_TRACING_GRPC_ADDR", "off")); err != nil || c.Tracing.GRPCAddr != "" {
		t.Errorf("CONSOLE_TRACING_GRPC_ADDR=off gives %q, %v; want no gRPC receiver", c.Tracing.GRPCAddr, err)
	}
	c.Tracing.GRPCAddr = "4317"
	c.Tracing.MaxAge = Duration(time.Minute)
	c.Tracing.MaxAttrs = 0
	c.Tracing.Forward.Endpoint = "collector:4318"
	c.Tracing.Forward.Queue = 0
	c.OTLP.MaxBody = 10
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid tracing config accepted")
	}
	for _, want := range []string{`tracing.grpc_addr "4317"`, "max_age must be at least 1h", "max_attrs must be at least 1",
		"tracing.forward.endpoint must be an http://", "tracing.forward.queue", "otlp.max_body"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// The demo on a real console: the demo services' spans reach the span
// store through the console's own /v1/traces and are forwarded to the
// configured backend, the console traces its own requests into the same
// store, and a service exporting over OTLP/gRPC with a token made offline
// lands its spans there too.
func TestDemoTracesLandInTheStore(t *testing.T) {
	forwarded := make(chan *coltrace.ExportTraceServiceRequest, 1000)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &coltrace.ExportTraceServiceRequest{}
		if proto.Unmarshal(body, req) != nil || r.Header.Get("X-Tenant") != "acme" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		select {
		case forwarded <- req:
		default:
		}
	}))
	t.Cleanup(backend.Close)

	dir := t.TempDir()
	m := NewMain(io.Discard, io.Discard, envMap(
		"CONSOLE_ADDR", "127.0.0.1:0", "DEMO_KAFKA_ADDR", "127.0.0.1:0", "CONSOLE_DATA_DIR", dir,
		"CONSOLE_ADMIN_PASSWORD", "correct-horse-battery",
	))
	m.DemoMode = true
	if err := m.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	m.Config.Demo.Rate = 200
	m.Config.Tracing.Forward = TracingForward{Endpoint: backend.URL + "/v1/traces", Headers: map[string]string{"X-Tenant": "acme"}, Queue: 100}
	ctx := context.Background()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if m.traces == nil || m.grpc == nil {
		t.Fatal("the span store or the gRPC receiver is off by default")
	}
	if code, r := readyz(t, m.URL); code != http.StatusOK || !r.Checks["traces"].OK {
		t.Errorf("/readyz = %d %+v, want the span store's check ok", code, r)
	}

	testenv.WaitWithin(t, 60*time.Second, "a demo service's consumer span in the store", func() bool {
		res, err := m.traces.Search(ctx, tracing.SearchQuery{Service: demo.ServiceBilling, Limit: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Spans) == 1
	})
	select {
	case req := <-forwarded:
		if len(req.GetResourceSpans()) == 0 {
			t.Errorf("forwarded an empty export")
		}
	case <-time.After(30 * time.Second):
		t.Error("nothing reached the forward endpoint within 30s")
	}

	// Self-tracing: a request's server span, in the console's own store.
	resp, err := http.Get(m.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := m.tracer.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := m.traces.Search(ctx, tracing.SearchQuery{Service: "switchyard-console", Operation: "GET healthz", Limit: 1}, nil)
	if err != nil || len(res.Spans) != 1 || res.Spans[0].Kind != tracing.KindServer {
		t.Errorf("the console's own span of GET /healthz = %+v, %v", res.Spans, err)
	}

	// OTLP/gRPC with a token made offline.
	tok := adminToken(t, dir)
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(m.grpcLn.Addr().String()), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithHeaders(map[string]string{"authorization": "Bearer " + tok}),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("grpc-exporter"))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) }) //nolint:errcheck // best effort
	_, span := tp.Tracer("test").Start(ctx, "over grpc", trace.WithSpanKind(trace.SpanKindProducer))
	span.End()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("export over gRPC: %v", err)
	}
	res, err = m.traces.Search(ctx, tracing.SearchQuery{Service: "grpc-exporter"}, nil)
	if err != nil || len(res.Spans) != 1 || res.Spans[0].Name != "over grpc" {
		t.Errorf("the gRPC-exported span = %+v, %v", res.Spans, err)
	}
}

// A demo keeps 256 MiB of spans by default, not a production console's
// 2 GiB; tracing.max_bytes in the config file still decides.
func TestDemoTraceRetentionDefault(t *testing.T) {
	for _, tc := range []struct {
		demo   bool
		config string
		want   int64
	}{
		{false, `{}`, tracing.DefaultMaxBytes},
		{true, `{}`, demoTraceMaxBytes},
		{true, `{"tracing": {"max_bytes": 1073741824}}`, 1 << 30},
	} {
		cfg := filepath.Join(t.TempDir(), "console.json")
		if err := os.WriteFile(cfg, []byte(tc.config), 0o600); err != nil {
			t.Fatal(err)
		}
		m := NewMain(io.Discard, io.Discard, envMap("CONSOLE_CONFIG", cfg, "KAFKA_BROKERS", "127.0.0.1:1"))
		m.DemoMode = tc.demo
		if err := m.ParseFlags(nil); err != nil {
			t.Fatal(err)
		}
		if got := m.Config.Tracing.MaxBytes; got != tc.want {
			t.Errorf("demo %v, config %s: tracing.max_bytes %d, want %d", tc.demo, tc.config, got, tc.want)
		}
	}
}
