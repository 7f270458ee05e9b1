package tracing

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
)

// The console's own spans, through the SDK and the local exporter, read
// back from its store like received ones: kinds, parentage, status, the
// exception event, a link into another trace and the derived fields.
func TestLocalExporterStoresTheConsolesOwnSpans(t *testing.T) {
	ctx := context.Background()
	st := newIngestStore(t)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(NewLocalExporter(st, Limits{MaxAttrLen: 64})),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("switchyard-console"), semconv.ServiceVersion("test"))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) }) //nolint:errcheck // best effort
	tr := tp.Tracer("switchyard/web")

	linked := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9, 9, 9, 15: 1}, SpanID: trace.SpanID{7, 7, 7, 7: 1}, TraceFlags: trace.FlagsSampled})
	sctx, server := tr.Start(ctx, "POST /dead-letters/redrive", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.route", "/dead-letters/redrive"), attribute.Int("http.response.status_code", 500),
			attribute.StringSlice("tags", []string{"a", "b"}), attribute.String("long", strings.Repeat("y", 200))))
	_, producer := tr.Start(sctx, "orders.order.created.v1 redrive", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("why", "redrive")}}),
		trace.WithAttributes(attribute.String(delivery.AttrSystem, "kafka"), attribute.String(delivery.AttrDest, "orders.order.created.v1"),
			attribute.String(delivery.AttrStep, delivery.StepRedrive), attribute.String(delivery.AttrCorrelationID, "corr-self")))
	producer.RecordError(errors.New("broker unreachable"))
	producer.SetStatus(codes.Error, "broker unreachable")
	producer.End()
	server.End()

	tid := TraceID(server.SpanContext().TraceID())
	spans, _, err := st.Spans(ctx, []TraceID{tid}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 {
		t.Fatalf("stored %d of the console's spans, want 2", len(spans))
	}
	srv, prod := spans[0], spans[1]
	if srv.Name != "POST /dead-letters/redrive" || srv.Kind != KindServer || srv.Service != "switchyard-console" || !srv.ParentSpanID.IsZero() {
		t.Errorf("server span read back as %+v", srv)
	}
	if v, _ := srv.Attr("tags"); v != `["a","b"]` {
		t.Errorf("a string slice attribute reads %q", v)
	}
	if v, _ := srv.Attr("http.response.status_code"); v != "500" {
		t.Errorf("an int attribute reads %q", v)
	}
	if !srv.Flags.Has(FlagAttrsCut) {
		t.Errorf("a 200-byte value under a 64-byte cap was not flagged cut: flags %b", srv.Flags)
	}
	if prod.Kind != KindProducer || prod.ParentSpanID != srv.SpanID || prod.Status != StatusError || prod.StatusMsg != "broker unreachable" ||
		prod.Step != delivery.StepRedrive || prod.CorrelationID != "corr-self" || prod.Destination != "orders.order.created.v1" {
		t.Errorf("producer span read back as %+v", prod)
	}
	if len(prod.Events) != 1 || prod.Events[0].Name != "exception" {
		t.Errorf("events = %+v, want the recorded exception", prod.Events)
	}
	if len(prod.Links) != 1 || prod.Links[0].TraceID != TraceID(linked.TraceID()) || prod.Links[0].SpanID != SpanID(linked.SpanID()) {
		t.Errorf("links = %+v, want the one to %s", prod.Links, linked.TraceID())
	}
	if got, err := st.LinkingTraces(ctx, []TraceID{TraceID(linked.TraceID())}, 10); err != nil || len(got) != 1 || got[0] != tid {
		t.Errorf("traces linking to the dead-lettered one = %v, %v; want the redrive's", got, err)
	}
}

// The SDK's span kinds are OTLP's numbers, which the conversion relies on.
func TestSDKKindsAreOTLPs(t *testing.T) {
	for k, want := range map[trace.SpanKind]Kind{trace.SpanKindInternal: KindInternal, trace.SpanKindServer: KindServer,
		trace.SpanKindClient: KindClient, trace.SpanKindProducer: KindProducer, trace.SpanKindConsumer: KindConsumer} {
		if Kind(k) != want {
			t.Errorf("%s = %d, want %d", k, k, want)
		}
	}
}
