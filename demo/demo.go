// Package demo is the embedded default platform behind `console demo` and
// `make run`: an in-process Kafka (franz-go's kfake, persisted under the
// data dir, listening on a fixed address so any Kafka client can join in)
// and synthetic services written only with the delivery core, producing
// real traffic, real failures and real dead letters.
//
// Platform is the type that matters: Start it, Run it, Close it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
	"switchyard/delivery/rabbitmq"
)

// Topics, groups and queues of the demo platform (all platform-conformant).
const (
	TopicOrders    = "orders.order.created.v1"
	TopicInvoices  = "billing.invoice.issued.v1"
	GroupBilling   = "billing"
	GroupAnalytics = "analytics"
	// TopicPaymentDeclined carries billing's billing.payment.declined.v1
	// and TopicOrderCancelled the orders service's compensating
	// orders.order.cancelled.v1 (see runOrderSaga).
	TopicPaymentDeclined = "billing.payment.declined.v1"
	TopicOrderCancelled  = "orders.order.cancelled.v1"
	// GroupOrders is the orders service's group on TopicPaymentDeclined.
	GroupOrders = "orders"
	QueueNotify = "notify.email.high"
	ClusterName = "demo"
	partitions  = 6
	// EventEmailRequested is the type of billing's e-mail requests to
	// the notification service.
	EventEmailRequested = "notify.email.requested.v1"
	// eventPoisonOrder is the type of the schema-breaking poison pill: an
	// order under a type that breaks the naming rules.
	eventPoisonOrder = "Orders.OrderCreated"
)

// The demo's services, by the service.name each reports in its OTLP
// resource, as the source of its envelopes and the origin service of its
// dead letters.
const (
	ServiceOrders    = "orders-service"
	ServiceBilling   = "billing-service"
	ServiceAnalytics = "analytics-service"
	ServiceNotify    = "notify-service"
)

// Services lists the demo's services (see ServiceOrders).
func Services() []string {
	return []string{ServiceOrders, ServiceBilling, ServiceAnalytics, ServiceNotify}
}

// Defaults of Options that the console's configuration shares
// (demo.kafka_addr, demo.rate).
const (
	DefaultKafkaAddr = "127.0.0.1:9092"
	DefaultRate      = 50.0
	// DefaultOutage is how long a transient fault lasts for the event
	// that met it (Options.Outage).
	DefaultOutage = time.Minute
)

// Options configures the demo; the zero value is usable except for DataDir.
type Options struct {
	// DataDir is where the embedded Kafka keeps its log (DataDir/kafka).
	DataDir string
	// KafkaAddr is the fixed listen address (default DefaultKafkaAddr).
	KafkaAddr string
	// RabbitURL enables the notification service when RabbitMQ answers
	// there; empty or unreachable leaves it off with one log line.
	RabbitURL string
	// Rate is the orders producer's events per second (default
	// DefaultRate).
	Rate float64
	// FailureRate scales the billing failures (default 1: a few percent).
	FailureRate float64
	// Outage is how long the payment gateway (UPSTREAM_TIMEOUT) and the
	// SMTP relay (SMTP_TIMEOUT) stay down for an event that met their
	// timeout, from the moment the event occurred (default
	// DefaultOutage): longer than the services' retries, so the event is
	// dead-lettered, and a redrive after it succeeds.
	Outage time.Duration
	// Retry is the services' retry policy (default: 3 attempts, 50 ms → 1 s).
	Retry  delivery.RetryPolicy
	Logger *slog.Logger
	// Telemetry returns the providers one service records its metrics
	// and spans with, given its service.name (ServiceOrders, …), so that
	// each reports under its own name. Nil, or a nil provider, records
	// no metrics and traces without exporting (every event still gets a
	// real trace id in its headers and envelope).
	Telemetry func(service string) (metric.MeterProvider, trace.TracerProvider)
	// Retention bounds what the embedded Kafka keeps of the demo's
	// topics (see Retention; the zero value takes the defaults).
	Retention Retention
	// IdempotencyKeys is the most ids each service's idempotency store
	// holds (default DefaultIdempotencyKeys: half an hour of orders at
	// the default rate, days of the saga's declines — far longer than a
	// redelivery or a redrive of one takes); negative: unbounded, every
	// id for the consumers' 24 h ttl.
	IdempotencyKeys int
	// IndexedUpTo, when set, returns the next offset the console's DLQ
	// indexer will read of every DLQ partition it has read (by topic and
	// partition): retention never trims a dead letter at or above it, nor
	// any of a partition it has not read yet. Nil trims the DLQ topics by
	// age and count alone.
	IndexedUpTo func(ctx context.Context) (map[string]map[int32]int64, error)
}

func (o *Options) setDefaults() error {
	if o.DataDir == "" {
		return errors.New("demo: data dir is required")
	}
	if o.KafkaAddr == "" {
		o.KafkaAddr = DefaultKafkaAddr
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.FailureRate <= 0 {
		o.FailureRate = 1
	}
	if o.Outage <= 0 {
		o.Outage = DefaultOutage
	}
	if o.Retry.MaxAttempts == 0 {
		o.Retry = delivery.RetryPolicy{MaxAttempts: 3, Initial: 50 * time.Millisecond, MaxDelay: time.Second, Multiplier: 2}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Retention.setDefaults()
	if o.IdempotencyKeys == 0 {
		o.IdempotencyKeys = DefaultIdempotencyKeys
	}
	return nil
}

// Platform is a running embedded Kafka plus the demo services.
type Platform struct {
	opts      Options
	cluster   *kfake.Cluster
	addr      string
	telemetry map[string]*delivery.Telemetry // by service
	fixes     *Fixes
	rabbitOK  bool
}

// Start opens the embedded Kafka on Options.KafkaAddr, reloading its
// persisted log, and creates the demo topics. It fails with a clear error
// when the address is taken or the data dir is unusable.
func Start(ctx context.Context, opts Options) (*Platform, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	dir := filepath.Join(opts.DataDir, "kafka")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("demo kafka data dir: %w", err)
	}
	addr := opts.KafkaAddr
	listen := func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.DataDir(dir),
		kfake.ClusterID("switchyard-demo"),
		kfake.DefaultNumPartitions(partitions),
	)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka on %s: %w", addr, err)
	}
	fixes, err := OpenFixes(filepath.Join(opts.DataDir, "demo", "fixes.json"))
	if err != nil {
		c.Close()
		return nil, err
	}
	p := &Platform{opts: opts, cluster: c, addr: c.ListenAddrs()[0], telemetry: map[string]*delivery.Telemetry{}, fixes: fixes}
	// No exporter unless Telemetry gives one: spans are not shipped
	// anywhere, but every event gets a real trace id.
	local := sdktrace.NewTracerProvider()
	for _, svc := range Services() {
		var mp metric.MeterProvider
		var tp trace.TracerProvider
		if opts.Telemetry != nil {
			mp, tp = opts.Telemetry(svc)
		}
		if tp == nil {
			tp = local
		}
		if p.telemetry[svc], err = delivery.NewTelemetry(mp, tp); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := p.createTopics(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return p, nil
}

// Fixes is the platform's "deploy the fix" switch.
func (p *Platform) Fixes() *Fixes { return p.fixes }

// KafkaBrokers returns the embedded Kafka's bootstrap address.
func (p *Platform) KafkaBrokers() []string { return []string{p.addr} }

// Close stops the embedded Kafka, flushing its log to disk.
func (p *Platform) Close() { p.cluster.Close() }

func (p *Platform) createTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
	if err != nil {
		return fmt.Errorf("demo admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, t := range topics() {
		resp, err := adm.CreateTopic(ctx, partitions, 1, nil, t)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
		if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, resp.Err)
		}
	}
	return nil
}

// RabbitEnabled reports whether the notification service runs (known after
// Run has probed RabbitMQ).
func (p *Platform) RabbitEnabled() bool { return p.rabbitOK }

// Run runs the demo services, and the retention that trims the embedded
// Kafka behind them, until ctx is done; services that stop with an error
// are restarted after a pause, so one broken piece never stops the rest.
func (p *Platform) Run(ctx context.Context) error {
	log := p.opts.Logger
	svcs := []service{
		{"orders-producer", p.runOrders},
		{"billing", p.runBilling},
		{"analytics", p.runAnalytics},
		{"orders-saga", p.runOrderSaga},
	}
	if !p.opts.Retention.Off {
		svcs = append(svcs, service{"retention", p.runRetention})
	}
	if p.opts.RabbitURL != "" {
		if err := rabbitmq.Ping(ctx, p.opts.RabbitURL, 3*time.Second); err != nil {
			log.Info("RabbitMQ not reachable; the demo notification service is off", "error", err)
		} else {
			p.rabbitOK = true
			svcs = append(svcs, service{"notify", p.runNotify})
		}
	}
	var wg sync.WaitGroup
	for _, s := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			supervise(ctx, log, s)
		}()
	}
	log.Info("demo services running", "kafka", p.addr, "services", len(svcs))
	wg.Wait()
	return nil
}

type service struct {
	name string
	run  func(ctx context.Context) error
}

// supervise restarts a service that returned an error, with backoff.
func supervise(ctx context.Context, log *slog.Logger, s service) {
	backoff := delivery.RetryPolicy{MaxAttempts: 1 << 30, Initial: time.Second, MaxDelay: 30 * time.Second, Multiplier: 2}
	for n := 1; ; n++ {
		err := s.run(ctx)
		if ctx.Err() != nil {
			return
		}
		log.Warn("demo service stopped; restarting", "service", s.name, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff.Ceiling(n)):
		}
	}
}

// PIIRules classifies the demo events' personal data, so that the console
// masks it for anyone without read_pii (the console's default PII config in
// demo mode). Every demo event is keyed by its customer: the orders service
// sets metadata.partition_key — and so the Kafka record key — to it, and
// billing passes the same metadata on to invoices and e-mail requests, so
// the key and partition key are PII for each type. A poison pill with no
// readable type has its key masked all the same (access.PIIRules: an
// unknown type gets every type's key rule).
func PIIRules() map[string][]string {
	customer := []string{"$key", "$metadata.partition_key"}
	return map[string][]string{
		TopicOrders:          slices.Concat([]string{"email", "customer"}, customer),
		eventPoisonOrder:     slices.Concat([]string{"email", "customer"}, customer),
		TopicInvoices:        slices.Clone(customer),
		EventEmailRequested:  slices.Concat([]string{"to"}, customer),
		TopicPaymentDeclined: slices.Clone(customer),
		TopicOrderCancelled:  slices.Clone(customer),
	}
}
