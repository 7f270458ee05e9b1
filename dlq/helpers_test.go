package dlq_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
	"switchyard/indexer"
	"switchyard/redrive"
	"switchyard/sqldb"
)

// The fixtures: dead letters of two origin topics on cluster main, each
// read from its own DLQ topic — orders (code A: tenants t1, t2 and none)
// and payments (code B: t1) — their failures interleaved in time, so that
// a caller who sees only some of them would get short pages from a list
// filtered after paging. Every payload is an envelope whose customer, key
// and metadata.partition_key are PII.
const (
	ordersDLQ   = "orders.dlq"
	paymentsDLQ = "payments.dlq"
	customer    = "Zoë Müller" // in every payload
	partKey     = "cust-0042"  // every key and partition key
)

type fixture struct {
	dest, origin, tenant, code string
}

var fixtures = []fixture{
	{ordersDLQ, "orders", "t1", "A"}, {paymentsDLQ, "payments", "t1", "B"}, {ordersDLQ, "orders", "t2", "A"},
	{ordersDLQ, "orders", "t1", "A"}, {paymentsDLQ, "payments", "t1", "B"}, {ordersDLQ, "orders", "", "A"},
	{ordersDLQ, "orders", "t1", "A"}, {ordersDLQ, "orders", "t2", "A"}, {paymentsDLQ, "payments", "t1", "B"},
	{ordersDLQ, "orders", "t1", "A"}, {ordersDLQ, "orders", "t2", "A"}, {paymentsDLQ, "payments", "t1", "B"},
	{ordersDLQ, "orders", "t1", "A"},
}

// grant is a binding of the actions on resources for tenants.
func grant(resources, tenants []string, acts ...access.Action) access.Grant {
	return access.Grant{Role: "custom", Actions: acts, Resources: resources, Tenants: tenants}
}

var (
	everything = []string{"*"}
	orders     = []string{"kafka:main/orders*"} // the origin topic and its DLQ
	t1         = []string{"t1"}
)

// callerWith is a caller holding grants.
func callerWith(user string, grants ...access.Grant) dlq.Caller {
	return dlq.Caller{Route: "test.route", Actor: redrive.Actor{
		P:        &access.Principal{User: user, Method: access.MethodSession, Grants: grants},
		SourceIP: "192.0.2.7", UserAgent: "dlq-test"}}
}

// The callers of the tests.
var (
	admin = callerWith("ada", grant(everything, everything, access.Actions()...))
	// vera views everything and reads nothing.
	vera = callerWith("vera", grant(everything, everything, access.ActionView))
	// olga operates on orders of t1, without read_pii.
	olga = callerWith("olga", grant(orders, t1, access.ActionView, access.ActionReadPayload,
		access.ActionRedrive, access.ActionQuarantine, access.ActionDiscard))
	// pia reads orders of t1 in full.
	pia = callerWith("pia", grant(orders, t1, access.ActionView, access.ActionReadPayload, access.ActionReadPII))
)

// world is a real dead-letter store with the fixtures, a real audit log
// and the service over them.
type world struct {
	store *dlqstore.Store
	audit *access.Audit
	opts  dlq.Options
	svc   *dlq.Service
	ids   []int64 // by fixture index
}

// newWorld opens both stores in t's temp dir and indexes the fixtures.
func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := dlqstore.Open(ctx, filepath.Join(dir, "dlq.db"), dlqstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sqldb.Open(ctx, filepath.Join(dir, "console.db"), access.Schema())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	audit, err := access.NewAuditWith(db, access.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	masker, err := access.NewMasker(access.PIIRules{"order.created": {"customer", access.PIIKeyRule, access.PIIMetadataPrefix + "partition_key"}})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{store: st, audit: audit}
	offs := map[string]int64{}
	for i, f := range fixtures {
		sp := dlqstoretest.Spec{Dest: f.dest, Off: offs[f.dest], Tenant: f.tenant, Code: f.code, Origin: f.origin,
			Msg: "failure " + f.code, At: dlqstoretest.T0().Add(time.Duration(i) * time.Minute)}
		offs[f.dest]++
		it := withPII(t, sp.Item())
		if _, err := st.IndexKafka(ctx, "main", f.dest, 0, []dlqstore.IndexItem{it}, offs[f.dest]); err != nil {
			t.Fatal(err)
		}
		p := dlqstoretest.Find(t, st, dlqstore.Filter{Limit: 1}) // the newest is the one just indexed
		w.ids = append(w.ids, p.Entries[0].ID)
	}
	dlqstoretest.WaitText(t, st) // text is indexed after capture
	w.opts = dlq.Options{Store: st, Policy: access.Policy{}, Masker: masker, Audit: audit, AuditReads: true, Indexers: sources{}}
	w.svc = w.service(t, w.opts)
	return w
}

// withPII gives an item's envelope the customer as its partition key and
// its record the same key.
func withPII(t *testing.T, it dlqstore.IndexItem) dlqstore.IndexItem {
	t.Helper()
	env := *it.DL.Envelope
	env.Payload = json.RawMessage(`{"order_id":"ord-1","customer":"` + customer + `"}`)
	env.Metadata.PartitionKey = partKey
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	it.DL.Envelope, it.DL.Payload, it.DL.Key, it.PayloadSize = &env, b, []byte(partKey), len(b)
	return it
}

func (w *world) service(t *testing.T, o dlq.Options) *dlq.Service {
	t.Helper()
	svc, err := dlq.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// withJobs is the service with a job engine over the same store (not
// running: offering actions and planning need no sender).
func (w *world) withJobs(t *testing.T, edit bool) *dlq.Service {
	t.Helper()
	eng, err := redrive.New(redrive.Options{Store: w.store, EditEnabled: edit})
	if err != nil {
		t.Fatal(err)
	}
	o := w.opts
	o.Jobs = eng
	return w.service(t, o)
}

// visible are the fixture indexes whose entries c may view by the policy,
// judged entry by entry.
func (w *world) visible(t *testing.T, c dlq.Caller) map[int64]bool {
	t.Helper()
	out := map[int64]bool{}
	for _, id := range w.ids {
		e, err := w.store.Entry(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if (access.Policy{}).Can(c.P, access.ActionView, access.Resource{Name: e.Resource, Tenant: e.Tenant}) {
			out[id] = true
		}
	}
	return out
}

// records are the audit records of an action, newest first.
func (w *world) records(t *testing.T, action string) []access.AuditRecord {
	t.Helper()
	recs, _, err := w.audit.List(context.Background(), access.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// sources is the indexers' status of the two DLQ topics (the indexers
// themselves need brokers; their own tests run them).
type sources struct{}

func (sources) Status() []indexer.SourceStatus {
	at := dlqstoretest.T0()
	return []indexer.SourceStatus{
		{Broker: delivery.BrokerKafka, Cluster: "main", Destination: ordersDLQ, Indexed: 9, Duplicates: 2, Lag: 5, LastIndexedAt: at},
		{Broker: delivery.BrokerKafka, Cluster: "main", Destination: paymentsDLQ, Indexed: 4, Lag: 1, LastIndexedAt: at,
			LastError: "fetch: NOT_LEADER_FOR_PARTITION", LastErrorAt: at},
	}
}
