package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testenv"
	"switchyard/tsdb"
)

// This is the engine's proof of "the same firing intervals as the real
// Prometheus": each scenario's series go into a real tsdb at a 15 s
// scrape interval, our rule is evaluated every 15 s (Eval + Apply, through
// a CycleReader as the evaluator does), and a `promtool test rules` file
// is generated from what we computed — the rule as PromQL renders it, the
// same values as input series, and at EVERY evaluation time our firing
// alerts (labels and expanded annotations) as exp_alerts, an empty list
// where none fire. Debian's promtool (Prometheus 2.42) then evaluates the
// same rule over the same values on the same schedule and must agree at
// every step: a fire one evaluation early or late, a missing resolve, a
// different label or a different $value fails it.

// compatScenario is one rule over one history.
type compatScenario struct {
	name   string
	rule   Rule
	series []engSeries
	evals  int // evaluations at scrapes 0..evals-1
	// What the scenario is meant to show, so that it cannot pass by
	// never firing: alerts that start firing, and that resolve.
	fires, resolves int
}

func compatScenarios(t *testing.T) []compatScenario {
	lag := func(cluster, group string, values []float64) engSeries {
		return engSeries{lagLabels(cluster, group), values}
	}
	const lagMetric = "switchyard_consumer_group_lag_seconds"
	lagRule := func(name string, forD, keep time.Duration) Rule {
		return Rule{Name: name, Expr: Selector{Metric: lagMetric, Matchers: []tsdb.Matcher{engMatcher(t, `cluster="demo"`)}},
			Op: OpGT, Threshold: 60, For: Duration(forD), KeepFiringFor: Duration(keep), Severity: SeverityWarning}
	}
	step := func(n int, phases ...float64) []float64 { // phases: from, value, from, value… up to n
		return engValues(n, func(k int) float64 {
			v := engGap
			for i := 0; i+1 < len(phases); i += 2 {
				if float64(k) >= phases[i] {
					v = phases[i+1]
				}
			}
			return v
		})
	}
	counter := func(name string, kv ...string) tsdb.Labels {
		return tsdb.L(append([]string{tsdb.MetricName, name}, kv...)...)
	}
	var out []compatScenario

	// A lag threshold with for: billing lags for 5 minutes (pending, then
	// firing after 1m, then resolved); shipping only for 45s, less than
	// for; prod is not selected.
	s := compatScenario{name: "lag with for", evals: 60, fires: 1, resolves: 1}
	s.rule = lagRule("Lag with for", time.Minute, 0)
	s.rule.Labels = map[string]string{"team": "payments"}
	s.rule.Annotations = map[string]string{
		"summary":     "{{ $labels.group }} is {{ $value | humanizeDuration }} behind",
		"description": "Lag of {{ $labels.group }} on {{ $labels.cluster }} is {{ $value }}s; no such label: [{{ $labels.nope }}]",
	}
	s.series = []engSeries{
		lag("demo", "billing", step(60, 0, 10, 10, 120, 30, 5)),
		lag("demo", "shipping", step(60, 0, 0, 20, 90, 23, 0)),
		lag("prod", "billing", step(60, 0, 500)),
	}
	out = append(out, s)

	// keep_firing_for: a 30s dip keeps firing; the final stop resolves one
	// minute after the first evaluation that missed.
	s = compatScenario{name: "keep firing", evals: 60, fires: 1, resolves: 1}
	s.rule = lagRule("Keep firing", 30*time.Second, time.Minute)
	s.rule.Annotations = map[string]string{"summary": "lag {{ $value }}"}
	s.series = []engSeries{lag("demo", "billing", step(60, 0, 0, 5, 100, 20, 0, 22, 120, 30, 0))}
	out = append(out, s)

	// Flapping: holds three evaluations, stops one (at exactly the
	// threshold, which > does not hold), holds again — never for a whole
	// minute, so it never fires — until it holds steadily.
	s = compatScenario{name: "flapping", evals: 60, fires: 1, resolves: 1}
	s.rule = lagRule("Flapping", time.Minute, 0)
	s.series = []engSeries{lag("demo", "billing", engValues(60, func(k int) float64 {
		switch {
		case k < 24 && k%4 == 3:
			return 60
		case k < 40:
			return 100
		}
		return 10
	}))}
	out = append(out, s)

	// Gaps: a 6-minute gap outlives the 5m lookback (the last sample is
	// seen exactly 5m later, then the series is absent and the alert
	// resolves, and fires anew when samples return); a 2-minute gap does
	// not end the series.
	s = compatScenario{name: "gaps", evals: 70, fires: 3, resolves: 1}
	s.rule = lagRule("Gaps", 30*time.Second, 0)
	s.series = []engSeries{
		lag("demo", "long-gap", step(70, 0, 100, 20, engGap, 44, 100)),
		lag("demo", "short-gap", step(70, 0, 100, 20, engGap, 28, 100)),
	}
	out = append(out, s)

	// A series that disappears: its alert (for 0: firing at once)
	// resolves when its last sample leaves the lookback, and is forgotten
	// 15 minutes later; the other stays.
	s = compatScenario{name: "disappears", evals: 105, fires: 2, resolves: 1}
	s.rule = lagRule("Disappears", 0, 0)
	s.rule.Threshold = 0
	s.series = []engSeries{
		lag("demo", "stays", step(105, 0, 1)),
		lag("demo", "goes", step(20, 0, 1)),
	}
	out = append(out, s)

	// rate over 1m on counters, one of which restarts from 0: the lost
	// increment drops the rate to exactly the threshold, which > does not
	// hold; the early evaluations exercise the extrapolation to the
	// counter's zero point. $value prints every digit of the rate.
	s = compatScenario{name: "counter reset", evals: 80, fires: 3, resolves: 3}
	s.rule = Rule{Name: "Counter reset", Expr: Selector{Metric: "event_failed_total", Matchers: []tsdb.Matcher{engMatcher(t, `service="billing"`)},
		Func: FuncRate, Window: Duration(time.Minute)}, Op: OpGT, Threshold: 0.5, For: Duration(30 * time.Second), Severity: SeverityCritical,
		Annotations: map[string]string{"description": "{{ $labels.instance }} fails {{ $value }}/s ({{ $value | humanize }})"}}
	s.series = []engSeries{
		{counter("event_failed_total", "service", "billing", "instance", "a"),
			engCounter(80, func(k int) float64 { return map[bool]float64{true: 10, false: 5}[k < 40] }, map[int]float64{20: 0})},
		{counter("event_failed_total", "service", "billing", "instance", "b"),
			engCounter(80, func(k int) float64 { return map[bool]float64{true: 10, false: 0}[k <= 60] }, nil)},
		{counter("event_failed_total", "service", "shipping", "instance", "a"), engCounter(80, func(int) float64 { return 50 }, nil)},
	}
	out = append(out, s)

	// increase summed by service, one instance restarting.
	s = compatScenario{name: "increase sum", evals: 60, fires: 1, resolves: 1}
	s.rule = Rule{Name: "Increase sum", Expr: Selector{Metric: "event_failed_total", Func: FuncIncrease, Window: Duration(2 * time.Minute),
		Agg: AggSum, By: []string{"service"}}, Op: OpGT, Threshold: 50, Severity: SeverityWarning,
		Annotations: map[string]string{"summary": "{{ $value | humanize }} failures in 2m"}}
	s.series = []engSeries{
		{counter("event_failed_total", "service", "billing", "instance", "a"),
			engCounter(60, func(k int) float64 { return map[bool]float64{true: 4, false: 1}[k >= 15 && k < 35] }, map[int]float64{25: 2})},
		{counter("event_failed_total", "service", "billing", "instance", "b"),
			engCounter(60, func(k int) float64 { return map[bool]float64{true: 3, false: 1}[k >= 15 && k < 35] }, nil)},
	}
	out = append(out, s)

	// A failure ratio: failed over processed, both summed by cluster and
	// group over two instances; the idle group divides 0 by 0 (NaN, which
	// never holds).
	s = compatScenario{name: "failure ratio", evals: 110, fires: 1, resolves: 1}
	side := func(metric string) Selector {
		return Selector{Metric: metric, Func: FuncRate, Window: Duration(5 * time.Minute), Agg: AggSum, By: []string{"cluster", "group"}}
	}
	den := side("event_processed_total")
	s.rule = Rule{Name: "Failure ratio", Expr: side("event_failed_total"), DivideBy: &den, Op: OpGT, Threshold: 0.05,
		For: Duration(time.Minute), Severity: SeverityWarning,
		Annotations: map[string]string{"summary": "{{ $labels.group }} fails {{ $value | humanizePercentage }} of its events"}}
	grp := func(name, group, inst string) tsdb.Labels {
		return counter(name, "cluster", "demo", "group", group, "instance", inst)
	}
	fail := func(normal, bad float64) []float64 {
		return engCounter(110, func(k int) float64 { return map[bool]float64{true: bad, false: normal}[k >= 40 && k < 70] }, nil)
	}
	s.series = []engSeries{
		{grp("event_processed_total", "billing", "a"), engCounter(110, func(int) float64 { return 100 }, nil)},
		{grp("event_processed_total", "billing", "b"), engCounter(110, func(int) float64 { return 100 }, nil)},
		{grp("event_failed_total", "billing", "a"), fail(2, 12)},
		{grp("event_failed_total", "billing", "b"), fail(2, 8)},
		{grp("event_processed_total", "shipping", "a"), engCounter(110, func(int) float64 { return 100 }, nil)},
		{grp("event_failed_total", "shipping", "a"), fail(1, 1)},
		{grp("event_processed_total", "idle", "a"), engValues(110, func(int) float64 { return 7 })},
		{grp("event_failed_total", "idle", "a"), engValues(110, func(int) float64 { return 3 })},
	}
	out = append(out, s)

	// p99 latency from histogram buckets summed over instances by service;
	// a histogram without +Inf gives NaN.
	s = compatScenario{name: "p99", evals: 110, fires: 1, resolves: 1}
	s.rule = Rule{Name: "p99 latency", Expr: Selector{Metric: "event_processing_duration_seconds", Func: FuncQuantile, Quantile: 0.99,
		Window: Duration(5 * time.Minute), Agg: AggSum, By: []string{"service"}}, Op: OpGT, Threshold: 0.5, For: Duration(time.Minute),
		Severity: SeverityWarning, Annotations: map[string]string{"summary": "p99 of {{ $labels.service }} is {{ $value | humanizeDuration }}"}}
	bounds := []string{"0.1", "0.25", "0.5", "1", "2.5", "+Inf"}
	fast := []float64{90, 99, 100, 100, 100, 100}
	slow := []float64{50, 80, 90, 98, 100, 100}
	for _, svc := range []string{"billing", "shipping", "broken"} {
		for _, inst := range []string{"a", "b"} {
			for i, le := range bounds {
				if svc == "broken" && le == "+Inf" {
					continue
				}
				i := i
				isSlow := func(k int) bool { return svc == "billing" && k >= 30 && k < 60 }
				s.series = append(s.series, engSeries{
					counter("event_processing_duration_seconds_bucket", "service", svc, "instance", inst, "le", le),
					engCounter(110, func(k int) float64 {
						if isSlow(k) {
							return slow[i]
						}
						return fast[i]
					}, nil),
				})
			}
		}
	}
	out = append(out, s)

	// A queue with ready messages and no consumers (plain `and`, on all
	// labels); a queue without a consumers series never holds.
	q := func(metric, cluster, queue string, values []float64) engSeries {
		return engSeries{counter(metric, "cluster", cluster, "vhost", "/", "queue", queue), values}
	}
	const ready, consumers = "switchyard_rabbitmq_queue_messages_ready", "switchyard_rabbitmq_queue_consumers"
	queues := []engSeries{
		q(ready, "c1", "orders", step(60, 0, 5)), q(consumers, "c1", "orders", step(60, 0, 1, 10, 0, 40, 1)),
		q(ready, "c1", "empty", step(60, 0, 0)), q(consumers, "c1", "empty", step(60, 0, 0)),
		q(ready, "c1", "busy", step(60, 0, 10)), q(consumers, "c1", "busy", step(60, 0, 2)),
		q(ready, "c1", "lonely", step(60, 0, 3)),
	}
	s = compatScenario{name: "queue and", evals: 60, fires: 1, resolves: 1, series: queues}
	s.rule = Rule{Name: "Queue without consumers", Expr: Selector{Metric: ready}, Op: OpGT, Threshold: 0, For: Duration(time.Minute),
		And: &Condition{Selector: Selector{Metric: consumers}, Op: OpEQ, Threshold: 0}, Severity: SeverityWarning,
		Annotations: map[string]string{"summary": "{{ $labels.queue }} holds {{ $value }} ready messages"}}
	out = append(out, s)

	// The same with aggregation: and on (queue, vhost) over a second
	// cluster whose orders queue never has consumers.
	s = compatScenario{name: "queue and on", evals: 60, fires: 1, resolves: 1,
		series: append(slices.Clone(queues), q(ready, "c2", "orders", step(60, 0, 2)), q(consumers, "c2", "orders", step(60, 0, 0)))}
	s.rule = Rule{Name: "Queue without consumers anywhere", Expr: Selector{Metric: ready, Agg: AggSum, By: []string{"vhost", "queue"}},
		Op: OpGT, Threshold: 0, For: Duration(time.Minute), Severity: SeverityInfo,
		And: &Condition{Selector: Selector{Metric: consumers, Agg: AggMax, By: []string{"vhost", "queue"}}, Op: OpEQ, Threshold: 0}}
	out = append(out, s)

	// count: fewer than three groups reporting in a cluster.
	s = compatScenario{name: "count", evals: 60, fires: 2, resolves: 0}
	s.rule = Rule{Name: "Groups missing", Expr: Selector{Metric: lagMetric, Agg: AggCount, By: []string{"cluster"}}, Op: OpLT, Threshold: 3,
		Severity: SeverityWarning, Labels: map[string]string{"source": "compat"}}
	s.series = []engSeries{
		lag("demo", "a", step(60, 0, 1)), lag("demo", "b", step(60, 0, 2)), lag("demo", "c", step(20, 0, 3)),
		lag("prod", "a", step(60, 0, 1)), lag("prod", "b", step(60, 0, 1)),
	}
	out = append(out, s)

	// avg with its running mean. Its last digit depends on the order the
	// series are added in, which in promtool follows the order its loader
	// happens to create them (a map's): so $value is humanized here, and
	// only rules that do not aggregate print every digit.
	s = compatScenario{name: "avg", evals: 60, fires: 1, resolves: 1}
	s.rule = Rule{Name: "Average lag", Expr: Selector{Metric: lagMetric, Agg: AggAvg, By: []string{"cluster"}}, Op: OpGT, Threshold: 50,
		For: Duration(15 * time.Second), Severity: SeverityWarning, Annotations: map[string]string{"summary": "{{ $value | humanize }}"}}
	s.series = []engSeries{
		lag("demo", "a", step(60, 0, 10)), lag("demo", "b", step(60, 0, 20)),
		lag("demo", "c", engValues(60, func(k int) float64 { return map[bool]float64{true: 5 * float64(k), false: 0}[k < 50] })),
	}
	out = append(out, s)
	return out
}

// The promtool test files, written as JSON (which YAML reads); rule
// files are the export's own PromRuleFile.
type promTestFile struct {
	RuleFiles          []string        `json:"rule_files"`
	EvaluationInterval string          `json:"evaluation_interval"`
	Tests              []promTestGroup `json:"tests"`
}

type promTestGroup struct {
	Interval       string          `json:"interval"`
	InputSeries    []promSeries    `json:"input_series"`
	AlertRuleTests []promAlertTest `json:"alert_rule_test"`
}

type promSeries struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

type promAlertTest struct {
	EvalTime  string         `json:"eval_time"`
	Alertname string         `json:"alertname"`
	ExpAlerts []promExpAlert `json:"exp_alerts"`
}

type promExpAlert struct {
	ExpLabels      map[string]string `json:"exp_labels"`
	ExpAnnotations map[string]string `json:"exp_annotations,omitempty"`
}

// promSeriesDesc writes a series as promtool's input_series names it.
func promSeriesDesc(ls tsdb.Labels) string {
	var b strings.Builder
	writeVector(&b, ls.Name(), nil)
	rest := dropName(ls)
	if len(rest) > 0 {
		b.WriteByte('{')
		for i, l := range rest {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l.Name + "=" + strconv.Quote(l.Value))
		}
		b.WriteByte('}')
	}
	return b.String()
}

func promValues(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		if math.IsNaN(v) {
			parts[i] = "_"
		} else {
			parts[i] = strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return strings.Join(parts, " ")
}

func TestPrometheusCompat(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool (Debian's prometheus package)")
	}
	ctx := context.Background()
	scenarios := compatScenarios(t)
	dir := t.TempDir()
	write := func(name string, v any) {
		b, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A rule file and a test file per scenario, so that promtool evaluates
	// only the scenario's rule over its series.
	var testFiles []string
	var fired, resolved int
	for i, sc := range scenarios {
		r := &sc.rule
		h := engHistory(t, sc.series...)
		group := promTestGroup{Interval: Duration(engScrape).String()}
		for _, sr := range sc.series {
			group.InputSeries = append(group.InputSeries, promSeries{Series: promSeriesDesc(sr.labels), Values: promValues(sr.values)})
		}
		active := map[string]*Alert{}
		var holdings [][]Sample
		var fires, resolves int
		for k := range sc.evals {
			at := engAt(k)
			cr := NewCycleReader(h)
			if err := cr.Plan(ctx, []*Rule{r}, at); err != nil {
				t.Fatalf("%s: Plan: %v", sc.name, err)
			}
			res := mustEval(t, cr, r, at)
			holdings = append(holdings, res.Holding)
			for _, tr := range Apply(r, active, res.Holding, at) {
				switch {
				case tr.To == StateFiring:
					fires++
				case tr.From == StateFiring:
					resolves++
				}
			}
			exp := []promExpAlert{}
			for _, fp := range slices.Sorted(maps.Keys(active)) {
				if a := active[fp]; a.State == StateFiring {
					exp = append(exp, promExpAlert{ExpLabels: a.Labels, ExpAnnotations: a.Annotations})
				}
			}
			group.AlertRuleTests = append(group.AlertRuleTests, promAlertTest{
				EvalTime: Duration(at.Sub(engT0)).String(), Alertname: r.Name, ExpAlerts: exp,
			})
		}
		if fires != sc.fires || resolves != sc.resolves {
			t.Errorf("%s: %d alerts fired and %d resolved, the scenario means %d and %d", sc.name, fires, resolves, sc.fires, sc.resolves)
		}
		fired += fires
		resolved += resolves

		// The preview's path must agree step by step too: one EvalRange
		// over the whole schedule, and Simulate's count of fires.
		rr, err := EvalRange(ctx, h, r, engAt(0), engAt(sc.evals-1), engScrape, 0)
		if err != nil {
			t.Fatalf("%s: EvalRange: %v", sc.name, err)
		}
		for k, hs := range holdings {
			if a, b := sampleText(hs), sampleText(rr.Holding[k]); !sameStrings(a, b) {
				t.Errorf("%s: at step %d EvalRange holds %q, Eval %q", sc.name, k, b, a)
			}
		}
		if _, notes, n := Simulate(r, rr); n != fires || notes != fires+resolves {
			t.Errorf("%s: Simulate counts %d fires and %d notifications, evaluating gave %d and %d", sc.name, n, notes, fires, fires+resolves)
		}

		ruleFile, testFile := fmt.Sprintf("rules-%02d.yml", i), fmt.Sprintf("tests-%02d.yml", i)
		write(ruleFile, PromRuleFile{Groups: []PromRuleGroup{{Name: sc.name, Rules: []PromRule{promAlert(r)}}}})
		write(testFile, promTestFile{RuleFiles: []string{ruleFile}, EvaluationInterval: Duration(engScrape).String(), Tests: []promTestGroup{group}})
		testFiles = append(testFiles, testFile)
	}
	if fired == 0 || resolved == 0 {
		t.Fatalf("the scenarios fired %d and resolved %d alerts: nothing to compare", fired, resolved)
	}

	start := time.Now()
	cmd := exec.CommandContext(ctx, promtool, append([]string{"test", "rules"}, testFiles...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		for i, sc := range scenarios {
			t.Logf("rules-%02d.yml (%s): %s", i, sc.name, PromQL(&sc.rule))
		}
		t.Fatalf("promtool test rules disagrees with our evaluation (%v):\n%s", err, out)
	}
	t.Logf("promtool agreed on %d scenarios (%d alerts fired, %d resolved) in %s", len(scenarios), fired, resolved, time.Since(start).Round(time.Millisecond))
}
