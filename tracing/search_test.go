package tracing

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// searchFixture writes 90 spans over 30 traces that vary every field a
// search filters on, and returns them in insertion order.
func searchFixture(t *testing.T, s *Store) []Span {
	t.Helper()
	services := []string{"orders", "billing", "mailer"}
	tenants := []string{"", "t1", "t2"}
	dests := []struct{ system, cluster, dest string }{
		{"kafka", "prod", "orders.placed"}, {"kafka", "prod", "payments"}, {"rabbitmq", "", "notify"}, {"", "", ""},
	}
	steps := []string{delivery.StepPublish, delivery.StepAttempt, delivery.StepDeadLetter}
	var all []Span
	for i := range 90 {
		d := dests[i%len(dests)]
		attrs := []Attr{
			{delivery.AttrEventType, fmt.Sprintf("type.%d", i%4)},
			{delivery.AttrMessageID, fmt.Sprintf("ev-%d", i/2)},
			{delivery.AttrCorrelationID, fmt.Sprintf("corr-%d", i%7)},
			{delivery.AttrConsumer, fmt.Sprintf("group-%d", i%2)},
			{delivery.AttrStep, steps[i%3]},
			{delivery.AttrTenant, tenants[(i/3)%3]},
		}
		if d.dest != "" {
			attrs = append(attrs, Attr{delivery.AttrSystem, d.system}, Attr{delivery.AttrDest, d.dest}, Attr{delivery.AttrCluster, d.cluster})
		}
		// Starts repeat (i/2) so that the keyset's tie-break on the row
		// is exercised.
		sp := spanAt(i/3, i, services[i%3], storeT0.Add(time.Duration(i/2)*time.Minute), time.Duration(1+i%10)*time.Millisecond, attrs...)
		sp.Name = fmt.Sprintf("op-%d", i%5)
		sp.Status = Status(i % 3)
		all = append(all, sp)
	}
	// Written in a shuffled order of batches: row order is not time order.
	mustWrite(t, s, all[45:]...)
	mustWrite(t, s, all[:45]...)
	return append(slices.Clone(all[45:]), all[:45]...)
}

// matches is the reference: what SearchQuery's doc says a span matching q
// is, written as a Go predicate.
func matches(sp Span, q SearchQuery) bool {
	str := func(want, got string) bool { return want == "" || want == got }
	return (q.TraceID.IsZero() || q.TraceID == sp.TraceID) &&
		str(q.CorrelationID, sp.CorrelationID) && str(q.Service, sp.Service) && str(q.Operation, sp.Name) &&
		str(q.EventType, sp.EventType) && str(q.EventID, sp.EventID) && str(q.Tenant, sp.Tenant) &&
		str(q.Destination, sp.Destination) && str(q.Group, sp.Group) && str(q.Step, sp.Step) &&
		str(q.Status, sp.Status.String()) &&
		sp.Duration() >= q.MinDuration && (q.MaxDuration == 0 || sp.Duration() <= q.MaxDuration) &&
		(q.From.IsZero() || !sp.Start.Before(q.From)) && (q.To.IsZero() || sp.Start.Before(q.To))
}

// expect returns the ids of the spans of written (in row order) that
// keep says to, newest first and, on a tie, last written first.
func expect(written []Span, keep func(Span) bool) []SpanID {
	var idx []int
	for i, sp := range written {
		if keep(sp) {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := written[b].Start.Compare(written[a].Start); c != 0 {
			return c
		}
		return b - a
	})
	var out []SpanID
	for _, i := range idx {
		out = append(out, written[i].SpanID)
	}
	return out
}

// searchAll pages through every result of q with a small page.
func searchAll(t *testing.T, s *Store, q SearchQuery, sc *access.TenantScope) []SpanID {
	t.Helper()
	var out []SpanID
	for range 1000 {
		res, err := s.Search(context.Background(), q, sc)
		if err != nil {
			t.Fatalf("search %+v: %v", q, err)
		}
		if len(res.Spans) > q.Limit && q.Limit > 0 {
			t.Fatalf("page of %d for limit %d", len(res.Spans), q.Limit)
		}
		out = append(out, spanIDs(res.Spans)...)
		if res.Next == "" {
			return out
		}
		if len(res.Spans) != q.Limit {
			t.Fatalf("short page (%d of %d) with a next cursor", len(res.Spans), q.Limit)
		}
		q.After = res.Next
	}
	t.Fatal("paging does not end")
	return nil
}

// Every field of the query narrows the results exactly as documented, and
// paging through them in pages of 4 returns each once, in order.
func TestSearchFields(t *testing.T) {
	s := openSpanStore(t, Options{})
	written := searchFixture(t, s)
	for _, q := range []SearchQuery{
		{},
		{TraceID: tid(4)},
		{CorrelationID: "corr-3"},
		{Service: "billing"},
		{Operation: "op-2"},
		{EventType: "type.1"},
		{EventID: "ev-10"},
		{Tenant: "t2"},
		{Destination: "orders.placed"},
		{Group: "group-1"},
		{Step: delivery.StepDeadLetter},
		{Status: "error"},
		{Status: "unset"},
		{MinDuration: 8 * time.Millisecond},
		{MaxDuration: 2 * time.Millisecond},
		{MinDuration: 3 * time.Millisecond, MaxDuration: 5 * time.Millisecond},
		{From: storeT0.Add(10 * time.Minute)},
		{To: storeT0.Add(10 * time.Minute)},
		{From: storeT0.Add(5 * time.Minute), To: storeT0.Add(30 * time.Minute)},
		{Service: "orders", MinDuration: 4 * time.Millisecond, From: storeT0.Add(5 * time.Minute), To: storeT0.Add(40 * time.Minute)},
		{Service: "mailer", Status: "ok", Tenant: "t1"},
		{CorrelationID: "no such"},
	} {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			want := expect(written, func(sp Span) bool { return matches(sp, q) })
			q.Limit = 4
			got := searchAll(t, s, q, nil)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
		})
	}
}

// Roots gives each trace once, as its earliest matching span, and pages
// like any search.
func TestSearchRoots(t *testing.T) {
	s := openSpanStore(t, Options{})
	written := searchFixture(t, s)
	for _, q := range []SearchQuery{
		{Roots: true},
		{Roots: true, Service: "billing"},
		{Roots: true, MinDuration: 5 * time.Millisecond, From: storeT0.Add(3 * time.Minute)},
	} {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			earliest := map[TraceID]int{}
			for i, sp := range written {
				if !matches(sp, q) {
					continue
				}
				if j, ok := earliest[sp.TraceID]; !ok || sp.Start.Before(written[j].Start) {
					earliest[sp.TraceID] = i
				}
			}
			want := expect(written, func(sp Span) bool {
				i, ok := earliest[sp.TraceID]
				return ok && written[i].SpanID == sp.SpanID
			})
			q.Limit = 3
			got := searchAll(t, s, q, nil)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
			if len(got) != len(earliest) {
				t.Errorf("%d rows for %d traces", len(got), len(earliest))
			}
		})
	}
}

// The caller's scope is part of the query: a t1 operator never sees a t2
// span, one bound to kafka:prod/orders.* sees only those topics (and the
// spans of her tenants that name no destination, as Service.Trace shows
// them), and pages stay full.
func TestSearchScope(t *testing.T) {
	s := openSpanStore(t, Options{})
	written := searchFixture(t, s)
	for _, c := range []struct {
		name string
		sc   *access.TenantScope
		keep func(Span) bool
	}{
		{"all", &access.TenantScope{All: true}, func(Span) bool { return true }},
		{"t1 and untenanted", &access.TenantScope{Tenants: []string{"t1"}}, func(sp Span) bool { return sp.Tenant == "" || sp.Tenant == "t1" }},
		{"no tenants", &access.TenantScope{}, func(Span) bool { return false }},
		{"orders topics", &access.TenantScope{All: true, Rules: []access.Rule{{Resources: []string{"kafka:prod/orders.*"}}}},
			func(sp Span) bool { return sp.Resource == "" || strings.HasPrefix(sp.Resource, "kafka:prod/orders.") }},
		{"rabbit queues of t2", &access.TenantScope{Tenants: []string{"t2"}, Rules: []access.Rule{{Resources: []string{"rabbitmq:/*"}, Tenants: []string{"t2"}}}},
			func(sp Span) bool {
				return (sp.Resource == "" || sp.System == "rabbitmq") && (sp.Tenant == "" || sp.Tenant == "t2")
			}},
		{"empty rules", &access.TenantScope{All: true, Rules: []access.Rule{}}, func(Span) bool { return false }},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := expect(written, c.keep)
			got := searchAll(t, s, SearchQuery{Limit: 5}, c.sc)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
		})
	}
	if want := expect(written, func(sp Span) bool { return sp.Tenant == "" || sp.Tenant == "t1" }); len(want) == 0 || len(want) == len(written) {
		t.Fatal("fixture does not split by tenant")
	}
}

// Bad input is the caller's mistake (EINVALID, a 400), never a 500.
func TestSearchInvalid(t *testing.T) {
	s := openSpanStore(t, Options{})
	searchFixture(t, s)
	for name, q := range map[string]SearchQuery{
		"garbage cursor":    {After: "%%%"},
		"cursor not ours":   {After: "aGVsbG8"},
		"long cursor":       {After: strings.Repeat("A", 200)},
		"status":            {Status: "failed"},
		"negative limit":    {Limit: -1},
		"negative duration": {MinDuration: -time.Second},
		"min above max":     {MinDuration: time.Second, MaxDuration: time.Millisecond},
		"empty time range":  {From: storeT0, To: storeT0},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Search(context.Background(), q, nil)
			if delivery.ErrorCode(err) != delivery.EINVALID {
				t.Errorf("error %v, want EINVALID", err)
			}
		})
	}
	res, err := s.Search(context.Background(), SearchQuery{Limit: 10_000}, nil)
	if err != nil || len(res.Spans) != 90 {
		t.Errorf("a limit above the maximum: %d spans, %v; want it capped, not refused", len(res.Spans), err)
	}
	res, err = s.Search(context.Background(), SearchQuery{}, nil)
	if err != nil || len(res.Spans) != DefaultSearchLimit || res.Next == "" {
		t.Errorf("default limit: %d spans, next %q, %v", len(res.Spans), res.Next, err)
	}
}

// The searches the pages run are index range scans in the page's order,
// not table scans or sorts of every match.
func TestSearchPlans(t *testing.T) {
	s := openSpanStore(t, Options{})
	t1 := &access.TenantScope{Tenants: []string{"t1"}, Rules: []access.Rule{{Resources: []string{"kafka:prod/orders.*"}}}}
	for _, c := range []struct {
		q     SearchQuery
		sc    *access.TenantScope
		index string
	}{
		{SearchQuery{Service: "orders", MinDuration: time.Second, From: storeT0, To: storeT0.Add(time.Hour)}, nil, "spans_service"},
		{SearchQuery{Service: "orders", MinDuration: time.Second, From: storeT0, To: storeT0.Add(time.Hour)}, t1, "spans_service"},
		{SearchQuery{CorrelationID: "c"}, t1, "spans_correlation"},
		{SearchQuery{From: storeT0}, t1, "spans_tenant"},
		{SearchQuery{Operation: "process"}, &access.TenantScope{Tenants: []string{"t1", "t2"}}, "spans_tenant"},
		{SearchQuery{CorrelationID: "c"}, nil, "spans_correlation"},
		{SearchQuery{EventID: "e"}, nil, "spans_event"},
		{SearchQuery{Destination: "d"}, nil, "spans_destination"},
		{SearchQuery{Tenant: "t1"}, nil, "spans_tenant"},
		{SearchQuery{Group: "billing", Cluster: "prod", Roots: true}, t1, "spans_group"},
		{SearchQuery{Status: "error"}, nil, "spans_errors"},
		{SearchQuery{TraceID: tid(1)}, nil, "spans_trace"},
		{SearchQuery{From: storeT0}, nil, "spans_start"},
		{SearchQuery{}, nil, "spans_start"},
	} {
		t.Run(fmt.Sprintf("%+v scope %v", c.q, c.sc != nil), func(t *testing.T) {
			plan := searchPlan(t, s, c.q, c.sc)
			if !strings.Contains(plan, "USING INDEX "+c.index) && !strings.Contains(plan, "USING COVERING INDEX "+c.index) {
				t.Errorf("plan does not use %s:\n%s", c.index, plan)
			}
			// spans_service has dur_ns after start_ns, so rows of one
			// start are sorted by id on the way: "FOR LAST TERM", which
			// stops at LIMIT like the scan. A sort of all matches would not.
			if strings.Contains(plan, "TEMP B-TREE FOR ORDER BY") || strings.Contains(plan, "TEMP B-TREE") && !strings.Contains(plan, "LAST TERM") {
				t.Errorf("plan sorts every match:\n%s", plan)
			}
		})
	}
}

// searchPlan is EXPLAIN QUERY PLAN of the query Search runs for q.
func searchPlan(t *testing.T, s *Store, q SearchQuery, sc *access.TenantScope) string {
	t.Helper()
	query, args, ok, err := q.sql(sc, nil, 50)
	if err != nil || !ok {
		t.Fatalf("search SQL: %v, ok %v", err, ok)
	}
	query = "EXPLAIN QUERY PLAN " + query
	rows, err := s.DB().Query(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sb strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		sb.WriteString(detail + "\n")
	}
	return sb.String()
}
