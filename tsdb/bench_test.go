package tsdb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"switchyard/delivery/deliverytest"
)

// benchSeries returns n series shaped like the collector's: per partition
// lag, committed offset and high watermark.
func benchSeries(n int) []Labels {
	out := make([]Labels, n)
	names := []string{"switchyard_consumer_group_lag", "switchyard_consumer_group_committed_offset", "switchyard_topic_high_watermark"}
	for i := range out {
		out[i] = L(MetricName, names[i%3], "cluster", "demo", "topic", fmt.Sprintf("orders.order.created.v%d", i/300),
			"group", fmt.Sprintf("group-%d", i/30%10), "partition", fmt.Sprint(i/3%100))
	}
	return out
}

// benchValue gives realistic values: offsets grow by a few hundred a
// cycle, lags wander, a third of the lags sit at zero.
type benchValue struct {
	rng  *rand.Rand
	last []float64
}

func newBenchValue(n int) *benchValue {
	return &benchValue{rng: rand.New(rand.NewPCG(7, 7)), last: make([]float64, n)}
}

func (b *benchValue) next(i int) float64 {
	switch {
	case i%3 == 0 && i%9 == 0: // idle group: lag 0
		return 0
	case i%3 == 0:
		b.last[i] = max(0, b.last[i]+float64(b.rng.IntN(201)-100))
	default:
		if b.last[i] == 0 {
			b.last[i] = float64(b.rng.IntN(1e7))
		}
		b.last[i] += float64(b.rng.IntN(500))
	}
	return b.last[i]
}

// BenchmarkAppendCycle appends one collection cycle of 10,000 samples
// (10,000 series at a 10 s interval), including the sealing of a window
// every 360 cycles.
func BenchmarkAppendCycle(b *testing.B) {
	c := deliverytest.NewClock(t0)
	s := mustOpen(b, Options{Dir: b.TempDir(), Now: c.Now})
	series := benchSeries(10_000)
	vals := newBenchValue(len(series))
	batch := make([]Sample, len(series))
	ctx := context.Background()
	b.ReportAllocs()
	cycle := 0
	for b.Loop() {
		ts := t0.Add(time.Duration(cycle) * 10 * time.Second)
		c.Set(ts)
		for i, ls := range series {
			batch[i] = Sample{Series: ls, T: ts, V: vals.next(i)}
		}
		if err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		cycle++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(series)), "ns/sample")
	b.ReportMetric(float64(s.Stats().HeadBytes)/float64(len(series)), "head-bytes/series")
}

// BenchmarkQuery24hOneSeries reads 24 h of one series stored at 10 s
// (8,640 points, 24 sealed chunks and an open head) among 300 others.
func BenchmarkQuery24hOneSeries(b *testing.B) {
	c := deliverytest.NewClock(t0)
	s := mustOpen(b, Options{Dir: b.TempDir(), Now: c.Now})
	series := benchSeries(300)
	vals := newBenchValue(len(series))
	end := t0.Add(24 * time.Hour)
	fill(b, s, c, series, t0, end, func(i, _ int) float64 { return vals.next(i) })
	target := series[3]
	for _, tc := range []struct {
		name string
		step time.Duration
		agg  Agg
	}{
		{"step=1m/last/rollup", time.Minute, AggLast},
		{"step=1m/avg/rollup", time.Minute, AggAvg},
		{"step=10s/max/raw", 10 * time.Second, AggMax},
		{"step=30s/avg/raw", 30 * time.Second, AggAvg},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := Q{Name: target.Name(), Matchers: []Matcher{{"group", MatchEqual, target.Get("group")}, {"partition", MatchEqual, target.Get("partition")}, {"topic", MatchEqual, target.Get("topic")}},
				From: t0, To: end, Step: tc.step, Agg: tc.agg}
			b.ReportAllocs()
			for b.Loop() {
				got, err := s.Query(context.Background(), q)
				if err != nil || len(got) != 1 || len(got[0].Points) < 1440 {
					b.Fatalf("got %d series, err %v", len(got), err)
				}
			}
		})
	}
}

// BenchmarkDisk24h fills 24 h of series at 10 s once and reports bytes
// on disk per point, raw chunks and rollups included (the head log is
// empty once the last window is sealed). Run with -benchtime=1x; set
// TSDB_BENCH_SERIES to change the series count (default 1,000).
func BenchmarkDisk24h(b *testing.B) {
	n := 1000
	if v := os.Getenv("TSDB_BENCH_SERIES"); v != "" {
		fmt.Sscan(v, &n)
	}
	for b.Loop() {
		dir := b.TempDir()
		c := deliverytest.NewClock(t0)
		s := mustOpen(b, Options{Dir: dir, Now: c.Now})
		series := benchSeries(n)
		vals := newBenchValue(n)
		end := t0.Add(24 * time.Hour)
		fill(b, s, c, series, t0, end, func(i, _ int) float64 { return vals.next(i) })
		c.Set(end.Add(10 * time.Minute))
		if err := s.Maintain(context.Background()); err != nil {
			b.Fatal(err)
		}
		if _, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
		var size int64
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			fi, err := os.Stat(filepath.Join(dir, e.Name()))
			if err == nil {
				size += fi.Size()
			}
		}
		var rawBytes, rollBytes int64
		s.db.QueryRow(`SELECT SUM(LENGTH(data)) FROM raw_chunks`).Scan(&rawBytes)
		s.db.QueryRow(`SELECT SUM(LENGTH(data)) FROM rollup_chunks`).Scan(&rollBytes)
		points := float64(n) * 8640
		b.ReportMetric(float64(size)/points, "disk-bytes/point")
		b.ReportMetric(float64(rawBytes)/points, "raw-chunk-bytes/point")
		b.ReportMetric(float64(rollBytes)/(float64(n)*1440), "rollup-bytes/minute")
		b.ReportMetric(float64(size)/(1<<20), "MiB")
		s.Close()
	}
}
