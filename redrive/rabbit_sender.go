package redrive

import (
	"context"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/delivery"
	"switchyard/delivery/rabbitmq"
)

// RabbitSender sends redrives to one RabbitMQ connection through a
// Publisher: persistent, mandatory, with publisher confirms.
type RabbitSender struct {
	pub *rabbitmq.Publisher
}

var _ Sender = (*RabbitSender)(nil)

// NewRabbitSender returns a sender over pub.
func NewRabbitSender(pub *rabbitmq.Publisher) *RabbitSender {
	return &RabbitSender{pub: pub}
}

// Send publishes every message to its target exchange ("" = the default
// exchange) with the target routing key (the queue), in order, and waits
// for the broker's confirms. Each message gets its own outcome: one that
// no queue takes (the queue was deleted) fails alone with an error
// matching rabbitmq.ErrUnroutable; one not for RabbitMQ fails alone with
// EINVALID. Each message gets a redrive span (see startSpan), recorded
// with pub's Telemetry, whose traceparent it carries.
func (s *RabbitSender) Send(ctx context.Context, msgs []Message) []error {
	errs := make([]error, len(msgs))
	batch := make([]rabbitmq.RawPublishing, 0, len(msgs))
	idx := make([]int, 0, len(msgs))
	tel := s.pub.Telemetry()
	for i := range msgs {
		m := &msgs[i]
		if m.Target.Broker != delivery.BrokerRabbitMQ || m.Target.RoutingKey == "" {
			errs[i] = delivery.Errorf(delivery.EINVALID, "rabbitmq sender: entry %d: target %s is not a RabbitMQ queue", m.EntryID, m.Target.Resource())
			continue
		}
		span, headers := startSpan(ctx, tel, m)
		msg := publishing(m)
		msg.Headers = amqpTable(headers)
		batch = append(batch, rabbitmq.RawPublishing{
			Exchange:   m.Target.Exchange,
			RoutingKey: m.Target.RoutingKey,
			Msg:        msg,
			Span:       span,
		})
		idx = append(idx, i)
	}
	for j, err := range s.pub.PublishRawBatch(ctx, batch) {
		errs[idx[j]] = err
		// The batch ends the spans of messages it sent; one it gave up on
		// before sending (ctx done, publisher closed) ends here.
		endSpan(batch[j].Span, err)
	}
	return errs
}

// publishing is m as an AMQP message.
func publishing(m *Message) amqp.Publishing {
	return amqp.Publishing{
		Headers:       amqpTable(m.Headers),
		ContentType:   m.ContentType,
		DeliveryMode:  amqp.Persistent,
		MessageId:     m.MessageID,
		CorrelationId: m.CorrelationID,
		Type:          m.Type,
		Body:          m.Body,
	}
}

// amqpTable converts headers to an AMQP table: UTF-8 values as strings
// (what consumers of text headers expect), others as byte arrays so that
// no byte is lost. For a key given more than once the last value wins.
func amqpTable(hs delivery.Headers) amqp.Table {
	if len(hs) == 0 {
		return nil
	}
	t := make(amqp.Table, len(hs))
	for _, h := range hs {
		if utf8.Valid(h.Value) {
			t[h.Key] = string(h.Value)
		} else {
			t[h.Key] = h.Value
		}
	}
	return t
}
