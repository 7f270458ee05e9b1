package testenv

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RabbitChannel dials amqpURL (from RabbitURL or RabbitVHost) and opens a
// channel; both are closed when the test ends.
func RabbitChannel(t testing.TB, amqpURL string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatalf("dial rabbitmq: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	return ch
}

// DeclareQueue declares a durable queue with args on ch and deletes it when
// the test ends, over a connection of its own to amqpURL (ch may be closed
// by then: a channel exception closes it).
func DeclareQueue(t testing.TB, ch *amqp.Channel, amqpURL, name string, args amqp.Table) {
	t.Helper()
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		t.Fatalf("declare %s: %v", name, err)
	}
	t.Cleanup(func() {
		if c, err := amqp.Dial(amqpURL); err == nil {
			if dch, err := c.Channel(); err == nil {
				dch.QueueDelete(name, false, false, false) //nolint:errcheck // best effort
			}
			c.Close()
		}
	})
}

// Publish sends p to queue through the default exchange.
func Publish(t testing.TB, ch *amqp.Channel, queue string, p amqp.Publishing) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ch.PublishWithContext(ctx, "", queue, false, false, p); err != nil {
		t.Fatalf("publish to %s: %v", queue, err)
	}
}
