package deliverytest

import (
	"context"
	"slices"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"switchyard/delivery"
	"switchyard/internal/testenv"
)

// NewSpanRecorder returns the OTel SDK's in-memory span recorder behind a
// real tracer provider, and the delivery.Telemetry the runners and
// senders take, so that a test reads the spans they really record.
func NewSpanRecorder(t testing.TB) (*tracetest.SpanRecorder, *delivery.Telemetry) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tel, err := delivery.NewTelemetry(nil, tp)
	if err != nil {
		t.Fatal(err)
	}
	return rec, tel
}

// Named matches the spans called name.
func Named(name string) func(sdktrace.ReadOnlySpan) bool {
	return func(s sdktrace.ReadOnlySpan) bool { return s.Name() == name }
}

// EndedSpans returns the ended spans of rec that match, in start order.
func EndedSpans(rec *tracetest.SpanRecorder, match func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if match(s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	return out
}

// WaitSpans waits up to within until n spans that match have ended and
// returns them (all that match, at least n) in start order.
func WaitSpans(t testing.TB, within time.Duration, rec *tracetest.SpanRecorder, what string, n int,
	match func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	var got []sdktrace.ReadOnlySpan
	testenv.WaitWithin(t, within, what, func() bool {
		got = EndedSpans(rec, match)
		return len(got) >= n
	})
	return got
}

// SpanAttr returns the value of the attribute key of s as text, or "".
func SpanAttr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}
