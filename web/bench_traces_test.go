package web

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"switchyard/delivery"
	"switchyard/tracing"
)

// benchSpans is the batch size of the OTel SDK's batcher: one export
// request carries this many spans.
const benchSpans = 512

// traceBatch builds export request n: 512 spans of a messaging platform,
// as the demo's services send them — 8 services (resources with the
// attributes an SDK sets), 32 traces of 16 spans each (a producer span,
// then consumer attempts, some failed with an exception event), a dozen
// attributes per span. Trace and span ids are unique per n.
func traceBatch(n int) *coltrace.ExportTraceServiceRequest {
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	num := func(k string, v int64) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
	}
	services := []string{"orders-service", "billing-service", "analytics-service", "notify-service", "invoices", "shipping", "inventory", "fraud"}
	base := time.Now().Add(-time.Minute).UnixNano()
	req := &coltrace.ExportTraceServiceRequest{}
	perService := benchSpans / len(services)
	for si, svc := range services {
		rs := &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			str("service.name", svc), str("service.version", "1.4.2"), str("host.name", "node-"+strconv.Itoa(si%3)),
			str("telemetry.sdk.language", "go"), str("telemetry.sdk.name", "opentelemetry"), str("telemetry.sdk.version", "1.47.0"),
		}}}
		ss := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "switchyard/delivery"}}
		for j := range perService {
			i := si*perService + j // 0..511
			trace := i / 16
			var tid [16]byte
			binary.BigEndian.PutUint64(tid[:8], uint64(n))
			binary.BigEndian.PutUint64(tid[8:], uint64(trace+1))
			var sid, parent [8]byte
			binary.BigEndian.PutUint32(sid[:4], uint32(n))
			binary.BigEndian.PutUint32(sid[4:], uint32(i+1))
			start := base + int64(i)*int64(time.Millisecond)
			topic := "orders.order.created.v1"
			corr := fmt.Sprintf("corr-%d-%d", n, trace)
			sp := &tracepb.Span{TraceId: tid[:], SpanId: sid[:], Name: topic + " process", Kind: tracepb.Span_SPAN_KIND_CONSUMER,
				StartTimeUnixNano: uint64(start), EndTimeUnixNano: uint64(start + int64(3*time.Millisecond+time.Duration(i%7)*time.Millisecond)),
				Attributes: []*commonpb.KeyValue{
					str(delivery.AttrSystem, "kafka"), str(delivery.AttrDest, topic), str(delivery.AttrCluster, "demo"),
					str(delivery.AttrConsumer, svc), str(delivery.AttrCorrelationID, corr),
					str(delivery.AttrMessageID, fmt.Sprintf("evt-%d-%d", n, i)), str(delivery.AttrEventType, topic),
					str(delivery.AttrTenant, "t"+strconv.Itoa(1+trace%3)), str(delivery.AttrStep, delivery.StepAttempt),
					num(delivery.AttrAttempt, int64(1+i%3)), str("messaging.operation.type", "process"),
					num("messaging.kafka.message.offset", int64(n*benchSpans+i)),
				}}
			if i%16 == 0 {
				sp.Kind, sp.Name = tracepb.Span_SPAN_KIND_PRODUCER, topic+" publish"
			} else {
				binary.BigEndian.PutUint32(parent[:4], uint32(n))
				binary.BigEndian.PutUint32(parent[4:], uint32(i/16*16+1))
				sp.ParentSpanId = parent[:]
			}
			if i%8 == 5 {
				sp.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "PAYMENT_DECLINED: card declined"}
				sp.Events = []*tracepb.Span_Event{{TimeUnixNano: sp.EndTimeUnixNano - 1000, Name: "exception", Attributes: []*commonpb.KeyValue{
					str("exception.type", "billing.PaymentDeclined"), str("exception.message", "card declined by issuer"),
					str("exception.stacktrace", "billing.(*Handler).Handle\n\tbilling/handler.go:88\nswitchyard/delivery/kafka.(*Consumer).attempt\n\tdelivery/kafka/consumer.go:510"),
				}}}
			}
			ss.Spans = append(ss.Spans, sp)
		}
		rs.ScopeSpans = []*tracepb.ScopeSpans{ss}
		req.ResourceSpans = append(req.ResourceSpans, rs)
	}
	return req
}

// BenchmarkOTLPTraceIngest: export requests of 512 realistic spans as
// OTLP protobuf. /switchyard POSTs them over real loopback HTTP with an
// ingest token to the console's /v1/traces (authentication, the body
// limit, decoding, FromOTLP's caps and Derive, the store's one-transaction
// Write with its duplicate check and indexes); /bare-sqlite decodes the
// same bytes with proto.Unmarshal and inserts the same rows (the indexed
// columns from the attributes, the rest as the span's protobuf) into a
// file of the same schema with one prepared statement in one transaction
// per request (32 rows per INSERT, the store's page cache), no HTTP. Both
// report spans/s as msgs/s. Bodies are built with the timer stopped, with
// ids unique per request, as exporters send.
func BenchmarkOTLPTraceIngest(b *testing.B) {
	b.Run("switchyard", func(b *testing.B) {
		e := newIngestEnv(b, 0, false)
		client := &http.Client{}
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			body, err := proto.Marshal(traceBatch(i))
			if err != nil {
				b.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, e.base+"/v1/traces", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-protobuf")
			req.Header.Set("Authorization", "Bearer "+e.admin)
			b.StartTimer()
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck // draining for keep-alive
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("export: %d", resp.StatusCode)
			}
		}
		b.ReportMetric(float64(b.N*benchSpans)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("bare-sqlite", func(b *testing.B) {
		ctx := context.Background()
		st, err := tracing.Open(ctx, filepath.Join(b.TempDir(), "traces.db"), tracing.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		db := st.DB()
		resources := map[string]int64{}
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			body, err := proto.Marshal(traceBatch(i))
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			req := &coltrace.ExportTraceServiceRequest{}
			if err := proto.Unmarshal(body, req); err != nil {
				b.Fatal(err)
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			// The store's connection settings (a page cache for the random
			// index leaves) and its multi-row INSERT: the bare loop writes
			// the same rows as well as SQLite allows, not slower.
			if _, err := tx.ExecContext(ctx, `PRAGMA cache_size=-131072; PRAGMA wal_autocheckpoint=16384`); err != nil {
				b.Fatal(err)
			}
			var args []any
			flush := func() {
				if len(args) == 0 {
					return
				}
				if _, err := tx.ExecContext(ctx, bareInsert(len(args)/23), args...); err != nil {
					b.Fatal(err)
				}
				args = args[:0]
			}
			for _, rs := range req.ResourceSpans {
				rb, _ := proto.Marshal(rs.Resource)
				rid, ok := resources[string(rb)]
				if !ok {
					if err := tx.QueryRowContext(ctx, `INSERT INTO resources (attrs) VALUES (?) RETURNING id`, rb).Scan(&rid); err != nil {
						b.Fatal(err)
					}
					resources[string(rb)] = rid
				}
				service := ""
				for _, kv := range rs.Resource.Attributes {
					if kv.Key == "service.name" {
						service = kv.Value.GetStringValue()
					}
				}
				for _, ss := range rs.ScopeSpans {
					for _, sp := range ss.Spans {
						var corr, evt, typ, sys, dest, cluster, grp, tenant, step string
						var attempt int64
						for _, kv := range sp.Attributes {
							switch kv.Key {
							case delivery.AttrCorrelationID:
								corr = kv.Value.GetStringValue()
							case delivery.AttrMessageID:
								evt = kv.Value.GetStringValue()
							case delivery.AttrEventType:
								typ = kv.Value.GetStringValue()
							case delivery.AttrSystem:
								sys = kv.Value.GetStringValue()
							case delivery.AttrDest:
								dest = kv.Value.GetStringValue()
							case delivery.AttrCluster:
								cluster = kv.Value.GetStringValue()
							case delivery.AttrConsumer:
								grp = kv.Value.GetStringValue()
							case delivery.AttrTenant:
								tenant = kv.Value.GetStringValue()
							case delivery.AttrStep:
								step = kv.Value.GetStringValue()
							case delivery.AttrAttempt:
								attempt = kv.Value.GetIntValue()
							}
						}
						rest, _ := proto.Marshal(&tracepb.Span{Attributes: sp.Attributes, Events: sp.Events, Links: sp.Links, Status: sp.Status})
						var parent any
						if len(sp.ParentSpanId) == 8 {
							parent = sp.ParentSpanId
						}
						args = append(args, sp.TraceId, sp.SpanId, parent, int64(sp.StartTimeUnixNano),
							int64(sp.EndTimeUnixNano-sp.StartTimeUnixNano), service, sp.Name, int(sp.Kind), int(sp.GetStatus().GetCode()), 0,
							corr, evt, typ, sys, dest, cluster, grp, tenant, "kafka:"+cluster+"/"+dest, attempt, step, rid, rest)
						if len(args) == 32*23 {
							flush()
						}
					}
				}
			}
			flush()
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*benchSpans)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// bareInsert is the INSERT of n span rows. database/sql keeps no statement
// cache, but SQLite's own prepare of this text costs microseconds per 32
// rows, as the store's prepared statement per batch does.
func bareInsert(n int) string {
	return `INSERT INTO spans (trace_id, span_id, parent_id, start_ns, dur_ns, service, name, kind, status, flags,
		correlation_id, event_id, event_type, system, destination, cluster, grp, tenant, resource, attempt, step, resource_id, body)
		VALUES ` + strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?),", n), ",")
}
