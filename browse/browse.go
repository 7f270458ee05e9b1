// Package browse reads the most recent records of a Kafka topic for the
// console's message browser. Browser is the type that matters: Recent reads
// the last N records of each partition with a direct (non-group) consume,
// so browsing never moves a consumer group's offsets, and it applies the
// tenant filter and PII masking before anything leaves the package.
package browse

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
)

// Limits of one browse request.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Masker hides PII in a record: the payload and metadata fields of an
// envelope (or of a bare payload whose type a header names) and the key.
// eventType is the type from the record's headers, "" when unknown (an
// envelope's own type wins). *access.Masker implements it; each method
// returns its input unchanged when nothing in it is PII.
type Masker interface {
	MaskMessage(eventType string, value []byte) ([]byte, int)
	MaskKey(eventType string, key []byte) ([]byte, bool)
}

// Options configures a Browser. The zero value browses no cluster.
type Options struct {
	// Clients are the clusters' clients by cluster name. They are used for
	// metadata and as the template of a short-lived consuming client, so
	// they must not be group consumers.
	Clients map[string]*kgo.Client
	// Client, when set, is asked for clusters not in Clients.
	Client func(cluster string) (*kgo.Client, error)
	// Masker masks values and keys unless Query.RevealPII allows the
	// tenant; nil masks nothing.
	Masker Masker
	// Timeout bounds one Recent call; default 5s.
	Timeout time.Duration
}

// Browser reads recent messages.
type Browser struct {
	opts Options
}

// New returns a Browser.
func New(opts Options) (*Browser, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	for name, cl := range opts.Clients {
		if cl == nil {
			return nil, fmt.Errorf("browse: nil client for cluster %q", name)
		}
	}
	return &Browser{opts: opts}, nil
}

// Query selects what Recent returns.
type Query struct {
	// Limit is how many records to read per partition and the most
	// messages returned; default 50, at most 500.
	Limit int
	// Partition restricts the read to one partition; -1 reads all. The
	// zero value reads partition 0, so callers set -1 explicitly.
	Partition int32
	// Text keeps only messages whose key or payload (as shown, i.e. after
	// masking, so a masked value is never found) or a header value
	// contains it, case-insensitively.
	Text string
	// Tenants says which tenants the caller may see; nil means all.
	Tenants func(tenant string) bool
	// RevealPII says for which tenants payloads and keys are shown
	// unmasked; nil means none (everything goes through the Masker).
	RevealPII func(tenant string) bool
}

// Header is one record header.
type Header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Message is one record as the browser shows it.
type Message struct {
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Key       []byte    `json:"key"`
	Headers   []Header  `json:"headers"`
	Value     []byte    `json:"value"`
	// Tenant is metadata.tenant_id of the envelope, else the tenant_id
	// header, else "".
	Tenant string `json:"tenant"`
	// EventType is the type of the envelope, else the event_type header,
	// else "".
	EventType string `json:"event_type"`
	// Valid is true when the value is a platform envelope.
	Valid bool `json:"valid"`
	// Masked is how many PII values were replaced, the key included.
	Masked int `json:"masked"`
}

// Result is what Recent found.
type Result struct {
	Messages []Message // newest first
	// Scanned is how many records were read.
	Scanned int
	// Hidden is how many records the tenant filter dropped. It must not be
	// shown to the caller: it would leak other tenants' volume. For logs
	// and tests only.
	Hidden int
	// Partial is true when the deadline passed before every partition
	// was read to its end.
	Partial bool
}

func (b *Browser) client(cluster string) (*kgo.Client, error) {
	if cl, ok := b.opts.Clients[cluster]; ok {
		return cl, nil
	}
	if b.opts.Client != nil {
		cl, err := b.opts.Client(cluster)
		if err != nil {
			return nil, err
		}
		if cl != nil {
			return cl, nil
		}
	}
	return nil, delivery.Errorf(delivery.ENOTFOUND, "cluster %q is not configured", cluster)
}

// Recent returns the newest records of topic. Errors: ENOTFOUND (cluster
// or topic), EINVALID (query), or an internal error from the broker.
func (b *Browser) Recent(ctx context.Context, cluster, topic string, q Query) (Result, error) {
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return Result{}, delivery.Errorf(delivery.EINVALID, "limit must be 1 to %d", MaxLimit)
	}
	if q.Partition < -1 {
		return Result{}, delivery.Errorf(delivery.EINVALID, "partition must be -1 (all) or a partition number")
	}
	base, err := b.client(cluster)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()

	ranges, err := offsetRanges(ctx, kadm.NewClient(base), cluster, topic, q)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if len(ranges) > 0 {
		recs, partial, err := consume(ctx, base, topic, ranges)
		if err != nil {
			return Result{}, err
		}
		res.Partial = partial
		res.Scanned = len(recs)
		text := strings.ToLower(q.Text)
		for _, r := range recs {
			m := b.message(r, q)
			if q.Tenants != nil && !q.Tenants(m.Tenant) {
				res.Hidden++
				continue
			}
			if text != "" && !matches(m, text) {
				continue
			}
			res.Messages = append(res.Messages, m)
		}
	}
	slices.SortFunc(res.Messages, func(a, b Message) int {
		return cmp.Or(b.Timestamp.Compare(a.Timestamp), cmp.Compare(b.Offset, a.Offset), cmp.Compare(a.Partition, b.Partition))
	})
	if len(res.Messages) > q.Limit {
		res.Messages = res.Messages[:q.Limit]
	}
	return res, nil
}

type span struct{ from, to int64 } // [from, to)

// offsetRanges computes, per partition, the offsets of the last q.Limit
// records.
func offsetRanges(ctx context.Context, adm *kadm.Client, cluster, topic string, q Query) (map[int32]span, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ps, ok := ends[topic]
	if !ok || len(ps) == 0 {
		return nil, notFound(cluster, topic)
	}
	if e, ok := ps[-1]; ok && errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
		return nil, notFound(cluster, topic)
	}
	if q.Partition >= 0 {
		if _, ok := ps[q.Partition]; !ok {
			return nil, delivery.Errorf(delivery.ENOTFOUND, "topic %q has no partition %d", topic, q.Partition)
		}
	}
	out := map[int32]span{}
	for p, end := range ps {
		if q.Partition >= 0 && p != q.Partition {
			continue
		}
		if end.Err != nil {
			if errors.Is(end.Err, kerr.UnknownTopicOrPartition) {
				return nil, notFound(cluster, topic)
			}
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p, end.Err)
		}
		start, ok := starts.Lookup(topic, p)
		if !ok || start.Err != nil {
			return nil, fmt.Errorf("start offset of %s/%d unknown", topic, p)
		}
		from := max(start.Offset, end.Offset-int64(q.Limit))
		if from < end.Offset {
			out[p] = span{from, end.Offset}
		}
	}
	return out, nil
}

func notFound(cluster, topic string) error {
	return delivery.Errorf(delivery.ENOTFOUND, "topic %q not found on cluster %q", topic, cluster)
}

// consume reads the given ranges with a short-lived direct consumer built
// from the cluster client's options, until every range is read or ctx
// ends (partial). Records past a range's end, produced meanwhile, are
// dropped so that the result is the snapshot the offsets described.
func consume(ctx context.Context, base *kgo.Client, topic string, ranges map[int32]span) ([]*kgo.Record, bool, error) {
	start := map[int32]kgo.Offset{}
	for p, r := range ranges {
		start[p] = kgo.NewOffset().At(r.from)
	}
	opts := append(base.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, false, fmt.Errorf("browse client: %w", err)
	}
	defer cl.Close()
	pending := len(ranges)
	done := map[int32]bool{}
	var recs []*kgo.Record
	for pending > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return recs, true, nil
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return nil, false, fmt.Errorf("fetch %s: %w", topic, ferr)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			rg, ok := ranges[r.Partition]
			if !ok || done[r.Partition] || r.Offset >= rg.to {
				return
			}
			recs = append(recs, r)
			if r.Offset >= rg.to-1 {
				done[r.Partition] = true
				pending--
			}
		})
	}
	return recs, false, nil
}

// message turns a record into a Message: tenant and type from the
// envelope (else its headers), value and key masked unless the query
// reveals PII for the tenant.
func (b *Browser) message(r *kgo.Record, q Query) Message {
	m := Message{
		Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
		Key: r.Key, Value: r.Value,
	}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, Header{Key: h.Key, Value: h.Value})
		switch {
		case h.Key == delivery.HeaderTenantID && m.Tenant == "":
			m.Tenant = string(h.Value)
		case h.Key == delivery.HeaderEventType && m.EventType == "":
			m.EventType = string(h.Value)
		}
	}
	if env, err := delivery.ParseEnvelope(r.Value); err == nil && env.Type != "" {
		m.Valid = true
		m.EventType = env.Type
		if env.Metadata.TenantID != "" {
			m.Tenant = env.Metadata.TenantID
		}
	}
	if b.opts.Masker != nil && (q.RevealPII == nil || !q.RevealPII(m.Tenant)) {
		m.Value, m.Masked = b.opts.Masker.MaskMessage(m.EventType, r.Value)
		var masked bool
		if m.Key, masked = b.opts.Masker.MaskKey(m.EventType, r.Key); masked {
			m.Masked++
		}
	}
	return m
}

func matches(m Message, lowerText string) bool {
	if containsFold(m.Key, lowerText) || containsFold(m.Value, lowerText) {
		return true
	}
	for _, h := range m.Headers {
		if containsFold(h.Value, lowerText) {
			return true
		}
	}
	return false
}

func containsFold(b []byte, lowerText string) bool {
	if utf8.Valid(b) {
		return strings.Contains(strings.ToLower(string(b)), lowerText)
	}
	return bytes.Contains(bytes.ToLower(b), []byte(lowerText))
}

// Pretty returns b indented when it is JSON, as text when it is other
// UTF-8, and as hex otherwise; kind says which ("json", "text", "hex").
func Pretty(b []byte) (text, kind string) {
	if len(b) == 0 {
		return "", "text"
	}
	if json.Valid(b) {
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			return out.String(), "json"
		}
	}
	if utf8.Valid(b) {
		return string(b), "text"
	}
	return hexDump(b), "hex"
}

func hexDump(b []byte) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			if i%16 == 0 {
				sb.WriteByte('\n')
			} else {
				sb.WriteByte(' ')
			}
		}
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&15])
	}
	return sb.String()
}
