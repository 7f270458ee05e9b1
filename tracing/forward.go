package tracing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// DefaultForwardQueue is how many export requests wait for the forwarder
// before new ones are dropped.
const DefaultForwardQueue = 1000

// forwardRetries is how many times a failed send is tried again: enough for
// a collector's restart blip, few enough that a dead one costs the queue
// seconds, not minutes.
const forwardRetries = 2

// ForwardOptions configures a Forwarder. Endpoint is required.
type ForwardOptions struct {
	// Endpoint is the OTLP/HTTP traces URL of the user's backend
	// (a collector, Jaeger, Tempo), e.g. http://collector:4318/v1/traces.
	Endpoint string
	// Headers are sent with every request (an API key, a tenant header).
	Headers map[string]string
	// QueueSize bounds the requests waiting to be sent; default
	// DefaultForwardQueue. When full, new requests are dropped and counted.
	QueueSize int
	// Timeout bounds one attempt; default 10s.
	Timeout time.Duration
	// Registerer receives the forwarder's counters; nil registers nowhere.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Client sends the requests; default an http.Client of its own.
	Client *http.Client
}

// Forwarder sends every received export request on to another OTLP
// endpoint, so that the console can sit in front of the user's tracing
// backend. Ingest only enqueues (Enqueue never blocks): one goroutine,
// owned by the Forwarder and stopped by Close, sends the queue in order,
// retrying a failed request twice; a full queue drops the newest request
// and counts it in switchyard_traces_forward_dropped_total. A slow or dead
// backend therefore costs spans at the backend, never ingest latency.
type Forwarder struct {
	endpoint string
	headers  map[string]string
	timeout  time.Duration
	client   *http.Client
	log      *slog.Logger

	mu     sync.RWMutex // guards closed against a send on the closed queue
	closed bool
	queue  chan *coltrace.ExportTraceServiceRequest
	// ctx ends the sends in flight once Close's deadline has passed.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	sent, failed, dropped prometheus.Counter
}

// NewForwarder validates o and starts the sending goroutine.
func NewForwarder(o ForwardOptions) (*Forwarder, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracing forward: endpoint %q must be an http:// or https:// URL", o.Endpoint)
	}
	if o.QueueSize < 0 || o.Timeout < 0 {
		return nil, errors.New("tracing forward: queue size and timeout must not be negative")
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultForwardQueue
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Forwarder{
		endpoint: o.Endpoint, headers: o.Headers, timeout: o.Timeout, client: o.Client, log: o.Logger,
		queue: make(chan *coltrace.ExportTraceServiceRequest, o.QueueSize), ctx: ctx, cancel: cancel, done: make(chan struct{}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_traces_forward_sent_total",
			Help: "OTLP trace export requests forwarded to tracing.forward.endpoint."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_traces_forward_failed_total",
			Help: "OTLP trace export requests the forward endpoint refused or did not answer, retries included."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_traces_forward_dropped_total",
			Help: "OTLP trace export requests not forwarded because the forward queue was full (or the console was stopping)."}),
	}
	if o.Registerer != nil {
		queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "switchyard_traces_forward_queue_length",
			Help: "OTLP trace export requests waiting to be forwarded."}, func() float64 { return float64(len(f.queue)) })
		for _, c := range []prometheus.Collector{f.sent, f.failed, f.dropped, queued} {
			if err := o.Registerer.Register(c); err != nil {
				cancel()
				return nil, fmt.Errorf("tracing forward: %w", err)
			}
		}
	}
	go f.run()
	return f, nil
}

// Enqueue hands req to the sending goroutine and returns at once: false
// when the queue was full (or the forwarder closed) and req was dropped.
// req must not be changed afterwards; it is marshalled when sent.
func (f *Forwarder) Enqueue(req *coltrace.ExportTraceServiceRequest) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		f.dropped.Inc()
		return false
	}
	select {
	case f.queue <- req:
		return true
	default:
		f.dropped.Inc()
		return false
	}
}

// Close stops taking requests and sends what is queued until ctx ends;
// what is left then is dropped (and counted) and the send in flight is
// abandoned. It returns once the goroutine has stopped.
func (f *Forwarder) Close(ctx context.Context) error {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		close(f.queue)
	}
	f.mu.Unlock()
	select {
	case <-f.done:
		f.cancel()
		return nil
	case <-ctx.Done():
		f.cancel()
		<-f.done
		return fmt.Errorf("tracing forward: queue not drained: %w", ctx.Err())
	}
}

func (f *Forwarder) run() {
	defer close(f.done)
	for req := range f.queue {
		if f.ctx.Err() != nil {
			f.dropped.Inc() // Close's deadline passed: count the rest
			continue
		}
		f.send(req)
	}
}

// send marshals req and posts it, retrying after a network error or a
// 429/502/503/504 with a short growing pause; any other refusal is final.
func (f *Forwarder) send(req *coltrace.ExportTraceServiceRequest) {
	body, err := proto.Marshal(req)
	if err != nil {
		f.failed.Inc()
		f.log.Warn("tracing forward: marshal", "err", err)
		return
	}
	pause := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		retry, err := f.post(body)
		if err == nil {
			f.sent.Inc()
			return
		}
		if !retry || attempt == forwardRetries {
			f.failed.Inc()
			f.log.Warn("tracing forward: request not delivered", "endpoint", f.endpoint, "attempts", attempt+1, "err", err)
			return
		}
		select {
		case <-f.ctx.Done():
			f.failed.Inc()
			return
		case <-time.After(pause):
		}
		pause *= 2
	}
}

// post sends one attempt; retry says whether a failure may pass on its own.
func (f *Forwarder) post(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(f.ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range f.headers {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // only to reuse the connection
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusBadGateway,
		resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		return true, fmt.Errorf("status %d", resp.StatusCode)
	}
	return false, fmt.Errorf("status %d", resp.StatusCode)
}
