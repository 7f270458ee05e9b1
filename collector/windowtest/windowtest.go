// Package windowtest holds the contract test every collector.WindowStore
// must pass, run by each implementation's own tests:
// TestWindowStore(t, open). The SQLite store (collector.SQLiteWindowStore)
// runs it in collector's tests; a PostgreSQL store would run the same.
package windowtest

import (
	"context"
	"fmt"
	"slices"
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

// window returns n commits a minute apart, ending at offset end, and the
// high watermarks of n polls (the last one at end+n-1).
func window(n int, end int64) collector.PartitionWindow {
	w := collector.PartitionWindow{Commits: make([]collector.Commit, n), Watermarks: make([]int64, n)}
	for i := range n {
		w.Commits[i] = collector.Commit{Offset: end - int64(n-1-i), Lag: int64(i), Time: t0.Add(time.Duration(i) * time.Minute)}
		w.Watermarks[i] = end + int64(i)
	}
	return w
}

// windows is what Save takes and Load returns.
type windows = map[collector.PartitionKey]collector.PartitionWindow

// TestWindowStore checks the WindowStore contract: what Save stored, Load
// returns after a restart, exactly (offsets, lags, instants and
// watermarks, none when none were saved); Save replaces a partition's
// window and one without commits deletes it; a Save of
// several partitions lands whole; Forget deletes and ignores unknown keys;
// keys are opaque text (quotes, dots, non-ASCII) and partitions any int32;
// and the store is safe for concurrent use. newBackend is called once per
// subtest and must return an Open over an empty backend.
func TestWindowStore(t *testing.T, newBackend func(t *testing.T) Open) {
	ctx := context.Background()
	load := func(t *testing.T, s collector.WindowStore) windows {
		t.Helper()
		got, err := s.Load(ctx)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return got
	}
	save := func(t *testing.T, s collector.WindowStore, w windows) {
		t.Helper()
		if err := s.Save(ctx, w); err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	same := func(t *testing.T, got, want windows) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("Load = %d windows, want %d: %v", len(got), len(want), got)
		}
		for k, w := range want {
			g := got[k]
			if len(g.Commits) != len(w.Commits) {
				t.Fatalf("window %v = %v, want %v", k, g, w)
			}
			for i, c := range w.Commits {
				if gc := g.Commits[i]; gc.Offset != c.Offset || gc.Lag != c.Lag || !gc.Time.Equal(c.Time) {
					t.Fatalf("window %v commit %d = %+v, want %+v", k, i, gc, c)
				}
			}
			if !slices.Equal(g.Watermarks, w.Watermarks) {
				t.Fatalf("window %v watermarks = %v, want %v", k, g.Watermarks, w.Watermarks)
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
		want := windows{a: window(10, 1842), b: window(3, 7), odd: window(1, 0)}
		// Times in another zone are the same instants.
		want[b].Commits[0].Time = want[b].Commits[0].Time.In(time.FixedZone("CET", 3600))
		save(t, open(t), want)
		same(t, load(t, open(t)), want)
	})

	t.Run("save replaces and an empty window deletes", func(t *testing.T) {
		open := newBackend(t)
		s := open(t)
		save(t, s, windows{a: window(10, 100), b: window(10, 200)})
		save(t, s, windows{a: window(4, 150), b: {Watermarks: []int64{9}}})
		same(t, load(t, open(t)), windows{a: window(4, 150)})
		save(t, s, windows{a: {}})
		if got, err := s.Load(ctx); err != nil || len(got) != 0 {
			t.Errorf("Load = %v, %v; want nothing", got, err)
		}
		if err := s.Forget(ctx, a, a); err != nil {
			t.Errorf("Forget of unknown keys: %v", err)
		}
	})

	// Watermarks are optional (a window saved before they were kept has
	// none), and a save replaces them with the commits.
	t.Run("watermarks", func(t *testing.T) {
		open := newBackend(t)
		s := open(t)
		bare := window(3, 40)
		bare.Watermarks = nil
		save(t, s, windows{a: window(3, 10), b: bare})
		same(t, load(t, open(t)), windows{a: window(3, 10), b: bare})
		moved := window(3, 10)
		moved.Watermarks = []int64{12, 12, 15}
		save(t, s, windows{a: moved})
		same(t, load(t, open(t)), windows{a: moved, b: bare})
	})

	t.Run("forget", func(t *testing.T) {
		open := newBackend(t)
		s := open(t)
		save(t, s, windows{a: window(2, 1), b: window(2, 2), odd: window(2, 3)})
		if err := s.Forget(ctx, a, odd, a, collector.PartitionKey{Cluster: "nowhere"}); err != nil {
			t.Fatalf("Forget with unknown and repeated keys: %v", err)
		}
		same(t, load(t, open(t)), windows{b: window(2, 2)})
	})

	// A Save that fails leaves every stored window as it was.
	t.Run("a failed save changes nothing", func(t *testing.T) {
		open := newBackend(t)
		s := open(t)
		before := windows{a: window(2, 1)}
		save(t, s, before)
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Save(cancelled, windows{a: window(3, 9), b: window(3, 9)}); err == nil {
			t.Fatal("Save with a cancelled context succeeded")
		}
		same(t, load(t, open(t)), before)
	})

	t.Run("concurrent saves", func(t *testing.T) {
		open := newBackend(t)
		s := open(t)
		want := windows{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				w := windows{}
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
