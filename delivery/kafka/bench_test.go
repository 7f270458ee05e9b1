package kafka

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
)

// Each benchmark pairs the adapter with a bare franz-go baseline doing the
// same broker work in the same run, so the difference is the adapter's own
// cost (validation, JSON, spans, headers; on the consumer side envelope
// parsing, per-partition workers and the commit discipline).

func benchEnvelopes(b *testing.B, n int) []delivery.Envelope {
	envs := make([]delivery.Envelope, n)
	for i := range envs {
		envs[i] = envelope(b, []string{"a", "b", "c", "d", "e"}[i%5], map[string]int{"seq": i})
	}
	return envs
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkPublish(b *testing.B) {
	b.Run("delivery", func(b *testing.B) {
		topic := uniqueTopic("benchpub")
		_, addrs := newCluster(b, 4, topic)
		pub := newPublisher(b, addrs, PublisherOptions{})
		envs := benchEnvelopes(b, b.N)
		ctx := context.Background()
		b.ResetTimer()
		for i := range b.N {
			pub.PublishAsync(ctx, topic, envs[i], nil, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := pub.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		reportRate(b)
	})
	b.Run("bare-kgo", func(b *testing.B) {
		topic := uniqueTopic("benchpub")
		_, addrs := newCluster(b, 4, topic)
		cl := newClient(b, addrs, kgo.RequiredAcks(kgo.AllISRAcks()))
		envs := benchEnvelopes(b, b.N)
		ctx := context.Background()
		b.ResetTimer()
		for i := range b.N {
			// A bare client publishing envelopes still has to encode them.
			r := &kgo.Record{Topic: topic, Key: []byte(envs[i].Metadata.PartitionKey), Value: mustJSON(b, envs[i])}
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		reportRate(b)
	})
}

func BenchmarkConsume(b *testing.B) {
	// setup fills a fresh topic with b.N envelopes before the timer runs.
	setup := func(b *testing.B) (topic string, addrs []string, adm *kadm.Client) {
		topic = uniqueTopic("benchcons")
		_, addrs = newCluster(b, 4, topic)
		pub := newPublisher(b, addrs, PublisherOptions{})
		ctx := context.Background()
		for _, e := range benchEnvelopes(b, b.N) {
			pub.PublishAsync(ctx, topic, e, nil, nil)
		}
		if err := pub.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		return topic, addrs, newAdmin(b, addrs)
	}
	// allCommitted reports whether group has committed n records of topic.
	allCommitted := func(b *testing.B, adm *kadm.Client, group, topic string, n int) bool {
		os, err := adm.FetchOffsets(context.Background(), group)
		if err != nil {
			return false
		}
		var sum int64
		os.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.Err == nil {
				sum += o.At
			}
		})
		return sum >= int64(n)
	}
	waitAll := func(b *testing.B, adm *kadm.Client, group, topic string) {
		deadline := time.Now().Add(time.Minute)
		for !allCommitted(b, adm, group, topic, b.N) {
			if time.Now().After(deadline) {
				b.Fatalf("group %s did not commit %d records", group, b.N)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}

	b.Run("delivery", func(b *testing.B) {
		topic, addrs, adm := setup(b)
		group := "g-" + topic
		b.ResetTimer()
		stop := startConsumer(b, ConsumerOptions{
			Brokers: addrs, Group: group, Topics: []string{topic},
			Handler: func(context.Context, *Delivery) error { return nil },
		})
		waitAll(b, adm, group, topic)
		b.StopTimer()
		stop()
		reportRate(b)
	})
	b.Run("bare-kgo", func(b *testing.B) {
		topic, addrs, adm := setup(b)
		group := "g-" + topic
		b.ResetTimer()
		cl := newClient(b, addrs, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				if rs := fs.Records(); len(rs) > 0 {
					// A bare consumer of envelopes still decodes them.
					for _, r := range rs {
						var e delivery.Envelope
						if err := json.Unmarshal(r.Value, &e); err != nil {
							b.Error(err)
						}
					}
					if err := cl.CommitRecords(ctx, rs...); err != nil && ctx.Err() == nil {
						b.Error(err)
					}
				}
			}
		}()
		waitAll(b, adm, group, topic)
		b.StopTimer()
		cancel()
		<-done
		reportRate(b)
	})
}
