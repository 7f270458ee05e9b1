package tsdb

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestRawChunkRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type pt struct {
		t int64
		v float64
	}
	gen := func(n int, tf func(i int) int64, vf func(i int) float64) []pt {
		out := make([]pt, n)
		for i := range out {
			out[i] = pt{tf(i), vf(i)}
		}
		return out
	}
	every10s := func(i int) int64 { return 1_767_225_600_000 + int64(i)*10_000 }
	cases := []struct {
		name string
		pts  []pt
	}{
		{"one point", gen(1, every10s, func(int) float64 { return 42 })},
		{"constant", gen(360, every10s, func(int) float64 { return 0 })},
		{"counter", gen(360, every10s, func(i int) float64 { return float64(1e9 + i*137) })},
		{"random floats", gen(360, every10s, func(int) float64 { return rng.NormFloat64() * 1e6 })},
		{"special values", gen(6, every10s, func(i int) float64 {
			return []float64{math.NaN(), math.Inf(1), math.Inf(-1), -0.0, math.MaxFloat64, math.SmallestNonzeroFloat64}[i]
		})},
		{"jittered and gappy timestamps", gen(300, func(i int) int64 {
			return 1_767_225_600_000 + int64(i)*10_000 + int64(rng.IntN(900)) + int64(i/50)*3_600_000
		}, func(i int) float64 { return float64(i % 7) })},
		{"huge gap", []pt{{0, 1}, {1, 2}, {1 << 40, 3}, {1<<40 + 5, 4}}},
		{"negative times", []pt{{-5_000, 1}, {-10, 2}, {0, 3}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c rawChunk
			for _, p := range tc.pts {
				c.append(p.t, p.v)
			}
			it := newRawIter(c.bytes())
			i := 0
			for it.next() {
				want := tc.pts[i]
				if it.T != want.t || math.Float64bits(it.V) != math.Float64bits(want.v) {
					t.Fatalf("point %d = (%d, %v), want (%d, %v)", i, it.T, it.V, want.t, want.v)
				}
				i++
			}
			if it.err != nil || i != len(tc.pts) {
				t.Fatalf("decoded %d of %d points, err %v", i, len(tc.pts), it.err)
			}
		})
	}
}

func TestRawChunkTruncatedIsAnError(t *testing.T) {
	var c rawChunk
	for i := range 100 {
		c.append(int64(i)*10_000, float64(i*i))
	}
	b := c.bytes()
	it := newRawIter(b[:len(b)/2])
	for it.next() {
	}
	if it.err == nil {
		t.Fatal("truncated chunk decoded without error")
	}
}

func TestRollupSummarisesEachStep(t *testing.T) {
	const start, step = 3_600_000, 60_000
	var c rawChunk
	// Minute 0: 1..6, minute 2: 10, 20 (minute 1 empty).
	for i := range 6 {
		c.append(start+int64(i)*10_000, float64(i+1))
	}
	c.append(start+2*step, 10)
	c.append(start+2*step+30_000, 20)
	roll, err := encodeRollup(c.bytes(), start, step)
	if err != nil {
		t.Fatal(err)
	}
	all := [numCols]bool{true, true, true, true, true}
	ts, aggs, err := decodeRollup(roll, start, all)
	if err != nil {
		t.Fatal(err)
	}
	wantT := []int64{start, start + 2*step}
	want := []agg{{min: 1, max: 6, sum: 21, count: 6, last: 6}, {min: 10, max: 20, sum: 30, count: 2, last: 20}}
	if len(ts) != 2 || ts[0] != wantT[0] || ts[1] != wantT[1] {
		t.Fatalf("bucket times = %v, want %v", ts, wantT)
	}
	for i := range want {
		if aggs[i] != want[i] {
			t.Errorf("bucket %d = %+v, want %+v", i, aggs[i], want[i])
		}
	}
	// Only the wanted column (and count) is decoded.
	_, some, err := decodeRollup(roll, start, [numCols]bool{colMax: true})
	if err != nil {
		t.Fatal(err)
	}
	if some[0].max != 6 || some[0].count != 6 || some[0].sum != 0 {
		t.Errorf("max-only decode = %+v, want max 6, count 6, sum left 0", some[0])
	}
}
