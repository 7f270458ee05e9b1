package delivery

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// RetryPolicy is exponential backoff with full jitter (AWS Architecture
// Blog, "Exponential Backoff And Jitter"): the delay before retry n is a
// uniform random duration in [0, min(MaxDelay, Initial·Multiplier^(n-1))).
// The zero value is a safe default: 5 attempts, 100 ms initial, ×2, 10 s cap.
type RetryPolicy struct {
	// MaxAttempts counts the first try: 3 means one try and two retries.
	MaxAttempts int
	Initial     time.Duration
	MaxDelay    time.Duration
	Multiplier  float64
	// Rand returns a float in [0,1). Inject a seeded source for determinism;
	// nil uses math/rand/v2.
	Rand func() float64
}

// DefaultRetryPolicy is the zero value's meaning.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 5, Initial: 100 * time.Millisecond, MaxDelay: 10 * time.Second, Multiplier: 2}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.Initial <= 0 {
		p.Initial = DefaultRetryPolicy.Initial
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultRetryPolicy.MaxDelay
	}
	if p.Multiplier < 1 {
		p.Multiplier = DefaultRetryPolicy.Multiplier
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	return p
}

// Attempts returns the effective maximum number of attempts.
func (p RetryPolicy) Attempts() int { return p.withDefaults().MaxAttempts }

// Ceiling returns the un-jittered cap for the delay after failed attempt n
// (n ≥ 1): min(MaxDelay, Initial·Multiplier^(n-1)).
func (p RetryPolicy) Ceiling(n int) time.Duration {
	p = p.withDefaults()
	if n < 1 {
		n = 1
	}
	d := float64(p.Initial) * math.Pow(p.Multiplier, float64(n-1))
	if d > float64(p.MaxDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		return p.MaxDelay
	}
	return time.Duration(d)
}

// Delay returns the jittered wait after failed attempt n (n ≥ 1).
func (p RetryPolicy) Delay(n int) time.Duration {
	p = p.withDefaults()
	return time.Duration(p.Rand() * float64(p.Ceiling(n)))
}

// Retry reports whether another attempt follows failed attempt n.
func (p RetryPolicy) Retry(n int) bool { return n < p.withDefaults().MaxAttempts }

// Sleep waits d, or until ctx is done, and reports whether d passed: the
// wait between retries of every loop that must stop at once on shutdown.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
