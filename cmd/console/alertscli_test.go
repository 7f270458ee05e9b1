package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/alerting"
	"switchyard/collector"
	"switchyard/internal/testenv"
)

// `console alerts …` lists the alerts of a running console and silences
// them through the API with a token, as an on-call script would.
func TestAlertsCommandListsAndSilences(t *testing.T) {
	dir := t.TempDir()
	m := startDemo(t, dir, io.Discard)
	defer m.Close()
	tok := adminToken(t, dir)
	token := tok
	env := envMap("CONSOLE_URL", m.URL, "CONSOLE_TOKEN", token)
	alerts := func(args ...string) (string, error) {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := run(ctx, append([]string{"alerts"}, args...), nil, &out, io.Discard, env)
		return out.String(), err
	}

	// A rule that holds as long as the demo's cluster is up fires at the
	// evaluator's next cycle.
	rule, _ := json.Marshal(map[string]any{"name": "Demo is up", "severity": "info", "op": "==", "threshold": 1,
		"expr": map[string]any{"metric": collector.MKafkaUp, "matchers": []string{`cluster="demo"`}}})
	testenv.WaitWithin(t, 30*time.Second, "the demo's first samples in the history", func() bool {
		return postJSON(t, m.URL+"/api/v1/alerts/rules", "Bearer "+token, string(rule), nil) == http.StatusCreated
	})
	var out string
	testenv.WaitWithin(t, 45*time.Second, "the rule to fire", func() bool {
		var err error
		out, err = alerts("list", "--state", "firing")
		return err == nil && strings.Contains(out, "Demo is up")
	})
	for _, want := range []string{"SEVERITY", "RULE", "LABELS", "STATE", "SINCE", "info", `cluster="demo"`, "firing", " ago (", "1 firing, 0 pending, 0 silenced"} {
		if !strings.Contains(out, want) {
			t.Errorf("alerts list lacks %q:\n%s", want, out)
		}
	}

	out, err := alerts("silence", "--match", `alertname="Demo is up"`, "--match", `cluster="demo"`, "--for", "2h", "--comment", "maintenance")
	if err != nil {
		t.Fatalf("silence: %v\n%s", err, out)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil || id <= 0 {
		t.Fatalf("silence printed %q, want its id", out)
	}
	out, err = alerts("list", "--state", "silenced")
	if err != nil || !strings.Contains(out, "silenced by #"+strconv.FormatInt(id, 10)) || !strings.Contains(out, "0 firing, 0 pending, 1 silenced") {
		t.Errorf("silenced list: %v\n%s", err, out)
	}
	out, err = alerts("list", "--json")
	var page alerting.AlertPage
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || page.Total != 1 || len(page.Alerts[0].Silenced) != 1 {
		t.Errorf("list --json: %v %+v\n%s", err, page, out)
	}

	if out, err := alerts("silence", "--expire", strconv.FormatInt(id, 10)); err != nil || !strings.Contains(out, "expired") {
		t.Errorf("expire: %v\n%s", err, out)
	}
	if _, err := alerts("silence", "--expire", strconv.FormatInt(id, 10)); err == nil || !strings.Contains(err.Error(), "ECONFLICT") {
		t.Errorf("expiring twice: %v", err)
	}
	if out, err := alerts("list", "--state", "firing"); err != nil || !strings.Contains(out, "Demo is up") {
		t.Errorf("after expiry the alert fires again: %v\n%s", err, out)
	}

	// Refused before any request, naming what is wrong.
	for args, want := range map[string]string{
		"silence --for 2h --comment x":              "--match is required",
		`silence --match alertname~"x" --for 2h`:    "-match",
		`silence --match alertname="x" --comment x`: "--for",
		`silence --match alertname="x" --for 2h`:    "--comment",
		`silence --expire 3 --comment x`:            "--expire takes no",
		"list --state burning":                      "firing, pending or silenced",
		"mute":                                      "unknown alerts command",
	} {
		if _, err := alerts(strings.Fields(args)...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("alerts %s: %v, want an error saying %q", args, err, want)
		}
	}
	if err := run(context.Background(), []string{"alerts", "list"}, nil, io.Discard, io.Discard, envMap("CONSOLE_URL", m.URL)); err == nil ||
		!strings.Contains(err.Error(), "alerts: an API token is required") {
		t.Errorf("without a token: %v", err)
	}
}
