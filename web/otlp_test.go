package web

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"switchyard/access"
	"switchyard/delivery"
)

// serve runs the app on a real listener until the test ends.
func serve(t *testing.T, e *env) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx) //nolint:errcheck // the test is over
		<-done
	})
	return "http://" + ln.Addr().String()
}

func (e *env) post(t *testing.T, path, contentType, auth string, body []byte) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return e.do(t, req)
}

// A service's real OTLP exporter, with an API token, reaches the console;
// /metrics then shows its events next to the broker-derived series.
func TestOTLPReceiverWithRealExporter(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	tok, err := e.store.CreateToken(ctx, "admin", "billing exporter", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, e)
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(base+"/v1/metrics"),
		otlpmetrichttp.WithHeaders(map[string]string{"Authorization": "Bearer " + tok}),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(resource.NewSchemaless(semconv.ServiceName("billing"))))
	t.Cleanup(func() { mp.Shutdown(context.Background()) }) //nolint:errcheck // best effort
	tel, err := delivery.NewTelemetry(mp, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := delivery.Outcome{System: "kafka", Destination: testTopic, Consumer: testGroup, EventType: testTopic, Tenant: "t1", Duration: 20 * time.Millisecond}
	tel.Record(ctx, o)
	tel.Record(ctx, o)
	o.ErrorCode = "PAYMENT_DECLINED"
	tel.Record(ctx, o)
	// The exporter fails on anything but a 2xx with a valid response.
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("export to the console: %v", err)
	}
	m := e.scrape(t)
	mustContain(t, "/metrics", m.body,
		`event_processed_total{consumer="`+testGroup+`",destination="`+testTopic+`",event_type="`+testTopic+`",messaging_system="kafka",service="billing",tenant="t1"} 2`,
		`event_failed_total{`, `error_code="PAYMENT_DECLINED"`,
		`event_processing_duration_seconds_bucket{`,
		// The collector's exporter, wired on the same registry.
		`switchyard_consumer_group_lag{cluster="demo",group="`+testGroup+`",partition="0",topic="`+testTopic+`"} 6`,
		`switchyard_kafka_up{cluster="demo"} 1`,
	)

	// A viewer's token may not ingest.
	vtok, err := e.store.CreateToken(ctx, "vera", "not an exporter", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.post(t, "/v1/metrics", "application/json", "Bearer "+vtok, []byte(`{}`)); r.status != http.StatusForbidden || !strings.Contains(r.body, `"code":"EFORBIDDEN"`) {
		t.Errorf("viewer ingest = %d %s", r.status, r.body)
	}
	// No credentials: 401 in the contract, not the login form.
	if r := e.post(t, "/v1/metrics", "application/json", "", []byte(`{}`)); r.status != http.StatusUnauthorized || !strings.Contains(r.body, `"code":"EUNAUTHORIZED"`) {
		t.Errorf("anonymous ingest = %d %s", r.status, r.body)
	}
	if r := e.post(t, "/v1/metrics", "application/json", "Bearer "+tok, []byte(`not OTLP`)); r.status != http.StatusBadRequest {
		t.Errorf("bad export = %d %s", r.status, r.body)
	}

	// Ingest is counted by account and outcome in /metrics, and leaves no
	// audit record: it is a service's routine push, not an operator's
	// mutation.
	mustContain(t, "/metrics after the exports", e.scrape(t).body,
		`switchyard_otlp_ingest_requests_total{account="admin",outcome="failure"} 1`,
		`switchyard_otlp_ingest_requests_total{account="admin",outcome="success"} 1`,
		`switchyard_otlp_ingest_requests_total{account="vera",outcome="denied"} 1`,
	)
	if recs, _, err := e.audit.List(ctx, access.AuditFilter{Action: "api.mutation"}); err != nil || len(recs) != 0 {
		t.Errorf("audit after the exports = %+v, %v; want no record", recs, err)
	}
}

func TestOTLPReceiverBadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok, err := e.store.CreateToken(context.Background(), "admin", "exporter", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + tok
	for name, tc := range map[string]struct {
		ct   string
		body []byte
		want int
		code string
	}{
		"malformed protobuf": {"application/x-protobuf", []byte("\xff\xff\xff not protobuf"), 400, "EINVALID"},
		"malformed JSON":     {"application/json", []byte(`{"resourceMetrics": [`), 400, "EINVALID"},
		"other media type":   {"text/plain", []byte("event.processed 1"), 400, "EINVALID"},
		"just over 8 MiB":    {"application/x-protobuf", make([]byte, 8<<20+1), 413, delivery.ETOOLARGE},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.post(t, "/v1/metrics", tc.ct, auth, tc.body)
			if r.status != tc.want || !strings.Contains(r.body, `{"error":{"code":"`+tc.code+`"`) {
				t.Errorf("= %d %.300s; want %d %s", r.status, r.body, tc.want, tc.code)
			}
		})
	}
	// Beyond the server's own body limit fasthttp refuses the body before
	// any handler runs (the client may see a reset while still sending);
	// its error still maps to 413 in the contract.
	if code, _ := codeOf(fiber.ErrRequestEntityTooLarge); code != delivery.ETOOLARGE || statusOf(code) != http.StatusRequestEntityTooLarge {
		t.Errorf("fasthttp's body limit maps to %s/%d", code, statusOf(code))
	}
	// A point the receiver refuses is reported as a partial success, in
	// the request's encoding.
	body := `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},
	  "scopeMetrics":[{"metrics":[{"name":"event.processed","sum":{"aggregationTemporality":2,"isMonotonic":true,
	  "dataPoints":[{"asDouble":-1},{"asDouble":3}]}}]}]}]}`
	r := e.post(t, "/v1/metrics", "application/json", auth, []byte(body))
	if r.status != http.StatusOK || !strings.Contains(r.body, `"rejectedDataPoints":"1"`) || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("partial success = %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if r := e.post(t, "/v1/metrics", "application/json", auth, []byte(`{}`)); r.status != http.StatusOK || r.body != "{}" {
		t.Errorf("empty export = %d %s", r.status, r.body)
	}
}
