package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"switchyard/internal/testenv"
)

// backend is a real HTTP server standing in for the user's collector: it
// decodes every export it gets. failFirst answers that many requests 503.
type backend struct {
	srv       *httptest.Server
	got       chan *coltrace.ExportTraceServiceRequest
	headers   chan http.Header
	calls     atomic.Int32
	failFirst int32
}

func newBackend(t *testing.T, failFirst int32) *backend {
	t.Helper()
	b := &backend{got: make(chan *coltrace.ExportTraceServiceRequest, 100), headers: make(chan http.Header, 100), failFirst: failFirst}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.calls.Add(1) <= b.failFirst {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req := &coltrace.ExportTraceServiceRequest{}
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, req) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		b.headers <- r.Header.Clone()
		b.got <- req
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Write(out) //nolint:errcheck // the test's backend
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) next(t *testing.T) *coltrace.ExportTraceServiceRequest {
	t.Helper()
	select {
	case req := <-b.got:
		return req
	case <-time.After(10 * time.Second):
		t.Fatal("the backend got no forwarded export within 10s")
		return nil
	}
}

func newTestForwarder(t *testing.T, o ForwardOptions) *Forwarder {
	t.Helper()
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	f, err := NewForwarder(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		f.Close(ctx) //nolint:errcheck // tests that care close it themselves
	})
	return f
}

// Everything received is stored and also reaches the user's backend, with
// the configured headers, as the same spans.
func TestForwarderSendsWhatIsReceived(t *testing.T) {
	b := newBackend(t, 1) // and one 503 first: retried
	fwd := newTestForwarder(t, ForwardOptions{Endpoint: b.srv.URL + "/v1/traces", Headers: map[string]string{"X-Api-Key": "k1"}})
	r, st := newIngestReceiver(t, ReceiverOptions{Forward: fwd})
	sent := orderRequest(3, time.Now())
	if _, err := r.Ingest(context.Background(), sent); err != nil {
		t.Fatal(err)
	}
	got := b.next(t)
	if !proto.Equal(got, sent) {
		t.Errorf("the backend got a different export:\n%v\nwant\n%v", got, sent)
	}
	if h := <-b.headers; h.Get("X-Api-Key") != "k1" {
		t.Errorf("forwarded headers = %v, want X-Api-Key k1", h)
	}
	if stats, err := st.Stats(context.Background()); err != nil || stats.Spans != 2 {
		t.Errorf("stored %+v, %v; want the 2 spans here too", stats, err)
	}
	testenv.WaitFor(t, "the send to be counted", func() bool { return testutil.ToFloat64(fwd.sent) == 1 })
	if n := b.calls.Load(); n != 2 || testutil.ToFloat64(fwd.failed) != 0 {
		t.Errorf("backend calls = %d, failed = %v; want a 503 retried once and nothing failed", n, testutil.ToFloat64(fwd.failed))
	}
}

// A backend that never answers costs forwarded requests, never ingest: every
// Ingest returns while the backend hangs, the overflow is counted as
// dropped, and Close gives up at its deadline with every request accounted
// for.
func TestForwarderHungBackendNeverBlocksIngest(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); hung.Close() })
	fwd := newTestForwarder(t, ForwardOptions{Endpoint: hung.URL + "/v1/traces", QueueSize: 2, Timeout: time.Minute})
	r, st := newIngestReceiver(t, ReceiverOptions{Forward: fwd})

	const requests = 10
	done := make(chan error, 1)
	go func() {
		for i := range requests {
			if _, err := r.Ingest(context.Background(), orderRequest(byte(10+i), time.Now())); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ingest blocked behind a hung forward backend")
	}
	if stats, err := st.Stats(context.Background()); err != nil || stats.Spans != 2*requests {
		t.Errorf("stored %+v, %v; want every span of the %d exports", stats, err, requests)
	}
	// One request in flight (or about to be), two queued, the rest dropped.
	if d := testutil.ToFloat64(fwd.dropped); d < requests-3 || d > requests-2 {
		t.Errorf("dropped = %v, want %d or %d", d, requests-3, requests-2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := fwd.Close(ctx); err == nil {
		t.Error("Close reported a drained queue while the backend hung")
	}
	total := testutil.ToFloat64(fwd.dropped) + testutil.ToFloat64(fwd.failed) + testutil.ToFloat64(fwd.sent)
	if total != requests {
		t.Errorf("dropped+failed+sent = %v, want every one of the %d requests accounted for", total, requests)
	}
	if fwd.Enqueue(orderRequest(99, time.Now())) {
		t.Error("a closed forwarder took a request")
	}
}

// Close sends what is queued before it returns.
func TestForwarderCloseDrains(t *testing.T) {
	b := newBackend(t, 0)
	f, err := NewForwarder(ForwardOptions{Endpoint: b.srv.URL + "/v1/traces"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if !f.Enqueue(orderRequest(byte(40+i), time.Now())) {
			t.Fatalf("request %d refused by an empty queue", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(b.got); n != 5 {
		t.Errorf("the backend got %d exports by the time Close returned, want 5", n)
	}
}

func TestForwarderOptions(t *testing.T) {
	for _, ep := range []string{"", "collector:4318", "ftp://collector/v1/traces", "http://"} {
		if _, err := NewForwarder(ForwardOptions{Endpoint: ep}); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
}
