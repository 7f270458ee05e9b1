package tracing

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/sqldb"
)

// newIngestStore opens a span store in the test's own temp dir.
func newIngestStore(t *testing.T) *Store {
	t.Helper()
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "traces.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newIngestReceiver is a receiver over a fresh store counting into its own
// registry.
func newIngestReceiver(t *testing.T, o ReceiverOptions) (*Receiver, *Store) {
	t.Helper()
	st := newIngestStore(t)
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	r, err := NewReceiver(st, o)
	if err != nil {
		t.Fatal(err)
	}
	return r, st
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// orderRequest is an export of one order's story as a service would send
// it: the orders service's producer span, and billing's consumer attempt
// that failed, with its exception. Trace id n.
func orderRequest(n byte, at time.Time) *coltrace.ExportTraceServiceRequest {
	tid := []byte{0x0a, n, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	ns := func(d time.Duration) uint64 { return uint64(at.Add(d).UnixNano()) }
	res := func(svc string) *resourcepb.Resource {
		return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", svc)}}
	}
	return &coltrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{Resource: res("orders"), ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: tid, SpanId: []byte{1, 0, 0, 0, 0, 0, 0, n}, Name: "orders.order.created.v1 publish",
			Kind: tracepb.Span_SPAN_KIND_PRODUCER, StartTimeUnixNano: ns(0), EndTimeUnixNano: ns(2 * time.Millisecond),
			Attributes: []*commonpb.KeyValue{strAttr(delivery.AttrSystem, "kafka"), strAttr(delivery.AttrDest, "orders.order.created.v1"),
				strAttr(delivery.AttrCorrelationID, "corr-order-1"), strAttr(delivery.AttrTenant, "t1")},
		}}}}},
		{Resource: res("billing"), ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: tid, SpanId: []byte{2, 0, 0, 0, 0, 0, 0, n}, ParentSpanId: []byte{1, 0, 0, 0, 0, 0, 0, n},
			Name: "orders.order.created.v1 process", Kind: tracepb.Span_SPAN_KIND_CONSUMER,
			StartTimeUnixNano: ns(10 * time.Millisecond), EndTimeUnixNano: ns(25 * time.Millisecond),
			Attributes: []*commonpb.KeyValue{strAttr(delivery.AttrSystem, "kafka"), strAttr(delivery.AttrDest, "orders.order.created.v1"),
				strAttr(delivery.AttrCorrelationID, "corr-order-1"), strAttr(delivery.AttrStep, delivery.StepAttempt),
				{Key: delivery.AttrAttempt, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1}}}},
			Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "PAYMENT_DECLINED"},
			Events: []*tracepb.Span_Event{{TimeUnixNano: ns(24 * time.Millisecond), Name: "exception",
				Attributes: []*commonpb.KeyValue{strAttr("exception.type", "PaymentDeclined"), strAttr("exception.message", "card declined")}}},
		}}}}},
	}}
}

func TestReceiverStoresCountsAndFlags(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	now := time.Now()
	r, st := newIngestReceiver(t, ReceiverOptions{Registerer: reg, Now: func() time.Time { return now }})

	res, err := r.Ingest(ctx, orderRequest(1, now.Add(-time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if res != (IngestResult{Accepted: 2}) {
		t.Errorf("ingest = %+v, want 2 accepted", res)
	}
	tid, _ := ParseTraceID("0a010203040506070809" + "0a0b0c0d0e0f")
	spans, _, err := st.Spans(ctx, []TraceID{tid}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 {
		t.Fatalf("stored %d spans of the trace, want 2", len(spans))
	}
	consumer := spans[1]
	if consumer.Service != "billing" || consumer.Attempt != 1 || consumer.Status != StatusError || consumer.CorrelationID != "corr-order-1" ||
		consumer.ParentSpanID != spans[0].SpanID || len(consumer.Events) != 1 {
		t.Errorf("consumer attempt read back as %+v", consumer)
	}

	// A span that ends before it starts, one from the future and one
	// without ids: all stored, each flagged, each counted.
	bad := orderRequest(2, now.Add(-time.Second))
	s0 := bad.ResourceSpans[0].ScopeSpans[0].Spans[0]
	s0.EndTimeUnixNano = s0.StartTimeUnixNano - 1
	s1 := bad.ResourceSpans[1].ScopeSpans[0].Spans[0]
	s1.StartTimeUnixNano, s1.EndTimeUnixNano = uint64(now.Add(time.Hour).UnixNano()), uint64(now.Add(time.Hour+time.Millisecond).UnixNano())
	bad.ResourceSpans[1].ScopeSpans[0].Spans = append(bad.ResourceSpans[1].ScopeSpans[0].Spans,
		&tracepb.Span{Name: "no ids", StartTimeUnixNano: uint64(now.UnixNano()), EndTimeUnixNano: uint64(now.Add(time.Millisecond).UnixNano())})
	if res, err := r.Ingest(ctx, bad); err != nil || res.Accepted != 3 || res.Rejected != 0 {
		t.Errorf("ingest of flawed spans = %+v, %v; want all 3 accepted", res, err)
	}
	if got := testutil.ToFloat64(r.spans); got != 5 {
		t.Errorf("switchyard_traces_spans_received_total = %v, want 5", got)
	}
	for flag, want := range map[string]float64{"non_positive": 1, "future": 1, "no_ids": 1, "attrs_cut": 0} {
		if got := testutil.ToFloat64(r.flagged[flagIndex(t, flag)].c); got != want {
			t.Errorf("switchyard_traces_spans_flagged_total{flag=%q} = %v, want %v", flag, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "switchyard_traces_spans_flagged_total"); err != nil || n != len(ingestFlags) {
		t.Errorf("flagged series on the registry = %d, %v; want one per flag", n, err)
	}
	if stats, err := st.Stats(ctx); err != nil || stats.Spans != 5 {
		t.Errorf("store stats = %+v, %v; want 5 spans", stats, err)
	}

	// An exporter that retries the same export: its spans are stored
	// again, flagged and counted as duplicates (the span without ids got
	// fresh random ones, so it is no duplicate).
	if res, err := r.Ingest(ctx, bad); err != nil || res.Accepted != 3 {
		t.Errorf("re-ingest = %+v, %v; want 3 accepted", res, err)
	}
	if got := testutil.ToFloat64(r.flagged[flagIndex(t, "duplicate")].c); got != 2 {
		t.Errorf("switchyard_traces_spans_flagged_total{flag=\"duplicate\"} = %v, want 2", got)
	}

	// An empty export is fine and stores nothing.
	if res, err := r.Ingest(ctx, &coltrace.ExportTraceServiceRequest{}); err != nil || res != (IngestResult{}) {
		t.Errorf("empty export = %+v, %v", res, err)
	}
}

func flagIndex(t *testing.T, name string) int {
	t.Helper()
	for i, f := range ingestFlags {
		if f.name == name {
			return i
		}
	}
	t.Fatalf("no flag %q", name)
	return -1
}

// accessFixture is a real access store with an admin token (may ingest)
// and a viewer token (may not).
type accessFixture struct {
	store         *access.Store
	admin, viewer string
}

func newAccessFixture(t *testing.T) accessFixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "console.db"), access.Schema())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := access.NewStore(db, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.EnsureAdmin(ctx, "correct-horse-battery"); err != nil {
		t.Fatal(err)
	}
	if err := store.AddUser(ctx, "vera", "correct-horse-viewer", access.RoleViewer); err != nil {
		t.Fatal(err)
	}
	f := accessFixture{store: store}
	if f.admin, err = store.CreateToken(ctx, "admin", "exporter", time.Hour); err != nil {
		t.Fatal(err)
	}
	if f.viewer, err = store.CreateToken(ctx, "vera", "not an exporter", time.Hour); err != nil {
		t.Fatal(err)
	}
	return f
}
