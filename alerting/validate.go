package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"switchyard/delivery"
	"switchyard/tsdb"
)

// FieldErrors collects a reason per field of a rule or a silence, keyed by
// the field's JSON path ("expr.window", "and.threshold"), for the platform
// error contract's details.fields.
type FieldErrors map[string]string

// Add records the first reason given for a field.
func (fe FieldErrors) Add(field, format string, args ...any) {
	if _, ok := fe[field]; !ok {
		fe[field] = fmt.Sprintf(format, args...)
	}
}

// Err is nil without reasons, else EINVALID naming the fields, with the
// reasons in Details["fields"].
func (fe FieldErrors) Err(what string) error {
	if len(fe) == 0 {
		return nil
	}
	names := make([]string, 0, len(fe))
	for k := range fe {
		names = append(names, k)
	}
	slices.Sort(names)
	e := delivery.Errorf(delivery.EINVALID, "%s: check %s", what, strings.Join(names, ", "))
	e.Details = map[string]any{"fields": map[string]string(fe)}
	return e
}

// ParseDuration reads a duration as a rule form or the API writes it
// ("90s", "5m", "1h30m", "2d"); "" is 0. Negative or malformed values are
// refused with a reason fit for FieldErrors.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("must not be negative")
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write it as 30s, 5m, 1h30m or 2d", s)
	}
	return d, nil
}

// ParseThreshold reads a threshold; it must be a finite number.
func ParseThreshold(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number", strings.TrimSpace(s))
	}
	return v, nil
}

// ruleJSON is Rule as the API receives it: durations and thresholds as
// raw JSON, so that each bad value becomes a reason for its own field
// instead of one decode error for the body.
type ruleJSON struct {
	ID            int64             `json:"id"`
	Name          string            `json:"name"`
	Expr          *selectorJSON     `json:"expr"`
	DivideBy      *selectorJSON     `json:"divide_by"`
	Op            CmpOp             `json:"op"`
	Threshold     json.RawMessage   `json:"threshold"`
	And           *conditionJSON    `json:"and"`
	For           json.RawMessage   `json:"for"`
	KeepFiringFor json.RawMessage   `json:"keep_firing_for"`
	Severity      string            `json:"severity"`
	Labels        map[string]string `json:"labels"`
	Annotations   map[string]string `json:"annotations"`
	GroupBy       []string          `json:"group_by"`
	Enabled       *bool             `json:"enabled"`
	Version       int64             `json:"version"`
}

type selectorJSON struct {
	Metric   string          `json:"metric"`
	Matchers []string        `json:"matchers"`
	Func     Func            `json:"func"`
	Window   json.RawMessage `json:"window"`
	Quantile json.RawMessage `json:"quantile"`
	Agg      AggOp           `json:"agg"`
	By       []string        `json:"by"`
}

type conditionJSON struct {
	selectorJSON
	Op        CmpOp           `json:"op"`
	Threshold json.RawMessage `json:"threshold"`
}

// DecodeRule reads a rule from the API's JSON. A value of the wrong kind
// is a reason for its field (EINVALID with details.fields), like every
// other check of Validate; a body that is not a JSON object is EINVALID.
// Enabled defaults to true.
func DecodeRule(b []byte) (Rule, error) {
	var in ruleJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return Rule{}, delivery.Errorf(delivery.EINVALID, "rule: the body is not a JSON rule object: %s", jsonReason(err))
	}
	fe := FieldErrors{}
	r := Rule{ID: in.ID, Name: in.Name, Op: in.Op, Severity: in.Severity, Labels: in.Labels,
		Annotations: in.Annotations, GroupBy: in.GroupBy, Enabled: in.Enabled == nil || *in.Enabled, Version: in.Version}
	if in.Expr == nil {
		fe.Add("expr.metric", "required")
	} else {
		r.Expr = in.Expr.selector("expr", fe)
	}
	if in.DivideBy != nil {
		sel := in.DivideBy.selector("divide_by", fe)
		r.DivideBy = &sel
	}
	r.Threshold = rawNumber(in.Threshold, "threshold", fe)
	if in.And != nil {
		r.And = &Condition{Selector: in.And.selector("and", fe), Op: in.And.Op, Threshold: rawNumber(in.And.Threshold, "and.threshold", fe)}
	}
	r.For = rawDuration(in.For, "for", fe)
	r.KeepFiringFor = rawDuration(in.KeepFiringFor, "keep_firing_for", fe)
	return r, fe.Err("rule")
}

func (in *selectorJSON) selector(prefix string, fe FieldErrors) Selector {
	s := Selector{Metric: in.Metric, Func: in.Func, Agg: in.Agg, By: in.By}
	for _, m := range in.Matchers {
		pm, err := tsdb.ParseMatcher(m)
		if err != nil {
			fe.Add(prefix+".matchers", "%s", delivery.ErrorMessage(err))
			continue
		}
		s.Matchers = append(s.Matchers, pm)
	}
	s.Window = rawDuration(in.Window, prefix+".window", fe)
	if len(in.Quantile) > 0 && string(in.Quantile) != "null" {
		s.Quantile = rawNumber(in.Quantile, prefix+".quantile", fe)
	}
	return s
}

// rawNumber accepts a JSON number or a string holding one.
func rawNumber(raw json.RawMessage, field string, fe FieldErrors) float64 {
	if len(raw) == 0 || string(raw) == "null" {
		fe.Add(field, "required")
		return 0
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	v, err := ParseThreshold(s)
	if err != nil {
		fe.Add(field, "%v", err)
	}
	return v
}

// rawDuration accepts "5m" or a number of seconds.
func rawDuration(raw json.RawMessage, field string, fe FieldErrors) Duration {
	if len(raw) == 0 || string(raw) == "null" {
		return 0
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		f, ferr := strconv.ParseFloat(string(raw), 64)
		if ferr != nil {
			fe.Add(field, "want a duration such as \"5m\"")
			return 0
		}
		if f < 0 {
			fe.Add(field, "must not be negative")
			return 0
		}
		return Duration(time.Duration(f * float64(time.Second)))
	}
	d, err := ParseDuration(s)
	if err != nil {
		fe.Add(field, "%v", err)
	}
	return d
}

func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("bad JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s must be %s", te.Field, te.Type)
	}
	return "bad JSON"
}

// Catalog is what validation asks of the history: the label names the
// stored series of a metric carry (nil: the metric is unknown; empty: it
// has no label but its name).
// *tsdb.Store implements it.
type Catalog interface {
	LabelNames(ctx context.Context, metric string) ([]string, error)
}

var (
	ruleNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_ .:-]{0,99}$`)
	labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Limits of a rule.
const (
	MaxWindow = 24 * time.Hour
	MaxFor    = 7 * 24 * time.Hour
)

// Validate checks every field of r against the history's catalog and
// returns EINVALID with a reason per field (FieldErrors). Reasons name
// what would help: the labels a metric has, the functions there are.
func Validate(ctx context.Context, r *Rule, cat Catalog) error {
	fe := FieldErrors{}
	r.Name = strings.TrimSpace(r.Name)
	if !ruleNameRE.MatchString(r.Name) {
		fe.Add("name", "required: up to 100 letters, digits, spaces and _ . : -, starting with a letter")
	}
	if err := checkSelector(ctx, &r.Expr, "expr", cat, fe); err != nil {
		return err
	}
	if r.DivideBy != nil {
		if err := checkSelector(ctx, r.DivideBy, "divide_by", cat, fe); err != nil {
			return err
		}
		if r.DivideBy.Agg != r.Expr.Agg || !slices.Equal(r.DivideBy.By, r.Expr.By) {
			fe.Add("divide_by.by", "a ratio divides series with the same labels: aggregate both sides alike (%s by %v)", aggText(r.Expr.Agg), r.Expr.By)
		}
	}
	checkOp(r.Op, "op", fe)
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
		fe.Add("threshold", "is not a number")
	}
	if r.And != nil {
		if err := checkSelector(ctx, &r.And.Selector, "and", cat, fe); err != nil {
			return err
		}
		checkOp(r.And.Op, "and.op", fe)
		if math.IsNaN(r.And.Threshold) || math.IsInf(r.And.Threshold, 0) {
			fe.Add("and.threshold", "is not a number")
		}
	}
	switch {
	case r.For < 0:
		fe.Add("for", "must not be negative")
	case time.Duration(r.For) > MaxFor:
		fe.Add("for", "at most %s", model.Duration(MaxFor))
	}
	switch {
	case r.KeepFiringFor < 0:
		fe.Add("keep_firing_for", "must not be negative")
	case time.Duration(r.KeepFiringFor) > MaxFor:
		fe.Add("keep_firing_for", "at most %s", model.Duration(MaxFor))
	}
	switch r.Severity {
	case SeverityCritical, SeverityWarning, SeverityInfo:
	case "":
		r.Severity = SeverityWarning
	default:
		fe.Add("severity", "want critical, warning or info")
	}
	for k, v := range r.Labels {
		switch {
		case strings.Contains(v, "{{"):
			fe.Add("labels", "%s: label values are taken as written; templates belong in annotations", k)
		case !labelNameRE.MatchString(k) || strings.HasPrefix(k, "__"):
			fe.Add("labels", "%q is not a label name", k)
		case k == "alertname":
			fe.Add("labels", "alertname is the rule's name")
		}
	}
	for k, v := range r.Annotations {
		if !labelNameRE.MatchString(k) {
			fe.Add("annotations", "%q is not an annotation name", k)
			continue
		}
		if err := CheckTemplate(v); err != nil {
			fe.Add("annotations."+k, "template: %v", err)
		}
	}
	if u := r.Annotations["runbook_url"]; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			fe.Add("annotations.runbook_url", "want an http(s) URL")
		}
	}
	for _, l := range r.GroupBy {
		if !labelNameRE.MatchString(l) {
			fe.Add("group_by", "%q is not a label name", l)
		}
	}
	return fe.Err("rule")
}

func checkOp(op CmpOp, field string, fe FieldErrors) {
	switch op {
	case OpGT, OpGE, OpLT, OpLE, OpEQ, OpNE:
	default:
		fe.Add(field, "want one of > >= < <= == !=")
	}
}

// checkSelector checks one selector; an error return is the catalog's own
// failure, not the rule's.
func checkSelector(ctx context.Context, s *Selector, prefix string, cat Catalog, fe FieldErrors) error {
	s.Metric = strings.TrimSpace(s.Metric)
	switch s.Func {
	case FuncValue, FuncRate, FuncIncrease, FuncQuantile:
	default:
		fe.Add(prefix+".func", "want value, rate, increase or quantile")
	}
	switch s.Agg {
	case AggNone, AggSum, AggMax, AggMin, AggAvg, AggCount:
	default:
		fe.Add(prefix+".agg", "want sum, max, min, avg or count")
	}
	if s.Func != FuncValue {
		switch w := time.Duration(s.Window); {
		case w <= 0:
			fe.Add(prefix+".window", "%s needs a window, such as 5m", s.Func)
		case w < 30*time.Second:
			fe.Add(prefix+".window", "at least 30s: the history records a sample every 15 to 30 seconds")
		case w > MaxWindow:
			fe.Add(prefix+".window", "at most %s", model.Duration(MaxWindow))
		}
	} else if s.Window != 0 {
		fe.Add(prefix+".window", "only rate, increase and quantile take a window")
	}
	if s.Func == FuncQuantile {
		if !(s.Quantile > 0 && s.Quantile < 1) {
			fe.Add(prefix+".quantile", "want a number between 0 and 1, such as 0.99")
		}
		if s.Agg != AggNone && s.Agg != AggSum {
			fe.Add(prefix+".agg", "a quantile sums the histogram's buckets by le and by: choose sum")
		}
	} else if s.Quantile != 0 {
		fe.Add(prefix+".quantile", "only the quantile function takes one")
	}
	for _, l := range s.By {
		if !labelNameRE.MatchString(l) {
			fe.Add(prefix+".by", "%q is not a label name", l)
		}
	}
	if len(s.By) > 0 && s.Agg == AggNone {
		fe.Add(prefix+".by", "by needs an aggregation")
	}
	if s.Metric == "" {
		fe.Add(prefix+".metric", "required")
		return nil
	}
	stored := s.Metric
	if s.Func == FuncQuantile {
		stored += "_bucket"
	}
	names, err := cat.LabelNames(ctx, stored)
	if err != nil {
		return fmt.Errorf("labels of %s: %w", stored, err)
	}
	if names == nil {
		if s.Func == FuncQuantile {
			fe.Add(prefix+".metric", "no histogram %s in the history (no %s series)", s.Metric, stored)
		} else {
			fe.Add(prefix+".metric", "unknown metric: no series named %s in the history", s.Metric)
		}
		return nil
	}
	has := func(l string) bool { return slices.Contains(names, l) }
	eq := map[string]string{}
	for _, m := range s.Matchers {
		if m.Label == tsdb.MetricName {
			fe.Add(prefix+".matchers", "name the metric in the metric field, not with __name__")
			continue
		}
		if _, err := tsdb.CompileMatchers(m); err != nil {
			fe.Add(prefix+".matchers", "%s", delivery.ErrorMessage(err))
			continue
		}
		if !has(m.Label) && !matchesEmpty(m) {
			fe.Add(prefix+".matchers", "%s can match nothing: no series of %s has the label %s (its labels: %s)",
				m, s.Metric, m.Label, strings.Join(names, ", "))
			continue
		}
		if m.Op == tsdb.MatchEqual {
			if prev, ok := eq[m.Label]; ok && prev != m.Value {
				fe.Add(prefix+".matchers", "%s=%q and %s can never hold together", m.Label, prev, m)
			}
			eq[m.Label] = m.Value
		}
	}
	for _, l := range s.By {
		if !has(l) && l != tsdb.BucketLabel {
			fe.Add(prefix+".by", "no series of %s has the label %s (its labels: %s)", s.Metric, l, strings.Join(names, ", "))
		}
	}
	return nil
}

// matchesEmpty reports whether a matcher holds for a series without its
// label (which reads as "").
func matchesEmpty(m tsdb.Matcher) bool {
	set, err := tsdb.CompileMatchers(m)
	return err == nil && set.Matches(nil)
}

func aggText(a AggOp) string {
	if a == AggNone {
		return "no aggregation"
	}
	return string(a)
}
