package dlqstoretest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/dlqstore"
)

func testIndexKafkaDedupesAndStoresOffset(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	specs := []Spec{{Off: 0, Msg: "a"}, {Off: 1, Msg: "b"}, {Off: 2, Msg: "c"}}
	if got := IndexKafka(t, s, "orders.dlq", 0, specs...); got != (dlqstore.IndexResult{Inserted: 3}) {
		t.Fatalf("first index = %+v", got)
	}
	// Re-reading the same records after a restart stores nothing twice.
	if got := IndexKafka(t, s, "orders.dlq", 0, append(specs, Spec{Off: 3, Msg: "d"})...); got != (dlqstore.IndexResult{Inserted: 1, Duplicates: 3}) {
		t.Fatalf("re-index = %+v", got)
	}
	// Same offset on another partition is another record.
	if got := IndexKafka(t, s, "orders.dlq", 1, Spec{Off: 0, Msg: "a"}); got.Inserted != 1 {
		t.Fatalf("other partition = %+v", got)
	}
	offs, err := s.KafkaOffsets(context.Background(), "main")
	if err != nil {
		t.Fatal(err)
	}
	want := map[dlqstore.TopicPartition]int64{{Topic: "orders.dlq", Partition: 0}: 4, {Topic: "orders.dlq", Partition: 1}: 1}
	if fmt.Sprint(offs) != fmt.Sprint(want) {
		t.Fatalf("offsets = %v, want %v", offs, want)
	}
	if n := Find(t, s, dlqstore.Filter{}).Total; n != 5 {
		t.Fatalf("entries = %d, want 5", n)
	}
	g, _, err := s.Groups(context.Background(), dlqstore.GroupFilter{})
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

func testIndexRabbitDedupesRedeliveries(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	mk := func(id string, death int) dlqstore.IndexItem {
		return Spec{Broker: delivery.BrokerRabbitMQ, Dest: "orders_error", MsgID: id, Death: death, Msg: "boom"}.Item()
	}
	res, err := s.IndexRabbit(context.Background(), []dlqstore.IndexItem{mk("m1", 1), mk("m2", 1), mk("", 1), mk("", 1)})
	if err != nil || res != (dlqstore.IndexResult{Inserted: 4}) {
		t.Fatalf("first = %+v, %v", res, err)
	}
	// A redelivery (same id, same death count) is a duplicate; the same
	// message dead-lettered again (death count 2) is a new failure;
	// messages without an id cannot be told apart and are kept.
	res, err = s.IndexRabbit(context.Background(), []dlqstore.IndexItem{mk("m1", 1), mk("m1", 2), mk("", 1)})
	if err != nil || res != (dlqstore.IndexResult{Inserted: 2, Duplicates: 1}) {
		t.Fatalf("second = %+v, %v", res, err)
	}
	e, err := s.Entry(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if e.Broker != "rabbitmq" || e.Destination != "orders_error" || e.VHost != "/" || e.MessageID != "m1" || e.DeathCount != 1 || e.Partition != -1 {
		t.Fatalf("entry = %+v", e)
	}
	if _, err := s.IndexRabbit(context.Background(), []dlqstore.IndexItem{Spec{Dest: "x"}.Item()}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Fatalf("kafka item to IndexRabbit: %v, want EINVALID", err)
	}
}

func testEntryRoundTripsHostileInput(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	script := `<script>alert("x")</script> order 42 failed`
	bin := []byte{0xff, 0xfe, 'f', 'o', 'o', 0x80}
	big := strings.Repeat("v", 256<<10)
	it1 := Spec{Dest: "d", Off: 0, Msg: script, Tenant: "t1", Code: "E1", Exc: "java.lang.IllegalStateException"}.Item()
	it1.DL.Headers = append(it1.DL.Headers, delivery.Header{Key: "huge", Value: []byte(big)})
	// The stack is in a header too: stored once, restored in both places.
	stack := "java.lang.IllegalStateException: boom\n\tat com.acme.Orders.handle(Orders.java:42)\n\tat java.base/java.lang.Thread.run(Thread.java:1583)"
	it1.DL.Error.Stack = stack
	it1.DL.Headers = append(it1.DL.Headers, delivery.Header{Key: "kafka_dlt-exception-stacktrace", Value: []byte(stack)})
	it2 := Spec{Dest: "d", Off: 1, Payload: bin, Msg: "binary"}.Item()
	it2.Flags = []string{"not_utf8", "invalid_envelope"}
	if _, err := s.IndexKafka(context.Background(), "main", "d", 0, []dlqstore.IndexItem{it1, it2}, 2); err != nil {
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
	// (That the stack is stored once is the SQLite store's own test.)
	if e1.DL.Error.Stack != stack || e1.DL.Headers.String("kafka_dlt-exception-stacktrace") != stack {
		t.Errorf("stack = %q, header %q", e1.DL.Error.Stack, e1.DL.Headers.String("kafka_dlt-exception-stacktrace"))
	}
	if v, _ := e1.DL.Headers.Get("huge"); len(v) != len(big) {
		t.Errorf("huge header has %d bytes, want %d", len(v), len(big))
	}
	if v, _ := e1.DL.Headers.Get("bin"); string(v) != "\xff\x00" {
		t.Errorf("binary header = %q", v)
	}
	if e1.Tenant != "t1" || e1.ErrorCode != "E1" || e1.EventType != "order.created" || e1.Partition != 0 || e1.Offset != 0 || !e1.DL.LastFailureAt.Equal(T0()) {
		t.Errorf("entry columns = %+v", e1)
	}
	e2, err := s.Entry(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(e2.DL.Payload) != string(bin) || !slices.Equal(e2.Flags, it2.Flags) || e2.DL.Envelope != nil {
		t.Errorf("binary entry = %q %v %v", e2.DL.Payload, e2.Flags, e2.DL.Envelope)
	}
	if p := Find(t, s, dlqstore.Filter{Q: "foo"}); len(p.Entries) != 0 {
		t.Errorf("text of an invalid UTF-8 payload was indexed")
	}
	if _, err := s.Entry(context.Background(), 99); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("dlqstore.Entry(99) = %v, want ENOTFOUND", err)
	}
}

// fixture indexes a varied set and returns the specs by entry id.
func fixture(t *testing.T, s dlqstore.Backend) map[int64]Spec {
	t.Helper()
	out := map[int64]Spec{}
	tenants := []string{"t1", "t2", ""}
	codes := []string{"VALIDATION", "TIMEOUT"}
	types := []string{"order.created", "payment.failed"}
	id := int64(0)
	for i := 0; i < 36; i++ {
		sp := Spec{
			Off: int64(i), Tenant: tenants[i%3], Code: codes[i%2], Type: types[(i/2)%2],
			Msg: fmt.Sprintf("%s: order %d rejected", codes[i%2], 1000+i), Exc: "com.acme.RejectedException",
			// Some share a time, so the id breaks ties.
			At: T0().Add(time.Duration(i/2) * time.Minute),
		}
		if i%4 == 3 {
			sp.Broker, sp.Dest, sp.MsgID, sp.Death = delivery.BrokerRabbitMQ, "orders_error", fmt.Sprint("m", i), 1
			if _, err := s.IndexRabbit(context.Background(), []dlqstore.IndexItem{sp.Item()}); err != nil {
				t.Fatal(err)
			}
		} else {
			sp.Broker, sp.Dest = delivery.BrokerKafka, []string{"orders.dlq", "payments.dlq"}[i%2]
			if _, err := s.IndexKafka(context.Background(), "main", sp.Dest, 0, []dlqstore.IndexItem{sp.Item()}, sp.Off+1); err != nil {
				t.Fatal(err)
			}
		}
		id++
		out[id] = sp
	}
	// Some change status.
	if _, err := s.SetStatus(context.Background(), []int64{1, 2, 3, 4}, dlqstore.StatusResolved); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetStatus(context.Background(), []int64{5, 6}, dlqstore.StatusQuarantined); err != nil {
		t.Fatal(err)
	}
	return out
}

func statusOf(id int64) dlqstore.Status {
	switch {
	case id <= 4:
		return dlqstore.StatusResolved
	case id <= 6:
		return dlqstore.StatusQuarantined
	}
	return dlqstore.StatusDead
}

// want returns the fixture ids matching pred, newest first.
func want(all map[int64]Spec, pred func(id int64, sp Spec) bool) []int64 {
	var out []int64
	for id, sp := range all {
		if pred(id, sp) {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b int64) int {
		if c := all[b].At.Compare(all[a].At); c != 0 {
			return c
		}
		return int(b - a)
	})
	return out
}

func testFindEntriesFilters(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	all := fixture(t, s)
	groupOf := func(id int64) int64 {
		e, err := s.Entry(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return e.GroupID
	}
	g7 := groupOf(7)
	t1 := &dlqstore.TenantScope{Tenants: []string{"t1"}}
	tests := []struct {
		name string
		f    dlqstore.Filter
		pred func(id int64, sp Spec) bool
	}{
		{"none", dlqstore.Filter{}, func(int64, Spec) bool { return true }},
		{"status", dlqstore.Filter{Status: []dlqstore.Status{dlqstore.StatusDead}}, func(id int64, _ Spec) bool { return statusOf(id) == dlqstore.StatusDead }},
		{"two statuses", dlqstore.Filter{Status: []dlqstore.Status{dlqstore.StatusResolved, dlqstore.StatusQuarantined}}, func(id int64, _ Spec) bool { return statusOf(id) != dlqstore.StatusDead }},
		{"broker", dlqstore.Filter{Broker: "rabbitmq"}, func(_ int64, sp Spec) bool { return sp.Broker == "rabbitmq" }},
		{"cluster", dlqstore.Filter{Cluster: "main"}, func(int64, Spec) bool { return true }},
		{"other cluster", dlqstore.Filter{Cluster: "other"}, func(int64, Spec) bool { return false }},
		{"destination", dlqstore.Filter{Destination: "payments.dlq"}, func(_ int64, sp Spec) bool { return sp.Dest == "payments.dlq" }},
		{"event type", dlqstore.Filter{EventType: "payment.failed"}, func(_ int64, sp Spec) bool { return sp.Type == "payment.failed" }},
		{"error code", dlqstore.Filter{ErrorCode: "TIMEOUT"}, func(_ int64, sp Spec) bool { return sp.Code == "TIMEOUT" }},
		{"tenant", dlqstore.Filter{Tenant: "t2"}, func(_ int64, sp Spec) bool { return sp.Tenant == "t2" }},
		{"scope t1", dlqstore.Filter{Tenants: t1}, func(_ int64, sp Spec) bool { return sp.Tenant == "t1" || sp.Tenant == "" }},
		{"scope t1 t2", dlqstore.Filter{Tenants: &dlqstore.TenantScope{Tenants: []string{"t1", "t2"}}}, func(int64, Spec) bool { return true }},
		{"scope and status with duplicates", dlqstore.Filter{Tenants: &dlqstore.TenantScope{Tenants: []string{"t1", "t1", ""}}, Status: []dlqstore.Status{dlqstore.StatusDead, dlqstore.StatusDead, dlqstore.StatusResolved}},
			func(id int64, sp Spec) bool {
				return (sp.Tenant == "t1" || sp.Tenant == "") && statusOf(id) != dlqstore.StatusQuarantined
			}},
		{"scope all", dlqstore.Filter{Tenants: &dlqstore.TenantScope{All: true}}, func(int64, Spec) bool { return true }},
		{"scope t1, tenant t2", dlqstore.Filter{Tenants: t1, Tenant: "t2"}, func(int64, Spec) bool { return false }},
		{"time range", dlqstore.Filter{From: T0().Add(3 * time.Minute), To: T0().Add(6 * time.Minute)}, func(_ int64, sp Spec) bool {
			return !sp.At.Before(T0().Add(3*time.Minute)) && sp.At.Before(T0().Add(6*time.Minute))
		}},
		{"group", dlqstore.Filter{GroupID: g7}, func(id int64, _ Spec) bool { return groupOf(id) == g7 }},
		{"scope t1 + statuses + code", dlqstore.Filter{Tenants: t1, Status: []dlqstore.Status{dlqstore.StatusDead, dlqstore.StatusQuarantined}, ErrorCode: "VALIDATION"},
			func(id int64, sp Spec) bool {
				return (sp.Tenant == "t1" || sp.Tenant == "") && statusOf(id) != dlqstore.StatusResolved && sp.Code == "VALIDATION"
			}},
		{"text + broker", dlqstore.Filter{Q: "rejected", Broker: "kafka", EventType: "order.created"}, func(_ int64, sp Spec) bool {
			return sp.Broker == "kafka" && sp.Type == "order.created"
		}},
		{"text + scope + status", dlqstore.Filter{Q: "order 1030", Tenants: t1, Status: []dlqstore.Status{dlqstore.StatusDead}}, func(id int64, sp Spec) bool {
			return sp.Off == 30 && (sp.Tenant == "t1" || sp.Tenant == "") && statusOf(id) == dlqstore.StatusDead
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
				p := Find(t, s, f)
				if total == -1 {
					total = p.Total
				}
				got = append(got, IDs(p.Entries)...)
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

func testKeysetPagingStableAcrossInserts(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	var specs []Spec
	for i := 0; i < 20; i++ {
		specs = append(specs, Spec{Off: int64(i), Msg: "x", At: T0().Add(time.Duration(i/3) * time.Second)})
	}
	IndexKafka(t, s, "d", 0, specs...)
	before := IDs(Find(t, s, dlqstore.Filter{Limit: 500}).Entries)
	p := Find(t, s, dlqstore.Filter{Limit: 7})
	got := IDs(p.Entries)
	// New failures arrive, newer and older than the page boundary.
	IndexKafka(t, s, "d", 1, Spec{Off: 0, Msg: "new", At: T0().Add(time.Hour)}, Spec{Off: 1, Msg: "new", At: T0().Add(-time.Hour)})
	for p.Next != "" {
		p = Find(t, s, dlqstore.Filter{Limit: 7, Cursor: p.Next})
		got = append(got, IDs(p.Entries)...)
	}
	// The old entries come exactly once, in order; the old-timed new one
	// appears at the end where it belongs.
	if !slices.Equal(got[:20], before) || len(got) != 21 || got[20] != 22 {
		t.Fatalf("pages = %v, want %v then 22", got, before)
	}
	if _, err := s.FindEntries(context.Background(), dlqstore.Filter{Cursor: "!!"}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Fatalf("bad cursor: %v", err)
	}
}

func testFullTextSearch(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	a := Spec{Off: 0, Msg: "Payment declined for card ending 4242", Exc: "java.lang.NullPointerException", EnvID: "7d3b1c9e-2f4a-4b8e-9c1d-5e6f7a8b9c0d"}
	b := Spec{Off: 1, Msg: "Connection timed out", Exc: "System.TimeoutException", EnvID: "11111111-2222-4333-8444-555555555555"}
	IndexKafka(t, s, "d", 0, a, b)
	rb := Spec{Broker: delivery.BrokerRabbitMQ, Dest: "q_error", MsgID: "msg-ABC-123", Death: 1, Msg: "nope"}.Item()
	if _, err := s.IndexRabbit(context.Background(), []dlqstore.IndexItem{rb}); err != nil {
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
			if got := IDs(Find(t, s, dlqstore.Filter{Q: tt.q}).Entries); !slices.Equal(got, tt.want) {
				t.Errorf("Q %q = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

// Filter.NoPayloadText keeps a search off the payload column in the
// entries query and in a job's selection alike, so that neither a page
// nor a plan's count tells what a payload holds; the other columns are
// searched as usual, a term in each as with the whole index.
func testSearchWithoutPayloadText(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	a := Spec{Off: 0, Msg: "Payment declined", Exc: "DeclinedException", EnvID: "7d3b1c9e-2f4a-4b8e-9c1d-5e6f7a8b9c0d"}
	b := Spec{Off: 1, Msg: "Connection timed out"}
	IndexKafka(t, s, "d", 0, a, b)
	ctx := context.Background()
	tests := []struct {
		q          string
		all, plain []int64 // with and without payload text
	}{
		{"expedition", []int64{2, 1}, nil},            // payload only
		{"zoe AND ord-1", []int64{2}, nil},            // payload only
		{"declined", []int64{1}, []int64{1}},          // message
		{"declined 7d3b1c9e", []int64{1}, []int64{1}}, // message and ids
		{"exception:DeclinedException", []int64{1}, []int64{1}},
		{"timed OR zoe", []int64{2, 1}, []int64{2}},
		{"timed NOT zoe", nil, []int64{2}}, // NOT cannot reach the payload either
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			if got := IDs(Find(t, s, dlqstore.Filter{Q: tt.q}).Entries); !slices.Equal(got, tt.all) {
				t.Errorf("Q %q = %v, want %v", tt.q, got, tt.all)
			}
			f := dlqstore.Filter{Q: tt.q, NoPayloadText: true}
			p := Find(t, s, f)
			if got := IDs(p.Entries); !slices.Equal(got, tt.plain) || p.Total != len(tt.plain) {
				t.Errorf("Q %q without payload text = %v (total %d), want %v", tt.q, got, p.Total, tt.plain)
			}
			plan, err := s.PlanSelection(ctx, dlqstore.Selection{Filter: &f, Eligible: []dlqstore.Status{dlqstore.StatusDead}}, 5)
			if err != nil || plan.Count != len(tt.plain) {
				t.Errorf("plan of Q %q without payload text = %d (%v), want %d", tt.q, plan.Count, err, len(tt.plain))
			}
		})
	}
	// A payload: filter is refused, in words about what was typed.
	f := dlqstore.Filter{Q: "payload:zoe", NoPayloadText: true}
	_, err := s.FindEntries(ctx, f)
	if delivery.ErrorCode(err) != delivery.EINVALID || delivery.ErrorMessage(err) != `search: you may not search payload text (payload:) in "payload:zoe"` {
		t.Errorf("payload: search = %v, want EINVALID naming what was typed", err)
	}
	if _, err := s.PlanSelection(ctx, dlqstore.Selection{Filter: &f}, 0); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("payload: selection = %v, want EINVALID", err)
	}
	if _, err := s.CreateJob(ctx, dlqstore.JobRecord{Action: "discard", State: dlqstore.JobRunning, Access: "discard"}, dlqstore.Selection{Filter: &f}, ""); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("payload: job = %v, want EINVALID", err)
	}
}

func testBadSearchIsInvalid(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	IndexKafka(t, s, "d", 0, Spec{Off: 0, Msg: "x"})
	for _, q := range []string{`"unbalanced`, `AND`, `foo AND`, `OR bar`, `NOT foo`, `(foo`, `foo)`, `()`, `*`, `foo AND OR bar`, `message:`, `""`} {
		t.Run(q, func(t *testing.T) {
			_, err := s.FindEntries(context.Background(), dlqstore.Filter{Q: q})
			if delivery.ErrorCode(err) != delivery.EINVALID || !strings.HasPrefix(delivery.ErrorMessage(err), "search: ") {
				t.Fatalf("Q %q: %v, want EINVALID \"search: …\"", q, err)
			}
		})
	}
	_, err := s.FindEntries(context.Background(), dlqstore.Filter{Q: `"order 42`})
	if got := delivery.ErrorMessage(err); got != `search: unbalanced quote in "\"order 42"` {
		t.Fatalf("message = %q", got)
	}
}

// A filter the store cannot hold is refused by every reader of filters —
// the entries query and a job's selection — naming the field: a year-9999
// bound once wrapped around in Unix nanoseconds and matched every entry,
// and a NUL in the text failed inside FTS5 as an internal error.
func testFilterOutOfRangeIsRefused(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	ctx := context.Background()
	var items []dlqstore.IndexItem
	for i := range 3 {
		items = append(items, Spec{Dest: "orders.dlq", Off: int64(i), Tenant: "t1", Code: "E", Msg: "timeout", At: T0()}.Item())
	}
	if _, err := s.IndexKafka(ctx, "main", "orders.dlq", 0, items, 3); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		f     dlqstore.Filter
		field string
	}{
		{"from in 9999", dlqstore.Filter{From: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}, "from"},
		{"to in 1000", dlqstore.Filter{To: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}, "to"},
		{"from past 2262", dlqstore.Filter{From: time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC)}, "from"},
		{"to before from", dlqstore.Filter{From: T0(), To: T0().Add(-time.Hour)}, "to"},
		{"NUL in the text", dlqstore.Filter{Q: "a\x00b"}, "q"},
		{"escape in a name", dlqstore.Filter{Tenant: "t1\x1b[31m"}, "tenant"},
		{"invalid UTF-8", dlqstore.Filter{Destination: "\xff"}, "destination"},
		{"text too long", dlqstore.Filter{Q: strings.Repeat("a", dlqstore.MaxQueryLen+1)}, "search"},
		{"long cursor", dlqstore.Filter{Cursor: strings.Repeat("a", 5000)}, "cursor"},
		{"unknown status", dlqstore.Filter{Status: []dlqstore.Status{"gone"}}, "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.FindEntries(ctx, tc.f)
			if delivery.ErrorCode(err) != delivery.EINVALID || !strings.Contains(delivery.ErrorMessage(err), tc.field) {
				t.Errorf("FindEntries: %v, want EINVALID naming %s", err, tc.field)
			}
			if len(delivery.ErrorMessage(err)) > 300 {
				t.Errorf("the message echoes the input: %d bytes", len(delivery.ErrorMessage(err)))
			}
			f := tc.f
			_, err = s.PlanSelection(ctx, dlqstore.Selection{Filter: &f, Eligible: []dlqstore.Status{dlqstore.StatusDead}}, 5)
			if delivery.ErrorCode(err) != delivery.EINVALID {
				t.Errorf("PlanSelection: %v, want EINVALID", err)
			}
		})
	}
	// In range, the same bounds select.
	page, err := s.FindEntries(ctx, dlqstore.Filter{From: T0().Add(-time.Minute), To: T0().Add(time.Minute)})
	if err != nil || len(page.Entries) != 3 {
		t.Errorf("in range: %d entries, %v; want 3", len(page.Entries), err)
	}
}
