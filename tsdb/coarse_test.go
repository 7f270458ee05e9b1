package tsdb

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"switchyard/delivery/deliverytest"
)

// encodeRollup1 is, verbatim but for its name, how the release before
// format 2 encoded a rollup chunk: what an old file holds.
func encodeRollup1(raw []byte, start, step int64) ([]byte, error) {
	idx, buckets, err := rollupBuckets(raw, start, step)
	if err != nil {
		return nil, err
	}
	out := binary.AppendUvarint(nil, uint64(step))
	out = appendRuns(out, idx)
	for col := range numCols {
		var s bstream
		var e xorEncoder
		for _, a := range buckets {
			e.append(&s, a.col(col))
		}
		out = binary.AppendUvarint(out, uint64(len(s.b)))
		out = append(out, s.b...)
	}
	return out, nil
}

// sameAgg compares summaries bit for bit, so that NaN equals NaN and -0
// differs from 0.
func sameAgg(a, b agg) bool {
	for c := range numCols {
		if math.Float64bits(a.col(c)) != math.Float64bits(b.col(c)) {
			return false
		}
	}
	return true
}

// samePoints compares query results bit for bit.
func samePoints(a, b []Series) error { return closePoints(a, b, 0) }

// closePoints compares query results within a relative tolerance (NaN
// equal to NaN).
func closePoints(a, b []Series, tol float64) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d series, want %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Labels.String() != b[i].Labels.String() || len(a[i].Points) != len(b[i].Points) {
			return fmt.Errorf("series %d: %s with %d points, want %s with %d", i, a[i].Labels, len(a[i].Points), b[i].Labels, len(b[i].Points))
		}
		for j, p := range a[i].Points {
			q := b[i].Points[j]
			same := math.Float64bits(p.V) == math.Float64bits(q.V) || math.Abs(p.V-q.V) <= tol*math.Abs(q.V)
			if !p.T.Equal(q.T) || !same {
				return fmt.Errorf("%s point %d = %v %v, want %v %v", a[i].Labels, j, p.T, p.V, q.T, q.V)
			}
		}
	}
	return nil
}

// Every summary a rollup can hold comes back bit for bit: integers large
// and small, counter resets, fractions, NaN, ±Inf, -0 and gaps between
// buckets, in any mix of columns.
func TestRollupEncodingRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	edge := []float64{0, math.Copysign(0, -1), 1, -1, math.NaN(), math.Inf(1), math.Inf(-1), 0.1, 1e300, -1e-300,
		maxExactInt, -maxExactInt, maxExactInt + 2, math.MaxFloat64, math.SmallestNonzeroFloat64, 1 << 40, -(1 << 40)}
	shapes := map[string]func(i int, prev float64) float64{
		"counter": func(i int, prev float64) float64 { return prev + float64(rng.IntN(500)) },
		"counter with resets": func(i int, prev float64) float64 {
			if rng.IntN(20) == 0 {
				return float64(rng.IntN(10))
			}
			return prev + float64(rng.IntN(500))
		},
		"wandering lag":  func(i int, prev float64) float64 { return max(0, prev+float64(rng.IntN(201)-100)) },
		"fractions":      func(i int, prev float64) float64 { return rng.Float64() * 100 },
		"constant":       func(i int, prev float64) float64 { return 42 },
		"edge values":    func(i int, prev float64) float64 { return edge[rng.IntN(len(edge))] },
		"huge integers":  func(i int, prev float64) float64 { return float64(rng.Int64N(1<<53)) - (1 << 52) },
		"mostly integer": func(i int, prev float64) float64 { return []float64{prev + 3, math.NaN()}[min(rng.IntN(40), 1)^1] },
	}
	for name, next := range shapes {
		for _, gaps := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/gaps=%v", name, gaps), func(t *testing.T) {
				const step = 60_000
				var c rawChunk
				v := 1e6
				for i := range 360 {
					if gaps && (i/30)%3 == 1 {
						continue // 5 minutes silent in every 15
					}
					v = next(i, v)
					c.append(7_200_000+int64(i)*10_000, v)
				}
				idx, want, err := rollupBuckets(c.bytes(), 7_200_000, step)
				if err != nil {
					t.Fatal(err)
				}
				roll, err := encodeRollup(c.bytes(), 7_200_000, step)
				if err != nil {
					t.Fatal(err)
				}
				all := [numCols]bool{true, true, true, true, true}
				ts, got, err := decodeRollup(roll, 7_200_000, all)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%d buckets, want %d", len(got), len(want))
				}
				for i := range want {
					if ts[i] != 7_200_000+idx[i]*step || !sameAgg(got[i], want[i]) {
						t.Fatalf("bucket %d at %d = %+v, want %+v at %d", i, ts[i], got[i], want[i], 7_200_000+idx[i]*step)
					}
				}
				// One wanted column decodes alone (with what it is
				// stored relative to) to the same values.
				for col := range numCols {
					var want1 [numCols]bool
					want1[col] = true
					_, some, err := decodeRollup(roll, 7_200_000, want1)
					if err != nil {
						t.Fatal(err)
					}
					for i := range want {
						if math.Float64bits(some[i].col(col)) != math.Float64bits(want[i].col(col)) {
							t.Fatalf("column %d alone, bucket %d = %v, want %v", col, i, some[i].col(col), want[i].col(col))
						}
					}
				}
				// A truncated chunk is an error, never a panic.
				for cut := range len(roll) {
					decodeRollup(roll[:cut], 7_200_000, all) //nolint:errcheck // must not panic
				}
			})
		}
	}
}

// The previous release's rollups are read as they were.
func TestRollupFormat1StillDecodes(t *testing.T) {
	var c rawChunk
	for i := range 360 {
		c.append(int64(i)*10_000, float64(i*i)+0.5)
	}
	old, err := encodeRollup1(c.bytes(), 0, 60_000)
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ := rollupBuckets(c.bytes(), 0, 60_000)
	_, got, err := decodeRollup(old, 0, [numCols]bool{true, true, true, true, true})
	if err != nil || len(got) != len(want) {
		t.Fatalf("format 1: %d buckets, %v; want %d", len(got), err, len(want))
	}
	for i := range want {
		if !sameAgg(got[i], want[i]) {
			t.Fatalf("bucket %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// coarseSeries are four shapes a compaction must keep: a counter that
// restarts, a lag with NaN gaps, a fractional gauge and a series silent
// for hours at a time.
func coarseSeries() []Labels {
	return []Labels{lag("counter"), lag("nan-lag"), lag("fraction"), lag("intermittent")}
}

func coarseValue(i, cycle int) float64 {
	switch i {
	case 0:
		return float64((cycle % 2000) * 37) // restarts every 2,000 minutes
	case 1:
		if cycle%97 == 0 {
			return math.NaN()
		}
		return float64(cycle%50) * 3
	case 2:
		return float64(cycle%1000) / 7
	}
	return float64(cycle)
}

// fillMinutes appends one sample per series every minute over [from, to)
// (series 3 only in the first 6 of every 9 hours), advancing the clock.
func fillMinutes(t testing.TB, s *Store, c *deliverytest.Clock, series []Labels, from, to time.Time) {
	t.Helper()
	cycle := 0
	for ts := from; ts.Before(to); ts = ts.Add(time.Minute) {
		c.Set(ts)
		batch := make([]Sample, 0, len(series))
		for i, ls := range series {
			if i == 3 && (cycle/60)%9 >= 6 {
				continue
			}
			batch = append(batch, Sample{Series: ls, T: ts, V: coarseValue(i, cycle)})
		}
		mustAppend(t, s, batch)
		cycle++
	}
}

// coarseQueries are what must agree before and after a compaction: 14 days
// at the coarse step in every aggregation, bit for bit, and at an hour,
// where sums are added in another grouping (coarseTol).
func coarseQueries(from, to time.Time) []Q {
	var out []Q
	for _, a := range []Agg{AggLast, AggAvg, AggMin, AggMax} {
		out = append(out, Q{Name: "switchyard_consumer_group_lag", From: from, To: to, Step: 5 * time.Minute, Agg: a})
	}
	return append(out, Q{Name: "switchyard_consumer_group_lag", From: from, To: to, Step: time.Hour, Agg: AggAvg})
}

// coarseTol is the tolerance of q's answer after a compaction.
func coarseTol(q Q) float64 {
	if q.Step == 5*time.Minute {
		return 0
	}
	return 1e-12
}

func countRows(t testing.TB, s *Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A 14-day history reads the same at 5-minute resolution before and after
// its rollups older than 48 h are compacted; a finer step gets 5-minute
// points beyond 48 h and 1-minute ones after; counters' increase is kept.
func TestCompactionKeepsFiveMinuteAnswers(t *testing.T) {
	c := deliverytest.NewClock(t0)
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now})
	end := t0.Add(14 * 24 * time.Hour)
	fillMinutes(t, s, c, coarseSeries(), t0, end)
	from, to := t0, end.Add(-time.Minute)
	var want [][]Series
	for _, q := range coarseQueries(from, to) {
		want = append(want, mustQuery(t, s, q))
	}
	if n := countRows(t, s, `SELECT COUNT(*) FROM coarse_chunks`); n != 0 {
		t.Fatalf("%d coarse chunks before Maintain", n)
	}
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	cut := s.coarseCut(c.Now().UnixMilli())
	if n := countRows(t, s, `SELECT COUNT(*) FROM rollup_chunks WHERE start < ?`, cut); n != 0 {
		t.Errorf("%d 1-minute rollup chunks older than the cut after Maintain", n)
	}
	if n := countRows(t, s, `SELECT COUNT(*) FROM coarse_chunks`); n < 4*40 {
		t.Errorf("%d coarse chunks, want about 4 series × 47 windows", n)
	}
	for i, q := range coarseQueries(from, to) {
		if err := closePoints(mustQuery(t, s, q), want[i], coarseTol(q)); err != nil {
			t.Errorf("step %s agg %s after compaction: %v", q.Step, q.Agg, err)
		}
	}
	got, err := s.Select(context.Background(), SelectQ{Name: "switchyard_consumer_group_lag", Matchers: []Matcher{{"group", MatchEqual, "counter"}}, From: from, To: to, Resolution: time.Minute})
	if err != nil || len(got) != 1 {
		t.Fatalf("1-minute select: %d series, %v", len(got), err)
	}
	pts := got[0].Points
	for i := 1; i < len(pts); i++ {
		gap, old := pts[i].T.Sub(pts[i-1].T), pts[i].T.UnixMilli() < cut
		if (old && gap != 5*time.Minute) || (!old && pts[i-1].T.UnixMilli() >= cut && gap != time.Minute) {
			t.Fatalf("point %d at %s follows the previous by %s", i, pts[i].T, gap)
		}
	}
	if n := len(pts); n < 2880 || n > 2880+60*6+12*24*12 {
		t.Errorf("1-minute query over 14 days: %d points, want 48-54 h of minutes and 5-minute points before", n)
	}
	// Increase from the coarse points: the restarts every 2,000 minutes
	// are each seen, so the total is the sum of the runs' growth.
	before := Increase(want[0][0].Points)
	if after := Increase(mustQuery(t, s, coarseQueries(from, to)[0])[0].Points); after != before || before < 20160/2000*1900*37 {
		t.Errorf("increase after compaction %v, before %v", after, before)
	}
	// Nothing more to do: a second Maintain leaves the answers alone.
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := samePoints(mustQuery(t, s, coarseQueries(from, to)[1]), want[1]); err != nil {
		t.Errorf("after a second Maintain: %v", err)
	}
	// Retention takes the coarse chunks too, and a series with nothing
	// left goes with them.
	c.Set(end.Add(15 * 24 * time.Hour))
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, `SELECT COUNT(*) FROM coarse_chunks`); n != 0 || s.SeriesCount() != 0 {
		t.Errorf("after retention: %d coarse chunks, %d series; want none", n, s.SeriesCount())
	}
}

// A file whose rollups are in format 1 (the previous release's) reads as
// before, and its rollups beyond CoarseAfter are compacted to format 2.
func TestFormat1RollupsAreCompacted(t *testing.T) {
	c := deliverytest.NewClock(t0)
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir, Now: c.Now})
	end := t0.Add(4 * 24 * time.Hour)
	fillMinutes(t, s, c, coarseSeries(), t0, end)
	// Rewrite every rollup as the previous release wrote it.
	rows, err := s.db.Query(`SELECT r.series_id, r.start, w.data FROM rollup_chunks r JOIN raw_chunks w USING (series_id, start)`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id, start int64
		data      []byte
	}
	var old []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.start, &r.data); err != nil {
			t.Fatal(err)
		}
		if r.data, err = encodeRollup1(r.data, r.start, s.step); err != nil {
			t.Fatal(err)
		}
		old = append(old, r)
	}
	rows.Close()
	for _, r := range old {
		if _, err := s.db.Exec(`UPDATE rollup_chunks SET data = ? WHERE series_id = ? AND start = ?`, r.data, r.id, r.start); err != nil {
			t.Fatal(err)
		}
	}
	// Raw chunks are kept 24 h only: the rollups must be the older ones'.
	if len(old) < 4*24 {
		t.Fatalf("only %d rollups rewritten", len(old))
	}
	from, to := t0, end.Add(-time.Minute)
	fine := mustQuery(t, s, Q{Name: "switchyard_consumer_group_lag", From: from, To: to, Step: time.Minute, Agg: AggAvg})
	var want [][]Series
	for _, q := range coarseQueries(from, to) {
		want = append(want, mustQuery(t, s, q))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := mustOpen(t, Options{Dir: dir, Now: c.Now})
	if err := samePoints(mustQuery(t, s2, Q{Name: "switchyard_consumer_group_lag", From: from, To: to, Step: time.Minute, Agg: AggAvg}), fine); err != nil {
		t.Errorf("format 1 rollups after reopening: %v", err)
	}
	if err := s2.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s2, `SELECT COUNT(*) FROM coarse_chunks`); n == 0 {
		t.Fatal("no coarse chunks after Maintain")
	}
	for i, q := range coarseQueries(from, to) {
		if err := closePoints(mustQuery(t, s2, q), want[i], coarseTol(q)); err != nil {
			t.Errorf("step %s agg %s after compacting format 1: %v", q.Step, q.Agg, err)
		}
	}
	var data []byte
	if err := s2.db.QueryRow(`SELECT data FROM coarse_chunks LIMIT 1`).Scan(&data); err != nil || len(data) < 2 || data[0] != 0 || data[1] != rollupFormat2 {
		t.Errorf("coarse chunk starts % x, %v; want format 2", data[:min(len(data), 2)], err)
	}
}

// Options that would compact raw retention's data or mix steps are
// refused.
func TestCoarseOptionsAreChecked(t *testing.T) {
	for _, o := range []Options{
		{RawRetention: 72 * time.Hour, CoarseAfter: 48 * time.Hour},
		{CoarseStep: 7 * time.Minute},
		{CoarseStep: 90 * time.Second},
	} {
		o.Dir = t.TempDir()
		if err := o.setDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o := Options{Dir: t.TempDir(), RawRetention: 72 * time.Hour}
	if err := o.setDefaults(); err != nil || o.CoarseAfter != 72*time.Hour {
		t.Errorf("RawRetention 72h: CoarseAfter %s, %v; want 72h", o.CoarseAfter, err)
	}
}
