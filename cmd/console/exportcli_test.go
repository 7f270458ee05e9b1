package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/alerting"
	"switchyard/collector"
	"switchyard/grafana"
	"switchyard/internal/testenv"
)

// `console export …` writes a running console's rule file and dashboards
// through the API with a token, as a GitOps job would; promtool accepts
// the rule file.
func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	m := startDemo(t, dir, io.Discard)
	defer m.Close()
	tok := adminToken(t, dir)
	token := tok
	env := envMap("CONSOLE_URL", m.URL, "CONSOLE_TOKEN", token)
	export := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := run(ctx, append([]string{"export"}, args...), nil, &out, &errOut, env)
		return out.String(), errOut.String(), err
	}

	rule, _ := json.Marshal(map[string]any{"name": "Demo lags", "severity": "warning", "op": ">", "threshold": 1000, "for": "2m",
		"expr":        map[string]any{"metric": collector.MGroupMaxLagSeconds, "matchers": []string{`cluster="demo"`}},
		"annotations": map[string]string{"summary": "{{ $labels.group }} lags {{ $value }}s"}})
	var created alerting.Rule
	testenv.WaitWithin(t, 30*time.Second, "the demo's first samples in the history (to create the rule)", func() bool {
		return postJSON(t, m.URL+"/api/v1/alerts/rules", "Bearer "+token, string(rule), &created) == http.StatusCreated
	})

	file := filepath.Join(t.TempDir(), "rules.yml")
	out, _, err := export("prometheus-rules", "--cluster", "demo", "-o", file)
	if err != nil || !strings.Contains(out, "wrote 1 rules to "+file) {
		t.Fatalf("export -o: %v\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"alert: Demo lags", "for: 2m", "severity: warning", "$labels.group"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("rule file lacks %q:\n%s", want, b)
		}
	}
	if promtool, err := exec.LookPath("promtool"); err != nil {
		testenv.Missing(t, "promtool (Debian package prometheus)")
	} else if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules refuses the exported file: %v\n%s\n%s", err, out, b)
	}
	// To stdout, the file is what the API downloads.
	out, _, err = export("prometheus-rules", "--rule", strconv.FormatInt(created.ID, 10))
	if _, api := getPage(t, m.URL+"/api/v1/export/prometheus-rules?rule="+strconv.FormatInt(created.ID, 10), "Bearer "+token); err != nil || out != api {
		t.Errorf("stdout differs from the API's file: %v\n%s\n--- API:\n%s", err, out, api)
	}
	if out, _, err := export("prometheus-rules", "--cluster", "elsewhere"); err != nil || strings.Contains(out, "Demo lags") {
		t.Errorf("--cluster elsewhere still exports the demo's rule: %v\n%s", err, out)
	}
	out, _, err = export("prometheus-rules", "--json")
	var exp alerting.RuleExport
	if err != nil || json.Unmarshal([]byte(out), &exp) != nil || len(exp.File.Groups) != 1 || exp.File.Groups[0].Rules[0].Alert != "Demo lags" {
		t.Errorf("--json: %v\n%s", err, out)
	}
	if _, _, err := export("prometheus-rules", "--rule", "99999"); err == nil || !strings.Contains(err.Error(), "ENOTFOUND") {
		t.Errorf("a rule that does not exist: %v", err)
	}

	ddir := filepath.Join(t.TempDir(), "dashboards")
	if out, _, err := export("dashboards", "--dir", ddir, "--cluster", "demo"); err != nil {
		t.Fatalf("export dashboards: %v\n%s", err, out)
	}
	ds, err := grafana.Dashboards(grafana.Options{Pins: map[string][]string{"cluster": {"demo"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if got, err := os.ReadFile(filepath.Join(ddir, d.File)); err != nil || !bytes.Equal(got, d.JSON) {
			t.Errorf("%s: not the dashboard pinned to cluster demo (%v)", d.File, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(ddir, "dashboards.yaml")); err != nil || !bytes.Equal(got, grafana.Provisioning()) {
		t.Errorf("dashboards.yaml: not the provisioning file (%v)", err)
	}

	// Refused before any request, naming what is wrong.
	for args, want := range map[string]string{
		"prometheus-rules --rule -1": "--rule wants a rule id",
		"prometheus-rules extra":     "unexpected argument",
		"dashboards":                 "--dir is required",
		"grafana":                    "unknown export command",
	} {
		if _, _, err := export(strings.Fields(args)...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("export %s: %v, want an error saying %q", args, err, want)
		}
	}
	if err := run(context.Background(), []string{"export", "prometheus-rules"}, nil, io.Discard, io.Discard, envMap("CONSOLE_URL", m.URL)); err == nil ||
		!strings.Contains(err.Error(), "export: an API token is required") {
		t.Errorf("without a token: %v", err)
	}
}
