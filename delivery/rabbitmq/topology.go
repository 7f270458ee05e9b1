package rabbitmq

import (
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/delivery"
)

// QueueOptions configure DeclareQueue.
type QueueOptions struct {
	// UseDLX makes RabbitMQ itself dead-letter rejected and expired messages
	// to <queue>.dlq through the default exchange (x-dead-letter-exchange ""
	// and x-dead-letter-routing-key <queue>.dlq). Needed by DLQNative
	// consumers; harmless for DLQExplicit ones, which ack after writing the
	// dead letter themselves.
	UseDLX bool
}

// DeclareQueue declares queue and its dead-letter queue delivery.DLQQueue(queue),
// both durable. RabbitMQ refuses (PRECONDITION_FAILED, closing ch) to
// redeclare an existing queue with other arguments, so a queue first
// declared without UseDLX cannot gain it here: delete it or use a policy.
func DeclareQueue(ch *amqp.Channel, queue string, opts QueueOptions) error {
	if queue == "" {
		return fmt.Errorf("declare queue: name is required")
	}
	dlq := delivery.DLQQueue(queue)
	if _, err := ch.QueueDeclare(dlq, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare queue %s: %w", dlq, err)
	}
	var args amqp.Table
	if opts.UseDLX {
		args = amqp.Table{
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": dlq,
		}
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, args); err != nil {
		return fmt.Errorf("declare queue %s: %w", queue, err)
	}
	return nil
}

// DeclareExchange declares a durable exchange of kind (amqp.ExchangeTopic,
// amqp.ExchangeDirect, ...).
func DeclareExchange(ch *amqp.Channel, exchange, kind string) error {
	if err := ch.ExchangeDeclare(exchange, kind, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", exchange, err)
	}
	return nil
}

// BindQueue binds queue to exchange for bindingKey.
func BindQueue(ch *amqp.Channel, queue, exchange, bindingKey string) error {
	if err := ch.QueueBind(queue, bindingKey, exchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %s to exchange %s with key %q: %w", queue, exchange, bindingKey, err)
	}
	return nil
}

// Route declares a durable exchange of kind, queue with its dead-letter
// queue (see DeclareQueue), and binds queue to the exchange for bindingKey:
// the whole topology of one route, e.g. the "notify" topic exchange to
// notify.email.high with key "notify.email.high".
func Route(ch *amqp.Channel, exchange, kind, queue, bindingKey string, opts QueueOptions) error {
	if err := DeclareExchange(ch, exchange, kind); err != nil {
		return err
	}
	if err := DeclareQueue(ch, queue, opts); err != nil {
		return err
	}
	return BindQueue(ch, queue, exchange, bindingKey)
}
