package web

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"switchyard/internal/testenv"
)

// newBrowser starts a real headless Chromium for the test (Debian's, with
// the flags this machine's closed network needs) and returns a tab whose
// steps share a 60 s budget. It fails in CI, and skips elsewhere, when
// Chromium is missing.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	chromium := testenv.Chromium(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	// The first call starts the browser, which lives as long as that
	// call's context: no timeout on it, a timeout on what follows.
	if _, err := chromedp.Call(tab, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// clickAndLoad clicks sel and waits for the page it loads.
func clickAndLoad(t *testing.T, ctx context.Context, what, sel string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// signIn opens path, which sends the browser to the login form, and signs
// in there as user.
func signIn(t *testing.T, ctx context.Context, base, path, user, password string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+path),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="login-user"]`), user),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="login-password"]`), password),
	); err != nil {
		t.Fatalf("login form: %v", err)
	}
	clickAndLoad(t, ctx, "sign in as "+user, `[data-testid="login-submit"]`)
}
