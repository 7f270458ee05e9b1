package alerting

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/tsdb"
)

// This file turns the console's alert rules into a Prometheus rule file
// over the names the console serves on /metrics, so that a team's own
// Prometheus can run them. PromQL (promql.go) already renders a rule with
// Eval's semantics; what is left is the rule file around it, and saying
// which rules read something /metrics does not serve.

// PromRuleFile is a Prometheus rule file (what rule_files: names).
type PromRuleFile struct {
	Groups []PromRuleGroup `yaml:"groups" json:"groups"`
	// Source says what the file was generated from, for YAML's header
	// ("3 of its alert rules (cluster=prod)"). Not part
	// of Prometheus's format.
	Source string `yaml:"-" json:"source,omitempty"`
}

// PromRuleGroup is one group of a rule file; Prometheus evaluates its
// rules in order every Interval (its global evaluation_interval when
// empty).
type PromRuleGroup struct {
	Name     string     `yaml:"name" json:"name"`
	Interval string     `yaml:"interval,omitempty" json:"interval,omitempty"` // e.g. "15s"
	Rules    []PromRule `yaml:"rules" json:"rules"`
}

// PromRule is a recording rule (Record) or an alerting rule (Alert).
type PromRule struct {
	Record        string            `yaml:"record,omitempty" json:"record,omitempty"`
	Alert         string            `yaml:"alert,omitempty" json:"alert,omitempty"`
	Expr          string            `yaml:"expr" json:"expr"`
	For           string            `yaml:"for,omitempty" json:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty" json:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// Unexportable is a rule that cannot be expressed over the console's
// /metrics, with the reason.
type Unexportable struct {
	RuleID int64  `json:"rule_id"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// ExportGroup is the group ExportRules puts the console's rules in.
const ExportGroup = "switchyard"

// ReasonDisabled is the reason given for a disabled rule.
const ReasonDisabled = "disabled"

// ExportRules turns rules into one group "switchyard" of alerting rules
// over /metrics names, evaluated every interval (the console's evaluation
// interval, so that for and keep_firing_for count the same evaluations):
// alert is the rule's name (Prometheus takes any string, spaces included:
// promtool checks it), expr is PromQL(r), for and keep_firing_for carry
// over, labels are r.Labels with severity, annotations stay as written
// (Prometheus expands the same template syntax, Expand). A disabled rule,
// or one that reads a series /metrics does not serve as the history does
// (exportProblem), is listed as Unexportable instead, never dropped.
func ExportRules(rules []Rule, interval time.Duration) (PromRuleFile, []Unexportable) {
	group := PromRuleGroup{Name: ExportGroup, Rules: []PromRule{}}
	if interval > 0 {
		group.Interval = Duration(interval).String()
	}
	unexportable := []Unexportable{}
	for i := range rules {
		r := &rules[i]
		if why := exportProblem(r); why != "" {
			unexportable = append(unexportable, Unexportable{RuleID: r.ID, Name: r.Name, Reason: why})
			continue
		}
		group.Rules = append(group.Rules, promAlert(r))
	}
	src := fmt.Sprintf("%d of its alert rules", len(group.Rules))
	if len(group.Rules) == 1 {
		src = "1 of its alert rules"
	}
	return PromRuleFile{Groups: []PromRuleGroup{group}, Source: src}, unexportable
}

// promAlert is r as a Prometheus alerting rule.
func promAlert(r *Rule) PromRule {
	pr := PromRule{Alert: r.Name, Expr: PromQL(r), Labels: maps.Clone(r.Labels)}
	if len(r.Annotations) > 0 {
		pr.Annotations = maps.Clone(r.Annotations)
	}
	if r.For > 0 {
		pr.For = r.For.String()
	}
	if r.KeepFiringFor > 0 {
		pr.KeepFiringFor = r.KeepFiringFor.String()
	}
	if r.Severity != "" {
		if pr.Labels == nil {
			pr.Labels = map[string]string{}
		}
		pr.Labels["severity"] = r.Severity
	}
	return pr
}

// historyOnlyLabels are the labels collector.MDLQEntries carries in the
// history and not on /metrics, which sums them away (collector.DLQMetrics).
var historyOnlyLabels = []string{"tenant", "resource"}

// exportProblem says why r cannot run in Prometheus over /metrics, or "".
// The history holds two things /metrics does not serve alike:
// collector.MDLQGroupEntries is not on /metrics at all (its series are
// failure groups × tenants × destinations), and collector.MDLQEntries has
// tenant and resource there only. Over the summed /metrics series, only
// sum(…) of the plain value, by other labels, computes what it computes
// over the history: a matcher or a by on tenant or resource has nothing to
// match, and max, count, rate or a rule that keeps every label would read
// other numbers.
func exportProblem(r *Rule) string {
	if !r.Enabled {
		return ReasonDisabled
	}
	for _, s := range r.Selectors() {
		switch s.Metric {
		case collector.MDLQGroupEntries:
			return fmt.Sprintf("reads %s, which the console keeps in its history only (one series per failure group, tenant and destination: too many for a scrape); /metrics has %s per destination instead",
				s.Metric, collector.MDLQArrivals)
		case collector.MDLQEntries:
			for _, m := range s.Matchers {
				if slices.Contains(historyOnlyLabels, m.Label) {
					return fmt.Sprintf("matches %s on %s, a label it has only in the console's history: /metrics sums tenants and resources away",
						s.Metric, m.Label)
				}
			}
			for _, l := range s.By {
				if slices.Contains(historyOnlyLabels, l) {
					return fmt.Sprintf("aggregates %s by %s, a label it has only in the console's history: /metrics sums tenants and resources away",
						s.Metric, l)
				}
			}
			if s.Agg != AggSum || s.Func != FuncValue {
				return fmt.Sprintf("reads %s per tenant and resource, which /metrics sums away: only sum(…) of its value computes the same there",
					s.Metric)
			}
		}
	}
	return ""
}

// YAML renders the rule file as Prometheus reads it, after a header
// comment saying the console generated it and from what.
func (f PromRuleFile) YAML() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Generated by the Switchyard console")
	if f.Source != "" {
		b.WriteString(" from ")
		b.WriteString(strings.ReplaceAll(f.Source, "\n", " "))
	}
	b.WriteString(".\n# The expressions read the console's /metrics names; change the rules in the console and export again\n# rather than editing this file.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		Groups []PromRuleGroup `yaml:"groups"`
	}{f.Groups}); err != nil {
		return nil, fmt.Errorf("render rule file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render rule file: %w", err)
	}
	return b.Bytes(), nil
}

// ExportFilter narrows an export to the rules that pin these values with
// an equality matcher in any of their selectors (cluster="prod"), or to
// exactly one rule. The zero value exports every rule.
type ExportFilter struct {
	Cluster, Group, Tenant string
	RuleID                 int64
}

func (f *ExportFilter) clean() error {
	f.Cluster, f.Group, f.Tenant = strings.TrimSpace(f.Cluster), strings.TrimSpace(f.Group), strings.TrimSpace(f.Tenant)
	if f.RuleID < 0 {
		return FieldErrors{"rule_id": "must be a rule's id"}.Err("export filter")
	}
	return nil
}

// pins lists the filter's label values.
func (f *ExportFilter) pins() [][2]string {
	var out [][2]string
	for _, p := range [][2]string{{"cluster", f.Cluster}, {"group", f.Group}, {"tenant", f.Tenant}} {
		if p[1] != "" {
			out = append(out, p)
		}
	}
	return out
}

func (f *ExportFilter) matches(r *Rule) bool {
	if f.RuleID != 0 && r.ID != f.RuleID {
		return false
	}
	for _, p := range f.pins() {
		if !pinsValue(r, p[0], p[1]) {
			return false
		}
	}
	return true
}

// String describes the filter for a file's header: "cluster=prod, rule 7".
func (f ExportFilter) String() string {
	var parts []string
	for _, p := range f.pins() {
		parts = append(parts, p[0]+"="+p[1])
	}
	if f.RuleID != 0 {
		parts = append(parts, fmt.Sprintf("rule %d", f.RuleID))
	}
	return strings.Join(parts, ", ")
}

// pinsValue reports whether a selector of r has the matcher label="value".
func pinsValue(r *Rule, label, value string) bool {
	for _, s := range r.Selectors() {
		if slices.Contains(s.Matchers, tsdb.Matcher{Label: label, Op: tsdb.MatchEqual, Value: value}) {
			return true
		}
	}
	return false
}

// RuleExport is what the API and CLI return.
type RuleExport struct {
	File         PromRuleFile   `json:"file"`
	Unexportable []Unexportable `json:"unexportable"`
}

// ExportRules exports the rules that match f among those the caller may
// view (as ListRules) and whose series the caller may export: a rule
// reads series, and downloading it shows what it watches. The route
// checks the export action itself. Errors: EINVALID for a bad filter,
// ENOTFOUND for a RuleID the caller may not export or that does not
// exist.
func (s *Service) ExportRules(ctx context.Context, c Caller, f ExportFilter) (RuleExport, error) {
	if err := f.clean(); err != nil {
		return RuleExport{}, err
	}
	views, err := s.visibleRules(ctx, c)
	if err != nil {
		return RuleExport{}, fmt.Errorf("export rules: %w", err)
	}
	export := s.scope(c, access.ActionExport)
	var rules []Rule
	for _, v := range views {
		if !f.matches(&v.Rule) {
			continue
		}
		ok, _, err := s.covers(ctx, export, &v.Rule, nil)
		if err != nil {
			return RuleExport{}, fmt.Errorf("export rules: %w", err)
		}
		if ok {
			rules = append(rules, v.Rule)
		}
	}
	if f.RuleID != 0 && len(rules) == 0 {
		return RuleExport{}, notFound(f.RuleID)
	}
	file, un := ExportRules(rules, s.Interval())
	if desc := f.String(); desc != "" {
		file.Source += " (" + desc + ")"
	}
	return RuleExport{File: file, Unexportable: un}, nil
}

// YAML is the export as the rule file Prometheus loads, with the rules
// left out listed at its end as comments, each with its reason: the one
// rendering the API and the CLI share.
func (e RuleExport) YAML() ([]byte, error) {
	b, err := e.File.YAML()
	if err != nil {
		return nil, fmt.Errorf("rule file: %w", err)
	}
	if len(e.Unexportable) == 0 {
		return b, nil
	}
	var buf bytes.Buffer
	buf.Write(b)
	if !bytes.HasSuffix(b, []byte("\n")) {
		buf.WriteByte('\n')
	}
	fmt.Fprintf(&buf, "\n# Not exported (%d):\n", len(e.Unexportable))
	oneLine := strings.NewReplacer("\n", " ", "\r", " ")
	for _, u := range e.Unexportable {
		fmt.Fprintf(&buf, "#   rule %d %q: %s\n", u.RuleID, oneLine.Replace(u.Name), oneLine.Replace(u.Reason))
	}
	return buf.Bytes(), nil
}
