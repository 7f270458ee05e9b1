package templates

import (
	"context"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{0, UnitSeconds, "0s"}, {0.25, UnitSeconds, "250ms"}, {12.34, UnitSeconds, "12.3s"}, {200, UnitSeconds, "3m20s"},
		{7200, UnitSeconds, "2h"}, {3 * 86400, UnitSeconds, "3d"},
		{0.125, UnitPercent, "13%"}, {0.045, UnitPercent, "4.5%"}, {0, UnitPercent, "0%"}, {1, UnitPercent, "100%"}, {0.0004, UnitPercent, "<0.1%"},
		{1500, UnitMessages, "1.5k"}, {2.5, UnitMessages, "2.5"}, {3, UnitMessages, "3"},
		{1234, UnitRate, "1.2k/s"}, {0.4, UnitRate, "0.4/s"},
		{math.NaN(), UnitSeconds, "—"}, {math.Inf(1), UnitMessages, "—"},
	} {
		if got := FormatValue(tc.v, tc.unit); got != tc.want {
			t.Errorf("FormatValue(%v, %s) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

func render(t *testing.T, c Chart) string {
	t.Helper()
	var b strings.Builder
	if err := ChartView(c).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestChartView(t *testing.T) {
	to := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	from := to.Add(-time.Hour)
	c := Chart{ID: "lag", Title: "Total lag", Unit: UnitMessages, From: from, To: to}

	empty := render(t, c)
	if !strings.Contains(empty, `data-testid="chart-empty"`) || !strings.Contains(empty, "No data in this range yet") || strings.Contains(empty, "<svg") {
		t.Errorf("empty chart:\n%s", empty)
	}
	c.Series = []ChartSeries{{Name: "orders/0", Points: []ChartPoint{{from, math.NaN()}}}}
	if !strings.Contains(render(t, c), `data-testid="chart-empty"`) {
		t.Error("a chart of NaN only is not empty")
	}

	c.Series = []ChartSeries{
		{Name: "orders/0", Points: []ChartPoint{{from, 0}, {from.Add(30 * time.Minute), 500}, {to, 1000}}},
		{Name: "orders/1", Points: []ChartPoint{{from, 10}, {from.Add(10 * time.Minute), math.NaN()}, {to, 20}}},
	}
	got := render(t, c)
	for _, want := range []string{
		`<svg viewBox="0 0 720 200" role="img" aria-labelledby="lag-title"`,
		`<title id="lag-title">Total lag — latest: orders/0 1k, orders/1 20</title>`,
		`data-testid="chart-legend"`, "orders/1",
		// Value ticks from 0 to 1000 in nice steps, time ticks every 10 minutes.
		`data-testid="chart-ytick">0<`, `data-testid="chart-ytick">500<`, `data-testid="chart-ytick">1k<`, `data-testid="chart-xtick">11:10<`, `data-testid="chart-xtick">12:00<`,
		// The first line starts bottom-left and ends top-right of the plot.
		`d="M64,176 L386,93 L708,10"`,
		// A NaN breaks the second line into two pieces.
		`d="M64,174.3 M708,172.7"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("chart lacks %q\n%s", want, got)
		}
	}
	if strings.Contains(got, "style=") {
		t.Error("inline style in the chart: the CSP blocks it")
	}
	c.Error = "History is unavailable right now"
	if !strings.Contains(render(t, c), `data-testid="chart-error"`) {
		t.Error("chart error not shown")
	}
}

// A fresh install has twenty minutes of history in a 1 h range: the time
// axis starts at the first sample (and says so) instead of leaving three
// quarters of the chart empty, and a series silent for five minutes is
// drawn as two pieces, not bridged.
func TestChartStartsAtFirstSampleAndBreaksAtSilences(t *testing.T) {
	to := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	first := to.Add(-20 * time.Minute)
	var pts []ChartPoint
	for m := 0; m <= 20; m++ {
		if m > 8 && m < 14 { // 11:49–11:53 silent
			continue
		}
		pts = append(pts, ChartPoint{first.Add(time.Duration(m) * time.Minute), 10})
	}
	c := Chart{ID: "rate", Title: "Events per second", Unit: UnitRate, From: to.Add(-time.Hour), To: to,
		Series: []ChartSeries{{Name: "processed", Points: pts}}}
	got := render(t, c)
	paths := regexp.MustCompile(`<path class="line s0" d="([^"]*)"`).FindStringSubmatch(got)
	if paths == nil {
		t.Fatalf("no line\n%s", got)
	}
	if n := strings.Count(paths[1], "M"); n != 2 {
		t.Errorf("line %q has %d pieces, want 2 (broken at the silence)", paths[1], n)
	}
	if !strings.HasPrefix(paths[1], "M64,") || !strings.Contains(paths[1], " L708,") {
		t.Errorf("line %q does not span the plot from its left edge (the first sample) to its right edge", paths[1])
	}
	for _, want := range []string{`data-testid="chart-since">History starts at 11:40 UTC`, `data-testid="chart-xtick">11:45<`} {
		if !strings.Contains(got, want) {
			t.Errorf("chart lacks %q\n%s", want, got)
		}
	}
	if strings.Contains(got, `data-testid="chart-xtick">11:10<`) {
		t.Error("time ticks before the first sample: the axis still starts at the range's start")
	}
	// A full hour of history: the axis is the range, no note.
	c.Series[0].Points = append([]ChartPoint{{to.Add(-time.Hour), 10}}, pts...)
	if got := render(t, c); strings.Contains(got, `data-testid="chart-since"`) {
		t.Error("a chart with history over the whole range says it starts later")
	}
}
