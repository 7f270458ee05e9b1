package access_test

import (
	"strconv"
	"strings"
	"testing"

	"switchyard/access"
	"switchyard/delivery"
)

func TestMasker(t *testing.T) {
	m, err := access.NewMasker(access.PIIRules{
		"customer.created": {"email", "customer.email", "items[].card", "matrix[][].ssn", "address"},
		"list.v1":          {"[].email"},
		"*":                {"password"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, typ, in, want string
		n                   int
	}{
		{"top level", "customer.created", `{"email":"a@b.c","id":1}`, `{"email":"***","id":1}`, 1},
		{"nested", "customer.created", `{"customer":{"email":"a@b.c","name":"A"}}`, `{"customer":{"email":"***","name":"A"}}`, 1},
		{"array elements", "customer.created", `{"items":[{"card":"4111","sku":"x"},{"sku":"y"},{"card":"5500"}]}`,
			`{"items":[{"card":"***","sku":"x"},{"sku":"y"},{"card":"***"}]}`, 2},
		{"nested arrays", "customer.created", `{"matrix":[[{"ssn":"1"}],[{"ssn":"2"},{"ssn":"3"}]]}`,
			`{"matrix":[[{"ssn":"***"}],[{"ssn":"***"},{"ssn":"***"}]]}`, 3},
		{"any JSON type", "customer.created", `{"address":{"street":"Main 1","zip":12345}}`, `{"address":"***"}`, 1},
		{"number and null", "customer.created", `{"email":null,"customer":{"email":42}}`, `{"customer":{"email":"***"},"email":"***"}`, 2},
		{"missing paths", "customer.created", ` {"name": "A", "customer": {}} `, ` {"name": "A", "customer": {}} `, 0},
		{"wrong shape left alone", "customer.created", `{"items":{"card":"4111"}}`, `{"items":{"card":"4111"}}`, 0},
		{"root array", "list.v1", `[{"email":"x"},{"email":"y"}]`, `[{"email":"***"},{"email":"***"}]`, 2},
		{"every type", "other.type", `{"password":"hunter2","big":12345678901234567890}`, `{"big":12345678901234567890,"password":"***"}`, 1},
		{"no rules", "unknown", `{"email":"a@b.c"}`, `{"email":"a@b.c"}`, 0},
		{"not JSON", "customer.created", `email=a@b.c`, `email=a@b.c`, 0},
		{"truncated JSON", "customer.created", `{"email":"a@b.c"`, `{"email":"a@b.c"`, 0},
		{"trailing data", "customer.created", `{"email":"a"} {"email":"b"}`, `{"email":"a"} {"email":"b"}`, 0},
		{"html kept", "customer.created", `{"email":"<a>","x":"&"}`, `{"email":"***","x":"&"}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := m.MaskPayload(tt.typ, []byte(tt.in))
			if string(got) != tt.want || n != tt.n {
				t.Errorf("MaskPayload(%s) = %s, %d; want %s, %d", tt.in, got, n, tt.want, tt.n)
			}
		})
	}

	for _, bad := range []string{"", "*", "a.*", "a..b", ".a", "a.", "a[0]", "a[", "x.[]"} {
		if _, err := access.NewMasker(access.PIIRules{"t": {bad}}); delivery.ErrorCode(err) != delivery.EINVALID {
			t.Errorf("NewMasker(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestMaskEnvelope(t *testing.T) {
	m, _ := access.NewMasker(access.PIIRules{"customer.created": {"customer.email"}})
	env := `{"id":"1","type":"customer.created",  "payload" :  {"customer":{"email":"a@b.c"}} ,"metadata":{"tenant_id":"t1"},"zz":1}`
	want := `{"id":"1","type":"customer.created",  "payload" :  {"customer":{"email":"***"}} ,"metadata":{"tenant_id":"t1"},"zz":1}`
	got, n := m.MaskEnvelope([]byte(env))
	if string(got) != want || n != 1 {
		t.Errorf("MaskEnvelope = %s, %d\nwant %s", got, n, want)
	}
	// Payload before type, numbers as the payload's neighbours.
	env2 := `{"payload":{"customer":{"email":"x"}},"type":"customer.created","n":1}`
	if got, n := m.MaskEnvelope([]byte(env2)); string(got) != `{"payload":{"customer":{"email":"***"}},"type":"customer.created","n":1}` || n != 1 {
		t.Errorf("payload first: %s, %d", got, n)
	}
	for _, raw := range []string{`not json`, `[1,2]`, `{"type":"customer.created"}`, `{"type":5,"payload":{}}`, `{"payload":{"customer":{"email":"x"}}}`} {
		if got, n := m.MaskEnvelope([]byte(raw)); string(got) != raw || n != 0 {
			t.Errorf("MaskEnvelope(%s) = %s, %d; want unchanged", raw, got, n)
		}
	}
}

func TestPIIRuleSyntax(t *testing.T) {
	for _, tc := range []struct {
		rule string
		ok   bool
		says string // part of the error message
	}{
		{"email", true, ""},
		{"customer.email", true, ""},
		{"items[].card", true, ""},
		{"[].email", true, ""},
		{"a.$b", true, ""}, // only a leading "$" is special
		{"$key", true, ""},
		{"$metadata.partition_key", true, ""},
		{"$metadata.region", true, ""},
		{"", false, "malformed payload path"},
		{"*", false, "malformed payload path"},
		{"a..b", false, "malformed payload path"},
		{"\xff", false, "not UTF-8"},
		{"$", false, `"$key" or "$metadata.<field>"`},
		{"$keys", false, `"$key" or "$metadata.<field>"`},
		{"$key.id", false, `"$key" or "$metadata.<field>"`},
		{"$payload.email", false, `"$key" or "$metadata.<field>"`},
		{"$email", false, `"$key" or "$metadata.<field>"`},
		{"$metadata", false, `"$key" or "$metadata.<field>"`},
		{"$metadata.", false, "one field of the envelope's metadata"},
		{"$metadata.a.b", false, "one field of the envelope's metadata"},
		{"$metadata.keys[]", false, "one field of the envelope's metadata"},
		{"$metadata.*", false, "one field of the envelope's metadata"},
		{"$metadata.tenant_id", false, "tenant_id cannot be masked"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			err := access.ValidPIIRule(tc.rule)
			_, nerr := access.NewMasker(access.PIIRules{"t.v1": {"email", tc.rule}})
			if tc.ok {
				if err != nil || nerr != nil {
					t.Fatalf("ValidPIIRule = %v, NewMasker = %v; want valid", err, nerr)
				}
				return
			}
			for _, e := range []error{err, nerr} {
				if delivery.ErrorCode(e) != delivery.EINVALID || !strings.Contains(delivery.ErrorMessage(e), tc.says) ||
					!strings.Contains(delivery.ErrorMessage(e), strconv.Quote(tc.rule)) {
					t.Errorf("error = %v; want EINVALID naming %q and saying %q", e, tc.rule, tc.says)
				}
			}
		})
	}
}

func TestMaskKeyAndMetadata(t *testing.T) {
	m, err := access.NewMasker(access.PIIRules{
		"orders.order.created.v1":   {"customer", "$key", "$metadata.partition_key"},
		"billing.invoice.issued.v1": {"$metadata.partition_key"},
		"audit.v1":                  {"user"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, typ, key, want string
		masked               bool
	}{
		{"type with $key", "orders.order.created.v1", "cust-0042", access.PIIMask, true},
		{"type without $key", "billing.invoice.issued.v1", "cust-0042", "cust-0042", false},
		{"unknown type fails closed", "", "cust-0042", access.PIIMask, true},
		{"no key", "orders.order.created.v1", "", "", false},
	} {
		t.Run("key/"+tc.name, func(t *testing.T) {
			got, masked := m.MaskKey(tc.typ, []byte(tc.key))
			if string(got) != tc.want || masked != tc.masked {
				t.Errorf("MaskKey(%q, %q) = %q, %v; want %q, %v", tc.typ, tc.key, got, masked, tc.want, tc.masked)
			}
		})
	}
	for _, tc := range []struct {
		name, typ, pk, want string
		n                   int
	}{
		{"covered", "orders.order.created.v1", "cust-0042", access.PIIMask, 1},
		{"metadata rule only", "billing.invoice.issued.v1", "cust-0042", access.PIIMask, 1},
		{"not covered", "audit.v1", "cust-0042", "cust-0042", 0},
		{"unknown type fails closed", "", "cust-0042", access.PIIMask, 1},
		{"empty stays empty", "orders.order.created.v1", "", "", 0},
	} {
		t.Run("metadata/"+tc.name, func(t *testing.T) {
			got, n := m.MaskMetadata(tc.typ, delivery.Metadata{PartitionKey: tc.pk, TenantID: "t1"})
			if got.PartitionKey != tc.want || got.TenantID != "t1" || n != tc.n {
				t.Errorf("MaskMetadata(%q, %q) = %+v, %d; want %q, %d", tc.typ, tc.pk, got, n, tc.want, tc.n)
			}
		})
	}

	// No "$key" anywhere: an unknown type's key stays.
	plain, _ := access.NewMasker(access.PIIRules{"audit.v1": {"user"}})
	if got, masked := plain.MaskKey("", []byte("k1")); string(got) != "k1" || masked {
		t.Errorf("no $key rule: MaskKey = %q, %v", got, masked)
	}
	// "*" covers every type.
	star, _ := access.NewMasker(access.PIIRules{"*": {"$key"}})
	if got, _ := star.MaskKey("any.type.v1", []byte("k1")); string(got) != access.PIIMask {
		t.Errorf(`"*" $key: MaskKey = %q`, got)
	}
	// A nil Masker masks nothing.
	var none *access.Masker
	if got, masked := none.MaskKey("", []byte("k1")); string(got) != "k1" || masked {
		t.Errorf("nil MaskKey = %q, %v", got, masked)
	}
}

func TestMaskEnvelopeMetadata(t *testing.T) {
	m, err := access.NewMasker(access.PIIRules{
		"orders.order.created.v1":   {"customer", "$key", "$metadata.partition_key", "$metadata.region"},
		"billing.invoice.issued.v1": {"amount"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"payload and metadata, the rest byte for byte",
			`{"id":"1","type":"orders.order.created.v1", "payload": {"customer":"cust-7","n":1} ,"metadata" : {"partition_key":"cust-7","tenant_id":"t1","region":"eu"},"zz":1}`,
			`{"id":"1","type":"orders.order.created.v1", "payload": {"customer":"***","n":1} ,"metadata" : {"partition_key":"***","region":"***","tenant_id":"t1"},"zz":1}`},
		{"metadata before payload",
			`{"metadata":{"partition_key":"cust-7","tenant_id":"t1"},"payload":{"customer":"cust-7"},"type":"orders.order.created.v1"}`,
			`{"metadata":{"partition_key":"***","tenant_id":"t1"},"payload":{"customer":"***"},"type":"orders.order.created.v1"}`},
		{"a type without metadata rules keeps its metadata",
			`{"type":"billing.invoice.issued.v1","payload":{"amount":5},"metadata":{"partition_key":"cust-7"}}`,
			`{"type":"billing.invoice.issued.v1","payload":{"amount":"***"},"metadata":{"partition_key":"cust-7"}}`},
		{"no type: metadata of every type's rules, payload kept",
			`{"payload":{"customer":"cust-7"},"metadata":{"partition_key":"cust-7","tenant_id":"t1"}}`,
			`{"payload":{"customer":"cust-7"},"metadata":{"partition_key":"***","tenant_id":"t1"}}`},
		{"a duplicated payload is masked in both copies",
			`{"type":"orders.order.created.v1","payload":{"customer":"a"},"payload":{"customer":"b"}}`,
			`{"type":"orders.order.created.v1","payload":{"customer":"***"},"payload":{"customer":"***"}}`},
		{"a second type adds its rules",
			`{"type":"billing.invoice.issued.v1","payload":{"customer":"a","amount":1},"type":"orders.order.created.v1"}`,
			`{"type":"billing.invoice.issued.v1","payload":{"amount":"***","customer":"***"},"type":"orders.order.created.v1"}`},
		{"metadata not an object", `{"type":"orders.order.created.v1","payload":{},"metadata":"cust-7"}`,
			`{"type":"orders.order.created.v1","payload":{},"metadata":"cust-7"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := m.MaskEnvelope([]byte(tc.in))
			if string(got) != tc.want {
				t.Errorf("MaskEnvelope\n got %s\nwant %s", got, tc.want)
			}
		})
	}
	in := `{"type":"orders.order.created.v1","payload":{"customer":"c"},"metadata":{"partition_key":"c","tenant_id":"t1"}}`
	if _, n := m.MaskEnvelope([]byte(in)); n != 2 {
		t.Errorf("masked count = %d, want 2 (customer and partition_key)", n)
	}
}

func TestMaskMessage(t *testing.T) {
	m, err := access.NewMasker(access.PIIRules{
		"orders.order.created.v1": {"customer", "$metadata.partition_key"},
		"invoice.v1":              {"$metadata.partition_key"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, typ, in, want string
		n                   int
	}{
		{"an envelope's own type wins over the header's", "invoice.v1",
			`{"type":"orders.order.created.v1","payload":{"customer":"c"}}`, `{"type":"orders.order.created.v1","payload":{"customer":"***"}}`, 1},
		{"a bare payload of the header's type", "orders.order.created.v1", `{"customer":"c","n":1}`, `{"customer":"***","n":1}`, 1},
		{"an envelope without a type: metadata by every type's rules", "",
			`{"payload":{"customer":"c"},"metadata":{"partition_key":"c"}}`, `{"payload":{"customer":"c"},"metadata":{"partition_key":"***"}}`, 1},
		{"not JSON", "orders.order.created.v1", `customer=c`, `customer=c`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n := m.MaskMessage(tc.typ, []byte(tc.in))
			if string(got) != tc.want || n != tc.n {
				t.Errorf("MaskMessage(%q, %s) = %s, %d; want %s, %d", tc.typ, tc.in, got, n, tc.want, tc.n)
			}
		})
	}
}

// Span attributes are masked by the same rules as the payloads they were
// copied from, whatever prefix the service put them under.
func TestAttrMasked(t *testing.T) {
	m, err := access.NewMasker(access.PIIRules{
		"orders.order.created.v1": {"customer.email", "items[].card", "[].ssn", "$key", "$metadata.partition_key"},
		"audit.v1":                {"user"},
		"*":                       {"password"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ, key string
		want     bool
	}{
		{"orders.order.created.v1", "customer.email", true},
		{"orders.order.created.v1", "payload.customer.email", true},
		{"orders.order.created.v1", "event.payload.customer.email", true},
		{"orders.order.created.v1", "customer", false},
		{"orders.order.created.v1", "customer.email.domain", false},
		{"orders.order.created.v1", "other.customer.email", false},
		{"orders.order.created.v1", "items.card", true},
		{"orders.order.created.v1", "ssn", true},
		{"orders.order.created.v1", "password", true},
		{"orders.order.created.v1", "payload.password", true},
		{"orders.order.created.v1", "user", false},
		{"orders.order.created.v1", access.AttrKafkaMessageKey, true},
		{"orders.order.created.v1", "messaging.rabbitmq.destination.routing_key", false},
		{"orders.order.created.v1", "metadata.partition_key", true},
		{"orders.order.created.v1", "partition_key", true},
		{"orders.order.created.v1", "metadata.tenant_id", false},
		{"audit.v1", "user", true},
		{"audit.v1", "customer.email", false},
		{"audit.v1", access.AttrKafkaMessageKey, false},
		{"audit.v1", "metadata.partition_key", false},
		// Unknown type: any type's rule masks it (fail closed).
		{"", "user", true},
		{"", "payload.customer.email", true},
		{"", access.AttrKafkaMessageKey, true},
		{"", "metadata.partition_key", true},
		{"", "password", true},
		{"", "messaging.destination.name", false},
		{"", "", false},
	} {
		if got := m.AttrMasked(tc.typ, tc.key); got != tc.want {
			t.Errorf("AttrMasked(%q, %q) = %v, want %v", tc.typ, tc.key, got, tc.want)
		}
	}
	var none *access.Masker
	if none.AttrMasked("", "password") {
		t.Error("a nil masker masks")
	}
}
