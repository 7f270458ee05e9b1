package delivery_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
)

func TestMemoryKeyStore(t *testing.T) {
	deliverytest.TestIdempotencyKeyStore(t, func(t *testing.T, now func() time.Time) delivery.IdempotencyKeyStore {
		s := delivery.NewMemoryKeyStore()
		s.Now = now
		return s
	})
}

// The zero MemoryKeyStore is usable too (its map is made on first Put).
func TestMemoryKeyStoreZeroValue(t *testing.T) {
	deliverytest.TestIdempotencyKeyStore(t, func(t *testing.T, now func() time.Time) delivery.IdempotencyKeyStore {
		return &delivery.MemoryKeyStore{Now: now}
	})
}

// A bounded store still keeps the contract while it is under its bound.
func TestBoundedMemoryKeyStore(t *testing.T) {
	deliverytest.TestIdempotencyKeyStore(t, func(t *testing.T, now func() time.Time) delivery.IdempotencyKeyStore {
		s := delivery.NewBoundedMemoryKeyStore(10_000)
		s.Now = now
		return s
	})
}

// A bounded store at a steady rate of new ids, as a consumer's that runs
// for days: it never holds more than MaxKeys, a duplicate of any of the
// last MaxKeys ids is caught, and the oldest ids are the ones forgotten.
func TestBoundedMemoryKeyStoreHoldsItsBoundAndDedupesWithin(t *testing.T) {
	ctx := context.Background()
	const bound = 1000
	s := delivery.NewBoundedMemoryKeyStore(bound)
	id := func(i int) string { return fmt.Sprintf("orders.order.created.v1:%08d", i) }
	for i := range 50 * bound {
		if err := s.Put(ctx, id(i), 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if n := s.Len(); n > bound {
			t.Fatalf("after %d puts the store holds %d keys, over its bound of %d", i+1, n, bound)
		}
	}
	last := 50*bound - 1
	for i := last - bound + 1; i <= last; i++ {
		if ok, _ := s.Has(ctx, id(i)); !ok {
			t.Fatalf("id %d, among the last %d put, is not detected as a duplicate", i, bound)
		}
	}
	for _, i := range []int{0, last - bound - 100, last - bound} {
		if ok, _ := s.Has(ctx, id(i)); ok {
			t.Errorf("id %d, older than the last %d put, is still held", i, bound)
		}
	}
}

// Putting a held key again makes it the newest: it outlives keys put after
// its first Put, and re-puts of a few hot keys do not let the store's
// bookkeeping grow.
func TestBoundedMemoryKeyStoreRePutRefreshes(t *testing.T) {
	ctx := context.Background()
	s := delivery.NewBoundedMemoryKeyStore(3)
	for _, k := range []string{"a", "b", "c", "a", "d"} {
		if err := s.Put(ctx, k, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if ok, _ := s.Has(ctx, k); ok != want {
			t.Errorf("Has(%q) = %v, want %v (put a, b, c, a, d with a bound of 3)", k, ok, want)
		}
	}
	// A million re-puts of three keys: still those three, and no growth
	// the heap would show.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 1_000_000 {
		_ = s.Put(ctx, []string{"a", "c", "d"}[i%3], time.Hour)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if s.Len() != 3 {
		t.Errorf("store holds %d keys after re-puts of 3, want 3", s.Len())
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
		t.Errorf("a million re-puts of 3 keys grew the heap by %d bytes", grew)
	}
}
