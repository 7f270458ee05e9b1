package tracing

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var asmT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// asmTrace and asmID build ids whose bytes say which trace and span they are.
func asmTrace(n int) TraceID { return TraceID{0xa5, byte(n), 15: 7} }
func asmID(n int) SpanID     { return SpanID{0x5a, byte(n >> 8), byte(n), 7: 7} }

// asmSpan is span id of trace tr under span parent (0: a root) of service
// svc, from..to milliseconds after asmT0, named "s<id>".
func asmSpan(tr, id, parent int, svc string, kind Kind, from, to float64) Span {
	s := Span{
		TraceID: asmTrace(tr), SpanID: asmID(id), Service: svc, Name: "s" + itoa(id), Kind: kind,
		Start: asmT0.Add(asmMs(from)), End: asmT0.Add(asmMs(to)),
	}
	if parent != 0 {
		s.ParentSpanID = asmID(parent)
	}
	return s
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func asmMs(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// linked adds a link from s to span id of trace tr.
func linked(s Span, tr, id int) Span {
	s.Links = append(s.Links, Link{TraceID: asmTrace(tr), SpanID: asmID(id)})
	return s
}

func attempt(s Span, n int) Span { s.Attempt = n; return s }

// rowOf finds the row of span id (the first copy); -1 when absent.
func rowOf(v *TraceView, id int) int {
	return slices.IndexFunc(v.Rows, func(r Row) bool { return r.Span.SpanID == asmID(id) })
}

// outline renders the tree as "name@depth" in row order, "~" marking a
// row placed by a link.
func outline(v *TraceView) string {
	var b strings.Builder
	for _, r := range v.Rows {
		b.WriteString(strings.Repeat("  ", r.Depth))
		if r.ViaLink {
			b.WriteString("~")
		}
		b.WriteString(r.Span.Name + "\n")
	}
	return b.String()
}

// checkShape asserts what every view must hold whatever its input: each
// span once, parents before children, Descendants and Depth consistent.
func checkShape(t *testing.T, v *TraceView, n int) {
	t.Helper()
	if len(v.Rows) != n || v.Spans != n {
		t.Fatalf("rows = %d, Spans = %d; want %d", len(v.Rows), v.Spans, n)
	}
	for r, row := range v.Rows {
		if row.Parent >= r || row.Parent < -1 {
			t.Fatalf("row %d: parent %d not before it", r, row.Parent)
		}
		wantDepth := 0
		if row.Parent >= 0 {
			wantDepth = v.Rows[row.Parent].Depth + 1
		}
		if row.Depth != wantDepth {
			t.Fatalf("row %d: depth %d, want %d", r, row.Depth, wantDepth)
		}
		end := r + 1 + row.Descendants
		if end > len(v.Rows) {
			t.Fatalf("row %d: %d descendants overflow", r, row.Descendants)
		}
		for k := r + 1; k < end; k++ {
			if v.Rows[k].Depth <= row.Depth {
				t.Fatalf("row %d: row %d counted as descendant at depth %d", r, k, v.Rows[k].Depth)
			}
		}
		if end < len(v.Rows) && v.Rows[end].Depth > row.Depth {
			t.Fatalf("row %d: row %d below it not counted", r, end)
		}
		if row.Offset < 0 || row.Length < 0 {
			t.Fatalf("row %d: offset %v length %v", r, row.Offset, row.Length)
		}
		if row.Trace < 0 || row.Trace >= len(v.Traces) || v.Traces[row.Trace].TraceID != row.Span.TraceID {
			t.Fatalf("row %d: trace index %d wrong", r, row.Trace)
		}
	}
}

func TestAssembleTree(t *testing.T) {
	spans := []Span{
		asmSpan(1, 4, 2, "billing", KindInternal, 30, 40),
		asmSpan(1, 1, 0, "web", KindServer, 0, 100),
		asmSpan(1, 3, 1, "orders", KindInternal, 50, 90),
		asmSpan(1, 2, 1, "orders", KindInternal, 10, 45),
	}
	v := Assemble(asmTrace(1), spans, 0)
	checkShape(t, v, 4)
	if got, want := outline(v), "s1\n  s2\n    s4\n  s3\n"; got != want {
		t.Errorf("outline:\n%s\nwant:\n%s", got, want)
	}
	root := v.Rows[0]
	if root.Descendants != 3 || root.Parent != -1 || v.Rows[rowOf(v, 2)].Descendants != 1 {
		t.Errorf("descendants: root %d, s2 %d", root.Descendants, v.Rows[rowOf(v, 2)].Descendants)
	}
	if r := v.Rows[rowOf(v, 3)]; r.Offset != asmMs(50) || r.Length != asmMs(40) {
		t.Errorf("s3 placed at %v for %v, want 50ms for 40ms", r.Offset, r.Length)
	}
	if !v.Start.Equal(asmT0) || !v.End.Equal(asmT0.Add(asmMs(100))) {
		t.Errorf("axis %v–%v", v.Start, v.End)
	}
	if got := v.Services; !slices.Equal(got, []string{"billing", "orders", "web"}) {
		t.Errorf("services = %v", got)
	}
	if len(v.Traces) != 1 || v.Traces[0].Role != RoleAsked || v.Traces[0].RootService != "web" || v.Traces[0].Spans != 4 {
		t.Errorf("traces = %+v", v.Traces)
	}
	if len(v.Warnings) != 0 {
		t.Errorf("warnings on a clean trace: %q", v.Warnings)
	}
	if spans[0].Name != "s4" {
		t.Error("Assemble reordered its input")
	}
}

// A consumer that starts its own trace linked to the producer hangs under
// the producer span whichever of the two traces is asked; a redrive
// linked to the failing attempt continues the same story.
func TestAssembleLinks(t *testing.T) {
	// Trace 1: the order is published; its consumer fails three times and
	// dead-letters it. Trace 2: the consumer's own trace, linked to the
	// producer. Trace 3: the redrive, linked to the last failing attempt,
	// and the consumer that then succeeds.
	producer := asmSpan(1, 1, 0, "orders", KindProducer, 0, 5)
	process := linked(asmSpan(2, 10, 0, "billing", KindConsumer, 25, 400), 1, 1)
	a1 := attempt(asmSpan(2, 11, 10, "billing", KindInternal, 26, 30), 1)
	a2 := attempt(asmSpan(2, 12, 10, "billing", KindInternal, 130, 135), 2)
	a3 := attempt(asmSpan(2, 13, 10, "billing", KindInternal, 335, 340), 3)
	for _, a := range []*Span{&a1, &a2, &a3} {
		a.Status, a.StatusMsg = StatusError, "payment declined"
	}
	dlq := asmSpan(2, 14, 10, "billing", KindProducer, 341, 350)
	redrive := linked(asmSpan(3, 20, 0, "console", KindProducer, 5000, 5004), 2, 13)
	again := asmSpan(3, 21, 20, "billing", KindConsumer, 5010, 5030)
	spans := []Span{producer, process, a1, a2, a3, dlq, redrive, again}

	want := "s1\n  ~s10\n    s11\n    s12\n    s13\n      ~s20\n        s21\n    s14\n"
	for _, asked := range []int{1, 2, 3} {
		v := Assemble(asmTrace(asked), spans, 0)
		checkShape(t, v, len(spans))
		if got := outline(v); got != want {
			t.Errorf("asked %d: outline:\n%s\nwant:\n%s", asked, got, want)
		}
		if v.Traces[0].TraceID != asmTrace(asked) || v.Traces[0].Role != RoleAsked || len(v.Traces) != 3 {
			t.Fatalf("asked %d: traces %+v", asked, v.Traces)
		}
		if v.Rows[rowOf(v, 20)].Trace != slices.IndexFunc(v.Traces, func(r TraceRef) bool { return r.TraceID == asmTrace(3) }) {
			t.Errorf("asked %d: redrive row not in trace 3's ref", asked)
		}
		if len(v.Warnings) != 0 {
			t.Errorf("asked %d: warnings %q", asked, v.Warnings)
		}
	}
	roles := func(v *TraceView) map[TraceID]string {
		m := map[TraceID]string{}
		for _, r := range v.Traces {
			m[r.TraceID] = r.Role
		}
		return m
	}
	if got := roles(Assemble(asmTrace(1), spans, 0)); got[asmTrace(2)] != RoleLinkedFrom || got[asmTrace(3)] != RoleLinkedFrom {
		t.Errorf("asked the producer's trace: roles %v", got)
	}
	if got := roles(Assemble(asmTrace(2), spans, 0)); got[asmTrace(1)] != RoleLinksTo || got[asmTrace(3)] != RoleLinkedFrom {
		t.Errorf("asked the consumer's trace: roles %v", got)
	}
	if got := roles(Assemble(asmTrace(3), spans, 0)); got[asmTrace(2)] != RoleLinksTo || got[asmTrace(1)] != RoleLinksTo {
		t.Errorf("asked the redrive's trace: roles %v", got)
	}

	v := Assemble(asmTrace(1), spans, 0)
	if got := v.Rows[rowOf(v, 10)].BrokerWait; got != asmMs(20) {
		t.Errorf("broker wait of the linked consumer = %v, want 20ms", got)
	}
	if got := v.Rows[rowOf(v, 21)].BrokerWait; got != asmMs(6) {
		t.Errorf("broker wait of the redriven consumer = %v, want 6ms", got)
	}
	if got := v.Rows[rowOf(v, 11)].Backoff; got != 0 {
		t.Errorf("first attempt backoff = %v", got)
	}
	if b2, b3 := v.Rows[rowOf(v, 12)].Backoff, v.Rows[rowOf(v, 13)].Backoff; b2 != asmMs(100) || b3 != asmMs(200) {
		t.Errorf("backoffs = %v, %v; want 100ms, 200ms", b2, b3)
	}
	if v.Errors != 3 || v.Rows[rowOf(v, 12)].Error != "payment declined" {
		t.Errorf("errors = %d, row error %q", v.Errors, v.Rows[rowOf(v, 12)].Error)
	}
	// The critical path runs back from the redriven consumer's end through
	// the redrive, the failing attempt it links to, the consumer and the
	// producer: one chain across three traces.
	for _, id := range []int{21, 20, 13, 10, 1} {
		if !v.Rows[rowOf(v, id)].Critical {
			t.Errorf("s%d not on the critical path", id)
		}
	}
	for _, id := range []int{14} {
		if v.Rows[rowOf(v, id)].Critical {
			t.Errorf("s%d on the critical path", id)
		}
	}
	if v.Traces[1].TraceID != asmTrace(2) || v.Traces[2].TraceID != asmTrace(3) || v.Traces[2].RootService != "console" || v.Traces[2].Spans != 2 {
		t.Errorf("linked traces by start: %+v", v.Traces[1:])
	}
}

func TestAssembleCriticalPath(t *testing.T) {
	// root 0–100; A 10–40 overlaps B 30–90 (with B1 40–60); C 95–99. Walking
	// back from the root's end: C, then B (the last to end before C
	// started) and B1 inside it, then the root until its start: A ends after
	// B starts, so, as in Jaeger, it is not on the path.
	spans := []Span{
		asmSpan(1, 1, 0, "web", KindServer, 0, 100),
		asmSpan(1, 2, 1, "web", KindInternal, 10, 40),
		asmSpan(1, 3, 1, "web", KindInternal, 30, 90),
		asmSpan(1, 4, 3, "db", KindInternal, 40, 60),
		asmSpan(1, 5, 1, "web", KindInternal, 95, 99),
	}
	v := Assemble(asmTrace(1), spans, 0)
	var on []string
	for _, r := range v.Rows {
		if r.Critical {
			on = append(on, r.Span.Name)
		}
	}
	if !slices.Equal(on, []string{"s1", "s3", "s4", "s5"}) {
		t.Errorf("critical = %v, want s1 s3 s4 s5", on)
	}
	if v.Critical != asmMs(100) {
		t.Errorf("critical total = %v, want 100ms", v.Critical)
	}

	// A sequence of two unjoined roots: the path crosses from the later to
	// the earlier.
	two := []Span{asmSpan(1, 1, 0, "a", KindServer, 0, 10), asmSpan(1, 2, 99, "b", KindServer, 20, 30)}
	v = Assemble(asmTrace(1), two, 0)
	if !v.Rows[0].Critical || !v.Rows[1].Critical || v.Critical != asmMs(20) {
		t.Errorf("unjoined parts: critical %v, %v, total %v", v.Rows[0].Critical, v.Rows[1].Critical, v.Critical)
	}
}

func TestAssembleSkew(t *testing.T) {
	tests := []struct {
		name      string
		spans     []Span
		id        int           // the span to look at
		skew      time.Duration // its expected move
		offset    time.Duration // where it is drawn
		moved     []int         // every span expected to move
		warning   string        // a substring of the one warning, "" for none
		brokerGap time.Duration
	}{
		{
			name: "consumer before its producer moves with its subtree",
			spans: []Span{
				asmSpan(1, 1, 0, "orders", KindProducer, 100, 110),
				asmSpan(1, 2, 1, "billing", KindConsumer, 50, 80),
				asmSpan(1, 3, 2, "billing", KindInternal, 55, 60),
			},
			id: 2, skew: asmMs(50), offset: 0, moved: []int{2, 3},
			warning: "clock skew: billing is 50ms behind orders; 2 spans moved",
		},
		{
			name: "synchronous child of another service overflowing is centred",
			spans: []Span{
				asmSpan(1, 1, 0, "web", KindClient, 0, 100),
				asmSpan(1, 2, 1, "api", KindServer, 40, 120),
			},
			id: 2, skew: asmMs(-30), offset: asmMs(10), moved: []int{2},
			warning: "clock skew: api is 30ms ahead of web; 1 span moved",
		},
		{
			name: "synchronous child longer than its parent only starts with it",
			spans: []Span{
				asmSpan(1, 1, 0, "web", KindServer, 10, 20),
				asmSpan(1, 2, 1, "api", KindClient, 0, 50),
			},
			id: 2, skew: asmMs(10), offset: 0, moved: []int{2},
			warning: "api is 10ms behind web",
		},
		{
			name: "work of the same service outliving its request is not skew",
			spans: []Span{
				asmSpan(1, 1, 0, "web", KindServer, 0, 10),
				asmSpan(1, 2, 1, "web", KindInternal, 5, 50),
			},
			id: 2, offset: asmMs(5),
		},
		{
			name: "a consumer after its producer is an async hop",
			spans: []Span{
				asmSpan(1, 1, 0, "orders", KindProducer, 0, 10),
				asmSpan(1, 2, 1, "billing", KindConsumer, 500, 510),
			},
			id: 2, offset: asmMs(500), brokerGap: asmMs(490),
		},
		{
			name: "never across a link",
			spans: []Span{
				asmSpan(1, 1, 0, "orders", KindProducer, 100, 110),
				linked(asmSpan(2, 2, 0, "billing", KindConsumer, 50, 80), 1, 1),
			},
			id: 2, offset: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Assemble(asmTrace(1), tt.spans, 0)
			checkShape(t, v, len(tt.spans))
			r := v.Rows[rowOf(v, tt.id)]
			if r.Span.Skew != tt.skew || r.Offset != tt.offset {
				t.Errorf("skew %v offset %v; want %v, %v", r.Span.Skew, r.Offset, tt.skew, tt.offset)
			}
			if !r.Span.Start.Equal(tt.spans[slices.IndexFunc(tt.spans, func(s Span) bool { return s.SpanID == asmID(tt.id) })].Start) {
				t.Error("the span's received start was changed")
			}
			for _, row := range v.Rows {
				want := slices.Contains(tt.moved, int(row.Span.SpanID[2]))
				if row.Span.Flags.Has(FlagSkewed) != want {
					t.Errorf("%s: skewed %v, want %v", row.Span.Name, !want, want)
				}
			}
			switch {
			case tt.warning == "" && len(v.Warnings) > 0:
				t.Errorf("warnings %q", v.Warnings)
			case tt.warning != "" && (len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], tt.warning)):
				t.Errorf("warnings %q, want one with %q", v.Warnings, tt.warning)
			}
			if r.BrokerWait != tt.brokerGap {
				t.Errorf("broker wait %v, want %v", r.BrokerWait, tt.brokerGap)
			}
		})
	}
}

func TestAssembleFlawedInput(t *testing.T) {
	tests := []struct {
		name    string
		spans   []Span
		outline string
		flag    Flags
		flagged []int
		warning string
	}{
		{
			name: "unknown parent becomes a root",
			spans: []Span{
				asmSpan(1, 1, 0, "a", KindServer, 0, 10),
				asmSpan(1, 2, 77, "b", KindServer, 5, 8),
			},
			outline: "s1\ns2\n", flag: FlagUnknownParent, flagged: []int{2},
			warning: "1 span whose parent is missing is shown as a root",
		},
		{
			name: "duplicates shown once each, children under the first",
			spans: []Span{
				asmSpan(1, 1, 0, "a", KindServer, 0, 10),
				asmSpan(1, 2, 1, "a", KindInternal, 1, 5),
				asmSpan(1, 2, 1, "a", KindInternal, 2, 6),
				asmSpan(1, 3, 2, "a", KindInternal, 3, 4),
			},
			outline: "s1\n  s2\n    s3\n  s2\n", flag: FlagDuplicate, flagged: []int{2},
			warning: "2 spans share their span id",
		},
		{
			name: "a circle of parents is cut at its earliest span",
			spans: []Span{
				asmSpan(1, 1, 2, "a", KindServer, 0, 10),
				asmSpan(1, 2, 3, "a", KindServer, 1, 9),
				asmSpan(1, 3, 1, "a", KindServer, 2, 8),
			},
			outline: "s1\n  s3\n    s2\n", flag: FlagUnknownParent, flagged: []int{1},
			warning: "1 chain of parents point in a circle",
		},
		{
			name: "its own parent",
			spans: []Span{
				asmSpan(1, 1, 1, "a", KindServer, 0, 10),
			},
			outline: "s1\n", flag: FlagUnknownParent, flagged: []int{1},
		},
		{
			name: "two traces linking to each other",
			spans: []Span{
				linked(asmSpan(1, 1, 0, "a", KindConsumer, 0, 10), 2, 2),
				linked(asmSpan(2, 2, 0, "b", KindConsumer, 5, 20), 1, 1),
			},
			outline: "s1\n  ~s2\n",
		},
		{
			name: "non-positive durations drawn with length 0",
			spans: []Span{
				asmSpan(1, 1, 0, "a", KindServer, 10, 10),
				asmSpan(1, 2, 1, "a", KindInternal, 12, 11),
			},
			outline: "s1\n  s2\n", flag: FlagNonPositive, flagged: []int{1, 2},
			warning: "2 spans end at or before their start (drawn with length 0)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Assemble(asmTrace(1), tt.spans, 0)
			checkShape(t, v, len(tt.spans))
			if got := outline(v); got != tt.outline {
				t.Errorf("outline:\n%s\nwant:\n%s", got, tt.outline)
			}
			for _, r := range v.Rows {
				want := tt.flag != 0 && slices.Contains(tt.flagged, int(r.Span.SpanID[2]))
				if got := tt.flag != 0 && r.Span.Flags.Has(tt.flag); got != want {
					t.Errorf("%s: flag %v, want %v", r.Span.Name, got, want)
				}
				if r.Length < 0 {
					t.Errorf("%s: length %v", r.Span.Name, r.Length)
				}
			}
			if tt.warning != "" && !slices.ContainsFunc(v.Warnings, func(w string) bool { return strings.Contains(w, tt.warning) }) {
				t.Errorf("warnings %q, want one with %q", v.Warnings, tt.warning)
			}
		})
	}

	t.Run("flags from ingest are counted", func(t *testing.T) {
		a := asmSpan(1, 1, 0, "a", KindServer, 0, 10)
		a.Flags = FlagFuture | FlagAttrsCut
		v := Assemble(asmTrace(1), []Span{a}, 0)
		joined := strings.Join(v.Warnings, "\n")
		if !strings.Contains(joined, "1 span start more than a minute after") || !strings.Contains(joined, "1 span had attributes") {
			t.Errorf("warnings %q", v.Warnings)
		}
	})

	t.Run("absurd times never panic", func(t *testing.T) {
		far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		spans := []Span{
			{TraceID: asmTrace(1), SpanID: asmID(1), Kind: KindServer, End: far},
			{TraceID: asmTrace(1), SpanID: asmID(2), ParentSpanID: asmID(1), Kind: KindClient, Start: far, End: time.Time{}},
			{TraceID: asmTrace(1), SpanID: asmID(3), ParentSpanID: asmID(2), Kind: KindServer, Service: "x"},
			{TraceID: asmTrace(1), SpanID: asmID(4), ParentSpanID: asmID(3), Kind: KindConsumer, Start: far.Add(-time.Hour), End: far},
			{},
		}
		v := Assemble(asmTrace(1), spans, 0)
		checkShape(t, v, len(spans))
		if v.Critical < 0 {
			t.Errorf("critical %v", v.Critical)
		}
	})

	t.Run("random forests keep their shape", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 200 {
			n := 1 + rng.IntN(60)
			spans := make([]Span, n)
			for i := range spans {
				s := asmSpan(1+rng.IntN(3), 1+rng.IntN(n), rng.IntN(n+1), "svc"+itoa(rng.IntN(3)),
					Kind(rng.IntN(6)), float64(rng.IntN(100)), float64(rng.IntN(100)))
				if rng.IntN(4) == 0 {
					s = linked(s, 1+rng.IntN(3), 1+rng.IntN(n))
				}
				s.Attempt = rng.IntN(3)
				spans[i] = s
			}
			v := Assemble(asmTrace(1), spans, 0)
			checkShape(t, v, n)
		}
	})
}

func TestAssembleErrorLine(t *testing.T) {
	ex := func(attrs ...Attr) Event { return Event{Name: "exception", Attrs: attrs} }
	tests := []struct {
		name string
		span Span
		want string
	}{
		{"status message", Span{Status: StatusError, StatusMsg: "EINVALID: bad amount", Events: []Event{ex(Attr{"exception.type", "X"})}}, "EINVALID: bad amount"},
		{"exception", Span{Status: StatusError, Events: []Event{{Name: "log"}, ex(Attr{"exception.type", "*errors.errorString"}, Attr{"exception.message", "boom"}), ex(Attr{"exception.message", "later"})}}, "*errors.errorString: boom"},
		{"exception message only", Span{Events: []Event{ex(Attr{"exception.message", "recovered"})}}, "recovered"},
		{"failed without words", Span{Status: StatusError}, "error"},
		{"fine", Span{Status: StatusOK, StatusMsg: "ignored"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.span.TraceID, tt.span.SpanID = asmTrace(1), asmID(1)
			if got := Assemble(asmTrace(1), []Span{tt.span}, 0).Rows[0].Error; got != tt.want {
				t.Errorf("Error = %q, want %q", got, tt.want)
			}
		})
	}
}

// bigTrace is a 5,000-span trace of consumers with attempts under one
// producer, in shuffled order.
func bigTrace(n int) []Span {
	spans := []Span{asmSpan(1, 1, 0, "orders", KindProducer, 0, 1)}
	id := 2
	for len(spans) < n {
		base := float64(id)
		process := id
		spans = append(spans, asmSpan(1, process, 1, "billing", KindConsumer, base, base+30))
		id++
		for k := 1; k <= 3 && len(spans) < n; k++ {
			spans = append(spans, attempt(asmSpan(1, id, process, "billing", KindInternal, base+float64(k*8), base+float64(k*8)+2), k))
			id++
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rng.Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })
	return spans
}

func TestAssembleLargeTrace(t *testing.T) {
	spans := bigTrace(5000)
	v := Assemble(asmTrace(1), spans, 0)
	checkShape(t, v, 5000)
	seen := map[SpanID]bool{}
	for r, row := range v.Rows {
		seen[row.Span.SpanID] = true
		if r > 0 && row.Parent >= 0 {
			// Siblings in start order: the previous sibling starts no later.
			for k := r - 1; k > row.Parent; k-- {
				if v.Rows[k].Parent == row.Parent {
					if v.Rows[k].Span.Start.After(row.Span.Start) {
						t.Fatalf("row %d starts before its previous sibling", r)
					}
					break
				}
			}
		}
	}
	if len(seen) != 5000 || v.Rows[0].Descendants != 4999 || v.Truncated {
		t.Errorf("seen %d spans, root has %d descendants, truncated %v", len(seen), v.Rows[0].Descendants, v.Truncated)
	}
	if got := v.Rows[rowOf(v, 4)].Backoff; got != asmMs(6) {
		t.Errorf("backoff of the second attempt = %v, want 6ms", got)
	}
}

func TestAssembleTruncates(t *testing.T) {
	spans := []Span{
		asmSpan(1, 5, 1, "a", KindInternal, 50, 60),
		asmSpan(1, 1, 0, "a", KindServer, 0, 100),
		asmSpan(1, 3, 1, "a", KindInternal, 30, 40),
		asmSpan(1, 2, 1, "a", KindInternal, 20, 25),
		asmSpan(1, 4, 1, "a", KindInternal, 40, 45),
	}
	v := Assemble(asmTrace(1), spans, 3)
	checkShape(t, v, 3)
	if got := outline(v); got != "s1\n  s2\n  s3\n" || !v.Truncated {
		t.Errorf("truncated %v, outline:\n%s", v.Truncated, got)
	}
	if len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "the first 3 spans") {
		t.Errorf("warnings %q", v.Warnings)
	}
}

func TestAssembleEmpty(t *testing.T) {
	v := Assemble(asmTrace(1), nil, 10)
	if len(v.Rows) != 0 || len(v.Traces) != 1 || v.Traces[0].Role != RoleAsked || v.Critical != 0 {
		t.Errorf("empty view = %+v", v)
	}
}
