package delivery_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"sort"
	"testing"

	"switchyard/delivery"
)

func validEnvelope() delivery.Envelope {
	return delivery.Envelope{
		ID:            "df90bfca-2f1a-42ad-a3b5-634cac660ae5",
		Type:          "orders.order.created.v1",
		OccurredAt:    "2025-03-14T09:26:30.118Z",
		Source:        "checkout-service",
		CorrelationID: "9d45d438-0e6f-46df-a270-1eeabdb227e1",
		TraceID:       "e8f543ca0aee94038dbcc16ac96bc10b",
		Payload:       json.RawMessage(`{"order_id":"ord-8841"}`),
		Metadata:      delivery.Metadata{PartitionKey: "ord-8841", TenantID: "t-acme-de"},
	}
}

func violationFields(t *testing.T, err error) map[string]string {
	t.Helper()
	var ve *delivery.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	got := map[string]string{}
	for _, v := range ve.Violations {
		got[v.Field] = v.Message
	}
	return got
}

func TestEnvelopeValidateValid(t *testing.T) {
	if err := validEnvelope().Validate(); err != nil {
		t.Fatalf("Validate(valid) = %v", err)
	}
	env, err := delivery.NewEnvelope("orders.order.created.v1", "checkout-service", map[string]string{"order_id": "ord-8841"},
		delivery.Metadata{PartitionKey: "ord-8841", TenantID: "t-acme-de"})
	if err != nil {
		t.Fatal(err)
	}
	env.TraceID = "e8f543ca0aee94038dbcc16ac96bc10b" // the publisher fills it from the span
	if err := env.Validate(); err != nil {
		t.Errorf("Validate(NewEnvelope(...)) = %v", err)
	}
	if env.CorrelationID != env.ID || env.Time().IsZero() {
		t.Errorf("NewEnvelope: correlation id %q (id %q), time %v", env.CorrelationID, env.ID, env.Time())
	}
}

// Every violation is reported at once, so a producer fixes all of them in
// one go.
func TestEnvelopeValidateReportsEverything(t *testing.T) {
	tests := []struct {
		name string
		env  delivery.Envelope
		want map[string]string
	}{
		{
			name: "empty",
			env:  delivery.Envelope{},
			want: map[string]string{
				"id": "required", "type": "required", "occurred_at": "required", "source": "required",
				"correlation_id": "required", "trace_id": "required", "payload": "required",
				"metadata.partition_key": "required", "metadata.tenant_id": "required",
			},
		},
		{
			name: "malformed",
			env: delivery.Envelope{
				ID: "12345", Type: "OrderCreated", OccurredAt: "14/03/2025 13:05", Source: "  ",
				CorrelationID: "\t", TraceID: " ", Payload: json.RawMessage(`{"a":`),
				Metadata: delivery.Metadata{PartitionKey: " ", TenantID: ""},
			},
			want: map[string]string{
				"id":                     "must be a UUID",
				"type":                   "must be dotted lower-case ending in .vN, e.g. order.created.v1",
				"occurred_at":            "must be an RFC 3339 timestamp",
				"source":                 "required",
				"correlation_id":         "required",
				"trace_id":               "required",
				"payload":                "must be valid JSON",
				"metadata.partition_key": "required",
				"metadata.tenant_id":     "required",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violationFields(t, tt.env.Validate())
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("violations = %v\nwant         %v", got, tt.want)
			}
		})
	}
}

func TestEnvelopeValidateOneField(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*delivery.Envelope)
		field string
	}{
		{"uuid in braces", func(e *delivery.Envelope) { e.ID = "{df90bfca-2f1a-42ad-a3b5-634cac660ae5}" }, "id"},
		{"urn uuid", func(e *delivery.Envelope) { e.ID = "urn:uuid:df90bfca-2f1a-42ad-a3b5-634cac660ae5" }, "id"},
		{"type without version", func(e *delivery.Envelope) { e.Type = "orders.order.created" }, "type"},
		{"occurred_at without zone", func(e *delivery.Envelope) { e.OccurredAt = "2025-03-14T09:26:30" }, "occurred_at"},
		{"payload null", func(e *delivery.Envelope) { e.Payload = json.RawMessage("null") }, "payload"},
		{"payload missing", func(e *delivery.Envelope) { e.Payload = nil }, "payload"},
		{"tenant missing", func(e *delivery.Envelope) { e.Metadata.TenantID = "" }, "metadata.tenant_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := validEnvelope()
			tt.edit(&env)
			got := violationFields(t, env.Validate())
			keys := make([]string, 0, len(got))
			for k := range got {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if len(keys) != 1 || keys[0] != tt.field {
				t.Errorf("violations on %v, want only %s", keys, tt.field)
			}
		})
	}
}

func TestValidationErrorBody(t *testing.T) {
	env := validEnvelope()
	env.ID, env.Metadata.TenantID = "x", ""
	var ve *delivery.ValidationError
	if !errors.As(env.Validate(), &ve) {
		t.Fatal("not a ValidationError")
	}
	b := ve.Body()
	if b.Code != delivery.CodeValidationFailed {
		t.Errorf("code = %q", b.Code)
	}
	want := map[string]any{"id": "must be a UUID", "metadata.tenant_id": "required"}
	if !reflect.DeepEqual(b.Details, want) {
		t.Errorf("details = %v, want %v", b.Details, want)
	}
	out, err := json.Marshal(delivery.ErrorResponse{Error: b})
	if err != nil {
		t.Fatal(err)
	}
	var round map[string]map[string]any
	if err := json.Unmarshal(out, &round); err != nil {
		t.Fatal(err)
	}
	if round["error"]["code"] != "VALIDATION_FAILED" || round["error"]["details"] == nil || round["error"]["message"] == "" {
		t.Errorf("error contract JSON = %s", out)
	}
}

func TestValidEventType(t *testing.T) {
	tests := []struct {
		typ  string
		want bool
	}{
		{"orders.order.created.v1", true},
		{"workflow.instance.started.v1", true},
		{"order.created.v12", true},
		{"created.v1", true},
		{"orders.order_line.added.v2", true},
		{"v1", false},
		{"orders.order.created", false},
		{"orders.order.created.v0", false},
		{"orders.order.created.V1", false},
		{"Orders.order.created.v1", false},
		{"orders..created.v1", false},
		{"orders.order.created.v1.", false},
		{"orders.1order.created.v1", false},
		{"orders.order-line.added.v1", false},
		{"orders order.created.v1", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := delivery.ValidEventType(tt.typ); got != tt.want {
			t.Errorf("ValidEventType(%q) = %v, want %v", tt.typ, got, tt.want)
		}
	}
}

func TestParseEnvelope(t *testing.T) {
	env, err := delivery.ParseEnvelope(validEnvelopeJSON())
	if err != nil {
		t.Fatal(err)
	}
	if env.Type != "orders.order.created.v1" || env.Metadata.TenantID != "t-acme-de" || string(env.Payload) != `{"order_id":"ord-8841"}` {
		t.Errorf("parsed %+v", env)
	}
	for _, bad := range []string{"", "[]", `"text"`, "{", `{"id":5}`} {
		if _, err := delivery.ParseEnvelope([]byte(bad)); err == nil {
			t.Errorf("ParseEnvelope(%q) succeeded, want an error", bad)
		}
	}
}

// The hand-written scanner must agree with the grammar it replaces.
func TestValidEventTypeMatchesGrammar(t *testing.T) {
	re := regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.v[1-9][0-9]*$`)
	cases := []string{"", "v1", ".v1", "a.v1", "a.v0", "a.v01", "a.v10", "a.b.c.v2", "a..v1", "a.b.", "A.v1",
		"a_b.c9.v3", "_a.v1", "9a.v1", "a.b.V1", "a.b.v1x", "a.b.v", "a.b-c.v1", "orders.order.created.v1", "a.v1.v2", "a. b.v1"}
	for _, c := range cases {
		if got, want := delivery.ValidEventType(c), re.MatchString(c); got != want {
			t.Errorf("ValidEventType(%q) = %v, grammar says %v", c, got, want)
		}
	}
}

func FuzzValidEventType(f *testing.F) {
	re := regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.v[1-9][0-9]*$`)
	for _, s := range []string{"orders.order.created.v1", "a.v0", "a..v1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := delivery.ValidEventType(s), re.MatchString(s); got != want {
			t.Errorf("ValidEventType(%q) = %v, grammar says %v", s, got, want)
		}
	})
}
