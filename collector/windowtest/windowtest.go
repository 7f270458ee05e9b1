// Package windowtest holds the contract test every collector.WindowStore
// must pass, run by each implementation's own tests:
// TestWindowStore(t, open). The SQLite store (collector.SQLiteWindowStore)
// runs it in collector's tests; a PostgreSQL store would run the same.
package windowtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"switchyard/collector"
)

// Open returns a store over the data of one backend. TestWindowStore calls
// its factory once per subtest for a fresh, empty backend, and then Open
// again to read what an earlier store wrote, as a restarted console would.
type Open func(t *testing.T) collector.WindowStore

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// window returns n commits a minute apart, ending at offset end.
func window(n int, end int64) []collector.Commit {
	w := make([]collector.Commit, n)
	for i := range w {
		w[i] = collector.Commit{Offset: end - int64(n-1-i), Lag: int64(i), Time: t0.Add(time.Duration(i) * time.Minute)}
	}
	return w
}

// TestWindowStore checks the WindowStore contract: what Save stored, Load
// returns after a restart, exactly (offsets, lags and instants); Save
// replaces a partition's window and an empty one deletes it; a Save of
// several partitions lands whole; Forget deletes and ignores unknown keys;
// keys are opaque text (quotes, dots, non-ASCII) and partitions any int32;
// and the store is safe for concurrent use. newBackend is called once per
// subtest and must return an Open over an empty backend.
func TestWindowStore(t *testing.T, newBackend func(t *testing.T) Open) {
	ctx := context.Background()
	load := func(t *testing.T, s collector.WindowStore) map[collector.PartitionKey][]collector.Commit {
		t.Helper()
		got, err := s.Load(ctx)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return got
	}
	save := func(t *testing.T, s collector.WindowStore, w map[collector.PartitionKey][]collector.Commit) {
		t.Helper()
		if err := s.Save(ctx, w); err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	same := func(t *testing.T, got, want map[collector.PartitionKey][]collector.Commit) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("Load = %d windows, want %d: %v", len(got), len(want), got)
		}
		for k, w := range want {
			g := got[k]
			if len(g) != len(w) {
				t.Fatalf("window %v = %v, want %v", k, g, w)
			}
			for i := range w {
				if g[i].Offset != w[i].Offset || g[i].Lag != w[i].Lag || !g[i].Time.Equal(w[i].Time) {
					t.Fatalf("window %v commit %d = %+v, want %+v", k, i, g[i], w[i])
				}
			}
		}
	}
	a := collector.PartitionKey{Cluster: "main", Group: "billing", Topic: "orders.v1", Partition: 0}
	b := collector.PartitionKey{Cluster: "main", Group: "billing", Topic: "orders.v1", Partition: 1}
	odd := collector.PartitionKey{Cluster: `eu "west"`, Group: "grüppe; DROP TABLE x; --", Topic: "a.b-c_d", Partition: 2147483647}

	t.Run("empty", func(t *testing.T) {
		s := newBackend(t)(t)
		same(t, load(t, s), nil)
		if err := s.Save(ctx, nil); err != nil {
			t.Errorf("Save of nothing: %v", err)
		}
		if err := s.Forget(ctx); err != nil {
			t.Errorf("Forget of nothing: %v", err)
		}
	})

	t.Run("saved windows survive a restart", func(t *testing.T) {
		open := newBackend(t)
		want := map[collector.PartitionKey][]collector.Commit{a: window(10, 1842), b: window(3, 7), odd: window(1, 0)}
		// Times in another zone are the same instants.
		want[b][0].Time = want[b][0].Time.In(time.FixedZone("CET", 3600))
		save(t, open(t), want)
		same(t, load(t, open(t)), want)
	})

	t.Run("save replaces and an empty window deletes", func(t *testing.T) {
		open := newBackend(t)
		s := open(t)
		save(t, s, map[collector.PartitionKey][]collector.Commit{a: window(10, 100), b: window(10, 200)})
		save(t, s, map[collector.PartitionKey][]collector.Commit{a: window(4, 150), b: nil})
		same(t, load(t, open(t)), map[collector.PartitionKey][]collector.Commit{a: window(4, 150)})
		save(t, s, map[collector.PartitionKey][]collector.Commit{a: nil})
		if got, err := s.Load(ctx); err != nil || len(got) != 0 {
			t.Errorf("Load = %v, %v; want nothing", got, err)
		}
		if err := s.Forget(ctx, a, a); err != nil {
			t.Errorf("Forget of unknown keys: %v", err)
		}
	})

	t.Run("forget", func(t *testing.T) {
		open := newBackend(t)
		s := open(t)
		save(t, s, map[collector.PartitionKey][]collector.Commit{a: window(2, 1), b: window(2, 2), odd: window(2, 3)})
		if err := s.Forget(ctx, a, odd, a, collector.PartitionKey{Cluster: "nowhere"}); err != nil {
			t.Fatalf("Forget with unknown and repeated keys: %v", err)
		}
		same(t, load(t, open(t)), map[collector.PartitionKey][]collector.Commit{b: window(2, 2)})
	})

	// A Save that fails leaves every stored window as it was.
	t.Run("a failed save changes nothing", func(t *testing.T) {
		open := newBackend(t)
		s := open(t)
		before := map[collector.PartitionKey][]collector.Commit{a: window(2, 1)}
		save(t, s, before)
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Save(cancelled, map[collector.PartitionKey][]collector.Commit{a: window(3, 9), b: window(3, 9)}); err == nil {
			t.Fatal("Save with a cancelled context succeeded")
		}
		same(t, load(t, open(t)), before)
	})

	t.Run("concurrent saves", func(t *testing.T) {
		open := newBackend(t)
		s := open(t)
		want := map[collector.PartitionKey][]collector.Commit{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				w := map[collector.PartitionKey][]collector.Commit{}
				for p := range int32(25) {
					w[collector.PartitionKey{Cluster: "main", Group: fmt.Sprintf("g%d", g), Topic: "t", Partition: p}] = window(3, int64(p))
				}
				if err := s.Save(ctx, w); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for k, v := range w {
					want[k] = v
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent Save: %v", err)
		}
		same(t, load(t, open(t)), want)
	})
}
