package alerting

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"switchyard/delivery"
	"switchyard/tsdb"
)

// This file is the rule engine's arithmetic: a rule evaluated at one time
// with the semantics of the PromQL expression PromQL renders for it, as
// Prometheus 2.42 (Debian's) computes it — instant selectors with a 5m
// lookback, rate and increase extrapolated as promql/functions.go does,
// aggregations as promql/engine.go does, histogram_quantile's bucket
// interpolation, one-to-one division, filtering comparisons and `and`.
// Eval (one time) and EvalRange (every step of a range, rangeeval.go) run
// the same ruleEval over samples read once, so that the evaluator and the
// preview cannot disagree.

// Sample is one element of an instant vector.
type Sample struct {
	Labels tsdb.Labels
	V      float64
}

// Result is a rule evaluated at one time.
type Result struct {
	// Values is the expression (Expr, divided by DivideBy) per label set,
	// before the comparison, sorted by labels. A plain selector keeps its
	// metric name (as PromQL does); functions, aggregations and division
	// drop it.
	Values []Sample
	// Holding are those Values for which `op threshold` holds and, with
	// And, the condition holds for the same labels (see PromQL for which
	// labels that is).
	Holding []Sample
}

// Eval evaluates r at t, reading through rd. It does not validate r
// (Validate does). Errors: EINVALID for a rule it cannot evaluate (an
// unknown function, alert labels that make two alerts alike) or a read
// the store refuses; others are the store's failures.
func Eval(ctx context.Context, rd Reader, r *Rule, t time.Time) (Result, error) {
	tm := t.UnixMilli()
	re, err := loadRule(ctx, rd, r, tm, tm, 0)
	if err != nil {
		return Result{}, err
	}
	var res Result
	re.step(tm, func(slot int, v float64, holds bool) {
		s := Sample{Labels: re.label(slot), V: v}
		res.Values = append(res.Values, s)
		if holds {
			res.Holding = append(res.Holding, s)
		}
	})
	if err := checkAlertLabels(r, res.Holding); err != nil {
		return Result{}, err
	}
	return res, nil
}

// storedMetric is the series name a selector reads: a histogram's buckets
// for FuncQuantile.
func storedMetric(s *Selector) string {
	if s.Func == FuncQuantile {
		return s.Metric + "_bucket"
	}
	return s.Metric
}

// selectorNeed is how far back, in milliseconds, a selector reads from its
// evaluation time: the lookback of an instant selector, else the window.
func selectorNeed(s *Selector) int64 {
	if s.Func == FuncValue {
		return Lookback.Milliseconds()
	}
	return time.Duration(s.Window).Milliseconds()
}

// aggregates reports whether a selector reduces its series by labels
// (FuncQuantile always sums buckets by le and By).
func (s *Selector) aggregates() bool { return s.Agg != AggNone || s.Func == FuncQuantile }

// loadRule reads every selector of r once over what steps from..to (ms)
// need at resolution res and prepares their evaluation.
func loadRule(ctx context.Context, rd Reader, r *Rule, from, to int64, res time.Duration) (*ruleEval, error) {
	load := func(s *Selector) (*selectorEval, error) {
		if s == nil {
			return nil, nil
		}
		switch s.Func {
		case FuncValue, FuncRate, FuncIncrease, FuncQuantile:
		default:
			return nil, delivery.Errorf(delivery.EINVALID, "unknown function %q", s.Func)
		}
		if res > 0 && s.Func != FuncValue && time.Duration(s.Window) < 2*res {
			// A window holds a rate only with two points in it: at
			// resolution res that takes two of them (a preview over
			// 5-minute rollups widens a 5-minute rate to 10 minutes).
			w := *s
			w.Window = Duration(2 * res)
			s = &w
		}
		need, shift := selectorNeed(s), res.Milliseconds()
		series, err := rd.Select(ctx, tsdb.SelectQ{
			Name: storedMetric(s), Matchers: s.Matchers,
			From: time.UnixMilli(from - need - shift).UTC(), To: time.UnixMilli(to).UTC(),
			Resolution: res,
		})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", storedMetric(s), err)
		}
		return newSelectorEval(s, series, need, shift), nil
	}
	re := &ruleEval{r: r}
	var err error
	if re.expr, err = load(&r.Expr); err != nil {
		return nil, err
	}
	if re.div, err = load(r.DivideBy); err != nil {
		return nil, err
	}
	if r.And != nil {
		if re.cond, err = load(&r.And.Selector); err != nil {
			return nil, err
		}
	}
	re.match()
	return re, nil
}

// evalMode is how a selector turns its series' values into its output.
type evalMode int

const (
	modeSeries   evalMode = iota // one output per series
	modeAgg                      // sum/max/min/avg/count by (By)
	modeQuantile                 // histogram_quantile(q, sum by (le, By) (rate(...)))
)

// selectorEval evaluates one selector at successive times over the series
// it read once. Its outputs ("slots") are fixed at load time, so a step
// allocates nothing: a slot is a series, an aggregation group or a
// histogram.
type selectorEval struct {
	sel    *Selector
	series []tsdb.Series
	need   int64 // ms before the step a sample may be
	shift  int64 // ms added to each point's time (rollup points are stamped at their bucket's end)
	rngSec float64
	mode   evalMode

	// Per series: its value at the step, and the cursor [lo, hi) of its
	// points within the step's range.
	perVal []float64
	perOK  []bool
	lo, hi []int
	last   int64 // the previous step; cursors restart when time goes back

	// Slots: output labels (computed lazily for modeSeries), and per step
	// the value and whether there is one.
	labels []tsdb.Labels
	val    []float64
	ok     []bool

	// modeAgg: the series' group; avg and count keep a count and mean.
	slotOf []int
	cnt    []int
	mean   []float64

	// modeQuantile: the series' (le, By) group, each group's bucket bound
	// and histogram (-1 for a bound that is not a number), the groups'
	// sums, and a buffer per histogram.
	leOf    []int
	leHist  []int
	leBound []float64
	leVal   []float64
	leOK    []bool
	buckets [][]tsdb.Bucket
}

func newSelectorEval(s *Selector, series []tsdb.Series, need, shift int64) *selectorEval {
	n := len(series)
	e := &selectorEval{
		sel: s, series: series, need: need, shift: shift,
		rngSec: time.Duration(s.Window).Seconds(),
		perVal: make([]float64, n), perOK: make([]bool, n),
		lo: make([]int, n), hi: make([]int, n), last: math.MinInt64,
	}
	switch {
	case s.Func == FuncQuantile:
		e.mode = modeQuantile
		e.groupQuantile()
	case s.Agg != AggNone:
		e.mode = modeAgg
		e.groupAgg()
	default:
		e.mode = modeSeries
		e.labels = make([]tsdb.Labels, n)
		for i, sr := range series {
			if s.Func == FuncValue {
				e.labels[i] = sr.Labels // an instant selector keeps the name
			}
		}
	}
	slots := len(e.labels)
	e.val, e.ok = make([]float64, slots), make([]bool, slots)
	return e
}

// byNames returns names sorted and without duplicates, leaving out skip.
func byNames(names []string, skip string) []string {
	out := slices.Compact(slices.Sorted(slices.Values(names)))
	return slices.DeleteFunc(out, func(n string) bool { return n == skip })
}

// appendKey appends the values of names in ls (absent = "") to b.
func appendKey(b []byte, ls tsdb.Labels, names []string) []byte {
	for _, n := range names {
		b = append(b, ls.Get(n)...)
		b = append(b, 0xff)
	}
	return b
}

// keepLabels returns the labels of ls named in names (sorted), as PromQL's
// `by` keeps them: absent ones are left out.
func keepLabels(ls tsdb.Labels, names []string) tsdb.Labels {
	out := make(tsdb.Labels, 0, len(names))
	for _, n := range names {
		if v := ls.Get(n); v != "" {
			out = append(out, tsdb.Label{Name: n, Value: v})
		}
	}
	return out
}

// dropName returns ls without the metric name (ls itself when it has none).
func dropName(ls tsdb.Labels) tsdb.Labels {
	i := slices.IndexFunc(ls, func(l tsdb.Label) bool { return l.Name == tsdb.MetricName })
	if i < 0 {
		return ls
	}
	out := make(tsdb.Labels, 0, len(ls)-1)
	out = append(out, ls[:i]...)
	return append(out, ls[i+1:]...)
}

// sortedSlots orders groups by their labels: order[g] is group g's slot,
// sorted[slot] its labels.
func sortedSlots(labels []tsdb.Labels) (order []int, sorted []tsdb.Labels) {
	idx := make([]int, len(labels))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return tsdb.CompareLabels(labels[a], labels[b]) })
	order = make([]int, len(labels))
	sorted = make([]tsdb.Labels, len(labels))
	for slot, g := range idx {
		order[g] = slot
		sorted[slot] = labels[g]
	}
	return order, sorted
}

// groupAgg assigns each series its aggregation group (slot).
func (e *selectorEval) groupAgg() {
	by := byNames(e.sel.By, "")
	at := map[string]int{}
	var groups []tsdb.Labels
	e.slotOf = make([]int, len(e.series))
	var buf []byte
	for i, sr := range e.series {
		buf = appendKey(buf[:0], sr.Labels, by)
		g, ok := at[string(buf)]
		if !ok {
			g = len(groups)
			at[string(buf)] = g
			groups = append(groups, keepLabels(sr.Labels, by))
		}
		e.slotOf[i] = g
	}
	order, sorted := sortedSlots(groups)
	for i, g := range e.slotOf {
		e.slotOf[i] = order[g]
	}
	e.labels = sorted
	e.cnt, e.mean = make([]int, len(sorted)), make([]float64, len(sorted))
}

// groupQuantile assigns each bucket series its (le, By) group and each
// group its histogram (slot), as
// histogram_quantile(q, sum by (le, By…) (rate(…))) groups them.
func (e *selectorEval) groupQuantile() {
	by := byNames(e.sel.By, tsdb.BucketLabel)
	leAt, histAt := map[string]int{}, map[string]int{}
	var hists []tsdb.Labels
	e.leOf = make([]int, len(e.series))
	var buf []byte
	for i, sr := range e.series {
		le := sr.Labels.Get(tsdb.BucketLabel)
		buf = appendKey(append(append(buf[:0], le...), 0xff), sr.Labels, by)
		g, ok := leAt[string(buf)]
		if !ok {
			g = len(e.leHist)
			leAt[string(buf)] = g
			bound, err := strconv.ParseFloat(le, 64)
			hist := -1
			if err == nil { // histogram_quantile skips a bucket whose le is not a number
				buf = appendKey(buf[:0], sr.Labels, by)
				h, ok := histAt[string(buf)]
				if !ok {
					h = len(hists)
					histAt[string(buf)] = h
					hists = append(hists, keepLabels(sr.Labels, by))
				}
				hist = h
			}
			e.leHist = append(e.leHist, hist)
			e.leBound = append(e.leBound, bound)
		}
		e.leOf[i] = g
	}
	order, sorted := sortedSlots(hists)
	for g, h := range e.leHist {
		if h >= 0 {
			e.leHist[g] = order[h]
		}
	}
	e.labels = sorted
	e.leVal, e.leOK = make([]float64, len(e.leHist)), make([]bool, len(e.leHist))
	e.buckets = make([][]tsdb.Bucket, len(sorted))
}

// label returns the output labels of slot.
func (e *selectorEval) label(slot int) tsdb.Labels {
	if e.labels[slot] == nil {
		e.labels[slot] = dropName(e.series[slot].Labels)
	}
	return e.labels[slot]
}

// pointT is a point's time in ms, as the evaluation sees it.
func (e *selectorEval) pointT(p tsdb.Point) int64 { return p.T.UnixMilli() + e.shift }

// at evaluates the selector at t (ms) into val and ok.
func (e *selectorEval) at(t int64) {
	if t < e.last {
		clear(e.lo)
		clear(e.hi)
	}
	e.last = t
	for i := range e.series {
		e.perVal[i], e.perOK[i] = e.seriesAt(i, t)
	}
	switch e.mode {
	case modeSeries:
		copy(e.val, e.perVal)
		copy(e.ok, e.perOK)
	case modeAgg:
		e.aggregate()
	case modeQuantile:
		e.quantile()
	}
}

// seriesAt is series i's value at t: its latest sample within the lookback
// for an instant selector, rate or increase over the window otherwise.
func (e *selectorEval) seriesAt(i int, t int64) (float64, bool) {
	pts := e.series[i].Points
	// Both ends are inclusive: [t-need, t], as in Prometheus 2.x.
	start := t - e.need
	hi := e.hi[i]
	for hi < len(pts) && e.pointT(pts[hi]) <= t {
		hi++
	}
	lo := max(e.lo[i], 0)
	for lo < hi && e.pointT(pts[lo]) < start {
		lo++
	}
	e.lo[i], e.hi[i] = lo, hi
	if lo >= hi {
		return 0, false
	}
	switch e.sel.Func {
	case FuncValue:
		return pts[hi-1].V, true
	case FuncRate:
		return e.extrapolatedRate(pts[lo:hi], start, t, true)
	default: // FuncIncrease, and FuncQuantile's rate of each bucket
		return e.extrapolatedRate(pts[lo:hi], start, t, e.sel.Func == FuncQuantile)
	}
}

// extrapolatedRate is Prometheus 2.42's extrapolatedRate for a counter
// (promql/functions.go), operation for operation so that the floats come
// out the same: the increase over the samples, counting each drop as a
// restart from zero, extrapolated to the range's ends when the samples
// reach to within 1.1 average intervals of them (else by half an
// interval), never to before the counter's zero point. Fewer than two
// samples give nothing.
func (e *selectorEval) extrapolatedRate(pts []tsdb.Point, rangeStart, rangeEnd int64, isRate bool) (float64, bool) {
	if len(pts) < 2 {
		return 0, false
	}
	first, last := pts[0], pts[len(pts)-1]
	result := last.V - first.V
	prev := first.V
	for _, p := range pts[1:] {
		if p.V < prev {
			result += prev
		}
		prev = p.V
	}
	firstT, lastT := e.pointT(first), e.pointT(last)
	durationToStart := float64(firstT-rangeStart) / 1000
	durationToEnd := float64(rangeEnd-lastT) / 1000
	sampledInterval := float64(lastT-firstT) / 1000
	averageDurationBetweenSamples := sampledInterval / float64(len(pts)-1)
	if result > 0 && first.V >= 0 {
		durationToZero := sampledInterval * (first.V / result)
		if durationToZero < durationToStart {
			durationToStart = durationToZero
		}
	}
	extrapolationThreshold := averageDurationBetweenSamples * 1.1
	extrapolateToInterval := sampledInterval
	if durationToStart < extrapolationThreshold {
		extrapolateToInterval += durationToStart
	} else {
		extrapolateToInterval += averageDurationBetweenSamples / 2
	}
	if durationToEnd < extrapolationThreshold {
		extrapolateToInterval += durationToEnd
	} else {
		extrapolateToInterval += averageDurationBetweenSamples / 2
	}
	factor := extrapolateToInterval / sampledInterval
	if isRate {
		factor /= e.rngSec
	}
	return result * factor, true
}

// aggregate folds the series' values into their groups in series order,
// as Prometheus 2.42's aggregation does (its running mean for avg, its
// NaN handling for max and min).
func (e *selectorEval) aggregate() {
	clear(e.ok)
	for i, g := range e.slotOf {
		if !e.perOK[i] {
			continue
		}
		v := e.perVal[i]
		if !e.ok[g] {
			e.ok[g], e.val[g], e.mean[g], e.cnt[g] = true, v, v, 1
			continue
		}
		switch e.sel.Agg {
		case AggSum:
			e.val[g] += v
		case AggAvg:
			e.cnt[g]++
			if math.IsInf(e.mean[g], 0) {
				if math.IsInf(v, 0) && (e.mean[g] > 0) == (v > 0) {
					break // the mean is already that infinity
				}
				if !math.IsInf(v, 0) && !math.IsNaN(v) {
					break // a finite value does not move an infinite mean
				}
			}
			n := float64(e.cnt[g])
			e.mean[g] += v/n - e.mean[g]/n
		case AggMax:
			if e.val[g] < v || math.IsNaN(e.val[g]) {
				e.val[g] = v
			}
		case AggMin:
			if e.val[g] > v || math.IsNaN(e.val[g]) {
				e.val[g] = v
			}
		case AggCount:
			e.cnt[g]++
		}
	}
	for g := range e.ok {
		switch e.sel.Agg {
		case AggAvg:
			e.val[g] = e.mean[g]
		case AggCount:
			e.val[g] = float64(e.cnt[g])
		}
	}
}

// quantile sums the bucket rates by (le, By) and computes each
// histogram's quantile.
func (e *selectorEval) quantile() {
	clear(e.leOK)
	for i, g := range e.leOf {
		if !e.perOK[i] {
			continue
		}
		if !e.leOK[g] {
			e.leOK[g], e.leVal[g] = true, e.perVal[i]
		} else {
			e.leVal[g] += e.perVal[i]
		}
	}
	for h := range e.buckets {
		e.buckets[h] = e.buckets[h][:0]
	}
	for g, h := range e.leHist {
		if h >= 0 && e.leOK[g] {
			e.buckets[h] = append(e.buckets[h], tsdb.Bucket{UpperBound: e.leBound[g], Count: e.leVal[g]})
		}
	}
	for h, bs := range e.buckets {
		e.ok[h] = len(bs) > 0 // histogram_quantile answers (maybe NaN) for every histogram with a bucket
		if e.ok[h] {
			e.val[h] = bucketQuantile(e.sel.Quantile, bs)
		}
	}
}

// bucketQuantile is Prometheus's bucketQuantile: buckets with the same
// bound are merged first (coalesceBuckets), then tsdb's HistogramQuantile,
// the one home of the interpolation, does the rest.
func bucketQuantile(q float64, bs []tsdb.Bucket) float64 {
	slices.SortStableFunc(bs, func(a, b tsdb.Bucket) int {
		switch {
		case a.UpperBound < b.UpperBound:
			return -1
		case a.UpperBound > b.UpperBound:
			return 1
		}
		return 0
	})
	merged := bs[:1]
	for _, b := range bs[1:] {
		if last := &merged[len(merged)-1]; b.UpperBound == last.UpperBound {
			last.Count += b.Count
		} else {
			merged = append(merged, b)
		}
	}
	return tsdb.HistogramQuantile(q, merged)
}

// ruleEval is a rule's expression over its selectors:
// (expr [/ divide_by]) op threshold [and on(…) (cond op threshold)].
// Its slots are expr's.
type ruleEval struct {
	r                *Rule
	expr, div, cond  *selectorEval
	divOf            []int         // expr slot → divide_by slot, -1 when none matches
	resLabels        []tsdb.Labels // result labels per expr slot (lazy)
	andSig, condSig  []int         // signature ids of expr and condition slots; -1: no condition slot has it
	sigHeld          []bool
	divided, hasCond bool
}

// andOn returns the labels `and` matches on, and false for "all labels but
// the metric name" (PromQL's plain `and`). It is the one definition PromQL
// renders too.
func andOn(r *Rule) ([]string, bool) {
	switch {
	case r.Expr.Func == FuncQuantile: // its output has no le
		return byNames(r.Expr.By, tsdb.BucketLabel), true
	case r.Expr.aggregates():
		return byNames(r.Expr.By, ""), true
	case r.And != nil && len(r.And.By) > 0:
		return byNames(r.And.By, ""), true
	}
	return nil, false
}

// match precomputes which divide_by slot each expr slot divides by (one to
// one on all labels but the name) and the `and` signatures.
func (re *ruleEval) match() {
	n := len(re.expr.labels)
	re.resLabels = make([]tsdb.Labels, n)
	if re.div != nil {
		re.divided = true
		at := make(map[string]int, len(re.div.labels))
		for d := range re.div.labels {
			at[dropName(re.div.label(d)).String()] = d
		}
		re.divOf = make([]int, n)
		for e := range re.divOf {
			d, ok := at[dropName(re.expr.label(e)).String()]
			if !ok {
				d = -1
			}
			re.divOf[e] = d
		}
	}
	if re.cond == nil {
		return
	}
	re.hasCond = true
	on, useOn := andOn(re.r)
	sig := func(ls tsdb.Labels) string {
		if !useOn {
			return dropName(ls).String()
		}
		var b strings.Builder
		for _, name := range on {
			if v := ls.Get(name); v != "" {
				b.WriteString(name)
				b.WriteByte(0xff)
				b.WriteString(v)
				b.WriteByte(0xff)
			}
		}
		return b.String()
	}
	ids := map[string]int{}
	re.condSig = make([]int, len(re.cond.labels))
	for c := range re.condSig {
		k := sig(re.cond.label(c))
		id, ok := ids[k]
		if !ok {
			id = len(ids)
			ids[k] = id
		}
		re.condSig[c] = id
	}
	re.sigHeld = make([]bool, len(ids))
	re.andSig = make([]int, n)
	for e := range re.andSig {
		id, ok := ids[sig(re.label(e))]
		if !ok {
			id = -1
		}
		re.andSig[e] = id
	}
}

// label returns the result labels of slot: expr's, without the metric
// name when divided (arithmetic drops it, comparison keeps it).
func (re *ruleEval) label(slot int) tsdb.Labels {
	if re.resLabels[slot] == nil {
		ls := re.expr.label(slot)
		if re.divided {
			ls = dropName(ls)
		}
		re.resLabels[slot] = ls
	}
	return re.resLabels[slot]
}

// step evaluates the rule at t (ms) and calls emit for each result slot
// that has a value, in label order, saying whether the rule holds for it.
func (re *ruleEval) step(t int64, emit func(slot int, v float64, holds bool)) {
	re.expr.at(t)
	if re.div != nil {
		re.div.at(t)
	}
	if re.hasCond {
		re.cond.at(t)
		clear(re.sigHeld)
		for c, ok := range re.cond.ok {
			if ok && re.r.And.Op.Holds(re.cond.val[c], re.r.And.Threshold) {
				re.sigHeld[re.condSig[c]] = true
			}
		}
	}
	for slot, ok := range re.expr.ok {
		if !ok {
			continue
		}
		v := re.expr.val[slot]
		if re.divided {
			d := re.divOf[slot]
			if d < 0 || !re.div.ok[d] {
				continue
			}
			v /= re.div.val[d]
		}
		holds := re.r.Op.Holds(v, re.r.Threshold)
		if holds && re.hasCond {
			id := re.andSig[slot]
			holds = id >= 0 && re.sigHeld[id]
		}
		emit(slot, v, holds)
	}
}

// checkAlertLabels refuses holding samples that would become the same
// alert once the rule's labels, alertname and severity are applied, as
// Prometheus does ("vector contains metrics with the same labelset after
// applying alert labels"). Only samples carrying a label the rule sets can
// collide, so the common case costs a scan of label names.
func checkAlertLabels(r *Rule, holding []Sample) error {
	overrides := func(name string) bool {
		if name == "alertname" || (name == "severity" && r.Severity != "") {
			return true
		}
		_, ok := r.Labels[name]
		return ok
	}
	risky := false
	for _, s := range holding {
		if slices.ContainsFunc(s.Labels, func(l tsdb.Label) bool { return overrides(l.Name) }) {
			risky = true
			break
		}
	}
	if !risky {
		return nil
	}
	seen := make(map[string]bool, len(holding))
	for _, s := range holding {
		ls := AlertLabels(r, s.Labels)
		fp := Fingerprint(ls)
		if seen[fp] {
			return delivery.Errorf(delivery.EINVALID, "two series become the same alert %s once the rule's labels are applied: drop or change the rule label that overrides theirs", tsdb.FromMap(ls))
		}
		seen[fp] = true
	}
	return nil
}
