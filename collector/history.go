package collector

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"switchyard/tsdb"
)

// History writes what the console collects into the time-series store: the
// broker-derived series of every good snapshot (as a Recorder of the
// Poller), and the services' event metrics every Interval (Run).
type History struct {
	store    *tsdb.Store
	svc      *ServiceMetrics
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
}

var _ Recorder = (*History)(nil)

// HistoryOptions configures History; Store is required.
type HistoryOptions struct {
	Store    *tsdb.Store
	Service  *ServiceMetrics // optional
	Interval time.Duration   // for service metrics; default DefaultPollInterval
	Logger   *slog.Logger
	Now      func() time.Time
}

// NewHistory returns a History over a store.
func NewHistory(opts HistoryOptions) *History {
	if opts.Interval <= 0 {
		opts.Interval = DefaultPollInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &History{store: opts.Store, svc: opts.Service, interval: opts.Interval, log: opts.Logger, now: opts.Now}
}

func toSamples(ms []Metric, at time.Time) []tsdb.Sample {
	out := make([]tsdb.Sample, 0, len(ms))
	for _, m := range ms {
		out = append(out, tsdb.Sample{Series: tsdb.L(append([]string{tsdb.MetricName, m.Name}, m.Labels...)...), T: at, V: m.Value})
	}
	return out
}

// RecordKafka appends a cluster view's series at its snapshot time. A write
// cut short by the console stopping (ctx cancelled) is not worth a warning.
func (h *History) RecordKafka(ctx context.Context, v ClusterView) {
	at := v.Snapshot.TakenAt
	if !v.Reachable || at.IsZero() {
		at = v.LastAttempt
	}
	if err := h.store.Append(ctx, toSamples(KafkaMetrics(v), at)); err != nil && !errors.Is(ctx.Err(), context.Canceled) {
		h.log.Warn("record kafka history", "cluster", v.Name, "err", err)
	}
}

// RecordRabbit appends a RabbitMQ view's series.
func (h *History) RecordRabbit(ctx context.Context, v RabbitView) {
	at := v.Snapshot.TakenAt
	if !v.Reachable || at.IsZero() {
		at = v.LastAttempt
	}
	if err := h.store.Append(ctx, toSamples(RabbitMetrics(v), at)); err != nil && !errors.Is(ctx.Err(), context.Canceled) {
		h.log.Warn("record rabbitmq history", "cluster", v.Name, "err", err)
	}
}

// ServiceSamples turns the services' current values into samples: counters
// as themselves, histograms as cumulative _bucket{le}, _sum and _count
// series (Prometheus' layout, so quantiles are computed the usual way).
func ServiceSamples(points []ServicePoint, at time.Time) []tsdb.Sample {
	var out []tsdb.Sample
	for _, p := range points {
		base := make([]string, 0, 2*len(p.Labels)+4)
		for _, l := range ServiceLabelNames {
			if v, ok := p.Labels[l]; ok {
				base = append(base, l, v)
			}
		}
		if p.Name != PromEventDuration {
			out = append(out, tsdb.Sample{Series: tsdb.L(append([]string{tsdb.MetricName, p.Name}, base...)...), T: at, V: p.Value})
			continue
		}
		for i, c := range p.Buckets {
			le := "+Inf"
			if i < len(p.Bounds) {
				le = strconv.FormatFloat(p.Bounds[i], 'g', -1, 64)
			}
			out = append(out, tsdb.Sample{Series: tsdb.L(append([]string{tsdb.MetricName, p.Name + "_bucket", "le", le}, base...)...), T: at, V: float64(c)})
		}
		out = append(out,
			tsdb.Sample{Series: tsdb.L(append([]string{tsdb.MetricName, p.Name + "_sum"}, base...)...), T: at, V: p.Sum},
			tsdb.Sample{Series: tsdb.L(append([]string{tsdb.MetricName, p.Name + "_count"}, base...)...), T: at, V: float64(p.Count)})
	}
	return out
}

// Run records the service metrics every Interval until ctx is done: each
// series that received a point since the previous record (FreshPoints),
// at the time of the record, so that the series stay aligned for sums.
func (h *History) Run(ctx context.Context) error {
	if h.svc == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if s := ServiceSamples(h.svc.FreshPoints(), h.now()); len(s) > 0 {
			if err := h.store.Append(ctx, s); err != nil {
				h.log.Warn("record service metrics", "err", err)
			}
		}
	}
}
