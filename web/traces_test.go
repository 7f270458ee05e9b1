package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/tracing"
)

// newTraceService opens a real span store in a temp dir and the real
// tracing service over it, with the real access policy.
func newTraceService(t testing.TB) (*tracing.Store, *tracing.Service) {
	t.Helper()
	st, err := tracing.Open(context.Background(), filepath.Join(t.TempDir(), "traces.db"), tracing.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, tracing.NewService(st, tracing.ServiceOptions{Policy: access.Policy{}})
}

func mustTraceID(t testing.TB, s string) tracing.TraceID {
	t.Helper()
	id, ok := tracing.ParseTraceID(s)
	if !ok {
		t.Fatalf("bad trace id %q", s)
	}
	return id
}

func spanID(n int) tracing.SpanID {
	var id tracing.SpanID
	id[6], id[7] = byte(n>>8), byte(n)
	id[0] = 0x5a
	return id
}

// spanOf builds a span the way ingest stores it: attributes as received,
// the indexed fields derived from them.
func spanOf(tid tracing.TraceID, id, parent tracing.SpanID, svc, name string, kind tracing.Kind, start time.Time, from, to time.Duration, kv ...string) tracing.Span {
	sp := tracing.Span{TraceID: tid, SpanID: id, ParentSpanID: parent, Name: name, Kind: kind,
		Start: start.Add(from), End: start.Add(to), ResourceAttrs: []tracing.Attr{{Key: "service.name", Value: svc}}}
	for i := 0; i+1 < len(kv); i += 2 {
		sp.Attrs = append(sp.Attrs, tracing.Attr{Key: kv[i], Value: kv[i+1]})
	}
	tracing.Derive(&sp)
	return sp
}

// messaging is the attributes of a span of a message on the demo's
// orders topic for tenant t1.
func messaging(eventID, corr, step, dest string, more ...string) []string {
	return append([]string{
		delivery.AttrSystem, "kafka", delivery.AttrDest, dest, delivery.AttrCluster, testCluster, delivery.AttrTenant, "t1",
		delivery.AttrMessageID, eventID, delivery.AttrCorrelationID, corr, delivery.AttrStep, step, delivery.AttrEventType, testTopic,
	}, more...)
}

// story is a declined payment told in four traces: checkout publishes
// (trace A), billing fails twice and dead-letters (trace B, traceHex, the
// trace of the dead-letter fixtures, linked to A's publish), a redrive
// succeeds (trace C, linked to B's last attempt) and orders compensates
// (trace D, same correlation id only). Billing's first attempt calls a
// fraud check of tenant t2.
type story struct {
	a, b, c, d    tracing.TraceID
	publish       tracing.SpanID // A's producer span
	attempt2      tracing.SpanID // B's failing last attempt
	fraud         tracing.SpanID // B's t2 span
	eventID, corr string
	base          time.Time
}

const (
	storyA   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"
	storyC   = "cccccccccccccccccccccccccccccc03"
	storyD   = "dddddddddddddddddddddddddddddd04"
	fraudKey = "fraud.note"
	fraudVal = "t2 secret reason"
)

func seedStory(t testing.TB, st *tracing.Store, eventID string) story {
	t.Helper()
	s := story{a: mustTraceID(t, storyA), b: mustTraceID(t, traceHex), c: mustTraceID(t, storyC), d: mustTraceID(t, storyD),
		publish: spanID(2), attempt2: spanID(12), fraud: spanID(11), eventID: eventID, corr: "corr-story",
		base: time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)}
	ms := time.Millisecond
	link := func(sp tracing.Span, tid tracing.TraceID, id tracing.SpanID) tracing.Span {
		sp.Links = []tracing.Link{{TraceID: tid, SpanID: id}}
		return sp
	}
	failed := func(sp tracing.Span, msg string) tracing.Span {
		sp.Status, sp.StatusMsg = tracing.StatusError, msg
		sp.Events = []tracing.Event{{Time: sp.End, Name: "exception", Attrs: []tracing.Attr{
			{Key: "exception.type", Value: "DeclinedException"}, {Key: "exception.message", Value: msg},
			{Key: "exception.stacktrace", Value: "at billing.Charge(charge.go:42)\nat billing.Handle(handle.go:7)"}}}}
		return sp
	}
	consume := messaging(eventID, s.corr, delivery.StepAttempt, testTopic, delivery.AttrConsumer, testGroup)
	spans := []tracing.Span{
		spanOf(s.a, spanID(1), tracing.SpanID{}, "checkout", "POST /orders", tracing.KindServer, s.base, 0, 60*ms, delivery.AttrTenant, "t1", "http.route", "/orders"),
		spanOf(s.a, s.publish, spanID(1), "checkout", testTopic+" publish", tracing.KindProducer, s.base, 10*ms, 14*ms, messaging(eventID, s.corr, delivery.StepPublish, testTopic)...),
		failed(link(spanOf(s.b, spanID(10), tracing.SpanID{}, "billing", testTopic+" process", tracing.KindConsumer, s.base, 100*ms, 150*ms,
			append(consume, delivery.AttrAttempt, "1")...), s.a, s.publish), "card declined"),
		spanOf(s.b, s.fraud, spanID(10), "fraud", "fraud check", tracing.KindClient, s.base, 110*ms, 130*ms, delivery.AttrTenant, "t2", fraudKey, fraudVal,
			delivery.AttrSystem, "kafka", delivery.AttrDest, otherTopic, delivery.AttrCluster, testCluster),
		failed(link(spanOf(s.b, s.attempt2, tracing.SpanID{}, "billing", testTopic+" process", tracing.KindConsumer, s.base, 1150*ms, 1200*ms,
			append(consume, delivery.AttrAttempt, "2")...), s.a, s.publish), "card declined again"),
		spanOf(s.b, spanID(13), s.attempt2, "billing", testDLQ+" publish", tracing.KindProducer, s.base, 1190*ms, 1195*ms,
			messaging(eventID, s.corr, delivery.StepDeadLetter, testDLQ)...),
		link(spanOf(s.c, spanID(20), tracing.SpanID{}, "console", testTopic+" redrive", tracing.KindProducer, s.base, 5000*ms, 5005*ms,
			messaging(eventID, s.corr, delivery.StepRedrive, testTopic, delivery.AttrRedriveJob, "7")...), s.b, s.attempt2),
		spanOf(s.c, spanID(21), spanID(20), "billing", testTopic+" process", tracing.KindConsumer, s.base, 5100*ms, 5130*ms,
			append(messaging(eventID, s.corr, delivery.StepAttempt, testTopic, delivery.AttrConsumer, testGroup), delivery.AttrAttempt, "1")...),
		spanOf(s.d, spanID(30), tracing.SpanID{}, "orders", "orders.order.cancelled.v1 publish", tracing.KindProducer, s.base, 1300*ms, 1302*ms,
			delivery.AttrSystem, "kafka", delivery.AttrDest, "orders.order.cancelled.v1", delivery.AttrCluster, testCluster, delivery.AttrTenant, "t1",
			delivery.AttrCorrelationID, s.corr, delivery.AttrEventType, "orders.order.cancelled.v1", delivery.AttrStep, delivery.StepPublish),
	}
	if err := st.Write(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	return s
}

// traceEnv is an env whose span store holds the story, its dead letter
// (fixture nf1, t1, trace traceHex) carrying the story's event id.
func traceEnv(t *testing.T) (*env, story) {
	t.Helper()
	e := newEnv(t, envOptions{})
	entry, err := e.dlq.Entry(context.Background(), e.dlqIDs["nf1"])
	if err != nil || entry.DL.Envelope == nil {
		t.Fatalf("fixture nf1: %v", err)
	}
	return e, seedStory(t, e.spans, entry.DL.Envelope.ID)
}

type apiSpans struct {
	Spans      []apiSpan `json:"spans"`
	NextCursor string    `json:"next_cursor"`
}

func (c *client) spans(t *testing.T, query string) apiSpans {
	t.Helper()
	r := c.get(t, "/api/v1/traces?"+query)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/traces?%s = %d\n%s", query, r.status, r.body)
	}
	var out apiSpans
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTraceSearch(t *testing.T) {
	e, s := traceEnv(t)
	admin := e.as(t, "admin")
	names := func(r apiSpans) []string {
		var out []string
		for _, sp := range r.Spans {
			out = append(out, sp.Service+" "+sp.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name, query string
		want        int
		check       func(apiSpan) bool
	}{
		{"trace id", "trace_id=" + traceHex, 4, func(sp apiSpan) bool { return sp.TraceID == traceHex }},
		{"correlation id", "correlation_id=corr-story", 7, func(sp apiSpan) bool { return sp.CorrelationID == "corr-story" }},
		{"service", "service=billing", 4, func(sp apiSpan) bool { return sp.Service == "billing" }},
		{"operation", "operation=fraud+check", 1, func(sp apiSpan) bool { return sp.Name == "fraud check" }},
		{"event type", "event_type=orders.order.cancelled.v1", 1, func(sp apiSpan) bool { return sp.Service == "orders" }},
		{"status", "status=error", 2, func(sp apiSpan) bool { return sp.Status == "error" }},
		{"tenant", "tenant=t2", 1, func(sp apiSpan) bool { return sp.Tenant == "t2" }},
		{"min duration", "min_duration=45ms", 3, func(sp apiSpan) bool { return sp.DurationMS >= 45 }},
		{"max duration", "service=billing&max_duration=40ms", 2, func(sp apiSpan) bool { return sp.DurationMS <= 40 }},
		{"group", "group=" + testGroup + "&step=attempt", 3, func(sp apiSpan) bool { return sp.Group == testGroup }},
		{"event id", "event_id=" + url.QueryEscape(s.eventID) + "&status=error", 2, func(sp apiSpan) bool { return sp.EventID == s.eventID }},
		{"time range", "from=" + s.base.Add(time.Second).UTC().Format(time.RFC3339Nano) + "&to=" + s.base.Add(2*time.Second).UTC().Format(time.RFC3339Nano),
			3, func(sp apiSpan) bool { return sp.Start.After(s.base.Add(time.Second)) }},
		{"range picker", "range=15m", 9, func(apiSpan) bool { return true }},
		{"range before the story", "to=" + s.base.Add(-time.Hour).UTC().Format(time.RFC3339), 0, nil},
		{"one row per trace", "correlation_id=corr-story&roots=true", 4, func(apiSpan) bool { return true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := admin.spans(t, tc.query)
			if len(got.Spans) != tc.want {
				t.Fatalf("%s: %d spans %v, want %d", tc.query, len(got.Spans), names(got), tc.want)
			}
			for _, sp := range got.Spans {
				if !tc.check(sp) {
					t.Errorf("%s: span %s %s does not match", tc.query, sp.Service, sp.Name)
				}
			}
			if !slices.IsSortedFunc(got.Spans, func(a, b apiSpan) int { return b.Start.Compare(a.Start) }) {
				t.Errorf("%s: not newest first: %v", tc.query, names(got))
			}
		})
	}

	t.Run("the scope is applied before paging", func(t *testing.T) {
		// tess sees the t1 spans of kafka:demo only (7 of them): the t2
		// fraud check is not among hers, and a page of 6 is full of her
		// own spans.
		got := e.as(t, "tess").spans(t, "limit=6")
		if len(got.Spans) != 6 || got.NextCursor == "" {
			t.Fatalf("tess: %d spans, next %q; want a full page of 6 and more", len(got.Spans), got.NextCursor)
		}
		for _, sp := range e.as(t, "tess").spans(t, "limit=500").Spans {
			if sp.Tenant != "t1" {
				t.Errorf("tess sees %s %s of tenant %q", sp.Service, sp.Name, sp.Tenant)
			}
		}
	})

	t.Run("paging", func(t *testing.T) {
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			q := "limit=2"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			got := admin.spans(t, q)
			for _, sp := range got.Spans {
				if seen[sp.SpanID+sp.TraceID] {
					t.Errorf("span %s on two pages", sp.SpanID)
				}
				seen[sp.SpanID+sp.TraceID] = true
			}
			if cursor = got.NextCursor; cursor == "" {
				break
			}
		}
		if len(seen) != 9 {
			t.Errorf("paged through %d spans, want all 9", len(seen))
		}
	})

	t.Run("page", func(t *testing.T) {
		r := admin.get(t, "/traces?service=billing&status=error")
		if r.status != http.StatusOK {
			t.Fatalf("search page = %d", r.status)
		}
		if n := strings.Count(r.body, `data-testid="trace-result"`); n != 2 {
			t.Errorf("search page: %d result rows, want 2", n)
		}
		mustContain(t, "search page", r.body, `data-testid="trace-scatter"`, `data-testid="scatter-dot" data-error="true"`,
			`href="/traces/`+traceHex+`?span=`+s.attempt2.String()+`#span-`+s.attempt2.String()+`"`, `value="billing"`)
		// Paging keeps the search.
		r = admin.get(t, "/traces?service=billing&limit=1")
		next := regexpFind(r.body, `data-testid="page-next"`, `href="([^"]+)"`)
		if !strings.Contains(next, "service=billing") || !strings.Contains(next, "cursor=") {
			t.Errorf("next page link %q does not keep the search", next)
		}
		r = admin.get(t, "/traces?service=nobody")
		mustContain(t, "empty search", r.body, `data-testid="traces-empty"`, "Widen the time range")
		// A trace id typed into the form opens the trace.
		r = admin.get(t, "/traces?trace_id="+strings.ToUpper(traceHex))
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/traces/"+traceHex {
			t.Errorf("trace id in the form = %d → %q, want 303 → /traces/%s", r.status, r.header.Get("Location"), traceHex)
		}
	})
}

// regexpFind returns the first submatch of re in the tag that holds attr.
func regexpFind(body, attr, re string) string {
	tag := openTag(body, attr)
	m := regexp.MustCompile(re).FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}

func TestTraceBadInput(t *testing.T) {
	e, _ := traceEnv(t)
	admin := e.as(t, "admin")
	for _, q := range []string{
		"trace_id=xyz", "trace_id=" + strings.Repeat("0", 32), "status=broken", "min_duration=-1s", "min_duration=soon",
		"min_duration=2s&max_duration=1s", "range=2h", "from=yesterday", "from=2026-01-02T10:00:00Z&to=2026-01-02T09:00:00Z",
		"limit=0", "limit=501", "limit=x", "roots=maybe", "cursor=not-a-cursor", "service=" + strings.Repeat("s", 300), "colour=red",
	} {
		r := admin.get(t, "/api/v1/traces?"+q)
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(r.body), &body); r.status != http.StatusBadRequest || err != nil || body.Error.Code != delivery.EINVALID || body.Error.Message == "" {
			t.Errorf("API ?%s = %d %.200s, want 400 EINVALID with a message", q, r.status, r.body)
		}
		if q == "colour=red" || q == "cursor=not-a-cursor" {
			continue // pages take what a form sends; the cursor is checked on the API
		}
		if r := admin.get(t, "/traces?"+q); r.status != http.StatusBadRequest || !strings.Contains(r.body, `data-testid="error-page"`) {
			t.Errorf("page ?%s = %d, want the 400 page", q, r.status)
		}
	}
	for _, path := range []string{"/traces/" + strings.Repeat("e", 32), "/traces/not-a-trace", "/api/v1/traces/" + strings.Repeat("e", 32), "/api/v1/traces/zz"} {
		if r := admin.get(t, path); r.status != http.StatusNotFound {
			t.Errorf("%s = %d, want 404", path, r.status)
		}
	}
	if r := admin.get(t, "/traces/"+traceHex+"?span=nothex"); r.status != http.StatusBadRequest {
		t.Errorf("?span=nothex = %d, want 400", r.status)
	}
	if r := admin.get(t, "/search?q="+strings.Repeat("q", 201)); r.status != http.StatusBadRequest {
		t.Errorf("a 201-byte search = %d, want 400", r.status)
	}
}

func TestTracePage(t *testing.T) {
	e, s := traceEnv(t)

	t.Run("the whole story on one axis", func(t *testing.T) {
		r := e.as(t, "admin").get(t, "/traces/"+storyA+"?span="+s.attempt2.String())
		if r.status != http.StatusOK {
			t.Fatalf("trace page = %d\n%.500s", r.status, r.body)
		}
		// A (asked), B linked from it, C linked from B: one story.
		if n := strings.Count(r.body, `data-testid="wf-row"`); n != 8 {
			t.Errorf("%d waterfall rows, want the 8 spans of traces A, B and C", n)
		}
		mustContain(t, "trace page", r.body,
			`data-testid="trace-ref" data-role="asked"`,
			`data-testid="via-link-trace">`+traceHex, `data-testid="via-link-trace">`+storyC,
			`data-testid="wf-broker-wait"`, "in broker",
			`data-testid="wf-backoff"`, "retry backoff 1s",
			`data-testid="wf-error"`, "card declined again",
			`<pre class="stack" data-testid="wf-stack">at billing.Charge(charge.go:42)`,
			`class="wf-row critical`,
			`href="/correlations/corr-story"`,
			`href="/dead-letters/jobs/7"`,
			`href="/dead-letters/entries/`+strconv.FormatInt(e.dlqIDs["nf1"], 10)+`"`,
			fraudVal,
		)
		// ?span= opens and marks that span.
		focus := openTag(r.body, `id="span-`+s.attempt2.String()+`"`)
		if !strings.Contains(focus, "focus") {
			t.Errorf("the ?span= row is not marked: %s", focus)
		}
	})

	t.Run("a t1 viewer sees the t2 span as a gap", func(t *testing.T) {
		r := e.as(t, "tess").get(t, "/traces/"+traceHex)
		if r.status != http.StatusOK {
			t.Fatalf("tess: trace page = %d", r.status)
		}
		row := openTag(r.body, `id="span-`+s.fraud.String()+`"`)
		if !strings.Contains(row, "redacted") {
			t.Errorf("the t2 span is not drawn as a redacted gap: %s", row)
		}
		mustContain(t, "tess", r.body, "hidden span (you may not view it)")
		mustNotContain(t, "tess", r.body, fraudVal, fraudKey, "fraud check")
		// Her own spans are all there.
		mustContain(t, "tess", r.body, "card declined again")
	})

	t.Run("out of reach is a 404", func(t *testing.T) {
		// otto operates kafka:other/*: no span of the story is his.
		for _, path := range []string{"/traces/" + traceHex, "/api/v1/traces/" + traceHex} {
			if r := e.as(t, "otto").get(t, path); r.status != http.StatusNotFound {
				t.Errorf("otto %s = %d, want 404", path, r.status)
			}
		}
	})

	t.Run("API", func(t *testing.T) {
		r := e.as(t, "admin").get(t, "/api/v1/traces/"+traceHex)
		var v apiTraceView
		if err := json.Unmarshal([]byte(r.body), &v); r.status != http.StatusOK || err != nil {
			t.Fatalf("API trace = %d %v", r.status, err)
		}
		if v.TraceID != traceHex || len(v.Rows) != 8 || v.Errors != 2 || len(v.Traces) != 3 {
			t.Errorf("API trace: id %s, %d rows, %d errors, %d traces; want %s, 8, 2, 3", v.TraceID, len(v.Rows), v.Errors, len(v.Traces), traceHex)
		}
		var linked bool
		for _, row := range v.Rows {
			for _, l := range row.Span.Links {
				linked = linked || (l.TraceID.String() == storyA && l.SpanID == s.publish)
			}
		}
		if !linked {
			t.Error("API trace: no link to A's publish span as hex ids")
		}
	})
}

func TestDeadLetterEntryLinksTheFailingAttempt(t *testing.T) {
	e, s := traceEnv(t)
	r := e.as(t, "admin").get(t, "/dead-letters/entries/"+strconv.FormatInt(e.dlqIDs["nf1"], 10))
	if r.status != http.StatusOK {
		t.Fatalf("entry page = %d", r.status)
	}
	want := `/traces/` + traceHex + `?span=` + s.attempt2.String() + `#span-` + s.attempt2.String()
	if got := regexpFind(r.body, `data-testid="trace-link"`, `href="([^"]+)"`); got != want {
		t.Errorf("trace link = %q, want the last failing attempt %q", got, want)
	}
	if got := regexpFind(r.body, `data-testid="correlation-link"`, `href="([^"]+)"`); got != "/correlations/corr-nf1" {
		t.Errorf("correlation link = %q, want /correlations/corr-nf1", got)
	}
	// An entry of a trace the store does not have links the plain trace.
	r = e.as(t, "admin").get(t, "/dead-letters/entries/"+strconv.FormatInt(e.dlqIDs["timeout"], 10))
	if got := regexpFind(r.body, `data-testid="trace-link"`, `href="([^"]+)"`); got != "/traces/"+traceHex {
		t.Errorf("trace link without a matching attempt = %q, want the plain trace", got)
	}
}

func TestGlobalSearch(t *testing.T) {
	e, _ := traceEnv(t)
	admin := e.as(t, "admin")
	for _, tc := range []struct{ q, want string }{
		{strings.ToUpper(traceHex), "/traces/" + traceHex},
		{"corr-story", "/correlations/corr-story"},
		{"corr-nf1", "/dead-letters/entries?q=corr-nf1"}, // no span carries it
		{"order 4711", "/dead-letters/entries?q=order+4711"},
		{"", "/traces"},
	} {
		r := admin.get(t, "/search?q="+url.QueryEscape(tc.q))
		if r.status != http.StatusSeeOther || r.header.Get("Location") != tc.want {
			t.Errorf("search %q = %d → %q, want 303 → %q", tc.q, r.status, r.header.Get("Location"), tc.want)
		}
	}
	mustContain(t, "layout", admin.get(t, "/queues").body, `action="/search"`, `data-testid="global-search-q"`)
}

func TestCorrelationPage(t *testing.T) {
	e, s := traceEnv(t)
	// The dead letter of the story shares its correlation id.
	r := e.as(t, "admin").get(t, "/correlations/corr-story")
	if r.status != http.StatusOK {
		t.Fatalf("correlation page = %d", r.status)
	}
	if n := strings.Count(r.body, `data-testid="saga-item" data-kind="span"`); n != 7 {
		t.Errorf("%d span items, want the 7 spans that carry the id", n)
	}
	mustContain(t, "saga", r.body,
		`data-testid="saga-item" data-kind="redrive"`, `href="/dead-letters/jobs/7"`,
		`data-testid="saga-compensation"`, `data-testid="saga-failures">2<`, `data-testid="saga-compensations">1<`,
		`data-testid="saga-lane">checkout<`, `data-testid="saga-lane">orders<`,
		`href="/traces/`+storyD+`"`)
	// Time order: the compensation comes after billing's failures.
	if i, j := strings.Index(r.body, "span="+s.attempt2.String()), strings.Index(r.body, "orders.order.cancelled.v1 publish"); i < 0 || j < i {
		t.Errorf("compensation (%d) not after the last failure (%d)", j, i)
	}
	// A dead letter's saga: the fixture carries corr-nf1.
	r = e.as(t, "admin").get(t, "/correlations/corr-nf1")
	mustContain(t, "dead letter saga", r.body, `data-testid="saga-item" data-kind="dead-letter"`,
		`href="/dead-letters/entries/`+strconv.FormatInt(e.dlqIDs["nf1"], 10)+`"`)
	// otto sees nothing of it, and the page says so.
	r = e.as(t, "otto").get(t, "/correlations/corr-story")
	mustContain(t, "otto", r.body, `data-testid="saga-empty"`)
}

func TestGroupPageRecentTraces(t *testing.T) {
	e, _ := traceEnv(t)
	r := e.as(t, "admin").get(t, groupHref(testCluster, testGroup))
	if r.status != http.StatusOK {
		t.Fatalf("group page = %d", r.status)
	}
	// Billing's traces: B (two attempts, one row) and C's consumer.
	if n := strings.Count(r.body, `data-testid="recent-trace"`); n != 2 {
		t.Errorf("%d recent traces, want 2 (one per trace)", n)
	}
	mustContain(t, "group page", r.body, `href="/traces?cluster=`+testCluster+`&amp;group=`+testGroup+`&amp;range=24h&amp;roots=1"`)
}

// seedMatrixTrace writes a trace of two t1 spans on
// kafka:demo/orders.order.created.v1 (a publish and its consumer) for the
// route matrix, and returns its id.
func seedMatrixTrace(t testing.TB, e *env) string {
	t.Helper()
	id := mustTraceID(t, "0123456789abcdef0123456789abcdef")
	base := time.Now().Add(-time.Minute)
	spans := []tracing.Span{
		spanOf(id, spanID(1), tracing.SpanID{}, "checkout", testTopic+" publish", tracing.KindProducer, base, 0, 2*time.Millisecond,
			messaging("evt-matrix", "corr-matrix", delivery.StepPublish, testTopic)...),
		spanOf(id, spanID(2), spanID(1), "billing", testTopic+" process", tracing.KindConsumer, base, 5*time.Millisecond, 9*time.Millisecond,
			messaging("evt-matrix", "corr-matrix", delivery.StepAttempt, testTopic, delivery.AttrConsumer, testGroup, delivery.AttrAttempt, "1")...),
	}
	if err := e.spans.Write(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func TestExampleTraceLinks(t *testing.T) {
	tr, err := parseRange("6h", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := exampleTraceLinks(tr, 0.8125)
	want := []string{"/traces?range=6h&status=error", "/traces?min_duration=813ms&range=6h"}
	if len(got) != 2 || got[0].Href != want[0] || got[1].Href != want[1] || !strings.Contains(got[1].Label, "813ms") {
		t.Errorf("links = %+v, want %v", got, want)
	}
	// Without a known p99 there is no latency link.
	if got := exampleTraceLinks(tr, math.NaN()); len(got) != 1 {
		t.Errorf("links without a p99 = %+v, want the failures only", got)
	}
}

// A consumer group's name is only unique within its cluster: the search
// (and the group page's recent traces) narrows by both.
func TestTraceSearchByGroupAndCluster(t *testing.T) {
	e, _ := traceEnv(t)
	admin := e.as(t, "admin")
	here := admin.spans(t, "group="+testGroup+"&cluster="+testCluster+"&limit=500").Spans
	if len(here) == 0 {
		t.Fatalf("no spans of group %s on cluster %s", testGroup, testCluster)
	}
	for _, sp := range here {
		if sp.Group != testGroup || sp.Cluster != testCluster {
			t.Errorf("span %s of group %q on %q in a search for %s on %s", sp.SpanID, sp.Group, sp.Cluster, testGroup, testCluster)
		}
	}
	if other := admin.spans(t, "group="+testGroup+"&cluster=elsewhere").Spans; len(other) != 0 {
		t.Errorf("%d spans of group %s on cluster elsewhere, want none", len(other), testGroup)
	}
}
