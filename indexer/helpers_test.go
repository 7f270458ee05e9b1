package indexer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/dlqstore"
	"switchyard/internal/testenv"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// uniq returns a short random suffix for topic and queue names.
func uniq() string {
	b := make([]byte, 4)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails
	return hex.EncodeToString(b)
}

func mustStore(t testing.TB) *dlqstore.Store {
	t.Helper()
	return openStore(t, filepath.Join(t.TempDir(), "dlq.db"))
}

func openStore(t testing.TB, path string) *dlqstore.Store {
	t.Helper()
	s, err := dlqstore.Open(context.Background(), path, dlqstore.Options{Logger: quiet()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	return testenv.Kafka(t, opts...)
}

func newClient(t testing.TB, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return testenv.KafkaClient(t, c.ListenAddrs(), append([]kgo.Opt{
		kgo.ProducerBatchMaxBytes(16 << 20),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
	}, opts...)...)
}

func createTopic(t testing.TB, cl *kgo.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// produce writes records synchronously; each record names its partition.
func produce(t testing.TB, cl *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// running is an indexer started in the background.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// stop cancels the run and waits for Run to return.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Run returned %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of cancel")
	}
}

func start(t testing.TB, run func(context.Context) error) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() { r.cancel(); <-r.done })
	return r
}

func startKafka(t testing.TB, opts KafkaOptions) (*KafkaIndexer, *running) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	x, err := NewKafkaIndexer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return x, start(t, x.Run)
}

// discovered waits for an indexer's first discovery to have ended.
func discovered(t testing.TB, x interface{ Discovered() <-chan struct{} }) {
	t.Helper()
	select {
	case <-x.Discovered():
	case <-time.After(testenv.Wait):
		t.Fatalf("the first discovery did not end within %s", testenv.Wait)
	}
}

// settled waits until a Kafka indexer has indexed exactly indexed new
// records of topic with its stored offsets at the end of every partition
// (lag 0), and that this then holds: the positive sign that nothing more
// (a wrongly re-read batch) is on its way.
func settled(t testing.TB, what string, x *KafkaIndexer, topic string, indexed int64) {
	t.Helper()
	type progress struct{ indexed, lag int64 }
	testenv.Settled(t, what, progress{indexed, 0}, func() progress {
		s := statusOf(x.Status(), topic)
		return progress{s.Indexed, s.Lag}
	})
}

// entries returns every entry matching f, all pages.
func entries(t testing.TB, s *dlqstore.Store, f dlqstore.Filter) []dlqstore.Entry {
	t.Helper()
	f.Limit = 500
	var out []dlqstore.Entry
	for {
		p, err := s.FindEntries(context.Background(), f)
		if err != nil {
			t.Fatalf("find entries: %v", err)
		}
		out = append(out, p.Entries...)
		if p.Next == "" {
			return out
		}
		f.Cursor = p.Next
	}
}

func statusOf(ss []SourceStatus, dest string) SourceStatus {
	for _, s := range ss {
		if s.Destination == dest {
			return s
		}
	}
	return SourceStatus{}
}

// flakyStore fails its first n writes, then passes through to the real store.
type flakyStore struct {
	*dlqstore.Store
	mu   sync.Mutex
	fail int
	seen int
}

func (f *flakyStore) shouldFail() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen++
	if f.fail > 0 {
		f.fail--
		return true
	}
	return false
}

func (f *flakyStore) IndexKafka(ctx context.Context, cluster, topic string, partition int32, items []dlqstore.IndexItem, next int64) (dlqstore.IndexResult, error) {
	if f.shouldFail() {
		return dlqstore.IndexResult{}, errInjected
	}
	return f.Store.IndexKafka(ctx, cluster, topic, partition, items, next)
}

func (f *flakyStore) IndexRabbit(ctx context.Context, items []dlqstore.IndexItem) (dlqstore.IndexResult, error) {
	if f.shouldFail() {
		return dlqstore.IndexResult{}, errInjected
	}
	return f.Store.IndexRabbit(ctx, items)
}

type injectedError struct{}

func (injectedError) Error() string { return "database is locked (injected)" }

var errInjected error = injectedError{}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
