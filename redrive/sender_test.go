package redrive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
	"switchyard/delivery/kafka"
	"switchyard/delivery/rabbitmq"
	"switchyard/internal/testenv"
)

// senderWait bounds every wait of these tests for the broker.
const senderWait = 30 * time.Second

// senderKafka starts an in-process kfake cluster (no topic auto-creation)
// seeded with topics of partitions partitions, and returns its addresses.
func senderKafka(tb testing.TB, partitions int32, topics ...string) []string {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		tb.Fatalf("start kfake: %v", err)
	}
	tb.Cleanup(c.Close)
	return c.ListenAddrs()
}

// senderKafkaSender returns a KafkaSender over a Publisher of its own.
func senderKafkaSender(tb testing.TB, addrs []string) *KafkaSender {
	tb.Helper()
	pub, err := kafka.NewPublisher(kafka.PublisherOptions{Brokers: addrs})
	if err != nil {
		tb.Fatalf("new publisher: %v", err)
	}
	tb.Cleanup(pub.Close)
	return NewKafkaSender(pub)
}

// senderConsume reads n records of topic from the start.
func senderConsume(tb testing.TB, addrs []string, topic string, n int) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), senderWait)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("read %d of %d records from %s before the deadline", len(out), n, topic)
		}
		fs.EachError(func(t string, p int32, err error) { tb.Fatalf("fetch %s/%d: %v", t, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func senderKafkaTarget(topic string) Target {
	return Target{Broker: delivery.BrokerKafka, Cluster: "test", Topic: topic}
}

func senderHeadersOf(r *kgo.Record) delivery.Headers {
	var h delivery.Headers
	for _, x := range r.Headers {
		h = append(h, delivery.Header{Key: x.Key, Value: x.Value})
	}
	return h
}

func senderHeadersEqual(a, b delivery.Headers) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// redrivenHeaders are the headers a real redrive of a Spring dead letter
// carries: the message's own (one binary, one repeated) plus provenance.
func senderRedrivenHeaders(jobID int64) delivery.Headers {
	dl := delivery.DeadLetter{
		Headers: delivery.Headers{
			{Key: delivery.HeaderTraceparent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
			{Key: "kafka_dlt-exception-message", Value: []byte("declined")},
			{Key: "x-binary", Value: []byte{0xff, 0x00, 0xfe}},
			{Key: "x-repeated", Value: []byte("1")},
			{Key: "x-repeated", Value: []byte("2")},
		},
		RedriveCount: 1,
		DLQ:          delivery.Location{Broker: delivery.BrokerKafka, Cluster: "test", Topic: "orders.order.created.v1.dlq", Partition: 0, Offset: 7},
		Origin:       delivery.Location{Broker: delivery.BrokerKafka, Cluster: "test", Topic: "orders.order.created.v1", Partition: 2, Offset: 99},
	}
	h, _, _ := delivery.RedriveHeaders(dl, jobID)
	return h
}

func TestKafkaSenderDelivers(t *testing.T) {
	t.Parallel()
	const topic = "orders.order.created.v1"
	addrs := senderKafka(t, 3, topic)
	s := senderKafkaSender(t, addrs)
	msgs := []Message{
		{EntryID: 1, Target: senderKafkaTarget(topic), Key: []byte("ord-1"), Headers: senderRedrivenHeaders(11), Body: []byte(`{"id":"1"}`)},
		{EntryID: 2, Target: senderKafkaTarget(topic), Key: nil, Headers: nil, Body: []byte{0x00, 0xff}}, // no key, binary body
		{EntryID: 3, Target: senderKafkaTarget(topic), Key: []byte("ord-3"), Headers: senderRedrivenHeaders(11), Body: []byte(`{"id":"3"}`)},
	}
	ctx, cancel := context.WithTimeout(context.Background(), senderWait)
	defer cancel()
	for i, err := range s.Send(ctx, msgs) {
		if err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	got := senderConsume(t, addrs, topic, len(msgs))
	byBody := map[string]*kgo.Record{}
	for _, r := range got {
		byBody[string(r.Value)] = r
	}
	for _, m := range msgs {
		r, ok := byBody[string(m.Body)]
		if !ok {
			t.Errorf("entry %d: body %q not found in the topic", m.EntryID, m.Body)
			continue
		}
		if !bytes.Equal(r.Key, m.Key) {
			t.Errorf("entry %d: key %q, want %q", m.EntryID, r.Key, m.Key)
		}
		if h := senderHeadersOf(r); !senderHeadersEqual(h, m.Headers) {
			t.Errorf("entry %d: headers %q, want %q", m.EntryID, h, m.Headers)
		}
	}
	if h := senderHeadersOf(byBody[`{"id":"1"}`]); h.String(delivery.HeaderRedriveCount) != "2" || h.String(delivery.HeaderRedriveJob) != "11" {
		t.Errorf("provenance count %q job %q, want 2 and 11", h.String(delivery.HeaderRedriveCount), h.String(delivery.HeaderRedriveJob))
	}
}

// TestKafkaSenderPartitionOrder sends 1,000 messages over 20 keys in
// batches: every partition holds them in the order they were given, so
// each key's messages arrive in order.
func TestKafkaSenderPartitionOrder(t *testing.T) {
	t.Parallel()
	const topic = "orders.order.updated.v1"
	addrs := senderKafka(t, 4, topic)
	s := senderKafkaSender(t, addrs)
	const n = 1000
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{EntryID: int64(i), Target: senderKafkaTarget(topic), Key: []byte(fmt.Sprintf("key-%02d", i%20)), Body: []byte(strconv.Itoa(i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), senderWait)
	defer cancel()
	for from := 0; from < n; from += 137 {
		for i, err := range s.Send(ctx, msgs[from:min(from+137, n)]) {
			if err != nil {
				t.Fatalf("message %d: %v", from+i, err)
			}
		}
	}
	got := senderConsume(t, addrs, topic, n)
	if len(got) != n {
		t.Fatalf("got %d records, want %d", len(got), n)
	}
	lastByPartition := map[int32]int{}
	lastByKey := map[string]int{}
	partitions := map[int32]bool{}
	for _, r := range got {
		seq, err := strconv.Atoi(string(r.Value))
		if err != nil {
			t.Fatalf("record %q: %v", r.Value, err)
		}
		if last, ok := lastByPartition[r.Partition]; ok && seq <= last {
			t.Fatalf("partition %d: message %d after %d", r.Partition, seq, last)
		}
		if last, ok := lastByKey[string(r.Key)]; ok && seq <= last {
			t.Fatalf("key %s: message %d after %d", r.Key, seq, last)
		}
		lastByPartition[r.Partition], lastByKey[string(r.Key)] = seq, seq
		partitions[r.Partition] = true
	}
	if len(lastByKey) != 20 || len(partitions) < 2 {
		t.Errorf("%d keys over %d partitions; want 20 keys over several partitions", len(lastByKey), len(partitions))
	}
}

// TestKafkaSenderFailsAlone: a message to a topic that does not exist
// (auto-creation is off) and one that is not for Kafka fail; the others
// of the batch are written.
func TestKafkaSenderFailsAlone(t *testing.T) {
	t.Parallel()
	const topic = "orders.order.paid.v1"
	addrs := senderKafka(t, 2, topic)
	s := senderKafkaSender(t, addrs)
	msgs := []Message{
		{EntryID: 1, Target: senderKafkaTarget(topic), Key: []byte("a"), Body: []byte("1")},
		{EntryID: 2, Target: senderKafkaTarget("orders.order.missing.v1"), Key: []byte("a"), Body: []byte("2")},
		{EntryID: 3, Target: Target{Broker: delivery.BrokerRabbitMQ, Cluster: "r", VHost: "/", RoutingKey: "q"}, Body: []byte("3")},
		{EntryID: 4, Target: senderKafkaTarget(topic), Key: []byte("a"), Body: []byte("4")},
	}
	ctx, cancel := context.WithTimeout(context.Background(), senderWait)
	defer cancel()
	errs := s.Send(ctx, msgs)
	if errs[0] != nil || errs[3] != nil {
		t.Errorf("messages to an existing topic: %v, %v; want nil", errs[0], errs[3])
	}
	if errs[1] == nil {
		t.Error("message to a missing topic succeeded")
	} else if !errors.Is(errs[1], kerr.UnknownTopicOrPartition) {
		t.Errorf("message to a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", errs[1])
	}
	if delivery.ErrorCode(errs[2]) != delivery.EINVALID {
		t.Errorf("message to a RabbitMQ target: %v, want EINVALID", errs[2])
	}
	got := senderConsume(t, addrs, topic, 2)
	if len(got) != 2 || string(got[0].Value) != "1" || string(got[1].Value) != "4" {
		t.Errorf("topic holds %d records, want messages 1 and 4 in order", len(got))
	}
}

// TestKafkaSenderRefusesTransactionalPublisher: a transactional client
// cannot produce outside a transaction, so every message fails at once
// with EINVALID.
func TestKafkaSenderRefusesTransactionalPublisher(t *testing.T) {
	t.Parallel()
	const topic = "orders.order.shipped.v1"
	addrs := senderKafka(t, 1, topic)
	pub, err := kafka.NewPublisher(kafka.PublisherOptions{Brokers: addrs, TransactionalID: "redrive-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	s := NewKafkaSender(pub)
	ctx, cancel := context.WithTimeout(context.Background(), senderWait)
	defer cancel()
	for i, err := range s.Send(ctx, []Message{{Target: senderKafkaTarget(topic), Body: []byte("1")}, {Target: senderKafkaTarget(topic), Body: []byte("2")}}) {
		if delivery.ErrorCode(err) != delivery.EINVALID {
			t.Errorf("message %d: %v, want EINVALID", i, err)
		}
	}
}

// --- RabbitMQ ---

// senderRabbit returns the broker URL and an admin connection.
func senderRabbit(tb testing.TB) (string, *amqp.Connection) {
	tb.Helper()
	url := testenv.RabbitURL(tb)
	conn, err := amqp.Dial(url)
	if err != nil {
		testenv.Missing(tb, "RabbitMQ at "+url+" ("+err.Error()+")")
	}
	tb.Cleanup(func() { conn.Close() })
	return url, conn
}

// senderQueue declares a uniquely named durable queue, deleted at cleanup.
func senderQueue(tb testing.TB, conn *amqp.Connection) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	q := "swtest.redrive." + hex.EncodeToString(b[:])
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		tb.Fatalf("declare %s: %v", q, err)
	}
	tb.Cleanup(func() {
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(q, false, false, false)
			ch.Close()
		}
	})
	return q
}

func senderRabbitSender(tb testing.TB, url string) *RabbitSender {
	tb.Helper()
	pub, err := rabbitmq.NewPublisher(rabbitmq.PublisherOptions{URL: url, Name: "switchyard-redrive-test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatalf("new publisher: %v", err)
	}
	tb.Cleanup(func() { pub.Close() })
	return NewRabbitSender(pub)
}

func senderRabbitTarget(q string) Target {
	return Target{Broker: delivery.BrokerRabbitMQ, Cluster: "local", VHost: "/", RoutingKey: q}
}

// senderGet takes the next message off q, waiting for it.
func senderGet(tb testing.TB, conn *amqp.Connection, q string) amqp.Delivery {
	tb.Helper()
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatal(err)
	}
	defer ch.Close()
	var d amqp.Delivery
	testenv.WaitWithin(tb, senderWait, "a message in "+q, func() bool {
		var ok bool
		var err error
		if d, ok, err = ch.Get(q, true); err != nil {
			tb.Fatalf("get %s: %v", q, err)
		}
		return ok
	})
	return d
}

func TestRabbitSenderDelivers(t *testing.T) {
	t.Parallel()
	url, conn := senderRabbit(t)
	q := senderQueue(t, conn)
	s := senderRabbitSender(t, url)
	m := Message{
		EntryID: 1, Target: senderRabbitTarget(q), Headers: senderRedrivenHeaders(12), Body: []byte(`{"id":"e1"}`),
		MessageID: "e1", CorrelationID: "corr-1", ContentType: "application/json", Type: "notify.email.requested.v1",
	}
	ctx, cancel := context.WithTimeout(context.Background(), senderWait)
	defer cancel()
	if err := s.Send(ctx, []Message{m})[0]; err != nil {
		t.Fatalf("send: %v", err)
	}
	d := senderGet(t, conn, q)
	if string(d.Body) != string(m.Body) {
		t.Errorf("body %q, want %q", d.Body, m.Body)
	}
	if d.MessageId != "e1" || d.CorrelationId != "corr-1" || d.ContentType != "application/json" || d.Type != "notify.email.requested.v1" {
		t.Errorf("properties id %q corr %q content type %q type %q", d.MessageId, d.CorrelationId, d.ContentType, d.Type)
	}
	if d.DeliveryMode != amqp.Persistent {
		t.Errorf("delivery mode %d, want persistent", d.DeliveryMode)
	}
	want := map[string]any{
		delivery.HeaderTraceparent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"x-binary":                   []byte{0xff, 0x00, 0xfe}, // not UTF-8: a byte array
		"x-repeated":                 "2",                      // the last value wins
		delivery.HeaderRedriveJob:    "12",
		delivery.HeaderRedriveCount:  "2",
		delivery.HeaderRedriveFrom:   "kafka:test/orders.order.created.v1.dlq/0@7",
		delivery.HeaderRedriveOrigin: "kafka:test/orders.order.created.v1/2@99",
	}
	if len(d.Headers) != len(want) {
		t.Errorf("headers %v, want %v", d.Headers, want)
	}
	for k, w := range want {
		got := d.Headers[k]
		switch w := w.(type) {
		case string:
			if s, ok := got.(string); !ok || s != w {
				t.Errorf("header %s = %#v, want the string %q", k, got, w)
			}
		case []byte:
			if b, ok := got.([]byte); !ok || !bytes.Equal(b, w) {
				t.Errorf("header %s = %#v, want the bytes %x", k, got, w)
			}
		}
	}
}

// TestRabbitSenderUnroutableFailsAlone: a message to a queue that does not
// exist, and one that is not for RabbitMQ, fail; the rest of the batch
// arrives, in order.
func TestRabbitSenderUnroutableFailsAlone(t *testing.T) {
	t.Parallel()
	url, conn := senderRabbit(t)
	q := senderQueue(t, conn)
	s := senderRabbitSender(t, url)
	missing := "swtest.redrive.missing"
	msgs := []Message{
		{EntryID: 1, Target: senderRabbitTarget(q), MessageID: "m1", Body: []byte("1")},
		{EntryID: 2, Target: senderRabbitTarget(missing), MessageID: "m2", Body: []byte("2")},
		{EntryID: 3, Target: senderKafkaTarget("orders.order.created.v1"), MessageID: "m3", Body: []byte("3")},
		{EntryID: 4, Target: senderRabbitTarget(q), MessageID: "m4", Body: []byte("4")},
	}
	ctx, cancel := context.WithTimeout(context.Background(), senderWait)
	defer cancel()
	errs := s.Send(ctx, msgs)
	if errs[0] != nil || errs[3] != nil {
		t.Errorf("messages to an existing queue: %v, %v; want nil", errs[0], errs[3])
	}
	if !errors.Is(errs[1], rabbitmq.ErrUnroutable) {
		t.Errorf("message to a missing queue: %v, want ErrUnroutable", errs[1])
	}
	if delivery.ErrorCode(errs[2]) != delivery.EINVALID {
		t.Errorf("message to a Kafka target: %v, want EINVALID", errs[2])
	}
	for _, id := range []string{"m1", "m4"} {
		if d := senderGet(t, conn, q); d.MessageId != id {
			t.Errorf("got %q, want %q", d.MessageId, id)
		}
	}
}
