package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// IngestResult says what became of one export request's spans. Rejected
// spans are reported to the exporter as a partial success.
type IngestResult struct {
	Accepted, Rejected int
}

// ReceiverOptions configures a Receiver. The zero value stores and
// forwards nothing else and counts into no registry.
type ReceiverOptions struct {
	// Forward, when set, gets every decoded request to send on to the
	// user's tracing backend.
	Forward *Forwarder
	// Now is the clock that judges future timestamps; default time.Now.
	Now func() time.Time
	// Registerer receives the span counters; nil registers nowhere.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Receiver is what both OTLP receivers (HTTP in package web, gRPC in
// GRPCServer) hand a decoded export request to: it turns the request into
// spans once, writes them in one transaction, counts them and gives the
// request to the forwarder. Keeping that in one place means both transports
// store, flag and forward alike.
type Receiver struct {
	st      *Store
	fwd     *Forwarder
	now     func() time.Time
	log     *slog.Logger
	spans   prometheus.Counter
	refused prometheus.Counter
	flagged []flagCounter
}

// flagCounter is the flagged-span counter of one ingest flag, resolved
// once so that counting costs no label lookup per span.
type flagCounter struct {
	flag Flags
	c    prometheus.Counter
}

// ingestFlags are the flags ingest sets (the first five of flagNames),
// each a flag label of switchyard_traces_spans_flagged_total.
var ingestFlags = flagNames[:5]

// NewReceiver builds a receiver writing into st.
func NewReceiver(st *Store, o ReceiverOptions) (*Receiver, error) {
	if st == nil {
		return nil, errors.New("tracing receiver: a store is required")
	}
	r := &Receiver{st: st, fwd: o.Forward, now: o.Now, log: o.Logger,
		spans: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_traces_spans_received_total",
			Help: "Spans received over OTLP (HTTP and gRPC) and stored."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_traces_spans_rejected_total",
			Help: "Spans received over OTLP and not stored (reported to the exporter as a partial success)."}),
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	flagged := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_traces_spans_flagged_total",
		Help: "Spans stored with a flag saying what was wrong with them as received: attrs_cut, duplicate, non_positive (duration), future, no_ids."},
		[]string{"flag"})
	for _, f := range ingestFlags {
		r.flagged = append(r.flagged, flagCounter{f.flag, flagged.WithLabelValues(f.name)})
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{r.spans, r.refused, flagged} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("tracing receiver: %w", err)
			}
		}
	}
	return r, nil
}

// Ingest stores the spans of req in one write and forwards req (without
// waiting). A span is stored whatever is wrong with it, flagged; the only
// spans rejected are those FromOTLP could not turn into a span at all.
// Errors are the store's (internal): the exporter should retry.
func (r *Receiver) Ingest(ctx context.Context, req *coltrace.ExportTraceServiceRequest) (IngestResult, error) {
	if req == nil {
		return IngestResult{}, nil
	}
	total := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			total += len(ss.GetSpans())
		}
	}
	if total == 0 {
		return IngestResult{}, nil
	}
	// Forwarded whatever the store makes of it: the user's backend must
	// not lose spans to a problem of the console's own store.
	if r.fwd != nil {
		r.fwd.Enqueue(req)
	}
	spans := FromOTLP(req, r.st.Limits(), r.now())
	if len(spans) > 0 {
		if err := r.st.Write(ctx, spans); err != nil {
			return IngestResult{}, fmt.Errorf("store %d spans: %w", len(spans), err)
		}
	}
	res := IngestResult{Accepted: len(spans), Rejected: max(total-len(spans), 0)}
	r.spans.Add(float64(res.Accepted))
	if res.Rejected > 0 {
		r.refused.Add(float64(res.Rejected))
	}
	for i := range spans {
		if f := spans[i].Flags; f != 0 {
			for _, fc := range r.flagged {
				if f.Has(fc.flag) {
					fc.c.Inc()
				}
			}
		}
	}
	return res, nil
}
