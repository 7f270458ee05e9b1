package browse

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/internal/testenv"
)

const topic = "orders.order.created.v1"

func envelope(t *testing.T, tenant, note string) []byte {
	t.Helper()
	env, err := delivery.NewEnvelope(topic, "test", map[string]any{"note": note, "email": tenant + "@example.com"},
		delivery.Metadata{PartitionKey: "k", TenantID: tenant})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upper is a masker that proves masking ran: it replaces the value.
type upper struct{}

func (upper) MaskMessage(_ string, raw []byte) ([]byte, int) {
	return []byte(strings.ReplaceAll(string(raw), "@example.com", "@***")), 1
}

func (upper) MaskKey(_ string, key []byte) ([]byte, bool) { return key, false }

func setup(t *testing.T) (*Browser, *kgo.Client) {
	t.Helper()
	c := testenv.Kafka(t, kfake.SeedTopics(2, topic))
	cl := testenv.KafkaClient(t, c.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := range 10 {
		tenant := "t1"
		if i%2 == 1 {
			tenant = "t2"
		}
		note := fmt.Sprintf("order %d", i)
		if i%3 == 0 {
			note += " REFUND requested"
		}
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: envelope(t, tenant, note)})
	}
	recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte{0xff, 0x00, 0x01},
		Headers: []kgo.RecordHeader{{Key: "tenant_id", Value: []byte("t1")}}})
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Clients: map[string]*kgo.Client{"demo": cl}, Masker: upper{}})
	if err != nil {
		t.Fatal(err)
	}
	return b, cl
}

func TestRead(t *testing.T) {
	b, _ := setup(t)
	ctx := context.Background()
	only := func(ts ...string) func(string) bool {
		return func(s string) bool {
			for _, x := range ts {
				if x == s {
					return true
				}
			}
			return false
		}
	}

	all, err := b.Read(ctx, "demo", topic, Query{Partition: -1, RevealPII: only("t1", "t2")})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Messages) != 11 || all.Scanned != 11 || all.Hidden != 0 {
		t.Fatalf("all: %d messages, scanned %d, hidden %d; want 11, 11, 0", len(all.Messages), all.Scanned, all.Hidden)
	}
	for i := 1; i < len(all.Messages); i++ {
		if all.Messages[i].Timestamp.After(all.Messages[i-1].Timestamp) {
			t.Errorf("not newest first at %d", i)
		}
	}
	if !strings.Contains(string(all.Messages[1].Value), "@example.com") {
		t.Errorf("revealed message is masked: %s", all.Messages[1].Value)
	}
	raw := all.Messages[0] // the binary record, produced last
	if raw.Valid || raw.Tenant != "t1" {
		t.Errorf("binary record: valid %v tenant %q; want invalid, tenant from header", raw.Valid, raw.Tenant)
	}
	if _, kind := Pretty(raw.Value); kind != "hex" {
		t.Errorf("binary record pretty kind = %s", kind)
	}

	t1, err := b.Read(ctx, "demo", topic, Query{Partition: -1, Tenants: only("t1"), Text: "refund"})
	if err != nil {
		t.Fatal(err)
	}
	// t1 notes 0, 6 (i%2==0 and i%3==0) carry "refund".
	if len(t1.Messages) != 2 || t1.Hidden != 5 {
		t.Fatalf("t1 refund: %d messages, hidden %d; want 2, 5", len(t1.Messages), t1.Hidden)
	}
	for _, m := range t1.Messages {
		if m.Tenant != "t1" || m.EventType != topic || !m.Valid {
			t.Errorf("t1 refund got %+v", m)
		}
		if !strings.Contains(string(m.Value), "@***") || m.Masked == 0 {
			t.Errorf("not revealed but unmasked: %s", m.Value)
		}
	}

	p1, err := b.Read(ctx, "demo", topic, Query{Partition: 1, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Messages) != 2 || p1.Messages[0].Offset != 4 || p1.Messages[1].Offset != 3 || p1.Messages[0].Partition != 1 {
		t.Errorf("partition 1 limit 2: %+v", p1.Messages)
	}

	for name, tc := range map[string]struct {
		cluster, topic string
		q              Query
		code           string
	}{
		"missing topic":     {"demo", "no.such.topic", Query{Partition: -1}, delivery.ENOTFOUND},
		"missing cluster":   {"nowhere", topic, Query{Partition: -1}, delivery.ENOTFOUND},
		"missing partition": {"demo", topic, Query{Partition: 7}, delivery.ENOTFOUND},
		"limit too big":     {"demo", topic, Query{Partition: -1, Limit: 501}, delivery.EINVALID},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := b.Read(ctx, tc.cluster, tc.topic, tc.q)
			if got := delivery.ErrorCode(err); got != tc.code {
				t.Errorf("code = %q (%v), want %s", got, err, tc.code)
			}
		})
	}
}

func TestPretty(t *testing.T) {
	for _, tc := range []struct{ in, text, kind string }{
		{`{"a":1}`, "{\n  \"a\": 1\n}", "json"},
		{"plain words", "plain words", "text"},
		{"\xff\x10", "ff 10", "hex"},
		{"", "", "text"},
	} {
		text, kind := Pretty([]byte(tc.in))
		if text != tc.text || kind != tc.kind {
			t.Errorf("Pretty(%q) = %q %s, want %q %s", tc.in, text, kind, tc.text, tc.kind)
		}
	}
}

// maskedBrowser is a browser with the real Masker (customer, the key and
// metadata.partition_key of topic are PII) over three records of tenant
// t1: an envelope keyed cust-0042, a poison pill keyed cust-0043 and a
// bare payload of customer cust-0044 whose type a header names.
func maskedBrowser(t *testing.T) *Browser {
	t.Helper()
	c := testenv.Kafka(t, kfake.SeedTopics(1, topic))
	cl := testenv.KafkaClient(t, c.ListenAddrs())
	env, err := delivery.NewEnvelope(topic, "test", map[string]any{"customer": "cust-0042", "note": "n"},
		delivery.Metadata{PartitionKey: "cust-0042", TenantID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	val, _ := json.Marshal(env)
	recs := []*kgo.Record{
		{Topic: topic, Key: []byte("cust-0042"), Value: val},
		// A poison pill: not an envelope, no type header. Its key is masked
		// all the same, since some type's key is PII.
		{Topic: topic, Key: []byte("cust-0043"), Value: []byte(`{"id":"x","payload":`),
			Headers: []kgo.RecordHeader{{Key: delivery.HeaderTenantID, Value: []byte("t1")}}},
		// A bare payload whose type a header names: masked as that type.
		{Topic: topic, Key: []byte("cust-0044"), Value: []byte(`{"customer":"cust-0044"}`),
			Headers: []kgo.RecordHeader{{Key: delivery.HeaderTenantID, Value: []byte("t1")}, {Key: delivery.HeaderEventType, Value: []byte(topic)}}},
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	m, err := access.NewMasker(access.PIIRules{topic: {"customer", "$key", "$metadata.partition_key"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Clients: map[string]*kgo.Client{"demo": cl}, Masker: m})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadMasksKeys: with the real Masker, a record's key and its
// envelope's metadata.partition_key are masked for a tenant without
// RevealPII before the text search, so searching for the customer finds
// nothing; revealed, both are shown and found.
func TestReadMasksKeys(t *testing.T) {
	b := maskedBrowser(t)
	ctx := context.Background()

	res, err := b.Read(ctx, "demo", topic, Query{Partition: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 3 {
		t.Fatalf("got %d messages, want 3", len(res.Messages))
	}
	for _, msg := range res.Messages {
		if string(msg.Key) != access.PIIMask || strings.Contains(string(msg.Value), "cust-00") {
			t.Errorf("offset %d: key %q value %s; want both masked", msg.Offset, msg.Key, msg.Value)
		}
	}
	if got := res.Messages[2]; got.Masked != 3 || !strings.Contains(string(got.Value), `"partition_key":"***"`) {
		t.Errorf("envelope: masked %d, value %s; want key, customer and partition_key masked", got.Masked, got.Value)
	}
	if got := res.Messages[0]; got.EventType != topic || got.Masked != 2 {
		t.Errorf("header-typed payload: type %q masked %d; want %s, 2", got.EventType, got.Masked, topic)
	}
	for _, q := range []string{"cust-0042", "CUST-0043", "0044"} {
		res, err := b.Read(ctx, "demo", topic, Query{Partition: -1, Text: q})
		if err != nil || len(res.Messages) != 0 {
			t.Errorf("masked search %q: %d messages, %v; want none", q, len(res.Messages), err)
		}
	}

	all := func(string) bool { return true }
	res, err = b.Read(ctx, "demo", topic, Query{Partition: -1, Text: "cust-0042", RevealPII: all})
	if err != nil || len(res.Messages) != 1 {
		t.Fatalf("revealed search: %d messages, %v; want 1", len(res.Messages), err)
	}
	if got := res.Messages[0]; string(got.Key) != "cust-0042" || got.Masked != 0 ||
		!strings.Contains(string(got.Value), `"partition_key":"cust-0042"`) {
		t.Errorf("revealed: key %q masked %d value %s", got.Key, got.Masked, got.Value)
	}
}

// A cluster that dies leaves the operator an error within the read's
// timeout, not a page that never comes back.
func TestReadOfADeadClusterEndsInItsTimeout(t *testing.T) {
	c := testenv.Kafka(t, kfake.SeedTopics(1, topic))
	cl := testenv.KafkaClient(t, c.ListenAddrs(), kgo.RetryTimeout(time.Second))
	b, err := New(Options{Clients: map[string]*kgo.Client{"demo": cl}, Masker: upper{}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(context.Background(), "demo", topic, Query{Partition: -1, Limit: 10}); err != nil {
		t.Fatalf("read while the cluster is up: %v", err)
	}
	c.Close()
	start := time.Now()
	page, err := b.Read(context.Background(), "demo", topic, Query{Partition: -1, Limit: 10})
	if took := time.Since(start); err == nil || took > 4*time.Second {
		t.Errorf("read of a dead cluster = %d messages, %v after %s; want an error within the 2 s timeout", len(page.Messages), err, took)
	}
}
