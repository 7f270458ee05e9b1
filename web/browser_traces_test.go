package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// visibleRows counts the waterfall rows a user can see.
const visibleRows = `[...document.querySelectorAll('[data-testid="wf-row"]')].filter(r => r.checkVisibility()).length`

// waitFor polls a JavaScript expression until it returns want, or fails
// the test at the deadline with what it returned last.
func waitFor[T comparable](t *testing.T, ctx context.Context, what, js string, want T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %v (%v), want %v", what, got, err, want)
		}
		if err := chromedp.Do(ctx, chromedp.Sleep(50*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrowserTracePage drives a real Chromium over the story of a
// declined payment (traces A, B linked to A, C linked to B): the page
// renders all of it, collapsing a subtree hides its rows, the service
// filter hides a service's rows, find highlights a span, and a "via link"
// trace link opens the linked trace.
func TestBrowserTracePage(t *testing.T) {
	e, s := traceEnv(t)
	ctx := newBrowser(t)
	base := serve(t, e)
	signIn(t, ctx, base, "/traces/"+storyA, "admin", adminPassword)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid="waterfall"].js`))); err != nil {
		t.Fatalf("the waterfall with its script: %v", err)
	}
	waitFor(t, ctx, "rows of the story", visibleRows, 8)

	// Collapse A's root: everything below it (7 rows, B and C included) folds.
	root := `[data-testid="wf-row"][data-row="0"] [data-testid="wf-toggle"]`
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(root))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "rows after collapsing the root", visibleRows, 1)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(root))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "rows after expanding the root", visibleRows, 8)

	// Untick billing: its four spans go, the rest stay.
	billing := `[data-service-filter="billing"]`
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(billing))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "rows without billing", visibleRows, 4)
	waitFor(t, ctx, "billing rows hidden",
		`[...document.querySelectorAll('[data-service="billing"]')].some(r => r.checkVisibility())`, false)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(billing))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "rows with billing again", visibleRows, 8)

	// Find: the fraud check is highlighted and current.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`[data-testid="wf-find"]`), "fraud")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the found span", `[...document.querySelectorAll('.wf-match')].map(r => r.getAttribute('data-span')).join(',')`, s.fraud.String())
	waitFor(t, ctx, "the current match", `document.querySelector('.wf-current') ? document.querySelector('.wf-current').id : ''`, "span-"+s.fraud.String())
	count, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="wf-find-count"]`)))
	if err != nil || count != "1 of 1" {
		t.Errorf("find count = %q (%v), want 1 of 1", count, err)
	}

	// The redrive's trace, entered over a span link, opens on a click.
	link := `[data-testid="via-link-trace"][href="/traces/` + storyC + `"]`
	clickAndLoad(t, ctx, "open the linked trace", link)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(loc, "/traces/"+storyC) {
		t.Fatalf("after the via-link click at %q (%v), want /traces/%s", loc, err, storyC)
	}
	id, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="trace-id"]`)))
	if err != nil || id != storyC {
		t.Errorf("trace page heading %q (%v), want %s", id, err, storyC)
	}
	// The linked trace tells the same story from its side.
	waitFor(t, ctx, "rows of the story from the redrive", visibleRows, 8)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="trace-ref"]').length`)); err != nil || n != 3 {
		t.Errorf("traces of the story seen from C = %d (%v), want 3", n, err)
	}
}

// Opening a row of a large trace fetches its details into the page.
func TestBrowserLargeTraceOpensARow(t *testing.T) {
	e := newEnv(t, envOptions{})
	tid, last := seedBigTrace(t, e)
	ctx := newBrowser(t)
	base := serve(t, e)
	signIn(t, ctx, base, "/traces/"+tid.String(), "admin", adminPassword)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid="waterfall"].js`))); err != nil {
		t.Fatalf("the waterfall with its script: %v", err)
	}
	row := `#span-` + last.String()
	if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.CSS(row+" summary")), chromedp.Click(chromedp.CSS(row+" summary"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the opened row's details",
		`(document.querySelector('`+row+` [data-testid="wf-details"]') || {textContent: ''}).textContent.includes('row-`+last.String()+`')`, true)
}
