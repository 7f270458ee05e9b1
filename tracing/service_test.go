package tracing

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// svcFixture is a store in the test's temp dir and a service over it.
func svcFixture(t *testing.T, o ServiceOptions) (*Store, *Service) {
	t.Helper()
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "traces.db"), Options{Now: func() time.Time { return asmT0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, NewService(st, o)
}

func svcWrite(t *testing.T, st *Store, spans ...Span) {
	t.Helper()
	if err := st.Write(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
}

// msgSpan is a span of service svc about a Kafka topic of cluster prod
// ("" for none) in tenant, derived as ingest derives it.
func msgSpan(tr, id, parent int, svc string, kind Kind, from, to float64, topic, tenant string, attrs ...Attr) Span {
	s := asmSpan(tr, id, parent, svc, kind, from, to)
	s.ResourceAttrs = []Attr{{Key: "service.name", Value: svc}}
	if topic != "" {
		attrs = append(attrs, Attr{delivery.AttrSystem, delivery.BrokerKafka}, Attr{delivery.AttrDest, topic},
			Attr{delivery.AttrCluster, "prod"})
	}
	if tenant != "" {
		attrs = append(attrs, Attr{delivery.AttrTenant, tenant})
	}
	s.Attrs = attrs
	Derive(&s)
	return s
}

// idOutline is outline by span ids, which redaction keeps.
func idOutline(v *TraceView) string {
	var b strings.Builder
	for _, r := range v.Rows {
		fmt.Fprintf(&b, "%*s%s\n", 2*r.Depth, "", r.Span.SpanID)
	}
	return b.String()
}

func principal(grants ...access.Grant) *access.Principal {
	return &access.Principal{User: "u", Method: access.MethodSession, Grants: grants}
}

func grant(resources, tenants []string, actions ...access.Action) access.Grant {
	return access.Grant{Subject: "user:u", Role: "custom", Actions: actions, Resources: resources, Tenants: tenants}
}

var (
	admin    = principal(grant([]string{"*"}, []string{"*"}, access.Actions()...))
	t1Viewer = principal(grant([]string{"*"}, []string{"t1"}, access.ActionView))
	all      = []string{"*"}
)

// orderStory is an order of tenant t1 whose payment is handled by a
// consumer acting for tenant t2 (a shared billing provider), under the
// web request that placed it.
func orderStory() []Span {
	return []Span{
		msgSpan(1, 1, 0, "web", KindServer, 0, 100, "", "t1"),
		msgSpan(1, 2, 1, "orders", KindProducer, 10, 20, "orders.created", "t1",
			Attr{delivery.AttrEventType, "orders.order.created.v1"}, Attr{"payload.customer.email", "ann@example.com"}),
		msgSpan(1, 3, 2, "billing", KindConsumer, 30, 80, "billing.x", "t2", Attr{"secret.plan", "gold"}),
		msgSpan(1, 4, 3, "billing", KindInternal, 35, 70, "", "t1"),
	}
}

func TestServiceTraceRedactsHiddenSpans(t *testing.T) {
	st, svc := svcFixture(t, ServiceOptions{})
	svcWrite(t, st, orderStory()...)
	ctx := context.Background()

	full, err := svc.Trace(ctx, admin, asmTrace(1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		p      *access.Principal
		hidden []int
	}{
		{"a t1 viewer sees the t2 span as a gap", t1Viewer, []int{3}},
		{"a viewer bound to the orders topics does not see billing's", principal(grant([]string{"kafka:prod/orders.*"}, all, access.ActionView)), []int{3}},
		{"a viewer of another cluster sees only spans without a destination", principal(grant([]string{"kafka:staging/*"}, all, access.ActionView)), []int{2, 3}},
		{"an admin sees everything", admin, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := svc.Trace(ctx, tt.p, asmTrace(1))
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Rows) != 4 || idOutline(v) != idOutline(full) {
				t.Fatalf("outline:\n%s\nwant:\n%s", idOutline(v), idOutline(full))
			}
			for r, row := range v.Rows {
				sp := row.Span
				hidden := slices.Contains(tt.hidden, int(sp.SpanID[2]))
				if sp.Flags.Has(FlagRedacted) != hidden {
					t.Errorf("row %d: redacted %v, want %v", r, !hidden, hidden)
				}
				// The gap keeps its timing, nothing else.
				if row.Offset != full.Rows[r].Offset || row.Length != full.Rows[r].Length || !sp.Start.Equal(full.Rows[r].Span.Start) {
					t.Errorf("row %d: timing %v+%v, want %v+%v", r, row.Offset, row.Length, full.Rows[r].Offset, full.Rows[r].Length)
				}
				if hidden && (sp.Service != "" || sp.Name != "" || sp.Attrs != nil || sp.ResourceAttrs != nil ||
					sp.Tenant != "" || sp.Resource != "" || sp.Destination != "" || row.Error != "") {
					t.Errorf("row %d: a redacted span shows %+v", r, sp)
				}
				if !hidden && sp.Service == "" {
					t.Errorf("row %d: a visible span lost its service", r)
				}
			}
			var want []string
			for _, row := range v.Rows {
				if !row.Span.Flags.Has(FlagRedacted) && !slices.Contains(want, row.Span.Service) {
					want = append(want, row.Span.Service)
				}
			}
			slices.Sort(want)
			if !slices.Equal(v.Services, want) {
				t.Errorf("services %v, want those of the visible spans %v", v.Services, want)
			}
		})
	}
}

func TestServiceTraceNotFound(t *testing.T) {
	st, svc := svcFixture(t, ServiceOptions{})
	svcWrite(t, st,
		msgSpan(1, 1, 0, "billing", KindServer, 0, 10, "", "t2"),
		msgSpan(1, 2, 1, "billing", KindProducer, 1, 2, "billing.x", "t1"),
		// Trace 2 is visible to a t1 viewer but only links to trace 1.
		linked(msgSpan(2, 3, 0, "orders", KindConsumer, 5, 6, "", "t1"), 1, 2),
	)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		p    *access.Principal
		id   TraceID
	}{
		{"one span out of tenant, the other out of resource", principal(grant([]string{"kafka:prod/orders.*"}, []string{"t1"}, access.ActionView)), asmTrace(1)},
		{"no such trace", admin, asmTrace(9)},
		{"no principal", nil, asmTrace(1)},
		{"a view grant elsewhere only", principal(grant(all, []string{"t3"}, access.ActionView)), asmTrace(1)},
		{"zero id", admin, TraceID{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := svc.Trace(ctx, tc.p, tc.id)
			if delivery.ErrorCode(err) != delivery.ENOTFOUND || v != nil {
				t.Errorf("Trace = %v, %v; want ENOTFOUND", v, err)
			}
		})
	}
	// Bound to the orders topics of t1, one may open trace 2, and sees
	// trace 1 in it as gaps.
	v, err := svc.Trace(ctx, principal(grant([]string{"kafka:prod/orders.*"}, []string{"t1"}, access.ActionView)), asmTrace(2))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Rows) != 3 || !v.Rows[0].Span.Flags.Has(FlagRedacted) || !v.Rows[1].Span.Flags.Has(FlagRedacted) ||
		v.Rows[2].Span.Service != "orders" || v.Rows[2].Span.Flags.Has(FlagRedacted) {
		t.Errorf("trace 2 for an orders viewer:\n%s", idOutline(v))
	}
}

// The redrive story spans three traces joined by links; asking any of
// them follows the links both ways and once more.
func TestServiceTraceFollowsLinks(t *testing.T) {
	st, svc := svcFixture(t, ServiceOptions{})
	svcWrite(t, st,
		msgSpan(1, 1, 0, "orders", KindProducer, 0, 5, "orders.created", "t1"),
		linked(msgSpan(2, 10, 0, "billing", KindConsumer, 25, 400, "orders.created", "t1"), 1, 1),
		attempt(msgSpan(2, 13, 10, "billing", KindInternal, 335, 340, "", "t1"), 3),
		linked(msgSpan(3, 20, 0, "console", KindProducer, 5000, 5004, "orders.created", "t1"), 2, 13),
		msgSpan(3, 21, 20, "billing", KindConsumer, 5010, 5030, "orders.created", "t1"),
		// Unrelated.
		msgSpan(4, 30, 0, "orders", KindProducer, 0, 5, "orders.created", "t1"),
	)
	ctx := context.Background()
	for _, asked := range []int{1, 2, 3} {
		v, err := svc.Trace(ctx, t1Viewer, asmTrace(asked))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := outline(v), "s1\n  ~s10\n    s13\n      ~s20\n        s21\n"; got != want {
			t.Errorf("asked %d:\n%s\nwant:\n%s", asked, got, want)
		}
		if len(v.Traces) != 3 || v.Traces[0].TraceID != asmTrace(asked) {
			t.Errorf("asked %d: traces %+v", asked, v.Traces)
		}
	}

	_, capped := svcFixture(t, ServiceOptions{MaxLinkedTraces: 1})
	capped.store = st
	v, err := capped.Trace(ctx, admin, asmTrace(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Traces) != 2 || !slices.ContainsFunc(v.Warnings, func(w string) bool { return w == "more traces are linked to this story than shown: the first 1" }) {
		t.Errorf("capped at one linked trace: %d traces, warnings %q", len(v.Traces), v.Warnings)
	}

	_, small := svcFixture(t, ServiceOptions{MaxSpans: 3})
	small.store = st
	v, err = small.Trace(ctx, admin, asmTrace(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Rows) != 3 || !v.Truncated {
		t.Errorf("MaxSpans 3: %d rows, truncated %v", len(v.Rows), v.Truncated)
	}
}

func TestServiceMasksPII(t *testing.T) {
	masker, err := access.NewMasker(access.PIIRules{"orders.order.created.v1": {"customer.email", "$key"}})
	if err != nil {
		t.Fatal(err)
	}
	st, svc := svcFixture(t, ServiceOptions{Masker: masker})
	sp := msgSpan(1, 1, 0, "orders", KindProducer, 0, 5, "orders.created", "t1",
		Attr{delivery.AttrEventType, "orders.order.created.v1"},
		Attr{"payload.customer.email", "ann@example.com"},
		Attr{access.AttrKafkaMessageKey, "ann@example.com"},
		Attr{"messaging.rabbitmq.destination.routing_key", "orders.created"},
	)
	sp.ResourceAttrs = append(sp.ResourceAttrs, Attr{"customer.email", "ops@example.com"})
	sp.Events = []Event{{Time: asmT0, Name: "exception", Attrs: []Attr{{"customer.email", "ann@example.com"}, {"exception.message", "declined"}}}}
	sp.Links = []Link{{TraceID: asmTrace(7), SpanID: asmID(7), Attrs: []Attr{{"payload.customer.email", "bob@example.com"}}}}
	svcWrite(t, st, sp)
	ctx := context.Background()

	// shown collects every attribute value of the span as p gets it from
	// Trace, Span and Search.
	shown := func(t *testing.T, p *access.Principal) map[string][]string {
		t.Helper()
		v, err := svc.Trace(ctx, p, asmTrace(1))
		if err != nil {
			t.Fatal(err)
		}
		one, err := svc.Span(ctx, p, asmTrace(1), asmID(1))
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.Search(ctx, p, SearchQuery{Service: "orders"})
		if err != nil || len(res.Spans) != 1 {
			t.Fatalf("Search = %d spans, %v", len(res.Spans), err)
		}
		out := map[string][]string{}
		for _, s := range []Span{v.Rows[0].Span, one, res.Spans[0]} {
			add := func(as []Attr) {
				for _, a := range as {
					out[a.Key] = append(out[a.Key], a.Value)
				}
			}
			add(s.Attrs)
			add(s.ResourceAttrs)
			for _, e := range s.Events {
				add(e.Attrs)
			}
			for _, l := range s.Links {
				add(l.Attrs)
			}
		}
		return out
	}
	viewer := principal(grant(all, all, access.ActionView, access.ActionReadPayload))
	got := shown(t, viewer)
	for _, k := range []string{"payload.customer.email", access.AttrKafkaMessageKey, "customer.email"} {
		for _, val := range got[k] {
			if val != access.PIIMask {
				t.Errorf("without read_pii %s = %q, want masked", k, val)
			}
		}
		if len(got[k]) == 0 {
			t.Errorf("attribute %s missing", k)
		}
	}
	if v := got["messaging.rabbitmq.destination.routing_key"]; len(v) != 3 || v[0] != "orders.created" {
		t.Errorf("routing key = %q, want it in the clear", v)
	}
	if v := got["exception.message"]; len(v) != 3 || v[0] != "declined" {
		t.Errorf("exception message = %q", v)
	}

	// read_pii on the topic (for the tenant) shows them.
	reader := principal(
		grant(all, all, access.ActionView),
		grant([]string{"kafka:prod/orders.*"}, []string{"t1"}, access.ActionReadPII),
	)
	got = shown(t, reader)
	if v := got["payload.customer.email"]; len(v) != 6 || v[0] != "ann@example.com" || v[3] != "bob@example.com" {
		t.Errorf("with read_pii: payload.customer.email = %q", v)
	}
	if v := got["customer.email"]; len(v) != 6 || !slices.Contains(v, "ops@example.com") || slices.Contains(v, access.PIIMask) {
		t.Errorf("with read_pii: customer.email = %q", v)
	}
	// read_pii for another tenant does not.
	other := principal(grant(all, all, access.ActionView), grant(all, []string{"t2"}, access.ActionReadPII))
	if v := shown(t, other)[access.AttrKafkaMessageKey]; v[0] != access.PIIMask {
		t.Errorf("read_pii of t2 unmasks a t1 span: %q", v)
	}
}

func TestServiceSpan(t *testing.T) {
	st, svc := svcFixture(t, ServiceOptions{})
	svcWrite(t, st, orderStory()...)
	ctx := context.Background()
	sp, err := svc.Span(ctx, t1Viewer, asmTrace(1), asmID(2))
	if err != nil || sp.Service != "orders" || sp.Destination != "orders.created" {
		t.Errorf("Span = %+v, %v", sp, err)
	}
	for _, tc := range []struct {
		name  string
		trace TraceID
		id    SpanID
	}{
		{"hidden", asmTrace(1), asmID(3)},
		{"missing", asmTrace(1), asmID(99)},
		{"other trace", asmTrace(2), asmID(2)},
	} {
		if _, err := svc.Span(ctx, t1Viewer, tc.trace, tc.id); delivery.ErrorCode(err) != delivery.ENOTFOUND {
			t.Errorf("%s: err = %v, want ENOTFOUND", tc.name, err)
		}
	}
}

func TestServiceSearchScope(t *testing.T) {
	st, svc := svcFixture(t, ServiceOptions{})
	var spans []Span
	for i := range 40 {
		tenant, topic := "t1", "orders.created"
		switch i % 4 {
		case 1:
			tenant = "t2"
		case 2:
			topic = "billing.x"
		}
		spans = append(spans, msgSpan(10+i, i+1, 0, "orders", KindProducer, float64(i), float64(i)+1, topic, tenant))
	}
	svcWrite(t, st, spans...)
	ctx := context.Background()

	walk := func(t *testing.T, p *access.Principal, q SearchQuery) (pages [][]Span) {
		t.Helper()
		for range 50 {
			res, err := svc.Search(ctx, p, q)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, res.Spans)
			if res.Next == "" {
				return pages
			}
			q.After = res.Next
		}
		t.Fatal("paging does not end")
		return nil
	}
	ordersT1 := principal(grant([]string{"kafka:prod/orders.*"}, []string{"t1"}, access.ActionView))
	for _, tc := range []struct {
		name string
		p    *access.Principal
		want func(Span) bool
		n    int
	}{
		{"tenant", t1Viewer, func(s Span) bool { return s.Tenant == "t1" }, 30},
		{"tenant and topics", ordersT1, func(s Span) bool { return s.Tenant == "t1" && s.Destination == "orders.created" }, 20},
		{"everything", admin, func(Span) bool { return true }, 40},
		{"nothing", principal(), func(Span) bool { return false }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pages := walk(t, tc.p, SearchQuery{Limit: 7})
			seen := map[SpanID]bool{}
			for k, page := range pages {
				// Every page but the last is full: the scope is in the query.
				if k < len(pages)-1 && len(page) != 7 {
					t.Errorf("page %d has %d spans, want 7", k, len(page))
				}
				for _, s := range page {
					if !tc.want(s) || seen[s.SpanID] {
						t.Errorf("page %d: span %s (tenant %q, %s) shown or repeated", k, s.Name, s.Tenant, s.Destination)
					}
					seen[s.SpanID] = true
				}
			}
			if len(seen) != tc.n {
				t.Errorf("%d spans over all pages, want %d", len(seen), tc.n)
			}
		})
	}
}

func TestServiceSearchRefusesBadQueries(t *testing.T) {
	_, svc := svcFixture(t, ServiceOptions{})
	long := string(make([]byte, maxSearchField+1))
	for _, tc := range []struct {
		name string
		q    SearchQuery
	}{
		{"negative limit", SearchQuery{Limit: -1}},
		{"limit over 500", SearchQuery{Limit: 501}},
		{"negative duration", SearchQuery{MinDuration: -time.Second}},
		{"max below min", SearchQuery{MinDuration: time.Second, MaxDuration: time.Millisecond}},
		{"reversed range", SearchQuery{From: asmT0, To: asmT0.Add(-time.Hour)}},
		{"empty range", SearchQuery{From: asmT0, To: asmT0}},
		{"unknown status", SearchQuery{Status: "failed"}},
		{"oversized service", SearchQuery{Service: long}},
		{"not UTF-8", SearchQuery{Operation: "\xff"}},
		{"garbled cursor", SearchQuery{After: "!!"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := svc.Search(context.Background(), admin, tc.q); delivery.ErrorCode(err) != delivery.EINVALID {
				t.Errorf("Search = %v, want EINVALID", err)
			}
		})
	}
	if _, err := svc.Search(context.Background(), admin, SearchQuery{Limit: 500, MinDuration: time.Millisecond, MaxDuration: time.Millisecond}); err != nil {
		t.Errorf("a valid query: %v", err)
	}
}

// A span of every tenant (a redrive job's, tenant "*") is shown only to a
// caller of all tenants: a caller of some sees its timing as a gap.
func TestServiceEveryTenantSpanNeedsEveryTenant(t *testing.T) {
	st, svc := svcFixture(t, ServiceOptions{})
	svcWrite(t, st,
		msgSpan(1, 1, 0, "console", KindInternal, 0, 100, "", "*"),
		msgSpan(1, 2, 1, "console", KindProducer, 10, 20, "orders.created", "t1"))
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		p      *access.Principal
		hidden bool
	}{
		{"admin", admin, false},
		{"t1 viewer", t1Viewer, true},
		{"t1 and t2 viewer", principal(grant(all, []string{"t1", "t2"}, access.ActionView)), true},
		{"viewer of all tenants", principal(grant(all, all, access.ActionView)), false},
	} {
		v, err := svc.Trace(ctx, tc.p, asmTrace(1))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := v.Rows[0].Span.Flags.Has(FlagRedacted); got != tc.hidden {
			t.Errorf("%s: the job span redacted %v, want %v", tc.name, got, tc.hidden)
		}
		if v.Rows[1].Span.Flags.Has(FlagRedacted) {
			t.Errorf("%s: the t1 redrive span under it is hidden", tc.name)
		}
	}
}
