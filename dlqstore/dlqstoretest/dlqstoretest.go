// Package dlqstoretest is the conformance suite of the dead-letter store
// contract (dlqstore.Backend): TestBackend, which every implementation
// runs from its own tests against fresh stores, as deliverytest does for
// the idempotency store. It checks what callers rely on — deduplication
// and offsets, filters, paging, full-text search, the caller's scope in
// every list and aggregate, triage, retention, job selections and job
// visibility — through the contract only; what is particular to one
// implementation (its schema, migrations, query plans, tuning) is tested
// beside it. Spec, IndexKafka, Find and VisibleJobs build the fixtures,
// for those tests too.
package dlqstoretest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/dlqstore"
)

// Opener returns an empty store whose clock is now, closed by t's cleanup.
type Opener func(t *testing.T, now func() time.Time) dlqstore.Backend

// TestBackend runs the suite, one subtest a behaviour, each on a store of
// its own.
func TestBackend(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, Opener)
	}{
		{"IndexKafkaDedupesAndStoresOffset", testIndexKafkaDedupesAndStoresOffset},
		{"IndexRabbitDedupesRedeliveries", testIndexRabbitDedupesRedeliveries},
		{"EntryRoundTripsHostileInput", testEntryRoundTripsHostileInput},
		{"FindEntriesFilters", testFindEntriesFilters},
		{"KeysetPagingStableAcrossInserts", testKeysetPagingStableAcrossInserts},
		{"FullTextSearch", testFullTextSearch},
		{"BadSearchIsInvalid", testBadSearchIsInvalid},
		{"SearchWithoutPayloadText", testSearchWithoutPayloadText},
		{"SearchFindsWhatThePageShows", testSearchFindsWhatThePageShows},
		{"FieldMatches", testFieldMatches},
		{"FilterOutOfRangeIsRefused", testFilterOutOfRangeIsRefused},
		{"TenantScopeOfGroupsAndCounts", testTenantScopeOfGroupsAndCounts},
		{"ResourceRulesLimitEveryAggregate", testResourceRulesLimitEveryAggregate},
		{"TrendsOfManyGroupsInOneCall", testTrendsOfManyGroupsInOneCall},
		{"TriageValidation", testTriageValidation},
		{"PurgeNeverTouchesUnresolved", testPurgeNeverTouchesUnresolved},
		{"SelectionWithoutConditions", testSelectionWithoutConditions},
		{"JobVisibility", testJobVisibility},
		{"CancelJobRecordsWho", testCancelJobRecordsWho},
		{"RefailureLinksBothWays", testRefailureLinksBothWays},
		{"RefailureOfARabbitMQMessage", testRefailureOfARabbitMQMessage},
		{"RefailureWithGarbledProvenance", testRefailureWithGarbledProvenance},
		{"RestOfAJob", testRestOfAJob},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}

// T0 is the time the fixtures fail at unless they say otherwise; a store
// of the suite starts an hour later.
func T0() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

// setup opens a store whose clock starts at T0 + 1h.
func setup(t *testing.T, open Opener) (dlqstore.Backend, *deliverytest.Clock) {
	t.Helper()
	clk := deliverytest.NewClock(T0().Add(time.Hour))
	return open(t, clk.Now), clk
}

// Spec describes one test dead letter; Item builds it.
type Spec struct {
	Broker, Cluster, Dest string // default kafka, main; Dest is the DLQ topic or queue
	Part                  int32
	Off                   int64
	MsgID                 string
	Death                 int
	Tenant, Type, Code    string // Type default order.created
	Msg, Exc              string
	At                    time.Time // default T0
	Payload               []byte    // nil = an envelope
	EnvID                 string
	Origin                string           // origin topic, default "orders"
	Headers               delivery.Headers // more headers, e.g. a re-failure's redrive provenance
}

// Item is the dead letter sp describes, as an indexer hands it over.
func (sp Spec) Item() dlqstore.IndexItem {
	sp.Broker = cmp.Or(sp.Broker, delivery.BrokerKafka)
	sp.Cluster = cmp.Or(sp.Cluster, "main")
	sp.Type = cmp.Or(sp.Type, "order.created")
	if sp.At.IsZero() {
		sp.At = T0()
	}
	if sp.EnvID == "" {
		sp.EnvID = fmt.Sprintf("0b8e6a52-1c7f-4a43-9d55-%012d", sp.Off+int64(sp.Death)*1000+int64(len(sp.MsgID))*100000)
	}
	dlq := delivery.Location{Broker: sp.Broker, Cluster: sp.Cluster, Partition: sp.Part, Offset: sp.Off}
	if sp.Broker == delivery.BrokerRabbitMQ {
		dlq = delivery.Location{Broker: sp.Broker, Cluster: sp.Cluster, VHost: "/", Queue: sp.Dest, Partition: -1, Offset: -1}
	} else {
		dlq.Topic = sp.Dest
	}
	var env *delivery.Envelope
	payload := sp.Payload
	if payload == nil {
		e := delivery.Envelope{ID: sp.EnvID, Type: sp.Type, OccurredAt: sp.At.Format(time.RFC3339Nano), Source: "orders",
			CorrelationID: "corr-" + sp.EnvID[len(sp.EnvID)-6:], TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
			Payload:  json.RawMessage(`{"order_id":"ord-` + fmt.Sprint(sp.Off) + `","customer":"Zoë Müller","note":"expédition rapide"}`),
			Metadata: delivery.Metadata{TenantID: sp.Tenant}}
		payload, _ = json.Marshal(e)
		env = &e
	}
	dl := delivery.DeadLetter{
		Format: delivery.FormatSwitchyard, Envelope: env, Payload: payload, DLQ: dlq,
		Origin:   delivery.Location{Broker: sp.Broker, Cluster: sp.Cluster, Topic: cmp.Or(sp.Origin, "orders"), Partition: 0, Offset: 7},
		Error:    delivery.ErrorInfo{Code: sp.Code, Message: sp.Msg, ExceptionType: sp.Exc, Stack: "at com.acme.Orders.handle(Orders.java:42)"},
		Attempts: 3, FirstFailureAt: sp.At.Add(-time.Minute), LastFailureAt: sp.At,
		Headers: append(delivery.Headers{{Key: "tenant_id", Value: []byte(sp.Tenant)}, {Key: "bin", Value: []byte{0xff, 0x00}}}, sp.Headers...),
	}
	if n, err := strconv.Atoi(sp.Headers.String(delivery.HeaderRedriveCount)); err == nil {
		dl.RedriveCount = n // as delivery.Decode reads it
	}
	if env == nil {
		dl.EnvelopeError = "payload is not a JSON envelope"
	}
	return dlqstore.IndexItem{DL: dl, MessageID: sp.MsgID, DeathCount: sp.Death, Fingerprint: delivery.Fingerprint(dl),
		PayloadSize: len(payload), PayloadHash: "h", ReceivedAt: sp.At}
}

// IndexKafka indexes specs as records of one partition of topic on
// cluster main, the next offset past the last of them.
func IndexKafka(t *testing.T, s dlqstore.IndexStore, topic string, part int32, specs ...Spec) dlqstore.IndexResult {
	t.Helper()
	var items []dlqstore.IndexItem
	next := int64(0)
	for _, sp := range specs {
		sp.Dest, sp.Part = topic, part
		items = append(items, sp.Item())
		next = max(next, sp.Off+1)
	}
	res, err := s.IndexKafka(context.Background(), "main", topic, part, items, next)
	if err != nil {
		t.Fatalf("IndexKafka: %v", err)
	}
	WaitText(t, s)
	return res
}

// textWaiter is a store whose full-text index follows capture
// asynchronously (dlqstore.Store.WaitText).
type textWaiter interface {
	WaitText(ctx context.Context) error
}

// WaitText returns once s's full-text index holds every entry stored
// before the call, for a store whose text follows capture (a
// *dlqstore.Store); for any other store it returns at once. It fails t
// after 30 s. IndexKafka and a Find with text call it, so that a fixture
// is searchable as soon as it is stored; a test that indexes otherwise
// calls it before searching.
func WaitText(t testing.TB, s any) {
	t.Helper()
	w, ok := s.(textWaiter)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WaitText(ctx); err != nil {
		t.Fatalf("WaitText: %v", err)
	}
}

// Find is FindEntries that fails t on an error; with text, it first waits
// for the full-text index to hold every stored entry (WaitText).
func Find(t *testing.T, s dlqstore.ViewStore, f dlqstore.Filter) dlqstore.Page {
	t.Helper()
	if f.Q != "" {
		WaitText(t, s)
	}
	p, err := s.FindEntries(context.Background(), f)
	if err != nil {
		t.Fatalf("FindEntries(%+v): %v", f, err)
	}
	return p
}

// IDs are the ids of es, in order.
func IDs(es []dlqstore.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// JobIDs are the ids of js, in order (never nil).
func JobIDs(js []dlqstore.JobRecord) []int64 {
	out := []int64{}
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

// VisibleJobs walks every page of the jobs v may see, limit per page, and
// fails on a short page that has a next cursor.
func VisibleJobs(t *testing.T, s dlqstore.JobStore, v dlqstore.JobViewer, limit int) []int64 {
	t.Helper()
	var out []int64
	var before int64
	for {
		js, next, err := s.Jobs(context.Background(), dlqstore.JobQuery{Viewer: &v, Before: before, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if next != 0 && len(js) != limit {
			t.Errorf("page before %d has %d jobs and a next cursor %d, want %d", before, len(js), next, limit)
		}
		out = append(out, JobIDs(js)...)
		if next == 0 {
			return out
		}
		before = next
	}
}
