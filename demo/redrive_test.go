package demo

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
	"switchyard/internal/testenv"
)

// redrive republishes dl to its origin topic as the console's redrive
// does: the original key and body, the headers without the dead-letter
// ones and with the redrive provenance.
func redrive(t *testing.T, cl *kgo.Client, dl delivery.DeadLetter) {
	t.Helper()
	headers, _, _ := delivery.RedriveHeaders(dl, 1)
	r := &kgo.Record{Topic: dl.Origin.Topic, Key: dl.Key, Value: dl.Payload}
	for _, h := range headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestDemoRedriveHealsTransientFaultsAndFixedOnes is the demo's story of a
// redrive: billing's dead letters of UPSTREAM_TIMEOUT (a gateway down for
// a spell) succeed when redriven after the spell — the invoice is issued —
// while PAYMENT_DECLINED ones fail again, dead-lettered once more with
// their redrive count; once the fix for PAYMENT_DECLINED is deployed, the
// same dead letter redriven again is billed.
func TestDemoRedriveHealsTransientFaultsAndFixedOnes(t *testing.T) {
	const outage = 2 * time.Second
	p, cancel, done := startWith(t, Options{DataDir: t.TempDir(), Rate: 300, FailureRate: 4, Outage: outage})
	defer stopDemo(t, p, cancel, done)
	start := time.Now()
	cl := testenv.KafkaClient(t, p.KafkaBrokers())

	// consume reads topic from the records written since `since` until
	// match says it has what it looks for.
	consume := func(what, topic string, since time.Time, match func(*kgo.Record) bool) {
		t.Helper()
		c := testenv.KafkaClient(t, p.KafkaBrokers(), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(since.Add(-time.Millisecond).UnixMilli())))
		found := false
		testenv.WaitWithin(t, 60*time.Second, what, func() bool {
			pctx, pcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer pcancel()
			c.PollFetches(pctx).EachRecord(func(r *kgo.Record) { found = found || match(r) })
			return found
		})
	}
	decode := func(r *kgo.Record) delivery.DeadLetter {
		return delivery.Decode(delivery.Message{Key: r.Key, Headers: kafkaHeaders(r), Body: r.Value, Timestamp: r.Timestamp})
	}
	invoiced := func(orderID string) func(*kgo.Record) bool {
		return func(r *kgo.Record) bool {
			env, err := delivery.ParseEnvelope(r.Value)
			var inv struct {
				OrderID string `json:"order_id"`
			}
			return err == nil && json.Unmarshal(env.Payload, &inv) == nil && inv.OrderID == orderID
		}
	}
	orderOf := func(dl delivery.DeadLetter) string {
		var o Order
		if dl.Envelope == nil || json.Unmarshal(dl.Envelope.Payload, &o) != nil {
			t.Fatalf("dead letter without an order: %+v", dl)
		}
		return o.OrderID
	}

	// Billing's first dead letter of each kind.
	dead := map[string]delivery.DeadLetter{}
	consume("billing's dead letters of UPSTREAM_TIMEOUT and PAYMENT_DECLINED", delivery.DLQTopic(TopicOrders), start, func(r *kgo.Record) bool {
		dl := decode(r)
		if _, ok := dead[dl.Error.Code]; !ok && dl.Origin.ConsumerGroup == GroupBilling {
			dead[dl.Error.Code] = dl
		}
		return dead[CodeUpstreamTimeout].Envelope != nil && dead[CodePaymentDeclined].Envelope != nil
	})
	timeout, declined := dead[CodeUpstreamTimeout], dead[CodePaymentDeclined]
	if timeout.Attempts != 3 {
		t.Errorf("UPSTREAM_TIMEOUT dead-lettered after %d attempts, want all 3: it is retried", timeout.Attempts)
	}

	// After the spell, the timeout's redrive is billed; the declined card
	// fails again.
	occurred, err := time.Parse(time.RFC3339Nano, timeout.Envelope.OccurredAt)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitWithin(t, 10*time.Second, "the gateway's spell to end", func() bool { return time.Since(occurred) > outage })
	at := time.Now()
	redrive(t, cl, timeout)
	redrive(t, cl, declined)
	consume("the invoice of the redriven UPSTREAM_TIMEOUT order", TopicInvoices, at, invoiced(orderOf(timeout)))
	consume("the redriven PAYMENT_DECLINED order dead-lettered again", delivery.DLQTopic(TopicOrders), at, func(r *kgo.Record) bool {
		dl := decode(r)
		if dl.Envelope == nil || dl.Envelope.ID != declined.Envelope.ID {
			return false
		}
		if dl.Error.Code != CodePaymentDeclined || dl.RedriveCount != 1 {
			t.Errorf("the redriven declined order came back as %s, redrive count %d; want PAYMENT_DECLINED, 1", dl.Error.Code, dl.RedriveCount)
		}
		return true
	})

	// Deploy the fix: the same dead letter redriven again is billed.
	if err := p.Fixes().Fix(CodePaymentDeclined, true); err != nil {
		t.Fatal(err)
	}
	at = time.Now()
	redrive(t, cl, declined)
	consume("the invoice of the PAYMENT_DECLINED order redriven after its fix", TopicInvoices, at, invoiced(orderOf(declined)))
}
