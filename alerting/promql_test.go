package alerting

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"switchyard/internal/testenv"
	"switchyard/tsdb"
)

// promqlCases are the shapes a rule can take, with the expression
// Prometheus must read for each.
func promqlCases(t *testing.T) []struct {
	name string
	rule Rule
	want string
} {
	m := func(ss ...string) []tsdb.Matcher {
		var out []tsdb.Matcher
		for _, s := range ss {
			out = append(out, engMatcher(t, s))
		}
		return out
	}
	five := Duration(5 * time.Minute)
	billing := m(`service="billing"`)
	return []struct {
		name string
		rule Rule
		want string
	}{
		{"instant selector", Rule{Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds", Matchers: m(`cluster="demo"`, `group=~"orders.*"`)}, Op: OpGT, Threshold: 60},
			`switchyard_consumer_group_lag_seconds{cluster="demo", group=~"orders.*"} > 60`},
		{"rate", Rule{Expr: Selector{Metric: "event_failed_total", Matchers: billing, Func: FuncRate, Window: five}, Op: OpGE, Threshold: 0.5},
			`rate(event_failed_total{service="billing"}[5m]) >= 0.5`},
		{"increase summed by labels", Rule{Expr: Selector{Metric: "switchyard_dlq_group_entries", Func: FuncIncrease, Window: Duration(90 * time.Minute),
			Agg: AggSum, By: []string{"destination", "broker", "cluster"}}, Op: OpGT, Threshold: 10},
			`sum by (broker, cluster, destination) (increase(switchyard_dlq_group_entries[1h30m])) > 10`},
		{"failure ratio", Rule{Expr: Selector{Metric: "event_failed_total", Matchers: billing, Func: FuncRate, Window: five, Agg: AggSum, By: []string{"cluster", "group"}},
			DivideBy: &Selector{Metric: "event_processed_total", Matchers: billing, Func: FuncRate, Window: five, Agg: AggSum, By: []string{"cluster", "group"}},
			Op:       OpGT, Threshold: 0.05},
			`sum by (cluster, group) (rate(event_failed_total{service="billing"}[5m])) / sum by (cluster, group) (rate(event_processed_total{service="billing"}[5m])) > 0.05`},
		{"p99 from buckets", Rule{Expr: Selector{Metric: "event_processing_duration_seconds", Func: FuncQuantile, Quantile: 0.99, Window: five, Agg: AggSum, By: []string{"service"}},
			Op: OpGT, Threshold: 0.5},
			`histogram_quantile(0.99, sum by (le, service) (rate(event_processing_duration_seconds_bucket[5m]))) > 0.5`},
		{"quantile over everything", Rule{Expr: Selector{Metric: "event_processing_duration_seconds", Matchers: billing, Func: FuncQuantile, Quantile: 0.5, Window: five, Agg: AggSum},
			Op: OpGT, Threshold: 0.25},
			`histogram_quantile(0.5, sum by (le) (rate(event_processing_duration_seconds_bucket{service="billing"}[5m]))) > 0.25`},
		{"and on all labels", Rule{Expr: Selector{Metric: "switchyard_rabbitmq_queue_messages_ready"}, Op: OpGT,
			And: &Condition{Selector: Selector{Metric: "switchyard_rabbitmq_queue_consumers"}, Op: OpEQ}},
			`switchyard_rabbitmq_queue_messages_ready > 0 and switchyard_rabbitmq_queue_consumers == 0`},
		{"and on the aggregation's labels", Rule{Expr: Selector{Metric: "switchyard_rabbitmq_queue_messages_ready", Agg: AggSum, By: []string{"vhost", "queue"}}, Op: OpGT,
			And: &Condition{Selector: Selector{Metric: "switchyard_rabbitmq_queue_consumers", Agg: AggMax, By: []string{"vhost", "queue", "cluster"}}, Op: OpEQ}},
			`sum by (queue, vhost) (switchyard_rabbitmq_queue_messages_ready) > 0 and on (queue, vhost) max by (cluster, queue, vhost) (switchyard_rabbitmq_queue_consumers) == 0`},
		{"and on the condition's labels", Rule{Expr: Selector{Metric: "switchyard_rabbitmq_queue_messages_ready"}, Op: OpGT,
			And: &Condition{Selector: Selector{Metric: "switchyard_rabbitmq_queue_consumers", Agg: AggMax, By: []string{"vhost", "queue"}}, Op: OpEQ}},
			`switchyard_rabbitmq_queue_messages_ready > 0 and on (queue, vhost) max by (queue, vhost) (switchyard_rabbitmq_queue_consumers) == 0`},
		{"and over everything", Rule{Expr: Selector{Metric: "switchyard_redrive_jobs_paused", Agg: AggSum}, Op: OpGT,
			And: &Condition{Selector: Selector{Metric: "switchyard_kafka_up", Agg: AggMin}, Op: OpEQ, Threshold: 1}},
			`sum(switchyard_redrive_jobs_paused) > 0 and on () min(switchyard_kafka_up) == 1`},
		{"count, avg, min", Rule{Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds", Agg: AggCount}, Op: OpLT, Threshold: 3},
			`count(switchyard_consumer_group_lag_seconds) < 3`},
		{"avg with a negative threshold", Rule{Expr: Selector{Metric: "temperature", Agg: AggAvg, By: []string{"room"}}, Op: OpLE, Threshold: -2.5},
			`avg by (room) (temperature) <= -2.5`},
		{"tiny and huge thresholds", Rule{Expr: Selector{Metric: "x", Agg: AggMin}, Op: OpNE, Threshold: 1e-9,
			And: &Condition{Selector: Selector{Metric: "y", Agg: AggMax}, Op: OpLT, Threshold: 2e20}},
			`min(x) != 1e-09 and on () max(y) < 2e+20`},
		{"escaped matcher values", Rule{Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds",
			Matchers: m(`group="we\"ird\\name"`, `topic!~"a\\.b|c"`, `cluster!="ünïcode\n"`)}, Op: OpGT, Threshold: 1},
			`switchyard_consumer_group_lag_seconds{group="we\"ird\\name", topic!~"a\\.b|c", cluster!="ünïcode\n"} > 1`},
		{"a metric name PromQL cannot write bare", Rule{Expr: Selector{Metric: "odd.metric-name", Matchers: m(`a="b"`)}, Op: OpGT},
			`{__name__="odd.metric-name", a="b"} > 0`},
	}
}

func TestPromQL(t *testing.T) {
	for _, tc := range promqlCases(t) {
		if got := PromQL(&tc.rule); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestPromQLParsesInPrometheus runs Prometheus's own parser (promtool check
// rules) over every shape, as alerting rules with for, keep_firing_for,
// labels and annotations.
func TestPromQLParsesInPrometheus(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool (Debian's prometheus package)")
	}
	group := PromRuleGroup{Name: "switchyard"}
	for _, tc := range promqlCases(t) {
		r := tc.rule
		r.Name, r.Severity = "Rule "+tc.name, SeverityWarning
		r.For, r.KeepFiringFor = Duration(5*time.Minute), Duration(time.Minute)
		r.Labels = map[string]string{"team": "payments"}
		r.Annotations = map[string]string{"summary": "{{ $labels.group }} is {{ $value | humanize }}"}
		group.Rules = append(group.Rules, promAlert(&r))
	}
	b, err := json.Marshal(PromRuleFile{Groups: []PromRuleGroup{group}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(context.Background(), promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, out, b)
	}
}

// TestPromQLMatchersMatchInPrometheus: escaped matcher values select in
// Prometheus exactly the series they select here, not merely parse.
func TestPromQLMatchersMatchInPrometheus(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool (Debian's prometheus package)")
	}
	odd := []string{`we"ird\name`, "new\nline", "ünïcode", "a.b", "axb", `back\\slash`}
	var series []engSeries
	for _, g := range odd {
		series = append(series, engSeries{lagLabels("demo", g), []float64{1, 1}})
	}
	h := engHistory(t, series...)
	r := &Rule{Name: "Odd", Severity: SeverityInfo, Op: OpGT, Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds",
		Matchers: []tsdb.Matcher{
			{Label: "group", Op: tsdb.MatchRegexp, Value: `we"ird\\name|new\nline|ünïcode|a\.b|back\\\\slash`},
			{Label: "group", Op: tsdb.MatchNotEqual, Value: "ünïcode"},
		}}}
	res := mustEval(t, h, r, engAt(1))
	active := map[string]*Alert{}
	Apply(r, active, res.Holding, engAt(1))
	exp := []promExpAlert{}
	for _, a := range active {
		exp = append(exp, promExpAlert{ExpLabels: a.Labels})
	}
	if len(exp) != 4 {
		t.Fatalf("our evaluation selects %d groups, want 4 (not ünïcode, not axb): %q", len(exp), sampleText(res.Holding))
	}
	group := promTestGroup{Interval: Duration(engScrape).String(),
		AlertRuleTests: []promAlertTest{{EvalTime: Duration(engScrape).String(), Alertname: r.Name, ExpAlerts: exp}}}
	for _, s := range series {
		group.InputSeries = append(group.InputSeries, promSeries{Series: promSeriesDesc(s.labels), Values: promValues(s.values)})
	}
	dir := t.TempDir()
	for name, v := range map[string]any{
		"rules.yml": PromRuleFile{Groups: []PromRuleGroup{{Name: "odd", Rules: []PromRule{promAlert(r)}}}},
		"tests.yml": promTestFile{RuleFiles: []string{"rules.yml"}, EvaluationInterval: Duration(engScrape).String(), Tests: []promTestGroup{group}},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(context.Background(), promtool, "test", "rules", "tests.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool selects other series than we do (%s): %v\n%s", PromQL(r), err, out)
	}
}
