package templates

import (
	"context"
	"strings"
	"testing"
	"time"
)

// While the search index is rebuilt for older entries, a text search
// says it may miss them: beside its results, and in an empty result with
// what it searched.
func TestEntriesSayTheSearchIndexIsRebuilding(t *testing.T) {
	render := func(v DeadLetterEntries) string {
		t.Helper()
		var b strings.Builder
		if err := DeadLetterEntriesView(v, EntriesJobs{}).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	v := DeadLetterEntries{Filter: EntryFilterForm{Q: "timeout"}, Searched: "error messages and error codes", TextPending: true,
		Total: "1", Rows: []DLQEntryRow{{ID: 1, Href: "/dead-letters/entries/1", ErrorCode: "UPSTREAM_TIMEOUT"}}}
	if got := render(v); !strings.Contains(got, `data-testid="search-pending"`) {
		t.Errorf("results while rebuilding lack the notice:\n%s", got)
	}
	v.Rows, v.Total = nil, "0"
	got := render(v)
	for _, want := range []string{`data-testid="empty-pending"`, "Searched error messages and error codes", `data-testid="empty-searched-q">timeout<`} {
		if !strings.Contains(got, want) {
			t.Errorf("empty result while rebuilding lacks %q:\n%s", want, got)
		}
	}
	v.TextPending = false
	if got := render(v); strings.Contains(got, "pending") {
		t.Errorf("a notice after the rebuild:\n%s", got)
	}
}

// While the text index follows capture, a text search says how far
// behind it is — beside its results and in an empty result — from a
// second up, and that filters and counts are current.
func TestEntriesSayHowFarTextSearchLags(t *testing.T) {
	render := func(v DeadLetterEntries) string {
		t.Helper()
		var b strings.Builder
		if err := DeadLetterEntriesView(v, EntriesJobs{}).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	v := DeadLetterEntries{Filter: EntryFilterForm{Q: "timeout"}, Searched: "error messages", TextBehind: 3400 * time.Millisecond,
		Total: "1", Rows: []DLQEntryRow{{ID: 1, Href: "/dead-letters/entries/1", ErrorCode: "UPSTREAM_TIMEOUT"}}}
	const note = "Text search covers entries up to 3 s ago; filters and counts are current."
	if got := render(v); !strings.Contains(got, `data-testid="search-behind"`) || !strings.Contains(got, note) {
		t.Errorf("results 3.4 s behind lack the note:\n%s", got)
	}
	v.Rows, v.Total = nil, "0"
	if got := render(v); !strings.Contains(got, `data-testid="empty-behind"`) || !strings.Contains(got, note) {
		t.Errorf("an empty result 3.4 s behind lacks the note:\n%s", got)
	}
	v.TextBehind = 2*time.Hour + 5*time.Minute
	if got := render(v); !strings.Contains(got, "up to 2 h 5 min ago") {
		t.Errorf("2 h 5 min behind:\n%s", got)
	}
	v.TextBehind = 400 * time.Millisecond
	if got := render(v); strings.Contains(got, "behind") || strings.Contains(got, "covers entries") {
		t.Errorf("a note under a second behind:\n%s", got)
	}
}
