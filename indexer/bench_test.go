package indexer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/dlqstore"
)

const benchRecords = 200000

// benchBatch is the indexer's batch size in the benchmark: the default,
// or INDEXER_BENCH_BATCH to compare others.
func benchBatch() int {
	n, _ := strconv.Atoi(os.Getenv("INDEXER_BENCH_BATCH"))
	return n
}

// benchTopic is a kfake cluster holding benchRecords realistic Switchyard
// dead letters in 4 partitions, produced once for every sub-benchmark.
type benchTopic struct {
	once    sync.Once
	cluster *kfake.Cluster
	topic   string
	err     error
}

func (bt *benchTopic) setup(b *testing.B) {
	bt.once.Do(func() {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			bt.err = err
			return
		}
		bt.cluster = c
		bt.topic = "orders.bench-" + uniq() + ".dlq"
		cl := newClient(b, c)
		createTopic(b, cl, bt.topic, 4, nil)
		produceDeadLetters(b, cl, bt.topic, 4, benchRecords)
	})
	if bt.err != nil {
		b.Fatal(bt.err)
	}
}

// BenchmarkIndexKafka measures end-to-end indexing of a 200,000-record DLQ
// topic into a fresh store (switchyard) beside a bare kgo consumer reading
// the same records (bare-kgo). One iteration is one pass over the topic.
// The bare SQLite insert baseline is the store's (dlqstore) benchmark.
//
//	go test -tags sqlite_fts5 -run '^$' -bench BenchmarkIndexKafka -benchtime 1x ./indexer/
func BenchmarkIndexKafka(b *testing.B) {
	var bt benchTopic
	b.Cleanup(func() {
		if bt.cluster != nil {
			bt.cluster.Close()
		}
	})
	b.Run("switchyard", func(b *testing.B) {
		bt.setup(b)
		b.ResetTimer()
		var total time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			store := openStore(b, filepath.Join(b.TempDir(), fmt.Sprintf("dlq-%d.db", i)))
			x, err := NewKafkaIndexer(KafkaOptions{Cluster: "bench", Brokers: bt.cluster.ListenAddrs(), Store: store, Logger: quiet(), BatchSize: benchBatch()})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.StartTimer()
			t0 := time.Now()
			go func() { done <- x.Run(ctx) }()
			for statusOf(x.Status(), bt.topic).Indexed < benchRecords {
				time.Sleep(time.Millisecond)
			}
			total += time.Since(t0)
			b.StopTimer()
			cancel()
			<-done
		}
		b.ReportMetric(float64(benchRecords*b.N)/total.Seconds(), "msgs/s")
	})
	// store-only: the same kind of records, decoded beforehand, written
	// with IndexKafka in batches of 1,000 straight from memory: the
	// ceiling the store puts on the indexer. 50,000 records, not 200,000,
	// to keep the decoded items in memory small.
	b.Run("store-only", func(b *testing.B) {
		const n = 50000
		items := make([]dlqstore.IndexItem, n)
		now := time.Now()
		for i := range items {
			r := realisticRecord("orders.store-only.dlq", 0, i)
			r.Offset = int64(i)
			x := &KafkaIndexer{opts: KafkaOptions{Cluster: "bench"}}
			items[i] = buildItem(x.message(r), DefaultKafkaPayloadCap, now)
		}
		b.ResetTimer()
		var total time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			store := openStore(b, filepath.Join(b.TempDir(), fmt.Sprintf("dlq-%d.db", i)))
			b.StartTimer()
			t0 := time.Now()
			for off := 0; off < n; off += 1000 {
				if _, err := store.IndexKafka(context.Background(), "bench", "orders.store-only.dlq", 0, items[off:off+1000], int64(off+1000)); err != nil {
					b.Fatal(err)
				}
			}
			total += time.Since(t0)
		}
		b.ReportMetric(float64(n*b.N)/total.Seconds(), "msgs/s")
	})
	b.Run("bare-kgo", func(b *testing.B) {
		bt.setup(b)
		b.ResetTimer()
		var total time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			cl, err := kgo.NewClient(
				kgo.SeedBrokers(bt.cluster.ListenAddrs()...),
				kgo.ConsumeTopics(bt.topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20), kgo.BrokerMaxReadBytes(128<<20),
			)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			t0 := time.Now()
			n := 0
			for n < benchRecords {
				fs := cl.PollFetches(context.Background())
				if err := fs.Err0(); err != nil {
					b.Fatal(err)
				}
				n += fs.NumRecords()
			}
			total += time.Since(t0)
			b.StopTimer()
			cl.Close()
		}
		b.ReportMetric(float64(benchRecords*b.N)/total.Seconds(), "msgs/s")
	})
}
