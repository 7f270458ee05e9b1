package testenv

import (
	"testing"
	"time"
)

// Wait is how long WaitFor and Settled wait for a condition before they
// fail the test: generous, because CI machines are slow and shared.
const Wait = 30 * time.Second

// pollEvery is how often Settled looks again, and how soon WaitFor looks
// a second time; WaitFor then backs off to maxPollEvery, so that a
// condition that holds at once is seen at once and one that takes seconds
// (a management API refreshing its counts) is not asked hundreds of times.
const (
	pollEvery    = 20 * time.Millisecond
	maxPollEvery = 250 * time.Millisecond
)

// SettlePolls is how many consecutive polls Settled requires a value to
// stay at what it must be.
const SettlePolls = 5

// WaitFor polls cond until it holds, and fails t (naming what it waited
// for) when it does not within Wait.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitWithin(t, Wait, what, cond)
}

// WaitWithin is WaitFor with a deadline of d.
func WaitWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for every := pollEvery; !cond(); every = min(2*every, maxPollEvery) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(every)
	}
}

// Settled is how a test asserts that nothing more arrives without sleeping
// through a window and hoping: it waits (up to Wait) until read returns
// want — a positive end state, such as a count that includes everything
// sent and a lag of 0 once the last offset is committed — and then
// requires read to keep returning want for SettlePolls consecutive polls.
// A value that moves on after reaching want fails t with both values.
func Settled[T comparable](t testing.TB, what string, want T, read func() T) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	got := read()
	for got != want {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: got %+v, want %+v", Wait, what, got, want)
		}
		time.Sleep(pollEvery)
		got = read()
	}
	for i := range SettlePolls {
		time.Sleep(pollEvery)
		if got = read(); got != want {
			t.Fatalf("%s reached %+v, then moved on to %+v (poll %d of %d)", what, want, got, i+1, SettlePolls)
		}
	}
}
