package alerting

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"

	"switchyard/delivery"
	"switchyard/tsdb"
)

// RangeResult is a rule evaluated at every step of a range.
type RangeResult struct {
	Steps []time.Time
	// Series is the expression per label set, sorted by labels;
	// Values[i] is NaN where it has no value at Steps[i].
	Series []RangeSeries
	// Holding is, per step, what Result.Holding is at that step.
	Holding [][]Sample
}

// RangeSeries is one label set of a RangeResult.
type RangeSeries struct {
	Labels tsdb.Labels
	Values []float64
}

// maxRangeSteps bounds the steps one EvalRange computes.
const maxRangeSteps = 100_000

// EvalRange evaluates r at every step of [from, to] (steps aligned to
// multiples of step since the epoch) from one Select per selector over
// [first step - its window or lookback - res, last step] at resolution res
// (0 = raw samples; the preview passes 1m rollups for ranges beyond raw
// retention, 5m ones beyond 48 h), computing each step in memory with
// Eval's code. Over rollups, a rate, increase or quantile window shorter
// than two points (2×res) is widened to 2×res: a shorter one would never
// hold the two points a rate needs.
//
// A rollup point holds the last value of its bucket and is stamped by the
// store at the bucket's start; EvalRange takes it to be at the bucket's
// end instead, so that no step sees a value from after it (a series that
// stops therefore looks stale up to one res later than it did).
//
// Errors: EINVALID for a step that is not positive, from after to, more
// than 100,000 steps, or what Eval refuses; others are the store's.
func EvalRange(ctx context.Context, rd Reader, r *Rule, from, to time.Time, step, res time.Duration) (RangeResult, error) {
	stepMs := step.Milliseconds()
	switch {
	case stepMs <= 0:
		return RangeResult{}, delivery.Errorf(delivery.EINVALID, "range step %s: must be at least 1ms", step)
	case res < 0:
		return RangeResult{}, delivery.Errorf(delivery.EINVALID, "range resolution %s: must not be negative", res)
	case to.Before(from):
		return RangeResult{}, delivery.Errorf(delivery.EINVALID, "range: from %s is after to %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	first := ceilDiv(from.UnixMilli(), stepMs) * stepMs
	last := floorDiv(to.UnixMilli(), stepMs) * stepMs
	if last < first {
		return RangeResult{}, nil
	}
	if n := (last-first)/stepMs + 1; n > maxRangeSteps {
		return RangeResult{}, delivery.Errorf(delivery.EINVALID, "range of %s at step %s has %d steps, more than %d: use a larger step", to.Sub(from), step, n, maxRangeSteps)
	}
	re, err := loadRule(ctx, rd, r, first, last, res)
	if err != nil {
		return RangeResult{}, err
	}
	n := int((last-first)/stepMs + 1)
	rr := RangeResult{Steps: make([]time.Time, n), Holding: make([][]Sample, n)}
	values := make([][]float64, len(re.expr.labels)) // per slot, allocated when it first has a value
	for i := range n {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return RangeResult{}, err
			}
		}
		t := first + int64(i)*stepMs
		rr.Steps[i] = time.UnixMilli(t).UTC()
		var holding []Sample
		re.step(t, func(slot int, v float64, holds bool) {
			if values[slot] == nil {
				values[slot] = make([]float64, n)
				for j := range values[slot] {
					values[slot][j] = math.NaN()
				}
			}
			values[slot][i] = v
			if holds {
				holding = append(holding, Sample{Labels: re.label(slot), V: v})
			}
		})
		if err := checkAlertLabels(r, holding); err != nil {
			return RangeResult{}, err
		}
		rr.Holding[i] = holding
	}
	for slot, vs := range values {
		if vs != nil {
			rr.Series = append(rr.Series, RangeSeries{Labels: re.label(slot), Values: vs})
		}
	}
	return rr, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// Simulate runs Apply over every step of rr with a fresh set of alerts, as
// the evaluator would have, and returns the intervals in which each label
// set's alert was pending and firing (an interval runs from the first to
// the last step it was in that state; one still open at the end has
// Open=true and To the last step), the notifications it would have sent
// (one when an alert starts firing, one when it resolves) and how many
// alerts fired. Intervals are sorted by start, then labels.
func Simulate(r *Rule, rr RangeResult) (intervals []Interval, notifications, fired int) {
	type run struct {
		idx   int // into intervals
		state State
		last  int // the step it was last seen in
	}
	// Intervals do not depend on annotations: leave them out rather than
	// expand them at each of thousands of steps.
	sim := *r
	sim.Annotations = nil
	r = &sim
	active := map[string]*Alert{}
	runs := map[string]*run{}
	for i, ts := range rr.Steps {
		var holding []Sample
		if i < len(rr.Holding) {
			holding = rr.Holding[i]
		}
		for _, tr := range Apply(r, active, holding, ts) {
			switch {
			case tr.To == StateFiring:
				notifications++
				fired++
			case tr.From == StateFiring && tr.To == StateInactive:
				notifications++
			}
		}
		for fp, a := range active {
			if a.State != StatePending && a.State != StateFiring {
				continue
			}
			if ru := runs[fp]; ru != nil && ru.state == a.State && ru.last == i-1 {
				ru.last = i
				intervals[ru.idx].To = ts
				continue
			}
			runs[fp] = &run{idx: len(intervals), state: a.State, last: i}
			intervals = append(intervals, Interval{Labels: a.Labels, State: a.State, From: ts, To: ts})
		}
	}
	end := len(rr.Steps) - 1
	for _, ru := range runs {
		if ru.last == end {
			intervals[ru.idx].Open = true
		}
	}
	slices.SortStableFunc(intervals, func(a, b Interval) int {
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		return strings.Compare(tsdb.FromMap(a.Labels).String(), tsdb.FromMap(b.Labels).String())
	})
	return intervals, notifications, fired
}
