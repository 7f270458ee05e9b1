package access_test

import (
	"testing"

	"switchyard/access"
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
		if _, err := access.NewMasker(access.PIIRules{"t": {bad}}); access.ErrorCode(err) != access.EINVALID {
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
