package redrive

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/delivery/kafka"
	"switchyard/dlqstore"
)

// jobSpanRig is newRig with tracing on: the engine and the Kafka sender's
// publisher record into one in-memory SDK recorder, as the console's
// engine and senders share its TracerProvider.
func jobSpanRig(t *testing.T, topics ...string) (*rig, *tracetest.SpanRecorder) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	st, err := dlqstore.Open(context.Background(), filepath.Join(t.TempDir(), "dlq.db"), dlqstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tel, err := delivery.NewTelemetry(nil, tp)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kafka.NewPublisher(kafka.PublisherOptions{Brokers: c.ListenAddrs(), Telemetry: tel, Cluster: testCluster})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	sender := NewKafkaSender(pub)
	r := &rig{store: st, brokers: c.ListenAddrs(), audit: &memAudit{}}
	r.engine, err = New(Options{Store: st, Audit: r.audit, TracerProvider: tp, Unlimited: true, Poll: 50 * time.Millisecond,
		Sender: func(broker, cluster string) (Sender, error) {
			if broker == delivery.BrokerKafka && cluster == testCluster {
				return sender, nil
			}
			return nil, fmt.Errorf("no %s connection %q", broker, cluster)
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.start(t)
	return r, rec
}

// jobSpan waits for the ended span of job id's run.
func jobSpan(t *testing.T, rec *tracetest.SpanRecorder, id int64) sdktrace.ReadOnlySpan {
	t.Helper()
	name := "redrive job " + strconv.FormatInt(id, 10)
	got := spansWait(t, rec, name, 1, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == name })
	if len(got) != 1 {
		t.Fatalf("%d spans named %q, want one per run", len(got), name)
	}
	return got[0]
}

// A redrive job's run is one span that says what the job did — its id,
// action, destination, how many entries, how they ended — and each
// message's redrive span is its child, in its trace, so the job's trace
// lists every message it sent.
func TestJobSpanParentsTheRedriveSpans(t *testing.T) {
	t.Parallel()
	r, rec := jobSpanRig(t, "orders")
	ids := r.deadLetters(t, "orders", "t1", 5, 5, 0)
	job, err := r.engine.Start(context.Background(), admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids}, Reason: "gateway back"})
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, r.engine, job.ID, dlqstore.JobCompleted)

	js := jobSpan(t, rec, job.ID)
	for k, want := range map[string]string{
		delivery.AttrRedriveJob: strconv.FormatInt(job.ID, 10), AttrJobAction: "redrive", AttrJobEntries: "5",
		AttrJobDestinations: "1", delivery.AttrSystem: delivery.BrokerKafka, delivery.AttrCluster: testCluster, delivery.AttrDest: "orders",
		AttrJobState: string(dlqstore.JobCompleted), AttrJobDone: "5", AttrJobFailed: "0", AttrJobCancelled: "0",
		// Every tenant's: only a caller of all tenants sees it on a trace.
		delivery.AttrTenant: JobSpanTenant,
	} {
		if got := deliverytest.SpanAttr(js, k); got != want {
			t.Errorf("job span %s = %q, want %q", k, got, want)
		}
	}
	if js.Status().Code == codes.Error || js.Parent().IsValid() || js.SpanKind() != trace.SpanKindInternal {
		t.Errorf("job span status %v parent %v kind %v, want a root that did not fail", js.Status(), js.Parent(), js.SpanKind())
	}

	sent := spansWait(t, rec, "the five redrive spans", len(ids), func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "orders redrive" })
	entries := map[string]bool{}
	for _, s := range sent {
		if s.Parent().SpanID() != js.SpanContext().SpanID() || s.SpanContext().TraceID() != js.SpanContext().TraceID() {
			t.Errorf("redrive span of entry %s: parent %s in trace %s, want the job span %s in %s", deliverytest.SpanAttr(s, delivery.AttrDLQEntry),
				s.Parent().SpanID(), s.SpanContext().TraceID(), js.SpanContext().SpanID(), js.SpanContext().TraceID())
		}
		if got := deliverytest.SpanAttr(s, delivery.AttrRedriveJob); got != strconv.FormatInt(job.ID, 10) {
			t.Errorf("redrive span job %q, want %d", got, job.ID)
		}
		entries[deliverytest.SpanAttr(s, delivery.AttrDLQEntry)] = true
	}
	for _, id := range ids {
		if !entries[strconv.FormatInt(id, 10)] {
			t.Errorf("no redrive span of entry %d under the job (got %v)", id, entries)
		}
	}
	if js.EndTime().Before(sent[len(sent)-1].EndTime()) {
		t.Errorf("the job span ended at %v, before its last message's ack at %v", js.EndTime(), sent[len(sent)-1].EndTime())
	}
}

// A job whose entries fail to send ends its span failed, with the counts
// that say how much of it failed.
func TestJobSpanFailedJob(t *testing.T) {
	t.Parallel()
	r, rec := jobSpanRig(t, "orders")
	ids := r.deadLetters(t, "orders", "t1", 3, 3, 0)
	// A destination on a cluster the console has no connection to: every
	// entry fails, the job still completes with its ledger.
	job, err := r.engine.Start(context.Background(), admin, Request{Action: ActionRedrive, Selector: Selector{IDs: ids},
		Target: "kafka:elsewhere/orders", Reason: "move them"})
	if err != nil {
		t.Fatal(err)
	}
	if j := waitJob(t, r.engine, job.ID, dlqstore.JobCompleted); j.Failed != 3 {
		t.Fatalf("job = %+v, want its 3 entries failed", j)
	}
	js := jobSpan(t, rec, job.ID)
	if js.Status().Code != codes.Error || js.Status().Description != "3 of the 3 entries failed" {
		t.Errorf("job span status %+v, want error: 3 of the 3 entries failed", js.Status())
	}
	for k, want := range map[string]string{AttrJobFailed: "3", AttrJobDone: "0", delivery.AttrCluster: "elsewhere", delivery.AttrDest: "orders"} {
		if got := deliverytest.SpanAttr(js, k); got != want {
			t.Errorf("job span %s = %q, want %q", k, got, want)
		}
	}
}
