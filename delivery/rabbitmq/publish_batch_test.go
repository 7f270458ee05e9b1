package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/internal/testenv"
)

func rawMsg(q, id string, body string) RawPublishing {
	return RawPublishing{RoutingKey: q, Msg: amqp.Publishing{MessageId: id, DeliveryMode: amqp.Persistent, Body: []byte(body)}}
}

// TestPublishRawBatchUnroutableFailsAlone sends more messages than fit in
// flight, every seventh to a queue that does not exist: exactly those fail
// as unroutable, and the queue receives all the others, in order.
func TestPublishRawBatchUnroutableFailsAlone(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	missing := "swtest-missing-" + randomSuffix()
	p := newTestPublisher(t, b.url, nil)

	const n = 2*maxInFlight + 37
	msgs := make([]RawPublishing, n)
	var want []string
	for i := range msgs {
		id := fmt.Sprintf("m%04d", i)
		if i%7 == 3 {
			// Same id and body as a routable neighbour: only the route
			// tells them apart.
			msgs[i] = rawMsg(missing, fmt.Sprintf("m%04d", i-1), fmt.Sprintf("body %d", i-1))
			continue
		}
		msgs[i] = rawMsg(q, id, fmt.Sprintf("body %d", i))
		want = append(want, id)
	}
	errs := p.PublishRawBatch(context.Background(), msgs)
	if len(errs) != n {
		t.Fatalf("got %d errors, want %d", len(errs), n)
	}
	for i, err := range errs {
		if i%7 == 3 {
			var ue *UnroutableError
			if !errors.As(err, &ue) || ue.RoutingKey != missing || ue.ReplyCode != amqp.NoRoute {
				t.Errorf("message %d to a missing queue: got %v, want an UnroutableError for %s", i, err, missing)
			}
			continue
		}
		if err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	testenv.WaitFor(t, fmt.Sprintf("%d messages in %s", len(want), q), func() bool { m, _ := b.inspect(q); return m == len(want) })
	for i, id := range want {
		d, ok := b.get(q)
		if !ok || d.MessageId != id {
			t.Fatalf("message %d in the queue: %q (present %v), want %q", i, d.MessageId, ok, id)
		}
	}

	// The returns of the batch are not blamed on a publish after it.
	if err := p.PublishRaw(context.Background(), "", q, amqp.Publishing{MessageId: "after", Body: []byte("x")}); err != nil {
		t.Errorf("publish after the batch: %v", err)
	}
}

// TestPublishRawBatchMissingExchange: a channel exception fails the message
// that caused it (and whatever was in flight with it); what did succeed is
// in the queue, and the publisher goes on with a new channel.
func TestPublishRawBatchMissingExchange(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	msgs := []RawPublishing{rawMsg(q, "a", "a"), {Exchange: "swtest-missing-" + randomSuffix(), RoutingKey: q, Msg: amqp.Publishing{MessageId: "bad"}}}
	for i := range 20 {
		msgs = append(msgs, rawMsg(q, fmt.Sprint("c", i), "c"))
	}
	errs := p.PublishRawBatch(context.Background(), msgs)
	var ae *amqp.Error
	if !errors.As(errs[1], &ae) || ae.Code != amqp.NotFound {
		t.Errorf("message to the missing exchange: got %v, want a 404 channel exception", errs[1])
	}
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		}
	}
	// Messages after the exception are discarded by the broker; one before
	// it may have been stored and not confirmed, so the queue holds at
	// least the confirmed ones.
	if m, _ := b.inspect(q); m < ok {
		t.Errorf("queue holds %d messages, %d were confirmed", m, ok)
	}
	again := p.PublishRawBatch(context.Background(), []RawPublishing{rawMsg(q, "d", "d")})
	if again[0] != nil {
		t.Errorf("batch after the channel exception: %v", again[0])
	}
}

func TestPublishRawBatchAfterClose(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	p := newTestPublisher(t, b.url, nil)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for i, err := range p.PublishRawBatch(context.Background(), []RawPublishing{rawMsg("q", "a", "a"), rawMsg("q", "b", "b")}) {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("message %d: got %v, want ErrClosed", i, err)
		}
	}
}

func TestPublishRawBatchCancelled(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, err := range p.PublishRawBatch(ctx, []RawPublishing{rawMsg(q, "a", "a"), rawMsg(q, "b", "b")}) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("message %d: got %v, want context.Canceled", i, err)
		}
	}
	if m, _ := b.inspect(q); m != 0 {
		t.Errorf("queue holds %d messages after a cancelled batch, want 0", m)
	}
}
