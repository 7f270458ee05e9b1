package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"switchyard/collector"
	"switchyard/grafana"
	"switchyard/internal/testenv"
)

// TestPrometheusScrapesTheDemoAndRunsItsRules is the export's promise
// kept by a real Prometheus (Debian's): started on a loopback port with
// the console's own exported files — the scrape job of
// /api/v1/export/prometheus-scrape with a scraper's token in its
// credentials file, and the rule file of /api/v1/export/prometheus-rules —
// it scrapes the running demo, every panel query of every generated
// dashboard returns at least one series from it (a query that returns
// nothing is a broken panel), and the exported alert rule fires there.
func TestPrometheusScrapesTheDemoAndRunsItsRules(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		testenv.Missing(t, "prometheus (Debian package prometheus)")
	}
	dir := t.TempDir()
	m := startDemo(t, dir, io.Discard)
	defer m.Close()

	offline := func(env func(string) string, args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), args, nil, &out, io.Discard, env); err != nil {
			t.Fatalf("console %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(out.String())
	}
	admin := "Bearer " + offline(envMap(), "token", "create", "--user", "admin", "--data-dir", dir)
	// The scraper account and token, as the scrape job's comment says.
	offline(envMap("CONSOLE_USER_PASSWORD", "scraper password 123"), "user", "add", "prometheus", "--role", "scraper", "--data-dir", dir)
	scrapeToken := offline(envMap(), "token", "create", "--user", "prometheus", "--name", "prometheus", "--data-dir", dir)

	// A problem the demo has all the time: billing declines some payments,
	// so its failure ratio over a minute is above 0 — the failure-ratio
	// template's rule, with the demo's own threshold.
	sel := func(metric string) map[string]any {
		return map[string]any{"metric": metric, "matchers": []string{`service="billing-service"`}, "func": "rate", "window": "1m",
			"agg": "sum", "by": []string{"service"}}
	}
	rule, _ := json.Marshal(map[string]any{"name": "Demo billing failures", "severity": "warning", "op": ">", "threshold": 0,
		"expr": sel(collector.PromEventFailed), "divide_by": sel(collector.PromEventProcessed)})
	var created struct {
		ID int64 `json:"id"`
	}
	testenv.WaitWithin(t, 30*time.Second, "the demo's first samples in the history (to create the rule)", func() bool {
		return postJSON(t, m.URL+"/api/v1/alerts/rules", admin, string(rule), &created) == http.StatusCreated
	})

	pdir := t.TempDir()
	rules := exportGet(t, m.URL+"/api/v1/export/prometheus-rules?rule="+fmt.Sprint(created.ID), admin)
	if !strings.Contains(rules, "alert: Demo billing failures") {
		t.Fatalf("the exported rule file lacks the rule:\n%s", rules)
	}
	rulesFile := filepath.Join(pdir, "switchyard-rules.yml")
	tokenFile := filepath.Join(pdir, "switchyard.token")
	writeFile(t, rulesFile, rules)
	writeFile(t, tokenFile, scrapeToken)

	// The exported scrape job, as a user would adapt it: the token file's
	// path, and scrapes every second so that the test need not wait.
	var cfg map[string]any
	scrape := exportGet(t, m.URL+"/api/v1/export/prometheus-scrape", admin)
	if err := yaml.Unmarshal([]byte(scrape), &cfg); err != nil {
		t.Fatalf("scrape job: %v\n%s", err, scrape)
	}
	jobs, _ := cfg["scrape_configs"].([]any)
	if len(jobs) != 1 {
		t.Fatalf("scrape job:\n%s", scrape)
	}
	job := jobs[0].(map[string]any)
	auth := job["authorization"].(map[string]any)
	if auth["credentials_file"] != "/etc/prometheus/switchyard.token" || strings.Contains(scrape, scrapeToken) {
		t.Fatalf("the scrape job must read the token from a file and never hold it:\n%s", scrape)
	}
	auth["credentials_file"] = tokenFile
	job["scrape_interval"] = "1s"
	cfg["global"] = map[string]any{"evaluation_interval": "1s", "scrape_interval": "1s"}
	cfg["rule_files"] = []string{rulesFile}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(pdir, "prometheus.yml")
	writeFile(t, configFile, string(b))

	prom := startPrometheus(t, bin, configFile, filepath.Join(pdir, "data"))

	// The scrape succeeds with the scraper's token.
	testenv.WaitWithin(t, 30*time.Second, "Prometheus to scrape the console (up == 1)", func() bool {
		n, _ := promQuery(t, prom, `up{job="switchyard"} == 1`)
		return n > 0
	})

	// Every panel of every dashboard has data.
	ds, err := grafana.Dashboards(grafana.Options{})
	if err != nil {
		t.Fatal(err)
	}
	type panelQuery struct{ dashboard, expr string }
	var pending []panelQuery
	for _, d := range ds {
		qs, err := grafana.PanelQueries(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) == 0 {
			t.Errorf("dashboard %s has no panel queries", d.UID)
		}
		for _, q := range qs {
			pending = append(pending, panelQuery{d.UID, q})
		}
	}
	total := len(pending)
	deadline := time.Now().Add(90 * time.Second)
	testenv.WaitWithin(t, 95*time.Second, "every panel query to return a series", func() bool {
		pending = slices.DeleteFunc(pending, func(q panelQuery) bool {
			n, err := promQuery(t, prom, q.expr)
			if err != nil {
				t.Errorf("dashboard %s: %v", q.dashboard, err) // a query Prometheus refuses never gets better
				return true
			}
			return n > 0
		})
		if len(pending) > 0 && time.Now().After(deadline) {
			for _, q := range pending {
				t.Errorf("broken panel: dashboard %s: no series for %s", q.dashboard, q.expr)
			}
			t.FailNow()
		}
		return len(pending) == 0
	})
	t.Logf("%d panel queries over %d dashboards all return series", total, len(ds))

	// The exported alert fires in Prometheus.
	testenv.WaitWithin(t, 60*time.Second, "the exported alert to fire in Prometheus", func() bool {
		var alerts struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if getJSON(t, prom+"/api/v1/alerts", "", &alerts) != http.StatusOK {
			return false
		}
		for _, a := range alerts.Data.Alerts {
			if a.Labels["alertname"] == "Demo billing failures" && a.Labels["service"] == "billing-service" && a.State == "firing" {
				return true
			}
		}
		return false
	})
}

// exportGet downloads an export with a token.
func exportGet(t *testing.T, u, auth string) string {
	t.Helper()
	code, body := getPage(t, u, auth)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d\n%s", u, code, body)
	}
	return body
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startPrometheus runs the real Prometheus on a free loopback port and
// returns its base URL once ready (testenv.Server).
func startPrometheus(t *testing.T, bin, config, data string) string {
	t.Helper()
	addr := testenv.FreeAddr(t)
	return testenv.Server(t, "prometheus", bin, addr,
		"--config.file="+config, "--storage.tsdb.path="+data, "--web.listen-address="+addr, "--log.level=warn")
}

// promQuery runs an instant query and returns how many series it gave;
// an error when Prometheus refuses the query.
func promQuery(t *testing.T, base, q string) (int, error) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		t.Fatalf("query prometheus: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, fmt.Errorf("query %s: %v in %s", q, err, body)
	}
	if out.Status != "success" {
		return 0, fmt.Errorf("query %s refused: %s", q, out.Error)
	}
	if out.Data.ResultType == "scalar" {
		return 1, nil
	}
	return len(out.Data.Result), nil
}
