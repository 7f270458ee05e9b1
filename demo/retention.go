package demo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
)

// Defaults of Retention and of Options.IdempotencyKeys. At the default
// rate (50 orders a second, as many invoices) half an hour of traffic is
// about 15,000 records per partition of the busy topics, so MaxRecords
// only bites when the demo runs faster; a day of dead letters is some
// 130,000 records in all.
const (
	DefaultRetainFor          = 30 * time.Minute
	DefaultDLQRetainFor       = 24 * time.Hour
	DefaultRetainRecords      = 50_000
	DefaultRetentionInterval  = time.Minute
	DefaultIdempotencyKeys    = 100_000
	retentionRequestTimeout   = 30 * time.Second
	retentionFailuresLogEvery = 10
)

// Retention bounds what the embedded Kafka keeps of the demo's topics, so
// that the demo runs for days in bounded memory and disk: kfake keeps an
// index entry in memory for every batch it holds, and at the default rate
// that alone grew the process by ~100 bytes × 100 batches a second.
//
// A pass every Interval moves each partition's log start offset (a
// DeleteRecords, as an operator would on a real cluster) up to the first
// record younger than MaxAge (DLQMaxAge for the DLQ topics), but never
// past a consumer group's committed offset there: records a group has
// not consumed yet stay, so lag figures keep meaning what they say. The
// one exception is MaxRecords, a hard bound per partition that a stalled
// group does not hold back. A dead letter the console has not indexed
// (Options.IndexedUpTo) is never trimmed, whatever its age or count.
type Retention struct {
	// MaxAge is how long records of the demo's business topics are kept
	// (default DefaultRetainFor).
	MaxAge time.Duration
	// DLQMaxAge is how long dead letters are kept (default
	// DefaultDLQRetainFor).
	DLQMaxAge time.Duration
	// MaxRecords is the most records kept per partition (default
	// DefaultRetainRecords).
	MaxRecords int64
	// Interval is the time between passes (default
	// DefaultRetentionInterval).
	Interval time.Duration
	// Off keeps every record for as long as the demo runs, as before
	// retention existed (the baseline of BenchmarkDemoRSS).
	Off bool
}

func (r *Retention) setDefaults() {
	if r.MaxAge <= 0 {
		r.MaxAge = DefaultRetainFor
	}
	if r.DLQMaxAge <= 0 {
		r.DLQMaxAge = DefaultDLQRetainFor
	}
	if r.MaxRecords <= 0 {
		r.MaxRecords = DefaultRetainRecords
	}
	if r.Interval <= 0 {
		r.Interval = DefaultRetentionInterval
	}
}

// topics are the demo's own topics, the only ones retention trims: a topic
// someone else created on the embedded Kafka is theirs to keep.
func topics() []string {
	return []string{TopicOrders, delivery.DLQTopic(TopicOrders), TopicInvoices,
		TopicPaymentDeclined, delivery.DLQTopic(TopicPaymentDeclined), TopicOrderCancelled}
}

// isDLQ reports whether topic is one of the demo's DLQ topics.
func isDLQ(topic string) bool {
	return topic == delivery.DLQTopic(TopicOrders) || topic == delivery.DLQTopic(TopicPaymentDeclined)
}

// runRetention trims the demo's topics every Retention.Interval until ctx
// is done. A failed pass is logged (the first, then every tenth in a row)
// and tried again at the next tick: retention falling behind for a while
// costs memory, not correctness.
func (p *Platform) runRetention(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.ClientID("demo-retention"))
	if err != nil {
		return fmt.Errorf("demo retention client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tick := time.NewTicker(p.opts.Retention.Interval)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, retentionRequestTimeout)
		_, err := p.trim(pctx, adm, time.Now())
		cancel()
		switch {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			return nil
		default:
			if failures%retentionFailuresLogEvery == 0 {
				p.opts.Logger.Warn("demo retention: trimming the embedded Kafka failed; retrying", "error", err, "failures", failures+1)
			}
			failures++
		}
	}
}

// trim runs one retention pass at now and returns the new log start
// offset of every partition it moved.
func (p *Platform) trim(ctx context.Context, adm *kadm.Client, now time.Time) (kadm.Offsets, error) {
	r := p.opts.Retention
	all := topics()
	var business, dlqs []string
	for _, t := range all {
		if isDLQ(t) {
			dlqs = append(dlqs, t)
		} else {
			business = append(business, t)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, all...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, all...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	aged := kadm.ListedOffsets{}
	for _, set := range []struct {
		topics []string
		maxAge time.Duration
	}{{business, r.MaxAge}, {dlqs, r.DLQMaxAge}} {
		lo, err := adm.ListOffsetsAfterMilli(ctx, now.Add(-set.maxAge).UnixMilli(), set.topics...)
		if err == nil {
			err = lo.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("list offsets by age: %w", err)
		}
		for t, ps := range lo {
			aged[t] = ps
		}
	}
	floors, err := groupFloors(ctx, adm)
	if err != nil {
		return nil, err
	}
	var indexed map[string]map[int32]int64
	if p.opts.IndexedUpTo != nil {
		if indexed, err = p.opts.IndexedUpTo(ctx); err != nil {
			// Without the indexer's offsets no dead letter is known to
			// be safe to drop: skip the DLQ topics this pass.
			p.opts.Logger.Warn("demo retention: DLQ topics not trimmed this pass; the indexer's offsets are unknown", "error", err)
			indexed = map[string]map[int32]int64{}
		}
	}

	want := kadm.Offsets{}
	ends.Each(func(end kadm.ListedOffset) {
		t, part := end.Topic, end.Partition
		start, ok := starts.Lookup(t, part)
		if !ok {
			return
		}
		target := start.Offset
		if a, ok := aged.Lookup(t, part); ok && a.Offset > target {
			target = a.Offset
		}
		if f, ok := floors[t][part]; ok && f < target {
			target = f
		}
		target = max(target, end.Offset-r.MaxRecords)
		if isDLQ(t) && indexed != nil {
			next, ok := indexed[t][part]
			if !ok {
				return // the indexer has not read this partition yet
			}
			target = min(target, next)
		}
		if target = min(target, end.Offset); target > start.Offset {
			want.AddOffset(t, part, target, -1)
		}
	})
	if len(want) == 0 {
		return want, nil
	}
	resp, err := adm.DeleteRecords(ctx, want)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("delete records: %w", err)
	}
	return want, nil
}

// groupFloors returns, per partition, the lowest offset any consumer
// group has committed there: the oldest record still to be consumed by
// someone.
func groupFloors(ctx context.Context, adm *kadm.Client) (map[string]map[int32]int64, error) {
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	floors := map[string]map[int32]int64{}
	if len(groups) == 0 {
		return floors, nil
	}
	fetched := adm.FetchManyOffsets(ctx, groups.Groups()...)
	var errs []error
	for _, g := range fetched {
		if g.Err != nil {
			errs = append(errs, fmt.Errorf("offsets of group %s: %w", g.Group, g.Err))
			continue
		}
		g.Fetched.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil || o.At < 0 {
				return
			}
			ps := floors[o.Topic]
			if ps == nil {
				ps = map[int32]int64{}
				floors[o.Topic] = ps
			}
			if cur, ok := ps[o.Partition]; !ok || o.At < cur {
				ps[o.Partition] = o.At
			}
		})
	}
	if len(errs) > 0 {
		// A group whose offsets are unknown might be the one behind:
		// trimming without its floor could overtake it.
		return nil, errors.Join(errs...)
	}
	return floors, nil
}
