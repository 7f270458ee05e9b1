package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/demo"
	"switchyard/dlqstore"
	"switchyard/internal/testenv"
	"switchyard/redrive"
)

// storyWait bounds each step of the story: the demo declines a payment
// every half second or so, spans reach the store within the exporters'
// 5 s batches, and the machine is shared.
const storyWait = 45 * time.Second

// storyEntry is the part of a dead-letter entry (the entries API) the
// story follows.
type storyEntry struct {
	ID            int64  `json:"id"`
	Status        string `json:"status"`
	ErrorCode     string `json:"error_code"`
	Attempts      int    `json:"attempts"`
	CorrelationID string `json:"correlation_id"`
	TraceID       string `json:"trace_id"`
}

// storySpan, storyRow and storyTrace are the parts of /api/v1/traces/:id
// the story reads.
type storySpan struct {
	TraceID      string `json:"trace_id"`
	SpanID       string `json:"span_id"`
	ParentSpanID string `json:"parent_span_id"`
	Service      string `json:"service"`
	Name         string `json:"name"`
	Status       string `json:"status"`
	Attrs        []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"attrs"`
	Links []struct {
		TraceID string `json:"trace_id"`
		SpanID  string `json:"span_id"`
	} `json:"links"`
	EventType   string `json:"event_type"`
	Destination string `json:"destination"`
	Attempt     int    `json:"attempt"`
	Step        string `json:"step"`
}

func (s storySpan) attr(k string) string {
	for _, a := range s.Attrs {
		if a.Key == k {
			return a.Value
		}
	}
	return ""
}

func (s storySpan) linksTo(traceID, spanID string) bool {
	for _, l := range s.Links {
		if l.TraceID == traceID && l.SpanID == spanID {
			return true
		}
	}
	return false
}

type storyRow struct {
	Span  storySpan `json:"span"`
	Trace int       `json:"trace"`
}

type storyTrace struct {
	TraceID string `json:"trace_id"`
	Traces  []struct {
		TraceID string `json:"trace_id"`
		Role    string `json:"role"`
	} `json:"traces"`
	Rows []storyRow `json:"rows"`
}

// spans are the rows of the trace at index i of the story.
func (tv storyTrace) spans(i int) []storySpan {
	var out []storySpan
	for _, r := range tv.Rows {
		if r.Trace == i {
			out = append(out, r.Span)
		}
	}
	return out
}

func findSpan(spans []storySpan, match func(storySpan) bool) (storySpan, bool) {
	for _, s := range spans {
		if match(s) {
			return s, true
		}
	}
	return storySpan{}, false
}

// failureTold checks that the asked trace tells the declined payment:
// the orders service's publish, billing's process span failed with one
// failed attempt span per attempt the dead letter counts (numbered 1…n),
// and the dead-letter publish under it linked to the last attempt. It
// returns that attempt's span, or what is missing.
func failureTold(tv storyTrace, e storyEntry) (storySpan, string) {
	if len(tv.Traces) == 0 || tv.Traces[0].Role != "asked" || tv.Traces[0].TraceID != e.TraceID {
		return storySpan{}, fmt.Sprintf("the story's first trace is %+v, want %s asked", tv.Traces, e.TraceID)
	}
	spans := tv.spans(0)
	if _, ok := findSpan(spans, func(s storySpan) bool {
		return s.Service == demo.ServiceOrders && s.Step == delivery.StepPublish && s.EventType == demo.TopicOrders
	}); !ok {
		return storySpan{}, "the orders service's publish span"
	}
	proc, ok := findSpan(spans, func(s storySpan) bool {
		return s.Service == demo.ServiceBilling && s.Step == delivery.StepProcess && s.Destination == demo.TopicOrders
	})
	if !ok {
		return storySpan{}, "billing's process span"
	}
	if proc.Status != "error" {
		return storySpan{}, fmt.Sprintf("billing's process span has status %q, want error", proc.Status)
	}
	var failing storySpan
	n := 0
	for _, s := range spans {
		if s.Step != delivery.StepAttempt || s.ParentSpanID != proc.SpanID {
			continue
		}
		n++
		if s.Status != "error" {
			return storySpan{}, fmt.Sprintf("attempt %d has status %q, want error", s.Attempt, s.Status)
		}
		if s.Attempt > failing.Attempt {
			failing = s
		}
	}
	if n == 0 || n != e.Attempts || failing.Attempt != n {
		return storySpan{}, fmt.Sprintf("%d attempt spans numbered up to %d, want the dead letter's %d attempts", n, failing.Attempt, e.Attempts)
	}
	// Earlier attempts may have failed otherwise (publishing the decline
	// is retried); the one that gave up declined the payment.
	if code := failing.attr(delivery.AttrErrorCode); code != demo.CodePaymentDeclined {
		return storySpan{}, fmt.Sprintf("the last attempt failed with %q, want %s", code, demo.CodePaymentDeclined)
	}
	dl, ok := findSpan(spans, func(s storySpan) bool {
		return s.Step == delivery.StepDeadLetter && s.Destination == delivery.DLQTopic(demo.TopicOrders) && s.ParentSpanID == proc.SpanID
	})
	if !ok {
		return storySpan{}, "the dead-letter publish span under billing's process span"
	}
	if !dl.linksTo(e.TraceID, failing.SpanID) {
		return storySpan{}, fmt.Sprintf("the dead-letter publish links to %+v, not the failing attempt %s", dl.Links, failing.SpanID)
	}
	return failing, ""
}

// redriveTold checks that the story goes on after the redrive of job:
// a trace "linked from" the asked one holds the job's span, the redrive
// span of the message under it — linked to the attempt that gave up —
// and, under that, billing's process span of the redriven message, which
// did not fail, with an attempt that did not fail.
func redriveTold(tv storyTrace, e storyEntry, job int64, failing storySpan) string {
	jobID := strconv.FormatInt(job, 10)
	for i, ref := range tv.Traces {
		if ref.Role != "linked from" {
			continue
		}
		spans := tv.spans(i)
		rd, ok := findSpan(spans, func(s storySpan) bool {
			return s.Step == delivery.StepRedrive && s.attr(delivery.AttrRedriveJob) == jobID
		})
		if !ok {
			continue
		}
		if !rd.linksTo(e.TraceID, failing.SpanID) || rd.attr(delivery.AttrDLQEntry) != strconv.FormatInt(e.ID, 10) {
			return fmt.Sprintf("the redrive span links to %+v for entry %q, want the failing attempt %s of entry %d", rd.Links, rd.attr(delivery.AttrDLQEntry), failing.SpanID, e.ID)
		}
		js, ok := findSpan(spans, func(s storySpan) bool { return s.SpanID == rd.ParentSpanID })
		if !ok || js.Name != "redrive job "+jobID || js.Service != "switchyard-console" || js.attr(redrive.AttrJobState) != string(dlqstore.JobCompleted) {
			return fmt.Sprintf("the redrive span's parent is %+v, want the console's span of job %s, completed", js, jobID)
		}
		proc, ok := findSpan(spans, func(s storySpan) bool {
			return s.Service == demo.ServiceBilling && s.Step == delivery.StepProcess && s.ParentSpanID == rd.SpanID
		})
		if !ok {
			return "billing's process span of the redriven message, under the redrive span"
		}
		att, ok := findSpan(spans, func(s storySpan) bool { return s.Step == delivery.StepAttempt && s.ParentSpanID == proc.SpanID })
		if proc.Status == "error" || !ok || att.Status == "error" {
			return fmt.Sprintf("billing handled the redriven message with status %q (attempt found %v, status %q), want no failure", proc.Status, ok, att.Status)
		}
		return ""
	}
	return fmt.Sprintf("a trace linked from the story with job %d's redrive span (traces %+v)", job, tv.Traces)
}

// waitStory polls check until it returns "" and fails t with the last
// thing it said was missing when it does not within d.
func waitStory(t *testing.T, d time.Duration, what string, check func() string) {
	t.Helper()
	last, done := "not checked yet", false
	// WaitWithin ends the test with Fatalf (runtime.Goexit), which runs
	// this: say what was still missing.
	defer func() {
		if !done {
			t.Logf("%s: last missing: %s", what, last)
		}
	}()
	testenv.WaitWithin(t, d, what, func() bool {
		last = check()
		return last == ""
	})
	done = true
}

// getPage fetches an HTML page with auth and returns its status and body.
func getPage(t *testing.T, u, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postJSON posts body with auth and decodes the answer into v.
func postJSON(t *testing.T, u, auth, body string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("POST %s: %v in %s", u, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("POST %s: %d %s", u, resp.StatusCode, b)
	}
	return resp.StatusCode
}

var (
	sagaItemRe = regexp.MustCompile(`(?s)<tr data-testid="saga-item" data-kind="([^"]*)" data-failed="([^"]*)" data-compensation="([^"]*)">(.*?)</tr>`)
	tagRe      = regexp.MustCompile(`<[^>]*>`)
)

// sagaItem is a row of the correlation page.
type sagaItem struct {
	kind               string
	failed, compensate bool
	text               string
}

func sagaItems(page string) []sagaItem {
	var out []sagaItem
	for _, m := range sagaItemRe.FindAllStringSubmatch(page, -1) {
		out = append(out, sagaItem{kind: m[1], failed: m[2] == "true", compensate: m[3] == "true",
			text: strings.Join(strings.Fields(tagRe.ReplaceAllString(m[4], " ")), " ")})
	}
	return out
}

// TestDemoDeclinedPaymentStory is issue 13's end-to-end story on the real
// demo: a payment billing declines is one chain from the order through
// the failed attempt and its dead letter to the redrive that, once the
// fix is deployed, succeeds. The dead letter opens its trace at the
// failing attempt, the correlation page shows the saga's compensation
// beside the dead letter, and after a redrive job the same trace shows
// the redrive (under the job's span) and billing handling the message.
func TestDemoDeclinedPaymentStory(t *testing.T) {
	mgmt := testenv.RabbitManagementURL(t)
	_, amqpURL := testenv.RabbitVHost(t) // the demo's queues of its own
	dir := t.TempDir()
	var logs testenv.SyncBuffer
	m := NewMain(io.Discard, &logs, envMap(
		"CONSOLE_ADDR", "127.0.0.1:0", "DEMO_KAFKA_ADDR", "127.0.0.1:0", "CONSOLE_DATA_DIR", dir,
		"CONSOLE_ADMIN_PASSWORD", "correct-horse-battery", "CONSOLE_POLL_INTERVAL", "1s",
		"RABBITMQ_URL", amqpURL, "RABBITMQ_MANAGEMENT_URL", mgmt,
	))
	m.DemoMode = true
	if err := m.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	// 1.2% of orders are declined: at 200 orders/s, a few every second.
	m.Config.Demo.Rate = 200
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok := adminToken(t, dir)
	admin := "Bearer " + tok

	// A declined payment, dead-lettered and indexed.
	var entry storyEntry
	testenv.WaitWithin(t, storyWait, "a declined payment's dead letter with a trace and a correlation id", func() bool {
		var page struct {
			Entries []storyEntry `json:"entries"`
		}
		if code := getJSON(t, m.URL+"/api/v1/dlq/entries?broker=kafka&error_code="+demo.CodePaymentDeclined, admin, &page); code != http.StatusOK {
			t.Fatalf("GET /api/v1/dlq/entries: %d", code)
		}
		for _, e := range page.Entries {
			if e.TraceID != "" && e.CorrelationID != "" && e.ErrorCode == demo.CodePaymentDeclined {
				entry = e
				return true
			}
		}
		return false
	})

	// Its trace tells the failure.
	var failing storySpan
	waitStory(t, storyWait, "the dead letter's trace to tell the declined payment", func() string {
		var tv storyTrace
		if code := getJSON(t, m.URL+"/api/v1/traces/"+entry.TraceID, admin, &tv); code != http.StatusOK {
			return fmt.Sprintf("GET /api/v1/traces/%s: %d", entry.TraceID, code)
		}
		var missing string
		failing, missing = failureTold(tv, entry)
		return missing
	})

	// The entry page opens the trace at the failing attempt.
	wantHref := `href="/traces/` + entry.TraceID + `?span=` + failing.SpanID
	entryPage := m.URL + "/dead-letters/entries/" + strconv.FormatInt(entry.ID, 10)
	if code, body := getPage(t, entryPage, admin); code != http.StatusOK || !strings.Contains(body, wantHref) {
		t.Errorf("GET %s: %d; want a link %s… (the failing attempt) in:\n%s", entryPage, code, wantHref, traceLinkOf(body))
	}

	// The correlation page: the saga's compensation and the dead letter.
	corrPage := m.URL + "/correlations/" + url.PathEscape(entry.CorrelationID)
	waitStory(t, storyWait, "the correlation page to show the compensation and the dead letter", func() string {
		code, body := getPage(t, corrPage, admin)
		if code != http.StatusOK {
			return fmt.Sprintf("GET %s: %d", corrPage, code)
		}
		var comp, dead bool
		for _, it := range sagaItems(body) {
			if it.compensate && strings.Contains(it.text, demo.TopicOrderCancelled) && !it.failed {
				comp = true
			}
			if it.kind == "dead-letter" && it.failed && strings.Contains(it.text, "dead letter "+strconv.FormatInt(entry.ID, 10)+":") {
				dead = true
			}
		}
		if !comp || !dead {
			return fmt.Sprintf("compensation %s shown: %v, dead letter %d shown: %v; items %+v", demo.TopicOrderCancelled, comp, entry.ID, dead, sagaItems(body))
		}
		return ""
	})

	// Deploy the fix, redrive the entry through the API.
	if code := postJSON(t, m.URL+"/api/v1/demo/fixes", admin, `{"code":"`+demo.CodePaymentDeclined+`"}`, nil); code != http.StatusOK {
		t.Fatalf("deploy the fix for %s: %d", demo.CodePaymentDeclined, code)
	}
	var job redrive.Job
	body := fmt.Sprintf(`{"action":"redrive","selector":{"ids":[%d]},"reason":"card issuer fixed the decline"}`, entry.ID)
	if code := postJSON(t, m.URL+"/api/v1/dlq/jobs", admin, body, &job); code != http.StatusCreated || job.ID == 0 {
		t.Fatalf("start the redrive: %d %+v", code, job)
	}
	testenv.WaitWithin(t, storyWait, fmt.Sprintf("redrive job %d to complete", job.ID), func() bool {
		if code := getJSON(t, m.URL+"/api/v1/dlq/jobs/"+strconv.FormatInt(job.ID, 10), admin, &job); code != http.StatusOK {
			t.Fatalf("GET job %d: %d", job.ID, code)
		}
		return job.Finished()
	})
	if job.State != dlqstore.JobCompleted || job.Done != 1 || job.Failed != 0 {
		t.Fatalf("job %d = %s, %d done, %d failed (%s); want the entry sent", job.ID, job.State, job.Done, job.Failed, job.Error)
	}

	// The same trace now tells the rest: redrive, then success.
	waitStory(t, storyWait, "the trace to go on with the redrive and billing's success", func() string {
		var tv storyTrace
		if code := getJSON(t, m.URL+"/api/v1/traces/"+entry.TraceID, admin, &tv); code != http.StatusOK {
			return fmt.Sprintf("GET /api/v1/traces/%s: %d", entry.TraceID, code)
		}
		if _, missing := failureTold(tv, entry); missing != "" {
			return "the failure is no longer told: " + missing
		}
		return redriveTold(tv, entry, job.ID, failing)
	})

	// A stop after a redrive warns about nothing: the redrive's Kafka
	// client used to outlive the embedded Kafka and warn that it could
	// not reach it.
	before := len(logs.String())
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(logs.String()[before:]) {
		if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("the stop logged: %s", line)
		}
	}
}

// traceLinkOf is the entry page's trace link element, for a failure
// message (the whole page would drown it).
func traceLinkOf(page string) string {
	i := strings.Index(page, `data-testid="trace-link"`)
	if i < 0 {
		return "(no trace link on the page)"
	}
	return page[max(0, i-200):min(len(page), i+100)]
}
