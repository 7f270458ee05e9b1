package redrive

import (
	"context"

	"switchyard/access"
	"switchyard/delivery"
)

// Target is where one message is published.
type Target struct {
	Broker  string `json:"broker"`  // delivery.BrokerKafka or delivery.BrokerRabbitMQ
	Cluster string `json:"cluster"` // Kafka cluster name; RabbitMQ: the connection's name
	Topic   string `json:"topic,omitempty"`
	// RabbitMQ: the queue is reached through the default exchange ("")
	// with the queue name as routing key, so a redrive reaches exactly the
	// queue that failed and not every queue bound to the original exchange.
	VHost      string `json:"vhost,omitempty"`
	Exchange   string `json:"exchange,omitempty"`    // always "" for now
	RoutingKey string `json:"routing_key,omitempty"` // the queue`
}

// Resource is the access-policy name of the target (kafka:<cluster>/<topic>
// or rabbitmq:<vhost>/<queue>).
func (t Target) Resource() string {
	if t.Broker == delivery.BrokerRabbitMQ {
		return access.RabbitQueue(t.VHost, t.RoutingKey).Name
	}
	return access.KafkaTopic(t.Cluster, t.Topic).Name
}

// Message is one dead letter to publish again.
type Message struct {
	EntryID int64
	Target  Target
	Key     []byte // Kafka record key: the original one, so per-key order holds
	Headers delivery.Headers
	Body    []byte
	// RabbitMQ properties.
	MessageID, CorrelationID, ContentType, Type string
}

// Sender publishes messages to one broker cluster. Send returns one error
// per message, in order: nil only once the broker acknowledged that
// message (Kafka acks=all through the idempotent producer; RabbitMQ
// publisher confirm, mandatory routing). Messages to one Kafka partition
// are written in the order given.
type Sender interface {
	Send(ctx context.Context, msgs []Message) []error
}
