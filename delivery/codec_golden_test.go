package delivery_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestDecodeGolden decodes every testdata/deadletter/*.input.json and
// compares the DeadLetter with its .golden.json (rewrite with -update).
// The golden files pin every field; the table below states, per fixture,
// the facts an operator reads first, so that an -update cannot quietly
// bless a wrong decoding.
func TestDecodeGolden(t *testing.T) {
	type want struct {
		format      delivery.Format
		code        string
		origin      string // Origin.Destination()
		partition   int32
		offset      int64
		attempts    int
		envelopeErr string // substring; "" means a valid envelope
	}
	wants := map[string]want{
		"switchyard":          {delivery.FormatSwitchyard, "HANDLER_PANIC", "orders.order.created.v1", 3, 184467, 5, ""},
		"spring":              {delivery.FormatSpring, "PaymentDeclinedException", "orders.order.created.v1", 3, 184467, 1, ""},
		"connect":             {delivery.FormatConnect, "DataException", "orders.order.created.v1", 2, 18423, 1, "not a JSON envelope"},
		"streams":             {delivery.FormatStreams, "IllegalArgumentException", "inventory.stock.adjusted.v1", 1, 55210, 1, ""},
		"masstransit":         {delivery.FormatMassTransit, "InvalidOperationException", "notify.email.high", -1, -1, 5, ""},
		"rabbitmq":            {delivery.FormatRabbitMQ, "RABBITMQ_REJECTED", "notify.email.high", -1, -1, 3, ""},
		"rabbitmq_switchyard": {delivery.FormatSwitchyard, "TEMPLATE_NOT_FOUND", "notify.email.high", -1, -1, 3, ""},
		"unknown":             {delivery.FormatUnknown, "", "", -1, -1, 1, ""},
		"non_utf8_body":       {delivery.FormatSwitchyard, "UNDECODABLE", "orders.order.created.v1", 0, 190233, 1, "not UTF-8"},
		"invalid_envelope":    {delivery.FormatSwitchyard, "VALIDATION_FAILED", "orders.order.created.v1", 0, 190877, 1, "invalid envelope"},
	}
	inputs, err := filepath.Glob(filepath.Join("testdata", "deadletter", "*.input.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) != len(wants) {
		t.Errorf("found %d fixtures, the table lists %d", len(inputs), len(wants))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.json")
		t.Run(name, func(t *testing.T) {
			m := deliverytest.LoadMessage(t, in)
			dl := delivery.Decode(m)

			w, ok := wants[name]
			if !ok {
				t.Fatalf("fixture %s has no row in the table", name)
			}
			if dl.Format != w.format {
				t.Errorf("Format = %q, want %q", dl.Format, w.format)
			}
			if dl.Error.Code != w.code {
				t.Errorf("Error.Code = %q, want %q", dl.Error.Code, w.code)
			}
			if got := dl.Origin.Destination(); got != w.origin {
				t.Errorf("Origin.Destination() = %q, want %q", got, w.origin)
			}
			if dl.Origin.Partition != w.partition || dl.Origin.Offset != w.offset {
				t.Errorf("Origin partition/offset = %d/%d, want %d/%d", dl.Origin.Partition, dl.Origin.Offset, w.partition, w.offset)
			}
			if dl.Attempts != w.attempts {
				t.Errorf("Attempts = %d, want %d", dl.Attempts, w.attempts)
			}
			switch {
			case w.envelopeErr == "" && (dl.Envelope == nil || dl.EnvelopeError != ""):
				t.Errorf("envelope not decoded: %q", dl.EnvelopeError)
			case w.envelopeErr != "" && !strings.Contains(dl.EnvelopeError, w.envelopeErr):
				t.Errorf("EnvelopeError = %q, want it to mention %q", dl.EnvelopeError, w.envelopeErr)
			}
			if !bytes.Equal(dl.Payload, m.Body) {
				t.Error("Payload differs from the body")
			}
			if !reflectHeadersEqual(dl.Headers, m.Headers) {
				t.Error("Headers differ from the message's headers")
			}
			if dl.DLQ != m.Location {
				t.Errorf("DLQ = %+v, want the message's location %+v", dl.DLQ, m.Location)
			}
			for _, ts := range []time.Time{dl.FirstFailureAt, dl.LastFailureAt} {
				if ts.IsZero() || ts.Location() != time.UTC {
					t.Errorf("failure time %v is zero or not UTC", ts)
				}
			}
			if dl.LastFailureAt.Before(dl.FirstFailureAt) {
				t.Errorf("LastFailureAt %v before FirstFailureAt %v", dl.LastFailureAt, dl.FirstFailureAt)
			}

			got, err := json.MarshalIndent(dl, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "deadletter", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantJSON, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./delivery -run Golden -update)", err)
			}
			if !bytes.Equal(got, wantJSON) {
				t.Errorf("decoded %s differs from %s (run with -update if the change is intended):\n%s", name, golden, got)
			}
		})
	}
}

func reflectHeadersEqual(a, b delivery.Headers) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}
