package web

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

var (
	entryRowRE = regexp.MustCompile(`data-testid="entry-row" data-entry-id="(\d+)" data-tenant="([^"]*)"`)
	nextRE     = regexp.MustCompile(`href="([^"]+)" data-testid="page-next"`)
	totalRE    = regexp.MustCompile(`data-testid="entries-total">([^<]*)<`)
)

// entryIDs returns the entry ids of an entries page, in order.
func entryIDs(body string) []int64 {
	var out []int64
	for _, m := range entryRowRE.FindAllStringSubmatch(body, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		out = append(out, id)
	}
	return out
}

func entryTenants(body string) []string {
	var out []string
	for _, m := range entryRowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[2])
	}
	return out
}

// groupSections splits a groups page into its group cards by title.
func groupSections(body string) map[string]string {
	out := map[string]string{}
	parts := strings.Split(body, `data-testid="group" `)
	for _, p := range parts[1:] {
		if end := strings.Index(p, "</section>"); end >= 0 {
			p = p[:end]
		}
		m := regexp.MustCompile(`data-testid="group-title">([^<]*)<`).FindStringSubmatch(p)
		if m != nil {
			out[html.UnescapeString(m[1])] = p
		}
	}
	return out
}

func (e *env) ids(names ...string) []int64 {
	var out []int64
	for _, n := range names {
		out = append(out, e.dlqIDs[n])
	}
	return out
}

func sameIDs(got, want []int64) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

func decodeJSON[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %d %q: %v", r.status, r.body, err)
	}
	return v
}

const nfTitle = "order <num> not found"

func TestDeadLetterGroupsPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	r := admin.get(t, "/dead-letters")
	if r.status != http.StatusOK {
		t.Fatalf("groups = %d\n%s", r.status, r.body)
	}
	groups := groupSections(r.body)
	if len(groups) != 6 {
		t.Fatalf("groups = %d %v, want 6 causes", len(groups), slices.Collect(mapKeys(groups)))
	}
	nf := groups[nfTitle]
	mustContain(t, "order group", nf,
		`data-testid="group-count">3<`, `data-testid="group-code">ORDER_NOT_FOUND<`,
		`data-testid="group-exception">OrderNotFoundException<`, `data-testid="group-event-type">`+testTopic+`<`,
		`data-testid="group-destinations">`+testDLQ+`<`, `data-testid="group-tenants">t1, t2<`,
		`data-state="open"`, `data-counts="`, `data-testid="triage-form"`, `name="_csrf"`)
	if got := sparkTotal(nf); got != 3 {
		t.Errorf("order group sparkline sums to %d, want 3", got)
	}
	// Sorted by count: the three-entry group first.
	if i, j := strings.Index(r.body, html.EscapeString(nfTitle)), strings.Index(r.body, "mailbox unavailable"); i < 0 || j < i {
		t.Errorf("sort by count: the order group should come first")
	}
	// By last seen: the newest failure (nf1, 5m ago) leads, the RabbitMQ
	// one (75m) is last.
	r = admin.get(t, "/dead-letters?sort=last_seen")
	if i, j := strings.Index(r.body, "upstream timed out"), strings.Index(r.body, "mailbox unavailable"); i < 0 || j < i {
		t.Errorf("sort by last seen: timeout (65m) before mailbox (75m)")
	}
	// The <script> message is a title, escaped.
	mustContain(t, "escaped title", r.body, "&lt;script&gt;alert(&lt;num&gt;)&lt;/script&gt;")
	mustNotContain(t, "escaped title", r.body, "<script>alert")
	// Indexer strip, with the error of one source.
	mustContain(t, "indexer strip", r.body, `data-testid="indexer-status"`, `data-destination="`+payDLQ+`"`,
		"NOT_LEADER_FOR_PARTITION", `data-testid="indexer-error-badge"`)
	// Nav badge: all eight entries are open.
	mustContain(t, "nav badge", r.body, `data-testid="nav-count-dead-letters" title="open entries">8<`)

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"?q=declined", []string{"card declined for customer <num>"}},
		{"?q=ORDER_NOT", []string{nfTitle}},
		{"?broker=rabbitmq", []string{"mailbox unavailable"}},
		{"?destination=" + payDLQ, []string{"payload is not valid UTF-<num>", "upstream timed out after <num>s"}},
		{"?state=acknowledged", nil},
	} {
		got := slices.Sorted(mapKeys(groupSections(admin.get(t, "/dead-letters"+tc.query).body)))
		if !slices.Equal(got, tc.want) {
			t.Errorf("groups%s = %q, want %q", tc.query, got, tc.want)
		}
	}
	// Keyset paging is exercised on entries; a bad cursor or sort is an
	// inline message, not a 500.
	r = admin.get(t, "/dead-letters?sort=nonsense")
	if r.status != http.StatusBadRequest {
		t.Errorf("bad sort = %d", r.status)
	}
	mustContain(t, "bad sort", r.body, `data-testid="filter-error"`)

	// A viewer sees groups but no triage form.
	r = e.as(t, "vera").get(t, "/dead-letters")
	mustContain(t, "vera groups", r.body, html.EscapeString(nfTitle))
	mustNotContain(t, "vera groups", r.body, `data-testid="triage-form"`)
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func sparkTotal(section string) int {
	m := regexp.MustCompile(`data-counts="([0-9,]*)"`).FindStringSubmatch(section)
	if m == nil {
		return -1
	}
	n := 0
	for _, v := range strings.Split(m[1], ",") {
		x, _ := strconv.Atoi(v)
		n += x
	}
	return n
}

func TestDeadLetterEntriesFilters(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	nf, err := e.dlq.Entry(context.Background(), e.dlqIDs["nf1"])
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"nf1", "nf2", "nf3", "declined", "script", "binary", "timeout", "smtp"}},
		{"status=dead", []string{"nf1", "nf2", "nf3", "declined", "script", "binary", "timeout", "smtp"}},
		{"status=resolved", nil},
		{"broker=rabbitmq", []string{"smtp"}},
		{"destination=" + payDLQ, []string{"binary", "timeout"}},
		{"event_type=" + testTopic, []string{"nf1", "nf2", "nf3", "declined", "script", "timeout", "smtp"}},
		{"event_type=" + otherTopic, []string{"binary"}},
		{"error_code=ORDER_NOT_FOUND", []string{"nf1", "nf2", "nf3"}},
		{"tenant=t2", []string{"nf3", "declined", "timeout"}},
		{"group=" + strconv.FormatInt(nf.GroupID, 10), []string{"nf1", "nf2", "nf3"}},
		{"range=1h", []string{"nf1", "nf2", "nf3", "declined", "script", "binary"}},
		{"from=" + url.QueryEscape(now.Add(-20*time.Minute).Format(time.RFC3339)) + "&to=" + url.QueryEscape(now.Add(-10*time.Minute).Format(time.RFC3339)), []string{"nf2"}},
		// Full text: message, ids (correlation id), and — for those who
		// may read payloads and PII — payload text.
		{"q=timed", []string{"timeout"}},
		{"q=4711", []string{"nf1"}},
		{"q=" + url.QueryEscape(`"corr-nf2"`), []string{"nf2"}},
		{"q=" + url.QueryEscape(fixtureEmail("declined")), []string{"declined"}},
		{"q=Declined&tenant=t2", []string{"declined"}},
	} {
		r := admin.get(t, "/dead-letters/entries?"+tc.query)
		if r.status != http.StatusOK {
			t.Errorf("entries?%s = %d\n%.400s", tc.query, r.status, r.body)
			continue
		}
		if got := entryIDs(r.body); !sameIDs(got, e.ids(tc.want...)) {
			t.Errorf("entries?%s = %v, want %v (%v)", tc.query, got, e.ids(tc.want...), tc.want)
		}
		if m := totalRE.FindStringSubmatch(r.body); m == nil || m[1] != strconv.Itoa(len(tc.want)) {
			t.Errorf("entries?%s total = %v, want %d", tc.query, m, len(tc.want))
		}
		// The API answers the same filter the same way.
		api := decodeJSON[dlqEntriesResponse](t, admin.get(t, "/api/v1/dlq/entries?"+tc.query))
		var got []int64
		for _, x := range api.Entries {
			got = append(got, x.ID)
		}
		if !sameIDs(got, e.ids(tc.want...)) || api.Total != len(tc.want) {
			t.Errorf("API entries?%s = %v total %d, want %v", tc.query, got, api.Total, tc.want)
		}
	}
	// Row contents: code, message escaped and truncated, tenant, status.
	r := admin.get(t, "/dead-letters/entries?error_code=VALIDATION_FAILED")
	mustContain(t, "script row", r.body, `data-testid="entry-code">VALIDATION_FAILED<`,
		`data-testid="entry-message">&lt;script&gt;alert(1)&lt;/script&gt;<`, `data-testid="entry-status">dead<`,
		`href="/dead-letters/entries/`+strconv.FormatInt(e.dlqIDs["script"], 10)+`"`)
	mustNotContain(t, "script row", r.body, "<script>alert")

	// An invalid full-text query: an inline message on the page, 400 in
	// the error contract on the API; never a 500.
	for _, q := range []string{`"unclosed`, `a AND`, `(timeout`} {
		r := admin.get(t, "/dead-letters/entries?q="+url.QueryEscape(q))
		if r.status != http.StatusBadRequest {
			t.Errorf("page q=%s = %d", q, r.status)
		}
		mustContain(t, "invalid query "+q, r.body, `data-testid="search-error"`, "search: ")
		api := admin.get(t, "/api/v1/dlq/entries?q="+url.QueryEscape(q))
		er := decodeJSON[delivery.ErrorResponse](t, api)
		if api.status != http.StatusBadRequest || er.Error.Code != delivery.EINVALID || !strings.Contains(er.Error.Message, "search:") {
			t.Errorf("API q=%s = %d %+v", q, api.status, er)
		}
	}
	if r := admin.get(t, "/dead-letters/entries?status=bogus"); r.status != http.StatusBadRequest || !strings.Contains(r.body, `data-testid="search-error"`) {
		t.Errorf("bad status = %d", r.status)
	}
}

func TestDeadLetterEntriesPaging(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	var seen []int64
	path := "/dead-letters/entries?limit=3"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r := admin.get(t, path)
		ids := entryIDs(r.body)
		if len(ids) == 0 || len(ids) > 3 {
			t.Fatalf("page %d has %d rows", pages, len(ids))
		}
		if m := totalRE.FindStringSubmatch(r.body); m == nil || m[1] != "8" {
			t.Errorf("page %d total = %v, want 8", pages, m)
		}
		seen = append(seen, ids...)
		path = ""
		if m := nextRE.FindStringSubmatch(r.body); m != nil {
			path = html.UnescapeString(m[1])
			mustContain(t, "next link", r.body, "Older →")
		}
	}
	// Newest first, each entry once.
	want := e.ids("nf1", "nf2", "nf3", "declined", "script", "binary", "timeout", "smtp")
	if !slices.Equal(seen, want) {
		t.Errorf("paged = %v, want %v", seen, want)
	}
	// The API pages the same way.
	var got []int64
	cursor := ""
	for range 5 {
		api := decodeJSON[dlqEntriesResponse](t, admin.get(t, "/api/v1/dlq/entries?limit=3&cursor="+url.QueryEscape(cursor)))
		for _, x := range api.Entries {
			got = append(got, x.ID)
		}
		if cursor = api.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("API paged = %v, want %v", got, want)
	}
	if r := admin.get(t, "/api/v1/dlq/entries?cursor=garbage"); r.status != http.StatusBadRequest {
		t.Errorf("bad cursor = %d", r.status)
	}
}

func TestDeadLetterEntryDetail(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin := e.as(t, "admin")
	id := func(n string) string { return strconv.FormatInt(e.dlqIDs[n], 10) }

	r := admin.get(t, "/dead-letters/entries/"+id("nf1"))
	if r.status != http.StatusOK {
		t.Fatalf("entry = %d\n%s", r.status, r.body)
	}
	mustContain(t, "nf1", r.body,
		`data-testid="entry-title">order 4711 not found<`,
		`data-kind="json"`, "&#34;payload&#34;: {\n", fixtureEmail("nf1"), "4111111111111111",
		`data-testid="entry-headers"`, "correlation_id", "traceparent",
		`data-testid="error-stack">at com.example.orders.Handler.handle(Handler.java:42)`,
		`data-testid="error-code">ORDER_NOT_FOUND<`, `data-testid="entry-attempts">3<`,
		`href="/topics/demo/orders.order.created.v1" data-testid="origin-link"`,
		`href="/topics/demo/orders.order.created.v1.dlq" data-testid="dlq-link"`,
		`href="/correlations/corr-nf1"`, `href="/traces/`+traceHex+`"`,
		`data-testid="entry-history-empty"`, "No actions yet",
		`data-testid="entry-key">key-nf1<`, testGroup,
	)
	mustNotContain(t, "nf1", r.body, `data-testid="payload-masked"`, `data-testid="payload-denied"`)

	// Binary payload: hex, with its flags.
	r = admin.get(t, "/dead-letters/entries/"+id("binary"))
	mustContain(t, "binary", r.body, `data-kind="hex"`, "ff fe 00 01 80 81 68 69",
		`data-flag="not_utf8"`, `data-testid="envelope-none"`)

	// <script> in an error message is text, everywhere on the page.
	r = admin.get(t, "/dead-letters/entries/"+id("script"))
	mustContain(t, "script entry", r.body, `data-testid="error-text">&lt;script&gt;alert(1)&lt;/script&gt;<`)
	mustNotContain(t, "script entry", r.body, "<script>alert")
	if strings.Count(r.body, "<script") != 1 { // the layout's app.js only
		t.Errorf("entry page has %d <script elements", strings.Count(r.body, "<script"))
	}
	api := decodeJSON[apiDLQEntryDetail](t, admin.get(t, "/api/v1/dlq/entries/"+id("script")))
	if api.ErrorMessage != "<script>alert(1)</script>" || api.Error.Message != api.ErrorMessage {
		t.Errorf("API message = %q", api.ErrorMessage)
	}

	// RabbitMQ origin links the queue page.
	r = admin.get(t, "/dead-letters/entries/"+id("smtp"))
	mustContain(t, "smtp", r.body, `href="/queues/mq/%2F/`+matrixQueue+`" data-testid="origin-link"`, "email.high")

	// API: payload as text when UTF-8, base64 when not; no payload in lists.
	api = decodeJSON[apiDLQEntryDetail](t, admin.get(t, "/api/v1/dlq/entries/"+id("nf1")))
	if !api.PayloadAllowed || api.PayloadText == nil || !strings.Contains(*api.PayloadText, fixtureEmail("nf1")) ||
		api.Envelope == nil || api.Envelope.Metadata.TenantID != "t1" || api.TraceID != traceHex || api.CorrelationID != "corr-nf1" {
		t.Errorf("API nf1 = %+v", api)
	}
	api = decodeJSON[apiDLQEntryDetail](t, admin.get(t, "/api/v1/dlq/entries/"+id("binary")))
	if api.PayloadText != nil || string(api.PayloadBase64) != string(binaryPayload) {
		t.Errorf("API binary payload = %v %v", api.PayloadText, api.PayloadBase64)
	}
	if list := admin.get(t, "/api/v1/dlq/entries"); strings.Contains(list.body, "payload_text") || strings.Contains(list.body, fixtureEmail("nf1")) {
		t.Errorf("the entries list carries payloads")
	}
	for _, p := range []string{"/dead-letters/entries/999999", "/dead-letters/entries/abc", "/api/v1/dlq/entries/999999"} {
		if r := admin.get(t, p); r.status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, r.status)
		}
	}
}

// TestDeadLetterTenantIsolation: tess operates kafka:demo/* for tenant t1
// only. She never sees a t2 entry, count or group, on the pages or the
// API; a t2 entry, or one of a queue she may not view, is a 404.
func TestDeadLetterTenantIsolation(t *testing.T) {
	e := newEnv(t, envOptions{})
	tess := e.as(t, "tess")
	t2Text := []string{"card declined", "upstream timed out", "order 9000", "corr-nf3", fixtureEmail("nf3"), `data-tenant="t2"`}

	// Her view is limited to kafka:demo/* in t1: groups, counts and totals
	// are computed over exactly her four entries — not the t1 entry of a
	// RabbitMQ queue she may not view, not t2's.
	r := tess.get(t, "/dead-letters")
	if r.status != http.StatusOK {
		t.Fatalf("tess /dead-letters = %d", r.status)
	}
	mustNotContain(t, "tess groups", r.body, append(t2Text, "mailbox unavailable", "SMTP_REJECTED")...)
	mustContain(t, "tess groups", r.body, `data-testid="nav-count-dead-letters" title="open entries">4<`)
	gl := decodeJSON[dlqGroupsResponse](t, tess.get(t, "/api/v1/dlq/groups"))
	sum := 0
	for _, g := range gl.Groups {
		sum += g.Count
		if !slices.Equal(g.Tenants, []string{"t1"}) || slices.Contains(g.Destinations, mailDLQ) {
			t.Errorf("tess group %q: tenants %v destinations %v", g.Title, g.Tenants, g.Destinations)
		}
	}
	if sum != 4 {
		t.Errorf("tess API groups count %d entries, want her 4", sum)
	}
	r = tess.get(t, "/dead-letters/entries?limit=2")
	mustContain(t, "tess entries", r.body, `data-testid="entries-total">4`)
	if l := decodeJSON[dlqEntriesResponse](t, tess.get(t, "/api/v1/dlq/entries?limit=2")); l.Total != 4 || l.TotalCapped {
		t.Errorf("tess API total = %d (capped %v), want 4", l.Total, l.TotalCapped)
	}

	// Entries: t1 rows of kafka:demo only (the t1 RabbitMQ entry is on a
	// queue she may not view).
	r = tess.get(t, "/dead-letters/entries")
	if got := entryIDs(r.body); !sameIDs(got, e.ids("nf1", "nf2", "script", "binary")) {
		t.Errorf("tess entries = %v", got)
	}
	for _, tn := range entryTenants(r.body) {
		if tn != "t1" {
			t.Errorf("tess sees tenant %q", tn)
		}
	}
	mustNotContain(t, "tess entries", r.body, t2Text...)
	if r := tess.get(t, "/dead-letters/entries?tenant=t2"); len(entryIDs(r.body)) != 0 {
		t.Errorf("tess tenant=t2: %v", entryIDs(r.body))
	}

	// API.
	list := decodeJSON[dlqEntriesResponse](t, tess.get(t, "/api/v1/dlq/entries"))
	for _, x := range list.Entries {
		if x.Tenant != "t1" {
			t.Errorf("tess API entry of %s", x.Tenant)
		}
	}
	for _, n := range []string{"nf3", "declined", "smtp"} {
		id := strconv.FormatInt(e.dlqIDs[n], 10)
		if r := tess.get(t, "/dead-letters/entries/"+id); r.status != http.StatusNotFound {
			t.Errorf("tess entry %s = %d, want 404", n, r.status)
		}
		if r := tess.get(t, "/api/v1/dlq/entries/"+id); r.status != http.StatusNotFound {
			t.Errorf("tess API entry %s = %d, want 404", n, r.status)
		}
	}
	// Full text does not find t2 entries either.
	if r := tess.get(t, "/dead-letters/entries?q=declined"); len(entryIDs(r.body)) != 0 {
		t.Errorf("tess finds t2 by text")
	}
}

// TestDeadLetterPIIMasking: tess may read payloads but not PII; vera may
// not read payloads at all. Neither can probe a masked value by search.
func TestDeadLetterPIIMasking(t *testing.T) {
	e := newEnv(t, envOptions{})
	tess, vera := e.as(t, "tess"), e.as(t, "vera")
	id := strconv.FormatInt(e.dlqIDs["nf1"], 10)

	r := tess.get(t, "/dead-letters/entries/"+id)
	// email, card.number, metadata.partition_key and the key.
	mustContain(t, "tess page", r.body, "***", "fixture nf1", `data-testid="payload-masked">4 fields`)
	mustNotContain(t, "tess page", r.body, fixtureEmail("nf1"), "4111111111111111")
	api := decodeJSON[apiDLQEntryDetail](t, tess.get(t, "/api/v1/dlq/entries/"+id))
	if api.PayloadText == nil || !strings.Contains(*api.PayloadText, `"***"`) || api.MaskedFields != 4 {
		t.Errorf("tess API payload = %v masked %d", api.PayloadText, api.MaskedFields)
	}
	mustNotContain(t, "tess API", tess.get(t, "/api/v1/dlq/entries/"+id).body, fixtureEmail("nf1"), "4111111111111111")

	r = vera.get(t, "/dead-letters/entries/"+id)
	mustContain(t, "vera page", r.body, `data-testid="payload-denied"`, "You may not read payloads",
		`data-testid="error-text">order 4711 not found<`)
	mustNotContain(t, "vera page", r.body, fixtureEmail("nf1"), "fixture nf1", `data-testid="entry-headers"`, `data-testid="payload"`)
	api = decodeJSON[apiDLQEntryDetail](t, vera.get(t, "/api/v1/dlq/entries/"+id))
	if api.PayloadAllowed || api.PayloadText != nil || api.PayloadBase64 != nil || api.Headers != nil {
		t.Errorf("vera API payload = %+v", api)
	}

	// A masked value cannot be found by searching for it.
	for _, c := range []*client{tess, vera} {
		q := url.QueryEscape(`"` + fixtureEmail("nf1") + `"`)
		if r := c.get(t, "/dead-letters/entries?q="+q); r.status != http.StatusOK || len(entryIDs(r.body)) != 0 {
			t.Errorf("%s searching a masked email = %d, %v", c.user, r.status, entryIDs(r.body))
		}
		if r := c.get(t, "/dead-letters/entries?q=4711"); !sameIDs(entryIDs(r.body), e.ids("nf1")) {
			t.Errorf("%s message search = %v", c.user, entryIDs(r.body))
		}
		if r := c.get(t, "/dead-letters/entries?q="+url.QueryEscape("payload:fixture")); r.status != http.StatusBadRequest {
			t.Errorf("%s payload: search = %d", c.user, r.status)
		}
		// The message names what was typed, not the rewrite.
		r := c.get(t, "/dead-letters/entries?q="+url.QueryEscape(`"unclosed`))
		mustContain(t, c.user+" invalid", r.body, `data-testid="search-error"`, "unbalanced quote")
		mustNotContain(t, c.user+" invalid", r.body, "message:(")
		if r := c.get(t, "/dead-letters/entries?q="+url.QueryEscape("x) OR (fixture")); r.status != http.StatusBadRequest {
			t.Errorf("%s unbalanced ) = %d", c.user, r.status)
		}
	}

	// Payload reads are audited; vera's denied view is not a read.
	ctx := context.Background()
	recs, _, err := e.audit.List(ctx, access.AuditFilter{Action: "payload.read", Actor: "tess"})
	if err != nil || len(recs) == 0 || recs[0].Resource != "kafka:demo/"+testTopic || recs[0].Tenant != "t1" ||
		!slices.Contains(recs[0].AffectedIDs, id) {
		t.Errorf("tess payload.read audit = %+v %v", recs, err)
	}
	if recs, _, _ := e.audit.List(ctx, access.AuditFilter{Action: "payload.read", Actor: "vera"}); len(recs) != 0 {
		t.Errorf("vera payload.read audit = %+v", recs)
	}
}

func TestDeadLetterTriage(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	admin := e.as(t, "admin")
	nf, err := e.dlq.Entry(ctx, e.dlqIDs["nf1"])
	if err != nil {
		t.Fatal(err)
	}
	declined, err := e.dlq.Entry(ctx, e.dlqIDs["declined"])
	if err != nil {
		t.Fatal(err)
	}
	form := "/dead-letters/groups/" + strconv.FormatInt(nf.GroupID, 10) + "/triage"

	// The form needs its CSRF token.
	r := admin.send(t, http.MethodPost, form, url.Values{"state": {"acknowledged"}, "owner": {"alice"}})
	if r.status != http.StatusForbidden {
		t.Errorf("triage without CSRF = %d", r.status)
	}
	r = admin.post(t, form, url.Values{"state": {"acknowledged"}, "owner": {"alice"}, "note": {"looking into it"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/dead-letters" {
		t.Fatalf("triage = %d %q", r.status, r.header.Get("Location"))
	}
	r = admin.get(t, "/dead-letters")
	mustContain(t, "after triage", r.body, `data-testid="flash"`, "is now acknowledged by alice",
		`data-state="acknowledged"`, `title="looking into it">acknowledged by alice<`, `data-testid="group-note">looking into it<`)
	if got := slices.Collect(mapKeys(groupSections(admin.get(t, "/dead-letters?state=acknowledged").body))); !slices.Equal(got, []string{nfTitle}) {
		t.Errorf("acknowledged groups = %v", got)
	}
	recs, _, err := e.audit.List(ctx, access.AuditFilter{Action: "dlq.triage"})
	if err != nil || len(recs) != 1 || recs[0].Actor != "admin" || recs[0].Reason != "looking into it" ||
		recs[0].Resource != dlqResource || !slices.Equal(recs[0].AffectedIDs, []string{strconv.FormatInt(nf.GroupID, 10)}) {
		t.Errorf("dlq.triage audit = %+v %v", recs, err)
	}
	// A bad change comes back as a flash, and changes nothing.
	r = admin.post(t, form, url.Values{"state": {"snoozed"}})
	if r.status != http.StatusSeeOther {
		t.Errorf("bad triage = %d", r.status)
	}
	mustContain(t, "bad triage", admin.get(t, "/dead-letters").body, "Triage not saved", "snooz", "acknowledged by alice")

	// PATCH with a token, by an operator of t1 bound to console:dlq.
	by, err := e.store.PrincipalFor(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateUser(ctx, by, "olga", operatorPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.AddBinding(ctx, by, access.Binding{Subject: "user:olga", Role: access.RoleOperator,
		Resources: []string{dlqResource, "kafka:demo/*"}, Tenants: []string{"t1"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := e.store.IssueToken(ctx, by, "olga", "triage", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	api := "/api/v1/dlq/groups/" + strconv.FormatInt(nf.GroupID, 10)
	r = e.bearer(t, tok, http.MethodPatch, api, map[string]any{"state": "snoozed", "snoozed_until": until.Format(time.RFC3339), "note": "after the deploy"})
	if r.status != http.StatusOK {
		t.Fatalf("PATCH = %d %s", r.status, r.body)
	}
	g := decodeJSON[apiDLQGroup](t, r)
	if g.Triage.State != "snoozed" || !g.Triage.SnoozedUntil.Equal(until) || g.Triage.UpdatedBy != "olga" || g.Count != 2 || slices.Contains(g.Tenants, "t2") {
		t.Errorf("PATCH result = %+v", g)
	}
	mustContain(t, "snoozed", admin.get(t, "/dead-letters").body, "snoozed until "+fmtTime(until))
	r = e.bearer(t, tok, http.MethodPatch, api, map[string]any{"state": "sleeping"})
	if er := decodeJSON[delivery.ErrorResponse](t, r); r.status != http.StatusBadRequest || er.Error.Code != delivery.EINVALID {
		t.Errorf("bad PATCH = %d %+v", r.status, er)
	}
	// A group without a t1 entry does not exist for olga.
	r = e.bearer(t, tok, http.MethodPatch, "/api/v1/dlq/groups/"+strconv.FormatInt(declined.GroupID, 10), map[string]any{"state": "resolved"})
	if r.status != http.StatusNotFound {
		t.Errorf("PATCH of a t2 group = %d", r.status)
	}
	// tess (no console:dlq) may not triage, with a session or a token.
	tessTok, err := e.store.IssueToken(ctx, by, "tess", "t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.bearer(t, tessTok, http.MethodPatch, api, map[string]any{"state": "open"}); r.status != http.StatusForbidden {
		t.Errorf("tess PATCH = %d", r.status)
	}
	if r := e.as(t, "tess").post(t, form, url.Values{"state": {"open"}}); r.status != http.StatusForbidden {
		t.Errorf("tess form = %d", r.status)
	}
	recs, _, _ = e.audit.List(ctx, access.AuditFilter{Action: "dlq.triage", Actor: "olga", Outcome: access.OutcomeSuccess})
	if len(recs) != 1 || recs[0].Reason != "after the deploy" || recs[0].Details["state"] != "snoozed" {
		t.Errorf("olga audit = %+v", recs)
	}
}

func TestTotalText(t *testing.T) {
	for _, tc := range []struct {
		n      int
		capped bool
		want   string
	}{
		{0, false, "0"}, {12, false, "12"}, {1234, false, "1,234"}, {10000, true, "10,000+"},
	} {
		if got := totalText(tc.n, tc.capped); got != tc.want {
			t.Errorf("totalText(%d, %v) = %q, want %q", tc.n, tc.capped, got, tc.want)
		}
	}
}
