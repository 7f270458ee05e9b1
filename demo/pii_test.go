package demo

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/access"
	"switchyard/delivery"
)

// TestPIIRulesHideTheCustomer: every record the demo's services publish, as
// they build it, shows its customer to no one without read_pii — not in
// the payload, the metadata, or the key — once masked with PIIRules the
// way the console's browser and dead-letter pages mask it.
func TestPIIRulesHideTheCustomer(t *testing.T) {
	m, err := access.NewMasker(access.PIIRules(PIIRules()))
	if err != nil {
		t.Fatal(err)
	}
	o := Order{OrderID: "ord-1-000001", Customer: "cust-0042", Email: "cust-0042@acme.example", Amount: 12.5, Currency: "EUR", Items: 2}
	md := delivery.Metadata{PartitionKey: o.Customer, TenantID: "acme"}
	// As the Kafka publisher writes them: record key = partition key.
	record := func(typ string, payload any) *kgo.Record {
		env, err := delivery.NewEnvelope(typ, "test", payload, md)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		return &kgo.Record{Key: []byte(md.PartitionKey), Value: b}
	}
	recs := map[string]*kgo.Record{
		"order":   record(TopicOrders, o),
		"invoice": record(TopicInvoices, map[string]any{"invoice_id": "inv-" + o.OrderID, "order_id": o.OrderID, "amount": o.Amount}),
		"e-mail":  record(EventEmailRequested, map[string]any{"to": o.Email, "template": "invoice"}),
		"decline": record(TopicPaymentDeclined, Declined{OrderID: o.OrderID, Code: CodePaymentDeclined, Reason: "card declined"}),
		"cancel":  record(TopicOrderCancelled, Cancelled{OrderID: o.OrderID, Reason: CodePaymentDeclined}),
	}
	// Both kinds of poison pill (truncated, schema-breaking).
	for seed := uint64(0); len(recs) < 7; seed++ {
		r := poisonRecord(rand.New(rand.NewPCG(seed, 7)), o, "acme")
		if json.Valid(r.Value) {
			recs["poison envelope"] = r
		} else {
			recs["poison truncated"] = r
		}
	}
	for name, r := range recs {
		typ := ""
		if env, err := delivery.ParseEnvelope(r.Value); err == nil {
			typ = env.Type
		}
		value, _ := m.MaskMessage(typ, r.Value)
		key, _ := m.MaskKey(typ, r.Key)
		if strings.Contains(string(value), "cust-0042") || string(key) != access.PIIMask {
			t.Errorf("%s: key %q value %s; want the customer masked everywhere", name, key, value)
		}
	}
}
