package dlq_test

import (
	"context"
	"testing"

	"switchyard/access"
	"switchyard/dlq"
)

// A caller sees the sources they may view, each with their own entries;
// the indexer's counters span every tenant of a source, so only a caller
// who views them all gets them.
func TestSourcesShowWhatTheCallerMayView(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sam := callerWith("sam", grant(orders, everything, access.ActionView))
	for _, tc := range []struct {
		c    dlq.Caller
		want map[string]dlq.Source // by destination; SourceStatus fields checked below
	}{
		{admin, map[string]dlq.Source{ordersDLQ: {AllTenants: true, Entries: 9}, paymentsDLQ: {AllTenants: true, Entries: 4}}},
		{sam, map[string]dlq.Source{ordersDLQ: {AllTenants: true, Entries: 9}}},
		{olga, map[string]dlq.Source{ordersDLQ: {Entries: 6}}},
		{callerWith("nobody"), map[string]dlq.Source{}},
	} {
		t.Run(tc.c.P.User, func(t *testing.T) {
			got, known, err := w.svc.Sources(ctx, tc.c)
			if err != nil || !known || len(got) != len(tc.want) {
				t.Fatalf("sources = %+v, %v, %v; want %d", got, known, err, len(tc.want))
			}
			for _, src := range got {
				want, ok := tc.want[src.Destination]
				if !ok || src.AllTenants != want.AllTenants || src.Entries != want.Entries || src.LastEntry.IsZero() {
					t.Errorf("%s = %+v, want %+v", src.Destination, src, want)
				}
				if counted := src.Indexed != 0 || src.Lag != 0 || !src.LastIndexedAt.IsZero(); counted != src.AllTenants {
					t.Errorf("%s: indexer counters %d/%d/%v shown to a caller with AllTenants %v", src.Destination, src.Indexed, src.Lag, src.LastIndexedAt, src.AllTenants)
				}
				if src.Destination == paymentsDLQ && src.LastError == "" {
					t.Errorf("%s lost its last error", src.Destination)
				}
			}
		})
	}
	o := w.opts
	o.Indexers = nil
	if got, known, err := w.service(t, o).Sources(ctx, admin); got != nil || known || err != nil {
		t.Errorf("without indexers: %+v, %v, %v; want unknown", got, known, err)
	}
}
