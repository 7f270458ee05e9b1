package dlqstore_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
)

// GroupGauges counts every entry a failure group ever had indexed per
// destination, tenant and resource, whatever became of it since: triage
// and a redrive move entries between statuses, not out of the count, and
// a redriven message that fails again adds its re-failure without taking
// the original away. Only the purge of old resolved and discarded entries
// takes them out (the history's counter makes up for it).
func TestGroupGaugesCountEveryIndexedEntry(t *testing.T) {
	ctx := context.Background()
	s, clk := mustOpen(t)
	stock := dlqstoretest.Spec{Tenant: "t1", Code: "OUT_OF_STOCK", Msg: "sku 9 out of stock"}
	var specs []dlqstoretest.Spec
	for i := range 3 {
		sp := stock
		sp.Off = int64(i)
		specs = append(specs, sp)
	}
	fraud := dlqstoretest.Spec{Tenant: "t2", Code: "FRAUD", Msg: "card declined", Off: 3}
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 0, append(specs, fraud)...)
	const e0, e1, e2 = 1, 2, 3

	resource := access.KafkaTopic("main", "orders").Name
	read := func() map[string]int {
		t.Helper()
		gs, err := s.GroupGauges(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, g := range gs {
			if g.Broker != delivery.BrokerKafka || g.Cluster != "main" || g.Destination != "orders.dlq" || g.Resource != resource || g.Group == 0 {
				t.Errorf("gauge %+v: want kafka main orders.dlq, resource %s, a group id", g, resource)
			}
			out[g.Tenant+" "+g.ErrorCode] += g.Count
		}
		return out
	}
	check := func(when string, want map[string]int) {
		t.Helper()
		if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: group gauges = %v, want %v", when, got, want)
		}
	}
	check("indexed", map[string]int{"t1 OUT_OF_STOCK": 3, "t2 FRAUD": 1})

	// Triage moves entries between statuses, not out of the count.
	if _, err := s.SetStatus(ctx, []int64{e1}, dlqstore.StatusQuarantined); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetStatus(ctx, []int64{e2}, dlqstore.StatusDiscarded); err != nil {
		t.Fatal(err)
	}
	check("after quarantine and discard", map[string]int{"t1 OUT_OF_STOCK": 3, "t2 FRAUD": 1})

	// A redrive of e0 whose message fails again, now as fraud: the
	// original stays counted in its group, the re-failure adds one to its
	// own.
	job, err := s.CreateJob(ctx, dlqstore.JobRecord{Action: "redrive", Access: access.ActionRedrive, State: dlqstore.JobRunning, Request: []byte("{}")},
		dlqstore.Selection{IDs: []int64{e0}, Eligible: []dlqstore.Status{dlqstore.StatusDead}}, dlqstore.StatusRedriving)
	if err != nil {
		t.Fatal(err)
	}
	items, _, err := s.JobItems(ctx, job.ID, 0, 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("job items = %v, %v", items, err)
	}
	if err := s.CompleteItems(ctx, job.ID, []dlqstore.Outcome{{Seq: items[0].Seq, EntryID: e0, State: dlqstore.ItemSent}}, dlqstore.StatusRedriven, ""); err != nil {
		t.Fatal(err)
	}
	check("after the redrive", map[string]int{"t1 OUT_OF_STOCK": 3, "t2 FRAUD": 1})
	back := dlqstoretest.Spec{Tenant: "t1", Code: "FRAUD", Msg: "card declined", Headers: delivery.Headers{
		{Key: delivery.HeaderRedriveJob, Value: []byte(strconv.FormatInt(job.ID, 10))},
		{Key: delivery.HeaderRedriveCount, Value: []byte("1")},
		{Key: delivery.HeaderRedriveFrom, Value: []byte("kafka:main/orders.dlq/0@0")},
	}}
	dlqstoretest.IndexKafka(t, s, "orders.dlq", 1, back)
	if e, err := s.Entry(ctx, e0); err != nil || e.RefailedAs == 0 {
		t.Fatalf("original = refailed as %d, %v; want linked to its re-failure", e.RefailedAs, err)
	}
	check("after the re-failure", map[string]int{"t1 OUT_OF_STOCK": 3, "t1 FRAUD": 1, "t2 FRAUD": 1})

	// Retention purges the discarded entry: the one place the sum drops.
	clk.Advance(time.Hour)
	if n, err := s.Purge(ctx, clk.Now()); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want the discarded entry", n, err)
	}
	check("after the purge", map[string]int{"t1 OUT_OF_STOCK": 2, "t1 FRAUD": 1, "t2 FRAUD": 1})
}
