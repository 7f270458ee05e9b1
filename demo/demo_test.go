package demo

import (
	"context"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
	"switchyard/delivery/rabbitmq"
	"switchyard/internal/testenv"
)

func startDemo(t *testing.T, dir string, rate, failures float64) (*Platform, context.CancelFunc, chan error) {
	t.Helper()
	return startWith(t, Options{DataDir: dir, Rate: rate, FailureRate: failures})
}

// startWith starts and runs the demo with opts on a free port, with fast
// retries.
func startWith(t *testing.T, opts Options) (*Platform, context.CancelFunc, chan error) {
	t.Helper()
	opts.KafkaAddr = "127.0.0.1:0"
	opts.Retry = delivery.RetryPolicy{MaxAttempts: 3, Initial: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return p, cancel, done
}

func stopDemo(t *testing.T, p *Platform, cancel context.CancelFunc, done chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("demo services did not stop within 30s of cancel")
	}
	p.Close()
}

func endOffsets(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		return 0
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// TestDemoProducesTrafficFailuresAndResumes: the embedded platform produces
// orders, the billing group consumes and commits them, failures reach the
// DLQ topic as decodable dead letters with their error context, and after a
// restart on the same data dir the log and the groups' offsets are still there.
func TestDemoProducesTrafficFailuresAndResumes(t *testing.T) {
	dir := t.TempDir()
	p, cancel, done := startDemo(t, dir, 400, 4)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.KafkaBrokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	testenv.WaitWithin(t, 60*time.Second, "orders, invoices and dead letters", func() bool {
		return endOffsets(t, adm, TopicOrders) > 200 && endOffsets(t, adm, TopicInvoices) > 50 &&
			endOffsets(t, adm, delivery.DLQTopic(TopicOrders)) >= 3
	})
	var committed int64
	testenv.WaitWithin(t, 30*time.Second, "billing to commit offsets", func() bool {
		offs, err := adm.FetchOffsets(context.Background(), GroupBilling)
		if err != nil {
			return false
		}
		committed = 0
		offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
		return committed > 100
	})

	// Every dead letter carries its error context and origin.
	dlq, err := kgo.NewClient(kgo.SeedBrokers(p.KafkaBrokers()...), kgo.ConsumeTopics(delivery.DLQTopic(TopicOrders)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	fctx, fcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer fcancel()
	codes := map[string]int{}
	for len(codes) == 0 || sum(codes) < 3 {
		fs := dlq.PollFetches(fctx)
		if fctx.Err() != nil {
			t.Fatalf("reading the DLQ: %v (got %v)", fctx.Err(), codes)
		}
		fs.EachRecord(func(r *kgo.Record) {
			dl := delivery.Decode(delivery.Message{Headers: kafkaHeaders(r), Body: r.Value, Timestamp: r.Timestamp})
			if dl.Format != delivery.FormatSwitchyard {
				t.Errorf("dead letter at offset %d has format %q, want switchyard", r.Offset, dl.Format)
			}
			// Billing dead-letters its failures; both groups dead-letter the
			// poison pills they meet (each group judges its own records).
			poison := dl.Error.Code == delivery.CodeUndecodable || dl.Error.Code == delivery.CodeValidationFailed
			if dl.Origin.Topic != TopicOrders || dl.Origin.Offset < 0 ||
				!(dl.Origin.ConsumerGroup == GroupBilling || (poison && dl.Origin.ConsumerGroup == GroupAnalytics)) {
				t.Errorf("dead letter origin %+v (code %s) does not point at a billing failure or a poison pill", dl.Origin, dl.Error.Code)
			}
			if dl.Error.Code == "" || dl.Error.Message == "" {
				t.Errorf("dead letter at offset %d lacks error context: %+v", r.Offset, dl.Error)
			}
			codes[dl.Error.Code]++
		})
	}
	t.Logf("dead-letter codes seen: %v", codes)

	before := endOffsets(t, adm, TopicOrders)
	cl.Close()
	stopDemo(t, p, cancel, done)

	// Restart on the same data dir: the log and the committed offsets survive.
	p2, cancel2, done2 := startDemo(t, dir, 50, 1)
	defer stopDemo(t, p2, cancel2, done2)
	cl2, err := kgo.NewClient(kgo.SeedBrokers(p2.KafkaBrokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	adm2 := kadm.NewClient(cl2)
	if after := endOffsets(t, adm2, TopicOrders); after < before {
		t.Errorf("after restart the orders topic has %d records, had %d before", after, before)
	}
	offs, err := adm2.FetchOffsets(context.Background(), GroupBilling)
	if err != nil {
		t.Fatal(err)
	}
	var again int64
	offs.Each(func(o kadm.OffsetResponse) { again += o.At })
	if again < committed {
		t.Errorf("billing's committed offsets went back from %d to %d across a restart", committed, again)
	}
}

func TestStartFailsClearlyWhenAddressTaken(t *testing.T) {
	ctx := context.Background()
	p, err := Start(ctx, Options{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = Start(ctx, Options{DataDir: t.TempDir(), KafkaAddr: p.KafkaBrokers()[0]})
	if err == nil {
		t.Fatal("a second embedded Kafka started on an address in use")
	}
	want := "start embedded kafka on " + p.KafkaBrokers()[0]
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %q should say %q and why", err, want)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func kafkaHeaders(r *kgo.Record) delivery.Headers {
	h := make(delivery.Headers, len(r.Headers))
	for i, x := range r.Headers {
		h[i] = delivery.Header{Key: x.Key, Value: x.Value}
	}
	return h
}

// TestDemoNotificationFailuresReachRabbitDLQ: with RabbitMQ up, billing asks
// the notification service for e-mails over notify.email.high, and the
// failing ones arrive in notify.email.high.dlq with their error context.
// In a vhost of its own: the demo's queue names are fixed, and a demo
// running on the same broker (make run) must not take its messages.
func TestDemoNotificationFailuresReachRabbitDLQ(t *testing.T) {
	_, url := testenv.RabbitVHost(t)
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	dlqName := delivery.DLQQueue(QueueNotify)
	base := 0
	if q, err := ch.QueueDeclarePassive(dlqName, true, false, false, false, nil); err == nil {
		base = q.Messages
	} else if ch, err = conn.Channel(); err != nil { // a failed passive declare closes the channel
		t.Fatal(err)
	}

	p, cancel, done := startWith(t, Options{DataDir: t.TempDir(), RabbitURL: url, Rate: 300})
	defer stopDemo(t, p, cancel, done)

	testenv.WaitWithin(t, 60*time.Second, "a dead letter in "+dlqName, func() bool {
		q, err := ch.QueueDeclarePassive(dlqName, true, false, false, false, nil)
		if err != nil { // not declared yet: the failed passive declare closed the channel
			if ch, err = conn.Channel(); err != nil {
				t.Fatal(err)
			}
			return false
		}
		return q.Messages > base
	})
	if !p.RabbitEnabled() {
		t.Error("RabbitEnabled() is false although the notification service ran")
	}
	// Look at one without taking it away.
	for range 50 {
		m, ok, err := ch.Get(dlqName, false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		m.Nack(false, true)
		dl := delivery.Decode(delivery.Message{Headers: rabbitmq.HeadersFromTable(m.Headers), Body: m.Body, Timestamp: m.Timestamp})
		if dl.Origin.Queue != QueueNotify || dl.Origin.Service != "notify-service" {
			continue // an older dead letter from another run
		}
		if dl.Error.Code != "SMTP_REJECTED" && dl.Error.Code != "SMTP_TIMEOUT" {
			t.Errorf("dead letter error %+v, want an SMTP failure", dl.Error)
		}
		return
	}
	t.Error("no dead letter from notify-service found in " + dlqName)
}
