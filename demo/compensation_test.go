package demo

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
)

// readUntil reads topic from the start until done holds for the records
// read so far, failing the test at the deadline.
func readUntil(t *testing.T, brokers []string, topic string, within time.Duration, done func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var out []*kgo.Record
	for !done(out) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %d records within %s, not what was waited for", topic, len(out), within)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func envelopeOf(t *testing.T, r *kgo.Record) delivery.Envelope {
	t.Helper()
	env, err := delivery.ParseEnvelope(r.Value)
	if err != nil {
		t.Fatalf("%s@%d: %v", r.Topic, r.Offset, err)
	}
	return env
}

func traceOf(r *kgo.Record) string {
	tp := delivery.Headers(kafkaHeaders(r)).String(delivery.HeaderTraceparent)
	parts := strings.Split(tp, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}

// TestDemoDeclinedPaymentCancelsTheOrder: a declined payment leads to
// billing's billing.payment.declined.v1 and the orders service's
// compensating orders.order.cancelled.v1, both with the order's
// correlation id and in the order's trace, while the order itself is
// dead-lettered as PAYMENT_DECLINED.
func TestDemoDeclinedPaymentCancelsTheOrder(t *testing.T) {
	p, cancel, done := startDemo(t, t.TempDir(), 400, 4)
	defer stopDemo(t, p, cancel, done)
	brokers := p.KafkaBrokers()

	cancelled := readUntil(t, brokers, TopicOrderCancelled, 90*time.Second, func(rs []*kgo.Record) bool { return len(rs) >= 1 })[0]
	cenv := envelopeOf(t, cancelled)
	if cenv.Type != TopicOrderCancelled || cenv.Source != ServiceOrders {
		t.Errorf("cancellation type %q source %q, want %s from %s", cenv.Type, cenv.Source, TopicOrderCancelled, ServiceOrders)
	}
	var c Cancelled
	if err := json.Unmarshal(cenv.Payload, &c); err != nil || c.OrderID == "" || c.Reason != CodePaymentDeclined {
		t.Fatalf("cancellation payload %s: want an order id and reason %s", cenv.Payload, CodePaymentDeclined)
	}

	corr := cenv.CorrelationID
	var order, declined *kgo.Record
	readUntil(t, brokers, TopicOrders, 30*time.Second, func(rs []*kgo.Record) bool {
		for _, r := range rs {
			if env, err := delivery.ParseEnvelope(r.Value); err == nil && env.CorrelationID == corr {
				order = r
				return true
			}
		}
		return false
	})
	readUntil(t, brokers, TopicPaymentDeclined, 30*time.Second, func(rs []*kgo.Record) bool {
		for _, r := range rs {
			if env, err := delivery.ParseEnvelope(r.Value); err == nil && env.CorrelationID == corr {
				declined = r
				return true
			}
		}
		return false
	})
	oenv, denv := envelopeOf(t, order), envelopeOf(t, declined)
	var o Order
	if err := json.Unmarshal(oenv.Payload, &o); err != nil || o.OrderID != c.OrderID {
		t.Errorf("order %s (correlation %s) is not the cancelled order %s", o.OrderID, corr, c.OrderID)
	}
	if oenv.CorrelationID != oenv.ID {
		t.Errorf("order correlation id %q, want its own id %q (the saga starts with it)", oenv.CorrelationID, oenv.ID)
	}
	if denv.Type != TopicPaymentDeclined || denv.Source != ServiceBilling {
		t.Errorf("decline type %q source %q", denv.Type, denv.Source)
	}
	if tr := traceOf(order); tr == "" || traceOf(declined) != tr || traceOf(cancelled) != tr {
		t.Errorf("traces: order %s, decline %s, cancellation %s; want one story", tr, traceOf(declined), traceOf(cancelled))
	}

	// The order itself is dead-lettered by billing with the decline.
	readUntil(t, brokers, delivery.DLQTopic(TopicOrders), 30*time.Second, func(rs []*kgo.Record) bool {
		for _, r := range rs {
			dl := delivery.Decode(delivery.Message{Headers: kafkaHeaders(r), Body: r.Value, Timestamp: r.Timestamp})
			if dl.Envelope != nil && dl.Envelope.CorrelationID == corr {
				if dl.Error.Code != CodePaymentDeclined {
					t.Errorf("dead letter of the declined order has code %s", dl.Error.Code)
				}
				return true
			}
		}
		return false
	})
}
