package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
	"switchyard/delivery/kafka"
	"switchyard/delivery/rabbitmq"
)

// Order is the payload of orders.order.created.v1.
type Order struct {
	OrderID  string  `json:"order_id"`
	Customer string  `json:"customer"`
	Email    string  `json:"email"`
	Amount   float64 `json:"amount"`
	Currency string  `json:"currency"`
	Items    int     `json:"items"`
}

var (
	tenants    = []string{"acme", "globex", "initech", "umbrella"}
	currencies = []string{"EUR", "EUR", "USD", "USD", "GBP"}
)

// runOrders publishes orders at Options.Rate through the delivery
// publisher. About one in 500 records is a poison pill written raw (a
// truncated envelope, or one without a tenant), as a buggy producer would.
func (p *Platform) runOrders(ctx context.Context) error {
	pub, err := kafka.NewPublisher(kafka.PublisherOptions{
		Brokers: p.KafkaBrokers(), ClientID: ServiceOrders, Telemetry: p.telemetry[ServiceOrders], Cluster: ClusterName, Logger: p.opts.Logger,
	})
	if err != nil {
		return err
	}
	defer pub.Close()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	tick := time.NewTicker(time.Duration(float64(time.Second) / p.opts.Rate))
	defer tick.Stop()
	tracer := p.telemetry[ServiceOrders].Tracer()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		tenant := tenants[rng.IntN(len(tenants))]
		customer := fmt.Sprintf("cust-%04d", rng.IntN(2000))
		order := Order{
			OrderID:  fmt.Sprintf("ord-%d-%06d", time.Now().Unix(), n%1000000),
			Customer: customer,
			Email:    customer + "@" + tenant + ".example",
			Amount:   float64(rng.IntN(50000)) / 100,
			Currency: currencies[rng.IntN(len(currencies))],
			Items:    1 + rng.IntN(6),
		}
		if rng.IntN(500) == 0 {
			if err := pub.PublishRecord(ctx, poisonRecord(rng, order, tenant)); err != nil && ctx.Err() == nil {
				p.opts.Logger.Warn("orders: publish poison pill", "error", err)
			}
			continue
		}
		env, err := delivery.NewEnvelope(TopicOrders, ServiceOrders, order, delivery.Metadata{PartitionKey: order.Customer, TenantID: tenant})
		if err != nil {
			return err
		}
		sctx, span := tracer.Start(ctx, "create order")
		pub.PublishAsync(sctx, TopicOrders, env, nil, func(_ *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				p.opts.Logger.Warn("orders: publish", "error", err)
			}
		})
		span.End()
	}
}

// poisonRecord is a record the consumers cannot use: undecodable bytes or an
// envelope that breaks the schema.
func poisonRecord(rng *rand.Rand, o Order, tenant string) *kgo.Record {
	r := &kgo.Record{Topic: TopicOrders, Key: []byte(o.Customer)}
	if rng.IntN(2) == 0 {
		r.Value = []byte(fmt.Sprintf(`{"id":"%s","type":"orders.order.created.v1","payload":{"order_id":"%s","amount":`, o.OrderID, o.OrderID))
	} else {
		env, _ := delivery.NewEnvelope(eventPoisonOrder, ServiceOrders, o, delivery.Metadata{PartitionKey: o.Customer})
		b, _ := json.Marshal(env)
		r.Value = b
	}
	r.Headers = []kgo.RecordHeader{{Key: delivery.HeaderTenantID, Value: []byte(tenant)}}
	return r
}

// billingFault decides whether and how billing fails an order. Which fault
// an order meets is decided by its id alone, so that the consumer's
// retries and later redrives agree; whether the fault still bites is
// decided by attempt, time and the deployed fixes:
//
//   - UPSTREAM_TIMEOUT is transient: the payment gateway is down for the
//     order for a spell (outage) from the moment it was placed. Half of
//     these orders get through on the consumer's own retry; the rest
//     outlast the retries and are dead-lettered, and a redrive once the
//     spell is over succeeds.
//   - PAYMENT_DECLINED, CURRENCY_UNSUPPORTED and the panic of a real bug
//     are permanent: every redrive fails again until their fix is
//     deployed.
//
// A deployed fix stops its code from failing at all. age is how long ago
// the order was placed.
func billingFault(id string, scale float64, attempt int, age, outage time.Duration, fixes *Fixes) error {
	h := fnv.New32a()
	h.Write([]byte(id))
	bucket := float64(h.Sum32()%10000) / 100 // 0..99.99 percent
	switch {
	case bucket < 1.2*scale:
		if fixes.IsFixed(CodePaymentDeclined) {
			return nil
		}
		return delivery.Permanent(delivery.Errorf(CodePaymentDeclined, "card declined by issuer for order %s (decline code %d)", id, 51+int(bucket*10)%5))
	case bucket < 2.0*scale:
		blip := int(bucket*100)%2 == 0 // a blip a retry gets past
		if fixes.IsFixed(CodeUpstreamTimeout) || (blip && attempt >= 2) || (!blip && age >= outage) {
			return nil
		}
		return delivery.Errorf(CodeUpstreamTimeout, "payment gateway did not answer within %dms", 2500+int(bucket*1000)%500)
	case bucket < 2.6*scale:
		if fixes.IsFixed(CodeCurrencyUnsupported) {
			return nil
		}
		return delivery.Permanent(&delivery.Error{Code: CodeCurrencyUnsupported, Message: fmt.Sprintf("currency '%s' is not enabled for this merchant", []string{"JPY", "CHF", "SEK"}[int(bucket*100)%3]), Details: map[string]any{"field": "currency"}})
	case bucket < 2.8*scale:
		if fixes.IsFixed(delivery.CodeHandlerPanic) {
			return nil
		}
		var ledger map[string]float64
		ledger[id] = 1 // a real bug: assignment to a nil map panics
	}
	return nil
}

// age is how long before now env occurred; an occurred_at that does not
// parse counts as long ago, so no outage holds it back.
func age(env delivery.Envelope, now time.Time) time.Duration {
	at, err := time.Parse(time.RFC3339Nano, env.OccurredAt)
	if err != nil {
		return time.Duration(math.MaxInt64)
	}
	return now.Sub(at)
}

// runBilling consumes orders as group "billing", fails a few percent, and on
// success issues an invoice (Kafka) and, when RabbitMQ is on, asks the
// notification service to send an e-mail.
func (p *Platform) runBilling(ctx context.Context) error {
	pub, err := kafka.NewPublisher(kafka.PublisherOptions{
		Brokers: p.KafkaBrokers(), ClientID: ServiceBilling, Telemetry: p.telemetry[ServiceBilling], Cluster: ClusterName, Logger: p.opts.Logger,
	})
	if err != nil {
		return err
	}
	defer pub.Close()
	var notify *rabbitmq.Publisher
	if p.rabbitOK {
		notify, err = rabbitmq.NewPublisher(rabbitmq.PublisherOptions{URL: p.opts.RabbitURL, Telemetry: p.telemetry[ServiceBilling], Logger: p.opts.Logger})
		if err != nil {
			p.opts.Logger.Warn("billing: notifications off", "error", err)
			notify = nil
		} else {
			defer notify.Close()
		}
	}
	c, err := kafka.NewConsumer(kafka.ConsumerOptions{
		Brokers: p.KafkaBrokers(), Group: GroupBilling, Topics: []string{TopicOrders},
		Retry: p.opts.Retry, Telemetry: p.telemetry[ServiceBilling], Cluster: ClusterName, Service: ServiceBilling,
		Idempotency: p.keyStore(), Logger: p.opts.Logger, Opts: fetchBounds(),
		Handler: func(ctx context.Context, d *kafka.Delivery) error {
			if err := billingFault(d.Envelope.ID, p.opts.FailureRate, d.Attempt, age(d.Envelope, time.Now()), p.opts.Outage, p.fixes); err != nil {
				if delivery.ErrorInfoOf(err).Code == CodePaymentDeclined {
					if perr := publishDeclined(ctx, pub, d.Envelope, err); perr != nil {
						return perr // retried: the decline must be told before the order is given up
					}
				}
				return err
			}
			var o Order
			if err := json.Unmarshal(d.Envelope.Payload, &o); err != nil {
				return delivery.Permanent(delivery.Errorf(delivery.CodeValidationFailed, "order payload: %v", err))
			}
			inv, err := delivery.NewEnvelope(TopicInvoices, ServiceBilling, map[string]any{
				"invoice_id": "inv-" + o.OrderID, "order_id": o.OrderID, "amount": o.Amount, "currency": o.Currency,
			}, d.Envelope.Metadata)
			if err != nil {
				return err
			}
			inv.CorrelationID = d.Envelope.CorrelationID
			if err := pub.Publish(ctx, TopicInvoices, inv, nil); err != nil {
				return fmt.Errorf("issue invoice: %w", err)
			}
			if notify != nil && hashPercent(o.OrderID) < 25 {
				mail, err := delivery.NewEnvelope(EventEmailRequested, ServiceBilling, map[string]any{
					"to": o.Email, "template": "invoice", "invoice_id": "inv-" + o.OrderID,
				}, d.Envelope.Metadata)
				if err != nil {
					return err
				}
				mail.CorrelationID = d.Envelope.CorrelationID
				if err := notify.Publish(ctx, "", QueueNotify, mail, nil); err != nil {
					return fmt.Errorf("request e-mail: %w", err)
				}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// runAnalytics consumes orders as group "analytics", too slowly for a few
// minutes and then fast enough to catch up, so lag builds and drains in a
// visible saw-tooth.
func (p *Platform) runAnalytics(ctx context.Context) error {
	period := func(now time.Time) float64 {
		// 4-minute cycle: 3 minutes at 60% of the producer rate, 1 at 300%.
		if now.Unix()%240 < 180 {
			return p.opts.Rate * 0.6
		}
		return p.opts.Rate * 3
	}
	var next time.Time
	c, err := kafka.NewConsumer(kafka.ConsumerOptions{
		Brokers: p.KafkaBrokers(), Group: GroupAnalytics, Topics: []string{TopicOrders},
		Retry: p.opts.Retry, Telemetry: p.telemetry[ServiceAnalytics], Cluster: ClusterName, Service: ServiceAnalytics,
		Logger: p.opts.Logger, Opts: fetchBounds(),
		Handler: func(ctx context.Context, _ *kafka.Delivery) error {
			now := time.Now()
			if next.Before(now) {
				next = now
			}
			next = next.Add(time.Duration(float64(time.Second) / period(now)))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Until(next)):
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// runNotify is the notification service on notify.email.high: about 5% of
// e-mails fail, and those are dead-lettered to notify.email.high.dlq with
// their error. A rejected address (SMTP_REJECTED) fails until its fix is
// deployed; the flaky SMTP relay (SMTP_TIMEOUT) lets half of its e-mails
// through on a retry and holds the others back for Options.Outage, like
// billing's gateway.
func (p *Platform) runNotify(ctx context.Context) error {
	if err := declareNotify(p.opts.RabbitURL); err != nil {
		return err
	}
	c, err := rabbitmq.NewConsumer(rabbitmq.ConsumerOptions{
		URL: p.opts.RabbitURL, Queue: QueueNotify, Retry: p.opts.Retry, Telemetry: p.telemetry[ServiceNotify],
		Cluster: "local", Service: ServiceNotify, Idempotency: p.keyStore(), Logger: p.opts.Logger,
		Handler: func(_ context.Context, d *rabbitmq.Delivery) error {
			switch pc := hashPercent(d.Envelope.ID); {
			case pc < 3 && !p.fixes.IsFixed(CodeSMTPRejected):
				return delivery.Permanent(&delivery.Error{Code: CodeSMTPRejected, Message: "550 5.1.1 mailbox unavailable", Details: map[string]any{"smtp_code": 550}})
			case pc == 3 && d.Attempt < 2, pc == 4 && age(d.Envelope, time.Now()) < p.opts.Outage:
				if !p.fixes.IsFixed(CodeSMTPTimeout) {
					return delivery.Errorf(CodeSMTPTimeout, "relay smtp-%d.mail.internal timed out", 1+pc%3)
				}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

func declareNotify(url string) error {
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return fmt.Errorf("rabbitmq: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitmq channel: %w", err)
	}
	defer ch.Close()
	if err := rabbitmq.DeclareQueue(ch, QueueNotify, rabbitmq.QueueOptions{UseDLX: true}); err != nil {
		return fmt.Errorf("declare %s: %w", QueueNotify, err)
	}
	return nil
}

func hashPercent(s string) int {
	h := fnv.New32a()
	h.Write([]byte(s))
	return int(h.Sum32() % 100)
}

// The payment saga. A declined payment is not only billing's failure:
// the order it belongs to must be undone. Billing, which alone knows the
// payment was declined, tells so with billing.payment.declined.v1 on
// TopicPaymentDeclined before it gives the order up (the order itself
// still fails for good and is dead-lettered, so an operator sees it); the
// orders service, which owns orders, consumes that event as group
// GroupOrders and publishes the compensating orders.order.cancelled.v1 on
// TopicOrderCancelled. Both carry the order's correlation id, and each is
// published inside the handling attempt that caused it, so the decline
// and the cancellation continue the order's trace: one story from the
// order through the failed payment to its compensation.
//
// Their event ids are derived from the event they answer (a name-based
// UUID), so that a retry or a redrive of a declined order publishes the
// same decline again, and the orders service's idempotency store cancels
// the order once.

// Declined is the payload of billing.payment.declined.v1.
type Declined struct {
	OrderID string `json:"order_id"`
	Code    string `json:"code"`
	Reason  string `json:"reason"`
}

// Cancelled is the payload of orders.order.cancelled.v1.
type Cancelled struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// derivedEnvelope returns an envelope answering cause: a name-based id
// (the same for the same cause and type), cause's correlation id and
// metadata.
func derivedEnvelope(cause delivery.Envelope, eventType, source string, payload any) (delivery.Envelope, error) {
	env, err := delivery.NewEnvelope(eventType, source, payload, cause.Metadata)
	if err != nil {
		return delivery.Envelope{}, err
	}
	env.ID = uuid.NewSHA1(uuid.NameSpaceOID, []byte(eventType+"/"+cause.ID)).String()
	env.CorrelationID = cause.CorrelationID
	return env, nil
}

// publishDeclined publishes billing's decline of order's payment.
func publishDeclined(ctx context.Context, pub *kafka.Publisher, order delivery.Envelope, decline error) error {
	var o Order
	if err := json.Unmarshal(order.Payload, &o); err != nil {
		return nil // nothing to compensate: the order is unreadable and dead-lettered as such
	}
	info := delivery.ErrorInfoOf(decline)
	env, err := derivedEnvelope(order, TopicPaymentDeclined, ServiceBilling, Declined{OrderID: o.OrderID, Code: info.Code, Reason: info.Message})
	if err != nil {
		return err
	}
	if err := pub.Publish(ctx, TopicPaymentDeclined, env, nil); err != nil {
		return fmt.Errorf("publish payment declined: %w", err)
	}
	return nil
}

// runOrderSaga is the orders service's side of the saga: it cancels the
// order of every declined payment.
func (p *Platform) runOrderSaga(ctx context.Context) error {
	tel := p.telemetry[ServiceOrders]
	pub, err := kafka.NewPublisher(kafka.PublisherOptions{
		Brokers: p.KafkaBrokers(), ClientID: ServiceOrders + "-saga", Telemetry: tel, Cluster: ClusterName, Logger: p.opts.Logger,
	})
	if err != nil {
		return err
	}
	defer pub.Close()
	c, err := kafka.NewConsumer(kafka.ConsumerOptions{
		Brokers: p.KafkaBrokers(), Group: GroupOrders, Topics: []string{TopicPaymentDeclined},
		Retry: p.opts.Retry, Telemetry: tel, Cluster: ClusterName, Service: ServiceOrders,
		Idempotency: p.keyStore(), Logger: p.opts.Logger, Opts: fetchBounds(),
		Handler: func(ctx context.Context, d *kafka.Delivery) error {
			var dec Declined
			if err := json.Unmarshal(d.Envelope.Payload, &dec); err != nil || dec.OrderID == "" {
				return delivery.Permanent(delivery.Errorf(delivery.CodeValidationFailed, "payment declined payload: no order id"))
			}
			env, err := derivedEnvelope(d.Envelope, TopicOrderCancelled, ServiceOrders, Cancelled{OrderID: dec.OrderID, Reason: dec.Code})
			if err != nil {
				return err
			}
			if err := pub.Publish(ctx, TopicOrderCancelled, env, nil); err != nil {
				return fmt.Errorf("publish order cancelled: %w", err)
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// keyStore returns a new idempotency store for one of the demo's
// consumers, bounded by Options.IdempotencyKeys: unbounded, the 24 h of
// ids the consumers keep grew the demo by megabytes an hour.
func (p *Platform) keyStore() *delivery.MemoryKeyStore {
	if p.opts.IdempotencyKeys < 0 {
		return delivery.NewMemoryKeyStore()
	}
	return delivery.NewBoundedMemoryKeyStore(p.opts.IdempotencyKeys)
}

// fetchBounds caps what a demo consumer fetches ahead of its handler. A
// lagging consumer (analytics, by design) holds a fetch per partition in
// its buffers, up to kgo's defaults of 1 MB a partition and 50 MB a fetch,
// decoded. A quarter of that per partition is still most of a minute of
// orders at the default rate, and keeps the buffers to a few MB however
// far behind the consumer falls.
func fetchBounds() []kgo.Opt {
	return []kgo.Opt{kgo.FetchMaxPartitionBytes(256 << 10), kgo.FetchMaxBytes(1 << 20)}
}
