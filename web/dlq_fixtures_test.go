package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/delivery/kafka"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
	"switchyard/indexer"
	"switchyard/internal/testenv"
	"switchyard/redrive"
)

// Dead-letter fixtures, indexed through the real store's IndexKafka and
// IndexRabbit: two tenants, two Kafka DLQ topics and one RabbitMQ DLQ
// queue. The three "order … not found" failures are one group spanning
// t1 and t2; "declined" and "timeout" are t2 only; "script" carries
// <script> in its error message; "binary" has a non-UTF-8 payload.
const (
	payDLQ    = otherTopic + ".dlq"
	mailDLQ   = matrixQueue + ".dlq"
	dlqRabbit = "mq"
	traceHex  = "4bf92f3577b34da6a3ce929d0e0e4736"
)

type dlqFixture struct {
	name, tenant, code, msg, exception string
	age                                time.Duration
	binary                             bool
}

var (
	ordersFixtures = []dlqFixture{
		{name: "nf1", tenant: "t1", code: "ORDER_NOT_FOUND", msg: "order 4711 not found", exception: "OrderNotFoundException", age: 5 * time.Minute},
		{name: "nf2", tenant: "t1", code: "ORDER_NOT_FOUND", msg: "order 4712 not found", exception: "OrderNotFoundException", age: 15 * time.Minute},
		{name: "nf3", tenant: "t2", code: "ORDER_NOT_FOUND", msg: "order 9000 not found", exception: "OrderNotFoundException", age: 25 * time.Minute},
		{name: "declined", tenant: "t2", code: "PAYMENT_DECLINED", msg: "card declined for customer 77", exception: "DeclinedException", age: 35 * time.Minute},
		{name: "script", tenant: "t1", code: "VALIDATION_FAILED", msg: "<script>alert(1)</script>", age: 45 * time.Minute},
	}
	paymentFixtures = []dlqFixture{
		{name: "binary", tenant: "t1", code: "UNDECODABLE", msg: "payload is not valid UTF-8", age: 55 * time.Minute, binary: true},
		{name: "timeout", tenant: "t2", code: "TIMEOUT", msg: "upstream timed out after 30s", exception: "TimeoutException", age: 65 * time.Minute},
	}
	mailFixture = dlqFixture{name: "smtp", tenant: "t1", code: "SMTP_REJECTED", msg: "mailbox unavailable", age: 75 * time.Minute}
)

// fixtureEmail is the PII of a fixture's payload.
func fixtureEmail(name string) string { return name + ".customer@example.com" }

// fixtureCustomer is a fixture's metadata.partition_key, PII like its key
// ("key-" + name).
func fixtureCustomer(name string) string { return "cust-" + name }

var binaryPayload = []byte{0xff, 0xfe, 0x00, 0x01, 0x80, 0x81, 'h', 'i'}

func deadLetterOf(t testing.TB, f dlqFixture, origin, dlqLoc delivery.Location, now time.Time) dlqstore.IndexItem {
	t.Helper()
	last := now.Add(-f.age)
	dl := delivery.DeadLetter{
		Format: delivery.FormatSwitchyard, Origin: origin, DLQ: dlqLoc,
		Error: delivery.ErrorInfo{Code: f.code, Message: f.msg, ExceptionType: f.exception,
			Stack:   "at com.example.orders.Handler.handle(Handler.java:42)\nat com.example.Consumer.run(Consumer.java:7)",
			Details: map[string]any{"fixture": f.name}},
		Attempts: 3, FirstFailureAt: last.Add(-2 * time.Minute), LastFailureAt: last,
		Key: []byte("key-" + f.name),
		Headers: delivery.Headers{
			{Key: delivery.HeaderTenantID, Value: []byte(f.tenant)},
			{Key: delivery.HeaderCorrelationID, Value: []byte("corr-" + f.name)},
			{Key: delivery.HeaderTraceparent, Value: []byte("00-" + traceHex + "-00f067aa0ba902b7-01")},
			{Key: delivery.HeaderErrorCode, Value: []byte(f.code)},
		},
	}
	var flags []string
	if f.binary {
		dl.Payload = binaryPayload
		dl.EnvelopeError = "not UTF-8"
		dl.Headers = append(dl.Headers, delivery.Header{Key: delivery.HeaderEventType, Value: []byte(otherTopic)})
		flags = []string{indexer.FlagNotUTF8, indexer.FlagInvalidEnvelope}
	} else {
		env, err := delivery.NewEnvelope(testTopic, "checkout", map[string]any{
			"note": "fixture " + f.name, "email": fixtureEmail(f.name),
			"card": map[string]any{"number": "4111111111111111", "brand": "visa"},
		}, delivery.Metadata{PartitionKey: fixtureCustomer(f.name), TenantID: f.tenant})
		if err != nil {
			t.Fatal(err)
		}
		env.CorrelationID, env.TraceID = "corr-"+f.name, traceHex
		raw, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		dl.Envelope, dl.Payload = &env, raw
	}
	sum := sha256.Sum256(dl.Payload)
	return dlqstore.IndexItem{DL: dl, Fingerprint: delivery.Fingerprint(dl), Flags: flags,
		PayloadSize: len(dl.Payload), PayloadHash: hex.EncodeToString(sum[:]), ReceivedAt: now}
}

// seedDLQ opens a real dead-letter store in a temp dir and indexes the
// fixtures; it returns the entry id of each fixture by name.
func seedDLQ(t testing.TB) (*dlqstore.Store, map[string]int64) {
	t.Helper()
	ctx := context.Background()
	st, err := dlqstore.Open(ctx, filepath.Join(t.TempDir(), "dlq.db"), dlqstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	kafkaBatch := func(origin, dlqTopic string, fs []dlqFixture) {
		var items []dlqstore.IndexItem
		for i, f := range fs {
			o := delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: origin, Partition: 1, Offset: int64(100 + i), ConsumerGroup: testGroup}
			d := delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: dlqTopic, Partition: 0, Offset: int64(i)}
			items = append(items, deadLetterOf(t, f, o, d, now))
		}
		res, err := st.IndexKafka(ctx, testCluster, dlqTopic, 0, items, int64(len(items)))
		if err != nil || res.Inserted != len(items) {
			t.Fatalf("index %s: %+v %v", dlqTopic, res, err)
		}
	}
	kafkaBatch(testTopic, testDLQ, ordersFixtures)
	kafkaBatch(otherTopic, payDLQ, paymentFixtures)
	o := delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: dlqRabbit, VHost: "/", Exchange: "notify", RoutingKey: "email.high", Queue: matrixQueue, Partition: -1, Offset: -1, Service: "mailer"}
	d := delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: dlqRabbit, VHost: "/", Queue: mailDLQ, Partition: -1, Offset: -1}
	item := deadLetterOf(t, mailFixture, o, d, now)
	item.MessageID, item.DeathCount = "msg-smtp", 1
	if res, err := st.IndexRabbit(ctx, []dlqstore.IndexItem{item}); err != nil || res.Inserted != 1 {
		t.Fatalf("index rabbit: %+v %v", res, err)
	}
	dlqstoretest.WaitText(t, st) // text is indexed after capture

	ids := map[string]int64{}
	page, err := st.FindEntries(ctx, dlqstore.Filter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Entries {
		var d map[string]any = e.DL.Error.Details
		ids[fmt.Sprint(d["fixture"])] = e.ID
	}
	if len(ids) != len(ordersFixtures)+len(paymentFixtures)+1 {
		t.Fatalf("seeded ids = %v", ids)
	}
	return st, ids
}

// deadLetterOptions are the dead-letter service's over the seeded store,
// as cmd/console wires it: the env's PII masker, its audit log with
// payload reads audited, and the seeded sources' indexer status; no job
// engine (withJobs adds one).
func deadLetterOptions(st *dlqstore.Store, masker dlq.Masker, audit dlq.AuditLog) dlq.Options {
	return dlq.Options{Store: st, Masker: masker, Audit: audit, AuditReads: true, Indexers: dlqSources{}}
}

// newDeadLetters is the dead-letter service of o.
func newDeadLetters(t testing.TB, o dlq.Options) *dlq.Service {
	t.Helper()
	svc, err := dlq.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// dlqSources is the indexers' status as the console would report it for
// the seeded sources (the indexer itself needs brokers; its own tests run
// it against kfake and RabbitMQ).
type dlqSources struct{}

func (dlqSources) Status() []indexer.SourceStatus {
	now := time.Now()
	return []indexer.SourceStatus{
		{Broker: delivery.BrokerKafka, Cluster: testCluster, Destination: testDLQ, Indexed: 5, Lag: 0, LastIndexedAt: now},
		{Broker: delivery.BrokerKafka, Cluster: testCluster, Destination: payDLQ, Indexed: 2, Lag: 7,
			LastError: "fetch: NOT_LEADER_FOR_PARTITION", LastErrorAt: now.Add(-time.Minute), LastIndexedAt: now},
		{Broker: delivery.BrokerRabbitMQ, Cluster: dlqRabbit, VHost: "/", Destination: mailDLQ, Indexed: 1, Lag: -1, LastIndexedAt: now},
	}
}

// jobsEnv is a real dead-letter job engine on an env: over the seeded
// store and the env's audit log, sending to a kfake cluster that holds the
// seeded Kafka origin topics (cluster testCluster; RabbitMQ has no sender).
type jobsEnv struct {
	engine *redrive.Engine
	// kafka reads what the engine sent to the origin cluster.
	kafka *kgo.Client
	// brokers are the origin cluster's addresses.
	brokers []string
}

// withJobs gives the env's server a job engine, run until the test ends.
// Edit-and-redrive is enabled.
func (e *env) withJobs(t *testing.T) *jobsEnv {
	t.Helper()
	c := testenv.Kafka(t, kfake.SeedTopics(3, testTopic), kfake.SeedTopics(1, otherTopic))
	pub, err := kafka.NewPublisher(kafka.PublisherOptions{Brokers: c.ListenAddrs(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	sender := redrive.NewKafkaSender(pub)
	eng, err := redrive.New(redrive.Options{
		Store: e.dlq, Policy: access.Policy{}, Audit: e.audit, EditEnabled: true,
		Sender: func(broker, cluster string) (redrive.Sender, error) {
			if broker == delivery.BrokerKafka && cluster == testCluster {
				return sender, nil
			}
			return nil, fmt.Errorf("no %s connection %q in the test", broker, cluster)
		},
		Poll:   20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := eng.Run(ctx); err != nil {
			t.Errorf("job engine: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	read, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(testTopic, otherTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(read.Close)
	o := e.dlqOpts
	o.Jobs = eng
	e.srv.dlq = newDeadLetters(t, o) // before any request of the test
	return &jobsEnv{engine: eng, kafka: read, brokers: c.ListenAddrs()}
}

// seedMoreDLQ indexes extra dead letters of tenant on testDLQ (origin
// testTopic), partition 2 from offset base, and returns their ids by name.
func seedMoreDLQ(t *testing.T, st *dlqstore.Store, tenant string, base int64, names ...string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	var items []dlqstore.IndexItem
	for i, n := range names {
		f := dlqFixture{name: n, tenant: tenant, code: "EXTRA_FIXTURE", msg: "extra fixture " + n, age: time.Minute}
		o := delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: testTopic, Partition: 2, Offset: base + int64(i), ConsumerGroup: testGroup}
		d := delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: testDLQ, Partition: 2, Offset: base + int64(i)}
		items = append(items, deadLetterOf(t, f, o, d, now))
	}
	res, err := st.IndexKafka(ctx, testCluster, testDLQ, 2, items, base+int64(len(items)))
	if err != nil || res.Inserted != len(items) {
		t.Fatalf("index extra: %+v %v", res, err)
	}
	dlqstoretest.WaitText(t, st)
	page, err := st.FindEntries(ctx, dlqstore.Filter{ErrorCode: "EXTRA_FIXTURE", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, e := range page.Entries {
		ids[fmt.Sprint(e.DL.Error.Details["fixture"])] = e.ID
	}
	for _, n := range names {
		if ids[n] == 0 {
			t.Fatalf("extra fixture %s not indexed: %v", n, ids)
		}
	}
	return ids
}
