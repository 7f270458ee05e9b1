package testenv

import (
	"sync/atomic"
	"testing"
	"time"
)

// fakeT records a failure instead of ending the goroutine, so that the
// helpers' failures can be asserted.
type fakeT struct {
	testing.TB
	failed atomic.Bool
	msg    string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed.Store(true)
	f.msg = format
	panic(f) // stop the helper as Fatalf stops a test
}

func run(f *fakeT, fn func()) {
	defer func() {
		if r := recover(); r != nil && r != any(f) {
			panic(r)
		}
	}()
	fn()
}

func TestWaitFor(t *testing.T) {
	n := 0
	WaitFor(t, "the third look", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}
	f := &fakeT{TB: t}
	start := time.Now()
	run(f, func() { WaitWithin(f, 100*time.Millisecond, "never", func() bool { return false }) })
	if !f.failed.Load() || time.Since(start) < 100*time.Millisecond {
		t.Errorf("a condition that never holds: failed %v after %s", f.failed.Load(), time.Since(start))
	}
}

func TestSettled(t *testing.T) {
	var v atomic.Int64
	go func() {
		for range 3 {
			time.Sleep(5 * time.Millisecond)
			v.Add(1)
		}
	}()
	Settled(t, "the counter at 3", 3, v.Load)

	// A value that reaches what it must be and then moves on fails.
	var calls int
	f := &fakeT{TB: t}
	run(f, func() {
		Settled(f, "a counter that overshoots", 1, func() int { calls++; return min(calls, 3) })
	})
	if !f.failed.Load() {
		t.Error("Settled passed a value that moved on after reaching want")
	}
}
