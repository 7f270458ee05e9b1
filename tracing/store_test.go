package tracing

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"switchyard/delivery"
)

// openSpanStore opens a store in the test's own temp dir.
func openSpanStore(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "traces.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var storeT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// tid and sid build ids whose bytes say which trace and span they are.
func tid(n int) TraceID { return TraceID{0xab, byte(n >> 8), byte(n), 15: 1} }
func sid(n int) SpanID  { return SpanID{0xcd, byte(n >> 8), byte(n), 7: 1} }

// spanAt is a span of service svc with attrs, derived as ingest would.
func spanAt(trace, span int, svc string, start time.Time, dur time.Duration, attrs ...Attr) Span {
	sp := Span{
		TraceID: tid(trace), SpanID: sid(span),
		Name: "op", Kind: KindInternal, Start: start, End: start.Add(dur),
		Attrs:         attrs,
		ResourceAttrs: []Attr{{Key: "service.name", Value: svc}, {Key: "host.name", Value: "h1"}},
	}
	Derive(&sp)
	return sp
}

func mustWrite(t *testing.T, s *Store, spans ...Span) {
	t.Helper()
	if err := s.Write(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
}

// Every field a page shows survives a write and a read.
func TestWriteRoundTrip(t *testing.T) {
	s := openSpanStore(t, Options{})
	want := Span{
		TraceID: tid(1), SpanID: sid(2), ParentSpanID: sid(1),
		Name: "orders.order.placed.v1 process", Kind: KindConsumer,
		Start: storeT0, End: storeT0.Add(1234567 * time.Nanosecond),
		Status: StatusError, StatusMsg: "billing declined: card expired ✗",
		Attrs: []Attr{
			{delivery.AttrSystem, "kafka"}, {delivery.AttrDest, "orders"}, {delivery.AttrCluster, "prod"},
			{delivery.AttrConsumer, "billing"}, {delivery.AttrCorrelationID, "corr-1"}, {delivery.AttrMessageID, "ev-1"},
			{delivery.AttrEventType, "orders.order.placed.v1"}, {delivery.AttrAttempt, "3"}, {delivery.AttrStep, delivery.StepAttempt},
			{"tenant_id", "t1"}, {"empty", ""},
		},
		ResourceAttrs: []Attr{{"service.name", "billing"}, {"service.version", "1.2.3"}},
		Events: []Event{
			{Time: storeT0.Add(time.Millisecond), Name: "exception", Attrs: []Attr{{"exception.type", "CardExpired"}, {"exception.stacktrace", "at billing.charge()\n  at main()"}}},
			{Time: storeT0.Add(-time.Second), Name: "before start"},
		},
		Links: []Link{{TraceID: tid(9), SpanID: sid(9), Attrs: []Attr{{"link.kind", "producer"}}}},
		Flags: FlagAttrsCut | FlagFuture,
	}
	Derive(&want)
	mustWrite(t, s, want)

	got, truncated, err := s.Spans(context.Background(), []TraceID{tid(1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if truncated || len(got) != 1 {
		t.Fatalf("got %d spans (truncated %v), want 1", len(got), truncated)
	}
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", got[0], want)
	}
	if got[0].Resource != "kafka:prod/orders" || got[0].Tenant != "t1" || got[0].Attempt != 3 {
		t.Errorf("derived resource %q tenant %q attempt %d", got[0].Resource, got[0].Tenant, got[0].Attempt)
	}
}

// A span sent twice (an exporter's retry) or twice in one batch is kept
// and flagged, never dropped; the first copy stays unflagged.
func TestWriteFlagsDuplicates(t *testing.T) {
	s := openSpanStore(t, Options{})
	a := spanAt(1, 1, "orders", storeT0, time.Millisecond)
	b := spanAt(1, 2, "orders", storeT0.Add(time.Millisecond), time.Millisecond)
	mustWrite(t, s, a, b, a)
	mustWrite(t, s, b, spanAt(1, 3, "orders", storeT0.Add(2*time.Millisecond), time.Millisecond))

	got, _, err := s.Spans(context.Background(), []TraceID{tid(1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	dups := map[SpanID][]bool{}
	for _, sp := range got {
		dups[sp.SpanID] = append(dups[sp.SpanID], sp.Flags.Has(FlagDuplicate))
	}
	want := map[SpanID][]bool{sid(1): {false, true}, sid(2): {false, true}, sid(3): {false}}
	if !reflect.DeepEqual(dups, want) {
		t.Errorf("duplicate flags by span = %v, want %v", dups, want)
	}
}

// A span without ids could never be found again: Write refuses it
// (FromOTLP gives such spans random ids first).
func TestWriteRefusesZeroIDs(t *testing.T) {
	s := openSpanStore(t, Options{})
	sp := spanAt(1, 1, "orders", storeT0, time.Millisecond)
	sp.SpanID = SpanID{}
	if err := s.Write(context.Background(), []Span{sp}); err == nil {
		t.Error("Write of a span without a span id succeeded")
	}
}

// Spans reads several traces in start order and stops at the limit,
// saying so.
func TestSpansOrderAndLimit(t *testing.T) {
	s := openSpanStore(t, Options{})
	mustWrite(t, s,
		spanAt(1, 3, "a", storeT0.Add(3*time.Second), time.Millisecond),
		spanAt(2, 1, "b", storeT0.Add(1*time.Second), time.Millisecond),
		spanAt(1, 2, "a", storeT0.Add(2*time.Second), time.Millisecond),
		spanAt(3, 1, "c", storeT0, time.Millisecond),
	)
	ctx := context.Background()
	got, truncated, err := s.Spans(ctx, []TraceID{tid(1), tid(2)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ids := spanIDs(got); !reflect.DeepEqual(ids, []SpanID{sid(1), sid(2), sid(3)}) || truncated {
		t.Errorf("spans of traces 1 and 2 = %v (truncated %v), want 1, 2, 3 by start", ids, truncated)
	}
	got, truncated, err = s.Spans(ctx, []TraceID{tid(1), tid(2)}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !truncated {
		t.Errorf("limit 2: %d spans, truncated %v; want 2, true", len(got), truncated)
	}
	got, truncated, err = s.Spans(ctx, []TraceID{tid(1), tid(2)}, 3)
	if err != nil || len(got) != 3 || truncated {
		t.Errorf("limit 3 of exactly 3: %d spans, truncated %v, %v", len(got), truncated, err)
	}
}

func spanIDs(spans []Span) []SpanID {
	var out []SpanID
	for _, sp := range spans {
		out = append(out, sp.SpanID)
	}
	return out
}

// LinkingTraces finds the consumer's and the redrive's traces from the
// producer's, and not the asked trace itself.
func TestLinkingTraces(t *testing.T) {
	s := openSpanStore(t, Options{})
	producer := spanAt(1, 1, "orders", storeT0, time.Millisecond)
	consumer := spanAt(2, 1, "billing", storeT0.Add(time.Second), time.Millisecond)
	consumer.Links = []Link{{TraceID: tid(1), SpanID: sid(1)}}
	redrive := spanAt(3, 1, "switchyard", storeT0.Add(time.Hour), time.Millisecond)
	redrive.Links = []Link{{TraceID: tid(2), SpanID: sid(1)}, {TraceID: tid(1), SpanID: sid(1)}}
	self := spanAt(1, 2, "orders", storeT0, time.Millisecond)
	self.Links = []Link{{TraceID: tid(1), SpanID: sid(1)}}
	unrelated := spanAt(4, 1, "mailer", storeT0, time.Millisecond)
	mustWrite(t, s, producer, consumer, redrive, self, unrelated)

	ctx := context.Background()
	got, err := s.LinkingTraces(ctx, []TraceID{tid(1)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !sameTraces(got, []TraceID{tid(2), tid(3)}) {
		t.Errorf("traces linking to 1 = %v, want 2 and 3", got)
	}
	got, err = s.LinkingTraces(ctx, []TraceID{tid(1), tid(2)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !sameTraces(got, []TraceID{tid(3)}) {
		t.Errorf("traces linking to 1 or 2 (other than them) = %v, want 3", got)
	}
	if got, _ := s.LinkingTraces(ctx, []TraceID{tid(4)}, 0); len(got) != 0 {
		t.Errorf("traces linking to 4 = %v, want none", got)
	}
}

func sameTraces(got, want []TraceID) bool {
	m := map[TraceID]int{}
	for _, t := range got {
		m[t]++
	}
	for _, t := range want {
		m[t]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// One process's resource attributes are stored once, however many spans
// it sends; each span still reads them back.
func TestWriteSharesResources(t *testing.T) {
	s := openSpanStore(t, Options{})
	var spans []Span
	for i := range 100 {
		spans = append(spans, spanAt(i, 1, "orders", storeT0, time.Millisecond))
	}
	mustWrite(t, s, spans...)
	mustWrite(t, s, spanAt(200, 1, "orders", storeT0, time.Millisecond), spanAt(201, 1, "billing", storeT0, time.Millisecond))
	var n int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM resources`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d resource rows for 2 distinct resources", n)
	}
	got, _, _ := s.Spans(context.Background(), []TraceID{tid(201)}, 0)
	if len(got) != 1 || got[0].Service != "billing" || len(got[0].ResourceAttrs) != 2 {
		t.Errorf("span of the second resource read back as %+v", got)
	}
}

func TestStats(t *testing.T) {
	s := openSpanStore(t, Options{})
	ctx := context.Background()
	st, err := s.Stats(ctx)
	if err != nil || st.Spans != 0 || !st.Oldest.IsZero() || st.Bytes <= 0 {
		t.Fatalf("empty store stats %+v, %v", st, err)
	}
	mustWrite(t, s, spanAt(1, 1, "a", storeT0, time.Millisecond), spanAt(1, 2, "a", storeT0.Add(time.Hour), time.Millisecond))
	st, err = s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Spans != 2 || !st.Oldest.Equal(storeT0) || !st.Newest.Equal(storeT0.Add(time.Hour)) {
		t.Errorf("stats %+v: want 2 spans from %v to %v", st, storeT0, storeT0.Add(time.Hour))
	}
}

// A damaged body is an error on that span, never a panic or a huge
// allocation: every prefix of a real body is refused.
func TestReadBodyTruncated(t *testing.T) {
	sp := spanAt(1, 1, "orders", storeT0, time.Millisecond, Attr{delivery.AttrTenant, "t1"}, Attr{"free", "text"})
	sp.StatusMsg = "failed"
	sp.Events = []Event{{Time: storeT0, Name: "exception", Attrs: []Attr{{"exception.type", "E"}}}}
	sp.Links = []Link{{TraceID: tid(2), SpanID: sid(2), Attrs: []Attr{{"k", "v"}}}}
	body := appendBody(nil, &sp)
	for n := range len(body) {
		got := Span{Start: sp.Start, Tenant: sp.Tenant}
		if err := readBody(body[:n], &got); err == nil {
			t.Errorf("a body cut to %d of %d bytes was read", n, len(body))
		}
	}
	got := Span{Start: sp.Start, Tenant: sp.Tenant}
	if err := readBody(body, &got); err != nil || !reflect.DeepEqual(got.Attrs, sp.Attrs) || got.StatusMsg != "failed" {
		t.Errorf("whole body: %v, attrs %v", err, got.Attrs)
	}
}
