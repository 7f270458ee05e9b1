package indexer

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/internal/testenv"
)

func kafkaRecord(topic string, partition int32, m delivery.Message) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: partition, Key: m.Key, Value: m.Body, Timestamp: m.Timestamp}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return r
}

// TestKafkaGolden publishes one record of each Kafka dead-letter format to
// a real (kfake) DLQ topic and checks the indexed entry against the
// delivery package's golden decoding.
func TestKafkaGolden(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := newClient(t, c)
	topic := "orders.golden-" + uniq() + ".dlq"
	createTopic(t, cl, topic, 1, nil)

	names := []string{"switchyard", "spring", "connect", "streams", "unknown", "non_utf8_body", "invalid_envelope"}
	type sent struct {
		name string
		body []byte
		want delivery.DeadLetter
	}
	var all []sent
	for _, n := range names {
		m, want := loadFixture(t, n)
		produce(t, cl, kafkaRecord(topic, 0, m))
		all = append(all, sent{n, m.Body, want})
	}
	// Switchyard's own headers as the delivery core writes them.
	env, err := delivery.NewEnvelope("billing.invoice.issued.v1", "billing", map[string]any{"invoice": "inv-1"}, delivery.Metadata{PartitionKey: "inv-1", TenantID: "t-globex"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := jsonMarshal(env)
	first := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	dl := delivery.DeadLetter{
		Origin: delivery.Location{Broker: delivery.BrokerKafka, Cluster: "prod-eu1", Topic: "billing.invoice.issued.v1",
			Partition: 4, Offset: 991, ConsumerGroup: "ledger"},
		Error:    delivery.ErrorInfo{Code: "LEDGER_CLOSED", Message: "ledger period 2025-02 is closed", ExceptionType: "*ledger.ClosedError"},
		Attempts: 4, FirstFailureAt: first, LastFailureAt: first.Add(3 * time.Second),
	}
	encoded := delivery.Message{Headers: delivery.EncodeHeaders(dl), Body: body, Timestamp: first.Add(4 * time.Second)}
	produce(t, cl, kafkaRecord(topic, 0, encoded))
	want := dl
	want.Format = delivery.FormatSwitchyard
	want.Envelope = &env
	all = append(all, sent{"EncodeHeaders", body, want})

	store := mustStore(t)
	x, r := startKafka(t, KafkaOptions{Cluster: "prod-eu1", Client: newClient(t, c), Store: store})
	testenv.WaitFor(t, "all golden records indexed", func() bool { return statusOf(x.Status(), topic).Indexed == int64(len(all)) })
	r.stop(t)

	got := entries(t, store, dlqstore.Filter{Destination: topic})
	if len(got) != len(all) {
		t.Fatalf("%d entries, want %d", len(got), len(all))
	}
	slices.SortFunc(got, func(a, b dlqstore.Entry) int { return int(a.Offset - b.Offset) })
	for i, s := range all {
		t.Run(s.name, func(t *testing.T) {
			e := got[i]
			if e.Broker != delivery.BrokerKafka || e.Cluster != "prod-eu1" || e.Destination != topic || e.Partition != 0 || e.Offset != int64(i) {
				t.Errorf("entry at %s/%s/%s[%d]@%d, want kafka/prod-eu1/%s[0]@%d", e.Broker, e.Cluster, e.Destination, e.Partition, e.Offset, topic, i)
			}
			if e.DL.DLQ.Topic != topic || e.DL.DLQ.Offset != int64(i) {
				t.Errorf("dlq location = %+v", e.DL.DLQ)
			}
			checkEntry(t, e, s.want, s.body)
		})
	}
}

// TestKafkaHostileRecords indexes records a broken or malicious producer
// writes: none is dropped, each is flagged, and an oversized payload is cut
// with its size and hash kept.
func TestKafkaHostileRecords(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := newClient(t, c)
	topic := "hostile-" + uniq() + "-dlq"
	maxBytes := "16777216"
	createTopic(t, cl, topic, 1, map[string]*string{"max.message.bytes": &maxBytes})

	huge := bytes.Repeat([]byte(`{"x":"0123456789abcdef"}`), 5<<20/24+1) // > 5 MB, UTF-8, not an envelope
	script := `<script>alert(1)</script>`
	produce(t, cl,
		&kgo.Record{Topic: topic, Value: []byte{0xc3, 0x28, 0xff, 0xfe}, Headers: []kgo.RecordHeader{{Key: delivery.HeaderErrorCode, Value: []byte("UNDECODABLE")}}},
		&kgo.Record{Topic: topic, Value: huge, Headers: []kgo.RecordHeader{{Key: delivery.HeaderErrorCode, Value: []byte("PAYLOAD_TOO_LARGE")}}},
		&kgo.Record{Topic: topic, Value: []byte(`{"some":"json"}`)}, // no headers at all
		&kgo.Record{Topic: topic, Value: []byte("plain text"), Headers: []kgo.RecordHeader{
			{Key: delivery.HeaderErrorCode, Value: []byte("XSS")},
			{Key: delivery.HeaderErrorMessage, Value: []byte(script)},
		}},
	)
	store := mustStore(t)
	const payloadCap = 256 << 10
	x, r := startKafka(t, KafkaOptions{Cluster: "local", Brokers: c.ListenAddrs(), Store: store})
	testenv.WaitFor(t, "4 hostile records indexed", func() bool { return statusOf(x.Status(), topic).Indexed == 4 })
	r.stop(t)

	got := entries(t, store, dlqstore.Filter{Destination: topic})
	if len(got) != 4 {
		t.Fatalf("%d entries, want 4", len(got))
	}
	slices.SortFunc(got, func(a, b dlqstore.Entry) int { return int(a.Offset - b.Offset) })
	cases := []struct {
		name      string
		flags     []string
		size      int
		truncated bool
	}{
		{"invalid UTF-8", []string{FlagNotUTF8, FlagUndecodable}, 4, false},
		{"5 MB body", []string{FlagUndecodable, FlagTooLarge}, len(huge), true},
		{"no headers", []string{FlagInvalidEnvelope, FlagNoErrorContext}, 15, false},
		{"script in the error message", []string{FlagUndecodable}, 10, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := got[i]
			if !sameSet(e.Flags, c.flags) {
				t.Errorf("flags = %v, want %v", e.Flags, c.flags)
			}
			if e.PayloadSize != c.size || e.Truncated != c.truncated {
				t.Errorf("size %d truncated %v, want %d %v", e.PayloadSize, e.Truncated, c.size, c.truncated)
			}
			if e.PayloadHash == "" {
				t.Error("no payload hash")
			}
		})
	}
	if n := len(got[1].DL.Payload); n != payloadCap {
		t.Errorf("5 MB body stored as %d bytes, want the %d-byte cap", n, payloadCap)
	}
	if want := sha256Hex(huge); got[1].PayloadHash != want {
		t.Errorf("hash of the 5 MB body = %s, want the original's %s", got[1].PayloadHash, want)
	}
	if got[3].DL.Error.Message != script {
		t.Errorf("error message = %q, want it stored verbatim (escaping is the page's job)", got[3].DL.Error.Message)
	}
	if !bytes.Equal(got[0].DL.Payload, []byte{0xc3, 0x28, 0xff, 0xfe}) {
		t.Errorf("invalid UTF-8 payload = %x, want its raw bytes", got[0].DL.Payload)
	}
}

// TestKafkaPicksUpNewTopicsAndPartitions creates a DLQ topic and then more
// partitions while the indexer runs: both are indexed without a restart,
// and a topic that matches no pattern is left alone.
func TestKafkaPicksUpNewTopicsAndPartitions(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := newClient(t, c)
	store := mustStore(t)
	x, _ := startKafka(t, KafkaOptions{Cluster: "local", Client: newClient(t, c), Store: store, DiscoveryInterval: 100 * time.Millisecond})
	// The first discovery runs against a cluster without DLQ topics.
	discovered(t, x)

	topic := "payments.capture-" + uniq() + ".DLT"
	plain := "payments.capture-" + uniq()
	createTopic(t, cl, topic, 1, nil)
	createTopic(t, cl, plain, 1, nil)
	produce(t, cl, &kgo.Record{Topic: topic, Value: []byte("a")}, &kgo.Record{Topic: plain, Value: []byte("b")})
	testenv.WaitFor(t, "the new DLQ topic indexed", func() bool { return statusOf(x.Status(), topic).Indexed == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreatePartitions(ctx, 2, topic); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "metadata of the new partitions", func() bool {
		m, err := kadm.NewClient(cl).Metadata(ctx, topic)
		return err == nil && len(m.Topics[topic].Partitions) == 3
	})
	// A fresh producer: cl's cached metadata still has one partition.
	produce(t, newClient(t, c), &kgo.Record{Topic: topic, Partition: 2, Value: []byte("c")})
	testenv.WaitFor(t, "the new partition indexed", func() bool { return statusOf(x.Status(), topic).Indexed == 2 })

	got := entries(t, store, dlqstore.Filter{Broker: delivery.BrokerKafka})
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2 (the plain topic must not be indexed)", len(got))
	}
	for _, s := range x.Status() {
		if s.Destination == plain {
			t.Errorf("plain topic %s is listed as a DLQ source", plain)
		}
	}
	if s := statusOf(x.Status(), topic); s.Lag != 0 {
		t.Errorf("lag = %d once everything is indexed, want 0", s.Lag)
	}
}

// TestKafkaStoreErrorsAreRetried makes the store fail its first writes:
// the indexer retries without skipping, every record ends up indexed once,
// and the failure is visible in status and metrics meanwhile.
func TestKafkaStoreErrorsAreRetried(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := newClient(t, c)
	topic := "retry-" + uniq() + ".dlq"
	createTopic(t, cl, topic, 2, nil)
	var rs []*kgo.Record
	for i := range 500 {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	produce(t, cl, rs...)
	store := &flakyStore{Store: mustStore(t), fail: 3}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	x, r := startKafka(t, KafkaOptions{Cluster: "local", Client: newClient(t, c), Store: store, BatchSize: 100, Metrics: m})
	testenv.WaitFor(t, "500 records indexed", func() bool { return statusOf(x.Status(), topic).Indexed == 500 })
	r.stop(t)

	got := entries(t, store.Store, dlqstore.Filter{Destination: topic})
	checkExactlyOnce(t, got, map[int32]int64{0: 250, 1: 250})
	if v := testutil.ToFloat64(m.errors.WithLabelValues("kafka", "local")); v != 3 {
		t.Errorf("index errors = %v, want 3", v)
	}
	if v := testutil.ToFloat64(m.arrivals.WithLabelValues("kafka", "local", topic)); v != 500 {
		t.Errorf("arrivals = %v, want 500", v)
	}
	if s := statusOf(x.Status(), topic); s.LastError != "" || s.LastErrorAt.IsZero() {
		t.Errorf("status after recovery: last error %q at %v; want cleared, with its time kept", s.LastError, s.LastErrorAt)
	}
}

// checkExactlyOnce asserts that the entries are exactly offsets 0..n-1 of
// each partition: none missing, none twice.
func checkExactlyOnce(t testing.TB, got []dlqstore.Entry, counts map[int32]int64) {
	t.Helper()
	seen := map[[2]int64]int{}
	for _, e := range got {
		seen[[2]int64{int64(e.Partition), e.Offset}]++
	}
	total := int64(0)
	for p, n := range counts {
		total += n
		for o := range n {
			switch k := seen[[2]int64{int64(p), o}]; k {
			case 1:
			case 0:
				t.Fatalf("partition %d offset %d missing", p, o)
			default:
				t.Fatalf("partition %d offset %d indexed %d times", p, o, k)
			}
		}
	}
	if int64(len(got)) != total {
		t.Fatalf("%d entries, want exactly %d", len(got), total)
	}
}

// produceDeadLetters writes n realistic Switchyard dead letters spread
// over partitions, in batches.
func produceDeadLetters(t testing.TB, cl *kgo.Client, topic string, partitions int32, n int) map[int32]int64 {
	t.Helper()
	counts := map[int32]int64{}
	var batch []*kgo.Record
	for i := range n {
		p := int32(i) % partitions
		batch = append(batch, realisticRecord(topic, p, i))
		counts[p]++
		if len(batch) == 5000 || i == n-1 {
			produce(t, cl, batch...)
			batch = batch[:0]
		}
	}
	return counts
}

var (
	benchTenants = []string{"t-acme", "t-globex", "t-initech", "t-umbrella"}
	benchCodes   = []struct{ code, msg, typ string }{
		{"PAYMENT_DECLINED", "card declined for order ord-%d: issuer response 51", "com.acme.billing.PaymentDeclinedException"},
		{"TEMPLATE_NOT_FOUND", "template 'order-confirmation' for locale de-DE not found (request %d)", "System.InvalidOperationException"},
		{"SMTP_TIMEOUT", "relay smtp-%d.mail.internal timed out after 30s", "*smtp.TimeoutError"},
		{"VALIDATION_FAILED", "field metadata.tenant_id is required (record %d)", "*delivery.ValidationError"},
	}
	benchStack = "com.acme.billing.PaymentDeclinedException: card declined\n\tat com.acme.billing.payment.StripeGateway.capture(StripeGateway.java:142)\n\tat com.acme.billing.payment.PaymentService.captureOrder(PaymentService.java:77)\n\tat com.acme.billing.listener.OrderCreatedListener.onOrderCreated(OrderCreatedListener.java:48)\n\tat org.springframework.kafka.listener.adapter.HandlerAdapter.invoke(HandlerAdapter.java:70)\n"
)

// realisticRecord is a Switchyard dead letter as the delivery core writes
// it: an envelope of about 500 bytes and the EncodeHeaders error context.
func realisticRecord(topic string, partition int32, i int) *kgo.Record {
	c := benchCodes[i%len(benchCodes)]
	tenant := benchTenants[i%len(benchTenants)]
	order := fmt.Sprintf("ord-%08d", i)
	env := fmt.Sprintf(`{"id":"%08x-2f1a-42ad-a3b5-634cac660ae5","type":"orders.order.created.v1","occurred_at":"2025-03-14T09:26:30.118Z","source":"checkout-service","correlation_id":"9d45d438-0e6f-46df-a270-%012x","trace_id":"e8f543ca0aee94038dbcc16ac96bc10b","payload":{"order_id":"%s","customer_id":"cus-%d","currency":"EUR","total_minor":%d,"lines":[{"sku":"SKU-10443","qty":2,"unit_minor":6495},{"sku":"SKU-20931","qty":1,"unit_minor":1999}],"shipping":{"country":"DE","city":"Berlin","zip":"10115"}},"metadata":{"partition_key":"%s","tenant_id":"%s"}}`,
		i, i, order, i%5000, 1000+i%90000, order, tenant)
	at := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	dl := delivery.DeadLetter{
		Origin: delivery.Location{Broker: delivery.BrokerKafka, Cluster: "prod-eu1", Topic: "orders.order.created.v1",
			Partition: partition, Offset: int64(i), ConsumerGroup: "billing-service", Service: "billing"},
		Error:    delivery.ErrorInfo{Code: c.code, Message: fmt.Sprintf(c.msg, i), ExceptionType: c.typ, Stack: benchStack},
		Attempts: 5, FirstFailureAt: at, LastFailureAt: at.Add(1500 * time.Millisecond),
		Headers: delivery.Headers{
			{Key: delivery.HeaderTraceparent, Value: []byte("00-e8f543ca0aee94038dbcc16ac96bc10b-1560b39a8ea09fb6-01")},
			{Key: delivery.HeaderEventType, Value: []byte("orders.order.created.v1")},
			{Key: delivery.HeaderTenantID, Value: []byte(tenant)},
		},
	}
	r := &kgo.Record{Topic: topic, Partition: partition, Key: []byte(order), Value: []byte(env), Timestamp: at.Add(2 * time.Second)}
	for _, h := range delivery.EncodeHeaders(dl) {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return r
}

// TestKafkaCancelAndResume cancels the indexer at a random moment of a
// 20,000-record backlog, restarts it on the same store, and checks that
// every record is indexed exactly once.
func TestKafkaCancelAndResume(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	cl := newClient(t, c)
	topic := "orders.crash-" + uniq() + ".dlq"
	createTopic(t, cl, topic, 4, nil)
	counts := produceDeadLetters(t, cl, topic, 4, 20000)
	store := mustStore(t)

	stopAt := int64(1000 + rand.IntN(15000))
	x, r := startKafka(t, KafkaOptions{Cluster: "local", Client: newClient(t, c), Store: store, BatchSize: 250})
	testenv.WaitFor(t, fmt.Sprintf("%d records indexed", stopAt), func() bool { return statusOf(x.Status(), topic).Indexed >= stopAt })
	r.stop(t)
	first := statusOf(x.Status(), topic).Indexed
	if first >= 20000 {
		t.Logf("the first run finished before the cancel; the resume is trivial this time")
	}

	x2, r2 := startKafka(t, KafkaOptions{Cluster: "local", Client: newClient(t, c), Store: store, BatchSize: 250})
	// Every record in, and the stored offsets at the end of every
	// partition (lag 0): a wrongly re-read batch would have landed before.
	settled(t, "the rest indexed up to the end of the topic", x2, topic, 20000-first)
	r2.stop(t)
	if d := statusOf(x2.Status(), topic).Duplicates; d != 0 {
		t.Errorf("second run saw %d duplicates; it should resume exactly at the stored offsets", d)
	}
	checkExactlyOnce(t, entries(t, store, dlqstore.Filter{Destination: topic}), counts)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
