package grafana

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/internal/testenv"
)

func mustDashboards(t *testing.T, o Options) []Dashboard {
	t.Helper()
	ds, err := Dashboards(o)
	if err != nil {
		t.Fatalf("Dashboards: %v", err)
	}
	return ds
}

// The committed JSON and provisioning file are what the generator writes.
func TestCommittedFilesMatchGenerator(t *testing.T) {
	want := map[string][]byte{filepath.Join("provisioning", "dashboards.yaml"): Provisioning()}
	for _, d := range mustDashboards(t, Options{}) {
		want[filepath.Join("dashboards", d.File)] = d.JSON
	}
	for path, w := range want {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v: run go generate ./grafana", path, err)
			continue
		}
		if !bytes.Equal(got, w) {
			t.Errorf("%s differs from the generator's output: run go generate ./grafana", path)
		}
	}
	files, _ := filepath.Glob(filepath.Join("dashboards", "*.json"))
	if len(files) != 5 {
		t.Errorf("grafana/dashboards holds %d JSON files, want the 5 generated: %v", len(files), files)
	}
	again := mustDashboards(t, Options{})
	for i, d := range mustDashboards(t, Options{}) {
		if !bytes.Equal(d.JSON, again[i].JSON) {
			t.Errorf("%s: two runs gave different bytes", d.UID)
		}
	}
}

// Every dashboard decodes into the SDK's type, with panels whose targets are
// Prometheus queries on the datasource variable and whose unit is set.
func TestDashboardsDecodeIntoSDK(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	wantUIDs := []string{uidOverview, uidConsumerGroups, uidDeadLetters, uidServices, uidRabbitMQ}
	ds := mustDashboards(t, Options{})
	if len(ds) != len(wantUIDs) {
		t.Fatalf("got %d dashboards, want %d", len(ds), len(wantUIDs))
	}
	for i, d := range ds {
		t.Run(d.UID, func(t *testing.T) {
			if d.UID != wantUIDs[i] {
				t.Errorf("dashboard %d is %s, want %s", i, d.UID, wantUIDs[i])
			}
			var got dashboard.Dashboard
			if err := json.Unmarshal(d.JSON, &got); err != nil {
				t.Fatalf("decode into dashboard.Dashboard: %v", err)
			}
			if got.Uid == nil || *got.Uid != d.UID || got.Title == nil || *got.Title != d.Title {
				t.Errorf("uid/title = %v/%v, want %s/%s", got.Uid, got.Title, d.UID, d.Title)
			}
			vars := map[string]string{}
			for _, v := range got.Templating.List {
				vars[v.Name] = string(v.Type)
			}
			if vars["datasource"] != "datasource" || vars["console_url"] == "" {
				t.Errorf("variables %v: want a datasource variable and console_url", vars)
			}
			if len(got.Panels) < 3 {
				t.Fatalf("%d panels, want at least 3", len(got.Panels))
			}
			for _, pr := range got.Panels {
				p := pr.Panel
				if p == nil {
					continue
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no targets", *p.Title)
				}
				for _, tg := range p.Targets {
					q, ok := tg.(*prometheus.Dataquery)
					if !ok {
						t.Errorf("panel %q: target %T, want a Prometheus query", *p.Title, tg)
						continue
					}
					if q.Datasource == nil || q.Datasource.Uid == nil || *q.Datasource.Uid != "${datasource}" {
						t.Errorf("panel %q: target not on the datasource variable", *p.Title)
					}
				}
				if p.FieldConfig == nil || p.FieldConfig.Defaults.Unit == nil || *p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("panel %q has no unit", *p.Title)
				}
			}
		})
	}
}

// readmeMetrics parses README.md's "Metrics on /metrics" table: metric →
// labels. It is the contract of what the console serves.
func readmeMetrics(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "### Metrics on `/metrics`")
	end := strings.Index(s, "### Scraping `/metrics`")
	if start < 0 || end < start {
		t.Fatal(`README.md has no "Metrics on /metrics" section`)
	}
	sec := s[start:end]
	row := regexp.MustCompile("(?m)^\\| `(\\w+)` \\| ([^|]*) \\|")
	out := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(sec, -1) {
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSpace(l); l != "" && l != "—" {
				labels = append(labels, l)
			}
		}
		out[m[1]] = labels
	}
	if len(out) < 20 {
		t.Fatalf("parsed %d metrics from README's table; the parser is broken", len(out))
	}
	// The services' metrics are prose in that section, with their labels.
	svc := append(append([]string{}, collector.ServiceLabelNames...), "le")
	for _, n := range []string{collector.PromEventProcessed, collector.PromEventFailed, collector.PromEventDuration} {
		if !strings.Contains(sec, "`"+n+"`") {
			t.Fatalf("README's /metrics section does not name %s", n)
		}
		out[n] = svc
	}
	return out
}

var (
	quoted   = regexp.MustCompile(`"[^"]*"`)
	ranges   = regexp.MustCompile(`\[[^\]]*\]`)
	grouping = regexp.MustCompile(`\b(by|without)\s*\(([^)]*)\)`)
	selector = regexp.MustCompile(`([a-zA-Z_:][\w:]*)\{([^}]*)\}`)
	ident    = regexp.MustCompile(`[a-zA-Z_:][\w:]*`)
	matcher  = regexp.MustCompile(`(\w+)\s*=~`)
)

// metricsOf returns the metric names an expression reads and the labels it
// matches per metric (from its selectors).
func metricsOf(expr string) (names []string, matched map[string][]string) {
	matched = map[string][]string{}
	e := quoted.ReplaceAllString(expr, `""`)
	for _, m := range selector.FindAllStringSubmatch(e, -1) {
		for _, l := range matcher.FindAllStringSubmatch(m[2], -1) {
			matched[m[1]] = append(matched[m[1]], l[1])
		}
	}
	e = selector.ReplaceAllString(e, "$1")
	e = ranges.ReplaceAllString(e, "")
	e = grouping.ReplaceAllString(e, "")
	for _, loc := range ident.FindAllStringIndex(e, -1) {
		w := e[loc[0]:loc[1]]
		if rest := strings.TrimSpace(e[loc[1]:]); strings.HasPrefix(rest, "(") {
			continue // a function
		}
		switch w {
		case "or", "and", "unless", "on", "ignoring", "bool":
			continue
		}
		names = append(names, w)
	}
	return names, matched
}

// Every panel query reads only series the console serves on /metrics
// (README's table, the allow list), with labels those series carry, and
// every grouping uses such labels too.
func TestPanelsUseOnlyMetricsOnMetrics(t *testing.T) {
	allowed := readmeMetrics(t)
	for _, d := range mustDashboards(t, Options{}) {
		qs, err := PanelQueries(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) < 4 {
			t.Errorf("%s: %d queries, want at least 4", d.UID, len(qs))
		}
		for _, q := range qs {
			names, matched := metricsOf(q)
			if len(names) == 0 {
				t.Errorf("%s: query reads no metric: %s", d.UID, q)
			}
			for _, n := range names {
				base := n
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if _, ok := allowed[n]; !ok && strings.HasSuffix(n, suf) {
						base = strings.TrimSuffix(n, suf)
					}
				}
				labels, ok := allowed[base]
				if !ok {
					t.Errorf("%s: %s is not served on /metrics (README's table): %s", d.UID, n, q)
					continue
				}
				for _, l := range matched[n] {
					if !contains(labels, l) {
						t.Errorf("%s: %s has no label %q on /metrics (labels %v): %s", d.UID, n, l, labels, q)
					}
				}
			}
		}
	}
}

// metricsOf itself: a test that cannot see a bad name proves nothing.
func TestMetricsOfFindsNames(t *testing.T) {
	names, matched := metricsOf(`(sum(rate(event_failed_total{tenant=~"$tenant"}[5m])) or vector(0)) / sum by (le, service) (switchyard_dlq_entries{tenant=~".*"})`)
	if strings.Join(names, ",") != "event_failed_total,switchyard_dlq_entries" {
		t.Errorf("names = %v", names)
	}
	if !contains(matched["switchyard_dlq_entries"], "tenant") {
		t.Errorf("matched = %v", matched)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

type variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Query      any    `json:"query"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
	Options    []struct {
		Value string `json:"value"`
	} `json:"options"`
}

func variables(t *testing.T, d Dashboard) map[string]variable {
	t.Helper()
	var doc struct {
		Templating struct{ List []variable } `json:"templating"`
	}
	if err := json.Unmarshal(d.JSON, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]variable{}
	for _, v := range doc.Templating.List {
		out[v.Name] = v
	}
	return out
}

// A pinned variable offers only the pinned values, and the panel queries
// with "All" read only those; an unpinned one stays a label_values query.
func TestPinsRestrictVariables(t *testing.T) {
	ds := mustDashboards(t, Options{
		ConsoleURL: "https://console.example.com/",
		Pins:       map[string][]string{"cluster": {"prod"}, "group": {"orders-svc", "billing"}},
	})
	cg := ds[1]
	if cg.UID != uidConsumerGroups {
		t.Fatalf("dashboard 1 is %s", cg.UID)
	}
	vs := variables(t, cg)
	for name, want := range map[string][]string{"cluster": {"$__all", "prod"}, "group": {"$__all", "billing", "orders-svc"}} {
		v := vs[name]
		var got []string
		for _, o := range v.Options {
			got = append(got, o.Value)
		}
		if v.Type != "custom" || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: type %s offers %v, want custom offering %v", name, v.Type, got, want)
		}
	}
	if vs["topic"].Type != "query" || vs["topic"].AllValue != ".*" {
		t.Errorf("topic = %+v, want an unpinned label_values query", vs["topic"])
	}
	if v := vs["console_url"]; v.Type != "constant" || v.Query != "https://console.example.com" {
		t.Errorf("console_url = %+v, want the constant https://console.example.com", v)
	}
	qs, err := PanelQueries(cg)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if !strings.Contains(q, `cluster=~"(prod)"`) || !strings.Contains(q, `group=~"(billing|orders-svc)"`) {
			t.Errorf("query not restricted to the pins: %s", q)
		}
	}
	// Unpinned, the same dashboard reads every value.
	free := variables(t, mustDashboards(t, Options{})[1])
	if free["cluster"].Type != "query" || free["console_url"].Type != "textbox" {
		t.Errorf("unpinned: cluster %s, console_url %s; want query and textbox", free["cluster"].Type, free["console_url"].Type)
	}
}

func TestBadOptionsAreRefusedPerField(t *testing.T) {
	_, err := Dashboards(Options{
		ConsoleURL: "console.example.com",
		Pins:       map[string][]string{"colour": {"red"}, "tenant": {"a,b"}, "group": {" "}},
	})
	if delivery.ErrorCode(err) != delivery.EINVALID {
		t.Fatalf("err = %v, want EINVALID", err)
	}
	var de *delivery.Error
	if !errors.As(err, &de) {
		t.Fatalf("err %T is not a *delivery.Error", err)
	}
	fields, _ := de.Details["fields"].(map[string]string)
	for _, f := range []string{"console_url", "pins.colour", "pins.tenant", "pins.group"} {
		if fields[f] == "" {
			t.Errorf("no reason for %s in %v", f, fields)
		}
	}
}

// Every panel query, variables substituted, is PromQL that Prometheus's own
// parser accepts: promtool checks them as recording rules.
func TestPanelQueriesParseInPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool (Debian package prometheus)")
		return
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: panels\n    rules:\n")
	n := 0
	for _, d := range mustDashboards(t, Options{Pins: map[string][]string{"tenant": {"t1", "t.2"}}}) {
		qs, err := PanelQueries(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			n++
			js, _ := json.Marshal(q) // a JSON string is a YAML double-quoted scalar
			fmt.Fprintf(&b, "      - record: panel:q%d\n        expr: %s\n", n, js)
		}
	}
	path := filepath.Join(t.TempDir(), "panels.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on %d panel queries: %v\n%s", n, err, out)
	}
}
