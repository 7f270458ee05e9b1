package indexer

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/delivery"
)

func TestBuildItemFlags(t *testing.T) {
	env := `{"id":"3f1c1d7e-0d5b-4bd4-9d1c-0a2f4c1b9e11","type":"orders.order.created.v1","occurred_at":"2025-03-14T09:26:30Z","source":"checkout","correlation_id":"c1","trace_id":"e8f543ca0aee94038dbcc16ac96bc10b","payload":{},"metadata":{"partition_key":"k","tenant_id":"t1"}}`
	errHeaders := delivery.Headers{{Key: delivery.HeaderErrorCode, Value: []byte("BOOM")}, {Key: delivery.HeaderErrorMessage, Value: []byte("boom")}}
	// Another framework's dead letters: their payload is their own record,
	// decoded from their headers, never "could not be decoded".
	connect := delivery.Headers{{Key: "__connect.errors.topic", Value: []byte("orders")},
		{Key: "__connect.errors.exception.class.name", Value: []byte("org.apache.kafka.connect.errors.DataException")},
		{Key: "__connect.errors.exception.message", Value: []byte("Converting byte[] to Kafka Connect data failed")}}
	spring := delivery.Headers{{Key: "kafka_dlt-original-topic", Value: []byte("orders")},
		{Key: "kafka_dlt-exception-fqcn", Value: []byte("org.springframework.kafka.listener.ListenerExecutionFailedException")},
		{Key: "kafka_dlt-exception-message", Value: []byte("Listener failed")}}
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = 'a'
	}
	cases := []struct {
		name      string
		body      []byte
		headers   delivery.Headers
		cap       int
		want      []string
		truncated bool
	}{
		{"valid envelope with error context", []byte(env), errHeaders, 1 << 20, nil, false},
		{"no headers", []byte(env), nil, 1 << 20, []string{FlagNoErrorContext}, false},
		{"not UTF-8", []byte{0xff, 0xfe, 'x'}, errHeaders, 1 << 20, []string{FlagNotUTF8, FlagUndecodable}, false},
		{"not JSON", []byte("hello"), errHeaders, 1 << 20, []string{FlagUndecodable}, false},
		{"empty", nil, errHeaders, 1 << 20, []string{FlagUndecodable}, false},
		{"envelope breaking the schema", []byte(`{"id":"x"}`), errHeaders, 1 << 20, []string{FlagInvalidEnvelope}, false},
		{"over the cap", big, errHeaders, 256 << 10, []string{FlagUndecodable, FlagTooLarge}, true},
		{"exactly the cap", big[:1024], errHeaders, 1024, []string{FlagUndecodable}, false},
		{"kafka connect, not JSON", []byte("order_id=ord-8841"), connect, 1 << 20, nil, false},
		{"spring, JSON of its own", []byte(`{"orderId":"ord-8841"}`), spring, 1 << 20, nil, false},
		{"kafka connect, not UTF-8", []byte{0xff, 0xfe, 'x'}, connect, 1 << 20, []string{FlagNotUTF8}, false},
	}
	now := time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := delivery.Message{
				Location: delivery.Location{Broker: delivery.BrokerKafka, Cluster: "c", Topic: "t.dlq", Partition: 0, Offset: 7},
				Headers:  c.headers, Body: c.body, Timestamp: now,
			}
			it := buildItem(m, c.cap, now)
			if !slices.Equal(it.Flags, c.want) {
				t.Errorf("flags = %v, want %v", it.Flags, c.want)
			}
			if it.Truncated != c.truncated {
				t.Errorf("truncated = %v, want %v", it.Truncated, c.truncated)
			}
			if it.PayloadSize != len(c.body) {
				t.Errorf("payload size = %d, want the original %d", it.PayloadSize, len(c.body))
			}
			sum := sha256.Sum256(c.body)
			if it.PayloadHash != hex.EncodeToString(sum[:]) {
				t.Errorf("payload hash = %s, want the original's", it.PayloadHash)
			}
			if want := min(len(c.body), c.cap); len(it.DL.Payload) != want {
				t.Errorf("stored payload = %d bytes, want %d", len(it.DL.Payload), want)
			}
			if it.DL.DLQ.Offset != 7 || it.DL.DLQ.Topic != "t.dlq" {
				t.Errorf("dlq location = %+v", it.DL.DLQ)
			}
			if it.Fingerprint == "" {
				t.Error("no fingerprint")
			}
		})
	}
}

func TestDeathCount(t *testing.T) {
	death := func(queue, reason string, n int64) amqp.Table {
		return amqp.Table{"queue": queue, "reason": reason, "count": n, "exchange": "", "routing-keys": []any{queue}}
	}
	cases := []struct {
		name string
		h    amqp.Table
		want int
	}{
		{"no x-death", amqp.Table{"a": "b"}, 0},
		{"nil", nil, 0},
		{"one hop", amqp.Table{"x-death": []any{death("work", "rejected", 1)}}, 1},
		{"last death named", amqp.Table{
			"x-death":             []any{death("other", "expired", 7), death("work", "rejected", 3)},
			"x-last-death-queue":  "work",
			"x-last-death-reason": "rejected",
		}, 3},
		{"most recent first without x-last-death", amqp.Table{"x-death": []any{death("work", "rejected", 2), death("first", "expired", 1)}}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := deathCount(c.h); got != c.want {
				t.Errorf("deathCount = %d, want %d", got, c.want)
			}
		})
	}
}
