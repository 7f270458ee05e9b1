package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"switchyard/collector"
)

// TestBrowserAlertOnThis is "tell me when this happens again" in two
// clicks, in Chromium: from a consumer group's page, "Alert on its lag"
// opens the rule form filled in for that group; the threshold is tuned on
// the preview of the group's history (the chart with its firing interval,
// drawn by the server, no script needed); Save lands on the rule's page.
func TestBrowserAlertOnThis(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := newBrowser(t)
	base := serve(t, e)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	value := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("value of %s: %v", sel, err)
		}
		return v
	}

	signIn(t, ctx, base, "/consumers/"+testCluster+"/"+testGroup, "admin", adminPassword)
	clickAndLoad(t, ctx, "Alert on its lag", `a[data-testid="alert-on"][href*="lag_seconds"]`)
	if got := value(`[data-testid="f-name"]`); !strings.Contains(got, testGroup) {
		t.Errorf("rule name = %q, want one naming the group", got)
	}
	if got := value(`[data-testid="f-expr.metric"]`); got != collector.MGroupMaxLagSeconds {
		t.Errorf("metric = %q", got)
	}
	if got := value(`[data-testid="f-expr.matchers"]`); !strings.Contains(got, `group="`+testGroup+`"`) || !strings.Contains(got, `cluster="`+testCluster+`"`) {
		t.Errorf("matchers = %q", got)
	}

	// The history has the lag grow to a minute over the last hour: at 30s
	// the rule would have fired once, for its last half hour or so.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`[data-testid="f-threshold"]`), "30")); err != nil {
		t.Fatal(err)
	}
	clickAndLoad(t, ctx, "Preview", `[data-testid="rule-preview"]`)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid="preview-chart"] svg`))); err != nil {
		t.Fatalf("preview chart: %v", err)
	}
	if got := text(`[data-testid="preview-fired"]`); got != "1" {
		t.Errorf("would have fired %q times, want 1", got)
	}
	bands, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="preview-band"][data-state="firing"]').length`))
	if err != nil || bands != 1 {
		t.Errorf("firing bands on the chart = %d (%v), want 1", bands, err)
	}
	if got := value(`[data-testid="f-threshold"]`); got != "30" {
		t.Errorf("threshold after the preview = %q, want what was typed", got)
	}

	clickAndLoad(t, ctx, "Save", `[data-testid="rule-save"]`)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.Contains(loc, "/alerts/rules/") {
		t.Fatalf("after Save at %s (%v), want the rule's page", loc, err)
	}
	if got := text(`[data-testid="rule-name"]`); !strings.Contains(got, testGroup) {
		t.Errorf("rule page heading = %q", got)
	}
	if got := text(`[data-testid="flash"]`); !strings.Contains(got, "created") {
		t.Errorf("flash = %q", got)
	}
	if got := text(`[data-testid="rule-promql"]`); !strings.Contains(got, collector.MGroupMaxLagSeconds) || !strings.Contains(got, "> 30") {
		t.Errorf("PromQL = %q", got)
	}
}
