package dlqstore_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
)

// The streamed read of a job's pending items gives a send exactly what
// the whole entry holds for it — payload, headers, key, origin, DLQ,
// redrive count, envelope ids and the coordinates to read a cut payload
// back — for envelopes and raw payloads alike, and an entry purged after
// the freeze comes back as gone (ID 0) in its place.
func TestStreamPendingMatchesEntries(t *testing.T) {
	s, _ := mustOpen(t)
	ctx := context.Background()
	var specs []dlqstoretest.Spec
	for i := range 6 {
		sp := dlqstoretest.Spec{Off: int64(i), Msg: "boom", Tenant: "t1", Headers: delivery.Headers{{Key: delivery.HeaderRedriveCount, Value: []byte(fmt.Sprint(i % 3))}}}
		if i == 2 {
			sp.Payload = []byte("not an envelope \xff")
		}
		specs = append(specs, sp)
	}
	var idx []dlqstore.IndexItem
	for i, sp := range specs {
		sp.Dest, sp.Part = "s.dlq", 3
		it := sp.Item()
		if i != 1 {
			it.DL.Key = []byte(fmt.Sprintf("cus-\"%d\"\xfe", i)) // quoted and not UTF-8
		}
		it.DL.Error.Details = map[string]any{"key": "}{,\"", "nested": []any{map[string]any{"dlq": "x"}}} // what the walk steps over
		idx = append(idx, it)
	}
	if _, err := s.IndexKafka(ctx, "main", "s.dlq", 3, idx, 6); err != nil {
		t.Fatal(err)
	}
	j, err := s.CreateJob(ctx, dlqstore.JobRecord{Action: "redrive", Access: access.ActionRedrive, State: dlqstore.JobRunning, Actor: "ada", Request: []byte("{}")},
		dlqstore.Selection{Filter: &dlqstore.Filter{Destination: "s.dlq"}}, dlqstore.StatusRedriving)
	if err != nil {
		t.Fatal(err)
	}
	whole := map[int64]dlqstore.Entry{}
	for id := int64(1); id <= 6; id++ {
		if whole[id], err = s.Entry(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DB().Exec("DELETE FROM entries WHERE id = 4"); err != nil { // purged under the job
		t.Fatal(err)
	}
	items, entries, err := s.PendingItems(ctx, j.ID, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 5 || len(entries) != 5 || items[0].Seq != 2 {
		t.Fatalf("items = %+v", items)
	}
	for i, it := range items {
		got := entries[i]
		if it.EntryID != int64(i+2) || it.Target != "kafka:main/orders" {
			t.Errorf("item %d = %+v", i, it)
		}
		if it.EntryID == 4 {
			if got.ID != 0 {
				t.Errorf("purged entry 4 streamed as %+v", got)
			}
			continue
		}
		want := whole[it.EntryID]
		if got.ID != want.ID || got.Broker != want.Broker || got.Cluster != want.Cluster || got.Destination != want.Destination ||
			got.Partition != want.Partition || got.Offset != want.Offset || got.MessageID != want.MessageID ||
			got.PayloadSize != want.PayloadSize || got.PayloadHash != want.PayloadHash || got.Truncated != want.Truncated {
			t.Errorf("entry %d streamed as %+v, want %+v", want.ID, got, want)
		}
		g, w := got.DL, want.DL
		if !bytes.Equal(g.Payload, w.Payload) || !bytes.Equal(g.Key, w.Key) || g.Origin != w.Origin || g.DLQ != w.DLQ || g.RedriveCount != w.RedriveCount ||
			fmt.Sprint(g.Headers) != fmt.Sprint(w.Headers) {
			t.Errorf("entry %d body streamed as %+v, want %+v", want.ID, g, w)
		}
		if (g.Envelope == nil) != (w.Envelope == nil) ||
			g.Envelope != nil && (g.Envelope.ID != w.Envelope.ID || g.Envelope.Type != w.Envelope.Type || g.Envelope.CorrelationID != w.Envelope.CorrelationID) {
			t.Errorf("entry %d envelope streamed as %+v, want %+v", want.ID, g.Envelope, w.Envelope)
		}
		// What the redrive sends from it is the same too.
		gh, _, _ := delivery.RedriveHeaders(g, j.ID)
		wh, _, _ := delivery.RedriveHeaders(w, j.ID)
		if fmt.Sprint(gh) != fmt.Sprint(wh) {
			t.Errorf("entry %d redrive headers %v, want %v", want.ID, gh, wh)
		}
	}
	if whole[3].DL.Envelope != nil || whole[2].DL.Envelope == nil || whole[5].DL.RedriveCount != 1 || len(whole[3].DL.Key) == 0 || whole[2].DL.Key != nil {
		t.Fatalf("the fixture lost its variety: %+v", whole)
	}
}

// Outcomes recorded by ranges keep the per-status counts exact when a
// batch mixes sent, failed and cancelled items and is recorded twice, and
// each entry ends where its item says: sent ones done with the reason, the
// others back in the status they had before the job.
func TestStreamOutcomesByRange(t *testing.T) {
	s, _ := mustOpen(t)
	ctx := context.Background()
	var specs []dlqstoretest.Spec
	for i := range 9 {
		specs = append(specs, dlqstoretest.Spec{Off: int64(i), Msg: "boom", Tenant: []string{"t1", "t2"}[i%2]})
	}
	dlqstoretest.IndexKafka(t, s, "r.dlq", 0, specs...)
	if _, err := s.SetStatus(ctx, []int64{8, 9}, dlqstore.StatusQuarantined); err != nil {
		t.Fatal(err)
	}
	j, err := s.CreateJob(ctx, dlqstore.JobRecord{Action: "redrive", Access: access.ActionRedrive, State: dlqstore.JobRunning, Actor: "ada", Request: []byte("{}")},
		dlqstore.Selection{Filter: &dlqstore.Filter{Destination: "r.dlq"}, Eligible: []dlqstore.Status{dlqstore.StatusDead, dlqstore.StatusQuarantined}}, dlqstore.StatusRedriving)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Counts(ctx, nil)
	if c.ByStatus[dlqstore.StatusRedriving] != 9 {
		t.Fatalf("held: %v", c.ByStatus)
	}
	// Seqs 1-3 and 5-6 and 8 sent, 4 failed, 7 cancelled, 9 left pending;
	// in no particular order.
	outs := []dlqstore.Outcome{{Seq: 6, EntryID: 6, State: dlqstore.ItemSent}, {Seq: 4, EntryID: 4, State: dlqstore.ItemFailed, Error: "nope"},
		{Seq: 1, EntryID: 1, State: dlqstore.ItemSent}, {Seq: 2, EntryID: 2, State: dlqstore.ItemSent}, {Seq: 3, EntryID: 3, State: dlqstore.ItemSent},
		{Seq: 5, EntryID: 5, State: dlqstore.ItemSent}, {Seq: 7, EntryID: 7, State: dlqstore.ItemCancelled}, {Seq: 8, EntryID: 8, State: dlqstore.ItemSent}}
	for range 2 { // the second time changes nothing
		if err := s.CompleteItems(ctx, j.ID, outs, dlqstore.StatusRedriven, "because"); err != nil {
			t.Fatal(err)
		}
	}
	c, _ = s.Counts(ctx, nil)
	if fmt.Sprint(c.ByStatus) != fmt.Sprint(map[dlqstore.Status]int{dlqstore.StatusDead: 2, dlqstore.StatusRedriven: 6, dlqstore.StatusRedriving: 1}) {
		t.Errorf("counts = %v", c.ByStatus)
	}
	t1, _ := s.Counts(ctx, &dlqstore.TenantScope{Tenants: []string{"t1"}})
	if t1.ByStatus[dlqstore.StatusRedriven] != 3 || t1.ByStatus[dlqstore.StatusRedriving] != 1 { // t1: entries 1, 3, 5, 7, 9
		t.Errorf("t1 counts = %v", t1.ByStatus)
	}
	rec, _ := s.Job(ctx, j.ID)
	if rec.Done != 6 || rec.Failed != 1 || rec.Cancelled != 1 {
		t.Errorf("job = %+v", rec)
	}
	var got []string
	for id := int64(1); id <= 9; id++ {
		e, err := s.Entry(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(e.Status))
		if e.Status == dlqstore.StatusRedriven && e.StatusReason != "because" {
			t.Errorf("entry %d reason %q", id, e.StatusReason)
		}
	}
	want := []string{"redriven", "redriven", "redriven", "dead", "redriven", "redriven", "dead", "redriven", "redriving"}
	if !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	items, _, _ := s.PendingItems(ctx, j.ID, 0, 10)
	if len(items) != 1 || items[0].Seq != 9 {
		t.Errorf("pending = %+v", items)
	}
}
