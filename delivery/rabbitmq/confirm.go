package rabbitmq

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrUnroutable is matched (errors.Is) by the error of a mandatory publish
// that RabbitMQ returned because no queue was bound for its routing key.
var ErrUnroutable = errors.New("message unroutable")

// ErrNacked is matched by the error of a publish the broker negatively
// confirmed (basic.nack): it did not take responsibility for the message.
var ErrNacked = errors.New("publish nacked by broker")

// UnroutableError is the basic.return of one publish. It matches
// ErrUnroutable.
type UnroutableError struct {
	Exchange   string
	RoutingKey string
	ReplyCode  uint16
	ReplyText  string
}

func (e *UnroutableError) Error() string {
	return fmt.Sprintf("publish to exchange %q with routing key %q: returned by broker (%d %s): %v",
		e.Exchange, e.RoutingKey, e.ReplyCode, e.ReplyText, ErrUnroutable)
}

// Is makes errors.Is(err, ErrUnroutable) hold.
func (e *UnroutableError) Is(target error) bool { return target == ErrUnroutable }

// confirmChannel is one AMQP channel in confirm mode whose publishes the
// owner serializes: one message in flight at a time. RabbitMQ sends the
// basic.return of an unroutable mandatory message before its basic.ack, and
// amqp091-go dispatches both in order on the connection's reader goroutine,
// so with one publish outstanding a return found in the buffer once the ack
// has arrived belongs to that publish and no other.
type confirmChannel struct {
	ch      *amqp.Channel
	returns chan amqp.Return
	closes  chan *amqp.Error
}

func openConfirmChannel(conn *amqp.Connection) (*confirmChannel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	return &confirmChannel{
		ch: ch,
		// Buffered so that the reader goroutine never waits on us; a publish
		// drains stale entries before it sends.
		returns: ch.NotifyReturn(make(chan amqp.Return, 4)),
		closes:  ch.NotifyClose(make(chan *amqp.Error, 1)),
	}, nil
}

func (c *confirmChannel) usable() bool { return c != nil && !c.ch.IsClosed() }

func (c *confirmChannel) close() {
	if c != nil {
		_ = c.ch.Close()
	}
}

// publish sends msg as mandatory and waits for its confirm. The caller must
// not call publish concurrently on the same confirmChannel. When ctx ends
// before the confirm arrives the channel is closed, so that the late
// confirm or return can never be taken for a later publish's; the caller
// opens a new one.
func (c *confirmChannel) publish(ctx context.Context, exchange, key string, msg amqp.Publishing) error {
	for drained := false; !drained; {
		select {
		case <-c.returns:
		default:
			drained = true
		}
	}
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, true, false, msg)
	if err != nil {
		return fmt.Errorf("publish to exchange %q with routing key %q: %w", exchange, key, err)
	}
	select {
	case <-dc.Done():
	case <-ctx.Done():
		c.close()
		return fmt.Errorf("publish to exchange %q with routing key %q: wait for confirm: %w", exchange, key, ctx.Err())
	}
	if !dc.Acked() {
		// A channel exception (e.g. 404 for a missing exchange) closes the
		// channel, and amqp091-go then nacks every pending confirm.
		select {
		case e, ok := <-c.closes:
			if ok && e != nil {
				return fmt.Errorf("publish to exchange %q with routing key %q: channel closed: %w", exchange, key, e)
			}
		default:
		}
		if c.ch.IsClosed() {
			return fmt.Errorf("publish to exchange %q with routing key %q: %w", exchange, key, amqp.ErrClosed)
		}
		return fmt.Errorf("publish to exchange %q with routing key %q: %w", exchange, key, ErrNacked)
	}
	select {
	case r, ok := <-c.returns:
		if ok {
			return &UnroutableError{Exchange: r.Exchange, RoutingKey: r.RoutingKey, ReplyCode: r.ReplyCode, ReplyText: r.ReplyText}
		}
	default:
	}
	return nil
}
