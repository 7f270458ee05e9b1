package web

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"switchyard/tsdb"
)

type countingStore struct {
	*tsdb.Store
	n int
}

func (c *countingStore) Query(ctx context.Context, q tsdb.Q) ([]tsdb.Series, error) {
	c.n++
	return c.Store.Query(ctx, q)
}

// Repeated chart queries within a step read the store once; a new point
// shows once the step (or 30 s) has passed.
func TestSeriesCacheReusesWithinAStep(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC)
	st, err := tsdb.Open(ctx, tsdb.Options{Dir: t.TempDir(), Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lag := tsdb.L(tsdb.MetricName, "lag", "group", "g")
	if err := st.Append(ctx, []tsdb.Sample{{Series: lag, T: now.Add(-time.Minute), V: 1}}); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	clock := now
	c := newSeriesCache(cs, func() time.Time { return clock })
	q := func() []tsdb.Series {
		got, err := c.Query(ctx, tsdb.Q{Name: "lag", From: clock.Add(-time.Hour), To: clock, Step: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	q()
	clock = clock.Add(3 * time.Second) // same 15 s bucket
	q()
	if cs.n != 1 {
		t.Errorf("store read %d times within one step, want 1", cs.n)
	}
	if err := st.Append(ctx, []tsdb.Sample{{Series: lag, T: now.Add(2 * time.Second), V: 2}}); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(15 * time.Second) // next bucket
	got := q()
	if cs.n != 2 || len(got) != 1 || got[0].Points[len(got[0].Points)-1].V != 2 {
		t.Errorf("after a step: %d reads, %+v", cs.n, got)
	}
}
