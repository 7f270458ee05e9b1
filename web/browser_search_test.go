package web

import (
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// An operator types the search box's own example, "timeout", on the
// dead-letters entries page and gets the timeout failure — whose message
// says "timed out" and whose code and exception type (TIMEOUT,
// TimeoutException) are where the word is — even without the right to
// search payloads. A search that finds nothing says what it searched and
// offers the filter that would match; following it lists those entries.
func TestBrowserSearchFindsWhatThePageShows(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := newBrowser(t)
	base := serve(t, e)
	signIn(t, ctx, base, "/dead-letters/entries", "vera", viewerPassword)

	search := func(text string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="entries-q"]`)),
			chromedp.Clear(chromedp.CSS(`[data-testid="entries-q"]`)),
			chromedp.SendKeys(chromedp.CSS(`[data-testid="entries-q"]`), text),
		); err != nil {
			t.Fatalf("type %q: %v", text, err)
		}
		clickAndLoad(t, ctx, "search "+text, `[data-testid="entries-filter"] button[type="submit"]`)
	}
	texts := func(sel string) []string {
		t.Helper()
		out, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('`+sel+`')).map(n => n.textContent.trim())`))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	placeholder, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`[data-testid="entries-q"]`), "placeholder"))
	if err != nil || !strings.HasPrefix(placeholder.Value, "timeout") {
		t.Fatalf("placeholder = %q (%v), want the timeout example", placeholder.Value, err)
	}

	search("timeout")
	if got := texts(`[data-testid="entry-code"]`); !slices.Equal(got, []string{"TIMEOUT"}) {
		t.Errorf("timeout: codes %q, want the TIMEOUT entry", got)
	}
	if got := texts(`[data-testid="entry-row"]`); len(got) != 1 || !strings.Contains(got[0], "upstream timed out") {
		t.Errorf("timeout: rows %q", got)
	}
	search("exception:Timeout*")
	if got := texts(`[data-testid="entry-code"]`); !slices.Equal(got, []string{"TIMEOUT"}) {
		t.Errorf("exception:Timeout*: codes %q, want the TIMEOUT entry", got)
	}

	// Part of a code finds no entry, and the page says so.
	search("ORDER_NOT_FOU")
	if got := texts(`[data-testid="entry-row"]`); len(got) != 0 {
		t.Fatalf("ORDER_NOT_FOU: %d rows, want none", len(got))
	}
	searched, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="empty-searched"]`)))
	if err != nil || !strings.Contains(searched, "error codes") || !strings.Contains(searched, "exception types") || strings.Contains(searched, "payloads") {
		t.Errorf("what was searched: %q (%v); want error codes and exception types, not payloads", searched, err)
	}
	if got := texts(`[data-testid="search-suggestion"]`); len(got) != 1 || !strings.Contains(got[0], "error code") || !strings.Contains(got[0], "ORDER_NOT_FOUND") {
		t.Fatalf("suggestions %q, want error code ORDER_NOT_FOUND", got)
	}
	clickAndLoad(t, ctx, "follow the suggestion", `[data-testid="search-suggestion"]`)
	if got := texts(`[data-testid="entry-code"]`); !slices.Equal(got, []string{"ORDER_NOT_FOUND", "ORDER_NOT_FOUND", "ORDER_NOT_FOUND"}) {
		t.Errorf("after the suggestion: codes %q, want the three ORDER_NOT_FOUND entries", got)
	}
	if q, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`[data-testid="entries-q"]`))); err != nil || q != "" {
		t.Errorf("after the suggestion the search box holds %q (%v), want it empty", q, err)
	}
}
