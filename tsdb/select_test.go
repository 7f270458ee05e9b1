package tsdb

import (
	"context"
	"slices"
	"testing"
	"time"

	"switchyard/delivery/deliverytest"
)

// Select gives the alert evaluator every raw sample at its own time (a
// range selector), across the head and sealed chunks, with no point limit,
// and refuses a read beyond its sample budget.
func TestSelectReturnsRawSamplesAcrossChunks(t *testing.T) {
	c := deliverytest.NewClock(t0)
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now, ChunkWindow: 10 * time.Minute})
	series := []Labels{lag("billing"), lag("orders")}
	fill(t, s, c, series, t0, t0.Add(30*time.Minute), func(i, cycle int) float64 { return float64(i*1000 + cycle) })

	from, to := t0.Add(5*time.Minute), t0.Add(15*time.Minute)
	got, err := s.Select(context.Background(), SelectQ{Name: "switchyard_consumer_group_lag", From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if g := groupsOf(got); !slices.Equal(g, []string{"billing", "orders"}) {
		t.Fatalf("series = %v", g)
	}
	pts := got[1].Points
	if len(pts) != 61 { // every 10 s over [5m, 15m], both ends included
		t.Fatalf("orders has %d samples, want 61", len(pts))
	}
	if !pts[0].T.Equal(from) || pts[0].V != 1030 || !pts[60].T.Equal(to) || pts[60].V != 1090 {
		t.Fatalf("first %v, last %v", pts[0], pts[60])
	}

	// A range of 1 ms steps is far beyond Query's point limit; Select
	// has none, but keeps to its sample budget.
	if _, err := s.Query(context.Background(), Q{Name: "switchyard_consumer_group_lag", From: from, To: to, Step: time.Millisecond}); err == nil {
		t.Fatal("Query at 1 ms steps over 10 minutes: want the point limit")
	}
	if _, err := s.Select(context.Background(), SelectQ{Name: "switchyard_consumer_group_lag", From: from, To: to, MaxSamples: 100}); err == nil {
		t.Fatal("Select of 122 samples with MaxSamples 100: want an error")
	}

	names, err := s.LabelNames(context.Background(), "switchyard_consumer_group_lag")
	if err != nil || !slices.Equal(names, []string{"cluster", "group"}) {
		t.Fatalf("LabelNames = %v, %v", names, err)
	}
	if names, _ := s.LabelNames(context.Background(), "nope"); names != nil {
		t.Fatalf("LabelNames of an unknown metric = %v", names)
	}
}
