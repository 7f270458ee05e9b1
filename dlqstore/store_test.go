package dlqstore

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/delivery"
)

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustOpen(t *testing.T) (*Store, *clock) {
	t.Helper()
	clk := &clock{t: t0.Add(time.Hour)}
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "dlq.db"), Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, clk
}

// spec describes one test dead letter.
type spec struct {
	broker, cluster, dest string
	part                  int32
	off                   int64
	msgID                 string
	death                 int
	tenant, typ, code     string
	msg, exc              string
	at                    time.Time
	payload               []byte // nil = an envelope
	envID                 string
	origin                string // origin topic, default "orders"
}

func (sp spec) item() IndexItem {
	if sp.broker == "" {
		sp.broker = delivery.BrokerKafka
	}
	if sp.cluster == "" {
		sp.cluster = "main"
	}
	if sp.typ == "" {
		sp.typ = "order.created"
	}
	if sp.at.IsZero() {
		sp.at = t0
	}
	if sp.envID == "" {
		sp.envID = fmt.Sprintf("0b8e6a52-1c7f-4a43-9d55-%012d", sp.off+int64(sp.death)*1000+int64(len(sp.msgID))*100000)
	}
	dlq := delivery.Location{Broker: sp.broker, Cluster: sp.cluster, Partition: sp.part, Offset: sp.off}
	if sp.broker == delivery.BrokerRabbitMQ {
		dlq = delivery.Location{Broker: sp.broker, Cluster: sp.cluster, VHost: "/", Queue: sp.dest, Partition: -1, Offset: -1}
	} else {
		dlq.Topic = sp.dest
	}
	var env *delivery.Envelope
	payload := sp.payload
	if payload == nil {
		e := delivery.Envelope{ID: sp.envID, Type: sp.typ, OccurredAt: sp.at.Format(time.RFC3339Nano), Source: "orders",
			CorrelationID: "corr-" + sp.envID[len(sp.envID)-6:], TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
			Payload:  json.RawMessage(`{"order_id":"ord-` + fmt.Sprint(sp.off) + `","customer":"Zoë Müller","note":"expédition rapide"}`),
			Metadata: delivery.Metadata{TenantID: sp.tenant}}
		payload, _ = json.Marshal(e)
		env = &e
	}
	dl := delivery.DeadLetter{
		Format: delivery.FormatSwitchyard, Envelope: env, Payload: payload, DLQ: dlq,
		Origin:   delivery.Location{Broker: sp.broker, Cluster: sp.cluster, Topic: cmpOr(sp.origin, "orders"), Partition: 0, Offset: 7},
		Error:    delivery.ErrorInfo{Code: sp.code, Message: sp.msg, ExceptionType: sp.exc, Stack: "at com.acme.Orders.handle(Orders.java:42)"},
		Attempts: 3, FirstFailureAt: sp.at.Add(-time.Minute), LastFailureAt: sp.at,
		Headers: delivery.Headers{{Key: "tenant_id", Value: []byte(sp.tenant)}, {Key: "bin", Value: []byte{0xff, 0x00}}},
	}
	if env == nil {
		dl.EnvelopeError = "payload is not a JSON envelope"
	}
	return IndexItem{DL: dl, MessageID: sp.msgID, DeathCount: sp.death, Fingerprint: delivery.Fingerprint(dl),
		PayloadSize: len(payload), PayloadHash: "h", ReceivedAt: sp.at}
}

func indexKafka(t *testing.T, s *Store, topic string, part int32, specs ...spec) IndexResult {
	t.Helper()
	var items []IndexItem
	next := int64(0)
	for _, sp := range specs {
		sp.dest, sp.part = topic, part
		items = append(items, sp.item())
		next = max(next, sp.off+1)
	}
	res, err := s.IndexKafka(context.Background(), "main", topic, part, items, next)
	if err != nil {
		t.Fatalf("IndexKafka: %v", err)
	}
	return res
}

func countRows(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func ids(es []Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func find(t *testing.T, s *Store, f Filter) Page {
	t.Helper()
	p, err := s.FindEntries(context.Background(), f)
	if err != nil {
		t.Fatalf("FindEntries(%+v): %v", f, err)
	}
	return p
}

func TestMigratesEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dlq.db")
	for i := 0; i < 2; i++ { // the second open finds the schema in place
		s, err := Open(context.Background(), path, Options{})
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		var v int
		var mode string
		if err := s.db.QueryRow("SELECT max(version) FROM schema_migrations").Scan(&v); err != nil || v != len(Migrations()) {
			t.Fatalf("schema version = %d, %v; want %d", v, err, len(Migrations()))
		}
		if err := s.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal mode = %q, %v; want wal", mode, err)
		}
		for _, tbl := range []string{"entries", "entry_bodies", "entries_fts", "kafka_offsets", "groups", "group_stats"} {
			countRows(t, s, tbl)
		}
		s.Close()
	}
}

func TestIndexKafkaDedupesAndStoresOffset(t *testing.T) {
	s, _ := mustOpen(t)
	specs := []spec{{off: 0, msg: "a"}, {off: 1, msg: "b"}, {off: 2, msg: "c"}}
	if got := indexKafka(t, s, "orders.dlq", 0, specs...); got != (IndexResult{Inserted: 3}) {
		t.Fatalf("first index = %+v", got)
	}
	// Re-reading the same records after a restart stores nothing twice.
	if got := indexKafka(t, s, "orders.dlq", 0, append(specs, spec{off: 3, msg: "d"})...); got != (IndexResult{Inserted: 1, Duplicates: 3}) {
		t.Fatalf("re-index = %+v", got)
	}
	// Same offset on another partition is another record.
	if got := indexKafka(t, s, "orders.dlq", 1, spec{off: 0, msg: "a"}); got.Inserted != 1 {
		t.Fatalf("other partition = %+v", got)
	}
	offs, err := s.KafkaOffsets(context.Background(), "main")
	if err != nil {
		t.Fatal(err)
	}
	want := map[TopicPartition]int64{{"orders.dlq", 0}: 4, {"orders.dlq", 1}: 1}
	if fmt.Sprint(offs) != fmt.Sprint(want) {
		t.Fatalf("offsets = %v, want %v", offs, want)
	}
	if n := countRows(t, s, "entries"); n != 5 {
		t.Fatalf("entries = %d, want 5", n)
	}
	g, _, err := s.Groups(context.Background(), GroupFilter{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, x := range g {
		total += x.Count
	}
	if total != 5 {
		t.Fatalf("group counts sum to %d, want 5 (duplicates must not count)", total)
	}
}

func TestIndexRabbitDedupesRedeliveries(t *testing.T) {
	s, _ := mustOpen(t)
	mk := func(id string, death int) IndexItem {
		return spec{broker: delivery.BrokerRabbitMQ, dest: "orders_error", msgID: id, death: death, msg: "boom"}.item()
	}
	res, err := s.IndexRabbit(context.Background(), []IndexItem{mk("m1", 1), mk("m2", 1), mk("", 1), mk("", 1)})
	if err != nil || res != (IndexResult{Inserted: 4}) {
		t.Fatalf("first = %+v, %v", res, err)
	}
	// A redelivery (same id, same death count) is a duplicate; the same
	// message dead-lettered again (death count 2) is a new failure;
	// messages without an id cannot be told apart and are kept.
	res, err = s.IndexRabbit(context.Background(), []IndexItem{mk("m1", 1), mk("m1", 2), mk("", 1)})
	if err != nil || res != (IndexResult{Inserted: 2, Duplicates: 1}) {
		t.Fatalf("second = %+v, %v", res, err)
	}
	e, err := s.Entry(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if e.Broker != "rabbitmq" || e.Destination != "orders_error" || e.VHost != "/" || e.MessageID != "m1" || e.DeathCount != 1 || e.Partition != -1 {
		t.Fatalf("entry = %+v", e)
	}
	if _, err := s.IndexRabbit(context.Background(), []IndexItem{spec{dest: "x"}.item()}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Fatalf("kafka item to IndexRabbit: %v, want EINVALID", err)
	}
}

// failAfter is a context whose Err turns non-nil after n checks: the
// batch fails half-way, after some rows are written inside the transaction.
type failAfter struct {
	context.Context
	mu sync.Mutex
	n  int
}

func (c *failAfter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	if c.n < 0 {
		return context.Canceled
	}
	return nil
}

func TestIndexKafkaFailedBatchLeavesNeitherEntriesNorOffset(t *testing.T) {
	s, _ := mustOpen(t)
	indexKafka(t, s, "orders.dlq", 0, spec{off: 0, msg: "a"}, spec{off: 1, msg: "b"})
	before := map[string]int{}
	for _, tbl := range []string{"entries", "entry_bodies", "groups", "group_stats"} {
		before[tbl] = countRows(t, s, tbl)
	}
	var items []IndexItem
	for i := int64(2); i < 10; i++ {
		items = append(items, spec{dest: "orders.dlq", off: i, msg: fmt.Sprintf("new failure kind %c", 'a'+i)}.item())
	}
	// Cancelled after 5 rows are in the transaction.
	_, err := s.IndexKafka(&failAfter{Context: context.Background(), n: 5}, "main", "orders.dlq", 0, items, 10)
	if err == nil {
		t.Fatal("IndexKafka with a context cancelled mid-batch succeeded")
	}
	// A constraint error half-way: an offset outside the batch's range.
	bad := append(items[:3:3], spec{dest: "orders.dlq", off: 20}.item())
	if _, err := s.IndexKafka(context.Background(), "main", "orders.dlq", 0, bad, 10); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Fatalf("offset beyond next offset: %v, want EINVALID", err)
	}
	offs, _ := s.KafkaOffsets(context.Background(), "main")
	if got := offs[TopicPartition{"orders.dlq", 0}]; got != 2 {
		t.Fatalf("offset after failed batches = %d, want 2", got)
	}
	for tbl, n := range before {
		if got := countRows(t, s, tbl); got != n {
			t.Errorf("%s rows = %d after failed batches, want %d", tbl, got, n)
		}
	}
	if p := find(t, s, Filter{Q: "kind"}); len(p.Entries) != 0 {
		t.Errorf("full-text rows of a failed batch are searchable: %d", len(p.Entries))
	}
	// The retry stores all of it.
	res, err := s.IndexKafka(context.Background(), "main", "orders.dlq", 0, items, 10)
	if err != nil || res.Inserted != 8 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
}

func TestEntryRoundTripsHostileInput(t *testing.T) {
	s, _ := mustOpen(t)
	script := `<script>alert("x")</script> order 42 failed`
	bin := []byte{0xff, 0xfe, 'f', 'o', 'o', 0x80}
	big := strings.Repeat("v", 256<<10)
	it1 := spec{dest: "d", off: 0, msg: script, tenant: "t1", code: "E1", exc: "java.lang.IllegalStateException"}.item()
	it1.DL.Headers = append(it1.DL.Headers, delivery.Header{Key: "huge", Value: []byte(big)})
	// The stack is in a header too: stored once, restored in both places.
	stack := "java.lang.IllegalStateException: boom\n\tat com.acme.Orders.handle(Orders.java:42)\n\tat java.base/java.lang.Thread.run(Thread.java:1583)"
	it1.DL.Error.Stack = stack
	it1.DL.Headers = append(it1.DL.Headers, delivery.Header{Key: "kafka_dlt-exception-stacktrace", Value: []byte(stack)})
	it2 := spec{dest: "d", off: 1, payload: bin, msg: "binary"}.item()
	it2.Flags = []string{"not_utf8", "invalid_envelope"}
	if _, err := s.IndexKafka(context.Background(), "main", "d", 0, []IndexItem{it1, it2}, 2); err != nil {
		t.Fatal(err)
	}
	e1, err := s.Entry(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if e1.DL.Error.Message != script {
		t.Errorf("message = %q, want it stored as is", e1.DL.Error.Message)
	}
	if string(e1.DL.Payload) != string(it1.DL.Payload) || e1.DL.Envelope == nil || string(e1.DL.Envelope.Payload) != string(it1.DL.Envelope.Payload) {
		t.Errorf("payload or envelope not restored: %q / %+v", e1.DL.Payload, e1.DL.Envelope)
	}
	var record string
	s.db.QueryRow("SELECT record FROM entry_bodies WHERE id = 1").Scan(&record)
	if e1.DL.Error.Stack != stack || e1.DL.Headers.String("kafka_dlt-exception-stacktrace") != stack || strings.Contains(record, "Thread.run") {
		t.Errorf("stack = %q, stored twice: %v", e1.DL.Error.Stack, strings.Contains(record, "Thread.run"))
	}
	if v, _ := e1.DL.Headers.Get("huge"); len(v) != len(big) {
		t.Errorf("huge header has %d bytes, want %d", len(v), len(big))
	}
	if v, _ := e1.DL.Headers.Get("bin"); string(v) != "\xff\x00" {
		t.Errorf("binary header = %q", v)
	}
	if e1.Tenant != "t1" || e1.ErrorCode != "E1" || e1.EventType != "order.created" || e1.Partition != 0 || e1.Offset != 0 || !e1.DL.LastFailureAt.Equal(t0) {
		t.Errorf("entry columns = %+v", e1)
	}
	e2, err := s.Entry(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(e2.DL.Payload) != string(bin) || !slices.Equal(e2.Flags, it2.Flags) || e2.DL.Envelope != nil {
		t.Errorf("binary entry = %q %v %v", e2.DL.Payload, e2.Flags, e2.DL.Envelope)
	}
	if p := find(t, s, Filter{Q: "foo"}); len(p.Entries) != 0 {
		t.Errorf("text of an invalid UTF-8 payload was indexed")
	}
	if _, err := s.Entry(context.Background(), 99); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("Entry(99) = %v, want ENOTFOUND", err)
	}
}

// fixture indexes a varied set and returns the specs by entry id.
func fixture(t *testing.T, s *Store) map[int64]spec {
	t.Helper()
	out := map[int64]spec{}
	tenants := []string{"t1", "t2", ""}
	codes := []string{"VALIDATION", "TIMEOUT"}
	types := []string{"order.created", "payment.failed"}
	id := int64(0)
	for i := 0; i < 36; i++ {
		sp := spec{
			off: int64(i), tenant: tenants[i%3], code: codes[i%2], typ: types[(i/2)%2],
			msg: fmt.Sprintf("%s: order %d rejected", codes[i%2], 1000+i), exc: "com.acme.RejectedException",
			// Some share a time, so the id breaks ties.
			at: t0.Add(time.Duration(i/2) * time.Minute),
		}
		if i%4 == 3 {
			sp.broker, sp.dest, sp.msgID, sp.death = delivery.BrokerRabbitMQ, "orders_error", fmt.Sprint("m", i), 1
			if _, err := s.IndexRabbit(context.Background(), []IndexItem{sp.item()}); err != nil {
				t.Fatal(err)
			}
		} else {
			sp.broker, sp.dest = delivery.BrokerKafka, []string{"orders.dlq", "payments.dlq"}[i%2]
			if _, err := s.IndexKafka(context.Background(), "main", sp.dest, 0, []IndexItem{sp.item()}, sp.off+1); err != nil {
				t.Fatal(err)
			}
		}
		id++
		out[id] = sp
	}
	// Some change status.
	if _, err := s.SetStatus(context.Background(), []int64{1, 2, 3, 4}, StatusResolved); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetStatus(context.Background(), []int64{5, 6}, StatusQuarantined); err != nil {
		t.Fatal(err)
	}
	return out
}

func statusOf(id int64) Status {
	switch {
	case id <= 4:
		return StatusResolved
	case id <= 6:
		return StatusQuarantined
	}
	return StatusDead
}

// want returns the fixture ids matching pred, newest first.
func want(all map[int64]spec, pred func(id int64, sp spec) bool) []int64 {
	var out []int64
	for id, sp := range all {
		if pred(id, sp) {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b int64) int {
		if c := all[b].at.Compare(all[a].at); c != 0 {
			return c
		}
		return int(b - a)
	})
	return out
}

func TestFindEntriesFilters(t *testing.T) {
	s, _ := mustOpen(t)
	all := fixture(t, s)
	groupOf := func(id int64) int64 {
		e, err := s.Entry(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return e.GroupID
	}
	g7 := groupOf(7)
	t1 := &TenantScope{Tenants: []string{"t1"}}
	tests := []struct {
		name string
		f    Filter
		pred func(id int64, sp spec) bool
	}{
		{"none", Filter{}, func(int64, spec) bool { return true }},
		{"status", Filter{Status: []Status{StatusDead}}, func(id int64, _ spec) bool { return statusOf(id) == StatusDead }},
		{"two statuses", Filter{Status: []Status{StatusResolved, StatusQuarantined}}, func(id int64, _ spec) bool { return statusOf(id) != StatusDead }},
		{"broker", Filter{Broker: "rabbitmq"}, func(_ int64, sp spec) bool { return sp.broker == "rabbitmq" }},
		{"cluster", Filter{Cluster: "main"}, func(int64, spec) bool { return true }},
		{"other cluster", Filter{Cluster: "other"}, func(int64, spec) bool { return false }},
		{"destination", Filter{Destination: "payments.dlq"}, func(_ int64, sp spec) bool { return sp.dest == "payments.dlq" }},
		{"event type", Filter{EventType: "payment.failed"}, func(_ int64, sp spec) bool { return sp.typ == "payment.failed" }},
		{"error code", Filter{ErrorCode: "TIMEOUT"}, func(_ int64, sp spec) bool { return sp.code == "TIMEOUT" }},
		{"tenant", Filter{Tenant: "t2"}, func(_ int64, sp spec) bool { return sp.tenant == "t2" }},
		{"scope t1", Filter{Tenants: t1}, func(_ int64, sp spec) bool { return sp.tenant == "t1" || sp.tenant == "" }},
		{"scope t1 t2", Filter{Tenants: &TenantScope{Tenants: []string{"t1", "t2"}}}, func(int64, spec) bool { return true }},
		{"scope and status with duplicates", Filter{Tenants: &TenantScope{Tenants: []string{"t1", "t1", ""}}, Status: []Status{StatusDead, StatusDead, StatusResolved}},
			func(id int64, sp spec) bool {
				return (sp.tenant == "t1" || sp.tenant == "") && statusOf(id) != StatusQuarantined
			}},
		{"scope all", Filter{Tenants: &TenantScope{All: true}}, func(int64, spec) bool { return true }},
		{"scope t1, tenant t2", Filter{Tenants: t1, Tenant: "t2"}, func(int64, spec) bool { return false }},
		{"time range", Filter{From: t0.Add(3 * time.Minute), To: t0.Add(6 * time.Minute)}, func(_ int64, sp spec) bool {
			return !sp.at.Before(t0.Add(3*time.Minute)) && sp.at.Before(t0.Add(6*time.Minute))
		}},
		{"group", Filter{GroupID: g7}, func(id int64, _ spec) bool { return groupOf(id) == g7 }},
		{"scope t1 + statuses + code", Filter{Tenants: t1, Status: []Status{StatusDead, StatusQuarantined}, ErrorCode: "VALIDATION"},
			func(id int64, sp spec) bool {
				return (sp.tenant == "t1" || sp.tenant == "") && statusOf(id) != StatusResolved && sp.code == "VALIDATION"
			}},
		{"text + broker", Filter{Q: "rejected", Broker: "kafka", EventType: "order.created"}, func(_ int64, sp spec) bool {
			return sp.broker == "kafka" && sp.typ == "order.created"
		}},
		{"text + scope + status", Filter{Q: "order 1030", Tenants: t1, Status: []Status{StatusDead}}, func(id int64, sp spec) bool {
			return sp.off == 30 && (sp.tenant == "t1" || sp.tenant == "") && statusOf(id) == StatusDead
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := want(all, tt.pred)
			// Small pages, so that paging and the union of branches are
			// exercised with every filter.
			var got []int64
			f := tt.f
			f.Limit = 4
			total := -1
			for {
				p := find(t, s, f)
				if total == -1 {
					total = p.Total
				}
				got = append(got, ids(p.Entries)...)
				if p.Next == "" {
					break
				}
				f.Cursor = p.Next
			}
			if !slices.Equal(got, w) {
				t.Errorf("ids = %v\nwant %v", got, w)
			}
			if total != len(w) {
				t.Errorf("total = %d, want %d", total, len(w))
			}
		})
	}
}

func TestKeysetPagingStableAcrossInserts(t *testing.T) {
	s, _ := mustOpen(t)
	var specs []spec
	for i := 0; i < 20; i++ {
		specs = append(specs, spec{off: int64(i), msg: "x", at: t0.Add(time.Duration(i/3) * time.Second)})
	}
	indexKafka(t, s, "d", 0, specs...)
	before := ids(find(t, s, Filter{Limit: 500}).Entries)
	p := find(t, s, Filter{Limit: 7})
	got := ids(p.Entries)
	// New failures arrive, newer and older than the page boundary.
	indexKafka(t, s, "d", 1, spec{off: 0, msg: "new", at: t0.Add(time.Hour)}, spec{off: 1, msg: "new", at: t0.Add(-time.Hour)})
	for p.Next != "" {
		p = find(t, s, Filter{Limit: 7, Cursor: p.Next})
		got = append(got, ids(p.Entries)...)
	}
	// The old entries come exactly once, in order; the old-timed new one
	// appears at the end where it belongs.
	if !slices.Equal(got[:20], before) || len(got) != 21 || got[20] != 22 {
		t.Fatalf("pages = %v, want %v then 22", got, before)
	}
	if _, err := s.FindEntries(context.Background(), Filter{Cursor: "!!"}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestFullTextSearch(t *testing.T) {
	s, _ := mustOpen(t)
	a := spec{off: 0, msg: "Payment declined for card ending 4242", exc: "java.lang.NullPointerException", envID: "7d3b1c9e-2f4a-4b8e-9c1d-5e6f7a8b9c0d"}
	b := spec{off: 1, msg: "Connection timed out", exc: "System.TimeoutException", envID: "11111111-2222-4333-8444-555555555555"}
	indexKafka(t, s, "d", 0, a, b)
	rb := spec{broker: delivery.BrokerRabbitMQ, dest: "q_error", msgID: "msg-ABC-123", death: 1, msg: "nope"}.item()
	if _, err := s.IndexRabbit(context.Background(), []IndexItem{rb}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		q    string
		want []int64
	}{
		{"declined", []int64{1}},
		{"DECLINED card", []int64{1}},
		{`"timed out"`, []int64{2}},
		{"time*", []int64{2}},
		{"NullPointerException", []int64{1}},
		{"java.lang.NullPointerException", []int64{1}},
		{"exception:TimeoutException", []int64{2}},
		{"message:TimeoutException", nil},
		{"7d3b1c9e-2f4a-4b8e-9c1d-5e6f7a8b9c0d", []int64{1}},   // envelope id
		{"corr-555555", []int64{2}},                            // correlation id
		{"4bf92f3577b34da6a3ce929d0e0e4736", []int64{3, 2, 1}}, // trace id
		{"msg-ABC-123", []int64{3}},                            // message id
		{"ids:2", []int64{2}},                                  // entry id
		{"expedition", []int64{3, 2, 1}},                       // payload text, diacritics folded
		{"zoe AND ord-1", []int64{2}},                          // payload
		{"declined OR nope", []int64{3, 1}},
		{"rejected OR (timed NOT connection)", nil},
		{"and", nil}, // a lower-case word, not an operator
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			if got := ids(find(t, s, Filter{Q: tt.q}).Entries); !slices.Equal(got, tt.want) {
				t.Errorf("Q %q = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestBadSearchIsInvalid(t *testing.T) {
	s, _ := mustOpen(t)
	indexKafka(t, s, "d", 0, spec{off: 0, msg: "x"})
	for _, q := range []string{`"unbalanced`, `AND`, `foo AND`, `OR bar`, `NOT foo`, `(foo`, `foo)`, `()`, `*`, `foo AND OR bar`, `message:`, `""`} {
		t.Run(q, func(t *testing.T) {
			_, err := s.FindEntries(context.Background(), Filter{Q: q})
			if delivery.ErrorCode(err) != delivery.EINVALID || !strings.HasPrefix(delivery.ErrorMessage(err), "search: ") {
				t.Fatalf("Q %q: %v, want EINVALID \"search: …\"", q, err)
			}
		})
	}
	_, err := s.FindEntries(context.Background(), Filter{Q: `"order 42`})
	if got := delivery.ErrorMessage(err); got != `search: unbalanced quote in "\"order 42"` {
		t.Fatalf("message = %q", got)
	}
}

func TestFTSQueryTranslation(t *testing.T) {
	tests := []struct{ in, want string }{
		{"foo", `"foo"`},
		{"foo bar", `"foo" AND "bar"`},
		{"a-b.c", `"a-b.c"`},
		{"foo*", `"foo"*`},
		{`"a b"* x`, `"a b"* AND "x"`},
		{"a OR b NOT c", `"a" OR "b" NOT "c"`},
		{"message:(a OR b) c", `message:( "a" OR "b" ) AND "c"`},
		{`ids:"x y"`, `ids:"x y"`},
		{"http://x", `"http://x"`},
		{`"a ""quoted"" word"`, `"a ""quoted"" word"`},
		{"and or not", `"and" AND "or" AND "not"`},
	}
	for _, tt := range tests {
		got, err := ftsQuery(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ftsQuery(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestTenantScopeOfGroupsAndCounts(t *testing.T) {
	s, clk := mustOpen(t)
	// Group A: 3 in t1, 5 in t2; group B: only t2 (4); group C: no tenant (2).
	var specs []spec
	off := int64(0)
	add := func(n int, tenant, msg, dest string) {
		for i := 0; i < n; i++ {
			specs = append(specs, spec{off: off, tenant: tenant, msg: msg, code: "E", at: t0.Add(time.Duration(off) * time.Minute), dest: dest})
			off++
		}
	}
	add(3, "t1", "order 1 not found", "a.dlq")
	add(5, "t2", "order 2 not found", "b.dlq")
	add(4, "t2", "secret t2 failure", "b.dlq")
	add(2, "", "shared failure", "a.dlq")
	for _, dest := range []string{"a.dlq", "b.dlq"} {
		var items []IndexItem
		for _, sp := range specs {
			if sp.dest == dest {
				items = append(items, sp.item())
			}
		}
		if _, err := s.IndexKafka(context.Background(), "main", dest, 0, items, off); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	t1 := &TenantScope{Tenants: []string{"t1"}}
	gs, _, err := s.Groups(ctx, GroupFilter{Tenants: t1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, g := range gs {
		got[g.Title] = g.Count
		if slices.Contains(g.Tenants, "t2") {
			t.Errorf("t1 scope sees tenant t2 in group %q", g.Title)
		}
	}
	if want := map[string]int{"order <num> not found": 3, "shared failure": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("t1 groups = %v, want %v", got, want)
	}
	all, _, err := s.Groups(ctx, GroupFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].Title != "order <num> not found" || all[0].Count != 8 || all[0].Open != 8 || !slices.Equal(all[0].Tenants, []string{"t1", "t2"}) {
		t.Fatalf("all groups = %+v", all)
	}
	var secret int64
	for _, g := range all {
		if g.Title == "secret t2 failure" {
			secret = g.ID
		}
	}
	if _, err := s.Group(ctx, secret, t1); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("t1 reads a t2-only group: %v", err)
	}
	ga, err := s.Group(ctx, all[0].ID, t1)
	if err != nil || ga.Count != 3 || !ga.LastSeen.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("group A in t1 scope = %+v, %v", ga, err)
	}
	trend, err := s.Trend(ctx, all[0].ID, t1, t0, t0.Add(10*time.Minute), 5*time.Minute)
	if err != nil || !slices.Equal(trend, []int{3, 0}) {
		t.Errorf("t1 trend = %v, %v; want [3 0]", trend, err)
	}
	trend, _ = s.Trend(ctx, all[0].ID, nil, t0, t0.Add(10*time.Minute), 5*time.Minute)
	if !slices.Equal(trend, []int{5, 3}) {
		t.Errorf("trend = %v, want [5 3]", trend)
	}
	c, err := s.Counts(ctx, t1)
	if err != nil || c.ByStatus[StatusDead] != 5 || c.ByDestination["b.dlq"] != 0 || c.ByDestination["a.dlq"] != 5 {
		t.Errorf("t1 counts = %+v, %v", c, err)
	}
	c, _ = s.Counts(ctx, nil)
	if c.ByStatus[StatusDead] != 14 || c.ByDestination["b.dlq"] != 9 {
		t.Errorf("counts = %+v", c)
	}
	if p := find(t, s, Filter{Tenants: t1, Q: "secret"}); len(p.Entries) != 0 || p.Total != 0 {
		t.Errorf("t1 finds t2 entries by text: %d", p.Total)
	}
	if gs, _, _ := s.Groups(ctx, GroupFilter{Tenants: &TenantScope{}}); len(gs) != 0 {
		t.Errorf("empty scope sees %d groups", len(gs))
	}
	// Triage filter and snooze expiry.
	if _, err := s.SetTriage(ctx, secret, Triage{State: TriageSnoozed, SnoozedUntil: clk.Now().Add(time.Hour), UpdatedBy: "ann"}); err != nil {
		t.Fatal(err)
	}
	if gs, _, _ := s.Groups(ctx, GroupFilter{State: TriageSnoozed}); len(gs) != 1 || gs[0].ID != secret || gs[0].Triage.UpdatedBy != "ann" {
		t.Errorf("snoozed groups = %+v", gs)
	}
	clk.Set(clk.Now().Add(2 * time.Hour))
	if gs, _, _ := s.Groups(ctx, GroupFilter{State: TriageOpen}); len(gs) != 3 {
		t.Errorf("after the snooze ran out, open groups = %d, want 3", len(gs))
	}
	// Paging by last seen.
	p1, next, err := s.Groups(ctx, GroupFilter{Sort: "last_seen", Limit: 2})
	if err != nil || len(p1) != 2 || next == "" {
		t.Fatalf("page 1 = %v, %q, %v", p1, next, err)
	}
	p2, next2, _ := s.Groups(ctx, GroupFilter{Sort: "last_seen", Limit: 2, Cursor: next})
	if len(p2) != 1 || next2 != "" || !p1[1].LastSeen.After(p2[0].LastSeen) {
		t.Fatalf("page 2 = %v, %q", p2, next2)
	}
}

func TestTriageValidation(t *testing.T) {
	s, clk := mustOpen(t)
	indexKafka(t, s, "d", 0, spec{off: 0, msg: "x"})
	ctx := context.Background()
	tests := []struct {
		name string
		tr   Triage
		code string
	}{
		{"ack without owner", Triage{State: TriageAcknowledged}, delivery.EINVALID},
		{"snooze without time", Triage{State: TriageSnoozed}, delivery.EINVALID},
		{"snooze into the past", Triage{State: TriageSnoozed, SnoozedUntil: clk.Now().Add(-time.Minute)}, delivery.EINVALID},
		{"unknown", Triage{State: "ignored"}, delivery.EINVALID},
		{"ack", Triage{State: TriageAcknowledged, Owner: "bob", Note: "on it"}, ""},
		{"resolve", Triage{State: TriageResolved}, ""},
		{"snooze", Triage{State: TriageSnoozed, SnoozedUntil: clk.Now().Add(time.Hour)}, ""},
		{"reopen", Triage{State: TriageOpen}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := s.SetTriage(ctx, 1, tt.tr)
			if delivery.ErrorCode(err) != tt.code {
				t.Fatalf("SetTriage = %v, want code %q", err, tt.code)
			}
			if err == nil && (g.Triage.State != tt.tr.State || g.Triage.Owner != tt.tr.Owner || !g.Triage.UpdatedAt.Equal(clk.Now())) {
				t.Fatalf("triage = %+v", g.Triage)
			}
		})
	}
	if _, err := s.SetTriage(ctx, 42, Triage{State: TriageOpen}); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Fatalf("unknown group: %v", err)
	}
}

func TestPurgeNeverTouchesUnresolved(t *testing.T) {
	s, clk := mustOpen(t)
	var specs []spec
	for i := 0; i < 2500; i++ {
		specs = append(specs, spec{off: int64(i), msg: fmt.Sprintf("failure kind %d", i%3), tenant: "t1"})
	}
	indexKafka(t, s, "d", 0, specs...)
	ctx := context.Background()
	var resolve, discard []int64
	for id := int64(1); id <= 2500; id++ {
		switch id % 5 {
		case 0:
			resolve = append(resolve, id)
		case 1:
			discard = append(discard, id)
		}
	}
	s.SetStatus(ctx, resolve, StatusResolved)
	s.SetStatus(ctx, discard, StatusDiscarded)
	s.SetStatus(ctx, []int64{2, 7}, StatusRedriven)
	s.SetStatus(ctx, []int64{3}, StatusQuarantined)
	// Everything is old, even the dead ones.
	clk.Set(clk.Now().Add(90 * 24 * time.Hour))
	n, err := s.Purge(ctx, clk.Now().Add(-30*24*time.Hour))
	if err != nil || n != 1000 {
		t.Fatalf("Purge = %d, %v; want 1000", n, err)
	}
	c, _ := s.Counts(ctx, nil)
	if c.ByStatus[StatusResolved] != 0 || c.ByStatus[StatusDiscarded] != 0 || c.ByStatus[StatusDead] != 1497 || c.ByStatus[StatusRedriven] != 2 || c.ByStatus[StatusQuarantined] != 1 {
		t.Fatalf("counts after purge = %v", c.ByStatus)
	}
	if got, bodies := countRows(t, s, "entries"), countRows(t, s, "entry_bodies"); got != 1500 || bodies != 1500 {
		t.Fatalf("entries = %d, bodies = %d, want 1500", got, bodies)
	}
	if p := find(t, s, Filter{Q: "ids:5 OR ids:6 OR ids:2"}); !slices.Equal(ids(p.Entries), []int64{2}) {
		t.Fatalf("full-text rows of purged entries remain: %v", ids(p.Entries))
	}
	gs, _, _ := s.Groups(ctx, GroupFilter{})
	sum := 0
	for _, g := range gs {
		sum += g.Count
	}
	if sum != 1500 {
		t.Fatalf("group counts = %d after purge, want 1500", sum)
	}
	// A recent resolution is kept.
	s.SetStatus(ctx, []int64{8}, StatusResolved)
	if n, _ := s.Purge(ctx, clk.Now().Add(-30*24*time.Hour)); n != 0 {
		t.Fatalf("recently resolved entry purged")
	}
}
