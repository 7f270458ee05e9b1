package delivery_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"switchyard/delivery"
)

func TestPermanent(t *testing.T) {
	if delivery.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}

	plain := errors.New("smtp: 550 mailbox unavailable")
	p := delivery.Permanent(plain)
	if !delivery.IsPermanent(p) {
		t.Error("IsPermanent(Permanent(plain)) = false")
	}
	if !errors.Is(p, plain) {
		t.Error("Permanent(plain) lost its cause")
	}
	if got := delivery.ErrorInfoOf(p).Code; got != delivery.CodeHandlerFailed {
		t.Errorf("code of Permanent(plain) = %q, want %q", got, delivery.CodeHandlerFailed)
	}

	coded := delivery.Errorf("PAYMENT_DECLINED", "card declined for order %s", "ord-8841")
	if delivery.IsPermanent(coded) {
		t.Error("Errorf is retryable, IsPermanent = true")
	}
	pc := delivery.Permanent(coded)
	if !delivery.IsPermanent(pc) || coded.Permanent {
		t.Errorf("Permanent(coded): permanent %v, original mutated %v", delivery.IsPermanent(pc), coded.Permanent)
	}
	if info := delivery.ErrorInfoOf(pc); info.Code != "PAYMENT_DECLINED" || info.Message != "card declined for order ord-8841" {
		t.Errorf("ErrorInfoOf(Permanent(coded)) = %+v", info)
	}
}

func TestIsPermanent(t *testing.T) {
	ve := validEnvelope()
	ve.Type = "OrderCreated"
	validationErr := ve.Validate()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("timeout"), false},
		{"coded retryable", delivery.Errorf("UPSTREAM_TIMEOUT", "psp timed out"), false},
		{"permanent", delivery.Permanent(errors.New("bad")), true},
		{"wrapped permanent", fmt.Errorf("handle order: %w", delivery.Permanent(errors.New("bad"))), true},
		{"validation error", validationErr, true},
		{"wrapped validation error", fmt.Errorf("decode: %w", validationErr), true},
		{"permanent *Error literal", &delivery.Error{Code: "X", Permanent: true}, true},
	}
	for _, tt := range tests {
		if got := delivery.IsPermanent(tt.err); got != tt.want {
			t.Errorf("%s: IsPermanent = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestErrorInfoOf(t *testing.T) {
	if got := delivery.ErrorInfoOf(nil); got.Code != "" || got.Message != "" {
		t.Errorf("ErrorInfoOf(nil) = %+v, want zero", got)
	}
	typeErr := &json.UnmarshalTypeError{Value: "string", Field: "total"}
	ve := validEnvelope()
	ve.ID, ve.TraceID = "1", ""
	tests := []struct {
		name        string
		err         error
		wantCode    string
		wantMessage string
		wantType    string
		wantDetails []string
	}{
		{"plain", errors.New("connection refused"), delivery.CodeHandlerFailed, "connection refused", "*errors.errorString", nil},
		{"coded with details and cause", &delivery.Error{Code: "BAD_AMOUNT", Message: "amount is not a number", Details: map[string]any{"field": "total"}, Cause: typeErr},
			"BAD_AMOUNT", "amount is not a number", "*json.UnmarshalTypeError", []string{"field"}},
		{"wrapped coded", fmt.Errorf("charge: %w", delivery.Errorf("PAYMENT_DECLINED", "declined")), "PAYMENT_DECLINED", "declined", "*delivery.Error", nil},
		{"validation", fmt.Errorf("consume: %w", ve.Validate()), delivery.CodeValidationFailed, "invalid envelope: id: must be a UUID; trace_id: required", "*delivery.ValidationError", []string{"id", "trace_id"}},
		{"permanent validation", delivery.Permanent(ve.Validate()), delivery.CodeValidationFailed, "invalid envelope: id: must be a UUID; trace_id: required", "*delivery.ValidationError", []string{"id", "trace_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := delivery.ErrorInfoOf(tt.err)
			if info.Code != tt.wantCode || info.Message != tt.wantMessage || info.ExceptionType != tt.wantType {
				t.Errorf("ErrorInfoOf = {%q %q %q}, want {%q %q %q}", info.Code, info.Message, info.ExceptionType, tt.wantCode, tt.wantMessage, tt.wantType)
			}
			if len(info.Details) != len(tt.wantDetails) {
				t.Errorf("details = %v, want keys %v", info.Details, tt.wantDetails)
			}
			for _, k := range tt.wantDetails {
				if _, ok := info.Details[k]; !ok {
					t.Errorf("details %v lack %q", info.Details, k)
				}
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	e := &delivery.Error{Code: "UPSTREAM_TIMEOUT", Message: "psp did not answer"}
	if got := e.Error(); got != "UPSTREAM_TIMEOUT: psp did not answer" {
		t.Errorf("Error() = %q", got)
	}
	e.Cause = errors.New("context deadline exceeded")
	if got := e.Error(); !strings.HasSuffix(got, ": context deadline exceeded") {
		t.Errorf("Error() with cause = %q", got)
	}
}
