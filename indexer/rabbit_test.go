package indexer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/delivery/rabbitmq"
	"switchyard/dlqstore"
	"switchyard/internal/testenv"
)

// depth is the number of messages in queue (ready, not unacked).
func depth(t *testing.T, ch *amqp.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s: %v", queue, err)
	}
	return q.Messages
}

func startRabbit(t *testing.T, opts RabbitOptions) (*RabbitIndexer, *running) {
	t.Helper()
	x := newRabbit(t, opts)
	return x, start(t, x.Run)
}

func newRabbit(t *testing.T, opts RabbitOptions) *RabbitIndexer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	x, err := NewRabbitIndexer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

const testEnvelope = `{"id":"5b0b1a7e-6a43-4a7e-9b7e-1f0cfe1d2a10","type":"notify.email.requested.v1","occurred_at":"2025-03-14T09:26:35.002Z","source":"orders-service","correlation_id":"9d45d438-0e6f-46df-a270-1eeabdb227e1","trace_id":"e8f543ca0aee94038dbcc16ac96bc10b","payload":{"template":"order-confirmation","to":"customer@example.test"},"metadata":{"partition_key":"cus-20417","tenant_id":"t-acme-de"}}`

// TestRabbitGolden indexes RabbitMQ dead letters of each format from the
// real broker: MassTransit's _error queue, RabbitMQ's own x-death after a
// real basic.reject into a dead-letter exchange, and the demo's notify
// service writing Switchyard headers to its .dlq through the delivery core.
func TestRabbitGolden(t *testing.T) {
	t.Parallel()
	u := testenv.RabbitURL(t)
	ch := testenv.RabbitChannel(t, u)
	id := uniq()
	store := mustStore(t)

	// MassTransit: the fixture's headers as MassTransit publishes them.
	mtQueue := "notify.golden-" + id + "_error"
	testenv.DeclareQueue(t, ch, u, mtQueue, nil)
	mt, mtWant := loadFixture(t, "masstransit")
	table := amqp.Table{}
	for _, h := range mt.Headers {
		table[h.Key] = string(h.Value)
	}
	testenv.Publish(t, ch, mtQueue, amqp.Publishing{Headers: table, MessageId: mt.MessageID, Timestamp: mt.Timestamp, Body: mt.Body})

	// RabbitMQ x-death: a consumer rejects, the broker dead-letters.
	work, parked := "golden-"+id+".work", "golden-"+id+".parked"
	testenv.DeclareQueue(t, ch, u, parked, nil)
	testenv.DeclareQueue(t, ch, u, work, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": parked})
	testenv.Publish(t, ch, work, amqp.Publishing{MessageId: "msg-xdeath-" + id, Body: []byte(testEnvelope),
		Headers: amqp.Table{"tenant_id": "t-acme-de"}})
	var d amqp.Delivery
	testenv.WaitFor(t, "the message in the work queue", func() bool {
		var ok bool
		var err error
		d, ok, err = ch.Get(work, false)
		return err == nil && ok
	})
	if err := d.Reject(false); err != nil {
		t.Fatal(err)
	}

	// The demo's notify service: DLQExplicit writes Switchyard headers.
	notify := "notify.golden-" + id + ".high"
	if err := rabbitmq.DeclareQueue(ch, notify, rabbitmq.QueueOptions{UseDLX: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ch.QueueDelete(notify, false, false, false)
		ch.QueueDelete(notify+".dlq", false, false, false)
	}) //nolint:errcheck
	cons, err := rabbitmq.NewConsumer(rabbitmq.ConsumerOptions{
		URL: u, Queue: notify, Cluster: "rabbit-eu1", Service: "notify-service", Logger: quiet(),
		Handler: func(context.Context, *rabbitmq.Delivery) error {
			return delivery.Permanent(&delivery.Error{Code: "SMTP_REJECTED", Message: "550 5.1.1 mailbox unavailable", Details: map[string]any{"smtp_code": 550}})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	crun := start(t, cons.Run)
	testenv.Publish(t, ch, notify, amqp.Publishing{MessageId: "msg-notify-" + id, ContentType: "application/json", Body: []byte(testEnvelope)})
	testenv.WaitFor(t, "the notify consumer's dead letter", func() bool { return depth(t, ch, notify+".dlq") == 1 })
	crun.stop(t)

	x, r := startRabbit(t, RabbitOptions{Cluster: "rabbit-eu1", URL: u, Store: store, Queues: []string{mtQueue, parked, notify + ".dlq"}})
	testenv.WaitFor(t, "three dead letters indexed", func() bool {
		var n int64
		for _, s := range x.Status() {
			n += s.Indexed
		}
		return n == 3
	})
	r.stop(t)
	one := func(queue string) dlqstore.Entry {
		t.Helper()
		es := entries(t, store, dlqstore.Filter{Destination: queue})
		if len(es) != 1 {
			t.Fatalf("%s: %d entries, want 1", queue, len(es))
		}
		return es[0]
	}

	t.Run("masstransit", func(t *testing.T) {
		e := one(mtQueue)
		if e.MessageID != mt.MessageID || e.DL.DLQ.Queue != mtQueue || e.DL.DLQ.VHost != "/" {
			t.Errorf("entry id %q at %+v", e.MessageID, e.DL.DLQ)
		}
		checkEntry(t, e, mtWant, mt.Body)
	})
	t.Run("x-death from a real reject", func(t *testing.T) {
		e := one(parked)
		dl := e.DL
		if dl.Format != delivery.FormatRabbitMQ || dl.Error.Code != "RABBITMQ_REJECTED" || !strings.Contains(dl.Error.Message, work) {
			t.Errorf("format %s, error %+v", dl.Format, dl.Error)
		}
		wantOrigin := delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: "rabbit-eu1", VHost: "/", Queue: work, RoutingKey: work, Partition: -1, Offset: -1}
		if dl.Origin != wantOrigin {
			t.Errorf("origin = %+v, want %+v", dl.Origin, wantOrigin)
		}
		if dl.Attempts != 1 || dl.LastFailureAt.IsZero() || time.Since(dl.LastFailureAt) > time.Hour {
			t.Errorf("attempts %d, last failure %v", dl.Attempts, dl.LastFailureAt)
		}
		if e.Tenant != "t-acme-de" || e.EventType != "notify.email.requested.v1" || e.MessageID != "msg-xdeath-"+id {
			t.Errorf("tenant %q, event type %q, id %q", e.Tenant, e.EventType, e.MessageID)
		}
		if e.Fingerprint != delivery.Fingerprint(dl) {
			t.Errorf("fingerprint %s, want %s", e.Fingerprint, delivery.Fingerprint(dl))
		}
		if _, ok := dl.Headers.Get("x-death"); !ok {
			t.Error("x-death header not kept")
		}
	})
	t.Run("demo notify service", func(t *testing.T) {
		e := one(notify + ".dlq")
		dl := e.DL
		if dl.Format != delivery.FormatSwitchyard || dl.Error.Code != "SMTP_REJECTED" || dl.Error.Message != "550 5.1.1 mailbox unavailable" {
			t.Errorf("format %s, error %+v", dl.Format, dl.Error)
		}
		if dl.Origin.Queue != notify || dl.Origin.Service != "notify-service" || dl.Origin.Cluster != "rabbit-eu1" || dl.Origin.VHost != "/" {
			t.Errorf("origin = %+v", dl.Origin)
		}
		if dl.Attempts != 1 || dl.FirstFailureAt.IsZero() {
			t.Errorf("attempts %d, first failure %v", dl.Attempts, dl.FirstFailureAt)
		}
		if e.Tenant != "t-acme-de" || e.EventType != "notify.email.requested.v1" || e.MessageID != "msg-notify-"+id {
			t.Errorf("tenant %q, event type %q, id %q", e.Tenant, e.EventType, e.MessageID)
		}
		if string(dl.Payload) != testEnvelope {
			t.Errorf("payload = %s", dl.Payload)
		}
	})
}

// TestRabbitCrashBetweenCommitAndAck loses the channel after the entry is
// committed and before the ack: the broker redelivers the message, and
// the redelivery is a duplicate, not a second entry.
func TestRabbitCrashBetweenCommitAndAck(t *testing.T) {
	t.Parallel()
	u := testenv.RabbitURL(t)
	ch := testenv.RabbitChannel(t, u)
	queue := "custody-" + uniq() + ".dlq"
	testenv.DeclareQueue(t, ch, u, queue, nil)
	testenv.Publish(t, ch, queue, amqp.Publishing{MessageId: "m-1", Body: []byte(testEnvelope),
		Headers: amqp.Table{delivery.HeaderErrorCode: "BOOM", delivery.HeaderErrorMessage: "boom"}})

	store := mustStore(t)
	x := newRabbit(t, RabbitOptions{Cluster: "local", URL: u, Store: store, Queues: []string{queue}})
	var crashed atomic.Bool
	x.beforeAck = func(ch *amqp.Channel) {
		if crashed.CompareAndSwap(false, true) {
			ch.Close()
		}
	}
	r := start(t, x.Run)
	testenv.WaitFor(t, "the redelivery seen as a duplicate", func() bool { return statusOf(x.Status(), queue).Duplicates == 1 })
	r.stop(t)
	if s := statusOf(x.Status(), queue); s.Indexed != 1 {
		t.Errorf("indexed %d, want 1", s.Indexed)
	}
	if es := entries(t, store, dlqstore.Filter{Destination: queue}); len(es) != 1 {
		t.Errorf("%d entries, want 1", len(es))
	}
	testenv.WaitFor(t, "the queue empty after the duplicate was acked", func() bool { return depth(t, ch, queue) == 0 })
}

// TestRabbitStoreFailureKeepsMessages: while the store fails, nothing is
// acked and the messages stay in the queue; once it works they are indexed.
func TestRabbitStoreFailureKeepsMessages(t *testing.T) {
	t.Parallel()
	u := testenv.RabbitURL(t)
	ch := testenv.RabbitChannel(t, u)
	queue := "storefail-" + uniq() + ".dlq"
	testenv.DeclareQueue(t, ch, u, queue, nil)
	for _, id := range []string{"a", "b", "c"} {
		testenv.Publish(t, ch, queue, amqp.Publishing{MessageId: id, Body: []byte(testEnvelope)})
	}
	store := mustStore(t)
	broken := &flakyStore{Store: store, fail: 1 << 30}
	x, r := startRabbit(t, RabbitOptions{Cluster: "local", URL: u, Store: broken, Queues: []string{queue}, BatchWait: 20 * time.Millisecond})
	testenv.WaitFor(t, "two failed writes", func() bool {
		broken.mu.Lock()
		defer broken.mu.Unlock()
		return broken.seen >= 2
	})
	if s := statusOf(x.Status(), queue); !strings.Contains(s.LastError, "injected") || s.Indexed != 0 {
		t.Errorf("status while failing: %+v", s)
	}
	r.stop(t)
	testenv.WaitFor(t, "all 3 messages back in the queue", func() bool { return depth(t, ch, queue) == 3 })
	if es := entries(t, store, dlqstore.Filter{Destination: queue}); len(es) != 0 {
		t.Fatalf("%d entries written by a failing store", len(es))
	}

	x2, r2 := startRabbit(t, RabbitOptions{Cluster: "local", URL: u, Store: store, Queues: []string{queue}})
	testenv.WaitFor(t, "3 indexed", func() bool { return statusOf(x2.Status(), queue).Indexed == 3 })
	r2.stop(t)
	testenv.WaitFor(t, "the queue empty", func() bool { return depth(t, ch, queue) == 0 })
}

// testVHost creates a vhost of its own through the management API, so that
// discovery sees only this test's queues and never consumes another
// test's dead letters; it returns its name, its AMQP URL and a
// RabbitSource on it.
func testVHost(t *testing.T) (string, string, *collector.RabbitSource) {
	t.Helper()
	vh, u := testenv.RabbitVHost(t)
	src, err := collector.NewRabbitSource("local", testenv.RabbitManagementURL(t), collector.RabbitOptions{VHosts: []string{vh}})
	if err != nil {
		t.Fatal(err)
	}
	return vh, u, src
}

// TestRabbitDiscoversNewQueues starts with an empty vhost and declares, while
// the indexer runs, a queue matching a pattern and a queue that another
// queue dead-letters into: both are indexed without a restart. Hostile
// messages (no headers, no id, not UTF-8) are indexed with flags.
func TestRabbitDiscoversNewQueues(t *testing.T) {
	t.Parallel()
	vh, u, src := testVHost(t)
	store := mustStore(t)
	// The URL's vhost is "/" so that the test vhost is reached only
	// through discovery, over a connection of its own, because it is listed.
	x, r := startRabbit(t, RabbitOptions{Cluster: "local", URL: testenv.RabbitURL(t), Management: src, VHosts: []string{vh},
		Store: store, DiscoveryInterval: 100 * time.Millisecond})
	// The first discovery runs against the empty vhost.
	discovered(t, x)

	ch := testenv.RabbitChannel(t, u)
	named := "billing-dlq"
	work, parked := "billing.work", "billing.parked"
	for _, q := range []struct {
		name string
		args amqp.Table
	}{{named, nil}, {parked, nil}, {work, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": parked}}} {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Publish(t, ch, named, amqp.Publishing{Body: []byte{0xff, 0xfe, 0x00}})
	testenv.Publish(t, ch, work, amqp.Publishing{MessageId: "w1", Body: []byte(testEnvelope)})
	testenv.WaitFor(t, "the work queue's message", func() bool {
		d, ok, err := ch.Get(work, false)
		if err != nil || !ok {
			return false
		}
		return d.Reject(false) == nil
	})
	testenv.WaitFor(t, "both new queues indexed", func() bool {
		return statusOf(x.Status(), named).Indexed == 1 && statusOf(x.Status(), parked).Indexed == 1
	})
	if isSource(x.Status(), work) {
		t.Error("the work queue itself is indexed as a DLQ")
	}
	r.stop(t)

	es := entries(t, store, dlqstore.Filter{Destination: named})
	if len(es) != 1 {
		t.Fatalf("%d entries in %s, want 1", len(es), named)
	}
	e := es[0]
	if !sameSet(e.Flags, []string{FlagNotUTF8, FlagUndecodable, FlagNoErrorContext}) {
		t.Errorf("flags = %v", e.Flags)
	}
	if !strings.HasPrefix(e.MessageID, "sha256:") || e.VHost == "/" || e.DL.DLQ.VHost == "/" {
		t.Errorf("id %q, vhost %q (%q)", e.MessageID, e.VHost, e.DL.DLQ.VHost)
	}
	if string(e.DL.Payload) != "\xff\xfe\x00" {
		t.Errorf("payload = %x", e.DL.Payload)
	}
	p := entries(t, store, dlqstore.Filter{Destination: parked})
	if len(p) != 1 || p[0].DL.Error.Code != "RABBITMQ_REJECTED" || p[0].DL.Origin.Queue != work {
		t.Errorf("parked entries = %+v", p)
	}
}

// TestRabbitMissingQueueIsRetried names a queue that does not exist yet:
// the indexer keeps looking and indexes it once it is declared.
func TestRabbitMissingQueueIsRetried(t *testing.T) {
	t.Parallel()
	u := testenv.RabbitURL(t)
	queue := "late-" + uniq() + ".dlq"
	store := mustStore(t)
	x, r := startRabbit(t, RabbitOptions{Cluster: "local", URL: u, Store: store, Queues: []string{queue}, DiscoveryInterval: 100 * time.Millisecond})
	testenv.WaitFor(t, "the missing queue reported", func() bool { return statusOf(x.Status(), queue).LastError != "" })
	ch := testenv.RabbitChannel(t, u)
	testenv.DeclareQueue(t, ch, u, queue, nil)
	testenv.Publish(t, ch, queue, amqp.Publishing{MessageId: "late", Body: []byte(testEnvelope)})
	testenv.WaitFor(t, "the late queue indexed", func() bool { return statusOf(x.Status(), queue).Indexed == 1 })
	r.stop(t)
}

func isSource(ss []SourceStatus, dest string) bool {
	for _, s := range ss {
		if s.Destination == dest {
			return true
		}
	}
	return false
}

// peekRabbit returns the message ids in a queue right now, through the
// management API's get (requeued at once). Unlike the queue's message
// count, which the management plugin refreshes every few seconds, it shows
// a message another consumer holds unacked as gone.
func peekRabbit(t *testing.T, vhost, queue string) []string {
	t.Helper()
	mgmt := testenv.RabbitManagementURL(t)
	path := "/api/queues/" + url.PathEscape(vhost) + "/" + url.PathEscape(queue) + "/get"
	resp, err := http.Post(mgmt+path, "application/json", strings.NewReader(`{"count":100,"ackmode":"ack_requeue_true","encoding":"auto"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msgs []struct {
		Properties struct {
			MessageID string `json:"message_id"`
		} `json:"properties"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.Properties.MessageID
	}
	return ids
}

// TestRabbitCustodyOnlyInItsVHosts: two vhosts each hold a DLQ-named queue
// with a message, and the management source sees both (as a dashboard
// watching every vhost would). An indexer pointed at vhost A consumes A's
// queue and never B's: B's message is still there once A's was indexed.
// Listing B in VHosts makes it indexed too.
func TestRabbitCustodyOnlyInItsVHosts(t *testing.T) {
	t.Parallel()
	vhA, urlA := testenv.RabbitVHost(t)
	vhB, urlB := testenv.RabbitVHost(t)
	both, err := collector.NewRabbitSource("local", testenv.RabbitManagementURL(t), collector.RabbitOptions{VHosts: []string{vhA, vhB}})
	if err != nil {
		t.Fatal(err)
	}
	const queue = "payments.refund.high.dlq"
	for _, v := range []struct{ url, id string }{{urlA, "in-a"}, {urlB, "in-b"}} {
		ch := testenv.RabbitChannel(t, v.url)
		if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		testenv.Publish(t, ch, queue, amqp.Publishing{MessageId: v.id, Body: []byte(testEnvelope)})
	}

	store := mustStore(t)
	x, r := startRabbit(t, RabbitOptions{Cluster: "local", URL: urlA, Management: both, Store: store, DiscoveryInterval: 50 * time.Millisecond})
	testenv.WaitFor(t, "vhost A's dead letter indexed", func() bool { return len(entries(t, store, dlqstore.Filter{})) >= 1 })
	<-x.Discovered()
	if got := peekRabbit(t, vhB, queue); len(got) != 1 || got[0] != "in-b" {
		t.Fatalf("vhost B's queue holds %v after vhost A's message was indexed, want [in-b]: the indexer took custody of another vhost", got)
	}
	custody, err := x.Custody()
	if want := []RabbitQueue{{vhA, queue}}; err != nil || !slices.Equal(custody, want) {
		t.Errorf("Custody() = %v, %v; want %v", custody, err, want)
	}
	if es := entries(t, store, dlqstore.Filter{}); len(es) != 1 || es[0].VHost != vhA {
		t.Errorf("entries %+v, want one from vhost %s", es, vhA)
	}
	r.stop(t)

	x2, r2 := startRabbit(t, RabbitOptions{Cluster: "local", URL: urlA, Management: both, VHosts: []string{vhA, vhB}, Store: store, DiscoveryInterval: 50 * time.Millisecond})
	testenv.WaitFor(t, "vhost B's dead letter indexed once B is listed", func() bool {
		es := entries(t, store, dlqstore.Filter{})
		return len(es) == 2 && slices.ContainsFunc(es, func(e dlqstore.Entry) bool { return e.VHost == vhB && e.MessageID == "in-b" })
	})
	if custody, _ := x2.Custody(); len(custody) != 2 {
		t.Errorf("Custody() with both vhosts listed = %v", custody)
	}
	r2.stop(t)
}

// TestRabbitQueuesOnly: with QueuesOnly, a management source that sees
// other DLQ-named queues and dead-letter targets in the same vhost only
// gives the lag of the named queue; nothing else is consumed.
func TestRabbitQueuesOnly(t *testing.T) {
	t.Parallel()
	vh, u, src := testVHost(t)
	ch := testenv.RabbitChannel(t, u)
	mine, other, parked, work := "notify.email.high.dlq", "other.dlq", "billing.parked", "billing.work"
	for _, q := range []struct {
		name string
		args amqp.Table
	}{{mine, nil}, {other, nil}, {parked, nil}, {work, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": parked}}} {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{mine, other, parked} {
		testenv.Publish(t, ch, q, amqp.Publishing{MessageId: "m-" + q, Body: []byte(testEnvelope)})
	}
	store := mustStore(t)
	x, r := startRabbit(t, RabbitOptions{Cluster: "local", URL: u, Management: src, Queues: []string{mine}, QueuesOnly: true,
		Store: store, DiscoveryInterval: 50 * time.Millisecond})
	testenv.WaitFor(t, "the named queue indexed", func() bool { return statusOf(x.Status(), mine).Indexed == 1 })
	for _, q := range []string{other, parked} {
		if got := peekRabbit(t, vh, q); len(got) != 1 {
			t.Errorf("%s holds %v, want its one message: QueuesOnly consumed it", q, got)
		}
	}
	if custody, _ := x.Custody(); len(custody) != 1 || custody[0] != (RabbitQueue{vh, mine}) {
		t.Errorf("Custody() = %v, want only %s", custody, mine)
	}
	r.stop(t)
}
