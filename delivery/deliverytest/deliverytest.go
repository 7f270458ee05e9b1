// Package deliverytest holds contract tests that every implementation of a
// delivery interface must pass, run by each implementation's own tests:
// TestIdempotencyKeyStore for delivery.IdempotencyKeyStore, with Clock to
// drive expiry (the manual clock every package's tests share). LoadMessage
// (fixture.go) reads the hand-written dead-letter fixtures of
// delivery/testdata for any package's tests.
package deliverytest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"switchyard/delivery"
)

// Clock is a manual clock: time moves only when Advance or Set is called.
// It is the clock every package's tests share.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// TestIdempotencyKeyStore checks the IdempotencyKeyStore contract: a put
// key is present until its ttl has passed (and gone from that instant on),
// a ttl ≤ 0 keeps it forever, a second Put replaces the expiry, keys are
// independent, and the store is safe for concurrent use. newStore is called
// once per subtest and must return an empty store.
func TestIdempotencyKeyStore(t *testing.T, newStore func(t *testing.T, now func() time.Time) delivery.IdempotencyKeyStore) {
	start := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	setup := func(t *testing.T) (delivery.IdempotencyKeyStore, *Clock) {
		t.Helper()
		c := NewClock(start)
		return newStore(t, c.Now), c
	}
	has := func(t *testing.T, s delivery.IdempotencyKeyStore, key string) bool {
		t.Helper()
		ok, err := s.Has(context.Background(), key)
		if err != nil {
			t.Fatalf("Has(%q): %v", key, err)
		}
		return ok
	}
	put := func(t *testing.T, s delivery.IdempotencyKeyStore, key string, ttl time.Duration) {
		t.Helper()
		if err := s.Put(context.Background(), key, ttl); err != nil {
			t.Fatalf("Put(%q, %v): %v", key, ttl, err)
		}
	}

	t.Run("put then has", func(t *testing.T) {
		s, _ := setup(t)
		for _, key := range []string{
			"orders.order.created.v1:7f1c2a3e-9b4d-4e2f-8a6b-1c2d3e4f5a6b",
			"key with spaces, 'quotes'; DROP TABLE x; --",
			"ключ ✓",
		} {
			if has(t, s, key) {
				t.Fatalf("Has(%q) before Put = true, want false", key)
			}
			put(t, s, key, time.Hour)
			if !has(t, s, key) {
				t.Fatalf("Has(%q) after Put = false, want true", key)
			}
		}
	})

	t.Run("missing key", func(t *testing.T) {
		s, _ := setup(t)
		put(t, s, "present", time.Hour)
		for _, key := range []string{"absent", "Present", "present ", ""} {
			if has(t, s, key) {
				t.Errorf("Has(%q) = true, want false (only %q was put)", key, "present")
			}
		}
	})

	t.Run("ttl expiry", func(t *testing.T) {
		s, c := setup(t)
		put(t, s, "k", time.Minute)
		c.Advance(59 * time.Second)
		if !has(t, s, "k") {
			t.Fatal("key gone 59s into a 1m ttl")
		}
		c.Advance(time.Second)
		if has(t, s, "k") {
			t.Fatal("key still present when its 1m ttl has passed")
		}
		c.Advance(time.Hour)
		if has(t, s, "k") {
			t.Fatal("expired key came back")
		}
	})

	t.Run("ttl <= 0 keeps forever", func(t *testing.T) {
		s, c := setup(t)
		put(t, s, "zero", 0)
		put(t, s, "negative", -time.Second)
		c.Advance(10 * 365 * 24 * time.Hour)
		for _, key := range []string{"zero", "negative"} {
			if !has(t, s, key) {
				t.Errorf("Has(%q) after ten years = false, want true (ttl <= 0 keeps forever)", key)
			}
		}
	})

	t.Run("overwrite extends", func(t *testing.T) {
		s, c := setup(t)
		put(t, s, "k", time.Minute)
		c.Advance(50 * time.Second)
		put(t, s, "k", time.Minute)
		c.Advance(30 * time.Second) // 80s after the first Put, 30s after the second
		if !has(t, s, "k") {
			t.Fatal("key expired on its first ttl although it was put again")
		}
		c.Advance(30 * time.Second) // 60s after the second Put
		if has(t, s, "k") {
			t.Fatal("key outlived the ttl of its last Put")
		}
	})

	t.Run("overwrite with no ttl keeps forever", func(t *testing.T) {
		s, c := setup(t)
		put(t, s, "k", time.Minute)
		put(t, s, "k", 0)
		c.Advance(24 * time.Hour)
		if !has(t, s, "k") {
			t.Fatal("key expired although its last Put had no ttl")
		}
	})

	t.Run("many keys", func(t *testing.T) {
		s, c := setup(t)
		const n = 300
		for i := range n {
			ttl := time.Minute
			if i%2 == 1 {
				ttl = time.Hour
			}
			put(t, s, fmt.Sprintf("event-%04d", i), ttl)
		}
		c.Advance(2 * time.Minute)
		for i := range n {
			key := fmt.Sprintf("event-%04d", i)
			if got, want := has(t, s, key), i%2 == 1; got != want {
				t.Fatalf("Has(%q) = %v, want %v (odd keys have 1h ttl, even 1m; 2m passed)", key, got, want)
			}
		}
	})

	t.Run("concurrent use", func(t *testing.T) {
		s, _ := setup(t)
		const workers, perWorker = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*perWorker)
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					key := fmt.Sprintf("w%d-k%d", w, i)
					if err := s.Put(context.Background(), key, time.Hour); err != nil {
						errs <- fmt.Errorf("put %s: %w", key, err)
						return
					}
					ok, err := s.Has(context.Background(), key)
					if err != nil {
						errs <- fmt.Errorf("has %s: %w", key, err)
						return
					}
					if !ok {
						errs <- fmt.Errorf("has %s right after its put = false", key)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for w := range workers {
			for i := range perWorker {
				if key := fmt.Sprintf("w%d-k%d", w, i); !has(t, s, key) {
					t.Errorf("Has(%q) after all workers finished = false", key)
				}
			}
		}
	})
}
