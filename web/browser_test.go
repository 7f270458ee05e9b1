package web

import (
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestBrowserNavigation drives a real Chromium against a real server (kfake
// cluster, SQLite users): every navigation entry is there, and clicking
// Consumers shows the group the test created.
func TestBrowserNavigation(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := newBrowser(t)
	base := serve(t, e)
	// Without a session the console sends the browser to the login form;
	// a wrong password stays there with an inline error.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/consumers"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="login-user"]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="login-password"]`), "not the password"),
	); err != nil {
		t.Fatalf("login form: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)))); err != nil {
		t.Fatalf("submit login: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="form-error"]`)))
	if err != nil || msg != "Wrong user name or password." {
		t.Fatalf("wrong password: error %q (%v)", msg, err)
	}
	// The form keeps the user name, never the password.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`[data-testid="login-password"]`), adminPassword),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)))); err != nil {
		t.Fatalf("submit login: %v", err)
	}
	// Back where the browser wanted to go.
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/consumers") {
		t.Errorf("after login at %s, want /consumers", loc)
	}
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="whoami"]`)))
	if err != nil || who != "admin" {
		t.Errorf("whoami = %q (%v)", who, err)
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="cluster"][data-cluster="`+testCluster+`"]`)),
	); err != nil {
		t.Fatalf("load overview: %v", err)
	}
	links, err := chromedp.Run(ctx, chromedp.AttributesAll(chromedp.CSSAll(`nav a[data-testid^="nav-"]`)))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, attrs := range links {
		seen[attrs["data-testid"]] = true
	}
	for _, a := range []string{"overview", "consumers", "queues", "dead-letters", "traces", "alerts", "export", "admin"} {
		if !seen["nav-"+a] {
			t.Errorf("nav link nav-%s missing; have %v", a, seen)
		}
	}

	// Click does not wait for the page load; WaitEvent subscribes first.
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`[data-testid="nav-consumers"]`)))); err != nil {
		t.Fatalf("click Consumers: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`tr[data-testid="group-row"][data-group="`+testGroup+`"]`))); err != nil {
		t.Fatalf("group row on the consumers page: %v", err)
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main h1`)))
	if err != nil {
		t.Fatal(err)
	}
	lag, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-group="`+testGroup+`"] [data-testid="group-lag"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(location, "/consumers") || heading != "Consumers" || lag != "16" {
		t.Errorf("after clicking Consumers: at %s, heading %q, lag %q; want /consumers, Consumers, 16", location, heading, lag)
	}

	// app.js refreshes the panel in place (under the CSP, from the
	// fragment endpoint): a group that appears now shows up without a reload.
	var offs kadm.Offsets
	offs.AddOffset(testTopic, 0, 1, -1)
	if err := kadm.NewClient(e.kafka).CommitAllOffsets(ctx, "late-joiner", offs); err != nil {
		t.Fatal(err)
	}
	if err := e.poller.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`tr[data-group="late-joiner"]`))); err != nil {
		t.Fatalf("auto-refresh did not bring the new group: %v", err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != location {
		t.Errorf("auto-refresh navigated to %s", loc)
	}

	current, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`[data-testid="nav-consumers"]`), "aria-current"))
	if err != nil {
		t.Fatal(err)
	}
	if current.Value != "page" {
		t.Errorf("Consumers link not marked current (aria-current=%q)", current.Value)
	}

	// Signing out ends the session: the next page is the login form again.
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`[data-testid="logout"]`)))); err != nil {
		t.Fatalf("click sign out: %v", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/consumers"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)),
	); err != nil {
		t.Fatalf("after sign-out: %v", err)
	}
}
