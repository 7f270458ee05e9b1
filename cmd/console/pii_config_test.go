package main

import (
	"strings"
	"testing"

	"switchyard/access"
	"switchyard/demo"
)

// TestConfigValidatePII: malformed PII rules are refused at start, each
// named with its event type, in the one error line; the key and metadata
// rules and "*" are accepted, and so are the demo's own rules.
func TestConfigValidatePII(t *testing.T) {
	c := defaultConfig()
	c.PII = map[string][]string{
		"orders.order.created.v1": {"email", "$key", "$metadata.partition_key"},
		"*":                       {"$key"},
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid pii refused: %v", err)
	}
	c.PII = map[string][]string{
		"orders.order.created.v1": {"email", "$keys", "$metadata.tenant_id"},
		"billing.invoice.v1":      {"$metadata.a.b", "items[0]"},
		"Orders":                  {"email"},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("malformed pii accepted")
	}
	for _, want := range []string{
		`pii: "orders.order.created.v1": PII rule "$keys": a rule starting with "$" is "$key" or "$metadata.<field>"`,
		`PII rule "$metadata.tenant_id": metadata.tenant_id cannot be masked`,
		`pii: "billing.invoice.v1": PII rule "$metadata.a.b": "$metadata.<field>" names one field`,
		`PII rule "items[0]": malformed payload path`,
		`pii: "Orders" is not an event type`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is more than one line: %q", err)
	}
	// The demo's rules (used when pii is not configured) compile.
	if _, err := access.NewMasker(access.PIIRules(demo.PIIRules())); err != nil {
		t.Errorf("demo PII rules: %v", err)
	}
}
