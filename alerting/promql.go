package alerting

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"switchyard/tsdb"
)

// metricNameRE is what PromQL accepts as a bare metric name; any other
// name is written as a __name__ matcher.
var metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// PromQL renders the rule as a Prometheus expression over the same metric
// names, with the same semantics as Eval, for instance
//
//	sum by (cluster, group) (rate(event_failed_total{service="billing"}[5m]))
//	  / sum by (cluster, group) (rate(event_processed_total{service="billing"}[5m])) > 0.05
//	histogram_quantile(0.99, sum by (le, service) (rate(event_processing_duration_seconds_bucket[5m]))) > 0.5
//	switchyard_rabbitmq_queue_messages_ready > 0 and switchyard_rabbitmq_queue_consumers == 0
//
// The And condition matches `on (Expr.By)` when Expr aggregates, else
// `on (And.By)` when that is set, else on every label but the metric name
// (PromQL's plain `and`): andOn, which Eval uses too. PromQL's precedence
// (division before comparison before and) makes parentheses unnecessary.
func PromQL(r *Rule) string {
	var b strings.Builder
	writeSelector(&b, &r.Expr)
	if r.DivideBy != nil {
		b.WriteString(" / ")
		writeSelector(&b, r.DivideBy)
	}
	writeCmp(&b, r.Op, r.Threshold)
	if r.And != nil {
		b.WriteString(" and ")
		if on, ok := andOn(r); ok {
			b.WriteString("on ")
			writeLabelList(&b, on)
			b.WriteByte(' ')
		}
		writeSelector(&b, &r.And.Selector)
		writeCmp(&b, r.And.Op, r.And.Threshold)
	}
	return b.String()
}

func writeCmp(b *strings.Builder, op CmpOp, v float64) {
	b.WriteByte(' ')
	b.WriteString(string(op))
	b.WriteByte(' ')
	b.WriteString(formatNumber(v))
}

// formatNumber writes v as a PromQL number literal: plain decimals where
// they are short, exponent form otherwise, Inf and NaN as PromQL spells
// them.
func formatNumber(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	if a := math.Abs(v); a == 0 || (a >= 1e-6 && a < 1e15) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// writeSelector writes a selector with its function and aggregation.
func writeSelector(b *strings.Builder, s *Selector) {
	vector := func(name string) {
		writeVector(b, name, s.Matchers)
	}
	rangeVector := func(name string) {
		vector(name)
		b.WriteByte('[')
		b.WriteString(s.Window.String())
		b.WriteByte(']')
	}
	switch s.Func {
	case FuncQuantile:
		// The buckets are always summed by le and By: the only
		// aggregation of buckets a quantile means anything for.
		b.WriteString("histogram_quantile(")
		b.WriteString(formatNumber(s.Quantile))
		b.WriteString(", sum by ")
		writeLabelList(b, append([]string{tsdb.BucketLabel}, byNames(s.By, tsdb.BucketLabel)...))
		b.WriteString(" (rate(")
		rangeVector(storedMetric(s))
		b.WriteString(")))")
		return
	}
	if s.Agg != AggNone {
		b.WriteString(string(s.Agg))
		if by := byNames(s.By, ""); len(by) > 0 {
			b.WriteString(" by ")
			writeLabelList(b, by)
			b.WriteByte(' ')
		}
		b.WriteByte('(')
	}
	switch s.Func {
	case FuncRate, FuncIncrease:
		b.WriteString(string(s.Func))
		b.WriteByte('(')
		rangeVector(s.Metric)
		b.WriteByte(')')
	default:
		vector(s.Metric)
	}
	if s.Agg != AggNone {
		b.WriteByte(')')
	}
}

// writeVector writes `name{matchers}`; a name PromQL cannot write bare
// becomes a __name__ matcher. Values are Go-quoted, which PromQL's string
// literals read back unchanged (the same escapes).
func writeVector(b *strings.Builder, name string, ms []tsdb.Matcher) {
	bare := metricNameRE.MatchString(name)
	if bare {
		b.WriteString(name)
		if len(ms) == 0 {
			return
		}
	}
	b.WriteByte('{')
	sep := ""
	if !bare {
		b.WriteString(tsdb.Matcher{Label: tsdb.MetricName, Op: tsdb.MatchEqual, Value: name}.String())
		sep = ", "
	}
	for _, m := range ms {
		b.WriteString(sep)
		b.WriteString(m.String())
		sep = ", "
	}
	b.WriteByte('}')
}

func writeLabelList(b *strings.Builder, names []string) {
	b.WriteByte('(')
	b.WriteString(strings.Join(names, ", "))
	b.WriteByte(')')
}
