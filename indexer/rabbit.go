package indexer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/delivery/rabbitmq"
	"switchyard/dlqstore"
)

// Defaults of RabbitOptions.
const (
	DefaultRabbitPrefetch  = 500
	DefaultRabbitBatchSize = 200
	DefaultRabbitBatchWait = 200 * time.Millisecond
)

// RabbitOptions configure a RabbitIndexer. Cluster, URL and Store are
// required, and at least one of Management or Queues.
//
// Indexing a queue consumes it: the indexer takes custody of every message
// in it. What it consumes is therefore only ever what these options name:
// Queues, plus, when Management is set and QueuesOnly is not, the DLQ
// queues Management finds in VHosts (by default URL's vhost alone).
type RabbitOptions struct {
	// Cluster names the cluster in entries and status.
	Cluster string
	// URL is the AMQP URL; its vhost is the vhost of Queues. Queues of
	// other vhosts (found through Management) are read over connections to
	// those vhosts with the same credentials.
	URL string
	// Management, when set, finds DLQ queues in VHosts: a queue whose name
	// matches Patterns, or that another queue dead-letters into
	// (collector.Queue.IsDLQ). It also gives the lag.
	Management *collector.RabbitSource
	// VHosts are the vhosts in which Management's discoveries are taken
	// into custody; default URL's vhost alone, so that an indexer pointed
	// at one vhost of a shared broker never drains another vhost's queues
	// whatever Management watches. "*" admits every vhost.
	VHosts []string
	// QueuesOnly takes custody of Queues alone: Management then only gives
	// their lag, and no queue is found by pattern or dead-letter target.
	QueuesOnly bool
	// Queues are explicit DLQ queue names in URL's vhost.
	Queues []string
	// Patterns select DLQ queues by name (delivery.DefaultDLQPatterns
	// when nil; syntax of delivery.MatchGlob).
	Patterns []string
	Store    dlqstore.IndexStore
	// Prefetch is the unacked messages the broker sends ahead; default 500.
	Prefetch int
	// BatchSize is the most messages per store transaction (default 200);
	// BatchWait the longest a partial batch waits for more (default 200 ms).
	// While batches keep filling up (a backlog, a flood) the size doubles
	// per full batch up to MaxBatch (default Prefetch: a batch cannot hold
	// more than the broker sends unacked), and falls back to BatchSize at
	// the first partial one.
	BatchSize int
	BatchWait time.Duration
	MaxBatch  int
	// PayloadCap is the most payload bytes kept per entry; default
	// DefaultRabbitPayloadCap (8 MiB). The entry is the only copy once the
	// message is acked: bytes beyond the cap are lost (too_large flag, size
	// and hash kept), so keep it above the brokers' max message size.
	PayloadCap int
	// DiscoveryInterval is how often queues are looked for; default 30 s.
	DiscoveryInterval time.Duration
	Metrics           *Metrics
	Logger            *slog.Logger
	Now               func() time.Time
}

// RabbitIndexer takes custody of the dead letters in RabbitMQ DLQ queues:
// it consumes each queue with manual acks, stores each batch in one
// transaction and acks the batch only once the store returned nil. A crash
// between the two leaves the messages in the queue; their redelivery is
// recognized by message id and dead-letter count and stored once.
type RabbitIndexer struct {
	opts   RabbitOptions
	match  delivery.DLQMatcher
	vhosts map[string]bool // nil: every vhost
	log    *slog.Logger
	status *statusBook
	uri    amqp.URI
	conns  *amqpConns

	// discovered is closed when the first discovery has ended; custody and
	// discoverErr hold the last discovery's queues and error.
	discovered  chan struct{}
	once        sync.Once // closes discovered
	mu          sync.Mutex
	custody     []RabbitQueue
	discoverErr error

	// beforeAck, when set (tests), runs between a committed store write
	// and its ack: closing ch there simulates a crash at the worst moment.
	beforeAck func(ch *amqp.Channel)
}

// RabbitQueue is a queue in a vhost.
type RabbitQueue struct {
	VHost, Name string
}

// String is "name (vhost v)", how the banner and logs name a queue.
func (q RabbitQueue) String() string { return fmt.Sprintf("%s (vhost %s)", q.Name, q.VHost) }

// NewRabbitIndexer validates opts and returns an indexer; it connects in Run.
func NewRabbitIndexer(opts RabbitOptions) (*RabbitIndexer, error) {
	if opts.Cluster == "" {
		return nil, errors.New("rabbitmq indexer: Cluster is required")
	}
	if opts.Store == nil {
		return nil, errors.New("rabbitmq indexer: Store is required")
	}
	uri, err := amqp.ParseURI(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq indexer: parse URL: %w", err)
	}
	if opts.Management == nil && len(opts.Queues) == 0 {
		return nil, errors.New("rabbitmq indexer: Management or Queues is required")
	}
	if opts.Prefetch <= 0 {
		opts.Prefetch = DefaultRabbitPrefetch
	}
	if opts.MaxBatch <= 0 || opts.MaxBatch > opts.Prefetch {
		opts.MaxBatch = opts.Prefetch
	}
	if opts.Prefetch > 65535 {
		return nil, fmt.Errorf("rabbitmq indexer: Prefetch %d exceeds 65535", opts.Prefetch)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultRabbitBatchSize
	}
	if opts.BatchWait <= 0 {
		opts.BatchWait = DefaultRabbitBatchWait
	}
	if opts.PayloadCap <= 0 {
		opts.PayloadCap = DefaultRabbitPayloadCap
	}
	commonDefaults(&opts.DiscoveryInterval, &opts.Logger, &opts.Now)
	vhosts := map[string]bool{uri.Vhost: true}
	if len(opts.VHosts) > 0 {
		vhosts = map[string]bool{}
		for _, v := range opts.VHosts {
			if v == "" {
				return nil, errors.New("rabbitmq indexer: empty vhost in VHosts")
			}
			vhosts[v] = true
		}
		if vhosts["*"] {
			vhosts = nil
		}
	}
	// Explicit queues are always wanted, whatever the patterns say; they
	// are not names for the matcher, which finds queues in every vhost.
	match, err := delivery.NewDLQMatcher(opts.Patterns, nil)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq indexer: %w", err)
	}
	return &RabbitIndexer{
		opts:       opts,
		match:      match,
		vhosts:     vhosts,
		log:        opts.Logger.With("broker", delivery.BrokerRabbitMQ, "cluster", opts.Cluster),
		status:     newStatusBook(delivery.BrokerRabbitMQ, opts.Cluster, opts.Now, opts.Metrics),
		uri:        uri,
		discovered: make(chan struct{}),
	}, nil
}

// Status returns every DLQ queue found so far with its counters.
// Safe to call from any goroutine.
func (x *RabbitIndexer) Status() []SourceStatus { return x.status.list() }

// Discovered is closed once Run's first discovery has ended, successfully
// or not (or Run has returned); Custody then tells what it found.
func (x *RabbitIndexer) Discovered() <-chan struct{} { return x.discovered }

// Custody returns the queues the last discovery took into custody (the
// indexer consumes each of them while it exists), sorted by vhost and
// name, and that discovery's error: with a management error the explicit
// Queues are still consumed. Safe to call from any goroutine.
func (x *RabbitIndexer) Custody() ([]RabbitQueue, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.custody), x.discoverErr
}

// Run indexes until ctx is done and returns nil once every consumer has
// stopped; call it once. Unacked messages go back to their queues when the
// connections close. Queues are looked for at once and every DiscoveryInterval; a queue
// that disappears is dropped and picked up again if it comes back.
func (x *RabbitIndexer) Run(ctx context.Context) error {
	x.conns = &amqpConns{uri: x.uri, conns: map[string]*amqp.Connection{}}
	defer x.conns.close()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		running = map[RabbitQueue]bool{}
	)
	defer wg.Wait()
	markDiscovered := func() { x.once.Do(func() { close(x.discovered) }) }
	defer markDiscovered()
	var wait time.Duration
	for {
		qs, err := x.discover(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			x.log.Warn("dlq queue discovery failed", "err", err)
			x.status.metrics.failed(delivery.BrokerRabbitMQ, x.opts.Cluster)
		}
		x.mu.Lock()
		x.custody, x.discoverErr = qs, err
		x.mu.Unlock()
		markDiscovered()
		for _, q := range qs {
			mu.Lock()
			if running[q] {
				mu.Unlock()
				continue
			}
			running[q] = true
			mu.Unlock()
			x.status.track(q.VHost, q.Name)
			x.log.Info("taking custody of dlq queue: consuming it into the index", "vhost", q.VHost, "queue", q.Name)
			wg.Go(func() {
				x.consumeLoop(ctx, q)
				mu.Lock()
				delete(running, q)
				mu.Unlock()
			})
		}
		wait = x.opts.DiscoveryInterval
		if err != nil {
			wait = min(backoff(wait), x.opts.DiscoveryInterval)
		}
		if !delivery.Sleep(ctx, wait) {
			return nil
		}
	}
}

// discover returns the explicit queues plus, with Management and without
// QueuesOnly, every queue of VHosts that matches the patterns or is a
// dead-letter target, updating their lag, sorted by vhost and name. On a
// management error the explicit queues are still returned.
func (x *RabbitIndexer) discover(ctx context.Context) (qs []RabbitQueue, err error) {
	defer func() {
		slices.SortFunc(qs, func(a, b RabbitQueue) int {
			return cmp.Or(cmp.Compare(a.VHost, b.VHost), cmp.Compare(a.Name, b.Name))
		})
	}()
	var out []RabbitQueue
	seen := map[RabbitQueue]bool{}
	for _, n := range x.opts.Queues {
		q := RabbitQueue{x.uri.Vhost, n}
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	if x.opts.Management == nil {
		return out, nil
	}
	snap, err := x.opts.Management.Snapshot(ctx)
	if err != nil {
		return out, fmt.Errorf("management snapshot: %w", err)
	}
	for _, mq := range snap.Queues {
		q := RabbitQueue{mq.VHost, mq.Name}
		if seen[q] {
			x.status.setLag(q.VHost, q.Name, mq.Ready)
			continue
		}
		if x.opts.QueuesOnly || (x.vhosts != nil && !x.vhosts[mq.VHost]) {
			continue
		}
		if !mq.IsDLQ && !x.match.Match(mq.Name) {
			continue
		}
		seen[q] = true
		out = append(out, q)
		x.status.track(q.VHost, q.Name)
		x.status.setLag(q.VHost, q.Name, mq.Ready)
	}
	return out, nil
}

// consumeLoop consumes q until ctx is done or the queue does not exist,
// reconnecting with backoff.
func (x *RabbitIndexer) consumeLoop(ctx context.Context, q RabbitQueue) {
	var wait time.Duration
	for {
		err := x.consume(ctx, q, &wait)
		if ctx.Err() != nil {
			return
		}
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			x.log.Info("dlq queue not found; dropping it until it is found again", "vhost", q.VHost, "queue", q.Name)
			x.status.failed(q.VHost, q.Name, err)
			return
		}
		if err != nil {
			x.log.Warn("dlq consumer stopped; reconnecting", "vhost", q.VHost, "queue", q.Name, "err", err)
			x.status.failed(q.VHost, q.Name, err)
		}
		wait = backoff(wait)
		if !delivery.Sleep(ctx, wait) {
			return
		}
	}
}

// consume runs one channel on q: deliveries are gathered into batches of
// BatchSize, or whatever arrived within BatchWait, and each batch is stored
// then acked. wait carries the failure backoff across channels.
func (x *RabbitIndexer) consume(ctx context.Context, q RabbitQueue, wait *time.Duration) error {
	ch, err := x.conns.channel(q.VHost)
	if err != nil {
		return err
	}
	defer ch.Close()
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Qos(x.opts.Prefetch, 0, false); err != nil {
		return fmt.Errorf("set prefetch: %w", err)
	}
	dels, err := ch.Consume(q.Name, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", q.Name, err)
	}
	batch := make([]amqp.Delivery, 0, x.opts.BatchSize)
	size := x.opts.BatchSize
	timer := time.NewTimer(x.opts.BatchWait)
	timer.Stop()
	defer timer.Stop()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if len(batch) >= size {
			size = max(min(size*2, x.opts.MaxBatch), x.opts.BatchSize)
		} else {
			size = x.opts.BatchSize
		}
		err := x.flush(ctx, ch, q, batch, wait)
		batch = batch[:0]
		timer.Stop()
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-closed:
			if ok && e != nil {
				return e
			}
			return errors.New("channel closed")
		case d, ok := <-dels:
			if !ok {
				// The broker cancelled the consumer (queue deleted) or the
				// channel is closing: the reason, if any, comes on closed.
				select {
				case e, ok := <-closed:
					if ok && e != nil {
						return e
					}
					return errors.New("channel closed")
				case <-time.After(time.Second):
				}
				return &amqp.Error{Code: amqp.NotFound, Reason: "consumer cancelled by the broker"}
			}
			if len(batch) == 0 {
				timer.Reset(x.opts.BatchWait)
			}
			batch = append(batch, d)
			if len(batch) >= size {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-timer.C:
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// flush stores a batch and acks it up to its last delivery tag. When the
// store fails the batch is requeued after a backoff, and read again.
func (x *RabbitIndexer) flush(ctx context.Context, ch *amqp.Channel, q RabbitQueue, batch []amqp.Delivery, wait *time.Duration) error {
	now := x.opts.Now()
	items := make([]dlqstore.IndexItem, len(batch))
	for i, d := range batch {
		items[i] = x.item(q, d, now)
	}
	last := batch[len(batch)-1].DeliveryTag
	res, err := x.opts.Store.IndexRabbit(ctx, items)
	if err != nil {
		if ctx.Err() != nil {
			return nil // closing the channel requeues the batch
		}
		err = fmt.Errorf("index %d messages of %s: %w", len(batch), q.Name, err)
		x.log.Warn("dlq store write failed; requeueing", "vhost", q.VHost, "queue", q.Name, "err", err)
		x.status.failed(q.VHost, q.Name, err)
		*wait = backoff(*wait)
		delivery.Sleep(ctx, *wait)
		if err := ch.Nack(last, true, true); err != nil {
			return fmt.Errorf("requeue after store failure: %w", err)
		}
		return nil
	}
	*wait = 0
	x.status.indexed(q.VHost, q.Name, res)
	if x.beforeAck != nil {
		x.beforeAck(ch)
	}
	// Committed: losing this ack only means a redelivery, which the store
	// sees as a duplicate.
	if err := ch.Ack(last, true); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// item decodes one delivery. The DLQ location is where it sits now:
// vhost, queue, and the exchange and routing key it arrived by.
func (x *RabbitIndexer) item(q RabbitQueue, d amqp.Delivery, now time.Time) dlqstore.IndexItem {
	ts := d.Timestamp
	if ts.IsZero() {
		ts = now
	}
	m := delivery.Message{
		Location: delivery.Location{
			Broker: delivery.BrokerRabbitMQ, Cluster: x.opts.Cluster, VHost: q.VHost,
			Queue: q.Name, Exchange: d.Exchange, RoutingKey: d.RoutingKey,
			Partition: -1, Offset: -1,
		},
		MessageID: d.MessageId,
		Headers:   rabbitmq.HeadersFromTable(d.Headers),
		Body:      d.Body,
		Timestamp: ts,
	}
	it := buildItem(m, x.opts.PayloadCap, now)
	it.DeathCount = deathCount(d.Headers)
	if it.MessageID == "" {
		it.MessageID = contentID(m)
	}
	return it
}

// deathCount is the x-death count of the hop that brought the message into
// this queue: the entry of x-last-death-queue/-reason, else the first
// (most recent) entry; 0 without x-death. A message that dies again after
// a redrive has a higher count, so it is a new entry, while a redelivery
// of the same dead letter has the same count.
func deathCount(h amqp.Table) int {
	deaths, _ := h["x-death"].([]any)
	if len(deaths) == 0 {
		return 0
	}
	lastQ, _ := h["x-last-death-queue"].(string)
	lastR, _ := h["x-last-death-reason"].(string)
	pick, _ := deaths[0].(amqp.Table)
	for _, e := range deaths {
		t, ok := e.(amqp.Table)
		if !ok {
			continue
		}
		if q, _ := t["queue"].(string); q == lastQ && lastQ != "" {
			if r, _ := t["reason"].(string); lastR == "" || r == lastR {
				pick = t
				break
			}
		}
	}
	switch n := pick["count"].(type) {
	case int64:
		return int(n)
	case int32:
		return int(n)
	case int:
		return n
	case int16:
		return int(n)
	case uint8:
		return int(n)
	}
	return 0
}

// contentID stands in for a missing message id: a hash of the body and
// headers, which a redelivery repeats exactly. Two identical messages
// without ids dead-lettered at the same instant become one entry.
func contentID(m delivery.Message) string {
	h := sha256.New()
	for _, x := range m.Headers {
		h.Write([]byte(x.Key))
		h.Write([]byte{0})
		h.Write(x.Value)
		h.Write([]byte{0})
	}
	h.Write(m.Body)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:32]
}

// amqpConns holds one connection per vhost, shared by that vhost's queue
// consumers (one channel each), and redialled when closed.
type amqpConns struct {
	uri   amqp.URI
	mu    sync.Mutex
	conns map[string]*amqp.Connection
}

func (p *amqpConns) channel(vhost string) (*amqp.Channel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.conns[vhost]
	if c == nil || c.IsClosed() {
		u := p.uri
		u.Vhost = vhost
		var err error
		c, err = amqp.DialConfig(u.String(), amqp.Config{
			Dial:       amqp.DefaultDial(10 * time.Second),
			Properties: amqp.Table{"connection_name": "switchyard-dlq-indexer"},
		})
		if err != nil {
			return nil, fmt.Errorf("connect to vhost %q: %w", vhost, err)
		}
		p.conns[vhost] = c
	}
	ch, err := c.Channel()
	if err != nil {
		c.Close()
		delete(p.conns, vhost)
		return nil, fmt.Errorf("open channel: %w", err)
	}
	return ch, nil
}

func (p *amqpConns) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for v, c := range p.conns {
		c.Close()
		delete(p.conns, v)
	}
}
