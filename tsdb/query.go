package tsdb

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"switchyard/sqldb"
)

// Agg says how the points of one step bucket become one point.
type Agg string

// The aggregations a query offers.
const (
	AggLast Agg = "last" // the latest point of the bucket (default)
	AggAvg  Agg = "avg"
	AggMin  Agg = "min"
	AggMax  Agg = "max"
)

// Q is a range query over the series of one metric.
type Q struct {
	// Name is the metric name (the __name__ label). Required.
	Name string
	// Matchers further select series by label; all must match.
	Matchers []Matcher
	// Or, when not nil, selects only series that also match every matcher
	// of at least one of its alternatives, like several selectors joined
	// by PromQL's "or" ({topic=~"orders.*"} or {group="billing"}). A
	// non-nil empty Or selects nothing. Callers use it to narrow a query to
	// what one principal may see (collector.SeriesScope).
	Or [][]Matcher
	// From and To bound the range, both inclusive.
	From, To time.Time
	// Step is the bucket width; required. Buckets are aligned to multiples
	// of Step since the Unix epoch, so a chart does not shift as its range
	// slides, and each bucket with data gives one point.
	Step time.Duration
	// Agg is the aggregation per bucket; default AggLast.
	Agg Agg
}

// Point is one bucket of a query result: T is the bucket's start, V its
// aggregated value.
type Point struct {
	T time.Time
	V float64
}

// Series is one series of a query result.
type Series struct {
	Labels Labels
	Points []Point
	// Rollup is true when the points were computed from rollups rather
	// than raw samples; the range then widens to whole rollup steps
	// (CoarseStep ones when it begins beyond CoarseAfter).
	Rollup bool
}

// Query returns, for each series of q.Name matching q.Matchers that has
// points in the range, one point per Step bucket, sorted by labels. It
// reads raw points when the whole range lies within RawRetention and Step
// is not a multiple of RollupStep; otherwise it reads rollups, which give
// the same answer for such steps at a fraction of the decoding. Rollups
// older than CoarseAfter (48 h) are kept at CoarseStep (5 minutes) only: a
// Step that is a multiple of it reads the same values as before the
// compaction, and a finer Step over that part of the range gets one point
// per CoarseStep (the bucket summarised at its start), so a 14-day chart at
// a 1-minute step has 5-minute points beyond 48 h and 1-minute points
// after. No match is an empty result, not an error.
//
// Errors: EINVALID for a missing name, a bad matcher or regular
// expression, From after To, Step not positive, an unknown aggregation, or
// a range of more than MaxPoints steps.
func (s *Store) Query(ctx context.Context, q Q) ([]Series, error) {
	ms, err := s.checkQuery(q)
	if err != nil {
		return nil, err
	}
	if err := checkPoints(q, s.opts.MaxPoints); err != nil {
		return nil, err
	}
	return s.query(ctx, q, ms, 0)
}

// SelectQ reads samples rather than step buckets: Select.
type SelectQ struct {
	// Name, Matchers and Or select series as in Q.
	Name     string
	Matchers []Matcher
	Or       [][]Matcher
	// From and To bound the range, both inclusive.
	From, To time.Time
	// Resolution 0 reads the raw samples, each at its own time (raw
	// retention only). A positive Resolution reads one point per
	// Resolution bucket, the bucket's last value at the bucket's start,
	// from rollups when it is a multiple of the rollup step: what a
	// preview over days reads. Beyond CoarseAfter the rollups have
	// CoarseStep buckets, so a finer Resolution reads one point per
	// CoarseStep there (see Query).
	Resolution time.Duration
	// MaxSamples bounds the points read over all series; 0 means
	// DefaultMaxSamples. More is EINVALID, so that one request cannot
	// hold a range of every series in memory.
	MaxSamples int
}

// DefaultMaxSamples is SelectQ.MaxSamples's default.
const DefaultMaxSamples = 20_000_000

// Select returns the samples of every series of q.Name matching q's
// matchers within [From, To], sorted by labels, with no per-series point
// limit: the alert evaluator reads the last minutes of raw samples
// (Prometheus's range and instant selectors), and a rule preview a long
// range at the rollup step. Series without samples in range are left out.
//
// Errors: EINVALID as for Query (but for the point limit), and when the
// result would hold more than MaxSamples points.
func (s *Store) Select(ctx context.Context, q SelectQ) ([]Series, error) {
	bq := Q{Name: q.Name, Matchers: q.Matchers, Or: q.Or, From: q.From, To: q.To, Step: q.Resolution, Agg: AggLast}
	if bq.Step == 0 {
		bq.Step = time.Millisecond
	}
	if q.Resolution < 0 {
		return nil, invalidf("select resolution %s: must not be negative", q.Resolution)
	}
	ms, err := s.checkQuery(bq)
	if err != nil {
		return nil, err
	}
	max := q.MaxSamples
	if max <= 0 {
		max = DefaultMaxSamples
	}
	return s.query(ctx, bq, ms, max)
}

// query runs a checked query; maxSamples > 0 bounds the points returned.
func (s *Store) query(ctx context.Context, q Q, ms []matcher, maxSamples int) ([]Series, error) {
	alts, err := compileOr(q.Or)
	if err != nil {
		return nil, err
	}
	if alts != nil && len(alts) == 0 {
		return []Series{}, nil
	}
	if q.Agg == "" {
		q.Agg = AggLast
	}
	now := s.opts.Now()
	rollup := q.From.Before(now.Add(-s.opts.RawRetention)) ||
		(q.Step >= s.opts.RollupStep && q.Step%s.opts.RollupStep == 0)

	type pick struct {
		id     uint64
		labels Labels
		head   []byte // sealed form of the head, nil if none
		start  int64
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, fmt.Errorf("tsdb: query on a closed store")
	}
	var picks []pick
	for _, m := range s.byName[q.Name] {
		if !matchAll(ms, m.labels) || !matchAny(alts, m.labels) {
			continue
		}
		p := pick{id: m.id, labels: m.labels}
		// The head is copied before the chunks are read: if its window
		// is sealed meanwhile, the chunks from it on are skipped as
		// duplicates instead of the window going missing.
		if m.head != nil {
			p.head, p.start = m.head.c.bytes(), m.head.start
		}
		picks = append(picks, p)
	}
	s.mu.RUnlock()
	slices.SortFunc(picks, func(a, b pick) int { return CompareLabels(a.labels, b.labels) })

	from, to, step := q.From.UnixMilli(), q.To.UnixMilli(), q.Step.Milliseconds()
	if rollup {
		from = floorDiv(from, s.step) * s.step
		if from < now.UnixMilli()-s.coarseAfter {
			// Coarse buckets start at multiples of CoarseStep.
			from = floorDiv(from, s.coarseStep) * s.coarseStep
		}
	}
	out := []Series{}
	for _, p := range picks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := newBucketer(from, to, step, q.Agg)
		// A range that begins within the head's window has nothing in
		// stored chunks: the alert evaluator's minutes-long reads of
		// thousands of series then cost no query each.
		if p.head == nil || from < p.start {
			if err := s.readChunks(ctx, p.id, rollup, from, to, p.start, p.head != nil, b); err != nil {
				return nil, fmt.Errorf("query %s: %w", p.labels, err)
			}
		}
		if p.head != nil && p.start <= to && p.start+s.window > from {
			if rollup {
				idx, aggs, err := rollupBuckets(p.head, p.start, s.step)
				if err != nil {
					return nil, fmt.Errorf("query %s: head: %w", p.labels, err)
				}
				for i, k := range idx {
					b.add(p.start+k*s.step, aggs[i])
				}
			} else if err := b.addRaw(p.head); err != nil {
				return nil, fmt.Errorf("query %s: head: %w", p.labels, err)
			}
		}
		if pts := b.finish(); len(pts) > 0 {
			out = append(out, Series{Labels: p.labels, Points: pts, Rollup: rollup})
			if maxSamples > 0 {
				if maxSamples -= len(pts); maxSamples < 0 {
					return nil, invalidf("select of %s over %s reads more than its limit of samples: narrow the matchers or the range", q.Name, q.To.Sub(q.From))
				}
			}
		}
	}
	return out, nil
}

func (s *Store) checkQuery(q Q) ([]matcher, error) {
	switch {
	case q.Name == "":
		return nil, invalidf("query needs a metric name")
	case !sqldb.TimeInRange(q.From) || !sqldb.TimeInRange(q.To):
		return nil, invalidf("query range: from and to must be times %s", sqldb.TimeRangeText)
	case q.To.Before(q.From):
		return nil, invalidf("query range: from %s is after to %s", q.From.UTC().Format(time.RFC3339), q.To.UTC().Format(time.RFC3339))
	case q.Step < time.Millisecond:
		return nil, invalidf("query step %s: must be at least 1ms", q.Step)
	}
	switch q.Agg {
	case "", AggLast, AggAvg, AggMin, AggMax:
	default:
		return nil, invalidf("query aggregation %q: want last, avg, min or max", q.Agg)
	}
	return compileMatchers(q.Matchers)
}

// checkPoints refuses a range of more than max steps.
func checkPoints(q Q, max int) error {
	step := q.Step.Milliseconds()
	if n := floorDiv(q.To.UnixMilli(), step) - floorDiv(q.From.UnixMilli(), step) + 1; n > int64(max) {
		return invalidf("query of %s at step %s gives %d points per series, more than the limit of %d: use a larger step or a shorter range",
			q.To.Sub(q.From), q.Step, n, max)
	}
	return nil
}

// readChunks feeds the stored chunks of one series overlapping [from, to]
// to b in time order, stopping at the window the head copy covers. Rollups
// are read from the coarse and the 1-minute chunks in one statement, so
// that a compaction committing meanwhile is seen wholly or not at all; the
// two never overlap in time, so ordering by start stitches them.
func (s *Store) readChunks(ctx context.Context, id uint64, rollup bool, from, to, headStart int64, hasHead bool, b *bucketer) error {
	query := `SELECT start, data FROM raw_chunks WHERE series_id = ? AND start > ? AND start <= ? ORDER BY start`
	args := []any{id, from - s.window, to}
	if rollup {
		query = `SELECT start, data FROM coarse_chunks WHERE series_id = ? AND start > ? AND start <= ?
UNION ALL
SELECT start, data FROM rollup_chunks WHERE series_id = ? AND start > ? AND start <= ?
ORDER BY start`
		args = []any{id, from - s.coarseWindow, to, id, from - s.window, to}
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var start int64
		var data []byte
		if err := rows.Scan(&start, &data); err != nil {
			return err
		}
		if hasHead && start >= headStart {
			// Sealed after the head was copied: the copy is this
			// window's data, and later windows are newer than the
			// moment the query looked.
			break
		}
		if rollup {
			err = b.addRollup(data, start)
		} else {
			err = b.addRaw(data)
		}
		if err != nil {
			return fmt.Errorf("chunk at %d: %w", start, err)
		}
	}
	return rows.Err()
}

// bucketer folds points, in time order, into step buckets.
type bucketer struct {
	from, to, step int64
	agg            Agg
	cur            int64 // current bucket start
	acc            agg
	out            []Point
}

func newBucketer(from, to, step int64, a Agg) *bucketer {
	b := &bucketer{from: from, to: to, step: step, agg: a, cur: math.MinInt64}
	// Long ranges at coarse steps (a preview over 14 days) fill
	// thousands of buckets: size the result once. Raw reads (1 ms steps)
	// hold far fewer points than buckets and grow as they go.
	if step >= 1000 && to >= from {
		b.out = make([]Point, 0, min((to-from)/step+1, 1<<15))
	}
	return b
}

func (b *bucketer) add(t int64, a agg) {
	if t < b.from || t > b.to {
		return
	}
	bucket := floorDiv(t, b.step) * b.step
	if bucket != b.cur {
		b.flush()
		b.cur = bucket
	}
	b.acc.addAgg(a)
}

func (b *bucketer) flush() {
	if b.acc.count == 0 {
		return
	}
	v := b.acc.last
	switch b.agg {
	case AggAvg:
		v = b.acc.sum / b.acc.count
	case AggMin:
		v = b.acc.min
	case AggMax:
		v = b.acc.max
	}
	b.out = append(b.out, Point{T: time.UnixMilli(b.cur).UTC(), V: v})
	b.acc = agg{}
}

func (b *bucketer) finish() []Point {
	b.flush()
	return b.out
}

func (b *bucketer) addRaw(chunk []byte) error {
	it := newRawIter(chunk)
	for it.next() {
		if it.T > b.to {
			break
		}
		b.add(it.T, agg{min: it.V, max: it.V, sum: it.V, count: 1, last: it.V})
	}
	return it.err
}

func (b *bucketer) addRollup(chunk []byte, start int64) error {
	var want [numCols]bool
	switch b.agg {
	case AggAvg:
		want[colSum] = true
	case AggMin:
		want[colMin] = true
	case AggMax:
		want[colMax] = true
	default:
		want[colLast] = true
	}
	ts, aggs, err := decodeRollup(chunk, start, want)
	if err != nil {
		return err
	}
	for i, t := range ts {
		b.add(t, aggs[i])
	}
	return nil
}

// CompareLabels orders label sets as query results are ordered (by name,
// then value, pair by pair); callers that sort series the store's way use
// it.
func CompareLabels(a, b Labels) int {
	for i := range min(len(a), len(b)) {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// LabelValues returns the sorted distinct values of label among the series
// matching all matchers (which may include one on MetricName); with label
// MetricName it lists metric names. Errors: EINVALID for a bad matcher.
func (s *Store) LabelValues(ctx context.Context, label string, matchers ...Matcher) ([]string, error) {
	ms, err := compileMatchers(matchers)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]struct{}{}
	scan := func(all map[uint64]*memSeries) {
		for _, m := range all {
			if v := m.labels.Get(label); v != "" && matchAll(ms, m.labels) {
				seen[v] = struct{}{}
			}
		}
	}
	// A name matcher narrows the scan to that metric's series.
	narrowed := false
	for _, m := range ms {
		if m.Label == MetricName && m.Op == MatchEqual {
			scan(s.byName[m.Value])
			narrowed = true
			break
		}
	}
	if !narrowed {
		scan(s.byID)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// LabelNames returns the sorted label names (MetricName left out) that the
// stored series of metric carry: nil when the metric is unknown, an empty
// (non-nil) list for a metric whose series have no other label. Rule
// validation uses it to refuse an unknown metric and a matcher on a label
// the metric never has.
func (s *Store) LabelNames(ctx context.Context, metric string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	seen := map[string]struct{}{}
	known := len(s.byName[metric]) > 0
	for _, m := range s.byName[metric] {
		for _, l := range m.labels {
			if l.Name != MetricName {
				seen[l.Name] = struct{}{}
			}
		}
	}
	s.mu.RUnlock()
	if !known {
		return nil, nil
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}
