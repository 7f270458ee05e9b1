package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/access"
	"switchyard/delivery"
)

// seedBrowsedTopic creates a topic of three partitions in the env's kfake
// cluster holding records n = 0…29, n in partition n%3 at offset n/3,
// produced a second apart from base (an hour ago, whole seconds): key
// "key-NN", value {"n":N,"note":…} ("refund asked" for every fifth) and a
// header kind (even/odd). The poller is refreshed so the topic's pages
// know it.
func seedBrowsedTopic(t *testing.T, e *env) (topic string, base time.Time) {
	t.Helper()
	ctx := context.Background()
	topic = fmt.Sprintf("browsed.records.%d", time.Now().UnixNano())
	base = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	if _, err := kadm.NewClient(e.kafka).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for n := range 30 {
		note, kind := "plain", "even"
		if n%5 == 0 {
			note = "refund asked"
		}
		if n%2 == 1 {
			kind = "odd"
		}
		recs = append(recs, &kgo.Record{
			Topic: topic, Partition: int32(n % 3), Timestamp: base.Add(time.Duration(n) * time.Second),
			Key: fmt.Appendf(nil, "key-%02d", n), Value: fmt.Appendf(nil, `{"n":%d,"note":%q}`, n, note),
			Headers: []kgo.RecordHeader{{Key: "kind", Value: []byte(kind)}},
		})
	}
	if err := e.kafka.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := e.poller.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return topic, base
}

// TestMessageBrowserRefusesBadParameters: every parameter of the message
// browser is checked, and a bad one is a 400 naming it — on the page
// (which keeps the form to fix it and shows no messages) and in the API
// (the platform's error contract) — never a 500 nor a page read from
// somewhere else than asked.
func TestMessageBrowserRefusesBadParameters(t *testing.T) {
	e := newEnv(t, envOptions{})
	topic, _ := seedBrowsedTopic(t, e)
	page := "/topics/demo/" + topic + "/messages?"
	api := "/api/v1/topics/demo/" + topic + "/messages?"
	for _, tc := range []struct{ query, names string }{
		{"offset=abc", "offset"},
		{"offset=-1", "offset"},
		{"offset=1.5", "offset"},
		{"partition=0&offset=11", "offset 11 is past the end of partition 0"},
		{"timestamp=yesterday", "timestamp"},
		{"timestamp=9999-01-01T00:00:00", "timestamp"},
		{"offset=3&timestamp=2026-03-01T12:00:00", "not both"},
		{"partition=x", "partition"},
		{"partition=-2", "partition"},
		{"partition=99999999999", "partition"},
		{"limit=0", "limit"},
		{"limit=501", "limit"},
		{"limit=ten", "limit"},
		{"seek=sideways", "seek"},
		{"seek=offset", "offset"},
		{"seek=timestamp", "timestamp"},
		{"seek=newest&offset=3", "newest"},
		{"cursor=abc", "cursor"},
		{"cursor=before%3A", "cursor"},
		{"cursor=from%3A0%40-3", "cursor"},
		{"cursor=from%3A0%403%2C0%404", "cursor"},
		{"cursor=from%3A1%400&partition=0", "cursor"},
		{"cursor=from%3A0%400&offset=3", "cursor"},
		{"cursor=from%3A0%400&seek=oldest", "cursor"},
		{"key=a%00b", "key"},
		{"value=" + strings.Repeat("x", 501), "value"},
		{"header=" + strings.Repeat("h", 501), "header"},
		{"q=a%01b", "q"},
	} {
		t.Run(tc.query[:min(len(tc.query), 40)], func(t *testing.T) {
			r := e.admin(t, page+tc.query)
			if r.status != http.StatusBadRequest {
				t.Fatalf("page = %d, want 400\n%s", r.status, r.body)
			}
			if !strings.Contains(tc.query, "%0") {
				// (Control characters are refused for every route by
				// checkQuery, before the browser's handler.)
				mustContain(t, "page", r.body, `data-testid="messages-error"`, `data-testid="messages-filter"`)
			}
			if !strings.Contains(r.body, tc.names) && !strings.Contains(r.body, strings.ReplaceAll(tc.names, " ", "&#32;")) {
				t.Errorf("page error does not name %q", tc.names)
			}
			if n := len(messageTenants(r.body)); n != 0 {
				t.Errorf("a refused page shows %d messages", n)
			}
			r = e.admin(t, api+tc.query)
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != http.StatusBadRequest ||
				body.Error.Code != delivery.EINVALID || !strings.Contains(body.Error.Message, tc.names) {
				t.Errorf("API = %d %s, want 400 EINVALID naming %q", r.status, r.body, tc.names)
			}
		})
	}
	// A partition the topic does not have is not found, not a bad request.
	if r := e.admin(t, api+"partition=7"); r.status != http.StatusNotFound {
		t.Errorf("partition 7 = %d, want 404", r.status)
	}
}

// TestMessageBrowserAPIPagesAndAudits: the API pages through a topic with
// the cursors it returns, seeks by offset and time, filters, and every
// read is audited with where it started and which filters it used (not
// their text).
func TestMessageBrowserAPIPagesAndAudits(t *testing.T) {
	e := newEnv(t, envOptions{})
	topic, base := seedBrowsedTopic(t, e)
	api := "/api/v1/topics/demo/" + topic + "/messages?"
	read := func(q url.Values) (ns []int, resp messagesResponse) {
		t.Helper()
		r := e.admin(t, api+q.Encode())
		if r.status != http.StatusOK {
			t.Fatalf("%s = %d %s", q.Encode(), r.status, r.body)
		}
		if err := json.Unmarshal([]byte(r.body), &resp); err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Messages []struct {
				Value struct{ N int } `json:"value"`
			} `json:"messages"`
		}
		if err := json.Unmarshal([]byte(r.body), &raw); err != nil {
			t.Fatal(err)
		}
		for _, m := range raw.Messages {
			ns = append(ns, m.Value.N)
		}
		return ns, resp
	}
	same := func(what string, got []int, want ...int) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	ns, first := read(url.Values{"limit": {"4"}})
	same("newest", ns, 29, 28, 27, 26)
	if first.Order != "newest_first" || first.NewerCursor != "" || first.OlderCursor == "" {
		t.Errorf("newest page: order %s, newer %q, older %q", first.Order, first.NewerCursor, first.OlderCursor)
	}
	ns, older := read(url.Values{"limit": {"4"}, "cursor": {first.OlderCursor}})
	same("older", ns, 25, 24, 23, 22)
	ns, _ = read(url.Values{"limit": {"4"}, "cursor": {older.NewerCursor}})
	same("newer again", ns, 26, 27, 28, 29)
	ns, _ = read(url.Values{"limit": {"3"}, "partition": {"1"}, "offset": {"3"}})
	same("partition 1 from offset 3", ns, 10, 13, 16)
	ns, _ = read(url.Values{"limit": {"3"}, "timestamp": {base.Add(18 * time.Second).Format(time.RFC3339)}})
	same("from a time", ns, 18, 19, 20)
	ns, _ = read(url.Values{"limit": {"3"}, "value": {"REFUND"}, "header": {"kind=odd"}})
	same("filtered", ns, 25, 15, 5)
	ns, _ = read(url.Values{"limit": {"2"}, "key": {"key-0"}, "seek": {"oldest"}})
	same("key from the oldest", ns, 0, 1)

	recs, _, err := e.audit.List(context.Background(), access.AuditFilter{Action: "payload.read", Actor: "admin"})
	if err != nil || len(recs) != 7 {
		t.Fatalf("payload.read records = %d, %v; want 7", len(recs), err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		b, _ := json.Marshal(r.Details)
		seen[string(b)] = true
		if strings.Contains(string(b), "REFUND") || strings.Contains(string(b), "key-0") {
			t.Errorf("an audit record holds a filter's text: %s", b)
		}
	}
	for _, want := range []string{`"seek":"offset 3"`, `"seek":"` + first.OlderCursor + `"`, `"filters":["value","header"]`, `"seek":"timestamp `} {
		found := false
		for s := range seen {
			found = found || strings.Contains(s, want)
		}
		if !found {
			t.Errorf("no payload.read record with %s in %v", want, seen)
		}
	}
}
