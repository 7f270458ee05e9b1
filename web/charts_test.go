package web

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"switchyard/collector"
)

// Every page that shows time opens on the same range when the link names
// none: the dashboards and the dead-letter landing page alike.
func TestOneDefaultRangeOnEveryPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, path := range []string{"/", "/consumers", "/consumers/demo/" + testGroup, "/topics/demo/" + testTopic, "/queues", "/dead-letters"} {
		r := e.admin(t, path)
		if r.status != http.StatusOK {
			t.Errorf("GET %s = %d", path, r.status)
			continue
		}
		mustContain(t, path+" opens on the default range", openTag(r.body, `data-testid="range-`+defaultRange+`"`), `class="current"`)
	}
	// The dead-letter trends count over that range too.
	mustContain(t, "sparkline", e.admin(t, "/dead-letters").body, "in the last "+defaultRange)
}

// A service whose OTLP exports stopped for five minutes: the events chart
// breaks its line there — no 0/s stretch and no spike after — and on a
// fresh install (twenty minutes of history in an hour's range) the time
// axis starts at the first sample.
func TestEventsChartGapsWhereExportsStopped(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	now := time.Now().Truncate(time.Minute)
	labels := map[string]string{"service": "billing", "event_type": testTopic, "messaging_system": "kafka", "destination": testTopic, "consumer": testGroup}
	// One export every 15 s at 2 events/s, none from 11 to 6 minutes ago.
	var n float64
	for at := now.Add(-20 * time.Minute); !at.After(now.Add(-15 * time.Second)); at = at.Add(15 * time.Second) {
		n += 30
		if at.After(now.Add(-11*time.Minute)) && at.Before(now.Add(-6*time.Minute)) {
			continue
		}
		if err := e.series.Append(ctx, collector.ServiceSamples([]collector.ServicePoint{
			{Name: collector.PromEventProcessed, Labels: labels, Value: n},
		}, at)); err != nil {
			t.Fatal(err)
		}
	}
	chart := chartOf(e.admin(t, "/").body, "svc-rates")
	m := regexp.MustCompile(`<path class="line s0" d="([^"]*)"`).FindStringSubmatch(chart)
	if m == nil {
		t.Fatalf("no processed line in the events chart:\n%s", chart)
	}
	if pieces := strings.Count(m[1], "M"); pieces != 2 {
		t.Errorf("processed line %q has %d pieces, want 2: broken where the exports stopped", m[1], pieces)
	}
	// Every drawn point is at 2/s: the same height, no drop and no spike.
	ys := map[string]bool{}
	for _, pt := range regexp.MustCompile(`[ML](\d+(?:\.\d+)?),(\d+(?:\.\d+)?)`).FindAllStringSubmatch(m[1], -1) {
		ys[pt[2]] = true
	}
	if len(ys) != 1 {
		t.Errorf("processed line %q has points at %d heights, want one (2/s throughout)", m[1], len(ys))
	}
	if !strings.HasPrefix(m[1], "M64,") {
		t.Errorf("processed line %q does not start at the left edge: the axis should start at the first sample", m[1])
	}
	mustContain(t, "axis note", chart, `data-testid="chart-since"`)
	mustContain(t, "legend", chart, "processed", "2/s")
}
