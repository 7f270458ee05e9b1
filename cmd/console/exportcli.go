package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"switchyard/alerting"
)

const exportUsage = `usage: console export <command> [flags]

commands:
  prometheus-rules [--cluster C] [--group G] [--tenant T] [--rule ID] [-o FILE]
                        your alert rules as a Prometheus rule file (stdout, or FILE); the rules
                        that cannot be expressed over /metrics are listed with the reason
  dashboards --dir DIR [--cluster C] [--group G] [--tenant T] [--console-url URL]
                        the Grafana dashboards and their provisioning file, written into DIR

Every command calls the console's API: --url (CONSOLE_URL, default http://127.0.0.1:8080)
with a token from --token or CONSOLE_TOKEN (console token create --user NAME) of a user
who may export. --json prints the API's JSON instead (prometheus-rules).`

// runExport is `console export …`: the export API with a token, as
// `console alerts` does (the same flags and client).
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageError{exportUsage}
	}
	switch cmd := args[0]; cmd {
	case "prometheus-rules":
		return runExportRules(ctx, args[1:], stdout, stderr, getenv)
	case "dashboards":
		return runExportDashboards(ctx, args[1:], stdout, getenv)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, exportUsage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown export command %q\n%s", cmd, exportUsage)}
	}
}

// pinFlags are the values a download pins.
type pinFlags struct{ cluster, group, tenant *string }

func newPinFlags(f dlqFlags, what string) pinFlags {
	return pinFlags{
		cluster: f.fs.String("cluster", "", what+" this cluster"),
		group:   f.fs.String("group", "", what+" this consumer group"),
		tenant:  f.fs.String("tenant", "", what+" this tenant"),
	}
}

func (p pinFlags) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"cluster": *p.cluster, "group": *p.group, "tenant": *p.tenant} {
		if v = strings.TrimSpace(v); v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func runExportRules(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	f := newDLQFlags("prometheus-rules", getenv)
	pins := newPinFlags(f, "only rules that select")
	rule := f.fs.Int64("rule", 0, "only the rule of this id")
	out := f.fs.String("o", "", "write the file here instead of stdout")
	if err := f.fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("export prometheus-rules: %v\n%s", err, exportUsage)}
	}
	if f.fs.NArg() > 0 {
		return usageError{fmt.Sprintf("export prometheus-rules: unexpected argument %q", f.fs.Arg(0))}
	}
	if *rule < 0 {
		return usageError{"export prometheus-rules: --rule wants a rule id"}
	}
	c, err := commandClient("export", f)
	if err != nil {
		return err
	}
	q := pins.query()
	if *rule > 0 {
		q.Set("rule", strconv.FormatInt(*rule, 10))
	}
	q.Set("format", "json")
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/export/prometheus-rules?"+q.Encode(), nil, &raw); err != nil {
		return err
	}
	var exp alerting.RuleExport
	if err := json.Unmarshal(raw, &exp); err != nil {
		return fmt.Errorf("the console's export: %w", err)
	}
	body := []byte(raw)
	if !*f.jsonOut {
		if body, err = exp.YAML(); err != nil {
			return err
		}
	}
	n := 0
	for _, g := range exp.File.Groups {
		n += len(g.Rules)
	}
	// The notes go to stderr when the file goes to stdout, so that
	// `> rules.yml` keeps a clean file.
	notes := stderr
	if *out == "" {
		if _, err := stdout.Write(body); err != nil {
			return err
		}
	} else {
		if err := os.WriteFile(*out, body, 0o644); err != nil {
			return fmt.Errorf("export prometheus-rules: %w", err)
		}
		notes = stdout
		fmt.Fprintf(notes, "wrote %d rules to %s\n", n, *out)
	}
	for _, u := range exp.Unexportable {
		fmt.Fprintf(notes, "not exported: rule %d %q: %s\n", u.RuleID, u.Name, u.Reason)
	}
	return nil
}

func runExportDashboards(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	f := newDLQFlags("dashboards", getenv)
	pins := newPinFlags(f, "pin the dashboards' variable to")
	consoleURL := f.fs.String("console-url", "", "where panel links point (default: a dashboard variable, http://localhost:8080)")
	dir := f.fs.String("dir", "", "the directory to write the dashboards into (created if need be)")
	if err := f.fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("export dashboards: %v\n%s", err, exportUsage)}
	}
	if *dir == "" {
		return usageError{"export dashboards: --dir is required"}
	}
	c, err := commandClient("export", f)
	if err != nil {
		return err
	}
	var list []struct {
		UID   string `json:"uid"`
		Title string `json:"title"`
		File  string `json:"file"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/export/dashboards", nil, &list); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("export dashboards: %w", err)
	}
	q := pins.query()
	if *consoleURL != "" {
		q.Set("console_url", *consoleURL)
	}
	write := func(path, file string) error {
		// The file name comes from the console: keep it inside dir.
		if file != filepath.Base(file) || file == "." || file == ".." {
			return fmt.Errorf("export dashboards: the console named a file %q", file)
		}
		var raw json.RawMessage
		if err := c.do(ctx, http.MethodGet, path, nil, &raw); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*dir, file), raw, 0o644); err != nil {
			return fmt.Errorf("export dashboards: %w", err)
		}
		fmt.Fprintln(stdout, filepath.Join(*dir, file))
		return nil
	}
	for _, d := range list {
		p := "/api/v1/export/dashboards/" + url.PathEscape(d.UID)
		if len(q) > 0 {
			p += "?" + q.Encode()
		}
		if err := write(p, d.File); err != nil {
			return err
		}
	}
	return write("/api/v1/export/dashboards/provisioning", "dashboards.yaml")
}
