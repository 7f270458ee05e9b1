// Package indexer reads every dead-letter topic and queue the console
// watches into the dead-letter store (dlqstore). KafkaIndexer reads DLQ
// topics exactly once: it assigns their partitions directly, no consumer
// group, and stores each batch of entries together with the next offset in
// one SQLite transaction, so that a restart resumes where the last commit
// ended. RabbitIndexer takes custody of DLQ queues: it acks a message only
// after its entry is committed, because the queue no longer has it after
// that. Both decode whatever dead-letter format a record carries with
// delivery.Decode and never drop a record: what cannot be decoded is still
// an entry, flagged (the Flag constants, which the pages compare against),
// with its raw bytes up to a cap. Which topics and queues are dead-letter
// sources is delivery.DLQMatcher's decision over the configured patterns,
// the same matcher the collector marks the dashboards with.
package indexer

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/delivery"
	"switchyard/dlqstore"
)

// Flags an entry can carry; the store keeps them for filtering and the
// pages show them beside the entry.
const (
	// FlagUndecodable: the payload is not a JSON envelope at all (empty,
	// not UTF-8 or not JSON) where one was expected: not for a foreign
	// format (delivery.Format.Foreign), decoded from its own headers.
	FlagUndecodable = "undecodable"
	// FlagNotUTF8: the payload is not valid UTF-8 (binary or another encoding).
	FlagNotUTF8 = "not_utf8"
	// FlagInvalidEnvelope: JSON of the envelope's shape that breaks its
	// schema (not for a foreign format either).
	FlagInvalidEnvelope = "invalid_envelope"
	// FlagTooLarge: the payload was over the cap and is stored cut; its
	// size and hash are of the original.
	FlagTooLarge = "too_large"
	// FlagNoErrorContext: no known dead-letter headers, so no error code or
	// message: only the payload and coordinates are known.
	FlagNoErrorContext = "no_error_context"
)

// Default caps on the stored payload. Kafka DLQ records stay in Kafka and
// the entry points at them, so a modest cap is enough for search and
// display. A RabbitMQ message is gone from its queue once acked, so the
// entry is the only copy: its cap is large enough for any sane message
// (RabbitMQ's own default max message size is 128 MiB, but brokers are
// usually configured far lower), and anything beyond it is lost, which the
// too_large flag and the kept size and hash make visible.
const (
	DefaultKafkaPayloadCap  = 256 << 10
	DefaultRabbitPayloadCap = 8 << 20
)

// buildItem decodes one raw dead-letter record into what the store keeps:
// the normalized DeadLetter with its fingerprint, flags, and the payload
// cut to payloadCap bytes with the original's size and SHA-256 kept. It
// never fails: whatever the record holds, it becomes an entry.
func buildItem(m delivery.Message, payloadCap int, now time.Time) dlqstore.IndexItem {
	dl := delivery.Decode(m)
	// The fingerprint is taken before the payload is cut: it depends on the
	// envelope, which Decode read from the whole body.
	it := dlqstore.IndexItem{
		MessageID:   m.MessageID,
		Fingerprint: delivery.Fingerprint(dl),
		PayloadSize: len(m.Body),
		ReceivedAt:  now,
	}
	sum := sha256.Sum256(m.Body)
	it.PayloadHash = hex.EncodeToString(sum[:])
	if !utf8.Valid(m.Body) {
		it.Flags = append(it.Flags, FlagNotUTF8)
	}
	switch {
	case dl.Format.Foreign():
		// Its payload is the framework's own record, not an envelope.
	case dl.Envelope == nil:
		it.Flags = append(it.Flags, FlagUndecodable)
	case dl.EnvelopeError != "":
		it.Flags = append(it.Flags, FlagInvalidEnvelope)
	}
	if len(m.Body) > payloadCap {
		it.Flags = append(it.Flags, FlagTooLarge)
		it.Truncated = true
		// A copy, so that the entry does not pin a multi-megabyte fetch
		// buffer while it waits for the store.
		dl.Payload = append([]byte(nil), m.Body[:payloadCap]...)
	}
	if dl.Format == delivery.FormatUnknown || dl.Error.Code == "" && dl.Error.Message == "" {
		it.Flags = append(it.Flags, FlagNoErrorContext)
	}
	it.DL = dl
	return it
}

// SourceStatus is one dead-letter source as the pages show it. Counters
// count since the indexer started.
type SourceStatus struct {
	Broker      string `json:"broker"`
	Cluster     string `json:"cluster"`
	VHost       string `json:"vhost,omitempty"`
	Destination string `json:"destination"` // the DLQ topic or queue
	// Indexed is entries newly stored; Duplicates records seen again and
	// not stored twice (a redelivered RabbitMQ message).
	Indexed    int64 `json:"indexed"`
	Duplicates int64 `json:"duplicates"`
	// Lag is what is waiting to be indexed: for Kafka the sum over
	// partitions of high watermark − stored offset (as of the last fetch);
	// for RabbitMQ the queue's ready messages from the management API, -1
	// when unknown.
	Lag           int64     `json:"lag"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at,omitzero"`
	LastIndexedAt time.Time `json:"last_indexed_at,omitzero"`
}

type sourceKey struct{ vhost, dest string }

// statusBook keeps the SourceStatus of every source of one indexer.
type statusBook struct {
	broker, cluster string
	now             func() time.Time
	metrics         *Metrics

	mu  sync.Mutex
	src map[sourceKey]*SourceStatus
	// parts holds Kafka partition positions, summed into Lag.
	parts map[sourceKey]map[int32]*partPos
}

// partPos is a partition's stored next offset and last known high watermark.
type partPos struct{ next, hwm int64 }

func newStatusBook(broker, cluster string, now func() time.Time, m *Metrics) *statusBook {
	return &statusBook{broker: broker, cluster: cluster, now: now, metrics: m,
		src: map[sourceKey]*SourceStatus{}, parts: map[sourceKey]map[int32]*partPos{}}
}

// get returns the status of a source, creating it; callers hold mu.
func (b *statusBook) get(vhost, dest string) *SourceStatus {
	k := sourceKey{vhost, dest}
	s := b.src[k]
	if s == nil {
		s = &SourceStatus{Broker: b.broker, Cluster: b.cluster, VHost: vhost, Destination: dest, Lag: -1}
		b.src[k] = s
	}
	return s
}

// track makes a source visible before anything was indexed from it.
func (b *statusBook) track(vhost, dest string) {
	b.mu.Lock()
	b.get(vhost, dest)
	b.mu.Unlock()
}

func (b *statusBook) indexed(vhost, dest string, res dlqstore.IndexResult) {
	b.mu.Lock()
	s := b.get(vhost, dest)
	s.Indexed += int64(res.Inserted)
	s.Duplicates += int64(res.Duplicates)
	s.LastIndexedAt = b.now()
	s.LastError = ""
	b.mu.Unlock()
	b.metrics.arrived(b.broker, b.cluster, dest, res.Inserted)
}

func (b *statusBook) failed(vhost, dest string, err error) {
	b.mu.Lock()
	s := b.get(vhost, dest)
	s.LastError = err.Error()
	s.LastErrorAt = b.now()
	b.mu.Unlock()
	b.metrics.failed(b.broker, b.cluster)
}

// committed records a Kafka partition's stored next offset and high
// watermark (either -1 to leave it as is) and recomputes the topic's lag.
func (b *statusBook) committed(dest string, partition int32, next, hwm int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := sourceKey{"", dest}
	ps := b.parts[k]
	if ps == nil {
		ps = map[int32]*partPos{}
		b.parts[k] = ps
	}
	pp := ps[partition]
	if pp == nil {
		pp = &partPos{next: 0, hwm: -1}
		ps[partition] = pp
	}
	if next >= 0 {
		pp.next = next
	}
	if hwm >= 0 {
		pp.hwm = hwm
	}
	var sum int64
	known := false
	for _, p := range ps {
		if p.hwm >= 0 {
			known = true
			sum += max(0, p.hwm-p.next)
		}
	}
	if known {
		b.get("", dest).Lag = sum
	}
}

func (b *statusBook) setLag(vhost, dest string, lag int64) {
	b.mu.Lock()
	b.get(vhost, dest).Lag = lag
	b.mu.Unlock()
}

// list returns a copy of every status, sorted by vhost and destination.
func (b *statusBook) list() []SourceStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]SourceStatus, 0, len(b.src))
	for _, s := range b.src {
		out = append(out, *s)
	}
	sortStatuses(out)
	return out
}

func sortStatuses(s []SourceStatus) {
	slices.SortFunc(s, func(a, b SourceStatus) int {
		if c := cmp.Compare(a.VHost, b.VHost); c != 0 {
			return c
		}
		return cmp.Compare(a.Destination, b.Destination)
	})
}

// Metrics are the indexers' Prometheus metrics; one Metrics is shared by
// every indexer of the process. A nil *Metrics records nothing.
type Metrics struct {
	arrivals *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

// NewMetrics registers the indexer metrics with reg:
// switchyard_dlq_arrivals_total{broker,cluster,destination} counts entries
// newly indexed (duplicates excluded), switchyard_dlq_index_errors_total
// {broker,cluster} failed store writes and broker reads.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		arrivals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_dlq_arrivals_total",
			Help: "Dead letters newly indexed, by broker, cluster and dead-letter topic or queue.",
		}, []string{"broker", "cluster", "destination"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_dlq_index_errors_total",
			Help: "Dead-letter indexing failures (store writes and broker reads), by broker and cluster; the indexer retries them.",
		}, []string{"broker", "cluster"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.arrivals, m.errors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register indexer metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *Metrics) arrived(broker, cluster, dest string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.arrivals.WithLabelValues(broker, cluster, dest).Add(float64(n))
}

func (m *Metrics) failed(broker, cluster string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(broker, cluster).Inc()
}

// backoff doubles a retry delay from 100 ms up to 10 s.
func backoff(prev time.Duration) time.Duration {
	switch {
	case prev <= 0:
		return 100 * time.Millisecond
	case prev >= 5*time.Second:
		return 10 * time.Second
	}
	return 2 * prev
}

// commonDefaults fills the options both indexers share: the discovery
// interval, a logger that discards, and the wall clock.
func commonDefaults(discovery *time.Duration, logger **slog.Logger, now *func() time.Time) {
	if *discovery <= 0 {
		*discovery = DefaultDiscoveryInterval
	}
	if *logger == nil {
		*logger = slog.New(slog.DiscardHandler)
	}
	if *now == nil {
		*now = time.Now
	}
}
