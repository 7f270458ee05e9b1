package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/tracing"
)

// A large trace does not carry every span's details: past eagerPanels rows
// a row links to its panel, which the page fetches when the row is opened
// (as an HX-Request fragment) and which is a page of its own otherwise,
// under the same access rules as the trace.
func TestLargeTraceLoadsSpanDetailsOnDemand(t *testing.T) {
	e := newEnv(t, envOptions{})
	tid, last := seedBigTrace(t, e)
	admin := e.as(t, "admin")
	href := "/traces/" + tid.String() + "/spans/" + last.String()

	page := admin.get(t, "/traces/"+tid.String())
	if page.status != 200 {
		t.Fatalf("trace page: %d %s", page.status, page.body)
	}
	if n := strings.Count(page.body, `data-testid="wf-details-lazy"`); n != eagerPanels+100 {
		t.Errorf("%d rows load their details on demand, want all %d", n, eagerPanels+100)
	}
	if strings.Contains(page.body, "row-"+last.String()) || !strings.Contains(page.body, `data-lazy="`+href+`"`) {
		t.Errorf("the page carries the details of span %s, or not the address of its panel", last)
	}

	// The focused span's details are in the page.
	focused := admin.get(t, "/traces/"+tid.String()+"?span="+last.String())
	if !strings.Contains(focused.body, "row-"+last.String()) {
		t.Errorf("?span=%s does not open that span's details", last)
	}

	frag := admin.get(t, href, "HX-Request", "true")
	if frag.status != 200 || !strings.Contains(frag.body, "row-"+last.String()) || strings.Contains(frag.body, "<nav") ||
		!strings.Contains(frag.body, `data-testid="wf-details"`) {
		t.Errorf("panel fragment: %d %.300s", frag.status, frag.body)
	}
	if full := admin.get(t, href); full.status != 200 || !strings.Contains(full.body, "<nav") || !strings.Contains(full.body, "row-"+last.String()) {
		t.Errorf("panel without JavaScript is not a page: %d", full.status)
	}
	// otto may view no tenant of it: the same 404 as a span that does not exist.
	if r := e.as(t, "otto").get(t, href, "HX-Request", "true"); r.status != 404 {
		t.Errorf("otto's panel: %d, want 404", r.status)
	}
	for _, bad := range []string{"/traces/" + tid.String() + "/spans/nothex", "/traces/nothex/spans/" + last.String(),
		"/traces/" + tid.String() + "/spans/" + spanID(9999).String()} {
		if r := admin.get(t, bad); r.status != 404 {
			t.Errorf("GET %s: %d, want 404", bad, r.status)
		}
	}
}

// seedBigTrace stores a trace of eagerPanels+100 spans, each with an
// attribute "order.note" = "row-<span id>", and returns it and its last span.
func seedBigTrace(t testing.TB, e *env) (tracing.TraceID, tracing.SpanID) {
	t.Helper()
	tid := mustTraceID(t, "feedfacefeedfacefeedfacefeedface")
	base := time.Now().Add(-time.Minute)
	spans := []tracing.Span{spanOf(tid, spanID(1), tracing.SpanID{}, "checkout", testTopic+" publish", tracing.KindProducer, base, 0, time.Second,
		messaging("evt-big", "corr-big", delivery.StepPublish, testTopic, "order.note", "row-"+spanID(1).String())...)}
	for i := 2; i <= eagerPanels+100; i++ {
		spans = append(spans, spanOf(tid, spanID(i), spanID(1), "billing", testTopic+" process", tracing.KindConsumer, base,
			time.Duration(i)*time.Millisecond, time.Duration(i+2)*time.Millisecond,
			messaging("evt-big", "corr-big", delivery.StepProcess, testTopic, "order.note", "row-"+spanID(i).String())...))
	}
	if err := e.spans.Write(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	return tid, spanID(eagerPanels + 100)
}
