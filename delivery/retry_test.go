package delivery_test

import (
	"context"
	"testing"
	"time"

	"switchyard/delivery"
)

func half() float64 { return 0.5 }

func TestRetryPolicyDelayIsJitteredCeiling(t *testing.T) {
	p := delivery.RetryPolicy{Initial: 100 * time.Millisecond, MaxDelay: time.Second, Multiplier: 2, Rand: half}
	want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}
	for i, w := range want {
		n := i + 1
		if got := p.Delay(n); got != w {
			t.Errorf("Delay(%d) with Rand=0.5 = %v, want %v (half of ceiling %v)", n, got, w, p.Ceiling(n))
		}
	}
	zero := p
	zero.Rand = func() float64 { return 0 }
	if got := zero.Delay(3); got != 0 {
		t.Errorf("Delay with Rand=0 = %v, want 0", got)
	}
	almost := p
	almost.Rand = func() float64 { return 0.999999 }
	if got := almost.Delay(3); got >= p.Ceiling(3) || got < p.Ceiling(3)*99/100 {
		t.Errorf("Delay with Rand≈1 = %v, want just under the ceiling %v", got, p.Ceiling(3))
	}
}

func TestRetryPolicyCeiling(t *testing.T) {
	p := delivery.RetryPolicy{Initial: time.Second, MaxDelay: 10 * time.Second, Multiplier: 2}
	want := map[int]time.Duration{
		0: time.Second, // n < 1 is treated as the first failure
		1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second,
		5: 10 * time.Second, 6: 10 * time.Second, 1000: 10 * time.Second, // capped, no overflow
	}
	for n, w := range want {
		if got := p.Ceiling(n); got != w {
			t.Errorf("Ceiling(%d) = %v, want %v", n, got, w)
		}
	}
	flat := delivery.RetryPolicy{Initial: 300 * time.Millisecond, MaxDelay: time.Minute, Multiplier: 1}
	if got := flat.Ceiling(7); got != 300*time.Millisecond {
		t.Errorf("Multiplier 1: Ceiling(7) = %v, want constant 300ms", got)
	}
	shrinking := delivery.RetryPolicy{Initial: time.Second, MaxDelay: time.Minute, Multiplier: 0.5}
	if got := shrinking.Ceiling(2); got != 2*time.Second {
		t.Errorf("Multiplier < 1 falls back to 2: Ceiling(2) = %v, want 2s", got)
	}
}

func TestRetryPolicyRetry(t *testing.T) {
	p := delivery.RetryPolicy{MaxAttempts: 3}
	for n, want := range map[int]bool{1: true, 2: true, 3: false, 4: false} {
		if got := p.Retry(n); got != want {
			t.Errorf("MaxAttempts 3: Retry(%d) = %v, want %v", n, got, want)
		}
	}
	one := delivery.RetryPolicy{MaxAttempts: 1}
	if one.Retry(1) {
		t.Error("MaxAttempts 1: Retry(1) = true, want no retries at all")
	}
}

func TestRetryPolicyZeroValue(t *testing.T) {
	var p delivery.RetryPolicy
	if got := p.Attempts(); got != 5 {
		t.Errorf("Attempts() = %d, want 5", got)
	}
	if !p.Retry(4) || p.Retry(5) {
		t.Errorf("Retry(4), Retry(5) = %v, %v; want true, false", p.Retry(4), p.Retry(5))
	}
	for n, w := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 7: 6400 * time.Millisecond, 8: 10 * time.Second} {
		if got := p.Ceiling(n); got != w {
			t.Errorf("zero value Ceiling(%d) = %v, want %v", n, got, w)
		}
	}
	for range 1000 {
		if d := p.Delay(3); d < 0 || d >= 400*time.Millisecond {
			t.Fatalf("zero value Delay(3) = %v, want within [0, 400ms)", d)
		}
	}
}

// TestSleepStopsOnCancel: a retry wait ends at once when its context does,
// so that shutdown never waits out a backoff.
func TestSleepStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !delivery.Sleep(ctx, time.Millisecond) || !delivery.Sleep(ctx, 0) {
		t.Error("Sleep with a live context did not report the wait as passed")
	}
	cancel()
	start := time.Now()
	if delivery.Sleep(ctx, time.Hour) || delivery.Sleep(ctx, 0) {
		t.Error("Sleep with a cancelled context reported the wait as passed")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Sleep with a cancelled context took %s", d)
	}
}
