package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/dlqstore"
	"switchyard/tsdb"
)

// MDLQEntries is the number of indexed dead letters per destination and
// status (dead, quarantined, …): the open backlog operators watch.
const MDLQEntries = "switchyard_dlq_entries"

// MDLQGroupEntries counts the dead letters ever indexed per failure group
// (dlq_group, its id, and error_code) and destination, tenant and
// resource: a counter alert rules read with increase(…[5m]), summed by
// destination or kept per group. It is in the history only: its series
// are groups × tenants × destinations, too many for a scrape.
const MDLQGroupEntries = "switchyard_dlq_group_entries_total"

// groupCounterLookback is how far back the first Poll looks for the
// counter's last recorded values: as far as an alert rule's window reaches
// (alerting.MaxWindow), the span over which a counter going down would
// read as a reset.
const groupCounterLookback = 24 * time.Hour

// DLQCounts is what DLQGauges reads of the dead-letter index
// (*dlqstore.Store).
type DLQCounts interface {
	EntryGauges(ctx context.Context) ([]dlqstore.EntryGauge, error)
	GroupGauges(ctx context.Context) ([]dlqstore.GroupGauge, error)
}

// DLQGauges polls the dead-letter index's counts every Interval, records
// them in the time-series store and serves the entry gauges on /metrics.
type DLQGauges struct {
	src      DLQCounts
	store    *tsdb.Store
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu   sync.Mutex
	last []dlqstore.EntryGauge

	// pollMu serialises Polls: the group counters carry state from one
	// to the next.
	pollMu  sync.Mutex
	seeded  bool
	counter map[groupKey]*groupCount
}

// DLQGaugesOptions configures DLQGauges; Source is required.
type DLQGaugesOptions struct {
	Source   DLQCounts
	Store    *tsdb.Store   // optional: no history
	Interval time.Duration // default 30 s
	Logger   *slog.Logger
	Now      func() time.Time
}

// NewDLQGauges returns the poller; store may be nil (no history).
func NewDLQGauges(src DLQCounts, store *tsdb.Store, interval time.Duration, log *slog.Logger) *DLQGauges {
	return newDLQGauges(DLQGaugesOptions{Source: src, Store: store, Interval: interval, Logger: log})
}

// NewDLQGaugesWith returns the poller of opts. Errors: no Source.
func NewDLQGaugesWith(opts DLQGaugesOptions) (*DLQGauges, error) {
	if opts.Source == nil {
		return nil, errors.New("dlq gauges: no source")
	}
	return newDLQGauges(opts), nil
}

func newDLQGauges(opts DLQGaugesOptions) *DLQGauges {
	if opts.Interval <= 0 {
		opts.Interval = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &DLQGauges{src: opts.Source, store: opts.Store, interval: opts.Interval, log: opts.Logger, now: opts.Now,
		counter: map[groupKey]*groupCount{}}
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

// groupKey is one series of MDLQGroupEntries.
type groupKey struct {
	broker, cluster, destination, tenant, resource string
	group                                          int64
	errorCode                                      string
}

func (k groupKey) labels() []string {
	return []string{"broker", k.broker, "cluster", k.cluster, "destination", k.destination,
		"tenant", k.tenant, "resource", k.resource, "dlq_group", strconv.FormatInt(k.group, 10), "error_code", k.errorCode}
}

// groupCount is a group counter's state: the entries the index held at
// the last poll, and the total recorded.
type groupCount struct {
	held  int
	total float64
}

// Poll reads the counts once and records them: the entry gauges, and the
// group counters. The index's group totals drop when retention purges
// old resolved and discarded entries (dlqstore's Purge), which
// increase() would read as a counter reset, an arrival of every entry the
// group still holds; so each counter adds only what its total gained
// since the previous poll, and stays put when it lost. Arrivals in the
// same poll as a purge of the same series are missed then (a counter
// never over-counts). After a restart, a counter resumes from the value
// the history last recorded (over the last day), not below it.
func (d *DLQGauges) Poll(ctx context.Context) error {
	gs, err := d.src.EntryGauges(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.last = gs
	d.mu.Unlock()
	if d.store == nil {
		return nil
	}
	now := d.now()
	samples := toSamples(DLQMetrics(gs), now)
	groups, gerr := d.groupSamples(ctx, now)
	if err := d.store.Append(ctx, append(samples, groups...)); err != nil {
		return err
	}
	return gerr
}

// groupSamples advances the group counters and returns their samples.
func (d *DLQGauges) groupSamples(ctx context.Context, now time.Time) ([]tsdb.Sample, error) {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	gs, err := d.src.GroupGauges(ctx)
	if err != nil {
		return nil, err
	}
	held := make(map[groupKey]int, len(gs))
	for _, g := range gs {
		held[groupKey{g.Broker, g.Cluster, g.Destination, g.Tenant, g.Resource, g.Group, g.ErrorCode}] += g.Count
	}
	if !d.seeded {
		if err := d.seed(ctx, now, held); err != nil {
			return nil, err
		}
		d.seeded = true
	}
	for k, c := range d.counter {
		if _, ok := held[k]; !ok {
			c.held = 0 // purged to the last entry; new ones count from 0
		}
	}
	out := make([]tsdb.Sample, 0, len(held))
	for k, n := range held {
		c := d.counter[k]
		if c == nil {
			c = &groupCount{}
			d.counter[k] = c
		}
		c.total += float64(max(0, n-c.held))
		c.held = n
		out = append(out, tsdb.Sample{Series: tsdb.L(append([]string{tsdb.MetricName, MDLQGroupEntries}, k.labels()...)...), T: now, V: c.total})
	}
	return out, nil
}

// seed starts the counters the history recorded over the last day at
// their last value (their highest: a counter), held at what the index
// holds now: a counter the previous run had kept above the index's total
// (entries purged since they arrived) goes on from there, and the entries
// that arrived while the console was down count only above it.
func (d *DLQGauges) seed(ctx context.Context, now time.Time, held map[groupKey]int) error {
	series, err := d.store.Query(ctx, tsdb.Q{Name: MDLQGroupEntries, From: now.Add(-groupCounterLookback), To: now,
		Step: groupCounterLookback, Agg: tsdb.AggMax})
	if err != nil {
		return fmt.Errorf("read the dead-letter group counters: %w", err)
	}
	for _, s := range series {
		ls := s.Labels
		id, err := strconv.ParseInt(ls.Get("dlq_group"), 10, 64)
		if err != nil {
			continue
		}
		k := groupKey{ls.Get("broker"), ls.Get("cluster"), ls.Get("destination"), ls.Get("tenant"), ls.Get("resource"), id, ls.Get("error_code")}
		c := &groupCount{held: held[k]}
		for _, p := range s.Points {
			c.total = max(c.total, p.V)
		}
		c.total = max(c.total, float64(c.held))
		d.counter[k] = c
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
