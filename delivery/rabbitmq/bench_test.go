package rabbitmq

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/delivery"
)

// The benchmarks run against the real broker, each next to a baseline of
// plain amqp091-go doing the same work in the same run, so that the figure
// to read is the ratio, not the absolute rate of this machine.

func benchQueue(b *testing.B, br *broker) string {
	b.Helper()
	return br.queue(QueueOptions{})
}

func reportRate(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func BenchmarkPublish(b *testing.B) {
	br := mustBroker(b)
	env := newEnvelope(b)
	body, err := json.Marshal(env)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("delivery", func(b *testing.B) {
		q := benchQueue(b, br)
		p, err := NewPublisher(PublisherOptions{URL: br.url, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if err := p.Publish(ctx, "", q, env, nil); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, start)
	})

	b.Run("bare-amqp091", func(b *testing.B) {
		q := benchQueue(b, br)
		ch := br.channel()
		defer ch.Close()
		if err := ch.Confirm(false); err != nil {
			b.Fatal(err)
		}
		msg := amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: env.ID, Body: body}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			dc, err := ch.PublishWithDeferredConfirm("", q, true, false, msg)
			if err != nil {
				b.Fatal(err)
			}
			if !dc.Wait() {
				b.Fatal("nacked")
			}
		}
		reportRate(b, start)
	})
}

// fill publishes n copies of a published envelope to q, confirmed in batches.
func fill(b *testing.B, br *broker, q string, n int) {
	b.Helper()
	env := newEnvelope(b)
	body, _ := json.Marshal(env)
	ch := br.channel()
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	msg := amqp.Publishing{ContentType: "application/json", MessageId: env.ID, Body: body,
		Headers: amqp.Table{delivery.HeaderTraceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	var last *amqp.DeferredConfirmation
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirm("", q, false, false, msg)
		if err != nil {
			b.Fatal(err)
		}
		last = dc
		if i%1000 == 999 && !dc.Wait() {
			b.Fatal("nacked")
		}
	}
	if last != nil && !last.Wait() {
		b.Fatal("nacked")
	}
}

func BenchmarkConsume(b *testing.B) {
	br := mustBroker(b)
	const prefetch = 32

	b.Run("delivery", func(b *testing.B) {
		q := benchQueue(b, br)
		fill(b, br, q, b.N)
		var n atomic.Int64
		done := make(chan struct{})
		c, err := NewConsumer(ConsumerOptions{
			URL: br.url, Queue: q, Prefetch: prefetch,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Handler: func(ctx context.Context, d *Delivery) error {
				if n.Add(1) == int64(b.N) {
					close(done)
				}
				return nil
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		go func() { ran <- c.Run(ctx) }()
		<-done
		reportRate(b, start)
		b.StopTimer()
		cancel()
		if err := <-ran; err != nil {
			b.Fatal(err)
		}
	})

	b.Run("bare-amqp091", func(b *testing.B) {
		q := benchQueue(b, br)
		fill(b, br, q, b.N)
		ch := br.channel()
		defer ch.Close()
		if err := ch.Qos(prefetch, 0, false); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		msgs, err := ch.Consume(q, "", false, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			d := <-msgs
			if err := d.Ack(false); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, start)
	})
}
