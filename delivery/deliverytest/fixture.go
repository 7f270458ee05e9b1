package deliverytest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"switchyard/delivery"
)

// fixtureHeader is one header of a fixture. Exactly one of Value (UTF-8
// text), ValueHex (binary, e.g. Spring's big-endian ints) or ValueJSON (a
// JSON value sent compacted, e.g. x-death as delivery/rabbitmq hands it
// over) is set.
type fixtureHeader struct {
	Key       string          `json:"key"`
	Value     *string         `json:"value,omitempty"`
	ValueHex  string          `json:"value_hex,omitempty"`
	ValueJSON json.RawMessage `json:"value_json,omitempty"`
}

// fixture is a delivery.Message in a form that can be written by hand.
// The body is Body (text), BodyJSON (compacted) or BodyHex (binary).
type fixture struct {
	Location  delivery.Location `json:"location"`
	MessageID string            `json:"message_id,omitempty"`
	Key       string            `json:"key,omitempty"`
	Headers   []fixtureHeader   `json:"headers"`
	Body      *string           `json:"body,omitempty"`
	BodyJSON  json.RawMessage   `json:"body_json,omitempty"`
	BodyHex   string            `json:"body_hex,omitempty"`
	Timestamp time.Time         `json:"timestamp"`
}

// LoadMessage reads a dead-letter fixture, the hand-written form of a raw
// delivery.Message that delivery/testdata/deadletter/*.input.json hold (the
// delivery package's golden tests decode them; the indexer's tests index
// them). Unknown fields are an error, so that a typo in a fixture does not
// silently drop a header.
func LoadMessage(t testing.TB, path string) delivery.Message {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fx); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	m := delivery.Message{Location: fx.Location, MessageID: fx.MessageID, Timestamp: fx.Timestamp}
	if fx.Key != "" {
		m.Key = []byte(fx.Key)
	}
	for _, h := range fx.Headers {
		var v []byte
		switch {
		case h.Value != nil:
			v = []byte(*h.Value)
		case h.ValueHex != "":
			if v, err = hex.DecodeString(h.ValueHex); err != nil {
				t.Fatalf("%s: header %s: %v", path, h.Key, err)
			}
		case h.ValueJSON != nil:
			v = compactJSON(t, path, h.ValueJSON)
		}
		m.Headers = append(m.Headers, delivery.Header{Key: h.Key, Value: v})
	}
	switch {
	case fx.Body != nil:
		m.Body = []byte(*fx.Body)
	case fx.BodyJSON != nil:
		m.Body = compactJSON(t, path, fx.BodyJSON)
	case fx.BodyHex != "":
		if m.Body, err = hex.DecodeString(fx.BodyHex); err != nil {
			t.Fatalf("%s: body: %v", path, err)
		}
	}
	return m
}

func compactJSON(t testing.TB, path string, raw json.RawMessage) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("%s: compact %s: %v", path, raw, err)
	}
	return b.Bytes()
}
