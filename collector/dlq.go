package collector

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/dlqstore"
	"switchyard/tsdb"
)

// MDLQEntries is the number of indexed dead letters per destination and
// status (dead, quarantined, …): the open backlog operators watch.
const MDLQEntries = "switchyard_dlq_entries"

// DLQGauges polls the dead-letter index's counts every Interval, records
// them in the time-series store and serves them on /metrics.
type DLQGauges struct {
	src interface {
		EntryGauges(ctx context.Context) ([]dlqstore.EntryGauge, error)
	}
	store    *tsdb.Store
	interval time.Duration
	log      *slog.Logger

	mu   sync.Mutex
	last []dlqstore.EntryGauge
}

// NewDLQGauges returns the poller; store may be nil (no history).
func NewDLQGauges(src interface {
	EntryGauges(ctx context.Context) ([]dlqstore.EntryGauge, error)
}, store *tsdb.Store, interval time.Duration, log *slog.Logger) *DLQGauges {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DLQGauges{src: src, store: store, interval: interval, log: log}
}

// DLQMetrics lists the entry gauges as the history's series: per
// destination and state, and also per tenant and resource (the origin topic
// or queue entries are checked against), so that a tenant-scoped reader of
// the history gets exactly the counts the dead-letter pages show them
// (SeriesScope filters on those two labels as dlqstore's scoped queries
// do). That multiplies the series by the tenants per destination, a few
// hundred for a large platform; /metrics keeps the four labels (Collect
// sums), because its only reader, the scraper, sees every tenant anyway.
func DLQMetrics(gs []dlqstore.EntryGauge) []Metric {
	out := make([]Metric, 0, len(gs))
	for _, g := range gs {
		out = append(out, Metric{Name: MDLQEntries, Labels: []string{
			"broker", g.Broker, "cluster", g.Cluster, "destination", g.Destination, "state", string(g.Status),
			"tenant", g.Tenant, "resource", g.Resource,
		}, Value: float64(g.Count)})
	}
	return out
}

// Poll reads the counts once and records them.
func (d *DLQGauges) Poll(ctx context.Context) error {
	gs, err := d.src.EntryGauges(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.last = gs
	d.mu.Unlock()
	if d.store != nil {
		return d.store.Append(ctx, toSamples(DLQMetrics(gs), time.Now()))
	}
	return nil
}

// Run polls until ctx is done.
func (d *DLQGauges) Run(ctx context.Context) error {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		if err := d.Poll(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("dlq gauges", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Describe is empty (unchecked collector).
func (d *DLQGauges) Describe(chan<- *prometheus.Desc) {}

// Collect serves the last counts.
func (d *DLQGauges) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	gs := d.last
	d.mu.Unlock()
	desc := prometheus.NewDesc(MDLQEntries, metricHelp[MDLQEntries], []string{"broker", "cluster", "destination", "state"}, nil)
	type key struct{ broker, cluster, dest, state string }
	sums := map[key]int{}
	var order []key
	for _, g := range gs {
		k := key{g.Broker, g.Cluster, g.Destination, string(g.Status)}
		if _, ok := sums[k]; !ok {
			order = append(order, k)
		}
		sums[k] += g.Count
	}
	for _, k := range order {
		if m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, float64(sums[k]), k.broker, k.cluster, k.dest, k.state); err == nil {
			ch <- m
		}
	}
}
