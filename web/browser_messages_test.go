package web

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserMessageBrowser drives the message browser in Chromium as an
// operator would: a compact table whose row opens to the whole message,
// older and newer pages, a seek by offset in one partition, a seek by
// time, and a value filter — each a form or link of the page.
func TestBrowserMessageBrowser(t *testing.T) {
	e := newEnv(t, envOptions{})
	topic, base := seedBrowsedTopic(t, e)
	ctx := newBrowser(t)
	srv := serve(t, e)
	signIn(t, ctx, srv, "/topics/demo/"+topic+"/messages?limit=5", "admin", adminPassword)

	// shown is the record numbers of the rows (n = offset·3 + partition),
	// in the page's order.
	shown := func(want ...int) {
		t.Helper()
		rows, err := chromedp.Run(ctx, chromedp.AttributesAll(chromedp.CSSAll(`tr[data-testid="message"]`)))
		if err != nil {
			t.Fatalf("rows: %v", err)
		}
		var got []int
		for _, r := range rows {
			p, _ := strconv.Atoi(r["data-partition"])
			o, _ := strconv.Atoi(r["data-offset"])
			got = append(got, o*3+p)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("at %s the rows are %v, want %v", loc, got, want)
		}
	}
	visible := func(sel string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const el = document.querySelector(`+strconv.Quote(sel)+`); return !!el && el.checkVisibility(); })()`))
		if err != nil {
			t.Fatalf("visible %s: %v", sel, err)
		}
		return v
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// submit types into the form's fields (by data-testid) and sends it.
	submit := func(what string, fields map[string]string) {
		t.Helper()
		for id, v := range fields {
			js := `(() => { const el = document.querySelector('[data-testid="` + id + `"]'); el.value = ` + strconv.Quote(v) + `; return el.value; })()`
			if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js)); err != nil || got != v {
				t.Fatalf("%s: set %s to %q: got %q, %v", what, id, v, got, err)
			}
		}
		clickAndLoad(t, ctx, what, `[data-testid="messages-show"]`)
	}

	// The newest page: one compact line per message, none open.
	shown(29, 28, 27, 26, 25)
	newest := `tr[data-partition="2"][data-offset="9"]`
	if got := text(newest + ` [data-testid="message-key"]`); got != "key-29" {
		t.Errorf("key of the newest row = %q", got)
	}
	if got := text(newest + ` .preview`); got != `{"n":29,"note":"plain"}` {
		t.Errorf("preview of the newest row = %q", got)
	}
	if visible(newest + ` [data-testid="message-value"]`) {
		t.Fatal("a row is open before it was clicked")
	}
	// Clicking the row opens the whole message in place: pretty JSON and
	// its headers.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(newest+` [data-testid="message-summary"]`))); err != nil {
		t.Fatal(err)
	}
	if !visible(newest + ` [data-testid="message-value"]`) {
		t.Fatal("the clicked row did not open")
	}
	if got := text(newest + ` [data-testid="message-value"]`); !strings.Contains(got, "\"n\": 29,\n") {
		t.Errorf("opened value = %q, want indented JSON", got)
	}
	if got := text(newest + ` [data-testid="message-headers"]`); !strings.Contains(got, "kind") || !strings.Contains(got, "odd") {
		t.Errorf("opened headers = %q", got)
	}
	if visible(`tr[data-partition="1"][data-offset="9"] [data-testid="message-value"]`) {
		t.Error("opening one row opened another")
	}

	// Older, then newer again: the page before, then the one after it.
	clickAndLoad(t, ctx, "older", `[data-testid="messages-older"]`)
	shown(24, 23, 22, 21, 20)
	clickAndLoad(t, ctx, "newer", `[data-testid="messages-newer"]`)
	shown(25, 26, 27, 28, 29)
	if got := text(`[data-testid="messages-order"]`); got != "oldest first" {
		t.Errorf("order of a newer page = %q", got)
	}

	// Seek by offset in partition 1, then by time in every partition.
	submit("seek by offset", map[string]string{"messages-partition": "1", "messages-offset": "3"})
	shown(10, 13, 16, 19, 22)
	submit("seek by time", map[string]string{
		"messages-partition": "-1", "messages-offset": "",
		"messages-timestamp": base.Add(18 * time.Second).Format("2006-01-02T15:04:05"),
	})
	shown(18, 19, 20, 21, 22)
	// Older from a seek: the records just before that time, newest first.
	clickAndLoad(t, ctx, "older than the time", `[data-testid="messages-older"]`)
	shown(17, 16, 15, 14, 13)

	// A value filter fills the page with matches; the next page goes on
	// after the last of them.
	submit("filter", map[string]string{"messages-timestamp": "", "messages-value-filter": "REFUND"})
	shown(25, 20, 15, 10, 5)
	clickAndLoad(t, ctx, "older matches", `[data-testid="messages-older"]`)
	shown(0)
	// A bad offset is refused on the page, which keeps the form.
	submit("bad offset", map[string]string{"messages-value-filter": "", "messages-partition": "0", "messages-offset": "99"})
	if got := text(`[data-testid="messages-error"]`); !strings.Contains(got, "offset 99 is past the end of partition 0") {
		t.Errorf("error = %q", got)
	}
}
