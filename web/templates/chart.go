package templates

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Units of a chart's y axis; FormatValue prints values in them.
const (
	UnitMessages = "messages"
	UnitRate     = "msgs/s"
	UnitSeconds  = "seconds"
	UnitPercent  = "percent" // values are ratios 0..1
)

// Chart is one server-drawn SVG line chart.
type Chart struct {
	ID       string // unique on the page; data-chart and the title's id
	Title    string
	Unit     string
	From, To time.Time
	Series   []ChartSeries
	// Error says the history could not be read; the chart then shows it
	// instead of "no data".
	Error string
	// Links go from the chart to example traces of its window (the failed
	// events, the slowest ones), shown under it.
	Links []ChartLink
}

// ChartLink is a link under a chart.
type ChartLink struct{ Label, Href string }

// ChartSeries is one line; Points are in time order, NaN values are gaps.
type ChartSeries struct {
	Name   string
	Points []ChartPoint
}

// ChartPoint is one value at one time.
type ChartPoint struct {
	T time.Time
	V float64
}

// Empty reports whether there is nothing to draw.
func (c Chart) Empty() bool {
	for _, s := range c.Series {
		for _, p := range s.Points {
			if !math.IsNaN(p.V) && !math.IsInf(p.V, 0) {
				return false
			}
		}
	}
	return true
}

// Geometry of the drawing, in SVG user units.
const (
	chartW, chartH       = 720.0, 200.0
	padLeft, padRight    = 64.0, 12.0
	padTop, padBottom    = 10.0, 24.0
	plotW, plotH         = chartW - padLeft - padRight, chartH - padTop - padBottom
	maxLegend            = 12
	chartPalette         = 8
	chartViewBox         = "0 0 720 200"
	plotLeft, plotBottom = padLeft, padTop + plotH
)

type chartTick struct {
	Pos   float64 // x for time ticks, y for value ticks
	Label string
}

type chartLine struct {
	Name, Class, Path, Last string
}

type chartLayout struct {
	XTicks, YTicks []chartTick
	Lines          []chartLine
	More           int // series left out of the legend
	Summary        string
	// Since is the time of the first sample when the history is shorter
	// than the range and the time axis starts there ("" otherwise).
	Since string
}

// minChartSpan is the shortest time axis: a history of a few seconds is
// still drawn over a minute.
const minChartSpan = time.Minute

// layout computes the axes, ticks and paths of c. Pure, so that the
// template stays a plain rendering of it.
//
// When the history is shorter than the range (a fresh install), the time
// axis starts at the first sample instead of leaving most of the chart
// empty. A line breaks where a series is silent: at a NaN point, and
// where two points are more than twice the series' usual spacing apart.
func layout(c Chart) chartLayout {
	var l chartLayout
	from, to := c.From, c.To
	if !to.After(from) {
		to = from.Add(time.Minute)
	}
	if first, ok := c.firstSample(from, to); ok && first.After(from) {
		l.Since = first.UTC().Format("15:04")
		if to.Sub(c.From) > 48*time.Hour {
			l.Since = first.UTC().Format("Jan 2 15:04")
		}
		from = first
		if to.Sub(from) < minChartSpan {
			from = to.Add(-minChartSpan)
		}
	}
	span := to.Sub(from).Seconds()
	lo, hi := 0.0, 0.0
	for _, s := range c.Series {
		for _, p := range s.Points {
			if finite(p.V) {
				lo, hi = math.Min(lo, p.V), math.Max(hi, p.V)
			}
		}
	}
	if c.Unit == UnitPercent && hi < 1 {
		hi = math.Max(hi, 0.01)
	}
	stepV := niceStep((hi - lo) / 4)
	if stepV <= 0 {
		stepV = 1
	}
	lo = math.Floor(lo/stepV) * stepV
	hi = math.Ceil(hi/stepV) * stepV
	if hi <= lo {
		hi = lo + stepV
	}
	x := func(t time.Time) float64 { return plotLeft + plotW*t.Sub(from).Seconds()/span }
	y := func(v float64) float64 { return plotBottom - plotH*(v-lo)/(hi-lo) }
	for v := lo; v <= hi+stepV/2; v += stepV {
		l.YTicks = append(l.YTicks, chartTick{Pos: round1(y(v)), Label: FormatValue(v, c.Unit)})
	}
	tstep := timeStep(to.Sub(from))
	for t := from.Truncate(tstep).Add(tstep); !t.After(to); t = t.Add(tstep) {
		l.XTicks = append(l.XTicks, chartTick{Pos: round1(x(t)), Label: timeLabel(t, to.Sub(from))})
	}
	var summary []string
	for i, s := range c.Series {
		var b strings.Builder
		pen := false
		last := math.NaN()
		every := spacing(s.Points)
		var prev time.Time
		for _, p := range s.Points {
			if !finite(p.V) || p.T.Before(from) || p.T.After(to) {
				pen = false
				continue
			}
			if pen && every > 0 && p.T.Sub(prev) > 2*every {
				pen = false
			}
			prev = p.T
			if pen {
				b.WriteString(" L")
			} else {
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				b.WriteByte('M')
				pen = true
			}
			b.WriteString(strconv.FormatFloat(round1(x(p.T)), 'f', -1, 64))
			b.WriteByte(',')
			b.WriteString(strconv.FormatFloat(round1(y(p.V)), 'f', -1, 64))
			last = p.V
		}
		if b.Len() == 0 {
			continue
		}
		line := chartLine{Name: s.Name, Class: "s" + strconv.Itoa(i%chartPalette), Path: b.String(), Last: FormatValue(last, c.Unit)}
		if len(l.Lines) >= maxLegend {
			l.More++
			line.Name = ""
		} else {
			summary = append(summary, s.Name+" "+line.Last)
		}
		l.Lines = append(l.Lines, line)
	}
	l.Summary = c.Title
	if len(summary) > 0 {
		l.Summary += " — latest: " + strings.Join(summary, ", ")
	}
	return l
}

// firstSample is the time of the earliest finite point in [from, to].
func (c Chart) firstSample(from, to time.Time) (time.Time, bool) {
	var first time.Time
	ok := false
	for _, s := range c.Series {
		for _, p := range s.Points {
			if finite(p.V) && !p.T.Before(from) && !p.T.After(to) && (!ok || p.T.Before(first)) {
				first, ok = p.T, true
			}
		}
	}
	return first, ok
}

// spacing is the usual time between a line's points: the median gap
// between consecutive finite points, 0 with fewer than two.
func spacing(pts []ChartPoint) time.Duration {
	var gaps []time.Duration
	var prev time.Time
	for _, p := range pts {
		if !finite(p.V) {
			continue
		}
		if !prev.IsZero() && p.T.After(prev) {
			gaps = append(gaps, p.T.Sub(prev))
		}
		prev = p.T
	}
	if len(gaps) == 0 {
		return 0
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// niceStep rounds a raw tick spacing up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || !finite(raw) {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// timeStep is the spacing of time ticks: four to eight over the range.
func timeStep(d time.Duration) time.Duration {
	for _, s := range []time.Duration{
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour,
	} {
		if d/s <= 7 {
			return s
		}
	}
	return 7 * 24 * time.Hour
}

func timeLabel(t time.Time, span time.Duration) string {
	t = t.UTC()
	if span > 48*time.Hour {
		return t.Format("Jan 2")
	}
	return t.Format("15:04")
}

// FormatValue prints v in unit, short: 1.2k, 3.4k/s, 850ms, 2m5s, 12.5%.
func FormatValue(v float64, unit string) string {
	if !finite(v) {
		return "—"
	}
	switch unit {
	case UnitRate:
		return PerSec(Rate{PerSec: v, Known: true})
	case UnitSeconds:
		return Seconds(v)
	case UnitPercent:
		return Percent(v)
	}
	if v < 0 {
		return "-" + FormatValue(-v, unit)
	}
	if v < 10 && v != math.Trunc(v) {
		return strings.TrimSuffix(strconv.FormatFloat(math.Round(v*10)/10, 'f', 1, 64), ".0")
	}
	return Count(int64(math.Round(v)))
}

// Seconds prints a duration given in seconds: 0s, 850ms, 12s, 3m20s, 2.5h, 3.1d.
func Seconds(v float64) string {
	switch {
	case !finite(v):
		return "—"
	case v < 0:
		return "-" + Seconds(-v)
	case v == 0:
		return "0s"
	case v < 1:
		return strconv.FormatFloat(math.Round(v*1000), 'f', 0, 64) + "ms"
	case v < 60:
		return short(v) + "s"
	case v < 3600:
		m := int(v) / 60
		s := int(math.Round(v)) % 60
		if s == 0 {
			return strconv.Itoa(m) + "m"
		}
		return strconv.Itoa(m) + "m" + strconv.Itoa(s) + "s"
	case v < 48*3600:
		return short(v/3600) + "h"
	}
	return short(v/86400) + "d"
}

// Percent prints a ratio as a percentage: 0%, 0.3%, 12.5%, 100%.
func Percent(r float64) string {
	if !finite(r) {
		return "—"
	}
	p := r * 100
	switch {
	case p == 0:
		return "0%"
	case p < 0.1:
		return "<0.1%"
	case p < 10:
		return strings.TrimSuffix(strconv.FormatFloat(math.Round(p*10)/10, 'f', 1, 64), ".0") + "%"
	}
	return strconv.FormatFloat(math.Round(p), 'f', 0, 64) + "%"
}
