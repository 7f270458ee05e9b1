package redrive

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

// The benchmarks run each sender next to a bare client doing the same work
// against the same broker in the same run: the figure to read is the
// ratio, not this machine's rate.
//
//	go test -tags sqlite_fts5 -run '^$' -bench Redrive -benchtime 1x -count 1 ./redrive/

const (
	benchBatch       = 500 // messages per Send, as a job sends them
	benchKafkaN      = 20000
	benchRabbitN     = 2000
	benchPartitions  = 6
	benchKafkaTopic  = "orders.order.created.v1"
	benchRabbitQueue = "notify.email.high"
)

// runRedrive sends msgs through send in batches of benchBatch, b.N times,
// fails on any error and reports messages per second. The switchyard
// variants go through it so that it can be pointed at the whole engine.
func runRedrive(b *testing.B, send func(ctx context.Context, msgs []Message) []error, msgs []Message) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		for from := 0; from < len(msgs); from += benchBatch {
			for i, err := range send(ctx, msgs[from:min(from+benchBatch, len(msgs))]) {
				if err != nil {
					b.Fatalf("message %d: %v", from+i, err)
				}
			}
		}
	}
	reportMsgsPerSec(b, b.N*len(msgs), start)
}

// seedStore returns a store holding msgs as dead-letter entries 1..n (as
// the indexer stores them: compressed bodies, headers, record), not timed.
func seedStore(b *testing.B, msgs []Message) *dlqstore.Store {
	b.Helper()
	ctx := context.Background()
	st, err := dlqstore.Open(ctx, filepath.Join(b.TempDir(), "dlq.db"), dlqstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	t := msgs[0].Target
	var items []dlqstore.IndexItem
	for i, m := range msgs {
		env, err := delivery.ParseEnvelope(m.Body)
		if err != nil {
			b.Fatal(err)
		}
		dl := delivery.DeadLetter{Format: delivery.FormatSwitchyard, Envelope: &env, Payload: m.Body, Key: m.Key, LastFailureAt: time.Now(),
			Error: delivery.ErrorInfo{Code: "PAYMENT_DECLINED", Message: "card declined"}}
		if t.Broker == delivery.BrokerKafka {
			dl.Origin = delivery.Location{Broker: t.Broker, Cluster: t.Cluster, Topic: t.Topic, Partition: int32(i % benchPartitions), Offset: int64(i)}
			dl.DLQ = delivery.Location{Broker: t.Broker, Cluster: t.Cluster, Topic: t.Topic + ".dlq", Partition: 0, Offset: int64(i)}
		} else {
			dl.Origin = delivery.Location{Broker: t.Broker, Cluster: t.Cluster, VHost: t.VHost, Queue: t.RoutingKey, Partition: -1, Offset: -1}
			dl.DLQ = delivery.Location{Broker: t.Broker, Cluster: t.Cluster, VHost: t.VHost, Queue: t.RoutingKey + ".dlq", Partition: -1, Offset: -1}
		}
		dl.Headers = m.Headers
		items = append(items, dlqstore.IndexItem{DL: dl, MessageID: m.MessageID, DeathCount: 1, PayloadSize: len(m.Body)})
	}
	for from := 0; from < len(items); from += 1000 {
		batch := items[from:min(from+1000, len(items))]
		if t.Broker == delivery.BrokerKafka {
			_, err = st.IndexKafka(ctx, t.Cluster, t.Topic+".dlq", 0, batch, int64(from+len(batch)))
		} else {
			_, err = st.IndexRabbit(ctx, batch)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	// The text index follows capture in the background: let it catch up
	// before the clock starts, as redrive neither needs nor waits for it.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := st.WaitText(wctx); err != nil {
		b.Fatal(err)
	}
	return st
}

// runEngine is the whole redrive: msgs become dead-letter entries of a
// store (not timed), then one job redrives them all with the rate limit off
// — freezing the set, reading entries and bodies, building the messages,
// sending, and recording every outcome with its entry's status — timed
// from Start to the job's end.
func runEngine(b *testing.B, sender Sender, msgs []Message) {
	b.Helper()
	ctx := context.Background()
	st := seedStore(b, msgs)
	eng, err := New(Options{Store: st, Unlimited: true, Poll: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		Sender: func(string, string) (Sender, error) { return sender, nil }})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); eng.Run(rctx) }()
	defer func() { cancel(); <-done }()
	actor := Actor{P: &access.Principal{User: "bench", Grants: []access.Grant{{Actions: access.Actions(), Resources: []string{"*"}, Tenants: []string{"*"}}}}}
	sel := Selector{Filter: &dlqstore.Filter{Status: []dlqstore.Status{dlqstore.StatusDead}}}
	b.ReportAllocs()
	b.ResetTimer()
	var busy, cpu time.Duration
	for range b.N {
		start, cpu0 := time.Now(), cpuTime()
		j, err := eng.Start(ctx, actor, Request{Action: ActionRedrive, Selector: sel, Reason: "bench", Force: true})
		if err != nil {
			b.Fatal(err)
		}
		started := time.Since(start)
		// Polled through the store (a primary-key read), every 5 ms: the
		// watching should not compete with the job for the two cores.
		for fin := j.Finished(); !fin; {
			time.Sleep(5 * time.Millisecond)
			rec, err := st.Job(ctx, j.ID)
			if err != nil {
				b.Fatal(err)
			}
			fin = !rec.FinishedAt.IsZero()
		}
		if j, err = eng.Job(ctx, actor, j.ID); err != nil {
			b.Fatal(err)
		}
		busy, cpu = busy+time.Since(start), cpu+cpuTime()-cpu0
		b.Logf("start (freeze %d entries) took %s of %s", len(msgs), started, time.Since(start))
		if j.State != dlqstore.JobCompleted || j.Done != len(msgs) {
			b.Fatalf("job ended %s with %d of %d sent: %s", j.State, j.Done, len(msgs), j.Error)
		}
		b.StopTimer()
		ids := make([]int64, len(msgs))
		for i := range ids {
			ids[i] = int64(i + 1)
		}
		if _, err := st.SetStatus(ctx, ids, dlqstore.StatusDead); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportBusy(b, b.N*len(msgs), busy, cpu)
}

// reportBusy reports msgs/s over busy, and the process's CPU time per
// message (cpu-µs/msg), which a machine shared with other work inflates
// far less than the wall clock: compare that when msgs/s is noisy.
func reportBusy(b *testing.B, n int, busy, cpu time.Duration) {
	b.ReportMetric(float64(n)/busy.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bareMsg is one message as the bare loops read it back: the payload and
// the headers of its stored body, and the key.
type bareMsg struct {
	id        int64
	key, body []byte
	headers   []bareHeader
}

// bareHeader is one stored header (the store's JSON form of a header).
type bareHeader struct {
	K string  `json:"k"`
	V *string `json:"v,omitempty"`
	B []byte  `json:"b,omitempty"`
}

func (h bareHeader) value() []byte {
	if h.V != nil {
		return []byte(*h.V)
	}
	return h.B
}

// runBare is the baseline of runEngine: the same durable work done bare,
// as well as it can be, on a store seeded the same way. Per batch of
// benchBatch: one query reading the raw payload and header blobs of the
// batch's entries (unpacked when stored compressed, the headers decoded),
// send (every message of the batch in flight, then every ack), and one
// range UPDATE of the entries' status. The key comes from msgs: a bare
// design would keep it in a column of its own. No ledger, no freeze, no
// group counts.
func runBare(b *testing.B, msgs []Message, send func(ctx context.Context, batch []bareMsg) error) {
	b.Helper()
	ctx := context.Background()
	st := seedStore(b, msgs)
	db := st.DB()
	zdec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	defer zdec.Close()
	// A column's blob is a zstd frame when its bit of codec is set, an S2
	// block when the bit three places up is, an S2 block compressed with
	// the dictionary of the set whose id is above bit 9 when the bit six
	// places up is, else the bytes themselves (dlqstore's blob.go and
	// dict.go). The sets are read once, before the clock starts.
	dicts := map[int][3]*s2.Dict{}
	drows, err := db.QueryContext(ctx, "SELECT id, payload, headers FROM body_dicts")
	if err != nil {
		b.Fatal(err)
	}
	for drows.Next() {
		var id int
		var p, h []byte
		if err := drows.Scan(&id, &p, &h); err != nil {
			b.Fatal(err)
		}
		dicts[id] = [3]*s2.Dict{s2.NewDict(p), s2.NewDict(h)}
	}
	if err := drows.Close(); err != nil {
		b.Fatal(err)
	}
	unpack := func(codec, bit int, blob []byte) []byte {
		var out []byte
		var err error
		switch {
		case blob == nil:
		case codec&bit != 0:
			out, err = zdec.DecodeAll(blob, nil)
		case codec&(bit<<3) != 0:
			out, err = s2.Decode(nil, blob)
		case codec&(bit<<6) != 0:
			out, err = dicts[codec>>9][bit>>1].Decode(nil, blob)
		default:
			out = append([]byte(nil), blob...)
		}
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	read, err := db.PrepareContext(ctx, "SELECT id, codec, payload, headers FROM entry_bodies WHERE id BETWEEN ? AND ? ORDER BY id")
	if err != nil {
		b.Fatal(err)
	}
	defer read.Close()
	batch := make([]bareMsg, 0, benchBatch)
	b.ReportAllocs()
	b.ResetTimer()
	var busy, cpu time.Duration
	for range b.N {
		start, cpu0 := time.Now(), cpuTime()
		for from := 1; from <= len(msgs); from += benchBatch {
			to := min(from+benchBatch-1, len(msgs))
			rows, err := read.QueryContext(ctx, from, to)
			if err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
			for rows.Next() {
				var id int64
				var codec int
				var payload, headers sql.RawBytes
				if err := rows.Scan(&id, &codec, &payload, &headers); err != nil {
					b.Fatal(err)
				}
				m := bareMsg{id: id, key: msgs[id-1].Key, body: unpack(codec, 1, payload)}
				if err := json.Unmarshal(unpack(codec, 2, headers), &m.headers); err != nil {
					b.Fatalf("entry %d: the stored headers are no longer the JSON this loop reads: %v", id, err)
				}
				batch = append(batch, m)
			}
			if err := rows.Close(); err != nil {
				b.Fatal(err)
			}
			if err := send(ctx, batch); err != nil {
				b.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, "UPDATE entries SET status = 'redriven', updated_at = ? WHERE id BETWEEN ? AND ?", time.Now().UnixNano(), from, to); err != nil {
				b.Fatal(err)
			}
		}
		busy, cpu = busy+time.Since(start), cpu+cpuTime()-cpu0
		b.StopTimer()
		if _, err := db.ExecContext(ctx, "UPDATE entries SET status = 'dead'"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportBusy(b, b.N*len(msgs), busy, cpu)
}

func reportMsgsPerSec(b *testing.B, n int, start time.Time) {
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
}

// benchMessages returns n redriven dead letters to target: a ~500-byte
// envelope, the original key (one of 1,000) and the headers RedriveHeaders
// gives a Switchyard dead letter.
func benchMessages(n int, target Target) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		id := fmt.Sprintf("0b8c3f0e-6a56-4d8f-9d3e-%012d", i)
		key := fmt.Sprintf("cus-%04d", i%1000)
		body := fmt.Sprintf(`{"id":%q,"type":"orders.order.created.v1","occurred_at":"2025-03-14T09:26:35.002Z","source":"checkout",`+
			`"correlation_id":"9d45d438-0e6f-46df-a270-1eeabdb227e1","trace_id":"e8f543ca0aee94038dbcc16ac96bc10b",`+
			`"payload":{"order_id":"ord-%d","customer":%q,"total":{"amount":"129.90","currency":"EUR"},`+
			`"lines":[{"sku":"SKU-1001","qty":2},{"sku":"SKU-2002","qty":1}],"note":"leave at the door, ring twice"},`+
			`"metadata":{"partition_key":%q,"tenant_id":"t-acme-de"}}`, id, i, key, key)
		dl := delivery.DeadLetter{
			Headers: delivery.Headers{
				{Key: delivery.HeaderTraceparent, Value: []byte("00-e8f543ca0aee94038dbcc16ac96bc10b-1560b39a8ea09fb6-01")},
				{Key: delivery.HeaderCorrelationID, Value: []byte("9d45d438-0e6f-46df-a270-1eeabdb227e1")},
				{Key: delivery.HeaderEventID, Value: []byte(id)},
				{Key: delivery.HeaderEventType, Value: []byte("orders.order.created.v1")},
				{Key: delivery.HeaderTenantID, Value: []byte("t-acme-de")},
				{Key: delivery.HeaderErrorCode, Value: []byte("PAYMENT_DECLINED")},
				{Key: delivery.HeaderAttempts, Value: []byte("5")},
			},
			DLQ:    delivery.Location{Broker: target.Broker, Cluster: target.Cluster, Topic: target.Topic + ".dlq", Partition: 0, Offset: int64(i)},
			Origin: delivery.Location{Broker: target.Broker, Cluster: target.Cluster, Topic: target.Topic, Partition: int32(i % benchPartitions), Offset: int64(i)},
		}
		if target.Broker == delivery.BrokerRabbitMQ {
			dl.DLQ = delivery.Location{Broker: target.Broker, Cluster: target.Cluster, VHost: target.VHost, Queue: target.RoutingKey + ".dlq", Partition: -1, Offset: -1}
			dl.Origin = delivery.Location{Broker: target.Broker, Cluster: target.Cluster, VHost: target.VHost, Queue: target.RoutingKey, Partition: -1, Offset: -1}
		}
		h, _, _ := delivery.RedriveHeaders(dl, 1)
		msgs[i] = Message{
			EntryID: int64(i + 1), Target: target, Key: []byte(key), Headers: h, Body: []byte(body),
			MessageID: id, CorrelationID: "9d45d438-0e6f-46df-a270-1eeabdb227e1", ContentType: "application/json", Type: "orders.order.created.v1",
		}
	}
	return msgs
}

func BenchmarkRedriveKafka(b *testing.B) {
	addrs := senderKafka(b, benchPartitions, benchKafkaTopic)
	msgs := benchMessages(benchKafkaN, senderKafkaTarget(benchKafkaTopic))

	b.Run("switchyard", func(b *testing.B) {
		runEngine(b, senderKafkaSender(b, addrs), msgs)
	})

	b.Run("sender-only", func(b *testing.B) {
		s := senderKafkaSender(b, addrs)
		runRedrive(b, s.Send, msgs)
	})

	b.Run("bare-kgo", func(b *testing.B) {
		// The publisher's producer settings: idempotent (kgo's default) and
		// acks=all; no linger, as the sender flushes each batch.
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		topic := msgs[0].Target.Topic
		runBare(b, msgs, func(ctx context.Context, batch []bareMsg) error {
			var (
				wg    sync.WaitGroup
				mu    sync.Mutex
				first error
			)
			wg.Add(len(batch))
			for _, m := range batch {
				hs := make([]kgo.RecordHeader, len(m.headers))
				for i, h := range m.headers {
					hs[i] = kgo.RecordHeader{Key: h.K, Value: h.value()}
				}
				cl.Produce(ctx, &kgo.Record{Topic: topic, Key: m.key, Value: m.body, Headers: hs}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
					}
					wg.Done()
				})
			}
			wg.Wait()
			return first
		})
	})
}

func BenchmarkRedriveRabbit(b *testing.B) {
	url, conn := senderRabbit(b)
	msgs := benchMessages(benchRabbitN, senderRabbitTarget(benchRabbitQueue))
	// Each variant gets its own queue.
	retarget := func(q string) []Message {
		out := make([]Message, len(msgs))
		copy(out, msgs)
		for i := range out {
			out[i].Target = senderRabbitTarget(q)
		}
		return out
	}

	b.Run("switchyard", func(b *testing.B) {
		q := senderQueue(b, conn)
		runEngine(b, senderRabbitSender(b, url), retarget(q))
	})

	b.Run("sender-only", func(b *testing.B) {
		q := senderQueue(b, conn)
		s := senderRabbitSender(b, url)
		runRedrive(b, s.Send, retarget(q))
	})

	b.Run("bare-amqp091", func(b *testing.B) {
		q := senderQueue(b, conn)
		ch, err := conn.Channel()
		if err != nil {
			b.Fatal(err)
		}
		defer ch.Close()
		if err := ch.Confirm(false); err != nil {
			b.Fatal(err)
		}
		returns := ch.NotifyReturn(make(chan amqp.Return, benchRabbitN))
		ms := retarget(q)
		dcs := make([]*amqp.DeferredConfirmation, 0, benchBatch)
		runBare(b, ms, func(ctx context.Context, batch []bareMsg) error {
			// A batch in flight at once, then every confirm: the fastest
			// plain way to publish with confirms, with the sender's window.
			dcs = dcs[:0]
			for _, m := range batch {
				hs := make(amqp.Table, len(m.headers))
				for _, h := range m.headers {
					if h.V != nil {
						hs[h.K] = *h.V
					} else {
						hs[h.K] = h.B
					}
				}
				dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q, true, false, amqp.Publishing{Headers: hs, ContentType: "application/json",
					DeliveryMode: amqp.Persistent, MessageId: ms[m.id-1].MessageID, CorrelationId: ms[m.id-1].CorrelationID, Type: ms[m.id-1].Type, Body: m.body})
				if err != nil {
					return err
				}
				dcs = append(dcs, dc)
			}
			for i, dc := range dcs {
				if !dc.Wait() {
					return fmt.Errorf("message %d nacked", i)
				}
			}
			select {
			case r := <-returns:
				return fmt.Errorf("message %s returned: %s", r.MessageId, r.ReplyText)
			default:
			}
			return nil
		})
	})
}
