package browse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
)

// Page is what Read found.
type Page struct {
	// Messages are in reading order: newest first when reading backwards
	// (Forward false), oldest first when reading forwards.
	Messages []Message
	Forward  bool
	// Older and Newer are the cursors of the pages before and after this
	// one (Query.Cursor); "" when the page reached that end of the topic
	// as it stood when read.
	Older, Newer string
	// Scanned is how many records the page looked at.
	Scanned int
	// Hidden is how many records the tenant filter dropped. It must not be
	// shown to the caller: it would leak other tenants' volume. For logs
	// and tests only.
	Hidden int
	// Partial is true when the deadline passed before every partition
	// was read as far as the page needed: the page may be short, and its
	// cursors go on from where it stopped.
	Partial bool
}

// Read returns one page of topic as q selects it, tenant-filtered and
// masked for the caller. Errors: ENOTFOUND (cluster, topic, partition),
// EINVALID (query, cursor, an offset past a partition's end), or an
// internal error from the broker.
func (b *Browser) Read(ctx context.Context, cluster, topic string, q Query) (Page, error) {
	cur, err := q.validate()
	if err != nil {
		return Page{}, err
	}
	base, err := b.client(cluster)
	if err != nil {
		return Page{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()

	adm := kadm.NewClient(base)
	bounds, err := partitionBounds(ctx, adm, cluster, topic, q.Partition)
	if err != nil {
		return Page{}, err
	}
	start, err := startPositions(ctx, adm, topic, &q, cur, bounds)
	if err != nil {
		return Page{}, err
	}
	scan := q.Limit
	if q.filtering() {
		scan = max(q.Limit, MaxScan/max(1, len(bounds)))
	}
	wins := windows(bounds, start, scan)
	recs, done, err := consume(ctx, base, topic, wins)
	if err != nil {
		return Page{}, err
	}
	page := b.merge(&q, start, wins, bounds, recs, done)
	page.Partial = len(done) < len(wins)
	return page, nil
}

// span is the offsets [from, to) of a partition.
type span struct{ from, to int64 }

// start is where a page begins: the direction, and per partition the
// first offset to read forwards, or the offset below which to read
// backwards.
type start struct {
	forward bool
	pos     map[int32]int64
}

// partitionBounds lists the retained offsets of the partitions read.
func partitionBounds(ctx context.Context, adm *kadm.Client, cluster, topic string, partition int32) (map[int32]span, error) {
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
	if partition >= 0 {
		if _, ok := ps[partition]; !ok {
			return nil, delivery.Errorf(delivery.ENOTFOUND, "topic %q has no partition %d", topic, partition)
		}
	}
	out := map[int32]span{}
	for p, end := range ps {
		if partition >= 0 && p != partition {
			continue
		}
		if end.Err != nil {
			if errors.Is(end.Err, kerr.UnknownTopicOrPartition) {
				return nil, notFound(cluster, topic)
			}
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p, end.Err)
		}
		st, ok := starts.Lookup(topic, p)
		if !ok || st.Err != nil {
			return nil, fmt.Errorf("start offset of %s/%d unknown", topic, p)
		}
		out[p] = span{st.Offset, end.Offset}
	}
	return out, nil
}

func notFound(cluster, topic string) error {
	return delivery.Errorf(delivery.ENOTFOUND, "topic %q not found on cluster %q", topic, cluster)
}

// startPositions works out where the page begins in every partition, kept
// within what the partition retains: a cursor's positions, or the seek's.
// A partition a cursor does not name (added since) is not read.
func startPositions(ctx context.Context, adm *kadm.Client, topic string, q *Query, cur *cursor, bounds map[int32]span) (start, error) {
	clamp := func(o int64, b span) int64 { return min(max(o, b.from), b.to) }
	st := start{pos: map[int32]int64{}}
	if cur != nil {
		st.forward = cur.forward
		for p, o := range cur.pos {
			if b, ok := bounds[p]; ok {
				st.pos[p] = clamp(o, b)
			}
		}
		return st, nil
	}
	var after kadm.ListedOffsets
	if q.Seek == SeekTimestamp {
		var err error
		if after, err = adm.ListOffsetsAfterMilli(ctx, q.Timestamp.UnixMilli(), topic); err != nil {
			return st, fmt.Errorf("list offsets of %s after %s: %w", topic, q.Timestamp.Format(time.RFC3339), err)
		}
	}
	st.forward = q.Seek != SeekNewest
	for p, b := range bounds {
		switch q.Seek {
		case SeekNewest:
			st.pos[p] = b.to
		case SeekOldest:
			st.pos[p] = b.from
		case SeekOffset:
			if q.Partition >= 0 && q.Offset > b.to {
				return st, delivery.Errorf(delivery.EINVALID, "offset %d is past the end of partition %d (its next offset is %d)", q.Offset, p, b.to)
			}
			st.pos[p] = clamp(q.Offset, b)
		case SeekTimestamp:
			o, ok := after.Lookup(topic, p)
			if !ok {
				return st, fmt.Errorf("offset of %s/%d after %s unknown", topic, p, q.Timestamp.Format(time.RFC3339))
			}
			if o.Err != nil {
				return st, fmt.Errorf("offset of %s/%d after %s: %w", topic, p, q.Timestamp.Format(time.RFC3339), o.Err)
			}
			st.pos[p] = clamp(o.Offset, b)
		}
	}
	return st, nil
}

// windows are the offsets to read per partition: up to scan records from
// each start position in the page's direction.
func windows(bounds map[int32]span, st start, scan int) map[int32]span {
	out := map[int32]span{}
	for p, o := range st.pos {
		b := bounds[p]
		w := span{o, min(b.to, o+int64(scan))}
		if !st.forward {
			w = span{max(b.from, o-int64(scan)), o}
		}
		if w.from < w.to {
			out[p] = w
		}
	}
	return out
}

// consume reads the given ranges with a short-lived direct consumer built
// from the cluster client's options, until every range is read or ctx
// ends (partial). A range is read once a record at or past its last
// offset arrives: control records (transaction markers) are kept for
// that and then dropped, and a record past the range (produced meanwhile,
// or after a compacted gap) closes it too, so that the result is the
// snapshot the offsets described. done says which ranges were read whole.
func consume(ctx context.Context, base *kgo.Client, topic string, ranges map[int32]span) (recs map[int32][]*kgo.Record, done map[int32]bool, err error) {
	recs, done = map[int32][]*kgo.Record{}, map[int32]bool{}
	if len(ranges) == 0 {
		return recs, done, nil
	}
	at := map[int32]kgo.Offset{}
	for p, r := range ranges {
		at[p] = kgo.NewOffset().At(r.from)
	}
	opts := append(base.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: at}),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.KeepControlRecords(),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("browse client: %w", err)
	}
	defer cl.Close()
	for len(done) < len(ranges) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return recs, done, nil
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return nil, nil, fmt.Errorf("fetch %s: %w", topic, ferr)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			rg, ok := ranges[r.Partition]
			if !ok || done[r.Partition] || r.Offset < rg.from {
				return
			}
			if r.Offset < rg.to && !r.Attrs.IsControl() {
				recs[r.Partition] = append(recs[r.Partition], r)
			}
			if r.Offset >= rg.to-1 {
				done[r.Partition] = true
			}
		})
	}
	return recs, done, nil
}

// stream is one partition's records in reading order, and whether the
// partition holds more in that direction than were read.
type stream struct {
	recs []*kgo.Record
	next int
	more bool
}

// merge makes the page: it takes records from the heads of the
// partitions' streams, the newest (backwards) or oldest (forwards) head
// first, so that what the page takes of each partition is a run of
// consecutive offsets and the cursors can go on from there. It stops when
// the page is full, when every stream is used up, or when a stream that
// has more beyond what was read runs out, since its next record might
// belong before the others'. A window read in part (done false) counts
// up to what arrived forwards, and not at all backwards, where the
// missing records are the first ones needed.
func (b *Browser) merge(q *Query, st start, wins, bounds map[int32]span, recs map[int32][]*kgo.Record, done map[int32]bool) Page {
	page := Page{Forward: st.forward}
	var streams []*stream
	for p, w := range wins {
		rs := recs[p]
		slices.SortFunc(rs, func(x, y *kgo.Record) int { return cmp.Compare(x.Offset, y.Offset) })
		s := &stream{recs: rs}
		switch {
		case st.forward && done[p]:
			s.more = w.to < bounds[p].to
		case st.forward:
			s.more = true
		case done[p]:
			slices.Reverse(rs)
			s.more = w.from > bounds[p].from
		default:
			s.recs, s.more = nil, true
		}
		streams = append(streams, s)
	}
	pos := maps.Clone(st.pos)
	f := newMatcher(q)
	for len(page.Messages) < q.Limit {
		var next *stream
		for _, s := range streams {
			if s.next == len(s.recs) {
				if s.more {
					next = nil // cannot tell what comes next
					break
				}
				continue
			}
			if next == nil || before(s.recs[s.next], next.recs[next.next], st.forward) {
				next = s
			}
		}
		if next == nil {
			break
		}
		r := next.recs[next.next]
		next.next++
		pos[r.Partition] = r.Offset
		if st.forward {
			pos[r.Partition] = r.Offset + 1
		}
		page.Scanned++
		m := b.message(r, q)
		if q.Tenants != nil && !q.Tenants(m.Tenant) {
			page.Hidden++
			continue
		}
		if f.matches(m) {
			page.Messages = append(page.Messages, m)
		}
	}
	older, newer := cursor{pos: st.pos}, cursor{forward: true, pos: pos}
	if !st.forward {
		older, newer = cursor{pos: pos}, cursor{forward: true, pos: st.pos}
	}
	if older.beyond(bounds) {
		page.Older = older.String()
	}
	if newer.beyond(bounds) {
		page.Newer = newer.String()
	}
	return page
}

// before reports whether record a comes before b in reading order: by
// timestamp (newest first backwards, oldest first forwards), then
// partition and offset, so that the order is the same on every read.
func before(a, b *kgo.Record, forward bool) bool {
	c := a.Timestamp.Compare(b.Timestamp)
	if !forward {
		c = -c
	}
	return cmp.Or(c, cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset)) < 0
}
