package collector_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
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

// Dead-letter arrivals per failure group are a counter in the history:
// what increase() reads over a window is the entries that arrived in it —
// not minus, nor (as a counter reset) plus, the old entries retention
// purges — and a restarted console goes on from the value it had
// recorded.
func TestDLQGaugesRecordGroupArrivalsAsACounter(t *testing.T) {
	ctx := context.Background()
	clk := deliverytest.NewClock(time.Now().Truncate(time.Second))
	store, err := dlqstore.Open(ctx, t.TempDir()+"/dlq.db", dlqstore.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	hist, err := tsdb.Open(ctx, tsdb.Options{Dir: t.TempDir(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	gauges := func() *collector.DLQGauges {
		g, err := collector.NewDLQGaugesWith(collector.DLQGaugesOptions{Source: store, Store: hist, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	poll := func(g *collector.DLQGauges) {
		t.Helper()
		clk.Advance(30 * time.Second)
		if err := g.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	off := int64(0)
	arrive := func(tenant, code string, n int) {
		t.Helper()
		var specs []dlqstoretest.Spec
		for range n {
			specs = append(specs, dlqstoretest.Spec{Tenant: tenant, Code: code, Msg: code + " for this order", Off: off})
			off++
		}
		dlqstoretest.IndexKafka(t, store, "orders.dlq", 0, specs...)
	}
	retire := func(ids ...int64) {
		t.Helper()
		if _, err := store.SetStatus(ctx, ids, dlqstore.StatusDiscarded); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		if n, err := store.Purge(ctx, clk.Now()); err != nil || n != int64(len(ids)) {
			t.Fatalf("purge = %d, %v; want %d", n, err, len(ids))
		}
	}
	// history is each series' points, by tenant and error code.
	history := func() map[string][]tsdb.Point {
		t.Helper()
		got, err := hist.Query(ctx, tsdb.Q{Name: collector.MDLQGroupEntries, From: clk.Now().Add(-time.Hour), To: clk.Now(), Step: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]tsdb.Point{}
		for _, s := range got {
			ls := s.Labels
			if ls.Get("broker") != "kafka" || ls.Get("cluster") != "main" || ls.Get("destination") != "orders.dlq" ||
				ls.Get("resource") != access.KafkaTopic("main", "orders").Name || ls.Get("dlq_group") == "" {
				t.Errorf("series %s: want kafka main orders.dlq, its resource and group", ls)
			}
			out[ls.Get("tenant")+" "+ls.Get("error_code")] = s.Points
		}
		return out
	}
	check := func(when, series string, last, increase float64) {
		t.Helper()
		pts := history()[series]
		if len(pts) == 0 {
			t.Fatalf("%s: no %s series in %v", when, series, history())
		}
		for i := 1; i < len(pts); i++ {
			if pts[i].V < pts[i-1].V {
				t.Errorf("%s: %s went down from %v to %v", when, series, pts[i-1].V, pts[i].V)
			}
		}
		if got := pts[len(pts)-1].V; got != last {
			t.Errorf("%s: %s = %v, want %v", when, series, got, last)
		}
		if got := tsdb.Increase(pts); got != increase {
			t.Errorf("%s: increase of %s = %v, want %v (the arrivals since the first poll)", when, series, got, increase)
		}
	}

	g := gauges()
	arrive("t1", "OUT_OF_STOCK", 3) // entries 1-3
	arrive("t2", "FRAUD", 1)        // entry 4
	poll(g)
	check("first poll", "t1 OUT_OF_STOCK", 3, 0)
	check("first poll", "t2 FRAUD", 1, 0)

	// Retention purges two old entries of the group: the counter stays.
	retire(1, 2)
	poll(g)
	check("after the purge", "t1 OUT_OF_STOCK", 3, 0)
	arrive("t1", "OUT_OF_STOCK", 1)
	poll(g)
	check("after an arrival", "t1 OUT_OF_STOCK", 4, 1)

	// Every entry of a series purged, then a new one: it counts on.
	retire(4)
	poll(g)
	arrive("t2", "FRAUD", 1)
	poll(g)
	check("after the series came back", "t2 FRAUD", 2, 1)

	// A restart reads the recorded counters back: no drop to the index's
	// 2, no reset.
	g = gauges()
	poll(g)
	check("after a restart", "t1 OUT_OF_STOCK", 4, 1)
	arrive("t1", "OUT_OF_STOCK", 2)
	poll(g)
	check("after a restart and arrivals", "t1 OUT_OF_STOCK", 6, 3)

	// Not on /metrics: too many series for a scrape.
	reg := prometheus.NewRegistry()
	reg.MustRegister(g)
	if n, err := testutil.GatherAndCount(reg, collector.MDLQGroupEntries); err != nil || n != 0 {
		t.Errorf("/metrics has %d %s series (%v), want none", n, collector.MDLQGroupEntries, err)
	}
}
