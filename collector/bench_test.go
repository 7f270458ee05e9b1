package collector_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/collector"
	"switchyard/internal/testenv"
	"switchyard/sqldb"
)

// benchCluster is 100 topics × 20 partitions (2,000) with 200 groups, two per
// topic, each committed on every partition of its topic.
func benchCluster(b *testing.B) (*kgo.Client, *kadm.Client) {
	b.Helper()
	var topics []string
	for i := range 100 {
		topics = append(topics, fmt.Sprintf("bench.topic%03d.created.v1", i))
	}
	c := testenv.Kafka(b, kfake.SeedTopics(20, topics...))
	cl := testenv.KafkaClient(b, c.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for _, t := range topics {
		for p := range int32(20) {
			recs = append(recs, &kgo.Record{Topic: t, Partition: p, Value: []byte("x")}, &kgo.Record{Topic: t, Partition: p, Value: []byte("y")})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	for i, t := range topics {
		for g := range 2 {
			var offs kadm.Offsets
			for p := range int32(20) {
				offs.AddOffset(t, p, 1, -1)
			}
			if err := adm.CommitAllOffsets(context.Background(), fmt.Sprintf("bench-group-%03d-%d", i, g), offs); err != nil {
				b.Fatal(err)
			}
		}
	}
	return cl, adm
}

// BenchmarkCollectCycle: one collection cycle (snapshot, rates, lag seconds,
// Burrow evaluation, windows persisted to SQLite) beside a bare kadm listing
// of the same offsets (end and start offsets, groups, committed offsets).
func BenchmarkCollectCycle(b *testing.B) {
	ctx := context.Background()
	b.Run("switchyard", func(b *testing.B) {
		cl, _ := benchCluster(b)
		src, err := collector.NewKafkaSource("bench", cl, collector.KafkaOptions{})
		if err != nil {
			b.Fatal(err)
		}
		db, err := sqldb.Open(ctx, b.TempDir()+"/console.db")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		ws, err := collector.NewSQLiteWindowStore(ctx, db)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		eval, _ := collector.NewEvaluator(collector.EvaluatorOptions{Store: ws, Now: func() time.Time { return now }})
		p, err := collector.NewPoller(collector.PollerOptions{Sources: []*collector.KafkaSource{src}, Evaluator: eval, Now: func() time.Time { return now }})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			now = now.Add(10 * time.Second)
			if err := p.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		v := p.Latest()[0]
		if n := len(v.Snapshot.Groups); n != 200 {
			b.Fatalf("snapshot has %d groups, want 200", n)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/cycle")
	})
	b.Run("bare-kadm", func(b *testing.B) {
		_, adm := benchCluster(b)
		b.ResetTimer()
		for range b.N {
			topics, err := adm.ListTopics(ctx)
			if err != nil {
				b.Fatal(err)
			}
			names := topics.Names()
			if _, err := adm.ListEndOffsets(ctx, names...); err != nil {
				b.Fatal(err)
			}
			if _, err := adm.ListStartOffsets(ctx, names...); err != nil {
				b.Fatal(err)
			}
			groups, err := adm.ListGroups(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := adm.DescribeGroups(ctx, groups.Groups()...); err != nil {
				b.Fatal(err)
			}
			fetched := adm.FetchManyOffsets(ctx, groups.Groups()...)
			if err := fetched.Error(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/cycle")
	})
}
