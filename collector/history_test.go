package collector_test

import (
	"context"
	"testing"
	"time"

	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	metrics "go.opentelemetry.io/proto/otlp/metrics/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/tsdb"
)

// What the Poller sees lands in the time-series store under the same names
// /metrics uses, and the services' histograms keep Prometheus' bucket layout.
func TestHistoryRecordsBrokerAndServiceSeries(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	store, err := tsdb.Open(ctx, tsdb.Options{Dir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h := collector.NewHistory(collector.HistoryOptions{Store: store})

	view := collector.ClusterView{Name: "demo", Reachable: true, HasSnapshot: true, Snapshot: collector.ClusterSnapshot{
		TakenAt: now,
		Groups: []collector.Group{{Name: "billing", TotalLag: 42, Partitions: []collector.GroupPartition{
			{Topic: "orders.order.created.v1", Partition: 3, Committed: 8, High: 50, Lag: 42, LagSeconds: 7.5, LagSecondsKnown: true},
		}}},
	}}
	h.RecordKafka(ctx, view)
	got, err := store.Query(ctx, tsdb.Q{Name: collector.MGroupLagSeconds, Matchers: []tsdb.Matcher{{Label: "group", Op: tsdb.MatchEqual, Value: "billing"}},
		From: now.Add(-time.Minute), To: now.Add(time.Minute), Step: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Points) != 1 || got[0].Points[0].V != 7.5 || got[0].Labels.Get("partition") != "3" {
		t.Fatalf("lag seconds history = %+v, want one point 7.5 on partition 3", got)
	}

	samples := collector.ServiceSamples([]collector.ServicePoint{{
		Name: collector.PromEventDuration, Labels: map[string]string{"service": "billing"},
		Bounds: []float64{0.01, 0.1}, Buckets: []uint64{3, 9, 10}, Sum: 0.7, Count: 10,
	}}, now)
	if err := store.Append(ctx, samples); err != nil {
		t.Fatal(err)
	}
	b, err := store.Query(ctx, tsdb.Q{Name: collector.PromEventDuration + "_bucket", From: now.Add(-time.Minute), To: now.Add(time.Minute), Step: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	les := map[string]float64{}
	for _, s := range b {
		les[s.Labels.Get("le")] = s.Points[0].V
	}
	if les["0.01"] != 3 || les["0.1"] != 9 || les["+Inf"] != 10 {
		t.Errorf("bucket series = %v, want cumulative 3, 9, 10", les)
	}
}

// A service that did not export since the last record is not recorded
// again with its old value: that would draw 0/s, then a spike when its
// next export lands. Only the series that received a point are fresh.
func TestFreshPointsOnlyWhatArrivedSinceTheLastRecord(t *testing.T) {
	m, err := collector.NewServiceMetrics(collector.ServiceMetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	export := func(service string, v int64) {
		t.Helper()
		req := &colmetrics.ExportMetricsServiceRequest{ResourceMetrics: []*metrics.ResourceMetrics{{
			Resource: &resource.Resource{Attributes: []*common.KeyValue{{Key: "service.name", Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: service}}}}},
			ScopeMetrics: []*metrics.ScopeMetrics{{Metrics: []*metrics.Metric{{
				Name: delivery.MetricProcessed,
				Data: &metrics.Metric_Sum{Sum: &metrics.Sum{IsMonotonic: true,
					AggregationTemporality: metrics.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
					DataPoints:             []*metrics.NumberDataPoint{{Value: &metrics.NumberDataPoint_AsInt{AsInt: v}}}}},
			}}}},
		}}}
		body, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Ingest(body, false); err != nil {
			t.Fatal(err)
		}
	}
	fresh := func() map[string]float64 {
		out := map[string]float64{}
		for _, p := range m.FreshPoints() {
			out[p.Labels["service"]] = p.Value
		}
		return out
	}
	export("orders", 10)
	export("billing", 4)
	if got := fresh(); len(got) != 2 || got["orders"] != 10 || got["billing"] != 4 {
		t.Fatalf("first record = %v, want orders 10 and billing 4", got)
	}
	if got := fresh(); len(got) != 0 {
		t.Errorf("nothing exported since, yet recorded again: %v", got)
	}
	export("orders", 25)
	if got := fresh(); len(got) != 1 || got["orders"] != 25 {
		t.Errorf("after orders exported again = %v, want orders 25 only", got)
	}
	if all := m.Points(); len(all) != 2 {
		t.Errorf("Points = %d series, want both still (for /metrics and the tables)", len(all))
	}
}
