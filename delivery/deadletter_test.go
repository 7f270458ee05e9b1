package delivery_test

import (
	"testing"

	"switchyard/delivery"
)

func TestHeadersGet(t *testing.T) {
	h := delivery.Headers{
		{Key: "traceparent", Value: []byte("first")},
		{Key: "tenant_id", Value: []byte("t-acme-de")},
		{Key: "traceparent", Value: []byte("second")},
		{Key: "empty", Value: nil},
	}
	tests := []struct {
		key    string
		want   string
		wantOK bool
	}{
		{"traceparent", "second", true}, // last value wins, as in Kafka header maps
		{"tenant_id", "t-acme-de", true},
		{"empty", "", true},
		{"missing", "", false},
		{"Traceparent", "", false}, // keys are case-sensitive
	}
	for _, tt := range tests {
		v, ok := h.Get(tt.key)
		if string(v) != tt.want || ok != tt.wantOK {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.key, v, ok, tt.want, tt.wantOK)
		}
		if got := h.String(tt.key); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestHeadersWithout(t *testing.T) {
	h := delivery.Headers{
		{Key: "traceparent", Value: []byte("tp")},
		{Key: "kafka_dlt-exception-fqcn", Value: []byte("java.lang.X")},
		{Key: "tenant_id", Value: []byte("t1")},
		{Key: "x-death", Value: []byte("[]")},
		{Key: "switchyard.redrive.count", Value: []byte("2")},
		{Key: "switchyard.error.code", Value: []byte("X")},
	}
	got := h.Without(delivery.IsDeadLetterHeader)
	want := []string{"traceparent", "tenant_id", "switchyard.redrive.count"}
	if len(got) != len(want) {
		t.Fatalf("Without = %v, want keys %v", got, want)
	}
	for i, k := range want {
		if got[i].Key != k {
			t.Errorf("Without[%d] = %q, want %q (order kept)", i, got[i].Key, k)
		}
	}
	if len(h) != 6 || h[1].Key != "kafka_dlt-exception-fqcn" {
		t.Error("Without modified the original headers")
	}
}

func TestIsDeadLetterHeader(t *testing.T) {
	for key, want := range map[string]bool{
		"switchyard.error.code":             true,
		"switchyard.error.details":          true,
		"switchyard.origin.topic":           true,
		"switchyard.attempts":               true,
		"switchyard.first_failure_at":       true,
		"switchyard.redrive.count":          false, // provenance survives a redrive
		"switchyard.redrive.job":            false,
		"kafka_dlt-original-offset":         true,
		"kafka_dlt-key-exception-fqcn":      true,
		"__connect.errors.stage":            true,
		"__streams.errors.exception":        true,
		"x-death":                           true,
		"x-first-death-queue":               true,
		"x-last-death-reason":               true,
		"MT-Fault-StackTrace":               true,
		"MT-Reason":                         true,
		"MT-Host-MachineName":               false,
		"traceparent":                       false,
		"correlation_id":                    false,
		"x-delivery-count":                  false,
		"kafka_dlt":                         false,
		"switchyard.errors-are-not-headers": false,
	} {
		if got := delivery.IsDeadLetterHeader(key); got != want {
			t.Errorf("IsDeadLetterHeader(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestLocationDestination(t *testing.T) {
	tests := []struct {
		loc  delivery.Location
		want string
	}{
		{delivery.Location{Topic: "orders.order.created.v1", Partition: 3}, "orders.order.created.v1"},
		{delivery.Location{Queue: "notify.email.high", Exchange: "notify"}, "notify.email.high"},
		{delivery.Location{Exchange: "notify"}, ""},
	}
	for _, tt := range tests {
		if got := tt.loc.Destination(); got != tt.want {
			t.Errorf("%+v.Destination() = %q, want %q", tt.loc, got, tt.want)
		}
	}
}
