package tracing

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// benchStory is a 5,000-span story as the delivery core records it: a
// web request that publishes 800 orders, each consumed in its own attempt
// spans (1 to 3; a third failure dead-letters the order), and a redrive
// trace whose producer spans link to the dead-lettered orders' failing
// attempts, each consumed again. It returns the spans and the two trace
// ids.
func benchStory(n int) ([]Span, TraceID, TraceID) {
	main, redrive := TraceID{0xbe, 1, 15: 1}, TraceID{0xbe, 2, 15: 2}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	next := uint64(0)
	newID := func() SpanID {
		next++
		var id SpanID
		for k := range 8 {
			id[k] = byte(next >> (8 * (7 - k)))
		}
		id[0] = 0xb0
		return id
	}
	resource := func(svc string) []Attr {
		return []Attr{
			{"service.name", svc}, {"service.version", "1.14.2"}, {"service.instance.id", svc + "-7f9c6d-x2k4p"},
			{"host.name", "node-" + svc}, {"telemetry.sdk.language", "go"}, {"telemetry.sdk.name", "opentelemetry"},
			{"telemetry.sdk.version", "1.47.0"}, {"deployment.environment", "prod"},
		}
	}
	res := map[string][]Attr{"web": resource("web"), "orders": resource("orders"), "billing": resource("billing"), "console": resource("console")}
	msgAttrs := func(order int, topic string, extra ...Attr) []Attr {
		return append([]Attr{
			{delivery.AttrSystem, delivery.BrokerKafka}, {delivery.AttrDest, topic}, {delivery.AttrCluster, "prod"},
			{delivery.AttrTenant, "t" + strconv.Itoa(order%3+1)}, {delivery.AttrEventType, "orders.order.placed.v1"},
			{delivery.AttrMessageID, fmt.Sprintf("01J9ZK%08d", order)}, {delivery.AttrCorrelationID, fmt.Sprintf("corr-%06d", order)},
			{"messaging.kafka.message.key", fmt.Sprintf("customer-%d", order%97)}, {"messaging.kafka.destination.partition", strconv.Itoa(order % 12)},
			{"messaging.operation.type", "process"},
		}, extra...)
	}
	mk := func(tr TraceID, parent SpanID, svc, name string, kind Kind, start, end time.Time, attrs []Attr) Span {
		s := Span{TraceID: tr, SpanID: newID(), ParentSpanID: parent, Name: name, Kind: kind, Start: start, End: end,
			Attrs: attrs, ResourceAttrs: res[svc]}
		Derive(&s)
		return s
	}
	root := mk(main, SpanID{}, "web", "POST /orders/batch", KindServer, t0, t0.Add(2*time.Second), []Attr{
		{"http.request.method", "POST"}, {"url.path", "/orders/batch"}, {"http.response.status_code", "202"},
	})
	spans := []Span{root}
	var failed []Span // the last failing attempt of each dead-lettered order
	var redrives []Span
	for order := 0; len(spans) < n-len(redrives); order++ {
		at := t0.Add(time.Duration(order) * 2 * time.Millisecond)
		prod := mk(main, root.SpanID, "orders", "orders.placed publish", KindProducer, at, at.Add(400*time.Microsecond),
			msgAttrs(order, "orders.placed", Attr{delivery.AttrStep, delivery.StepPublish}))
		proc := mk(main, prod.SpanID, "billing", "orders.placed process", KindConsumer, at.Add(3*time.Millisecond), at.Add(40*time.Millisecond),
			msgAttrs(order, "orders.placed", Attr{delivery.AttrStep, delivery.StepProcess}, Attr{delivery.AttrConsumer, "billing"}))
		spans = append(spans, prod, proc)
		attempts := order%4 + 1 // 4 means three failures and a dead letter
		for a := 1; a <= min(attempts, 3); a++ {
			as := at.Add(time.Duration(3+a*10) * time.Millisecond)
			att := mk(main, proc.SpanID, "billing", "orders.placed attempt", KindInternal, as, as.Add(2*time.Millisecond),
				msgAttrs(order, "orders.placed", Attr{delivery.AttrStep, delivery.StepAttempt}, Attr{delivery.AttrAttempt, strconv.Itoa(a)}))
			if a < attempts {
				att.Status, att.StatusMsg = StatusError, "EUNAVAILABLE: payment provider timed out"
				att.Events = []Event{{Time: as.Add(time.Millisecond), Name: "exception", Attrs: []Attr{
					{"exception.type", "*delivery.Error"}, {"exception.message", "payment provider timed out"},
					{"exception.stacktrace", "goroutine 7 [running]:\nmain.charge(...)\n\t/app/billing/charge.go:88 +0x1d"},
				}}}
			}
			spans = append(spans, att)
			if a == 3 && attempts == 4 {
				failed = append(failed, att)
				spans = append(spans, mk(main, proc.SpanID, "billing", "orders.placed.dlq publish", KindProducer,
					as.Add(3*time.Millisecond), as.Add(4*time.Millisecond), msgAttrs(order, "orders.placed.dlq", Attr{delivery.AttrStep, delivery.StepDeadLetter})))
			}
		}
		// The redrive of each dead-lettered order: its producer span,
		// linked to the failing attempt, and the consumer that succeeds.
		if attempts == 4 {
			f := failed[len(failed)-1]
			rs := t0.Add(time.Hour + time.Duration(order)*time.Millisecond)
			r := mk(redrive, SpanID{}, "console", "orders.placed redrive", KindProducer, rs, rs.Add(time.Millisecond),
				msgAttrs(order, "orders.placed", Attr{delivery.AttrStep, delivery.StepRedrive}, Attr{delivery.AttrRedriveJob, "42"}))
			r.Links = []Link{{TraceID: f.TraceID, SpanID: f.SpanID, Attrs: []Attr{{"switchyard.link", "failed attempt"}}}}
			c := mk(redrive, r.SpanID, "billing", "orders.placed process", KindConsumer, rs.Add(5*time.Millisecond), rs.Add(9*time.Millisecond),
				msgAttrs(order, "orders.placed", Attr{delivery.AttrStep, delivery.StepProcess}))
			redrives = append(redrives, r, c)
		}
	}
	return append(spans, redrives...), main, redrive
}

// BenchmarkTraceAssembly measures the trace page's server side for a
// 5,000-span story: /switchyard is Service.Trace for an admin (reading
// the trace, discovering and reading the linked redrive trace, the access
// checks, layout, skew and critical path); /bare-sql reads the same rows
// with one hand-written query that knows both trace ids and decodes them,
// with no layout. Each reports the p99 of its iterations in ms.
func BenchmarkTraceAssembly(b *testing.B) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(b.TempDir(), "traces.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	spans, main, redrive := benchStory(5000)
	for chunk := range slices.Chunk(spans, 512) {
		if err := st.Write(ctx, chunk); err != nil {
			b.Fatal(err)
		}
	}
	masker, err := access.NewMasker(access.PIIRules{"orders.order.placed.v1": {"customer.email", "$key"}})
	if err != nil {
		b.Fatal(err)
	}
	admin := &access.Principal{User: "admin", Grants: []access.Grant{{Role: access.RoleAdmin, Actions: access.Actions(), Resources: []string{"*"}, Tenants: []string{"*"}}}}
	svc := NewService(st, ServiceOptions{Masker: masker})

	b.Run("switchyard", func(b *testing.B) {
		durs := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			v, err := svc.Trace(ctx, admin, main)
			durs = append(durs, time.Since(t0))
			if err != nil || len(v.Rows) != len(spans) || len(v.Traces) != 2 {
				b.Fatalf("Trace: %v", err)
			}
		}
		reportLatency(b, durs)
	})
	b.Run("bare-sql", func(b *testing.B) {
		db := st.DB()
		durs := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			got, err := bareSpans(ctx, db, main, redrive)
			durs = append(durs, time.Since(t0))
			if err != nil || len(got) != len(spans) {
				b.Fatalf("bare read: %d spans, %v", len(got), err)
			}
		}
		reportLatency(b, durs)
	})
}

// bareSpans reads two traces' spans in start order with one query and
// decodes every column and blob, as directly as the schema allows.
func bareSpans(ctx context.Context, db *sql.DB, a, b TraceID) ([]Span, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+spanColumns+spanFrom+`
		WHERE s.trace_id IN (?, ?) ORDER BY s.start_ns`, a[:], b[:])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]Span, 0, 5000)
	var scan spanScanner
	for rows.Next() {
		sp, _, err := scan.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, rows.Err()
}
