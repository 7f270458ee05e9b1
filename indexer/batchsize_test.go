package indexer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/dlqstore"
)

// batchRecorder is the real store, noting the size of every Kafka batch
// it is given.
type batchRecorder struct {
	*dlqstore.Store
	mu    sync.Mutex
	sizes []int
}

func (r *batchRecorder) IndexKafka(ctx context.Context, cluster, topic string, partition int32, items []dlqstore.IndexItem, next int64) (dlqstore.IndexResult, error) {
	r.mu.Lock()
	r.sizes = append(r.sizes, len(items))
	r.mu.Unlock()
	return r.Store.IndexKafka(ctx, cluster, topic, partition, items, next)
}

func (r *batchRecorder) taken() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sizes)
}

// A backlog is stored in transactions of up to MaxBatch records, while a
// caught-up partition's trickle stays at BatchSize or less; every record
// is stored exactly once either way.
func TestKafkaBatchesGrowWithTheBacklog(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := newClient(t, c)
	topic := "flood-" + uniq() + ".dlq"
	createTopic(t, cl, topic, 1, nil)
	var rs []*kgo.Record
	for i := range 6000 {
		rs = append(rs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	produce(t, cl, rs...)
	store := &batchRecorder{Store: mustStore(t)}
	x, r := startKafka(t, KafkaOptions{Cluster: "local", Client: newClient(t, c), Store: store, BatchSize: 100, MaxBatch: 2500})
	settled(t, "the backlog", x, topic, 6000)
	backlog := store.taken()
	if m := slices.Max(backlog); m <= 100 || m > 2500 {
		t.Errorf("backlog batches %v: want some above BatchSize 100 and none above MaxBatch 2500", backlog)
	}
	produce(t, cl, &kgo.Record{Topic: topic, Value: []byte(`{"n":"late"}`)})
	settled(t, "one more record", x, topic, 6001)
	if after := store.taken()[len(backlog):]; !slices.Equal(after, []int{1}) {
		t.Errorf("caught up, one record was stored in batches %v, want [1]", after)
	}
	r.stop(t)
	checkExactlyOnce(t, entries(t, store.Store, dlqstore.Filter{Destination: topic}), map[int32]int64{0: 6001})
}
