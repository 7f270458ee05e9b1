package dlqstoretest

import (
	"context"
	"slices"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/dlqstore"
)

// searchFixture indexes what an operator sees on entries and then types
// into the search box: two UPSTREAM_TIMEOUT failures (ids 1 and 2, tenant
// t1) whose messages never say "timeout", a PAYMENT_DECLINED one (3, t2)
// on another DLQ, and a RabbitMQ one (4, t1).
func searchFixture(t *testing.T, s dlqstore.Backend) {
	t.Helper()
	ctx := context.Background()
	kafka := func(topic string, specs ...Spec) {
		var items []dlqstore.IndexItem
		next := int64(0)
		for _, sp := range specs {
			next = max(next, sp.Off+1)
			sp.Dest = topic
			it := sp.Item()
			it.DL.Origin.ConsumerGroup, it.DL.Origin.Service = "billing", "billing-service"
			it.DL.Key = []byte("cust-00" + string(rune('0'+sp.Off)))
			items = append(items, it)
		}
		if _, err := s.IndexKafka(ctx, "main", topic, 0, items, next); err != nil {
			t.Fatal(err)
		}
	}
	timeout := Spec{Tenant: "t1", Code: "UPSTREAM_TIMEOUT", Msg: "payment gateway did not answer within 2700ms",
		Exc: "java.net.SocketTimeoutException", Type: "orders.order.created.v1", Origin: "orders.order.created.v1"}
	a, b := timeout, timeout
	b.Off, b.At = 1, T0().Add(time.Minute)
	kafka("orders.order.created.v1.dlq", a, b)
	kafka("payments.dlq", Spec{Off: 2, Tenant: "t2", Code: "PAYMENT_DECLINED", Msg: "card refused", Exc: "com.acme.CardRefusedException",
		Type: "payment.authorized", Origin: "payments.authorized.v1", At: T0().Add(2 * time.Minute)})
	rb := Spec{Broker: delivery.BrokerRabbitMQ, Dest: "notify.email.high.dlq", MsgID: "msg-77", Death: 1, Tenant: "t1",
		Code: "SMTP_REJECTED", Msg: "mailbox unavailable", Type: "email.requested", At: T0().Add(3 * time.Minute)}.Item()
	rb.DL.Origin = delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: "main", VHost: "/", Queue: "notify.email.high", Service: "mailer-service", Partition: -1, Offset: -1}
	if _, err := s.IndexRabbit(ctx, []dlqstore.IndexItem{rb}); err != nil {
		t.Fatal(err)
	}
}

// A search finds what the entries page shows: error codes (as typed, as
// words, or one word of them), exception types (whole, a dotted part, a
// camel-case word, a prefix), the DLQ and origin topics and queues, the
// origin service and consumer group, the event type and ids — for every
// reader, since every viewer of an entry sees them. The key is found only
// by a reader who may probe payloads: a $key rule may mask it.
func testSearchFindsWhatThePageShows(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	searchFixture(t, s)
	tests := []struct {
		q          string
		all, plain []int64 // with and without payload text (NoPayloadText)
	}{
		{"UPSTREAM_TIMEOUT", []int64{1, 2}, []int64{1, 2}},
		{"upstream timeout", []int64{1, 2}, []int64{1, 2}},
		{"timeout", []int64{1, 2}, []int64{1, 2}},
		{"code:timeout", []int64{1, 2}, []int64{1, 2}},
		{"message:timeout", nil, nil},
		{"exception:Timeout*", []int64{1, 2}, []int64{1, 2}},
		{"exception:timeout", []int64{1, 2}, []int64{1, 2}},
		{"SocketTimeoutException", []int64{1, 2}, []int64{1, 2}},
		{"java.net.SocketTimeoutException", []int64{1, 2}, []int64{1, 2}},
		{"PAYMENT_DECLINED", []int64{3}, []int64{3}},
		{"payments.dlq", []int64{3}, []int64{3}},                  // the DLQ topic
		{"payments.authorized.v1", []int64{3}, []int64{3}},        // the origin topic
		{"destination:notify.email.high", []int64{4}, []int64{4}}, // the origin queue (and the DLQ's name)
		{"destination:dlq", []int64{1, 2, 3, 4}, []int64{1, 2, 3, 4}},
		{"billing", []int64{1, 2, 3}, []int64{1, 2, 3}}, // consumer group and service
		{"service:mailer", []int64{4}, []int64{4}},
		{"event_type:payment.authorized", []int64{3}, []int64{3}},
		{"email.requested", []int64{4}, []int64{4}},
		{"msg-77", []int64{4}, []int64{4}}, // ids
		{"cust-001", []int64{2}, nil},      // the key: the message's own
		{"key:cust-002", []int64{3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			p := Find(t, s, dlqstore.Filter{Q: tt.q})
			if got := slices.Sorted(slices.Values(IDs(p.Entries))); !slices.Equal(got, tt.all) || p.Total != len(tt.all) {
				t.Errorf("Q %q = %v (total %d), want %v", tt.q, got, p.Total, tt.all)
			}
			f := dlqstore.Filter{Q: tt.q, NoPayloadText: true}
			p, err := s.FindEntries(context.Background(), f)
			if tt.plain == nil && len(tt.all) > 0 && tt.q[:4] == "key:" {
				if delivery.ErrorCode(err) != delivery.EINVALID {
					t.Errorf("Q %q without payload text = %v, want EINVALID", tt.q, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(slices.Values(IDs(p.Entries))); !slices.Equal(got, tt.plain) {
				t.Errorf("Q %q without payload text = %v, want %v", tt.q, got, tt.plain)
			}
		})
	}
}

// FieldMatches names the error codes, event types and DLQs whose names
// hold a term, with the filter's own entries counted in the caller's
// scope, so that an empty search can suggest a filter that matches.
func testFieldMatches(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	searchFixture(t, s)
	ctx := context.Background()
	t1 := &dlqstore.TenantScope{Tenants: []string{"t1"}}
	for _, tc := range []struct {
		name  string
		f     dlqstore.Filter
		terms []string
		want  []dlqstore.FieldMatch
	}{
		{"a word of a code", dlqstore.Filter{}, []string{"timeout"}, []dlqstore.FieldMatch{{Field: "error_code", Value: "UPSTREAM_TIMEOUT", Count: 2}}},
		{"part of a word", dlqstore.Filter{}, []string{"upstream_time"}, []dlqstore.FieldMatch{{Field: "error_code", Value: "UPSTREAM_TIMEOUT", Count: 2}}},
		{"words as typed", dlqstore.Filter{}, []string{"Upstream Time"}, []dlqstore.FieldMatch{{Field: "error_code", Value: "UPSTREAM_TIMEOUT", Count: 2}}},
		{"every field", dlqstore.Filter{}, []string{"payment"}, []dlqstore.FieldMatch{
			{Field: "error_code", Value: "PAYMENT_DECLINED", Count: 1},
			{Field: "event_type", Value: "payment.authorized", Count: 1},
			{Field: "destination", Value: "payments.dlq", Count: 1},
		}},
		{"most entries first", dlqstore.Filter{}, []string{"dlq"}, []dlqstore.FieldMatch{
			{Field: "destination", Value: "orders.order.created.v1.dlq", Count: 2},
			{Field: "destination", Value: "notify.email.high.dlq", Count: 1},
			{Field: "destination", Value: "payments.dlq", Count: 1},
		}},
		{"the caller's scope", dlqstore.Filter{Tenants: t1}, []string{"payment"}, nil},
		{"the filter's conditions", dlqstore.Filter{Status: []dlqstore.Status{dlqstore.StatusResolved}}, []string{"timeout"}, nil},
		{"the filter's destination", dlqstore.Filter{Destination: "payments.dlq"}, []string{"dlq"}, []dlqstore.FieldMatch{{Field: "destination", Value: "payments.dlq", Count: 1}}},
		{"no terms", dlqstore.Filter{}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.FieldMatches(ctx, tc.f, tc.terms, 3)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("FieldMatches(%v) = %+v, %v; want %+v", tc.terms, got, err, tc.want)
			}
		})
	}
	if _, err := s.FieldMatches(ctx, dlqstore.Filter{Status: []dlqstore.Status{"bogus"}}, []string{"x"}, 3); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("bad filter = %v, want EINVALID", err)
	}
}
