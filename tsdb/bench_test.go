package tsdb

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

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

// BenchmarkRollupDisk stores 14 days of rollups of TSDB_BENCH_SERIES
// series (default 100) of the collector's shapes (benchSeries, sampled
// every 10 s) and reports the bytes of database pages in use per
// series-minute and that figure extrapolated to 10,000 series in GB.
// /switchyard seals one rollup chunk per series and hour as Append does
// and compacts every 6 simulated hours as Maintain would: the last 48 h
// stay at 1 minute, the rest is at 5 minutes. /bare-sqlite stores the same
// five summaries per series-minute as REAL columns of a WITHOUT ROWID table
// keyed by (series, minute), all 14 days at 1 minute. Run with
// -benchtime=1x.
func BenchmarkRollupDisk(b *testing.B) {
	n := 100
	if v := os.Getenv("TSDB_BENCH_SERIES"); v != "" {
		fmt.Sscan(v, &n)
	}
	const days = 14
	minutes := float64(n) * days * 1440
	// hours yields, per hour of the 14 days, each series' raw chunk.
	hours := func(yield func(hour int, chunks []rawChunk) bool) {
		vals := newBenchValue(n)
		chunks := make([]rawChunk, n)
		for h := range days * 24 {
			start := t0.Add(time.Duration(h) * time.Hour).UnixMilli()
			for i := range chunks {
				chunks[i] = rawChunk{}
			}
			for cyc := range 360 {
				for i := range chunks {
					chunks[i].append(start+int64(cyc)*10_000, vals.next(i))
				}
			}
			if !yield(h, chunks) {
				return
			}
		}
	}
	report := func(b *testing.B, db interface {
		QueryRow(string, ...any) *sql.Row
	}) {
		var pages, free, size int64
		db.QueryRow(`PRAGMA page_count`).Scan(&pages)
		db.QueryRow(`PRAGMA freelist_count`).Scan(&free)
		db.QueryRow(`PRAGMA page_size`).Scan(&size)
		perMinute := float64((pages-free)*size) / minutes
		b.ReportMetric(perMinute, "bytes/series-minute")
		b.ReportMetric(perMinute*10_000*days*1440/1e9, "gb-14d-10k")
	}
	b.Run("switchyard", func(b *testing.B) {
		for b.Loop() {
			c := deliverytest.NewClock(t0)
			s := mustOpen(b, Options{Dir: b.TempDir(), Now: c.Now})
			ctx := context.Background()
			for i, ls := range benchSeries(n) {
				if _, err := s.db.Exec(`INSERT INTO series (id, labels) VALUES (?, ?)`, i+1, ls.String()); err != nil {
					b.Fatal(err)
				}
			}
			for h, chunks := range hours {
				start := t0.Add(time.Duration(h) * time.Hour).UnixMilli()
				tx, err := s.db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				for i := range chunks {
					roll, err := encodeRollup(chunks[i].bytes(), start, s.step)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := tx.Exec(`INSERT INTO rollup_chunks (series_id, start, data) VALUES (?, ?, ?)`, i+1, start, roll); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				now := start + 2*s.window
				c.Set(time.UnixMilli(now))
				if h%6 == 5 {
					if err := s.compact(ctx, now); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				b.Fatal(err)
			}
			report(b, s.db)
			s.Close()
		}
	})
	b.Run("bare-sqlite", func(b *testing.B) {
		for b.Loop() {
			db, err := sql.Open("sqlite3", filepath.Join(b.TempDir(), "bare.db")+"?_journal_mode=WAL&_synchronous=NORMAL")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec(`CREATE TABLE rollups (series INTEGER NOT NULL, minute INTEGER NOT NULL,
	min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, count REAL NOT NULL, last REAL NOT NULL,
	PRIMARY KEY (series, minute)) WITHOUT ROWID`); err != nil {
				b.Fatal(err)
			}
			for h, chunks := range hours {
				start := t0.Add(time.Duration(h) * time.Hour).UnixMilli()
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				ins, err := tx.Prepare(`INSERT INTO rollups VALUES (?, ?, ?, ?, ?, ?, ?)`)
				if err != nil {
					b.Fatal(err)
				}
				for i := range chunks {
					idx, aggs, err := rollupBuckets(chunks[i].bytes(), start, 60_000)
					if err != nil {
						b.Fatal(err)
					}
					for k, a := range aggs {
						if _, err := ins.Exec(i+1, start/60_000+idx[k], a.min, a.max, a.sum, a.count, a.last); err != nil {
							b.Fatal(err)
						}
					}
				}
				ins.Close()
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				b.Fatal(err)
			}
			report(b, db)
			db.Close()
		}
	})
	// The same buckets the store keeps — 5-minute ones beyond 48 h,
	// 1-minute ones within — as a general-purpose compressor would store
	// them: each hour of a series one row holding its bucket indexes and
	// the five aggregate columns as float64s, zstd at its best ratio. The
	// baseline a columnar encoding has to beat.
	b.Run("bare-zstd", func(b *testing.B) {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
		if err != nil {
			b.Fatal(err)
		}
		defer enc.Close()
		for b.Loop() {
			db, err := sql.Open("sqlite3", filepath.Join(b.TempDir(), "bare.db")+"?_journal_mode=WAL&_synchronous=NORMAL")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec(`CREATE TABLE rollups (series INTEGER NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL,
	PRIMARY KEY (series, start)) WITHOUT ROWID`); err != nil {
				b.Fatal(err)
			}
			var buf []byte
			for h, chunks := range hours {
				start := t0.Add(time.Duration(h) * time.Hour).UnixMilli()
				step := int64(60_000)
				if h < days*24-48 {
					step = 300_000
				}
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				ins, err := tx.Prepare(`INSERT INTO rollups VALUES (?, ?, ?)`)
				if err != nil {
					b.Fatal(err)
				}
				for i := range chunks {
					idx, aggs, err := rollupBuckets(chunks[i].bytes(), start, step)
					if err != nil {
						b.Fatal(err)
					}
					buf = buf[:0]
					for _, k := range idx {
						buf = binary.AppendUvarint(buf, uint64(k))
					}
					for c := range 5 {
						for _, a := range aggs {
							buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits([5]float64{a.min, a.max, a.sum, a.count, a.last}[c]))
						}
					}
					if _, err := ins.Exec(i+1, start, enc.EncodeAll(buf, nil)); err != nil {
						b.Fatal(err)
					}
				}
				ins.Close()
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				b.Fatal(err)
			}
			report(b, db)
			db.Close()
		}
	})
}
