package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"switchyard/tsdb"
)

// The indexer's metrics that alert rules read from the history
// (RecordedFamilies, with MJobsPaused, the redrive engine's). They are
// registered on /metrics by indexer.NewMetrics.
const (
	// MDLQArrivals counts dead letters newly indexed per broker, cluster
	// and dead-letter topic or queue (destination).
	MDLQArrivals = "switchyard_dlq_arrivals_total"
	// MDLQIndexErrors counts the dead-letter indexers' failed store
	// writes and broker reads, per broker and cluster.
	MDLQIndexErrors = "switchyard_dlq_index_errors_total"
)

// RecordedFamilies are the /metrics families RegistryHistory copies into
// the history by default: what operators alert on that lives only on
// /metrics. Only MDLQArrivals names a resource (SeriesScope); the others
// are visible to who may view everything.
var RecordedFamilies = []string{MDLQArrivals, MDLQIndexErrors, MJobsPaused}

// RegistryHistory copies metric families of a Prometheus registry into the
// time-series store every Interval, so that alert rules, which read only
// the history, can use them: gauges and counters (untyped too), each
// sample with its labels as they are, at the time of the gather.
type RegistryHistory struct {
	g        prometheus.Gatherer
	store    *tsdb.Store
	families []string
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
}

// RegistryHistoryOptions configures RegistryHistory; Gatherer and Store
// are required.
type RegistryHistoryOptions struct {
	Gatherer prometheus.Gatherer
	Store    *tsdb.Store
	Families []string      // default RecordedFamilies
	Interval time.Duration // default DefaultPollInterval
	Logger   *slog.Logger
	Now      func() time.Time
}

// NewRegistryHistory returns the recorder of opts. Errors: no Gatherer or
// Store.
func NewRegistryHistory(opts RegistryHistoryOptions) (*RegistryHistory, error) {
	switch {
	case opts.Gatherer == nil:
		return nil, errors.New("registry history: no gatherer")
	case opts.Store == nil:
		return nil, errors.New("registry history: no store")
	}
	if opts.Families == nil {
		opts.Families = RecordedFamilies
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultPollInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &RegistryHistory{g: opts.Gatherer, store: opts.Store, families: slices.Clone(opts.Families),
		interval: opts.Interval, log: opts.Logger, now: opts.Now}, nil
}

// RecordOnce gathers the families and appends their samples. A gather
// that fails in part still records what it returned; the error says what
// failed.
func (h *RegistryHistory) RecordOnce(ctx context.Context) error {
	mfs, gerr := h.g.Gather()
	at := h.now()
	var samples []tsdb.Sample
	for _, mf := range mfs {
		if !slices.Contains(h.families, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			v, ok := value(mf.GetType(), m)
			if !ok {
				continue
			}
			nv := make([]string, 0, 2+2*len(m.GetLabel()))
			nv = append(nv, tsdb.MetricName, mf.GetName())
			for _, l := range m.GetLabel() {
				nv = append(nv, l.GetName(), l.GetValue())
			}
			samples = append(samples, tsdb.Sample{Series: tsdb.L(nv...), T: at, V: v})
		}
	}
	var err error
	if len(samples) > 0 {
		err = h.store.Append(ctx, samples)
	}
	if gerr != nil {
		gerr = fmt.Errorf("gather metrics: %w", gerr)
	}
	return errors.Join(gerr, err)
}

// value is a gauge's or a counter's value; histograms and summaries are
// not recorded.
func value(t dto.MetricType, m *dto.Metric) (float64, bool) {
	switch t {
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), m.Gauge != nil
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), m.Counter != nil
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue(), m.Untyped != nil
	}
	return 0, false
}

// Run records at once and then every Interval until ctx is done.
func (h *RegistryHistory) Run(ctx context.Context) error {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		if err := h.RecordOnce(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("record console metrics", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
