package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
	"switchyard/dlqstore"
)

// Defaults of KafkaOptions.
const (
	DefaultKafkaBatchSize    = 1000
	DefaultKafkaMaxBatch     = 10000
	DefaultDiscoveryInterval = 30 * time.Second
)

// KafkaOptions configure a KafkaIndexer. Cluster, Store and one of Client
// or Brokers are required.
type KafkaOptions struct {
	// Cluster names the cluster in entries, offsets and status.
	Cluster string
	// Client, when set, is used for discovery and consumption; it must be
	// dedicated to this indexer and be neither a group nor a regex
	// consumer, since the indexer assigns partitions to it. The caller
	// closes it. Otherwise the indexer makes its own from Brokers with
	// large fetches, and closes it when Run returns.
	Client  *kgo.Client
	Brokers []string
	Store   dlqstore.IndexStore
	// Patterns select DLQ topics by name (delivery.DefaultDLQPatterns
	// when nil; syntax of delivery.MatchGlob); Topics are explicit names,
	// indexed whatever the patterns say.
	Patterns []string
	Topics   []string
	// PayloadCap is the most payload bytes kept per entry; default
	// DefaultKafkaPayloadCap (256 KiB). The record itself stays in Kafka.
	PayloadCap int
	// BatchSize is the most records per store transaction while a
	// partition is caught up; default 1000. MaxBatch is the most while it
	// is behind (a backlog, a flood), default DefaultKafkaMaxBatch: a
	// transaction's fixed costs (the commit, group and offset rows) are
	// then spread over more entries, which is what lets capture keep up
	// with a flood.
	BatchSize int
	MaxBatch  int
	// DiscoveryInterval is how often topics are listed to find new DLQ
	// topics and partitions; default 30 s.
	DiscoveryInterval time.Duration
	Metrics           *Metrics
	Logger            *slog.Logger
	Now               func() time.Time
}

// KafkaIndexer indexes the DLQ topics of one Kafka cluster exactly once.
// It is not a consumer group: it assigns every partition of every DLQ topic
// to itself, starting at the offset stored with the entries (or the start
// of the log), and writes each partition's batch of entries and its next
// offset in one store transaction. A kill at any moment loses at most an
// uncommitted batch, which is read again on restart; nothing is indexed
// twice. Run one KafkaIndexer per cluster and store.
type KafkaIndexer struct {
	opts    KafkaOptions
	match   delivery.DLQMatcher
	log     *slog.Logger
	status  *statusBook
	batches chan kafkaBatch

	// discovered is closed when the first discovery has ended.
	discovered chan struct{}
	once       sync.Once // closes discovered
}

// kafkaBatch is up to BatchSize decoded records of one partition.
type kafkaBatch struct {
	topic     string
	partition int32
	items     []dlqstore.IndexItem
	next      int64 // last offset + 1
	hwm       int64
}

// NewKafkaIndexer validates opts and returns an indexer; it connects in Run.
func NewKafkaIndexer(opts KafkaOptions) (*KafkaIndexer, error) {
	if opts.Cluster == "" {
		return nil, errors.New("kafka indexer: Cluster is required")
	}
	if opts.Store == nil {
		return nil, errors.New("kafka indexer: Store is required")
	}
	if opts.Client == nil && len(opts.Brokers) == 0 {
		return nil, errors.New("kafka indexer: Client or Brokers is required")
	}
	if opts.PayloadCap <= 0 {
		opts.PayloadCap = DefaultKafkaPayloadCap
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultKafkaBatchSize
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultKafkaMaxBatch
	}
	opts.MaxBatch = max(opts.MaxBatch, opts.BatchSize)
	commonDefaults(&opts.DiscoveryInterval, &opts.Logger, &opts.Now)
	match, err := delivery.NewDLQMatcher(opts.Patterns, opts.Topics)
	if err != nil {
		return nil, fmt.Errorf("kafka indexer: %w", err)
	}
	return &KafkaIndexer{
		opts:   opts,
		match:  match,
		log:    opts.Logger.With("broker", delivery.BrokerKafka, "cluster", opts.Cluster),
		status: newStatusBook(delivery.BrokerKafka, opts.Cluster, opts.Now, opts.Metrics),

		discovered: make(chan struct{}),
	}, nil
}

// Status returns every DLQ topic found so far with its counters and lag.
func (x *KafkaIndexer) Status() []SourceStatus { return x.status.list() }

// Discovered is closed once Run's first topic discovery has ended,
// successfully or not (or Run has returned), as RabbitIndexer.Discovered.
func (x *KafkaIndexer) Discovered() <-chan struct{} { return x.discovered }

func (x *KafkaIndexer) markDiscovered() { x.once.Do(func() { close(x.discovered) }) }

// Run indexes until ctx is done, then returns nil once the goroutines it
// started have stopped; call it once. Broker and store errors are retried
// with backoff and shown in Status; a store error never advances past the
// records it failed to write.
func (x *KafkaIndexer) Run(ctx context.Context) error {
	defer x.markDiscovered()
	cl := x.opts.Client
	if cl == nil {
		var err error
		cl, err = kgo.NewClient(
			kgo.SeedBrokers(x.opts.Brokers...),
			kgo.ClientID("switchyard-dlq-indexer"),
			// Large fetches: the indexer reads whole backlogs, and the
			// default 1 MiB per partition caps a fetch at a few thousand
			// records.
			kgo.FetchMaxBytes(64<<20),
			kgo.FetchMaxPartitionBytes(16<<20),
			kgo.BrokerMaxReadBytes(128<<20),
			kgo.FetchMaxWait(time.Second),
			// Aborted transactional dead letters never happened.
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.WithLogger(kgoLogger{x.log}),
		)
		if err != nil {
			return fmt.Errorf("kafka indexer %s: client: %w", x.opts.Cluster, err)
		}
		defer cl.Close()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	x.batches = make(chan kafkaBatch, 8)

	var wg sync.WaitGroup
	wg.Go(func() { x.write(ctx) })
	wg.Go(func() { x.discoverLoop(ctx, cl) })
	x.poll(ctx, cl)
	cancel()
	wg.Wait()
	return nil
}

// discoverLoop lists topics at once and then every DiscoveryInterval
// (sooner after a failure), adding new DLQ topics and partitions to the
// consumption.
func (x *KafkaIndexer) discoverLoop(ctx context.Context, cl *kgo.Client) {
	adm := kadm.NewClient(cl)
	assigned := map[string]map[int32]bool{}
	var wait time.Duration
	for {
		if err := x.discover(ctx, cl, adm, assigned); err != nil {
			if ctx.Err() != nil {
				return
			}
			x.log.Warn("dlq topic discovery failed", "err", err)
			x.status.metrics.failed(delivery.BrokerKafka, x.opts.Cluster)
			wait = min(backoff(wait), x.opts.DiscoveryInterval)
		} else {
			wait = x.opts.DiscoveryInterval
		}
		x.markDiscovered()
		if !delivery.Sleep(ctx, wait) {
			return
		}
	}
}

func (x *KafkaIndexer) discover(ctx context.Context, cl *kgo.Client, adm *kadm.Client, assigned map[string]map[int32]bool) error {
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var (
		fresh  = map[string][]int32{}
		names  []string
		exists = map[string]bool{}
	)
	for _, t := range topics.Sorted() {
		if t.Err != nil || !x.match.Match(t.Topic) {
			continue
		}
		exists[t.Topic] = true
		names = append(names, t.Topic)
		x.status.track("", t.Topic)
		for _, p := range t.Partitions.Numbers() {
			if !assigned[t.Topic][p] {
				fresh[t.Topic] = append(fresh[t.Topic], p)
			}
		}
	}
	// A deleted topic is dropped so that kgo stops asking for it.
	var gone []string
	for t := range assigned {
		if !exists[t] {
			gone = append(gone, t)
			delete(assigned, t)
		}
	}
	if len(gone) > 0 {
		cl.PurgeTopicsFromConsuming(gone...)
		x.log.Info("dlq topics gone", "topics", gone)
	}
	if len(fresh) > 0 {
		// Offsets are read now, not at start: a partition is only ever
		// assigned here, so no batch of it is in flight.
		stored, err := x.opts.Store.KafkaOffsets(ctx, x.opts.Cluster)
		if err != nil {
			return fmt.Errorf("read stored offsets: %w", err)
		}
		add := map[string]map[int32]kgo.Offset{}
		for t, ps := range fresh {
			add[t] = map[int32]kgo.Offset{}
			if assigned[t] == nil {
				assigned[t] = map[int32]bool{}
			}
			for _, p := range ps {
				// Without a stored offset the partition is read from the
				// start of the log; with one, from there. An offset below
				// the log start (retention) resets to the start.
				off := kgo.NewOffset().AtStart()
				if o, ok := stored[dlqstore.TopicPartition{Topic: t, Partition: p}]; ok {
					off = kgo.NewOffset().At(o)
					x.status.committed(t, p, o, -1)
				}
				add[t][p] = off
				assigned[t][p] = true
			}
			x.log.Info("indexing dlq topic", "topic", t, "partitions", ps)
		}
		cl.AddConsumePartitions(add)
	}
	// Lag for partitions with nothing new to fetch: the high watermarks.
	if len(names) > 0 {
		if ends, err := adm.ListEndOffsets(ctx, names...); err == nil {
			ends.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					x.status.committed(o.Topic, o.Partition, -1, o.Offset)
				}
			})
		}
	}
	return nil
}

// poll fetches and decodes records and hands them to write, in offset
// order, one batch per partition of up to BatchSize records, or MaxBatch
// when the partition is behind by more than BatchSize.
func (x *KafkaIndexer) poll(ctx context.Context, cl *kgo.Client) {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			x.log.Warn("dlq fetch failed", "topic", t, "partition", p, "err", err)
			x.status.failed("", t, fmt.Errorf("fetch partition %d: %w", p, err))
		})
		now := x.opts.Now()
		stop := false
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if stop || len(p.Records) == 0 {
				return
			}
			size := x.opts.BatchSize
			if p.HighWatermark-p.Records[0].Offset > int64(size) {
				size = x.opts.MaxBatch
			}
			for start := 0; start < len(p.Records); start += size {
				recs := p.Records[start:min(start+size, len(p.Records))]
				b := kafkaBatch{
					topic: p.Topic, partition: p.Partition,
					items: make([]dlqstore.IndexItem, len(recs)),
					next:  recs[len(recs)-1].Offset + 1,
					hwm:   p.HighWatermark,
				}
				for i, r := range recs {
					b.items[i] = buildItem(x.message(r), x.opts.PayloadCap, now)
				}
				select {
				case x.batches <- b:
				case <-ctx.Done():
					stop = true
					return
				}
			}
		})
		if stop {
			return
		}
	}
}

// message converts a record into the delivery core's raw message; the DLQ
// location is the record's own coordinates.
func (x *KafkaIndexer) message(r *kgo.Record) delivery.Message {
	hs := make(delivery.Headers, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = delivery.Header{Key: h.Key, Value: h.Value}
	}
	return delivery.Message{
		Location: delivery.Location{
			Broker: delivery.BrokerKafka, Cluster: x.opts.Cluster,
			Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		},
		Key:       r.Key,
		Headers:   hs,
		Body:      r.Value,
		Timestamp: r.Timestamp,
	}
}

// write stores batches in order, each with its partition's next offset.
// A failed write is retried with backoff, never skipped: the partition
// does not advance until its batch is in. Batches of one partition that
// queued up behind a write (the store is the bottleneck: a backlog) are
// stored as one, up to MaxBatch records.
func (x *KafkaIndexer) write(ctx context.Context) {
	var carry *kafkaBatch
	for {
		var b kafkaBatch
		if carry != nil {
			b, carry = *carry, nil
		} else {
			select {
			case b = <-x.batches:
			case <-ctx.Done():
				return
			}
		}
	merge:
		for len(b.items) < x.opts.MaxBatch {
			select {
			case n := <-x.batches:
				if n.topic != b.topic || n.partition != b.partition || len(b.items)+len(n.items) > x.opts.MaxBatch {
					carry = &n
					break merge
				}
				b.items = append(b.items, n.items...)
				b.next, b.hwm = n.next, n.hwm
			default:
				break merge
			}
		}
		var wait time.Duration
		for {
			res, err := x.opts.Store.IndexKafka(ctx, x.opts.Cluster, b.topic, b.partition, b.items, b.next)
			if err == nil {
				x.status.indexed("", b.topic, res)
				x.status.committed(b.topic, b.partition, b.next, b.hwm)
				break
			}
			if ctx.Err() != nil {
				return
			}
			err = fmt.Errorf("index %s[%d] up to offset %d: %w", b.topic, b.partition, b.next-1, err)
			x.log.Warn("dlq store write failed; retrying", "err", err)
			x.status.failed("", b.topic, err)
			wait = backoff(wait)
			if !delivery.Sleep(ctx, wait) {
				return
			}
		}
	}
}

// kgoLogger forwards franz-go's warnings and errors to slog.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelWarn
	if level == kgo.LogLevelError {
		lv = slog.LevelError
	}
	k.l.Log(context.Background(), lv, "kgo: "+msg, keyvals...)
}
