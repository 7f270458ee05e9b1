package collector_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/delivery/deliverytest"
	"switchyard/dlqstore"
	"switchyard/indexer"
	"switchyard/internal/testenv"
	"switchyard/redrive"
	"switchyard/tsdb"
)

// consoleMetrics is a registry holding the recorded families as the
// indexer and the redrive engine register them, and two that are not
// recorded.
type consoleMetrics struct {
	reg      *prometheus.Registry
	arrivals *prometheus.CounterVec
	errors   *prometheus.CounterVec
	paused   float64
}

func newConsoleMetrics(t *testing.T) *consoleMetrics {
	t.Helper()
	m := &consoleMetrics{reg: prometheus.NewRegistry()}
	m.arrivals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: collector.MDLQArrivals, Help: "arrivals"}, []string{"broker", "cluster", "destination"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: collector.MDLQIndexErrors, Help: "errors"}, []string{"broker", "cluster"})
	paused := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: collector.MJobsPaused, Help: "paused"}, func() float64 { return m.paused })
	seconds := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "switchyard_dlq_job_seconds", Help: "a histogram"})
	seconds.Observe(1)
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_http_requests_total", Help: "not recorded"})
	other.Inc()
	m.reg.MustRegister(m.arrivals, m.errors, paused, seconds, other)
	return m
}

func openHistory(t *testing.T, now func() time.Time) *tsdb.Store {
	t.Helper()
	st, err := tsdb.Open(context.Background(), tsdb.Options{Dir: t.TempDir(), Now: now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The console's own DLQ metrics reach the history, labels as they are,
// so that alert rules can read them; other families stay on /metrics;
// and a reader sees the arrivals of the dead-letter topics they may
// view, the cluster-wide families only when they may view everything.
func TestRegistryHistoryRecordsConsoleMetrics(t *testing.T) {
	ctx := context.Background()
	clk := deliverytest.NewClock(time.Now().Truncate(time.Second))
	hist := openHistory(t, clk.Now)
	m := newConsoleMetrics(t)
	// The histogram is asked for too: only gauges and counters are kept.
	rh, err := collector.NewRegistryHistory(collector.RegistryHistoryOptions{Gatherer: m.reg, Store: hist, Now: clk.Now,
		Families: append(slices.Clone(collector.RecordedFamilies), "switchyard_dlq_job_seconds")})
	if err != nil {
		t.Fatal(err)
	}
	m.arrivals.WithLabelValues("kafka", "prod", "orders.dlq").Add(2)
	m.arrivals.WithLabelValues("rabbitmq", "mq", "notify.dlq").Add(1)
	m.paused = 1
	if err := rh.RecordOnce(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(15 * time.Second)
	m.arrivals.WithLabelValues("kafka", "prod", "orders.dlq").Add(3)
	m.errors.WithLabelValues("kafka", "prod").Inc()
	m.paused = 0
	if err := rh.RecordOnce(ctx); err != nil {
		t.Fatal(err)
	}

	read := func(scope *collector.SeriesScope, name string) map[string][]float64 {
		t.Helper()
		q := tsdb.Q{Name: name, From: clk.Now().Add(-time.Minute), To: clk.Now(), Step: time.Second}
		if scope != nil {
			if q, err = scope.Restrict(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		got, err := hist.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]float64{}
		for _, s := range got {
			var vs []float64
			for _, p := range s.Points {
				vs = append(vs, p.V)
			}
			out[s.Labels.String()] = vs
		}
		return out
	}
	equal := func(what string, got, want map[string][]float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
		for k, w := range want {
			if !slices.Equal(got[k], w) {
				t.Errorf("%s: %s = %v, want %v", what, k, got[k], w)
			}
		}
	}
	kafkaArrivals := `{__name__="switchyard_dlq_arrivals_total",broker="kafka",cluster="prod",destination="orders.dlq"}`
	rabbitArrivals := `{__name__="switchyard_dlq_arrivals_total",broker="rabbitmq",cluster="mq",destination="notify.dlq"}`
	equal("arrivals", read(nil, collector.MDLQArrivals), map[string][]float64{kafkaArrivals: {2, 5}, rabbitArrivals: {1, 1}})
	equal("index errors", read(nil, collector.MDLQIndexErrors), map[string][]float64{
		`{__name__="switchyard_dlq_index_errors_total",broker="kafka",cluster="prod"}`: {1}})
	equal("paused jobs", read(nil, collector.MJobsPaused), map[string][]float64{`{__name__="switchyard_dlq_jobs_paused"}`: {1, 0}})
	names, err := hist.LabelValues(ctx, tsdb.MetricName)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{collector.MDLQArrivals, collector.MDLQIndexErrors, collector.MJobsPaused}; !slices.Equal(names, want) {
		t.Errorf("recorded families = %v, want %v", names, want)
	}

	// Who sees what.
	opts := collector.ScopeOptions{Values: func(ctx context.Context, metric, label string) ([]string, error) {
		return hist.LabelValues(ctx, label, tsdb.Matcher{Label: tsdb.MetricName, Op: tsdb.MatchEqual, Value: metric})
	}}
	orders := collector.NewSeriesScope([]access.Rule{{Resources: []string{"kafka:prod/orders.*"}, Tenants: []string{"t1"}}}, opts)
	notify := collector.NewSeriesScope([]access.Rule{{Resources: []string{"rabbitmq:/notify.*"}}}, opts)
	everything := collector.NewSeriesScope([]access.Rule{{Resources: []string{"*"}}}, opts)
	equal("orders' arrivals", read(orders, collector.MDLQArrivals), map[string][]float64{kafkaArrivals: {2, 5}})
	equal("notify's arrivals", read(notify, collector.MDLQArrivals), map[string][]float64{rabbitArrivals: {1, 1}})
	equal("orders' paused jobs", read(orders, collector.MJobsPaused), nil)
	equal("orders' index errors", read(orders, collector.MDLQIndexErrors), nil)
	equal("everything's paused jobs", read(everything, collector.MJobsPaused), map[string][]float64{`{__name__="switchyard_dlq_jobs_paused"}`: {1, 0}})
}

// Run records at once and every Interval, and returns when its context
// ends.
func TestRegistryHistoryRunRecordsUntilCancelled(t *testing.T) {
	hist := openHistory(t, nil)
	m := newConsoleMetrics(t)
	rh, err := collector.NewRegistryHistory(collector.RegistryHistoryOptions{Gatherer: m.reg, Store: hist, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rh.Run(ctx) }()
	points := func() int {
		got, err := hist.Query(context.Background(), tsdb.Q{Name: collector.MJobsPaused, From: time.Now().Add(-time.Minute), To: time.Now().Add(time.Second), Step: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return 0
		}
		return len(got[0].Points)
	}
	testenv.WaitFor(t, "three records of the paused jobs", func() bool { return points() >= 3 })
	cancel()
	var runErr error
	testenv.WaitWithin(t, 5*time.Second, "Run to return", func() bool {
		select {
		case runErr = <-done:
			return true
		default:
			return false
		}
	})
	if runErr != nil {
		t.Errorf("Run = %v, want nil at cancel", runErr)
	}
}

func TestRegistryHistoryNeedsAGathererAndAStore(t *testing.T) {
	hist := openHistory(t, nil)
	if _, err := collector.NewRegistryHistory(collector.RegistryHistoryOptions{Store: hist}); err == nil {
		t.Error("no gatherer: no error")
	}
	if _, err := collector.NewRegistryHistory(collector.RegistryHistoryOptions{Gatherer: prometheus.NewRegistry()}); err == nil {
		t.Error("no store: no error")
	}
}

// The recorded families are the names the indexer and the redrive engine
// register: a name that drifted would record nothing, silently.
func TestRecordedFamiliesAreRegisteredByTheirOwners(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := indexer.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	store, err := dlqstore.Open(context.Background(), t.TempDir()+"/dlq.db", dlqstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := redrive.New(redrive.Options{Store: store, Registerer: reg, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	for _, name := range collector.RecordedFamilies {
		// A family of that name is there when another of the same name
		// and other labels cannot be registered.
		probe := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "probe"}, []string{"probe"})
		if err := reg.Register(probe); err == nil {
			t.Errorf("neither the indexer nor the redrive engine registers %s", name)
		}
	}
}
