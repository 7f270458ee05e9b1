package delivery_test

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
)

func TestLocationString(t *testing.T) {
	tests := []struct {
		name string
		loc  delivery.Location
		want string
	}{
		{"kafka", delivery.Location{Broker: delivery.BrokerKafka, Cluster: "prod-eu1", Topic: "orders.order.created.v1.dlq", Partition: 2, Offset: 58}, "kafka:prod-eu1/orders.order.created.v1.dlq/2@58"},
		{"kafka offset zero", delivery.Location{Broker: delivery.BrokerKafka, Cluster: "c", Topic: "t", Partition: 0, Offset: 0}, "kafka:c/t/0@0"},
		{"kafka unknown partition and offset", delivery.Location{Broker: delivery.BrokerKafka, Cluster: "c", Topic: "t", Partition: -1, Offset: -1}, "kafka:c/t"},
		{"rabbitmq", delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: "rabbit-eu1", VHost: "notify", Queue: "notify.email.high.dlq", Partition: -1, Offset: -1}, "rabbitmq:rabbit-eu1/notify/notify.email.high.dlq"},
		{"rabbitmq default vhost", delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: "r", VHost: "/", Queue: "q", Partition: -1, Offset: -1}, "rabbitmq:r/%2F/q"},
		{"no broker, topic", delivery.Location{Cluster: "c", Topic: "t", Partition: 1, Offset: 9}, "kafka:c/t/1@9"},
		{"no broker, queue", delivery.Location{Cluster: "r", VHost: "v", Queue: "q", Partition: -1, Offset: -1}, "rabbitmq:r/v/q"},
		{"empty", delivery.Location{Partition: -1, Offset: -1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := delivery.LocationString(tt.loc); got != tt.want {
				t.Errorf("LocationString = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseLocation reads back what LocationString writes, so that a
// re-failure's switchyard.redrive.from finds the entry it was redriven
// from, and refuses anything else.
func TestParseLocation(t *testing.T) {
	for _, loc := range []delivery.Location{
		{Broker: delivery.BrokerKafka, Cluster: "prod-eu1", Topic: "orders.order.created.v1.dlq", Partition: 2, Offset: 58},
		{Broker: delivery.BrokerKafka, Cluster: "c", Topic: "t", Partition: 0, Offset: 0},
		{Broker: delivery.BrokerKafka, Cluster: "c", Topic: "t", Partition: -1, Offset: -1},
		{Broker: delivery.BrokerKafka, Cluster: "c", Topic: "t", Partition: 3, Offset: -1},
		{Broker: delivery.BrokerKafka, Cluster: "c", Topic: "t", Partition: -1, Offset: 7},
		{Broker: delivery.BrokerRabbitMQ, Cluster: "r", VHost: "/", Queue: "notify.email.high.dlq", Partition: -1, Offset: -1},
		{Broker: delivery.BrokerRabbitMQ, Cluster: "r", VHost: "team a/x", Queue: "q", Partition: -1, Offset: -1},
	} {
		s := delivery.LocationString(loc)
		got, err := delivery.ParseLocation(s)
		if err != nil || got != loc {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", s, got, err, loc)
		}
	}
	for _, s := range []string{"", "kafka", "kafka:", "kafka:c", "kafka:c/", "kafka:c/t/x", "kafka:c/t/1@-2", "kafka:c/@3",
		"rabbitmq:r/%2F", "rabbitmq:r/%zz/q", "pulsar:c/t"} {
		if _, err := delivery.ParseLocation(s); delivery.ErrorCode(err) != delivery.EINVALID {
			t.Errorf("ParseLocation(%q) = %v, want EINVALID", s, err)
		}
	}
}

func keys(h delivery.Headers) []string {
	out := make([]string, len(h))
	for i, x := range h {
		out[i] = x.Key
	}
	return out
}

// TestRedriveHeadersGolden redrives every golden dead-letter fixture: the
// message keeps exactly its own headers, in order, loses every format's
// error context and earlier provenance, and carries the new provenance.
func TestRedriveHeadersGolden(t *testing.T) {
	const job = 42
	provenance := []string{delivery.HeaderRedriveJob, delivery.HeaderRedriveCount, delivery.HeaderRedriveFrom, delivery.HeaderRedriveOrigin}
	tests := map[string]struct {
		kept   []string // the message's own headers, in order
		count  string
		from   string
		origin string // "" = no origin header
	}{
		"switchyard": {
			kept:  []string{"traceparent", "correlation_id", "event_id", "event_type", "tenant_id"},
			count: "2", from: "kafka:prod-eu1/orders.order.created.v1.dlq/0@1207", origin: "kafka:prod-eu1/orders.order.created.v1/3@184467",
		},
		"spring": {
			kept:  []string{"traceparent"},
			count: "1", from: "kafka:prod-eu1/orders.order.created.v1.dlq/0@311", origin: "kafka:prod-eu1/orders.order.created.v1/3@184467",
		},
		"connect": {
			kept:  []string{},
			count: "1", from: "kafka:prod-eu1/orders.order.created.v1.dlq/0@58", origin: "kafka:prod-eu1/orders.order.created.v1/2@18423",
		},
		"streams": {
			kept:  []string{"traceparent"},
			count: "1", from: "kafka:prod-eu1/inventory.stock.adjusted.v1.dlq/0@902", origin: "kafka:prod-eu1/inventory.stock.adjusted.v1/1@55210",
		},
		"masstransit": {
			// MT-Host-* describe the faulting host but are not in
			// IsDeadLetterHeader's list, so they stay.
			kept: []string{"Content-Type", "traceparent", "MT-Host-MachineName", "MT-Host-ProcessName", "MT-Host-ProcessId", "MT-Host-Assembly",
				"MT-Host-AssemblyVersion", "MT-Host-MassTransitVersion", "MT-Host-FrameworkVersion", "MT-Host-OperatingSystemVersion"},
			count: "1", from: "rabbitmq:rabbit-eu1/%2F/notify.email.high_error", origin: "rabbitmq:rabbit-eu1/%2F/notify.email.high",
		},
		"rabbitmq": {
			kept:  []string{"traceparent", "correlation_id", "event_type", "tenant_id"},
			count: "1", from: "rabbitmq:rabbit-eu1/%2F/notify.email.high.dlq", origin: "rabbitmq:rabbit-eu1/%2F/notify.email.high",
		},
		"rabbitmq_switchyard": {
			kept:  []string{"traceparent", "event_id", "event_type"},
			count: "1", from: "rabbitmq:rabbit-eu1/notify/notify.email.high.dlq", origin: "rabbitmq:rabbit-eu1/notify/notify.email.high",
		},
		"unknown": {
			kept:  []string{},
			count: "1", from: "kafka:prod-eu1/orders.order.created.v1.dlq/1@77", origin: "",
		},
		"non_utf8_body": {
			kept:  []string{},
			count: "1", from: "kafka:prod-eu1/orders.order.created.v1.dlq/2@5", origin: "kafka:prod-eu1/orders.order.created.v1/0@190233",
		},
		"invalid_envelope": {
			kept:  []string{},
			count: "1", from: "kafka:prod-eu1/orders.order.created.v1.dlq/0@1302", origin: "kafka:prod-eu1/orders.order.created.v1/0@190877",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m := deliverytest.LoadMessage(t, filepath.Join("testdata", "deadletter", name+".input.json"))
			dl := delivery.Decode(m)
			out, added, removed := delivery.RedriveHeaders(dl, job)

			wantAdded := delivery.Headers{
				{Key: delivery.HeaderRedriveJob, Value: []byte("42")},
				{Key: delivery.HeaderRedriveCount, Value: []byte(tt.count)},
				{Key: delivery.HeaderRedriveFrom, Value: []byte(tt.from)},
			}
			if tt.origin != "" {
				wantAdded = append(wantAdded, delivery.Header{Key: delivery.HeaderRedriveOrigin, Value: []byte(tt.origin)})
			}
			if !reflectHeadersEqual(added, wantAdded) {
				t.Errorf("added = %q, want %q", added, wantAdded)
			}
			if got := keys(out[:len(out)-len(added)]); !slices.Equal(got, tt.kept) {
				t.Errorf("kept headers = %q, want %q", got, tt.kept)
			}
			if !reflectHeadersEqual(out[len(out)-len(added):], wantAdded) {
				t.Errorf("out does not end with the added headers: %q", out)
			}
			// The kept headers keep their values.
			for _, h := range out[:len(out)-len(added)] {
				if v, _ := m.Headers.Get(h.Key); string(v) != string(h.Value) {
					t.Errorf("header %s = %q, want %q", h.Key, h.Value, v)
				}
			}
			// removed is every other input key, once, in first-seen order.
			var wantRemoved []string
			for _, h := range m.Headers {
				if !slices.Contains(tt.kept, h.Key) && !slices.Contains(wantRemoved, h.Key) {
					wantRemoved = append(wantRemoved, h.Key)
				}
			}
			if !slices.Equal(removed, wantRemoved) {
				t.Errorf("removed = %q, want %q", removed, wantRemoved)
			}
			// Exactly one of each provenance key: no stale job or count.
			for _, k := range provenance {
				n := 0
				for _, h := range out {
					if h.Key == k {
						n++
					}
				}
				if want := map[bool]int{true: 1, false: 0}[k != delivery.HeaderRedriveOrigin || tt.origin != ""]; n != want {
					t.Errorf("%s occurs %d times, want %d", k, n, want)
				}
			}
		})
	}
}

func TestRedriveHeadersDuplicates(t *testing.T) {
	dl := delivery.DeadLetter{
		Headers: delivery.Headers{
			{Key: "x-death", Value: []byte("[]")},
			{Key: "tenant_id", Value: []byte("t1")},
			{Key: "x-death", Value: []byte("[]")},
			{Key: delivery.HeaderRedriveJob, Value: []byte("7")},
			{Key: delivery.HeaderRedriveFrom, Value: []byte("kafka:old/t.dlq/0@1")},
			{Key: delivery.HeaderRedriveJob, Value: []byte("8")},
			{Key: "tenant_id", Value: []byte("t2")}, // Kafka allows duplicates of the message's own headers
		},
		RedriveCount: 4,
		DLQ:          delivery.Location{Broker: delivery.BrokerKafka, Cluster: "c", Topic: "t.dlq", Partition: 0, Offset: 3},
		Origin:       delivery.Location{Broker: delivery.BrokerKafka, Cluster: "c", Partition: -1, Offset: -1},
	}
	out, _, removed := delivery.RedriveHeaders(dl, 9)
	if want := []string{"x-death", delivery.HeaderRedriveJob, delivery.HeaderRedriveFrom}; !slices.Equal(removed, want) {
		t.Errorf("removed = %q, want %q", removed, want)
	}
	want := []string{"tenant_id", "tenant_id", delivery.HeaderRedriveJob, delivery.HeaderRedriveCount, delivery.HeaderRedriveFrom}
	if got := keys(out); !slices.Equal(got, want) {
		t.Errorf("out keys = %q, want %q (no origin header: the origin has no topic)", got, want)
	}
	if got := out.String(delivery.HeaderRedriveCount); got != "5" {
		t.Errorf("count = %q, want 5", got)
	}
	if got := out.String(delivery.HeaderRedriveFrom); got != "kafka:c/t.dlq/0@3" {
		t.Errorf("from = %q", got)
	}
	if got := out.String(delivery.HeaderRedriveJob); got != "9" {
		t.Errorf("job = %q, want 9", got)
	}
}

// TestRedriveProvenanceRoundTrip redrives a dead letter, lets the redriven
// message fail again the way the consumers dead-letter it (EncodeHeaders
// over the message's headers), and decodes the new dead letter: it counts
// one more redrive and says which job sent it, every time round.
func TestRedriveProvenanceRoundTrip(t *testing.T) {
	m := deliverytest.LoadMessage(t, filepath.Join("testdata", "deadletter", "spring.input.json"))
	dl := delivery.Decode(m)
	if dl.RedriveCount != 0 {
		t.Fatalf("fixture RedriveCount = %d, want 0", dl.RedriveCount)
	}
	at := time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)
	for round := 1; round <= 3; round++ {
		prev := dl.RedriveCount
		redriven, _, _ := delivery.RedriveHeaders(dl, int64(100+round))

		// The consumer of the origin topic fails again and dead-letters it.
		again := delivery.DeadLetter{
			Origin:         delivery.Location{Broker: delivery.BrokerKafka, Cluster: "prod-eu1", Topic: "orders.order.created.v1", Partition: 3, Offset: int64(200000 + round), ConsumerGroup: "billing-service"},
			Error:          delivery.ErrorInfo{Code: "PAYMENT_DECLINED", Message: "still declined"},
			Attempts:       3,
			FirstFailureAt: at, LastFailureAt: at,
			Headers: redriven,
		}
		dlqHeaders := delivery.EncodeHeaders(again)
		dl = delivery.Decode(delivery.Message{
			Location: delivery.Location{Broker: delivery.BrokerKafka, Cluster: "prod-eu1", Topic: "orders.order.created.v1.dlq", Partition: 0, Offset: int64(400 + round)},
			Key:      m.Key, Headers: dlqHeaders, Body: m.Body, Timestamp: at,
		})

		if dl.RedriveCount != prev+1 {
			t.Errorf("round %d: RedriveCount = %d, want %d", round, dl.RedriveCount, prev+1)
		}
		if dl.Format != delivery.FormatSwitchyard || dl.Error.Code != "PAYMENT_DECLINED" {
			t.Errorf("round %d: decoded %s/%s, want the new switchyard error, not the stale Spring one", round, dl.Format, dl.Error.Code)
		}
		if got, want := dl.Headers.String(delivery.HeaderRedriveJob), []string{"", "101", "102", "103"}[round]; got != want {
			t.Errorf("round %d: redrive job = %q, want %q", round, got, want)
		}
		for _, k := range keys(dlqHeaders) {
			if strings.HasPrefix(k, "kafka_dlt-") {
				t.Errorf("round %d: stale Spring header %s survived", round, k)
			}
		}
	}
}

// TestEncodeHeadersRedriveCountOnce: a redriven message that fails again
// carries switchyard.redrive.count; EncodeHeaders with RedriveCount set
// replaces it instead of writing the key twice, and without it keeps the
// message's own.
func TestEncodeHeadersRedriveCountOnce(t *testing.T) {
	h := delivery.Headers{
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: delivery.HeaderRedriveCount, Value: []byte("2")},
		{Key: delivery.HeaderRedriveJob, Value: []byte("12")},
	}
	count := func(h delivery.Headers) (n int, last string) {
		for _, x := range h {
			if x.Key == delivery.HeaderRedriveCount {
				n, last = n+1, string(x.Value)
			}
		}
		return n, last
	}
	tests := []struct {
		name string
		rc   int
		want string
	}{
		{"RedriveCount set replaces", 3, "3"},
		{"RedriveCount zero keeps the message's", 0, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := delivery.EncodeHeaders(delivery.DeadLetter{Headers: h, RedriveCount: tt.rc, Error: delivery.ErrorInfo{Code: "X"}})
			if n, v := count(out); n != 1 || v != tt.want {
				t.Errorf("%s: %d occurrences, value %q; want 1, %q", delivery.HeaderRedriveCount, n, v, tt.want)
			}
			if got := out.String(delivery.HeaderRedriveJob); got != "12" {
				t.Errorf("redrive job = %q, want it kept", got)
			}
			if got := delivery.Decode(delivery.Message{Headers: out}).RedriveCount; strconv.Itoa(got) != tt.want {
				t.Errorf("decoded RedriveCount = %d, want %s", got, tt.want)
			}
		})
	}
}
