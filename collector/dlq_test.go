package collector_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/tsdb"
)

// Indexed dead letters appear as switchyard_dlq_entries per destination and
// state, on /metrics and in history.
func TestDLQGaugesExportEntryCounts(t *testing.T) {
	ctx := context.Background()
	store, err := dlqstore.Open(ctx, t.TempDir()+"/dlq.db", dlqstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var items []dlqstore.IndexItem
	for i, tenant := range []string{"t1", "t1", "t2"} {
		dl := delivery.Decode(delivery.Message{
			Location: delivery.Location{Broker: delivery.BrokerKafka, Cluster: "demo", Topic: "orders.order.created.v1.dlq", Partition: 0, Offset: int64(i)},
			Headers:  delivery.Headers{{Key: delivery.HeaderTenantID, Value: []byte(tenant)}},
			Body:     []byte(`not an envelope`), Timestamp: time.Now(),
		})
		items = append(items, dlqstore.IndexItem{DL: dl, Fingerprint: delivery.Fingerprint(dl), ReceivedAt: time.Now()})
	}
	if _, err := store.IndexKafka(ctx, "demo", "orders.order.created.v1.dlq", 0, items, 3); err != nil {
		t.Fatal(err)
	}
	hist, err := tsdb.Open(ctx, tsdb.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	g := collector.NewDLQGauges(store, hist, time.Minute, nil)
	if err := g.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(g)
	want := `
# HELP switchyard_dlq_entries Indexed dead letters per DLQ destination and status.
# TYPE switchyard_dlq_entries gauge
switchyard_dlq_entries{broker="kafka",cluster="demo",destination="orders.order.created.v1.dlq",state="dead"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), collector.MDLQEntries); err != nil {
		t.Error(err)
	}
	// The history keeps each tenant's count, with the resource the
	// entries are checked against, for scoped readers (SeriesScope).
	got, err := hist.Query(ctx, tsdb.Q{Name: collector.MDLQEntries, From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute), Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, s := range got {
		counts[s.Labels.Get("tenant")+" "+s.Labels.Get("resource")+" "+s.Labels.Get("state")] = s.Points[len(s.Points)-1].V
	}
	if r := "kafka:demo/orders.order.created.v1.dlq"; len(counts) != 2 || counts["t1 "+r+" dead"] != 2 || counts["t2 "+r+" dead"] != 1 {
		t.Errorf("history = %v, want t1 2 and t2 1 on %s", counts, r)
	}
}
