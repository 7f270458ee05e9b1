package rabbitmq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

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
//
// publishBatch keeps up to maxInFlight publishes outstanding instead, and
// matches returns to publishes by content (see there).
type confirmChannel struct {
	ch      *amqp.Channel
	returns chan amqp.Return
	closes  chan *amqp.Error
	// closeErr is the channel exception once read from closes, so that
	// every publish it failed can name it.
	closeErr *amqp.Error
}

// maxInFlight bounds the unconfirmed publishes of a batch. The returns
// buffer holds as many, because amqp091-go drops a return it cannot hand
// over within 5 s, and a dropped return would turn an unroutable message
// into a success.
const maxInFlight = 256

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
		returns: ch.NotifyReturn(make(chan amqp.Return, maxInFlight)),
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
		return c.nackError(exchange, key)
	}
	select {
	case r, ok := <-c.returns:
		if ok {
			return unroutable(r)
		}
	default:
	}
	return nil
}

// nackError explains a publish that was not acked. A channel exception
// (e.g. 404 for a missing exchange) closes the channel, and amqp091-go then
// nacks every pending confirm.
func (c *confirmChannel) nackError(exchange, key string) error {
	if c.closeErr == nil {
		select {
		case e, ok := <-c.closes:
			if ok && e != nil {
				c.closeErr = e
			}
		default:
		}
	}
	if c.closeErr != nil {
		return fmt.Errorf("publish to exchange %q with routing key %q: channel closed: %w", exchange, key, c.closeErr)
	}
	if c.ch.IsClosed() {
		return fmt.Errorf("publish to exchange %q with routing key %q: %w", exchange, key, amqp.ErrClosed)
	}
	return fmt.Errorf("publish to exchange %q with routing key %q: %w", exchange, key, ErrNacked)
}

func unroutable(r amqp.Return) error {
	return &UnroutableError{Exchange: r.Exchange, RoutingKey: r.RoutingKey, ReplyCode: r.ReplyCode, ReplyText: r.ReplyText}
}

// batchItem is one written publish of a batch.
type batchItem struct {
	dc       *amqp.DeferredConfirmation
	returned *amqp.Return
	end      func(error) // ends its span
}

// publishBatch publishes msgs in order as mandatory with up to maxInFlight
// unconfirmed at a time, and writes each message's outcome into errs as
// publish would return it. The caller must not use the channel
// concurrently. It returns how many messages it settled, from the first:
// all of them, or fewer when writing failed (werr says why; typically the
// channel closed), in which case the caller goes on with the rest on a new
// channel. Every message it settles was written, except when ctx ends or
// no confirm arrives within timeout: then the channel is closed and every
// remaining message fails.
//
// Matching returns: basic.return carries no delivery tag, but RabbitMQ
// sends the returns of one channel in publish order, each before the ack of
// its message, and amqp091-go hands both over from one goroutine in that
// order. So when a publish's confirm is done its return, if any, is
// already buffered, and a return belongs to the first publish after the
// previous return's that has the same exchange, routing key, message id,
// correlation id and body. Only such identical messages to one route could
// be confused, and they then succeed or fail alike unless the route changed
// while they were in flight.
func (c *confirmChannel) publishBatch(ctx context.Context, msgs []RawPublishing, errs []error, timeout time.Duration,
	start func(m *RawPublishing) func(error)) (settled int, werr error) {
	for drained := false; !drained; {
		select {
		case <-c.returns:
		default:
			drained = true
		}
	}
	items := make([]batchItem, 0, min(len(msgs), 1024))
	cursor := 0 // returns match at or after this index
	match := func(r amqp.Return) {
		for j := cursor; j < len(items); j++ {
			m := &msgs[j].Msg
			if items[j].returned == nil && r.Exchange == msgs[j].Exchange && r.RoutingKey == msgs[j].RoutingKey &&
				r.MessageId == m.MessageId && r.CorrelationId == m.CorrelationId && bytes.Equal(r.Body, m.Body) {
				items[j].returned = &r
				cursor = j + 1
				return
			}
		}
	}
	drain := func() {
		for {
			select {
			case r, ok := <-c.returns:
				if !ok {
					return
				}
				match(r)
			default:
				return
			}
		}
	}
	settle := func(j int) {
		it, m := &items[j], &msgs[j]
		switch {
		case it.returned != nil:
			errs[j] = unroutable(*it.returned)
		case !it.dc.Acked():
			errs[j] = c.nackError(m.Exchange, m.RoutingKey)
		default:
			errs[j] = nil
		}
		it.end(errs[j])
	}
	abort := func(from int, err error) int {
		if from < len(items) {
			c.close() // late confirms and returns must not reach a later publish
		}
		for j := from; j < len(msgs); j++ {
			m := &msgs[j]
			errs[j] = fmt.Errorf("publish to exchange %q with routing key %q: %w", m.Exchange, m.RoutingKey, err)
			if j < len(items) {
				items[j].end(errs[j])
			}
		}
		return len(msgs)
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	returns := (<-chan amqp.Return)(c.returns)
	for settled < len(msgs) {
		if werr == nil && len(items) < len(msgs) && len(items)-settled < maxInFlight {
			if err := ctx.Err(); err != nil {
				return abort(settled, err), nil
			}
			m := &msgs[len(items)]
			end := start(m)
			dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, m.Exchange, m.RoutingKey, true, false, m.Msg)
			if err != nil {
				werr = fmt.Errorf("publish to exchange %q with routing key %q: %w", m.Exchange, m.RoutingKey, err)
				end(werr)
				continue
			}
			items = append(items, batchItem{dc: dc, end: end})
			continue
		}
		if settled == len(items) {
			break // writing stopped and everything written is settled
		}
		select {
		case <-items[settled].dc.Done():
			drain() // the return of this publish, if any, is buffered by now
			settle(settled)
			settled++
			timer.Reset(timeout) // Go 1.23+: no stale fire to drain
		case r, ok := <-returns:
			if !ok {
				returns = nil // the channel closed; its confirms are all nacked
				continue
			}
			match(r)
		case <-ctx.Done():
			return abort(settled, fmt.Errorf("wait for confirm: %w", ctx.Err())), nil
		case <-timer.C:
			return abort(settled, fmt.Errorf("wait for confirm: %w", context.DeadlineExceeded)), nil
		}
	}
	return settled, werr
}
