package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"switchyard/dlqstore"
	"switchyard/internal/testenv"
	"switchyard/redrive"
)

// `console dlq …` plans, starts, watches and lists jobs through the API
// with a token, as automation would.
func TestDLQCommandDrivesJobsThroughTheAPI(t *testing.T) {
	dir := t.TempDir()
	m := startDemo(t, dir, io.Discard)
	defer m.Close()
	tok := adminToken(t, dir)
	token := tok
	env := envMap("CONSOLE_URL", m.URL, "CONSOLE_TOKEN", token)
	dlq := func(args ...string) (string, error) {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		err := run(ctx, append([]string{"dlq"}, args...), nil, &out, io.Discard, env)
		return out.String(), err
	}

	// Wait for the demo's dead letters to be indexed.
	var entries struct {
		Entries []struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		} `json:"entries"`
	}
	testenv.WaitWithin(t, 60*time.Second, "3 dead letters indexed", func() bool {
		getJSON(t, m.URL+"/api/v1/dlq/entries?status=dead&destination=orders.order.created.v1.dlq", "Bearer "+token, &entries)
		return len(entries.Entries) >= 3
	})

	out, err := dlq("redrive", "--filter", "status=dead&destination=orders.order.created.v1.dlq", "--dry-run")
	if err != nil || !strings.Contains(out, "redrive would act on") || !strings.Contains(out, "kafka:demo/orders.order.created.v1") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if _, err := dlq("discard", "--ids", fmt.Sprint(entries.Entries[0].ID)); err == nil || !strings.Contains(err.Error(), "EINVALID") || !strings.Contains(err.Error(), "reason") {
		t.Errorf("discard without a reason: %v", err)
	}
	if _, err := dlq("redrive", "--ids", "1", "--group", "2"); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Errorf("two selectors: %v", err)
	}
	ids := fmt.Sprintf("%d,%d", entries.Entries[0].ID, entries.Entries[1].ID)
	out, err = dlq("discard", "--ids", ids, "--reason", "test orders from the demo", "--wait")
	if err != nil || !strings.Contains(out, "completed") || !strings.Contains(out, "2 of 2 done") {
		t.Fatalf("discard --wait: %v\n%s", err, out)
	}
	var e struct {
		Status string `json:"status"`
	}
	if code := getJSON(t, fmt.Sprintf("%s/api/v1/dlq/entries/%d", m.URL, entries.Entries[0].ID), "Bearer "+token, &e); code != http.StatusOK || e.Status != "discarded" {
		t.Errorf("entry after discard: %d %q", code, e.Status)
	}
	out, err = dlq("redrive", "--ids", fmt.Sprint(entries.Entries[2].ID), "--reason", "billing fixed", "--rate", "100", "--wait", "--json")
	if err != nil {
		t.Fatalf("redrive --wait: %v\n%s", err, out)
	}
	var j redrive.Job
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &j); err != nil || j.State != dlqstore.JobCompleted || j.Done != 1 {
		t.Errorf("redrive job = %+v, %v", j, err)
	}
	out, err = dlq("jobs")
	if err != nil || !strings.Contains(out, "discard") || !strings.Contains(out, "redrive") || !strings.Contains(out, "test orders from the demo") {
		t.Errorf("jobs: %v\n%s", err, out)
	}
	if out, err := dlq("job", fmt.Sprint(j.ID)); err != nil || !strings.Contains(out, fmt.Sprintf("job %d: redrive completed by admin", j.ID)) {
		t.Errorf("job: %v\n%s", err, out)
	}
	if _, err := dlq("cancel", fmt.Sprint(j.ID)); err == nil || !strings.Contains(err.Error(), "already ended") {
		t.Errorf("cancel of an ended job: %v", err)
	}
	if err := run(context.Background(), []string{"dlq", "jobs"}, nil, io.Discard, io.Discard, envMap("CONSOLE_URL", m.URL)); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("without a token: %v", err)
	}
}

// --filter times out of the stores' range are refused by the CLI itself,
// naming the field, before any request: "from 9999" once planned every
// entry of the index.
func TestDLQFilterTimesOutOfRange(t *testing.T) {
	for _, tc := range []struct{ filter, field string }{
		{"from=9999-01-01T00:00:00Z", "from"},
		{"to=1000-01-01T00:00:00Z", "to"},
		{"status=dead&from=2262-05-01T00:00:00Z", "from"},
		{"from=tomorrow", "from"},
	} {
		_, err := parseSelector("", 0, tc.filter)
		if err == nil || !strings.Contains(err.Error(), "--filter "+tc.field) {
			t.Errorf("--filter %s: err = %v, want one naming %s", tc.filter, err, tc.field)
		}
	}
	sel, err := parseSelector("", 0, "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z")
	if err != nil || sel.Filter == nil || sel.Filter.From.IsZero() || sel.Filter.To.IsZero() {
		t.Errorf("times in range: %+v, %v", sel.Filter, err)
	}
}
