package delivery_test

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"

	"switchyard/delivery"
)

func hdr(kv ...string) delivery.Headers {
	var h delivery.Headers
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, delivery.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return h
}

func validEnvelopeJSON() []byte {
	return []byte(`{"id":"df90bfca-2f1a-42ad-a3b5-634cac660ae5","type":"orders.order.created.v1","occurred_at":"2025-03-14T09:26:30.118Z","source":"checkout-service","correlation_id":"9d45d438-0e6f-46df-a270-1eeabdb227e1","trace_id":"e8f543ca0aee94038dbcc16ac96bc10b","payload":{"order_id":"ord-8841"},"metadata":{"partition_key":"ord-8841","tenant_id":"t-acme-de"}}`)
}

// TestEncodeDecodeRoundTrip writes a dead letter's context with
// EncodeHeaders and reads it back with Decode: every field must survive,
// the message's own headers stay, and stale dead-letter headers of other
// formats are dropped.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	first := time.Date(2025, 3, 14, 9, 26, 31, 402118000, time.UTC)
	last := first.Add(2*time.Second + 516656*time.Microsecond)
	tests := []struct {
		name string
		dl   delivery.DeadLetter
		dlq  delivery.Location
	}{
		{
			name: "kafka origin",
			dl: delivery.DeadLetter{
				Error: delivery.ErrorInfo{
					Code:          "PAYMENT_DECLINED",
					Message:       "card declined for order ord-8841: issuer said \"51\"\nsecond line ✓",
					Details:       map[string]any{"order_id": "ord-8841", "issuer_code": float64(51), "retryable": false},
					ExceptionType: "*billing.DeclinedError",
					Stack:         "goroutine 7 [running]:\nacme/billing.(*Service).Capture(...)\n\t/src/billing/service.go:118 +0x2f4\n",
				},
				Attempts:       5,
				RedriveCount:   2,
				FirstFailureAt: first,
				LastFailureAt:  last,
				Origin: delivery.Location{
					Broker: delivery.BrokerKafka, Cluster: "prod-eu1", Topic: "orders.order.created.v1",
					Partition: 3, Offset: 184467, ConsumerGroup: "billing-service", Service: "billing",
				},
				Headers: delivery.Headers{
					{Key: "traceparent", Value: []byte("00-e8f543ca0aee94038dbcc16ac96bc10b-1560b39a8ea09fb6-01")},
					{Key: "kafka_dlt-exception-fqcn", Value: []byte("java.lang.IllegalStateException")},
					{Key: "switchyard.error.code", Value: []byte("STALE")},
					{Key: "tenant_id", Value: []byte("t-acme-de")},
				},
			},
			dlq: delivery.Location{Broker: delivery.BrokerKafka, Cluster: "prod-eu1", Topic: "orders.order.created.v1.dlq", Partition: 0, Offset: 9},
		},
		{
			name: "rabbitmq origin",
			dl: delivery.DeadLetter{
				Error:          delivery.ErrorInfo{Code: "TEMPLATE_NOT_FOUND", Message: "template missing"},
				Attempts:       3,
				FirstFailureAt: first,
				LastFailureAt:  first,
				Origin: delivery.Location{
					Broker: delivery.BrokerRabbitMQ, Cluster: "rabbit-eu1", VHost: "notify", Exchange: "notify",
					RoutingKey: "notify.email.high", Queue: "notify.email.high", Partition: -1, Offset: -1, Service: "notify-email",
				},
				Headers: delivery.Headers{
					{Key: "x-death", Value: []byte(`[{"count":9,"queue":"elsewhere","reason":"expired"}]`)},
					{Key: "x-first-death-queue", Value: []byte("elsewhere")},
					{Key: "MT-Fault-Message", Value: []byte("stale")},
					{Key: "MT-Host-MachineName", Value: []byte("notify-7c9d8f6b5-x2k4p")},
				},
			},
			dlq: delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: "rabbit-eu1", VHost: "notify", Queue: "notify.email.high.dlq", Partition: -1, Offset: -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := validEnvelopeJSON()
			m := delivery.Message{
				Location:  tt.dlq,
				Key:       []byte("ord-8841"),
				Headers:   delivery.EncodeHeaders(tt.dl),
				Body:      body,
				Timestamp: last.Add(time.Second),
			}
			got := delivery.Decode(m)
			if got.Format != delivery.FormatSwitchyard {
				t.Errorf("Format = %q, want switchyard", got.Format)
			}
			if !reflect.DeepEqual(got.Error, tt.dl.Error) {
				t.Errorf("Error = %#v\nwant    %#v", got.Error, tt.dl.Error)
			}
			if got.Origin != tt.dl.Origin {
				t.Errorf("Origin = %+v\nwant     %+v", got.Origin, tt.dl.Origin)
			}
			if got.Attempts != tt.dl.Attempts || got.RedriveCount != tt.dl.RedriveCount {
				t.Errorf("Attempts/RedriveCount = %d/%d, want %d/%d", got.Attempts, got.RedriveCount, tt.dl.Attempts, tt.dl.RedriveCount)
			}
			if !got.FirstFailureAt.Equal(tt.dl.FirstFailureAt) || !got.LastFailureAt.Equal(tt.dl.LastFailureAt) {
				t.Errorf("failure times = %v..%v, want %v..%v", got.FirstFailureAt, got.LastFailureAt, tt.dl.FirstFailureAt, tt.dl.LastFailureAt)
			}
			if got.DLQ != tt.dlq || !bytes.Equal(got.Key, m.Key) || !bytes.Equal(got.Payload, body) {
				t.Error("DLQ, key or payload not carried over")
			}
			if got.Envelope == nil || got.Envelope.ID != "df90bfca-2f1a-42ad-a3b5-634cac660ae5" || got.EnvelopeError != "" {
				t.Errorf("envelope not decoded: %v %q", got.Envelope, got.EnvelopeError)
			}
			for _, h := range tt.dl.Headers {
				if strings.HasPrefix(h.Key, delivery.HeaderPrefix) {
					continue // rewritten, checked below
				}
				_, kept := got.Headers.Get(h.Key)
				if want := !delivery.IsDeadLetterHeader(h.Key); kept != want {
					t.Errorf("header %q kept = %v, want %v", h.Key, kept, want)
				}
			}
			if v := got.Headers.String(delivery.HeaderErrorCode); v != tt.dl.Error.Code {
				t.Errorf("%s = %q, want the new code %q (stale value dropped)", delivery.HeaderErrorCode, v, tt.dl.Error.Code)
			}
		})
	}
}

func TestDecodeSpring(t *testing.T) {
	be32 := func(n int32) string { b := make([]byte, 4); binary.BigEndian.PutUint32(b, uint32(n)); return string(b) }
	be64 := func(n int64) string { b := make([]byte, 8); binary.BigEndian.PutUint64(b, uint64(n)); return string(b) }
	tests := []struct {
		name          string
		h             delivery.Headers
		wantPartition int32
		wantOffset    int64
		wantCode      string
		wantMessage   string
		wantAttempts  int
	}{
		{
			name:          "binary ints",
			h:             hdr("kafka_dlt-original-topic", "t.a.b.v1", "kafka_dlt-original-partition", be32(7), "kafka_dlt-original-offset", be64(1<<40), "kafka_dlt-exception-fqcn", "java.lang.IllegalStateException", "kafka_dlt-exception-message", "boom"),
			wantPartition: 7, wantOffset: 1 << 40, wantCode: "IllegalStateException", wantMessage: "boom", wantAttempts: 1,
		},
		{
			name:          "decimal strings",
			h:             hdr("kafka_dlt-original-topic", "t.a.b.v1", "kafka_dlt-original-partition", "12", "kafka_dlt-original-offset", "98765", "kafka_dlt-exception-fqcn", "com.acme.Outer$InnerException"),
			wantPartition: 12, wantOffset: 98765, wantCode: "InnerException", wantAttempts: 1,
		},
		{
			name:          "garbage coordinates are unknown",
			h:             hdr("kafka_dlt-original-partition", "\x01\x02", "kafka_dlt-original-offset", "abc", "kafka_dlt-exception-fqcn", "X"),
			wantPartition: -1, wantOffset: -1, wantCode: "X", wantAttempts: 1,
		},
		{
			name:          "key deserializer failure",
			h:             hdr("kafka_dlt-original-partition", be32(0), "kafka_dlt-original-offset", be64(3), "kafka_dlt-key-exception-fqcn", "org.springframework.kafka.support.serializer.DeserializationException", "kafka_dlt-key-exception-message", "failed to deserialize; nested exception is java.lang.NumberFormatException"),
			wantPartition: 0, wantOffset: 3, wantCode: "DeserializationException", wantMessage: "failed to deserialize; nested exception is java.lang.NumberFormatException", wantAttempts: 1,
		},
		{
			name: "cause without a message line keeps the listener message",
			h: hdr("kafka_dlt-exception-fqcn", "org.springframework.kafka.listener.ListenerExecutionFailedException", "kafka_dlt-exception-cause-fqcn", "java.lang.NullPointerException",
				"kafka_dlt-exception-message", "Listener failed", "kafka_dlt-exception-stacktrace", "org.springframework.kafka.listener.ListenerExecutionFailedException: Listener failed\n\tat x.Y.z(Y.java:1)\nCaused by: java.lang.NullPointerException\n\tat com.acme.A.b(A.java:9)\n"),
			wantPartition: -1, wantOffset: -1, wantCode: "NullPointerException", wantMessage: "Listener failed", wantAttempts: 1,
		},
		{
			name:          "retry topic attempts",
			h:             hdr("kafka_dlt-exception-fqcn", "java.lang.RuntimeException", "retry_topic-attempts", be32(4)),
			wantPartition: -1, wantOffset: -1, wantCode: "RuntimeException", wantAttempts: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dl := delivery.Decode(delivery.Message{Headers: tt.h})
			if dl.Format != delivery.FormatSpring {
				t.Fatalf("Format = %q, want spring", dl.Format)
			}
			if dl.Origin.Partition != tt.wantPartition || dl.Origin.Offset != tt.wantOffset {
				t.Errorf("partition/offset = %d/%d, want %d/%d", dl.Origin.Partition, dl.Origin.Offset, tt.wantPartition, tt.wantOffset)
			}
			if dl.Error.Code != tt.wantCode || dl.Error.Message != tt.wantMessage {
				t.Errorf("code/message = %q/%q, want %q/%q", dl.Error.Code, dl.Error.Message, tt.wantCode, tt.wantMessage)
			}
			if dl.Attempts != tt.wantAttempts {
				t.Errorf("Attempts = %d, want %d", dl.Attempts, tt.wantAttempts)
			}
		})
	}
}

func TestDecodeRabbitMQ(t *testing.T) {
	tests := []struct {
		name         string
		h            delivery.Headers
		wantCode     string
		wantMessage  string
		wantQueue    string
		wantExchange string
		wantRouting  string
		wantAttempts int
		wantFirst    time.Time
	}{
		{
			name:     "expired once",
			h:        hdr("x-death", `[{"count":1,"exchange":"","queue":"billing.invoice.low","reason":"expired","routing-keys":["billing.invoice.low"],"time":"2025-03-14T08:00:00Z","original-expiration":"60000"}]`, "x-first-death-queue", "billing.invoice.low", "x-first-death-reason", "expired", "x-first-death-exchange", ""),
			wantCode: "RABBITMQ_EXPIRED", wantMessage: "expired in queue billing.invoice.low (message TTL)",
			wantQueue: "billing.invoice.low", wantRouting: "billing.invoice.low", wantAttempts: 1,
			wantFirst: time.Date(2025, 3, 14, 8, 0, 0, 0, time.UTC),
		},
		{
			name:     "maxlen",
			h:        hdr("x-death", `[{"count":1,"exchange":"notify","queue":"notify.sms.bulk","reason":"maxlen","routing-keys":["notify.sms.bulk"],"time":"2025-03-14T08:00:00Z"}]`),
			wantCode: "RABBITMQ_MAXLEN", wantMessage: "dropped from queue notify.sms.bulk: queue length limit exceeded",
			wantQueue: "notify.sms.bulk", wantExchange: "notify", wantRouting: "notify.sms.bulk", wantAttempts: 1,
			wantFirst: time.Date(2025, 3, 14, 8, 0, 0, 0, time.UTC),
		},
		{
			name:     "quorum delivery limit, count as text, time as epoch seconds",
			h:        hdr("x-death", `[{"count":"20","exchange":"orders","queue":"orders.sync.critical","reason":"delivery_limit","routing-keys":["orders.sync.critical","extra"],"time":1741939200}]`),
			wantCode: "RABBITMQ_DELIVERY_LIMIT", wantMessage: "delivery limit exceeded in queue orders.sync.critical (20 times)",
			wantQueue: "orders.sync.critical", wantExchange: "orders", wantRouting: "orders.sync.critical", wantAttempts: 20,
			wantFirst: time.Unix(1741939200, 0).UTC(),
		},
		{
			name: "no x-first-death headers: oldest entry is the first death",
			h: hdr("x-death", `[{"count":2,"exchange":"notify.retry","queue":"notify.email.high.retry","reason":"expired","routing-keys":["notify.email.high"],"time":"2025-03-14T09:00:05Z"},`+
				`{"count":2,"exchange":"notify","queue":"notify.email.high","reason":"rejected","routing-keys":["notify.email.high"],"time":"2025-03-14T09:00:00Z"}]`),
			wantCode: "RABBITMQ_REJECTED", wantMessage: "rejected by consumer of queue notify.email.high (2 times)",
			wantQueue: "notify.email.high", wantExchange: "notify", wantRouting: "notify.email.high", wantAttempts: 2,
			wantFirst: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC),
		},
		{
			name:     "malformed x-death falls back to x-first-death headers",
			h:        hdr("x-death", `{not json`, "x-first-death-queue", "notify.email.high", "x-first-death-exchange", "notify", "x-first-death-reason", "rejected"),
			wantCode: "RABBITMQ_REJECTED", wantMessage: "rejected by consumer of queue notify.email.high",
			wantQueue: "notify.email.high", wantExchange: "notify", wantAttempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dl := delivery.Decode(delivery.Message{Headers: tt.h, Location: delivery.Location{Broker: delivery.BrokerRabbitMQ, VHost: "prod", Queue: "x.dlq", Partition: -1, Offset: -1}})
			if dl.Format != delivery.FormatRabbitMQ {
				t.Fatalf("Format = %q, want rabbitmq", dl.Format)
			}
			if dl.Error.Code != tt.wantCode || dl.Error.Message != tt.wantMessage {
				t.Errorf("code/message = %q / %q\nwant             %q / %q", dl.Error.Code, dl.Error.Message, tt.wantCode, tt.wantMessage)
			}
			o := dl.Origin
			if o.Broker != delivery.BrokerRabbitMQ || o.Queue != tt.wantQueue || o.Exchange != tt.wantExchange || o.RoutingKey != tt.wantRouting || o.VHost != "prod" {
				t.Errorf("Origin = %+v, want queue %q exchange %q routing %q vhost prod", o, tt.wantQueue, tt.wantExchange, tt.wantRouting)
			}
			if o.Partition != -1 || o.Offset != -1 {
				t.Errorf("partition/offset = %d/%d, want -1/-1", o.Partition, o.Offset)
			}
			if dl.Attempts != tt.wantAttempts {
				t.Errorf("Attempts = %d, want %d", dl.Attempts, tt.wantAttempts)
			}
			if !tt.wantFirst.IsZero() && !dl.FirstFailureAt.Equal(tt.wantFirst) {
				t.Errorf("FirstFailureAt = %v, want %v", dl.FirstFailureAt, tt.wantFirst)
			}
		})
	}
}

func TestDecodeMassTransitAddressAndTime(t *testing.T) {
	dl := delivery.Decode(delivery.Message{Headers: hdr(
		"MT-Fault-ExceptionType", "System.Collections.Generic.KeyNotFoundException",
		"MT-Fault-InputAddress", "rabbitmq://rmq.internal/billing/billing.invoice.normal?prefetch=16",
		"MT-Fault-Timestamp", "2025-03-14T09:27:41.5230094",
		"MT-Fault-RetryCount", "0",
		"MT-Fault-ConsumerType", "Acme.Billing.InvoiceConsumer",
	)})
	o := dl.Origin
	if o.Broker != delivery.BrokerRabbitMQ || o.VHost != "billing" || o.Queue != "billing.invoice.normal" || o.Service != "Acme.Billing.InvoiceConsumer" {
		t.Errorf("Origin = %+v", o)
	}
	if want := time.Date(2025, 3, 14, 9, 27, 41, 523009400, time.UTC); !dl.LastFailureAt.Equal(want) {
		t.Errorf("LastFailureAt = %v, want %v", dl.LastFailureAt, want)
	}
	if dl.Attempts != 1 || dl.Error.Code != "KeyNotFoundException" {
		t.Errorf("attempts/code = %d/%q, want 1/KeyNotFoundException", dl.Attempts, dl.Error.Code)
	}
}

// A format's empty fields are filled from the formats after it, never the
// other way round.
func TestDecodePrecedence(t *testing.T) {
	h := hdr(
		"__connect.errors.exception.class.name", "org.apache.kafka.connect.errors.DataException",
		"__connect.errors.topic", "from.connect.topic.v1",
		"kafka_dlt-exception-fqcn", "java.lang.IllegalStateException",
		"kafka_dlt-exception-message", "from spring",
		"kafka_dlt-original-partition", "4",
	)
	dl := delivery.Decode(delivery.Message{Headers: h})
	if dl.Format != delivery.FormatSpring {
		t.Errorf("Format = %q, want spring (it precedes connect)", dl.Format)
	}
	if dl.Error.Code != "IllegalStateException" || dl.Error.Message != "from spring" {
		t.Errorf("error = %q/%q, want Spring's", dl.Error.Code, dl.Error.Message)
	}
	if dl.Origin.Topic != "from.connect.topic.v1" || dl.Origin.Partition != 4 {
		t.Errorf("origin = %+v, want Spring's partition and Connect's topic", dl.Origin)
	}
}

// FuzzDecode feeds Decode arbitrary values under the header names every
// decoder reads: it must never panic, must keep the body as the payload
// byte for byte, and must keep its invariants.
func FuzzDecode(f *testing.F) {
	f.Add(uint8(0), []byte("3"), uint8(1), []byte("x"), validEnvelopeJSON())
	f.Add(uint8(20), []byte(`[{"count":3,"queue":"q","reason":"rejected","time":"2025-03-14T09:00:00Z","routing-keys":["a"]}]`), uint8(21), []byte("q"), []byte("{}"))
	f.Add(uint8(20), []byte(`[{"count":-1,"time":-99999999999999},null,{"count":1e30}]`), uint8(22), []byte("rejected"), []byte("\xff\xfe"))
	f.Add(uint8(7), []byte{0, 0, 0, 3}, uint8(8), []byte{0x80, 0, 0, 0, 0, 0, 0, 0}, []byte(nil))
	f.Add(uint8(17), []byte("rabbitmq://h/v/q?x=1"), uint8(16), []byte("-1"), []byte("null"))
	f.Add(uint8(12), []byte("99999999999999999999"), uint8(13), []byte("-5"), []byte(`[1,2]`))
	keys := []string{
		"switchyard.error.code", "switchyard.attempts", "switchyard.origin.partition", "switchyard.origin.offset",
		"switchyard.first_failure_at", "switchyard.error.details", "switchyard.redrive.count",
		"kafka_dlt-original-partition", "kafka_dlt-original-offset", "kafka_dlt-original-timestamp",
		"kafka_dlt-exception-cause-fqcn", "kafka_dlt-exception-stacktrace",
		"__connect.errors.partition", "__connect.errors.offset", "__streams.errors.partition",
		"MT-Fault-RetryCount", "MT-Fault-Timestamp", "MT-Fault-InputAddress", "retry_topic-attempts",
		"__streams.errors.offset", "x-death", "x-first-death-queue", "x-first-death-reason", "x-last-death-queue",
		"unrelated",
	}
	f.Fuzz(func(t *testing.T, k1 uint8, v1 []byte, k2 uint8, v2 []byte, body []byte) {
		m := delivery.Message{
			Headers: delivery.Headers{
				{Key: keys[int(k1)%len(keys)], Value: v1},
				{Key: keys[int(k2)%len(keys)], Value: v2},
			},
			Body: body,
		}
		dl := delivery.Decode(m)
		if !bytes.Equal(dl.Payload, body) {
			t.Fatalf("Payload %q != body %q", dl.Payload, body)
		}
		if dl.Format == "" || dl.Attempts < 1 {
			t.Fatalf("Format %q, Attempts %d", dl.Format, dl.Attempts)
		}
		if dl.Origin.Partition < -1 || dl.Origin.Offset < -1 {
			t.Fatalf("Origin partition/offset %d/%d below -1", dl.Origin.Partition, dl.Origin.Offset)
		}
		if (dl.Envelope == nil) && dl.EnvelopeError == "" {
			t.Fatal("no envelope and no reason")
		}
		if fp := delivery.Fingerprint(dl); len(fp) != 16 {
			t.Fatalf("Fingerprint %q", fp)
		}
		if poison, reason := (delivery.PoisonRules{}).Classify(dl); poison && strings.TrimSpace(reason) == "" {
			t.Fatal("poison without a reason")
		}
	})
}
