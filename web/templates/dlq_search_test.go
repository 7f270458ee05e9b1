package templates

import (
	"context"
	"strings"
	"testing"
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
