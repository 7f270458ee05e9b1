package redrive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
	"switchyard/delivery/kafka"
	"switchyard/delivery/rabbitmq"
	"switchyard/dlqstore"
	"switchyard/internal/testenv"
)

// Crash safety: a redrive job of 10,000 dead letters runs in a child
// process (this test binary re-executed) that is SIGKILLed at random
// moments and restarted on the same database, while the broker lives on
// in this process (kfake) or is the real RabbitMQ. Nothing may be lost,
// and a message may arrive twice only as an exact copy, at most one
// batch per kill.

const (
	crashModeEnv  = "REDRIVE_CRASH_CHILD" // "kafka" or "rabbitmq": run as the child
	crashStoreEnv = "REDRIVE_CRASH_STORE" // the child's database file
	crashAddrEnv  = "REDRIVE_CRASH_ADDR"  // Kafka brokers (comma-separated) or the AMQP URL
	crashSeedEnv  = "REDRIVE_CRASH_SEED"  // replays a kill schedule

	crashN            = 10000
	crashRate         = 1000.0 // messages/s: a 10 s job, long enough to be killed several times
	crashKafkaCluster = "main"
	crashRabbit       = "local"
	crashTopic        = "orders"
)

// crashWindow is the most messages one kill can leave sent but not
// recorded: the batch in flight, which is a tenth of a second's worth at
// the job's rate (pacer.batch in run.go).
const crashWindow = int(crashRate / 10)

// TestCrashKafkaKilledMidJob: a Kafka redrive survives SIGKILLs.
func TestCrashKafkaKilledMidJob(t *testing.T) {
	if os.Getenv(crashModeEnv) == delivery.BrokerKafka {
		crashChild(delivery.BrokerKafka)
		return
	}
	if testing.Short() {
		t.Skip("runs child processes")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, crashTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	path, st := crashStore(t)
	dlq := delivery.DLQTopic(crashTopic)
	envs := crashKafkaDeadLetters(t, st, dlq, crashN)
	job := crashStartJob(t, st, dlq)

	kills := crashRun(t, st, job.ID, "^TestCrashKafkaKilledMidJob$",
		crashModeEnv+"="+delivery.BrokerKafka, crashStoreEnv+"="+path, crashAddrEnv+"="+strings.Join(addrs, ","))

	got := map[string][][]byte{}
	for _, r := range crashReadTopic(t, addrs, crashTopic) {
		var env delivery.Envelope
		if err := json.Unmarshal(r.Value, &env); err != nil {
			t.Fatalf("%s/%d@%d is not an envelope: %v", r.Topic, r.Partition, r.Offset, err)
		}
		if want, ok := envs[env.ID]; ok && string(r.Key) != want.Metadata.PartitionKey {
			t.Errorf("envelope %s arrived with key %q, want its original key %q", env.ID, r.Key, want.Metadata.PartitionKey)
		}
		got[env.ID] = append(got[env.ID], r.Value)
	}
	crashCheck(t, st, job.ID, dlq, envs, got, kills)
}

// TestCrashRabbitKilledMidJob: a RabbitMQ redrive survives SIGKILLs.
func TestCrashRabbitKilledMidJob(t *testing.T) {
	if os.Getenv(crashModeEnv) == delivery.BrokerRabbitMQ {
		crashChild(delivery.BrokerRabbitMQ)
		return
	}
	if testing.Short() {
		t.Skip("runs child processes")
	}
	url, conn := e2eDial(t)
	q := e2eRabbitQueue(t, conn, "crash")
	dlq := delivery.DLQQueue(q)
	path, st := crashStore(t)
	envs := crashRabbitDeadLetters(t, st, q, crashN)
	job := crashStartJob(t, st, dlq)

	kills := crashRun(t, st, job.ID, "^TestCrashRabbitKilledMidJob$",
		crashModeEnv+"="+delivery.BrokerRabbitMQ, crashStoreEnv+"="+path, crashAddrEnv+"="+url)

	got := map[string][][]byte{}
	for _, d := range crashDrain(t, conn, q) {
		var env delivery.Envelope
		if err := json.Unmarshal(d.Body, &env); err != nil {
			t.Fatalf("a message of %s is not an envelope: %v", q, err)
		}
		if d.MessageId != env.ID {
			t.Errorf("message id %q, want the envelope id %s", d.MessageId, env.ID)
		}
		got[env.ID] = append(got[env.ID], d.Body)
	}
	crashCheck(t, st, job.ID, dlq, envs, got, kills)
}

// crashChild runs the engine on the store until the parent kills it.
func crashChild(broker string) {
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "crash child: %s: %v\n", what, err)
		os.Exit(2)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := dlqstore.Open(ctx, os.Getenv(crashStoreEnv), dlqstore.Options{Logger: log})
	if err != nil {
		fail("open store", err)
	}
	addr := os.Getenv(crashAddrEnv)
	var sender Sender
	cluster := crashKafkaCluster
	switch broker {
	case delivery.BrokerKafka:
		pub, err := kafka.NewPublisher(kafka.PublisherOptions{Brokers: strings.Split(addr, ","), Logger: log})
		if err != nil {
			fail("kafka publisher", err)
		}
		sender = NewKafkaSender(pub)
	default:
		pub, err := rabbitmq.NewPublisher(rabbitmq.PublisherOptions{URL: addr, Name: "redrive-crash-child", Logger: log})
		if err != nil {
			fail("rabbitmq publisher", err)
		}
		sender, cluster = NewRabbitSender(pub), crashRabbit
	}
	e, err := New(Options{Store: st, Poll: 50 * time.Millisecond, Logger: log,
		Sender: func(b, c string) (Sender, error) {
			if b == broker && c == cluster {
				return sender, nil
			}
			return nil, fmt.Errorf("no %s connection %q", b, c)
		}})
	if err != nil {
		fail("engine", err)
	}
	_ = e.Run(ctx) // returns only when ctx ends, which it never does
	fail("engine", fmt.Errorf("Run returned"))
}

func crashStore(t *testing.T) (string, *dlqstore.Store) {
	t.Helper()
	path := t.TempDir() + "/dlq.db"
	st, err := dlqstore.Open(context.Background(), path, dlqstore.Options{Logger: e2eQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return path, st
}

// crashEnvelope is the i-th order of a crash test; 50 partition keys.
func crashEnvelope(t *testing.T, i int) (delivery.Envelope, []byte) {
	t.Helper()
	env, err := delivery.NewEnvelope("orders.order.created.v1", "shop", map[string]any{"n": i},
		delivery.Metadata{TenantID: "t1", PartitionKey: "order-" + strconv.Itoa(i%50)})
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return env, body
}

func crashError() delivery.ErrorInfo {
	return delivery.ErrorInfo{Code: e2eCode, Message: "order not found"}
}

// crashKafkaDeadLetters indexes n dead letters of crashTopic, as read from
// partition 0 of dlq, and returns their envelopes by id.
func crashKafkaDeadLetters(t *testing.T, st *dlqstore.Store, dlq string, n int) map[string]delivery.Envelope {
	t.Helper()
	envs := map[string]delivery.Envelope{}
	now := time.Now()
	for from := 0; from < n; from += 1000 {
		to := min(n, from+1000)
		var items []dlqstore.IndexItem
		for i := from; i < to; i++ {
			env, body := crashEnvelope(t, i)
			envs[env.ID] = env
			dl := delivery.DeadLetter{Format: delivery.FormatSwitchyard, Envelope: &env, Payload: body, Key: []byte(env.Metadata.PartitionKey),
				Origin:   delivery.Location{Broker: delivery.BrokerKafka, Cluster: crashKafkaCluster, Topic: crashTopic, Partition: int32(i % 3), Offset: int64(i / 3)},
				DLQ:      delivery.Location{Broker: delivery.BrokerKafka, Cluster: crashKafkaCluster, Topic: dlq, Partition: 0, Offset: int64(i)},
				Error:    crashError(),
				Attempts: 3, FirstFailureAt: now, LastFailureAt: now,
				Headers: delivery.Headers{{Key: delivery.HeaderEventID, Value: []byte(env.ID)}},
			}
			items = append(items, dlqstore.IndexItem{DL: dl, PayloadSize: len(body)})
		}
		if _, err := st.IndexKafka(context.Background(), crashKafkaCluster, dlq, 0, items, int64(to)); err != nil {
			t.Fatal(err)
		}
	}
	return envs
}

// crashRabbitDeadLetters indexes n dead letters of queue q, as taken from
// <q>.dlq, and returns their envelopes by id.
func crashRabbitDeadLetters(t *testing.T, st *dlqstore.Store, q string, n int) map[string]delivery.Envelope {
	t.Helper()
	envs := map[string]delivery.Envelope{}
	now := time.Now()
	for from := 0; from < n; from += 1000 {
		var items []dlqstore.IndexItem
		for i := from; i < min(n, from+1000); i++ {
			env, body := crashEnvelope(t, i)
			envs[env.ID] = env
			dl := delivery.DeadLetter{Format: delivery.FormatSwitchyard, Envelope: &env, Payload: body,
				Origin: delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: crashRabbit, VHost: "/", Queue: q, RoutingKey: q,
					Partition: -1, Offset: -1},
				DLQ: delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: crashRabbit, VHost: "/", Queue: delivery.DLQQueue(q),
					RoutingKey: delivery.DLQQueue(q), Partition: -1, Offset: -1},
				Error:    crashError(),
				Attempts: 3, FirstFailureAt: now, LastFailureAt: now,
				Headers: delivery.Headers{{Key: delivery.HeaderEventID, Value: []byte(env.ID)}},
			}
			items = append(items, dlqstore.IndexItem{DL: dl, MessageID: env.ID, PayloadSize: len(body)})
		}
		if _, err := st.IndexRabbit(context.Background(), items); err != nil {
			t.Fatal(err)
		}
	}
	return envs
}

// crashStartJob creates (but does not run) a redrive of the failure group
// of dlq's entries.
func crashStartJob(t *testing.T, st *dlqstore.Store, dlq string) Job {
	t.Helper()
	page, err := st.FindEntries(context.Background(), dlqstore.Filter{Destination: dlq, Limit: 1})
	if err != nil || len(page.Entries) == 0 {
		t.Fatalf("no entry in %s: %v", dlq, err)
	}
	e, err := New(Options{Store: st, Logger: e2eQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	job, err := e.Start(context.Background(), admin, Request{Action: ActionRedrive, Selector: Selector{Group: page.Entries[0].GroupID},
		Rate: crashRate, Reason: "crash test: redrive while being killed"})
	if err != nil {
		t.Fatal(err)
	}
	if job.Total != crashN {
		t.Fatalf("job froze %d entries, want %d", job.Total, crashN)
	}
	return job
}

// crashLog collects the children's stderr.
type crashLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *crashLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *crashLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// crashChildProc is a running child and the channel its exit arrives on.
type crashChildProc struct {
	cmd    *exec.Cmd
	exited chan error
}

func crashSpawn(t *testing.T, run string, env []string, log *crashLog) *crashChildProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &crashChildProc{cmd: cmd, exited: make(chan error, 1)}
	go func() { c.exited <- cmd.Wait() }()
	t.Cleanup(c.kill)
	return c
}

// kill SIGKILLs the child (if it still runs) and waits for it.
func (c *crashChildProc) kill() {
	if c.exited == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
	c.exited = nil
}

// crashJob reads the job from the store, as another process wrote it.
func crashJob(t *testing.T, st *dlqstore.Store, id int64) dlqstore.JobRecord {
	t.Helper()
	j, err := st.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// crashRun runs the job in children, SIGKILLs 3 to 5 of them at random
// moments, lets the last one complete the job, and returns the kills.
func crashRun(t *testing.T, st *dlqstore.Store, jobID int64, run string, env ...string) int {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s: %v", crashSeedEnv, err)
		}
	}
	t.Logf("kill schedule seed %d (%s=%d replays it)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	kills := 3 + rng.IntN(3)
	log := &crashLog{}
	defer func() {
		if out := log.String(); strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:") {
			t.Errorf("a child reported a race or panicked:\n%s", out)
		}
	}()
	// wait polls the job until cond holds, failing when the child exits
	// on its own or the deadline passes.
	wait := func(c *crashChildProc, what string, cond func(dlqstore.JobRecord) bool) dlqstore.JobRecord {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			j := crashJob(t, st, jobID)
			if cond(j) {
				return j
			}
			select {
			case err := <-c.exited:
				c.exited = nil
				t.Fatalf("child exited on its own (%v) while waiting for %s; its stderr:\n%s", err, what, log.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: job %s, %d/%d done; children's stderr:\n%s", what, j.State, j.Done, j.Total, log.String())
			}
		}
	}
	done := 0
	for k := 1; k <= kills; k++ {
		c := crashSpawn(t, run, env, log)
		// Let this child record progress of its own, then kill it a random
		// moment later: within a batch, between batches or mid-write.
		wait(c, fmt.Sprintf("child %d to make progress", k), func(j dlqstore.JobRecord) bool { return j.Done > done })
		delay := time.Duration(rng.IntN(600)) * time.Millisecond
		time.Sleep(delay)
		before := crashJob(t, st, jobID)
		if !before.FinishedAt.IsZero() {
			t.Fatalf("the job ended (%s) before kill %d of %d: it must run longer than the kill schedule", before.State, k, kills)
		}
		c.kill()
		after := crashJob(t, st, jobID)
		t.Logf("kill %d/%d: %s after progress; %d of %d recorded sent", k, kills, delay, after.Done, after.Total)
		if after.Done < done {
			t.Fatalf("recorded progress went back from %d to %d", done, after.Done)
		}
		done = after.Done
	}
	c := crashSpawn(t, run, env, log)
	end := wait(c, "the last child to complete the job", func(j dlqstore.JobRecord) bool { return !j.FinishedAt.IsZero() })
	c.kill()
	if end.State != dlqstore.JobCompleted {
		t.Fatalf("job ended %s (%q), want completed", end.State, end.Error)
	}
	return kills
}

// crashReadTopic reads every record of topic up to its end offsets.
func crashReadTopic(t *testing.T, addrs []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	end := testenv.KafkaEndOffsets(t, kadm.NewClient(cl), topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := map[int32]int64{}
	caughtUp := func() bool {
		for p, hwm := range end {
			if next[p] < hwm {
				return false
			}
		}
		return true
	}
	var out []*kgo.Record
	for !caughtUp() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records of %s before the deadline (end offsets %v)", len(out), topic, end)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			next[r.Partition] = r.Offset + 1
		})
	}
	return out
}

// crashDrain consumes every message of q and checks it is empty after.
func crashDrain(t *testing.T, conn *amqp.Connection, q string) []amqp.Delivery {
	t.Helper()
	n := e2eReady(t, conn, q)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Qos(1000, 0, false); err != nil {
		t.Fatal(err)
	}
	dels, err := ch.Consume(q, "redrive-crash-drain", false, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]amqp.Delivery, 0, n)
	timeout := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case d, ok := <-dels:
			if !ok {
				t.Fatalf("the consumer of %s was closed after %d of %d messages", q, len(out), n)
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		case <-timeout:
			t.Fatalf("drained %d of %d messages of %s before the deadline", len(out), n, q)
		}
	}
	if err := ch.Cancel("redrive-crash-drain", false); err != nil {
		t.Fatal(err)
	}
	if left := e2eReady(t, conn, q); left != 0 {
		t.Errorf("%s still holds %d messages after draining %d", q, left, n)
	}
	return out
}

// crashCheck asserts what the user cares about after the crashes: every
// dead letter arrived, copies are exact and within the in-flight window,
// the ledger and the entries say redriven, and the counts agree.
func crashCheck(t *testing.T, st *dlqstore.Store, jobID int64, dlq string, envs map[string]delivery.Envelope, got map[string][][]byte, kills int) {
	t.Helper()
	ctx := context.Background()
	total, missing, dups := 0, 0, 0
	for id, copies := range got {
		total += len(copies)
		if _, ok := envs[id]; !ok {
			t.Errorf("unknown envelope %s arrived %d times", id, len(copies))
			continue
		}
		dups += len(copies) - 1
		for _, c := range copies[1:] {
			if !bytes.Equal(c, copies[0]) {
				t.Errorf("envelope %s arrived twice with different bodies:\n%s\n%s", id, copies[0], c)
			}
		}
	}
	for id := range envs {
		if len(got[id]) == 0 {
			missing++
			if missing <= 5 {
				t.Errorf("envelope %s never arrived", id)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d dead letters were lost", missing, len(envs))
	}
	t.Logf("%d messages arrived for %d dead letters: %d duplicates after %d kills (window %d per kill)", total, len(envs), dups, kills, crashWindow)
	if dups > kills*crashWindow {
		t.Errorf("%d duplicates after %d kills; at most one batch per kill (%d) may be sent twice", dups, kills, kills*crashWindow)
	}

	job := crashJob(t, st, jobID)
	if job.State != dlqstore.JobCompleted || job.Done != len(envs) || job.Failed != 0 || job.Cancelled != 0 {
		t.Errorf("job = %s, %d done, %d failed, %d cancelled; want completed with %d done", job.State, job.Done, job.Failed, job.Cancelled, len(envs))
	}
	sent, bad, seen := 0, 0, map[int64]bool{}
	for after := 0; ; {
		items, next, err := st.JobItems(ctx, jobID, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.State == dlqstore.ItemSent {
				sent++
			} else if bad++; bad <= 5 {
				t.Errorf("ledger item %d (entry %d) is %s %q", it.Seq, it.EntryID, it.State, it.Error)
			}
			seen[it.EntryID] = true
		}
		if next == 0 {
			break
		}
		after = next
	}
	if sent != len(envs) || len(seen) != len(envs) {
		t.Errorf("ledger: %d sent items over %d entries, want %d", sent, len(seen), len(envs))
	}

	byStatus := map[dlqstore.Status]int{}
	for _, en := range e2eEntries(t, st, dlq) {
		byStatus[en.Status]++
	}
	if byStatus[dlqstore.StatusRedriven] != len(envs) || len(byStatus) != 1 {
		t.Errorf("entries by status = %v, want all %d redriven", byStatus, len(envs))
	}
	c, err := st.Counts(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for s, n := range c.ByStatus {
		if n != byStatus[s] {
			t.Errorf("Counts says %d %s, the entries %d", n, s, byStatus[s])
		}
	}
	for s, n := range byStatus {
		if c.ByStatus[s] != n {
			t.Errorf("Counts says %d %s, the entries %d", c.ByStatus[s], s, n)
		}
	}
	if c.ByDestination[dlq] != len(envs) {
		t.Errorf("Counts says %d entries in %s, want %d", c.ByDestination[dlq], dlq, len(envs))
	}
}
