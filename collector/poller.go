package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ClusterView is what the console shows of one cluster: the last good
// snapshot, the rates derived from the two last good snapshots, and
// whether the cluster answers right now.
type ClusterView struct {
	Name string `json:"name"`
	// Polled is false until the first attempt has finished.
	Polled bool `json:"polled"`
	// Reachable is false when the last attempt failed; Snapshot then still
	// holds the last good state (zero if there never was one).
	Reachable        bool            `json:"reachable"`
	Error            string          `json:"error,omitempty"`
	UnreachableSince time.Time       `json:"unreachable_since,omitzero"`
	LastAttempt      time.Time       `json:"last_attempt,omitzero"`
	HasSnapshot      bool            `json:"has_snapshot"`
	Snapshot         ClusterSnapshot `json:"snapshot"`
	// TopicRates is messages produced per second per topic, GroupRates
	// messages consumed (committed) per second per group, both between the
	// two last good snapshots. A name is missing until two snapshots exist.
	TopicRates map[string]float64 `json:"topic_rates"`
	GroupRates map[string]float64 `json:"group_rates"`
}

// DefaultPollInterval is how often broker state is collected unless
// configured otherwise (the console's poll_interval): the Poller's and
// History's default, and what the pages take as the interval when judging
// data stale.
const DefaultPollInterval = 10 * time.Second

// PollerOptions configures a Poller. The zero value polls nothing.
type PollerOptions struct {
	Sources []*KafkaSource
	// Interval between polls of a healthy cluster; default
	// DefaultPollInterval.
	Interval time.Duration
	// MaxBackoff caps the wait before retrying an unreachable cluster,
	// which doubles from Interval; default 1 minute.
	MaxBackoff time.Duration
	// Timeout bounds one snapshot; default 15s.
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
	// Evaluator, when set, gives every group and partition Burrow's status
	// (and keeps its windows; the Poller flushes it after each cycle).
	Evaluator *Evaluator
	// LagPoints is the size of each partition's high-watermark table for
	// lag in seconds; default 60.
	LagPoints int
	// Rabbit lists the RabbitMQ clusters to poll, on the same schedule.
	Rabbit []*RabbitSource
	// Recorder, when set, receives every good snapshot (the time-series
	// store's writer). It runs on the polling goroutine, after the view is
	// published.
	Recorder Recorder
}

// Recorder keeps history of what the Poller sees.
type Recorder interface {
	RecordKafka(ctx context.Context, v ClusterView)
	RecordRabbit(ctx context.Context, v RabbitView)
}

// RabbitView is what the console shows of one RabbitMQ cluster.
type RabbitView struct {
	Name             string         `json:"name"`
	Polled           bool           `json:"polled"`
	Reachable        bool           `json:"reachable"`
	Error            string         `json:"error,omitempty"`
	UnreachableSince time.Time      `json:"unreachable_since,omitzero"`
	LastAttempt      time.Time      `json:"last_attempt,omitzero"`
	HasSnapshot      bool           `json:"has_snapshot"`
	Snapshot         RabbitSnapshot `json:"snapshot"`
}

// Poller keeps the latest snapshot of every source up to date.
type Poller struct {
	opts PollerOptions

	mu     sync.Mutex
	state  map[string]*clusterState
	rabbit map[string]*rabbitState
}

type clusterState struct {
	view     ClusterView
	prev     ClusterSnapshot // the good snapshot before view.Snapshot
	failures int
	analysis *analysis
}

type rabbitState struct {
	view     RabbitView
	failures int
}

// NewPoller validates opts and returns a Poller; call Run to start it.
func NewPoller(opts PollerOptions) (*Poller, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultPollInterval
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.MaxBackoff < opts.Interval {
		opts.MaxBackoff = opts.Interval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Poller{opts: opts, state: make(map[string]*clusterState), rabbit: make(map[string]*rabbitState)}
	for i, s := range opts.Sources {
		if s == nil {
			return nil, fmt.Errorf("poller: source %d is nil", i)
		}
		if _, dup := p.state[s.Name()]; dup {
			return nil, fmt.Errorf("poller: two sources named %q", s.Name())
		}
		p.state[s.Name()] = &clusterState{view: ClusterView{Name: s.Name()}, analysis: newAnalysis(opts.Evaluator, opts.LagPoints)}
	}
	for i, s := range opts.Rabbit {
		if s == nil {
			return nil, fmt.Errorf("poller: rabbitmq source %d is nil", i)
		}
		if _, dup := p.rabbit[s.Name()]; dup {
			return nil, fmt.Errorf("poller: two rabbitmq sources named %q", s.Name())
		}
		p.rabbit[s.Name()] = &rabbitState{view: RabbitView{Name: s.Name()}}
	}
	return p, nil
}

// Run polls every source until ctx is done, each on its own schedule so that
// one slow or dead cluster does not delay the others. It returns nil once
// ctx is done and all its goroutines have stopped.
func (p *Poller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range p.opts.Sources {
		failures := &p.state[s.Name()].failures
		wg.Go(func() { p.loop(ctx, failures, func(ctx context.Context) error { return p.poll(ctx, s) }) })
	}
	for _, s := range p.opts.Rabbit {
		failures := &p.rabbit[s.Name()].failures
		wg.Go(func() { p.loop(ctx, failures, func(ctx context.Context) error { return p.pollRabbit(ctx, s) }) })
	}
	wg.Wait()
	return nil
}

// loop polls one source on its schedule; failures is that source's count
// of consecutive failures (guarded by mu), which sets the wait.
func (p *Poller) loop(ctx context.Context, failures *int, poll func(context.Context) error) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		poll(ctx) //nolint:errcheck // the state records the error
		t.Reset(p.wait(failures))
	}
}

// wait is Interval after a success, and doubles per consecutive failure up
// to MaxBackoff, so that a dead cluster is not hammered.
func (p *Poller) wait(failures *int) time.Duration {
	p.mu.Lock()
	n := *failures
	p.mu.Unlock()
	d := p.opts.Interval
	for i := 1; i < n && d < p.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.opts.MaxBackoff)
}

// Refresh polls every source once, now, and returns the errors joined. Run
// calls the same code on its schedule; tests and a "refresh" button use
// Refresh to get a fresh view deterministically.
func (p *Poller) Refresh(ctx context.Context) error {
	errs := make([]error, len(p.opts.Sources))
	var wg sync.WaitGroup
	for i, s := range p.opts.Sources {
		wg.Go(func() { errs[i] = p.poll(ctx, s) })
	}
	rerrs := make([]error, len(p.opts.Rabbit))
	for i, s := range p.opts.Rabbit {
		wg.Go(func() { rerrs[i] = p.pollRabbit(ctx, s) })
	}
	wg.Wait()
	return errors.Join(append(errs, rerrs...)...)
}

func (p *Poller) poll(parent context.Context, s *KafkaSource) error {
	ctx, cancel := context.WithTimeout(parent, p.opts.Timeout)
	defer cancel()
	snap, err := s.Snapshot(ctx)
	if err != nil && parent.Err() != nil {
		return parent.Err() // the console is stopping: the cluster is no less reachable
	}
	now := p.opts.Now()
	snap.TakenAt = now

	p.mu.Lock()
	st := p.state[s.Name()]
	st.view.Polled = true
	st.view.LastAttempt = now
	if err != nil {
		if st.failures == 0 {
			// Log the transition once, not every retry.
			p.opts.Logger.Warn("cluster unreachable", "cluster", s.Name(), "err", err)
			st.view.UnreachableSince = now
		}
		st.failures++
		st.view.Reachable = false
		st.view.Error = err.Error()
		p.mu.Unlock()
		return err
	}
	if st.failures > 0 {
		p.opts.Logger.Info("cluster reachable again", "cluster", s.Name(),
			"down_for", now.Sub(st.view.UnreachableSince).Round(time.Second).String())
	}
	st.failures = 0
	var prev *ClusterSnapshot
	if st.view.HasSnapshot {
		st.prev = st.view.Snapshot
		prev = &st.prev
	}
	st.analysis.apply(prev, &snap)
	st.view.Reachable, st.view.Error, st.view.UnreachableSince = true, "", time.Time{}
	st.view.HasSnapshot, st.view.Snapshot = true, snap
	if !st.prev.TakenAt.IsZero() {
		st.view.TopicRates, st.view.GroupRates = rates(st.prev, snap)
	}
	view := st.view
	p.mu.Unlock()

	if p.opts.Evaluator != nil {
		if err := p.opts.Evaluator.Flush(ctx); err != nil && parent.Err() == nil {
			p.opts.Logger.Warn("persist lag windows", "cluster", s.Name(), "err", err)
		}
	}
	if p.opts.Recorder != nil {
		p.opts.Recorder.RecordKafka(ctx, view)
	}
	return nil
}

// pollRabbit takes one RabbitMQ snapshot, with the same keep-the-last-good
// and log-the-transition-once behaviour as Kafka clusters.
func (p *Poller) pollRabbit(parent context.Context, s *RabbitSource) error {
	ctx, cancel := context.WithTimeout(parent, p.opts.Timeout)
	defer cancel()
	snap, err := s.Snapshot(ctx)
	if err != nil && parent.Err() != nil {
		return parent.Err() // the console is stopping: the broker is no less reachable
	}
	now := p.opts.Now()
	snap.TakenAt = now
	p.mu.Lock()
	st := p.rabbit[s.Name()]
	st.view.Polled, st.view.LastAttempt = true, now
	if err != nil {
		if st.failures == 0 {
			p.opts.Logger.Warn("rabbitmq unreachable", "cluster", s.Name(), "err", err)
			st.view.UnreachableSince = now
		}
		st.failures++
		st.view.Reachable, st.view.Error = false, err.Error()
		p.mu.Unlock()
		return err
	}
	if st.failures > 0 {
		p.opts.Logger.Info("rabbitmq reachable again", "cluster", s.Name())
	}
	st.failures = 0
	st.view.Reachable, st.view.Error, st.view.UnreachableSince = true, "", time.Time{}
	st.view.HasSnapshot, st.view.Snapshot = true, snap
	view := st.view
	p.mu.Unlock()
	if p.opts.Recorder != nil {
		p.opts.Recorder.RecordRabbit(ctx, view)
	}
	return nil
}

// RabbitLatest returns a view per RabbitMQ source, in configuration order.
func (p *Poller) RabbitLatest() []RabbitView {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]RabbitView, 0, len(p.opts.Rabbit))
	for _, s := range p.opts.Rabbit {
		out = append(out, p.rabbit[s.Name()].view)
	}
	return out
}

// Latest returns a view per source, in the order of PollerOptions.Sources.
// The views share no memory with the poller.
func (p *Poller) Latest() []ClusterView {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ClusterView, 0, len(p.opts.Sources))
	for _, s := range p.opts.Sources {
		// Snapshots are replaced, never modified, so sharing their slices
		// is safe; the rate maps are replaced the same way.
		out = append(out, p.state[s.Name()].view)
	}
	return out
}

// Sources returns the sources, for readiness checks.
func (p *Poller) Sources() []*KafkaSource { return p.opts.Sources }

// rates derives per-topic production and per-group consumption rates from
// two snapshots. Partitions missing from either side are skipped; a
// negative delta (a topic recreated, offsets reset) yields no rate rather
// than a negative one.
func rates(prev, cur ClusterSnapshot) (topics, groups map[string]float64) {
	dt := cur.TakenAt.Sub(prev.TakenAt).Seconds()
	topics, groups = map[string]float64{}, map[string]float64{}
	if dt <= 0 {
		return topics, groups
	}
	type tp struct {
		t string
		p int32
	}
	high := map[tp]int64{}
	for _, t := range prev.Topics {
		for _, p := range t.Partitions {
			if p.Error == "" {
				high[tp{t.Name, p.Partition}] = p.High
			}
		}
	}
	for _, t := range cur.Topics {
		var d int64
		ok := true
		for _, p := range t.Partitions {
			before, seen := high[tp{t.Name, p.Partition}]
			if !seen || p.Error != "" {
				continue
			}
			if p.High < before {
				ok = false
				break
			}
			d += p.High - before
		}
		if ok {
			topics[t.Name] = float64(d) / dt
		}
	}
	committed := map[string]map[tp]int64{}
	for _, g := range prev.Groups {
		m := map[tp]int64{}
		for _, p := range g.Partitions {
			if p.Committed >= 0 {
				m[tp{p.Topic, p.Partition}] = p.Committed
			}
		}
		committed[g.Name] = m
	}
	for _, g := range cur.Groups {
		before, seen := committed[g.Name]
		if !seen {
			continue
		}
		var d int64
		ok := true
		for _, p := range g.Partitions {
			b, seen := before[tp{p.Topic, p.Partition}]
			if !seen || p.Committed < 0 {
				continue
			}
			if p.Committed < b {
				ok = false
				break
			}
			d += p.Committed - b
		}
		if ok {
			groups[g.Name] = float64(d) / dt
		}
	}
	return topics, groups
}

// ScopeOptions places the services' series for a SeriesScope: the
// clusters polled and the queues known now.
func (p *Poller) ScopeOptions() ScopeOptions {
	var opts ScopeOptions
	for _, v := range p.Latest() {
		opts.KafkaClusters = append(opts.KafkaClusters, v.Name)
	}
	for _, v := range p.RabbitLatest() {
		for _, q := range v.Snapshot.Queues {
			opts.Queues = append(opts.Queues, QueueRef{VHost: q.VHost, Name: q.Name})
		}
	}
	return opts
}
