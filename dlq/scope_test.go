package dlq_test

import (
	"context"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
)

// Every list is computed over the caller's view scope in the store's
// query: each page but the last is full, holds only entries the policy
// lets them view, and together the pages are exactly those entries, with
// an exact total.
func TestEntryPagesAreFullAndOnlyTheCallers(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	tom := callerWith("tom", grant(orders, everything, access.ActionView), grant([]string{"kafka:main/payments"}, t1, access.ActionView))
	for _, c := range []dlq.Caller{admin, vera, olga, pia, tom, callerWith("nobody")} {
		t.Run(c.P.User, func(t *testing.T) {
			want := w.visible(t, c)
			seen := map[int64]bool{}
			f := dlqstore.Filter{Limit: 2}
			for {
				p, err := w.svc.FindEntries(ctx, c, f)
				if err != nil {
					t.Fatal(err)
				}
				if f.Cursor == "" && p.Total != len(want) {
					t.Errorf("total = %d, want %d", p.Total, len(want))
				}
				if p.Next != "" && len(p.Entries) != f.Limit {
					t.Errorf("a page of %d entries before the last, want %d", len(p.Entries), f.Limit)
				}
				for _, e := range p.Entries {
					if !want[e.ID] || seen[e.ID] {
						t.Errorf("entry %d (%s, tenant %q) listed: not the caller's, or twice", e.ID, e.Resource, e.Tenant)
					}
					seen[e.ID] = true
				}
				if p.Next == "" {
					break
				}
				f.Cursor = p.Next
			}
			if len(seen) != len(want) {
				t.Errorf("listed %d entries, want %d", len(seen), len(want))
			}
		})
	}
}

// Groups, a group, its trend and the open count are the caller's only; a
// group without an entry of theirs does not exist for them.
func TestAggregatesAreTheCallers(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	groups, _, err := w.svc.Groups(ctx, olga, dlqstore.GroupFilter{})
	if err != nil {
		t.Fatal(err)
	}
	// olga: orders of t1 (5) and the untenanted one.
	if len(groups) != 1 || groups[0].ErrorCode != "A" || groups[0].Count != 6 {
		t.Fatalf("olga's groups = %+v, want group A with 6 entries", groups)
	}
	a := groups[0]
	if n, err := w.svc.OpenCount(ctx, olga); err != nil || n != 6 {
		t.Errorf("olga's open count = %d (%v), want 6", n, err)
	}
	trends, err := w.svc.Trends(ctx, olga, []int64{a.ID}, dlqstoretest.T0().Add(-time.Hour), dlqstoretest.T0().Add(time.Hour), 10*time.Minute)
	if sum := sumOf(trends[a.ID]); err != nil || sum != 6 {
		t.Errorf("olga's trend of A sums to %d (%v), want 6", sum, err)
	}
	all, _, err := w.svc.Groups(ctx, admin, dlqstore.GroupFilter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("admin's groups = %+v (%v), want A and B", all, err)
	}
	for _, g := range all {
		if g.ErrorCode != "B" {
			continue
		}
		if _, err := w.svc.Group(ctx, olga, g.ID); delivery.ErrorCode(err) != delivery.ENOTFOUND {
			t.Errorf("olga's view of group B = %v, want ENOTFOUND", err)
		}
		trends, err := w.svc.Trends(ctx, olga, []int64{g.ID}, dlqstoretest.T0().Add(-time.Hour), dlqstoretest.T0().Add(time.Hour), 10*time.Minute)
		if sum := sumOf(trends[g.ID]); err != nil || sum != 0 {
			t.Errorf("olga's trend of B sums to %d (%v), want 0", sum, err)
		}
		if g, err := w.svc.Group(ctx, admin, g.ID); err != nil || g.Count != 4 {
			t.Errorf("admin's group B = %+v (%v), want 4 entries", g, err)
		}
	}
	if n, err := w.svc.OpenCount(ctx, admin); err != nil || n != len(fixtures) {
		t.Errorf("admin's open count = %d (%v), want %d", n, err, len(fixtures))
	}
}

func sumOf(ns []int) int {
	s := 0
	for _, n := range ns {
		s += n
	}
	return s
}

// An entry out of the caller's reach is the same ENOTFOUND as an id that
// does not exist: the answer does not say it exists.
func TestEntryOutOfReachIsNotFound(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	payments := w.ids[1] // payments of t1: not olga's
	t2 := w.ids[2]       // orders of t2: not olga's
	missing := w.ids[len(w.ids)-1] + 1000
	for _, id := range []int64{payments, t2, missing, 0, -1} {
		_, err := w.svc.Entry(ctx, olga, id)
		if delivery.ErrorCode(err) != delivery.ENOTFOUND || delivery.ErrorMessage(err) != "dead letter "+itoa(id)+" not found" {
			t.Errorf("olga's entry %d = %v, want ENOTFOUND naming only the id", id, err)
		}
	}
	if _, err := w.svc.Entry(ctx, admin, payments); err != nil {
		t.Errorf("admin's entry %d: %v", payments, err)
	}
}

// A search cannot tell whether a masked value, or a payload the caller may
// not read, holds some text: without read_payload and read_pii in every
// tenant they view, the search stays off the payload column.
func TestSearchCannotProbePayloads(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for _, tc := range []struct {
		c    dlq.Caller
		want int
	}{
		{admin, len(fixtures)}, // read_pii everywhere
		{pia, 6},               // read_pii in the one tenant she views
		{olga, 0},              // no read_pii
		{vera, 0},              // no read_payload
	} {
		p, err := w.svc.FindEntries(ctx, tc.c, dlqstore.Filter{Q: `"zoe muller"`})
		if err != nil || p.Total != tc.want {
			t.Errorf("%s searching the customer = %d (%v), want %d", tc.c.P.User, p.Total, err, tc.want)
		}
		// The message is searchable by all.
		if p, err := w.svc.FindEntries(ctx, tc.c, dlqstore.Filter{Q: "failure"}); err != nil || p.Total != len(w.visible(t, tc.c)) {
			t.Errorf("%s searching messages = %d (%v)", tc.c.P.User, p.Total, err)
		}
	}
	_, err := w.svc.FindEntries(ctx, olga, dlqstore.Filter{Q: "payload:zoe"})
	if delivery.ErrorCode(err) != delivery.EINVALID || delivery.ErrorMessage(err) != `search: you may not search payload text (payload:) in "payload:zoe"` {
		t.Errorf("olga's payload: search = %v, want EINVALID naming what she typed", err)
	}
}
