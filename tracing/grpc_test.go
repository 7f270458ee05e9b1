package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"switchyard/delivery"
)

// grpcFixture is a GRPCServer on its own loopback port over a real store
// and a real access store.
type grpcFixture struct {
	addr   string
	st     *Store
	acc    accessFixture
	mu     sync.Mutex
	counts map[string]int // "account outcome" → exports counted
}

func (f *grpcFixture) counted(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[key]
}

func startGRPC(t *testing.T, maxMessage int) *grpcFixture {
	t.Helper()
	recv, st := newIngestReceiver(t, ReceiverOptions{})
	acc := newAccessFixture(t)
	f := &grpcFixture{st: st, acc: acc, counts: map[string]int{}}
	count := func(account, outcome string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.counts[account+" "+outcome]++
	}
	g, err := NewGRPCServer(GRPCOptions{Receiver: recv, Auth: acc.store, MaxMessage: maxMessage, Count: count})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Stop(ctx)
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	f.addr = ln.Addr().String()
	return f
}

// The OTel SDK's real OTLP/gRPC exporter, gzip-compressed and with an
// ingest token, lands a producer→consumer story in the store.
func TestGRPCReceiverWithRealExporter(t *testing.T) {
	f := startGRPC(t, 0)
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(f.addr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithCompressor("gzip"), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
		otlptracegrpc.WithHeaders(map[string]string{"authorization": "Bearer " + f.acc.admin}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("orders"))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) }) //nolint:errcheck // best effort
	tr := tp.Tracer("test")
	pctx, producer := tr.Start(ctx, "orders.order.created.v1 publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String(delivery.AttrSystem, "kafka"), attribute.String(delivery.AttrDest, "orders.order.created.v1"),
			attribute.String(delivery.AttrCorrelationID, "corr-grpc"), attribute.String(delivery.AttrTenant, "t1")))
	_, consumer := tr.Start(pctx, "orders.order.created.v1 process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.Int(delivery.AttrAttempt, 2), attribute.String(delivery.AttrStep, delivery.StepAttempt)))
	consumer.End()
	producer.End()
	// ForceFlush fails unless the console answered the export with OK.
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("export over gRPC: %v", err)
	}
	tid := TraceID(producer.SpanContext().TraceID())
	spans, _, err := f.st.Spans(ctx, []TraceID{tid}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 {
		t.Fatalf("stored %d spans of trace %s, want 2", len(spans), tid)
	}
	p, c := spans[0], spans[1]
	if p.Service != "orders" || p.Kind != KindProducer || p.CorrelationID != "corr-grpc" || p.Tenant != "t1" || p.Destination != "orders.order.created.v1" {
		t.Errorf("producer read back as %+v", p)
	}
	if c.Kind != KindConsumer || c.Attempt != 2 || c.ParentSpanID != p.SpanID {
		t.Errorf("consumer read back as %+v", c)
	}
}

// rawCodec sends bytes as they are, to put a malformed message on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

func TestGRPCReceiverRefusals(t *testing.T) {
	f := startGRPC(t, 64<<10)
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := coltrace.NewTraceServiceClient(conn)
	withToken := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	valid := orderRequest(7, time.Now())
	big := orderRequest(8, time.Now())
	big.ResourceSpans[0].ScopeSpans[0].Spans[0].Attributes = append(big.ResourceSpans[0].ScopeSpans[0].Spans[0].Attributes,
		strAttr("padding", strings.Repeat("x", 100<<10)))
	bigBytes, err := proto.Marshal(big)
	if err != nil {
		t.Fatal(err)
	}

	for name, tc := range map[string]struct {
		call func() error
		want codes.Code
	}{
		"no token": {func() error { _, err := client.Export(context.Background(), valid); return err }, codes.Unauthenticated},
		"wrong token": {func() error {
			_, err := client.Export(withToken("sy_not-a-token"), valid)
			return err
		}, codes.Unauthenticated},
		"viewer token": {func() error { _, err := client.Export(withToken(f.acc.viewer), valid); return err }, codes.PermissionDenied},
		"malformed message": {func() error {
			var out []byte
			return conn.Invoke(withToken(f.acc.admin), exportMethod, []byte("\xff\xff\xff not protobuf"), &out, grpc.ForceCodec(rawCodec{}))
		}, codes.InvalidArgument},
		"over the limit": {func() error {
			var out []byte
			return conn.Invoke(withToken(f.acc.admin), exportMethod, bigBytes, &out, grpc.ForceCodec(rawCodec{}))
		}, codes.ResourceExhausted},
		// 100 KiB of x compress to almost nothing: the limit holds for
		// the decompressed message.
		"over the limit once decompressed": {func() error {
			_, err := client.Export(withToken(f.acc.admin), big, grpc.UseCompressor("gzip"))
			return err
		}, codes.ResourceExhausted},
	} {
		t.Run(name, func(t *testing.T) {
			if got := status.Code(tc.call()); got != tc.want {
				t.Errorf("code = %s, want %s", got, tc.want)
			}
		})
	}
	if n := gzipLen(t, bigBytes); n >= 64<<10 {
		t.Fatalf("the compressed message (%d bytes) is not under the limit; the decompression case proves nothing", n)
	}
	// None of the refused calls stored anything; a valid one does.
	if st, err := f.st.Stats(context.Background()); err != nil || st.Spans != 0 {
		t.Errorf("after refusals the store holds %+v, %v; want nothing", st, err)
	}
	resp, err := client.Export(withToken(f.acc.admin), valid)
	if err != nil || resp.GetPartialSuccess() != nil {
		t.Fatalf("valid export = %v, %v", resp, err)
	}
	if st, err := f.st.Stats(context.Background()); err != nil || st.Spans != 2 {
		t.Errorf("after a valid export the store holds %+v, %v; want 2 spans", st, err)
	}
	// Exports are counted by account, as over HTTP: the viewer's denied
	// one, the admin's malformed one and valid one. A call without a valid
	// token names no account; one over the limit never reaches the handler.
	for key, want := range map[string]int{"vera denied": 1, "admin failure": 1, "admin success": 1} {
		if got := f.counted(key); got != want {
			t.Errorf("exports counted as %q = %d, want %d", key, got, want)
		}
	}
}

func gzipLen(t *testing.T, b []byte) int {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b) //nolint:errcheck // a bytes.Buffer
	zw.Close()
	return buf.Len()
}
