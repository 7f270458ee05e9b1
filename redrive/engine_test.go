package redrive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/delivery/kafka"
	"switchyard/dlqstore"
	"switchyard/internal/testenv"
)

const testCluster = "main"

// rig is a store with dead letters of one kfake topic, an engine sending
// to that cluster, and a recording audit log.
type rig struct {
	store   *dlqstore.Store
	engine  *Engine
	brokers []string
	audit   *memAudit
	cancel  context.CancelFunc
	done    chan struct{}
}

type memAudit struct {
	mu  sync.Mutex
	evs []access.AuditEvent
}

func (m *memAudit) Append(_ context.Context, e access.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evs = append(m.evs, e)
	return nil
}

func (m *memAudit) actions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.evs {
		out = append(out, e.Action)
	}
	return out
}

func newRig(t testing.TB, opts Options, topics ...string) *rig {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	st, err := dlqstore.Open(context.Background(), filepath.Join(t.TempDir(), "dlq.db"), dlqstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub, err := kafka.NewPublisher(kafka.PublisherOptions{Brokers: c.ListenAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	sender := NewKafkaSender(pub)
	r := &rig{store: st, brokers: c.ListenAddrs(), audit: &memAudit{}}
	opts.Store, opts.Audit = st, r.audit
	opts.Sender = func(broker, cluster string) (Sender, error) {
		if broker == delivery.BrokerKafka && cluster == testCluster {
			return sender, nil
		}
		return nil, fmt.Errorf("no %s connection %q", broker, cluster)
	}
	if opts.Poll == 0 {
		opts.Poll = 50 * time.Millisecond
	}
	if r.engine, err = New(opts); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	return r
}

func (r *rig) start(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() { defer close(r.done); r.engine.Run(ctx) }()
	t.Cleanup(r.stop)
}

func (r *rig) stop() {
	r.cancel()
	<-r.done
}

// restart stops the rig's engine and starts one with its options as
// change leaves them.
func (r *rig) restart(t testing.TB, change func(*Options)) {
	t.Helper()
	r.stop()
	opts := r.engine.opts
	change(&opts)
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.engine = e
	r.start(t)
}

// redriveDead starts a redrive of every dead entry as admin.
func (r *rig) redriveDead(t testing.TB, reason string) Job {
	t.Helper()
	j, err := r.engine.Start(context.Background(), admin, Request{Action: ActionRedrive,
		Selector: Selector{Filter: &dlqstore.Filter{Status: []dlqstore.Status{dlqstore.StatusDead}}}, Reason: reason})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// deadLetters indexes n dead letters that failed on topic (keys k0…k{n%keys})
// for tenant, as if read from <topic>.dlq partition 0, and returns their ids.
func (r *rig) deadLetters(t testing.TB, topic, tenant string, n, keys int, redriveCount int) []int64 {
	t.Helper()
	var items []dlqstore.IndexItem
	base, _ := r.store.KafkaOffsets(context.Background(), testCluster)
	off := base[dlqstore.TopicPartition{Topic: topic + ".dlq", Partition: 0}]
	for i := range n {
		env, err := delivery.NewEnvelope("order.created", "orders", map[string]any{"n": i}, delivery.Metadata{TenantID: tenant, PartitionKey: "k" + strconv.Itoa(i%keys)})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(env)
		dl := delivery.DeadLetter{Format: delivery.FormatSwitchyard, Envelope: &env, Payload: body, Key: []byte("k" + strconv.Itoa(i%keys)),
			Origin:   delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: topic, Partition: 0, Offset: int64(i)},
			DLQ:      delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: topic + ".dlq", Partition: 0, Offset: off + int64(i)},
			Error:    delivery.ErrorInfo{Code: "ORDER_NOT_FOUND", Message: "order not found"},
			Attempts: 3, RedriveCount: redriveCount, LastFailureAt: time.Now(),
			Headers: delivery.Headers{{Key: "tenant_id", Value: []byte(tenant)}, {Key: delivery.HeaderErrorCode, Value: []byte("ORDER_NOT_FOUND")},
				{Key: "kafka_dlt-exception-message", Value: []byte("stale")}},
		}
		items = append(items, dlqstore.IndexItem{DL: dl, PayloadSize: len(body)})
	}
	if _, err := r.store.IndexKafka(context.Background(), testCluster, topic+".dlq", 0, items, off+int64(n)); err != nil {
		t.Fatal(err)
	}
	page, err := r.store.FindEntries(context.Background(), dlqstore.Filter{Destination: topic + ".dlq", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, e := range page.Entries {
		if e.DL.DLQ.Offset >= off {
			ids = append(ids, e.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

var (
	admin = Actor{P: &access.Principal{User: "ada", Method: access.MethodSession, Grants: []access.Grant{
		{Role: "admin", Actions: access.Actions(), Resources: []string{"*"}, Tenants: []string{"*"}}}}}
	operatorT1 = Actor{P: &access.Principal{User: "tess", Method: access.MethodSession, Grants: []access.Grant{
		{Role: "operator", Actions: []access.Action{access.ActionView, access.ActionRedrive, access.ActionDiscard}, Resources: []string{"kafka:main/orders"}, Tenants: []string{"t1"}}}}}
	viewer = Actor{P: &access.Principal{User: "vera", Method: access.MethodSession, Grants: []access.Grant{
		{Role: "viewer", Actions: []access.Action{access.ActionView}, Resources: []string{"*"}, Tenants: []string{"*"}}}}}
)

func waitJob(t testing.TB, e *Engine, id int64, states ...dlqstore.JobState) Job {
	t.Helper()
	var j Job
	testenv.WaitWithin(t, 60*time.Second, fmt.Sprintf("job %d to be one of %v", id, states), func() bool {
		var err error
		if j, err = e.Job(context.Background(), admin, id); err != nil {
			t.Fatal(err)
		}
		return slices.Contains(states, j.State)
	})
	return j
}

func consume(t testing.TB, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records from %s", len(out), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// A redrive of a failure group publishes every entry to its origin topic
// with its key, stripped of stale error headers and carrying provenance,
// marks each entry redriven, keeps a ledger and audits start and end.
func TestRedriveGroupToOrigin(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 20, 4, 0)
	en, _ := r.store.Entry(context.Background(), ids[0])
	ctx := context.Background()

	plan, err := r.engine.Plan(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{Group: en.GroupID}})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Count != 20 || len(plan.Targets) != 1 || plan.Targets[0] != (TargetCount{"kafka:main/orders", 20}) || len(plan.Sample) != MaxSample {
		t.Fatalf("plan = %+v", plan)
	}
	if !slices.Contains(plan.Sample[0].HeadersRemoved, "kafka_dlt-exception-message") || !slices.ContainsFunc(plan.Sample[0].HeadersAdded, func(h delivery.Header) bool { return h.Key == delivery.HeaderRedriveCount }) {
		t.Errorf("sample headers: added %v removed %v", plan.Sample[0].HeadersAdded, plan.Sample[0].HeadersRemoved)
	}
	if _, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{Group: en.GroupID}}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("start without a reason: %v, want EINVALID", err)
	}
	job, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{Group: en.GroupID}, Rate: 1000, Reason: "fixed the lookup"})
	if err != nil {
		t.Fatal(err)
	}
	// Entries that fail later do not join the frozen set.
	r.deadLetters(t, "orders", "t1", 3, 1, 0)
	job = waitJob(t, r.engine, job.ID, dlqstore.JobCompleted)
	if job.Total != 20 || job.Done != 20 || job.Failed != 0 || job.Remaining != 0 {
		t.Fatalf("job = %+v", job)
	}
	recs := consume(t, r.brokers, "orders", 20)
	byKey := map[string][]int{}
	for _, rec := range recs {
		var env delivery.Envelope
		if err := json.Unmarshal(rec.Value, &env); err != nil {
			t.Fatal(err)
		}
		var n struct{ N int }
		_ = json.Unmarshal(env.Payload, &n)
		byKey[string(rec.Key)] = append(byKey[string(rec.Key)], n.N)
		h := delivery.Headers{}
		for _, x := range rec.Headers {
			h = append(h, delivery.Header{Key: x.Key, Value: x.Value})
		}
		if h.String(delivery.HeaderRedriveJob) != strconv.FormatInt(job.ID, 10) || h.String(delivery.HeaderRedriveCount) != "1" ||
			h.String(delivery.HeaderErrorCode) != "" || h.String("kafka_dlt-exception-message") != "" || h.String("tenant_id") != "t1" {
			t.Errorf("record headers = %v", h)
		}
	}
	for k, ns := range byKey { // per-key order kept
		if !slices.IsSorted(ns) {
			t.Errorf("key %s out of order: %v", k, ns)
		}
	}
	for _, id := range ids {
		e, _ := r.store.Entry(ctx, id)
		if e.Status != dlqstore.StatusRedriven {
			t.Errorf("entry %d is %s, want redriven", id, e.Status)
		}
	}
	ledger, next, err := r.engine.Ledger(ctx, admin, job.ID, 0, 50)
	if err != nil || len(ledger) != 20 || next != 0 || ledger[0].State != dlqstore.ItemSent || ledger[0].EntryID != ids[0] {
		t.Errorf("ledger = %+v %d %v", ledger, next, err)
	}
	hist, _ := r.engine.History(ctx, admin, ids[3])
	if len(hist) != 1 || hist[0].JobID != job.ID || hist[0].Actor != "ada" || hist[0].State != dlqstore.ItemSent {
		t.Errorf("history = %+v", hist)
	}
	if a := r.audit.actions(); !slices.Equal(a, []string{"dlq.job.start", "dlq.job.finish"}) {
		t.Errorf("audit = %v", a)
	}
	r.audit.mu.Lock()
	startEv, endEv := r.audit.evs[0], r.audit.evs[1]
	r.audit.mu.Unlock()
	if startEv.Actor != "ada" || startEv.Reason != "fixed the lookup" || fmt.Sprint(startEv.Details["destinations"]) != "map[kafka:main/orders:20]" ||
		startEv.Details["selector"] == nil || endEv.Outcome != access.OutcomeSuccess || endEv.Details["done"] != 20 {
		t.Errorf("audit records: start %+v, end %+v", startEv, endEv)
	}
}

// Permissions: a viewer may not redrive; an operator's plan holds only
// the entries of their topics and tenants.
func TestRedriveAuthorization(t *testing.T) {
	r := newRig(t, Options{}, "orders", "payments")
	r.deadLetters(t, "orders", "t1", 4, 1, 0)
	r.deadLetters(t, "orders", "t2", 3, 1, 0)
	r.deadLetters(t, "payments", "t1", 2, 1, 0)
	ctx := context.Background()
	all := Selector{Filter: &dlqstore.Filter{Status: []dlqstore.Status{dlqstore.StatusDead}}}
	if _, err := r.engine.Plan(ctx, viewer, Request{Action: ActionRedrive, Selector: all}); delivery.ErrorCode(err) != delivery.EFORBIDDEN {
		t.Errorf("viewer plan: %v, want EFORBIDDEN", err)
	}
	p, err := r.engine.Plan(ctx, operatorT1, Request{Action: ActionRedrive, Selector: all})
	if err != nil || p.Count != 4 {
		t.Errorf("operator plan = %d, %v; want her 4", p.Count, err)
	}
	if _, err := r.engine.Plan(ctx, operatorT1, Request{Action: ActionQuarantine, Selector: all}); delivery.ErrorCode(err) != delivery.EFORBIDDEN {
		t.Errorf("operator without quarantine: %v", err)
	}
	if _, err := r.engine.Plan(ctx, operatorT1, Request{Action: ActionRedrive, Selector: all, Target: "kafka:main/payments"}); delivery.ErrorCode(err) != delivery.EFORBIDDEN {
		t.Errorf("operator redrive elsewhere: %v", err)
	}
}

// Discard keeps the reason; restore brings entries back to dead.
func TestDiscardAndRestore(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 5, 1, 0)
	ctx := context.Background()
	j, err := r.engine.Start(ctx, admin, Request{Action: ActionDiscard, Selector: Selector{IDs: ids[:3]}, Reason: "test orders <b>from staging</b>"})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, r.engine, j.ID, dlqstore.JobCompleted)
	e, _ := r.store.Entry(ctx, ids[0])
	if e.Status != dlqstore.StatusDiscarded || e.StatusReason != "test orders <b>from staging</b>" {
		t.Errorf("discarded entry = %s %q", e.Status, e.StatusReason)
	}
	j, err = r.engine.Start(ctx, admin, Request{Action: ActionRestore, Selector: Selector{IDs: ids}, Reason: "wrong set"})
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, r.engine, j.ID, dlqstore.JobCompleted); j.Total != 3 {
		t.Errorf("restore froze %d entries, want the 3 discarded", j.Total)
	}
	c, _ := r.store.Counts(ctx, nil)
	if c.ByStatus[dlqstore.StatusDead] != 5 {
		t.Errorf("after restore: %v", c.ByStatus)
	}
}

// The rate limit holds: a job never runs faster than asked (a ceiling
// only; a loaded machine may run it slower).
func TestRateLimitHeld(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 60, 3, 0)
	start := time.Now()
	j, err := r.engine.Start(context.Background(), admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, Rate: 40, Reason: "rate"})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, r.engine, j.ID, dlqstore.JobCompleted)
	rate := float64(len(ids)) / time.Since(start).Seconds()
	if rate > 40*1.1 {
		t.Errorf("ran at %.1f msgs/s, limit 40", rate)
	}
}

// Cancel stops the job; what was sent stays sent, the rest goes back to
// dead.
func TestCancel(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 200, 3, 0)
	ctx := context.Background()
	j, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, Rate: 50, Reason: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "10 entries sent", func() bool {
		cur, _ := r.engine.Job(ctx, admin, j.ID)
		return cur.Done >= 10
	})
	if _, err := r.engine.Cancel(ctx, viewer, j.ID); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("viewer cancel: %v, want ENOTFOUND (not a job the viewer may see)", err)
	}
	if _, err := r.engine.Cancel(ctx, admin, j.ID); err != nil {
		t.Fatal(err)
	}
	end := waitJob(t, r.engine, j.ID, dlqstore.JobCancelled)
	if end.Done+end.Cancelled != 200 || end.Cancelled == 0 || end.Remaining != 0 {
		t.Fatalf("cancelled job = %+v", end)
	}
	c, _ := r.store.Counts(ctx, nil)
	if c.ByStatus[dlqstore.StatusRedriven] != end.Done || c.ByStatus[dlqstore.StatusDead] != end.Cancelled || c.ByStatus[dlqstore.StatusRedriving] != 0 {
		t.Errorf("counts after cancel = %v, job %+v", c.ByStatus, end)
	}
	if recs := consume(t, r.brokers, "orders", end.Done); len(recs) != end.Done {
		t.Errorf("topic has %d records, job says %d sent", len(recs), end.Done)
	}
	if _, err := r.engine.Cancel(ctx, admin, j.ID); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("cancel of an ended job: %v", err)
	}
}

// A job is the business of whoever may act on every entry of it, or of
// an admin: a t1 operator neither lists, reads, pages nor cancels an
// admin's job that holds t2 entries, nor sees its reason in an entry's
// history; the job's own actor gets no exception once their bindings
// shrink.
func TestJobsVisibleOnlyToWhoMayActOnEveryEntry(t *testing.T) {
	r := newRig(t, Options{}, "orders", "payments")
	t1 := r.deadLetters(t, "orders", "t1", 6, 1, 0)
	t2 := r.deadLetters(t, "orders", "t2", 4, 1, 0)
	ctx := context.Background()
	start := func(a Actor, reason string, ids ...int64) Job {
		t.Helper()
		j, err := r.engine.Start(ctx, a, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, Reason: reason,
			Canary: 1, CanaryWindow: time.Hour, Force: true})
		if err != nil {
			t.Fatal(err)
		}
		return waitJob(t, r.engine, j.ID, dlqstore.JobCanaryWait)
	}
	ours := start(admin, "t1 only", t1[0], t1[1])
	theirs := start(admin, "t2 secret reason", t2[0], t2[1])
	mixed := start(admin, "mixed secret reason", t1[2], t2[2])
	// tess once had t2 too; her binding shrank to t1 since.
	tessWide := Actor{P: &access.Principal{User: "tess", Grants: []access.Grant{{Role: "operator",
		Actions: []access.Action{access.ActionRedrive}, Resources: []string{"kafka:main/orders"}, Tenants: []string{"t1", "t2"}}}}}
	hers := start(tessWide, "tess's mixed job", t1[4], t2[3])

	ids := func(js []Job) []int64 {
		var out []int64
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	list, next, err := r.engine.Jobs(ctx, operatorT1, JobFilter{})
	if err != nil || next != 0 || !slices.Equal(ids(list), []int64{ours.ID}) {
		t.Errorf("t1 operator's jobs = %v (next %d, %v), want only %d", ids(list), next, err, ours.ID)
	}
	for _, j := range []Job{theirs, mixed, hers} {
		if _, err := r.engine.Job(ctx, operatorT1, j.ID); delivery.ErrorCode(err) != delivery.ENOTFOUND {
			t.Errorf("t1 operator reads job %d (%s): %v, want ENOTFOUND", j.ID, j.Reason, err)
		}
		if _, _, err := r.engine.Ledger(ctx, operatorT1, j.ID, 0, 10); delivery.ErrorCode(err) != delivery.ENOTFOUND {
			t.Errorf("t1 operator pages the ledger of job %d: %v, want ENOTFOUND", j.ID, err)
		}
		if _, err := r.engine.Cancel(ctx, operatorT1, j.ID); delivery.ErrorCode(err) != delivery.ENOTFOUND {
			t.Errorf("t1 operator cancels job %d: %v, want ENOTFOUND", j.ID, err)
		}
		if cur, _ := r.engine.Job(ctx, admin, j.ID); cur.State != dlqstore.JobCanaryWait {
			t.Errorf("job %d is %s after a refused cancel, want it still waiting on its canary", j.ID, cur.State)
		}
	}
	// The entry of the mixed job is tess's to see; the job's reason is not.
	hist, err := r.engine.History(ctx, operatorT1, t1[2])
	if err != nil || len(hist) != 0 {
		t.Errorf("t1 operator's history of entry %d = %+v, %v; want none", t1[2], hist, err)
	}
	if hist, _ := r.engine.History(ctx, admin, t1[2]); len(hist) != 1 || hist[0].Reason != "mixed secret reason" {
		t.Errorf("admin's history of entry %d = %+v", t1[2], hist)
	}
	// Nobody, and a viewer, see no job at all.
	for _, a := range []Actor{{}, viewer} {
		if list, _, err := r.engine.Jobs(ctx, a, JobFilter{}); err != nil || len(list) != 0 {
			t.Errorf("jobs of %+v = %v, %v; want none", a.P, ids(list), err)
		}
	}
	// Whoever may act on every entry sees and cancels; the admin too.
	if list, _, _ := r.engine.Jobs(ctx, tessWide, JobFilter{Running: true}); !slices.Equal(ids(list), []int64{hers.ID, mixed.ID, theirs.ID, ours.ID}) {
		t.Errorf("t1+t2 operator's running jobs = %v", ids(list))
	}
	if _, err := r.engine.Cancel(ctx, tessWide, mixed.ID); err != nil {
		t.Errorf("t1+t2 operator cancels the mixed job: %v", err)
	}
	if _, err := r.engine.Cancel(ctx, operatorT1, ours.ID); err != nil {
		t.Errorf("t1 operator cancels the t1 job: %v", err)
	}
	if _, err := r.engine.Cancel(ctx, admin, theirs.ID); err != nil {
		t.Errorf("admin cancels the t2 job: %v", err)
	}
	for _, j := range []Job{ours, theirs, mixed} {
		waitJob(t, r.engine, j.ID, dlqstore.JobCancelled)
	}
	if list, _, _ := r.engine.Jobs(ctx, operatorT1, JobFilter{Finished: true}); !slices.Equal(ids(list), []int64{ours.ID}) {
		t.Errorf("t1 operator's finished jobs = %v, want only %d", ids(list), ours.ID)
	}
	// A conflict names the running job only to whoever may see it.
	req := Request{Action: ActionRedrive, Selector: Selector{IDs: []int64{t1[5]}}, Reason: "conflict"}
	_, err = r.engine.Start(ctx, operatorT1, req)
	if msg := delivery.ErrorMessage(err); delivery.ErrorCode(err) != delivery.ECONFLICT || strings.Contains(msg, strconv.FormatInt(hers.ID, 10)) ||
		!strings.Contains(msg, "another job is still running on kafka:main/orders") {
		t.Errorf("t1 operator's conflicting start: %v, want ECONFLICT not naming job %d", err, hers.ID)
	}
	_, err = r.engine.Plan(ctx, tessWide, req) // the plan itself is no conflict
	if err != nil {
		t.Fatal(err)
	}
	if _, err = r.engine.Start(ctx, tessWide, req); !strings.Contains(delivery.ErrorMessage(err), fmt.Sprintf("job %d is still running", hers.ID)) {
		t.Errorf("t1+t2 operator's conflicting start: %v, want it to name job %d", err, hers.ID)
	}
	r.engine.Cancel(ctx, admin, hers.ID)
}

// One running job per destination unless forced.
func TestOneJobPerDestination(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 100, 3, 0)
	ctx := context.Background()
	j, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids[:50]}, Rate: 10, Reason: "first"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids[50:]}, Reason: "second"})
	if delivery.ErrorCode(err) != delivery.ECONFLICT {
		t.Fatalf("second job on the same topic: %v, want ECONFLICT", err)
	}
	j2, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids[50:]}, Reason: "second", Force: true, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, r.engine, j2.ID, dlqstore.JobCompleted)
	r.engine.Cancel(ctx, admin, j.ID)
}

// Two operators starting jobs on the same topic at the same moment get one
// job, not two: the check and the freeze are one step.
func TestOneJobPerDestinationUnderConcurrency(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 400, 3, 0)
	ctx := context.Background()
	for round := range 20 {
		a, b := ids[round*20:round*20+10], ids[round*20+10:round*20+20]
		var wg sync.WaitGroup
		errs := make([]error, 2)
		jobs := make([]Job, 2)
		for i, sel := range [][]int64{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				jobs[i], errs[i] = r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: sel}, Rate: 1, Reason: "race"})
			}()
		}
		wg.Wait()
		started := 0
		for i, err := range errs {
			switch {
			case err == nil:
				started++
				if _, err := r.engine.Cancel(ctx, admin, jobs[i].ID); err != nil {
					t.Fatal(err)
				}
				waitJob(t, r.engine, jobs[i].ID, dlqstore.JobCancelled)
			case delivery.ErrorCode(err) != delivery.ECONFLICT:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if started != 1 {
			t.Fatalf("round %d: %d jobs started on one topic at once, want 1", round, started)
		}
	}
}

// Canary: the first N are sent, and when one of them dead-letters again
// within the window the job stops with the rest unsent.
func TestCanaryStopsOnRefailure(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 30, 3, 0)
	ctx := context.Background()
	j, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, Canary: 5, CanaryWindow: 10 * time.Second, Rate: 1000, Reason: "canary"})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, r.engine, j.ID, dlqstore.JobCanaryWait)
	// The consumer still fails: one canary message comes back as a new
	// dead letter carrying the job's provenance.
	recs := consume(t, r.brokers, "orders", 5)
	r.refail(t, recs[0], "order not found")
	end := waitJob(t, r.engine, j.ID, dlqstore.JobCanaryFailed)
	if end.Done != 5 || end.Cancelled != 25 || end.Error == "" {
		t.Errorf("canary-failed job = %+v", end)
	}
	c, _ := r.store.Counts(ctx, nil)
	if c.ByStatus[dlqstore.StatusDead] != 26 { // 25 unsent + the re-failure
		t.Errorf("counts = %v", c.ByStatus)
	}
}

// refail indexes a redriven record of "orders" as the consumer would
// dead-letter it again, with msg: a new dead letter in orders.dlq
// partition 1 carrying the record's headers, the job's provenance among
// them.
func (r *rig) refail(t testing.TB, rec *kgo.Record, msg string) delivery.Headers {
	t.Helper()
	h := delivery.Headers{}
	for _, x := range rec.Headers {
		h = append(h, delivery.Header{Key: x.Key, Value: x.Value})
	}
	var env delivery.Envelope
	_ = json.Unmarshal(rec.Value, &env)
	dl := delivery.DeadLetter{Format: delivery.FormatSwitchyard, Envelope: &env, Payload: rec.Value, Headers: h, RedriveCount: 1,
		Origin: delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: "orders"},
		DLQ:    delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: "orders.dlq", Partition: 1, Offset: 0},
		Error:  delivery.ErrorInfo{Code: "ORDER_NOT_FOUND", Message: msg}, LastFailureAt: time.Now()}
	if _, err := r.store.IndexKafka(context.Background(), testCluster, "orders.dlq", 1, []dlqstore.IndexItem{{DL: dl}}, 1); err != nil {
		t.Fatal(err)
	}
	return h
}

// A canary that stays quiet lets the job go on.
func TestCanaryPasses(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 12, 3, 0)
	j, err := r.engine.Start(context.Background(), admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, Canary: 2, CanaryWindow: 300 * time.Millisecond, Rate: 1000, Reason: "canary"})
	if err != nil {
		t.Fatal(err)
	}
	if end := waitJob(t, r.engine, j.ID, dlqstore.JobCompleted); end.Done != 12 {
		t.Errorf("job = %+v", end)
	}
}

// Loop protection: a message redriven MaxRedrives times that fails again
// is indexed quarantined, with the reason.
func TestLoopProtection(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 1, 1, delivery.DefaultMaxRedrives)
	e, _ := r.store.Entry(context.Background(), ids[0])
	if e.Status != dlqstore.StatusQuarantined || e.StatusReason == "" {
		t.Errorf("entry after %d redrives = %s %q", delivery.DefaultMaxRedrives, e.Status, e.StatusReason)
	}
}

// Jobs resume after a restart from their ledger.
func TestResumeAfterRestart(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	ids := r.deadLetters(t, "orders", "t1", 120, 3, 0)
	ctx := context.Background()
	j, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, Rate: 100, Reason: "resume"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "20 entries sent", func() bool {
		cur, _ := r.engine.Job(ctx, admin, j.ID)
		return cur.Done >= 20
	})
	r.stop()
	mid, _ := r.engine.Job(ctx, admin, j.ID)
	if mid.Finished() {
		t.Fatalf("job finished before the restart: %+v", mid)
	}
	e2, err := New(r.engine.opts)
	if err != nil {
		t.Fatal(err)
	}
	r.engine = e2
	r.start(t)
	end := waitJob(t, r.engine, j.ID, dlqstore.JobCompleted)
	if end.Done != 120 {
		t.Errorf("resumed job = %+v", end)
	}
	recs := consume(t, r.brokers, "orders", 120)
	seen := map[string]int{}
	for _, rec := range recs {
		var env delivery.Envelope
		_ = json.Unmarshal(rec.Value, &env)
		seen[env.ID]++
	}
	if len(seen) != 120 {
		t.Errorf("%d distinct envelopes reached the topic, want 120", len(seen))
	}
}

// failSecondRecord is a JobStore whose second CompleteItems fails, as a
// full disk or a lost lock would.
type failSecondRecord struct {
	dlqstore.JobStore
	calls atomic.Int32
}

func (f *failSecondRecord) CompleteItems(ctx context.Context, jobID int64, outs []dlqstore.Outcome, done dlqstore.Status, reason string) error {
	if f.calls.Add(1) == 2 {
		return errors.New("disk I/O error")
	}
	return f.JobStore.CompleteItems(ctx, jobID, outs, done, reason)
}

// Outcomes that could not be recorded leave their items pending: the job
// sends them again on the next run and ends with every message on the
// topic and every entry redriven.
func TestFailedRecordingIsSentAgain(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	r.deadLetters(t, "orders", "t1", 1200, 3, 0)
	r.restart(t, func(o *Options) { o.Store, o.Unlimited = &failSecondRecord{JobStore: r.store}, true }) // batches of 500
	ctx := context.Background()
	j := r.redriveDead(t, "flaky disk")
	end := waitJob(t, r.engine, j.ID, dlqstore.JobCompleted, dlqstore.JobFailed, dlqstore.JobCancelled)
	if end.State != dlqstore.JobCompleted || end.Done != 1200 || end.Failed != 0 {
		t.Fatalf("job after a failed recording: %s, %d done, %d failed of %d", end.State, end.Done, end.Failed, end.Total)
	}
	c, _ := r.store.Counts(ctx, nil)
	if c.ByStatus[dlqstore.StatusRedriven] != 1200 || c.ByStatus[dlqstore.StatusRedriving] != 0 {
		t.Errorf("counts = %v, want all 1200 redriven", c.ByStatus)
	}
	// Every record the topic holds: those sent twice too.
	total := topicRecords(t, r.brokers, "orders")
	if total < 1200 {
		t.Fatalf("the topic holds %d records, want at least 1200", total)
	}
	seen := map[string]bool{}
	for _, rec := range consume(t, r.brokers, "orders", total) {
		var env delivery.Envelope
		_ = json.Unmarshal(rec.Value, &env)
		seen[env.ID] = true
	}
	if len(seen) != 1200 {
		t.Errorf("%d distinct envelopes reached the topic, want 1200", len(seen))
	}
}

// A console stopped mid-job records what the broker acknowledged before
// it stops: after the stop, the job counts exactly the records on the
// topic, so that the resumed job sends none of them again.
func TestStopRecordsWhatTheBrokerTook(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	r.deadLetters(t, "orders", "t1", 6000, 3, 0)
	r.restart(t, func(o *Options) { o.Unlimited = true }) // batches of 500, one after the other
	ctx := context.Background()
	j := r.redriveDead(t, "stop midway")
	testenv.WaitFor(t, "a first batch recorded", func() bool {
		cur, _ := r.engine.Job(ctx, admin, j.ID)
		return cur.Done > 0
	})
	r.stop()
	mid, err := r.engine.Job(ctx, admin, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Finished() {
		t.Fatalf("the job (%d entries) finished before the stop, which came after its first batch; nothing was compared", mid.Total)
	}
	if n := topicRecords(t, r.brokers, "orders"); n != mid.Done {
		t.Errorf("after the stop the topic holds %d records and the job counts %d sent", n, mid.Done)
	}
}

// topicRecords is how many records topic holds.
func topicRecords(t testing.TB, brokers []string, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
	return total
}

// An entry whose payload the index cut is redriven whole: the record is
// read back from its dead-letter topic, and checked against the hash.
func TestRedriveOfCutPayloadReadsTheRecordBack(t *testing.T) {
	r := newRig(t, Options{}, "orders", "orders.dlq")
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders.dlq", Partition: 0, Value: big}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(big)
	dl := delivery.DeadLetter{Payload: big[:1024], Key: []byte("k"), LastFailureAt: time.Now(),
		Origin: delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: "orders"},
		DLQ:    delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: "orders.dlq", Partition: 0, Offset: 0},
		Error:  delivery.ErrorInfo{Message: "too big to keep"}}
	item := dlqstore.IndexItem{DL: dl, PayloadSize: len(big), PayloadHash: hex.EncodeToString(sum[:]), Truncated: true}
	if _, err := r.store.IndexKafka(ctx, testCluster, "orders.dlq", 0, []dlqstore.IndexItem{item}, 1); err != nil {
		t.Fatal(err)
	}
	r.stop()
	opts := r.engine.opts
	opts.Fetch = KafkaFetcher(map[string][]string{testCluster: r.brokers})
	if r.engine, err = New(opts); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	p, err := r.engine.Plan(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: []int64{1}}})
	if err != nil || len(p.Warnings) == 0 {
		t.Errorf("plan of a cut payload: %+v %v (want a warning)", p, err)
	}
	j, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: []int64{1}}, Reason: "big"})
	if err != nil {
		t.Fatal(err)
	}
	if end := waitJob(t, r.engine, j.ID, dlqstore.JobCompleted); end.Done != 1 {
		l, _, _ := r.engine.Ledger(ctx, admin, j.ID, 0, 10)
		t.Fatalf("job = %+v, ledger %+v", end, l)
	}
	recs := consume(t, r.brokers, "orders", 1)
	if len(recs[0].Value) != len(big) || string(recs[0].Value) != string(big) {
		t.Errorf("redriven value is %d bytes, want the whole %d", len(recs[0].Value), len(big))
	}
}

// A broker outage pauses a job instead of failing its entries: here the
// origin topic does not exist yet (a retriable error for every message);
// the job says why and goes on once the topic is there.
func TestOutagePausesTheJob(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newRig(t, Options{Registerer: reg}, "orders")
	ids := r.deadLetters(t, "late", "t1", 5, 1, 0)
	ctx := context.Background()
	j, err := r.engine.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, Rate: 1000, Reason: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	var cur Job
	testenv.WaitWithin(t, 30*time.Second, "the job to pause on the missing topic", func() bool {
		cur, _ = r.engine.Job(ctx, admin, j.ID)
		if cur.Finished() {
			t.Fatalf("job never paused: %+v", cur)
		}
		return strings.Contains(cur.Error, "sending paused") && strings.Contains(cur.Error, "UNKNOWN_TOPIC_OR_PARTITION")
	})
	if cur.Failed != 0 || cur.Done != 0 || cur.Finished() {
		t.Fatalf("paused job = %+v", cur)
	}
	if n := gaugeValue(t, reg, "switchyard_dlq_jobs_paused"); n != 1 {
		t.Errorf("switchyard_dlq_jobs_paused = %v during the outage, want 1", n)
	}
	adm, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 1, nil, "late"); err != nil {
		t.Fatal(err)
	}
	end := waitJob(t, r.engine, j.ID, dlqstore.JobCompleted)
	if end.Done != 5 || end.Failed != 0 || end.Error != "" {
		t.Errorf("job after the outage = %+v", end)
	}
	// Every action's series exist from the start at 0; only this job's
	// moved.
	for name, want := range map[string]map[string]float64{
		"switchyard_dlq_job_items_total":     {"redrive/sent": 5},
		"switchyard_dlq_jobs_finished_total": {"redrive/completed": 1},
	} {
		got := counterValues(t, reg, name)
		if len(got) < 15 {
			t.Errorf("%s has %d series, want every action's from the start: %v", name, len(got), got)
		}
		for k, v := range got {
			if v != want[k] {
				t.Errorf("%s{%s} = %v, want %v", name, k, v, want[k])
			}
		}
	}
	if v := gaugeValue(t, reg, "switchyard_dlq_jobs_paused"); v != 0 {
		t.Errorf("switchyard_dlq_jobs_paused = %v after the outage", v)
	}
}

// counterValues reads a counter family as "action/outcome-or-state" → value.
func counterValues(t testing.TB, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var parts []string
			for _, l := range m.GetLabel() {
				parts = append(parts, l.GetValue())
			}
			out[strings.Join(parts, "/")] = m.GetCounter().GetValue()
		}
	}
	return out
}

// gaugeValue reads a gauge without labels from reg.
func gaugeValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
