package demo

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// rssSpeedup is how much faster than the default demo BenchmarkDemoRSS
// asks to run: 30× the orders rate, and the clock-driven parts (retention
// ages and interval, the fault outage) 30× shorter, so that four minutes
// carry the traffic of two hours. A busy machine produces less than asked,
// so the figures are per equivalent hour of orders actually produced
// (rssOrdersPerHour at the default rate). The idempotency bound is a count
// and stays as it is: its window shrinks, its memory does not. Analytics'
// 4-minute saw-tooth is wall-clock driven and not sped up, so its lag
// peaks at up to 30× the records it would: a harsher load than the real
// one.
const (
	rssSpeedup       = 30
	rssEquiv         = 2 * time.Hour
	rssInterval      = 5 * time.Second
	rssOrdersPerHour = DefaultRate * 3600
)

// BenchmarkDemoRSS runs the demo platform in this process (embedded Kafka,
// orders producer, billing, analytics, the saga and retention; RabbitMQ's
// notify service off) at rssSpeedup × the default rate for four minutes,
// sampling the process's VmRSS and the orders produced, and reports
// rss-mb at the end, rss-slope-mb/h (MB per equivalent hour of orders
// over the second half: ~0 when the bounds hold), heap-mb (Go heap in use
// at the end) and eq-hours (the hours of default-rate traffic produced).
func BenchmarkDemoRSS(b *testing.B) {
	for range b.N {
		runDemoRSS(b, Options{})
	}
}

// BenchmarkDemoRSSUnbounded is BenchmarkDemoRSS with the stores as they
// were before the bounds: retention off and idempotency stores that keep
// every id for 24 h (the baseline; not in `make bench`).
func BenchmarkDemoRSSUnbounded(b *testing.B) {
	for range b.N {
		runDemoRSS(b, Options{Retention: Retention{Off: true}, IdempotencyKeys: -1})
	}
}

func runDemoRSS(b *testing.B, opts Options) {
	b.Helper()
	opts.DataDir = b.TempDir()
	opts.KafkaAddr = "127.0.0.1:0"
	opts.Rate = DefaultRate * rssSpeedup
	opts.Outage = DefaultOutage / rssSpeedup
	r := &opts.Retention
	r.MaxAge, r.DLQMaxAge, r.Interval = DefaultRetainFor/rssSpeedup, DefaultDLQRetainFor/rssSpeedup, DefaultRetentionInterval/rssSpeedup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := Start(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(p.KafkaBrokers()...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	orders := func() float64 {
		ends, err := adm.ListEndOffsets(context.Background(), TopicOrders)
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return float64(n)
	}

	wall := rssEquiv / rssSpeedup
	type sample struct {
		at          time.Duration
		eqHours     float64 // default-rate hours of orders produced
		rss, heapMB float64
	}
	var samples []sample
	var ms runtime.MemStats
	start := time.Now()
	tick := time.NewTicker(rssInterval)
	for time.Since(start) < wall {
		<-tick.C
		runtime.ReadMemStats(&ms)
		samples = append(samples, sample{time.Since(start), orders() / rssOrdersPerHour, vmRSSMB(b), float64(ms.HeapInuse) / (1 << 20)})
	}
	tick.Stop()
	// DEMO_RSS_HEAP names a file for a heap profile of the running demo
	// (go tool pprof -sample_index=inuse_space), to see what holds memory.
	if path := os.Getenv("DEMO_RSS_HEAP"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Error(err)
		}
		f.Close()
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.Error("demo services did not stop within 30s of cancel")
	}

	// Least-squares slope of RSS over the orders produced in the second
	// half: MB per equivalent hour.
	half := samples[len(samples)/2:]
	var sx, sy, sxx, sxy float64
	for _, s := range half {
		sx, sy, sxx, sxy = sx+s.eqHours, sy+s.rss, sxx+s.eqHours*s.eqHours, sxy+s.eqHours*s.rss
	}
	n := float64(len(half))
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	var curve []string
	for i, s := range samples {
		if i%6 == 5 || i == len(samples)-1 {
			curve = append(curve, fmt.Sprintf("%.0fmin:%.0fMB(heap %.0f)", s.eqHours*60, s.rss, s.heapMB))
		}
	}
	b.Logf("RSS by equivalent minute of traffic: %s", strings.Join(curve, " "))
	last := samples[len(samples)-1]
	b.ReportMetric(last.rss, "rss-mb")
	b.ReportMetric(slope, "rss-slope-mb/h")
	b.ReportMetric(last.heapMB, "heap-mb")
	b.ReportMetric(last.eqHours, "eq-hours")
}

// vmRSSMB reads this process's resident set size from /proc/self/status.
func vmRSSMB(tb testing.TB) float64 {
	tb.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Fatalf("read RSS: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				tb.Fatalf("parse VmRSS %q: %v", rest, err)
			}
			return kb / 1024
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}
