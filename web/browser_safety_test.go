package web

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserBindingFormGrantsOnlyWhatIsTyped drives the Add-binding form
// in a real Chromium: with Resources left empty (whose placeholder once
// looked like a value and granted "*"), the browser will not send the
// form; a client that sends it anyway gets the form back with the
// server's refusal; only a typed "*" grants everything.
func TestBrowserBindingFormGrantsOnlyWhatIsTyped(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := newBrowser(t)
	base := serve(t, e)
	count := func() int {
		t.Helper()
		bs, err := e.store.ListBindings(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(bs)
	}
	before := count()
	signIn(t, ctx, base, "/admin/bindings", "admin", adminPassword)
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="binding-add"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="binding-subject"]`), "user:vera"),
		chromedp.SetValue(chromedp.CSS(`[data-testid="binding-add"] select[name="role"]`), "operator"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="binding-tenants"]`), "t1"),
		chromedp.Click(chromedp.CSS(`[data-testid="binding-submit"]`)),
	); err != nil {
		t.Fatalf("fill the form: %v", err)
	}
	// The browser keeps the form: Resources is required and empty.
	invalid, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('[data-testid="binding-resources"]').matches(':invalid')`))
	if err != nil || !invalid {
		t.Errorf("empty Resources is not flagged invalid by the browser (%v)", err)
	}
	if n := count(); n != before {
		t.Fatalf("the browser sent a form with empty Resources: %d bindings, was %d", n, before)
	}

	// A client that skips the browser's check meets the store's.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('[data-testid="binding-add"]').noValidate = true`)); err != nil {
		t.Fatal(err)
	}
	clickAndLoad(t, ctx, "send the form anyway", `[data-testid="binding-submit"]`)
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="form-error"]`)))
	if err != nil || !strings.Contains(msg, "*") {
		t.Errorf("refusal = %q (%v), want a message that says to type *", msg, err)
	}
	if n := count(); n != before {
		t.Fatalf("empty Resources created a binding: %d bindings, was %d", n, before)
	}

	// The form came back with what was typed; "*" typed grants everything.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`[data-testid="binding-resources"]`), "*"),
	); err != nil {
		t.Fatal(err)
	}
	clickAndLoad(t, ctx, "add with *", `[data-testid="binding-submit"]`)
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="flash"]`)))
	if err != nil || !strings.Contains(flash, "Bound user:vera to role operator") {
		t.Errorf("flash = %q (%v)", flash, err)
	}
	if n := count(); n != before+1 {
		t.Errorf("%d bindings after adding one, was %d", n, before)
	}
}

// TestBrowserEntryPageMasksTheCustomer: an operator without read_pii opens
// a dead letter in a real Chromium and sees its key and partition key
// masked — the customer the payload already hid.
func TestBrowserEntryPageMasksTheCustomer(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := newBrowser(t)
	base := serve(t, e)
	id := e.dlqIDs["nf1"]
	signIn(t, ctx, base, "/dead-letters/entries/"+itoa64(id), "tess", operatorPassword)
	key, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="entry-key"]`)))
	if err != nil || key != "***" {
		t.Errorf("key = %q (%v), want ***", key, err)
	}
	env, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="envelope"]`)))
	if err != nil || strings.Contains(env, fixtureCustomer("nf1")) || !strings.Contains(env, "***") {
		t.Errorf("envelope shows %q (%v): want the partition key masked", env, err)
	}
}
