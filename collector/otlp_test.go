package collector

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"switchyard/delivery"
)

// receiver serves Ingest the way the console's /v1/metrics does.
func receiver(t *testing.T, m *ServiceMetrics) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := m.Ingest(body, strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// What delivery.Telemetry records reaches the console through the real OTLP
// exporter, and /metrics re-exports it with the trace id as an exemplar.
func TestServiceMetricsFromRealOTLPExporter(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewServiceMetrics(ServiceMetricsOptions{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := receiver(t, m)
	ctx := context.Background()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(srv.URL+"/v1/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewPeriodicReader(exp)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(resource.NewSchemaless(semconv.ServiceName("billing-service"))))
	tp := sdktrace.NewTracerProvider()
	tel, err := delivery.NewTelemetry(mp, tp)
	if err != nil {
		t.Fatal(err)
	}
	sctx, span := tp.Tracer("t").Start(ctx, "process")
	traceID := span.SpanContext().TraceID().String()
	for range 3 {
		tel.Record(sctx, delivery.Outcome{System: "kafka", Destination: "orders.order.created.v1", Consumer: "billing", EventType: "orders.order.created.v1", Tenant: "acme", Duration: 20_000_000})
	}
	tel.Record(sctx, delivery.Outcome{System: "kafka", Destination: "orders.order.created.v1", Consumer: "billing", EventType: "orders.order.created.v1", Tenant: "acme", ErrorCode: "PAYMENT_DECLINED", Duration: 5_000_000})
	span.End()
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}

	want := `
# HELP event_failed_total Events whose handling failed for good, as reported by the services over OTLP.
# TYPE event_failed_total counter
event_failed_total{consumer="billing",destination="orders.order.created.v1",error_code="PAYMENT_DECLINED",event_type="orders.order.created.v1",messaging_system="kafka",service="billing-service",tenant="acme"} 1
# HELP event_processed_total Events handled successfully, as reported by the services over OTLP.
# TYPE event_processed_total counter
event_processed_total{consumer="billing",destination="orders.order.created.v1",event_type="orders.order.created.v1",messaging_system="kafka",service="billing-service",tenant="acme"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), PromEventProcessed, PromEventFailed); err != nil {
		t.Error(err)
	}
	var hist *ServicePoint
	pts := m.Points()
	for i, p := range pts {
		if p.Name == PromEventDuration {
			hist = &pts[i]
		}
		if p.TraceID != traceID {
			t.Errorf("%s exemplar trace id = %q, want the span's %s", p.Name, p.TraceID, traceID)
		}
	}
	if hist == nil || hist.Count != 4 || hist.Buckets[len(hist.Buckets)-1] != 4 {
		t.Fatalf("duration histogram = %+v, want 4 observations", hist)
	}
	// 20 ms lands in the 0.025 bucket: three of the four are ≤ 0.025 s.
	for i, b := range hist.Bounds {
		if b == 0.025 && hist.Buckets[i] != 4 {
			t.Errorf("cumulative count at le=0.025 = %d, want 4", hist.Buckets[i])
		}
		if b == 0.005 && hist.Buckets[i] != 1 {
			t.Errorf("cumulative count at le=0.005 = %d, want 1", hist.Buckets[i])
		}
	}
	// The exemplar travels to the OpenMetrics exposition.
	mfs, _ := reg.Gather()
	found := false
	for _, mf := range mfs {
		if mf.GetName() == PromEventProcessed {
			ex := mf.GetMetric()[0].GetCounter().GetExemplar()
			found = ex != nil && ex.GetLabel()[0].GetValue() == traceID
		}
	}
	if !found {
		t.Error("event_processed_total has no exemplar with the trace id")
	}
}

func TestServiceMetricsJSONAndBadInput(t *testing.T) {
	m, _ := NewServiceMetrics(ServiceMetricsOptions{MaxSeries: 2})
	body := `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"notify"}}]},
	"scopeMetrics":[{"metrics":[
	 {"name":"event.processed","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[
	  {"attributes":[{"key":"tenant.id","value":{"stringValue":"t1"}}],"asInt":"5",
	   "exemplars":[{"timeUnixNano":"1700000000000000000","asInt":"1","traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]},
	  {"attributes":[{"key":"tenant.id","value":{"stringValue":"t1"}}],"asInt":"2"},
	  {"attributes":[{"key":"tenant.id","value":{"stringValue":"t2"}}],"asInt":"1"},
	  {"attributes":[{"key":"tenant.id","value":{"stringValue":"t3"}}],"asInt":"1"}]}},
	 {"name":"http.server.duration","gauge":{"dataPoints":[{"asDouble":1}]}}]}]}]}`
	res, err := m.Ingest([]byte(body), true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 3 || res.Rejected != 1 || res.Ignored != 1 {
		t.Errorf("result = %+v, want 3 accepted (delta adds up), 1 refused by the cap of 2 series, 1 ignored", res)
	}
	var t1 *ServicePoint
	for _, p := range m.Points() {
		if p.Labels["tenant"] == "t1" {
			t1 = &p
		}
	}
	if t1 == nil || t1.Value != 7 || t1.TraceID != "5b8efff798038103d269b633813fc60c" {
		t.Errorf("t1 series = %+v, want delta points summed to 7 with the hex trace id", t1)
	}
	if got := testutil.ToFloat64(m.dropped); got != 1 {
		t.Errorf("dropped series counter = %v, want 1", got)
	}
	for _, bad := range []struct {
		body string
		json bool
	}{{"{not json", true}, {`{"resourceMetrics":"nope"}`, true}, {"\x0a\xff\xff\xff", false}} {
		if _, err := m.Ingest([]byte(bad.body), bad.json); !errors.Is(err, ErrBadOTLP) {
			t.Errorf("Ingest(%q) error = %v, want ErrBadOTLP", bad.body, err)
		}
	}
}
