package tsdb

import (
	"context"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
)

// Q.Or keeps the series that match one of its alternatives; the store
// reads nothing else, so a narrowed query never returns a series the
// alternatives exclude.
func TestQueryOrAlternatives(t *testing.T) {
	c := deliverytest.NewClock(t0.Add(time.Minute))
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now})
	ev := func(tenant, dest string) Labels {
		return L(MetricName, "event_processed_total", "tenant", tenant, "destination", dest)
	}
	mustAppend(t, s, []Sample{
		{Series: ev("t1", "orders"), T: t0, V: 1},
		{Series: ev("t2", "orders"), T: t0, V: 2},
		{Series: ev("t1", "payments"), T: t0, V: 3},
		{Series: ev("", "orders"), T: t0, V: 4},
	})
	ctx := context.Background()
	query := func(or [][]Matcher) map[string]float64 {
		t.Helper()
		got, err := s.Query(ctx, Q{Name: "event_processed_total", Or: or, From: t0, To: t0.Add(time.Minute), Step: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, sr := range got {
			out[sr.Labels.Get("tenant")+"/"+sr.Labels.Get("destination")] = sr.Points[0].V
		}
		return out
	}
	if got := query(nil); len(got) != 4 {
		t.Errorf("nil Or = %v, want every series", got)
	}
	if got := query([][]Matcher{}); len(got) != 0 {
		t.Errorf("empty Or = %v, want nothing", got)
	}
	got := query([][]Matcher{
		{{"tenant", MatchRegexp, "|t1"}, {"destination", MatchEqual, "orders"}},
		{{"tenant", MatchEqual, "t1"}, {"destination", MatchRegexp, "pay.*"}},
	})
	if len(got) != 3 || got["t1/orders"] != 1 || got["/orders"] != 4 || got["t1/payments"] != 3 {
		t.Errorf("t1 or untenanted = %v", got)
	}
	_, err := s.Query(ctx, Q{Name: "event_processed_total", Or: [][]Matcher{{{"tenant", MatchRegexp, "("}}}, From: t0, To: t0, Step: time.Minute})
	if delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("bad regexp in Or: %v, want EINVALID", err)
	}
}
