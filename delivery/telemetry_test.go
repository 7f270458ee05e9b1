package delivery_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
)

func TestTelemetryInjectExtract(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("e8f543ca0aee94038dbcc16ac96bc10b")
	sid, _ := trace.SpanIDFromHex("1560b39a8ea09fb6")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)

	for _, tel := range []*delivery.Telemetry{nil, mustTelemetry(t)} {
		in := delivery.Headers{
			{Key: "traceparent", Value: []byte("00-00000000000000000000000000000001-0000000000000001-00")},
			{Key: "event_id", Value: []byte("df90bfca-2f1a-42ad-a3b5-634cac660ae5")},
		}
		h := tel.Inject(ctx, in)
		n := 0
		for _, x := range h {
			if x.Key == "traceparent" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d traceparent headers after Inject, want the stale one replaced", n)
		}
		if got, want := h.String("traceparent"), "00-e8f543ca0aee94038dbcc16ac96bc10b-1560b39a8ea09fb6-01"; got != want {
			t.Errorf("traceparent = %q, want %q", got, want)
		}
		if h.String("event_id") == "" {
			t.Error("Inject dropped an unrelated header")
		}

		got := trace.SpanContextFromContext(tel.Extract(context.Background(), h))
		if got.TraceID() != tid || got.SpanID() != sid || !got.IsSampled() || !got.IsRemote() {
			t.Errorf("Extract = %v/%v sampled %v remote %v, want the injected span as remote", got.TraceID(), got.SpanID(), got.IsSampled(), got.IsRemote())
		}
		if id := delivery.TraceIDOf(tel.Extract(context.Background(), h)); id != "e8f543ca0aee94038dbcc16ac96bc10b" {
			t.Errorf("TraceIDOf = %q", id)
		}
	}
	if id := delivery.TraceIDOf(context.Background()); id != "" {
		t.Errorf("TraceIDOf(no span) = %q, want empty", id)
	}
}

func mustTelemetry(t *testing.T) *delivery.Telemetry {
	t.Helper()
	tel, err := delivery.NewTelemetry(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tel
}

func TestTelemetryRecord(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	tel, err := delivery.NewTelemetry(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base := delivery.Outcome{System: "kafka", Destination: "orders.order.created.v1", Consumer: "billing-service", EventType: "orders.order.created.v1", Tenant: "t-acme-de", Duration: 20 * time.Millisecond}
	tel.Record(ctx, base)
	tel.Record(ctx, base)
	failed := base
	failed.ErrorCode = "PAYMENT_DECLINED"
	tel.Record(ctx, failed)
	var nilTel *delivery.Telemetry
	nilTel.Record(ctx, base) // records nothing, must not panic

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	var histCount uint64
	var failedCode string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					sums[m.Name] += p.Value
					if m.Name == delivery.MetricFailed {
						v, _ := p.Attributes.Value(attribute.Key(delivery.AttrErrorCode))
						failedCode = v.AsString()
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					histCount += p.Count
				}
			}
		}
	}
	if sums[delivery.MetricProcessed] != 2 || sums[delivery.MetricFailed] != 1 {
		t.Errorf("processed/failed = %d/%d, want 2/1", sums[delivery.MetricProcessed], sums[delivery.MetricFailed])
	}
	if failedCode != "PAYMENT_DECLINED" {
		t.Errorf("event.failed error.code = %q", failedCode)
	}
	if histCount != 3 {
		t.Errorf("duration samples = %d, want 3", histCount)
	}
}
