package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// badTimes are times the stores cannot hold: before, they wrapped around
// in Unix nanoseconds and matched every entry (or failed as a 500).
var badTimes = []string{
	"9999-12-31T00:00:00Z", "1000-01-01T00:00:00Z", "2262-04-12T00:00:00Z", "253402300800", "-1", "1e12",
}

// Every time parameter of every endpoint refuses a time out of range, or
// one it cannot read, with a 400 that names the parameter — the API in
// the error contract, the pages on an error page — and still answers a
// time in range.
func TestEveryTimeParameterIsChecked(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.withJobs(t)
	ctx := context.Background()
	tok, err := e.store.CreateToken(ctx, "admin", "times", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	admin := e.as(t, "admin")
	type endpoint struct {
		path, param string
		api         bool
	}
	endpoints := []endpoint{
		{"/api/v1/dlq/entries?", "from", true}, {"/api/v1/dlq/entries?", "to", true},
		{"/api/v1/series?name=switchyard_kafka_topic_messages&", "from", true},
		{"/api/v1/series?name=switchyard_kafka_topic_messages&", "to", true},
		{"/dead-letters/entries?", "from", false}, {"/dead-letters/entries?", "to", false},
		{"/admin/audit?", "since", false}, {"/admin/audit?", "until", false},
		{"/admin/audit/export?", "since", false}, {"/admin/audit/export?", "until", false},
	}
	for _, ep := range endpoints {
		for _, v := range append(slicesOf(badTimes), "yesterday") {
			path := ep.path + ep.param + "=" + url.QueryEscape(v)
			var r response
			if ep.api {
				r = e.bearer(t, tok, http.MethodGet, path, nil)
			} else {
				r = admin.get(t, path)
			}
			if r.status != http.StatusBadRequest || !strings.Contains(r.body, ep.param) {
				t.Errorf("%s: status %d, want 400 naming %q: %.200s", path, r.status, ep.param, r.body)
			}
			if ep.api {
				checkContract(t, path, r)
			}
		}
		// In range, the same parameter works.
		path := ep.path + ep.param + "=" + url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
		var r response
		if ep.api {
			r = e.bearer(t, tok, http.MethodGet, path, nil)
		} else {
			r = admin.get(t, path)
		}
		if r.status != http.StatusOK {
			t.Errorf("%s: status %d, want 200: %.200s", path, r.status, r.body)
		}
	}

	// A job's filter: the report's dry-run discard "from 9999" planned
	// every entry of the index. The plan page's form takes the same.
	for _, field := range []string{"from", "to"} {
		for _, v := range []string{"9999-01-01T00:00:00Z", "1000-01-01T00:00:00Z"} {
			r := e.bearer(t, tok, http.MethodPost, "/api/v1/dlq/jobs", map[string]any{
				"action": "discard", "dry_run": true, "reason": "range test",
				"selector": map[string]any{"filter": map[string]any{field: v}},
			})
			if r.status != http.StatusBadRequest || !strings.Contains(r.body, field) || strings.Contains(r.body, `"plan"`) {
				t.Errorf("dry-run discard with %s %s: status %d, want 400 naming it: %.300s", field, v, r.status, r.body)
			}
			checkContract(t, "job filter "+field, r)
		}
		r := admin.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"discard"}, "selector": {`{"filter":{"` + field + `":"9999-12-31T00:00:00Z"}}`}})
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, field) {
			t.Errorf("plan page with %s in 9999: status %d, want 400 naming it", field, r.status)
		}
	}
	// In range, the dry run plans the entries after the time: fewer than
	// all when from is now.
	var all, recent struct {
		Plan struct {
			Count int `json:"count"`
		} `json:"plan"`
	}
	for dst, from := range map[*struct {
		Plan struct {
			Count int `json:"count"`
		} `json:"plan"`
	}]string{&all: "2000-01-01T00:00:00Z", &recent: time.Now().UTC().Format(time.RFC3339)} {
		r := e.bearer(t, tok, http.MethodPost, "/api/v1/dlq/jobs", map[string]any{
			"action": "discard", "dry_run": true, "selector": map[string]any{"filter": map[string]any{"from": from}},
		})
		if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), dst) != nil {
			t.Fatalf("dry run from %s: %d %.300s", from, r.status, r.body)
		}
	}
	if all.Plan.Count == 0 || recent.Plan.Count >= all.Plan.Count {
		t.Errorf("dry runs: from 2000 plans %d, from now %d; want some, and fewer from now", all.Plan.Count, recent.Plan.Count)
	}
}

func slicesOf(s []string) []string { return append([]string(nil), s...) }
