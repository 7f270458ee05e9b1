package tracing

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// LocalExporter is an OpenTelemetry SDK span exporter that writes the
// console's own spans (its requests, redrive jobs, broker calls) into its
// own span store, so that the console traces itself without a collector.
// The spans go through the same conversion as received ones (FromOTLP:
// caps, flags, Derive), so a self-traced span reads like any other. Use it
// under a batcher (sdktrace.WithBatcher): ExportSpans writes once per
// batch.
type LocalExporter struct {
	st       *Store
	lim      Limits
	now      func() time.Time
	shutdown atomic.Bool
}

// NewLocalExporter returns an exporter into st with the caps lim.
func NewLocalExporter(st *Store, lim Limits) *LocalExporter {
	return &LocalExporter{st: st, lim: lim, now: time.Now}
}

var _ sdktrace.SpanExporter = (*LocalExporter)(nil)

// ExportSpans converts and writes the batch in one transaction.
func (e *LocalExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.shutdown.Load() || len(spans) == 0 {
		return nil
	}
	out := FromOTLP(sdkToOTLP(spans), e.lim, e.now())
	if err := e.st.Write(ctx, out); err != nil {
		return fmt.Errorf("tracing: store the console's own spans: %w", err)
	}
	return nil
}

// Shutdown makes later exports do nothing; the store is closed by its owner.
func (e *LocalExporter) Shutdown(context.Context) error {
	e.shutdown.Store(true)
	return nil
}

// toOTLP builds the export request an OTLP exporter would send for spans,
// grouped by resource and instrumentation scope.
func sdkToOTLP(spans []sdktrace.ReadOnlySpan) *coltrace.ExportTraceServiceRequest {
	type scopeKey struct {
		res   *resource.Resource
		scope instrumentation.Scope
	}
	req := &coltrace.ExportTraceServiceRequest{}
	byRes := map[*resource.Resource]*tracepb.ResourceSpans{}
	byScope := map[scopeKey]*tracepb.ScopeSpans{}
	for _, s := range spans {
		res := s.Resource()
		rs := byRes[res]
		if rs == nil {
			rs = &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: sdkKeyValues(res.Attributes())}, SchemaUrl: res.SchemaURL()}
			byRes[res] = rs
			req.ResourceSpans = append(req.ResourceSpans, rs)
		}
		k := scopeKey{res, s.InstrumentationScope()}
		ss := byScope[k]
		if ss == nil {
			ss = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: k.scope.Name, Version: k.scope.Version}, SchemaUrl: k.scope.SchemaURL}
			byScope[k] = ss
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		ss.Spans = append(ss.Spans, sdkSpanToOTLP(s))
	}
	return req
}

func sdkSpanToOTLP(s sdktrace.ReadOnlySpan) *tracepb.Span {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	p := &tracepb.Span{
		TraceId:                tid[:],
		SpanId:                 sid[:],
		TraceState:             sc.TraceState().String(),
		Name:                   s.Name(),
		Kind:                   tracepb.Span_SpanKind(s.SpanKind()), // the SDK's kinds are OTLP's numbers
		StartTimeUnixNano:      otlpNano(s.StartTime()),
		EndTimeUnixNano:        otlpNano(s.EndTime()),
		Attributes:             sdkKeyValues(s.Attributes()),
		DroppedAttributesCount: uint32(max(s.DroppedAttributes(), 0)),
		DroppedEventsCount:     uint32(max(s.DroppedEvents(), 0)),
		DroppedLinksCount:      uint32(max(s.DroppedLinks(), 0)),
	}
	if parent := s.Parent(); parent.SpanID().IsValid() {
		psid := parent.SpanID()
		p.ParentSpanId = psid[:]
	}
	switch st := s.Status(); st.Code {
	case otelcodes.Error:
		p.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: st.Description}
	case otelcodes.Ok:
		p.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}
	}
	for _, ev := range s.Events() {
		p.Events = append(p.Events, &tracepb.Span_Event{TimeUnixNano: otlpNano(ev.Time), Name: ev.Name,
			Attributes: sdkKeyValues(ev.Attributes), DroppedAttributesCount: uint32(max(ev.DroppedAttributeCount, 0))})
	}
	for _, l := range s.Links() {
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		p.Links = append(p.Links, &tracepb.Span_Link{TraceId: ltid[:], SpanId: lsid[:], TraceState: l.SpanContext.TraceState().String(),
			Attributes: sdkKeyValues(l.Attributes), DroppedAttributesCount: uint32(max(l.DroppedAttributeCount, 0))})
	}
	return p
}

func otlpNano(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

func sdkKeyValues(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	if len(attrs) == 0 {
		return nil
	}
	out := make([]*commonpb.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		out = append(out, &commonpb.KeyValue{Key: string(kv.Key), Value: sdkAnyValue(kv.Value)})
	}
	return out
}

func sdkAnyValue(v attribute.Value) *commonpb.AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}}
	case attribute.INT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}}
	case attribute.FLOAT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}}
	case attribute.STRING:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.AsString()}}
	case attribute.BOOLSLICE:
		return sdkArray(v.AsBoolSlice(), func(b bool) *commonpb.AnyValue { return sdkAnyValue(attribute.BoolValue(b)) })
	case attribute.INT64SLICE:
		return sdkArray(v.AsInt64Slice(), func(n int64) *commonpb.AnyValue { return sdkAnyValue(attribute.Int64Value(n)) })
	case attribute.FLOAT64SLICE:
		return sdkArray(v.AsFloat64Slice(), func(f float64) *commonpb.AnyValue { return sdkAnyValue(attribute.Float64Value(f)) })
	case attribute.STRINGSLICE:
		return sdkArray(v.AsStringSlice(), func(s string) *commonpb.AnyValue { return sdkAnyValue(attribute.StringValue(s)) })
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.Emit()}}
}

func sdkArray[T any](xs []T, conv func(T) *commonpb.AnyValue) *commonpb.AnyValue {
	vals := make([]*commonpb.AnyValue, len(xs))
	for i, x := range xs {
		vals[i] = conv(x)
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vals}}}
}
