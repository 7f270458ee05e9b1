package dlqstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"switchyard/delivery"
)

// A filter the store cannot hold is refused by every reader of filters —
// the entries query and a job's selection — naming the field: a year-9999
// bound once wrapped around in Unix nanoseconds and matched every entry,
// and a NUL in the text failed inside FTS5 as an internal error.
func TestFilterOutOfRangeIsRefused(t *testing.T) {
	s, _ := mustOpen(t)
	ctx := context.Background()
	var items []IndexItem
	for i := range 3 {
		items = append(items, spec{dest: "orders.dlq", off: int64(i), tenant: "t1", code: "E", msg: "timeout", at: t0}.item())
	}
	if _, err := s.IndexKafka(ctx, "main", "orders.dlq", 0, items, 3); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		f     Filter
		field string
	}{
		{"from in 9999", Filter{From: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}, "from"},
		{"to in 1000", Filter{To: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}, "to"},
		{"from past 2262", Filter{From: time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC)}, "from"},
		{"to before from", Filter{From: t0, To: t0.Add(-time.Hour)}, "to"},
		{"NUL in the text", Filter{Q: "a\x00b"}, "q"},
		{"escape in a name", Filter{Tenant: "t1\x1b[31m"}, "tenant"},
		{"invalid UTF-8", Filter{Destination: "\xff"}, "destination"},
		{"text too long", Filter{Q: strings.Repeat("a", MaxQueryLen+1)}, "search"},
		{"long cursor", Filter{Cursor: strings.Repeat("a", 5000)}, "cursor"},
		{"unknown status", Filter{Status: []Status{"gone"}}, "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.FindEntries(ctx, tc.f)
			if delivery.ErrorCode(err) != delivery.EINVALID || !strings.Contains(delivery.ErrorMessage(err), tc.field) {
				t.Errorf("FindEntries: %v, want EINVALID naming %s", err, tc.field)
			}
			if len(delivery.ErrorMessage(err)) > 300 {
				t.Errorf("the message echoes the input: %d bytes", len(delivery.ErrorMessage(err)))
			}
			f := tc.f
			_, err = s.PlanSelection(ctx, Selection{Filter: &f, Eligible: []Status{StatusDead}}, 5)
			if delivery.ErrorCode(err) != delivery.EINVALID {
				t.Errorf("PlanSelection: %v, want EINVALID", err)
			}
		})
	}
	// In range, the same bounds select.
	page, err := s.FindEntries(ctx, Filter{From: t0.Add(-time.Minute), To: t0.Add(time.Minute)})
	if err != nil || len(page.Entries) != 3 {
		t.Errorf("in range: %d entries, %v; want 3", len(page.Entries), err)
	}
}
