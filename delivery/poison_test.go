package delivery_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"switchyard/delivery"
)

func TestPoisonRulesCheck(t *testing.T) {
	valid := validEnvelopeJSON()
	invalid := []byte(`{"id":"12345","type":"OrderCreated","occurred_at":"2025-03-14T09:26:30Z","source":"pos","correlation_id":"c","trace_id":"t","payload":{"a":1},"metadata":{"partition_key":"k","tenant_id":"t1"}}`)
	tests := []struct {
		name     string
		rules    delivery.PoisonRules
		body     []byte
		wantCode string // "" means accepted
		wantMsg  string // substring of the error
		wantType string // envelope type returned
	}{
		{name: "valid envelope", body: valid, wantType: "orders.order.created.v1"},
		{name: "exactly at the limit", rules: delivery.PoisonRules{MaxPayloadBytes: len(valid)}, body: valid, wantType: "orders.order.created.v1"},
		{name: "one byte over the limit", rules: delivery.PoisonRules{MaxPayloadBytes: len(valid) - 1}, body: valid, wantCode: delivery.CodePayloadTooLarge, wantMsg: "over the limit"},
		{name: "zero value limit is 1 MiB", body: bytes.Repeat([]byte("a"), 1<<20+1), wantCode: delivery.CodePayloadTooLarge, wantMsg: "1048577 bytes"},
		{name: "empty", body: nil, wantCode: delivery.CodeUndecodable, wantMsg: "empty"},
		{name: "not UTF-8", body: []byte("\x00\x00\x00\x00\x2a\x10ord\xff"), wantCode: delivery.CodeUndecodable, wantMsg: "UTF-8"},
		{name: "not JSON", body: []byte("order_id=ord-8841;total=12990"), wantCode: delivery.CodeUndecodable, wantMsg: "not a JSON envelope"},
		{name: "JSON array", body: []byte(`[{"id":"x"}]`), wantCode: delivery.CodeUndecodable, wantMsg: "not a JSON envelope"},
		{name: "schema-invalid", body: invalid, wantCode: delivery.CodeValidationFailed, wantMsg: "type: must be dotted", wantType: "OrderCreated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := tt.rules.Check(tt.body)
			if env.Type != tt.wantType {
				t.Errorf("envelope type = %q, want %q", env.Type, tt.wantType)
			}
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Check: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want %s", tt.wantCode)
			}
			if !delivery.IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = false: a poison pill must not be retried", err)
			}
			info := delivery.ErrorInfoOf(err)
			if info.Code != tt.wantCode {
				t.Errorf("ErrorInfoOf code = %q, want %q", info.Code, tt.wantCode)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}

	t.Run("schema error is the ValidationError itself", func(t *testing.T) {
		_, err := delivery.PoisonRules{}.Check(invalid)
		var ve *delivery.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("Check error %T, want *delivery.ValidationError", err)
		}
		if len(ve.Violations) != 2 { // id and type
			t.Errorf("violations = %+v, want id and type", ve.Violations)
		}
	})
	t.Run("decode error keeps its cause", func(t *testing.T) {
		_, err := delivery.PoisonRules{}.Check([]byte("{"))
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Check error %v does not wrap the JSON syntax error", err)
		}
	})
}

func TestPoisonRulesClassify(t *testing.T) {
	decode := func(body []byte, h ...string) delivery.DeadLetter {
		return delivery.Decode(delivery.Message{Body: body, Headers: hdr(h...)})
	}
	valid := validEnvelopeJSON()
	tests := []struct {
		name       string
		rules      delivery.PoisonRules
		dl         delivery.DeadLetter
		wantPoison bool
		wantReason []string // substrings
	}{
		{name: "ordinary failure", dl: decode(valid, "switchyard.error.code", "PAYMENT_DECLINED")},
		{name: "redriven twice", dl: decode(valid, "switchyard.redrive.count", "2")},
		{name: "redriven three times", dl: decode(valid, "switchyard.redrive.count", "3"), wantPoison: true, wantReason: []string{"redriven 3 times", "limit 3"}},
		{name: "custom redrive limit not reached", rules: delivery.PoisonRules{MaxRedrives: 5}, dl: decode(valid, "switchyard.redrive.count", "4")},
		{name: "custom redrive limit reached", rules: delivery.PoisonRules{MaxRedrives: 5}, dl: decode(valid, "switchyard.redrive.count", "5"), wantPoison: true, wantReason: []string{"redriven 5 times"}},
		{name: "payload over limit", rules: delivery.PoisonRules{MaxPayloadBytes: 100}, dl: decode(valid), wantPoison: true, wantReason: []string{"bytes", "100-byte limit"}},
		{name: "not UTF-8", dl: decode([]byte("\xff\xfe\x00")), wantPoison: true, wantReason: []string{"undecodable", "UTF-8"}},
		{name: "not JSON", dl: decode([]byte("order_id=1")), wantPoison: true, wantReason: []string{"undecodable", "not a JSON envelope"}},
		{name: "empty", dl: decode(nil), wantPoison: true, wantReason: []string{"undecodable", "empty"}},
		{name: "schema-invalid", dl: decode([]byte(`{"id":"x","type":"OrderCreated"}`)), wantPoison: true, wantReason: []string{"schema-invalid", "id: must be a UUID", "metadata.tenant_id: required"}},
		{name: "handler said validation failed", dl: decode(valid, "switchyard.error.code", "VALIDATION_FAILED", "switchyard.error.message", "payload.total_minor: must be positive\nmore"), wantPoison: true, wantReason: []string{"VALIDATION_FAILED", "total_minor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			poison, reason := tt.rules.Classify(tt.dl)
			if poison != tt.wantPoison {
				t.Fatalf("Classify = %v (%q), want %v", poison, reason, tt.wantPoison)
			}
			if !poison && reason != "" {
				t.Errorf("reason %q for a message that is not poison", reason)
			}
			if strings.Contains(reason, "\n") {
				t.Errorf("reason %q is not one line", reason)
			}
			for _, s := range tt.wantReason {
				if !strings.Contains(reason, s) {
					t.Errorf("reason %q does not mention %q", reason, s)
				}
			}
		})
	}
}
