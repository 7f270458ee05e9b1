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
	for i := range 3 {
		dl := delivery.Decode(delivery.Message{
			Location: delivery.Location{Broker: delivery.BrokerKafka, Cluster: "demo", Topic: "orders.order.created.v1.dlq", Partition: 0, Offset: int64(i)},
			Body:     []byte(`not an envelope`), Timestamp: time.Now(),
		})
		items = append(items, dlqstore.IndexItem{DL: dl, Fingerprint: delivery.Fingerprint(dl), ReceivedAt: time.Now()})
	}
	if _, err := store.IndexKafka(ctx, "demo", "orders.order.created.v1.dlq", 0, items, 3); err != nil {
		t.Fatal(err)
	}
	g := collector.NewDLQGauges(store, nil, time.Minute, nil)
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
}
