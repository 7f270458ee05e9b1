package rabbitmq

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/delivery"
)

func TestHeadersFromTable(t *testing.T) {
	ts := time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"string", "abc", "abc"},
		{"bytes", []byte{0xff, 0x00, 'a'}, "\xff\x00a"},
		{"int8", int8(-8), "-8"},
		{"uint8", uint8(200), "200"},
		{"int16", int16(-300), "-300"},
		{"uint16", uint16(65000), "65000"},
		{"int32", int32(-70000), "-70000"},
		{"uint32", uint32(4000000000), "4000000000"},
		{"int64", int64(1) << 40, "1099511627776"},
		{"int", 42, "42"},
		{"float32", float32(1.5), "1.5"},
		{"float64", 0.1, "0.1"},
		{"large float64 stays decimal", 1e21, "1000000000000000000000"},
		{"decimal", amqp.Decimal{Scale: 2, Value: 12345}, "123.45"},
		{"negative decimal", amqp.Decimal{Scale: 3, Value: -5}, "-0.005"},
		{"true", true, "true"},
		{"false", false, "false"},
		{"time in UTC", ts, "2025-03-04T04:06:07Z"},
		{"void", nil, ""},
		{"table as JSON", amqp.Table{"b": int32(2), "a": "x", "t": ts}, `{"a":"x","b":2,"t":"2025-03-04T04:06:07Z"}`},
		{"array as JSON", []any{"k1", int64(3), []byte("raw"), amqp.Decimal{Scale: 1, Value: 15}}, `["k1",3,"raw",1.5]`},
		{"x-death", []any{amqp.Table{
			"count":        int64(2),
			"exchange":     "",
			"queue":        "notify.email.high",
			"reason":       "rejected",
			"routing-keys": []any{"notify.email.high"},
			"time":         ts,
		}}, `[{"count":2,"exchange":"","queue":"notify.email.high","reason":"rejected","routing-keys":["notify.email.high"],"time":"2025-03-04T04:06:07Z"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HeadersFromTable(amqp.Table{"k": tt.in})
			if len(got) != 1 || got[0].Key != "k" {
				t.Fatalf("got %v, want one header k", got)
			}
			if string(got[0].Value) != tt.want {
				t.Errorf("got %q, want %q", got[0].Value, tt.want)
			}
		})
	}
}

func TestHeadersFromTableSortsKeys(t *testing.T) {
	in := amqp.Table{"zeta": "1", "alpha": "2", "mid": "3", "Beta": "4"}
	var got []string
	for _, h := range HeadersFromTable(in) {
		got = append(got, h.Key)
	}
	want := []string{"Beta", "alpha", "mid", "zeta"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if h := HeadersFromTable(nil); h != nil {
		t.Errorf("nil table: got %v, want nil", h)
	}
}

func TestXDeathJSONIsAnArrayOfObjects(t *testing.T) {
	// The x-death decoder of package delivery reads exactly this shape.
	h := HeadersFromTable(amqp.Table{"x-death": []any{amqp.Table{"count": int64(1), "reason": "expired", "time": time.Unix(1700000000, 0)}}})
	var got []struct {
		Count  int64     `json:"count"`
		Reason string    `json:"reason"`
		Time   time.Time `json:"time"`
	}
	if err := json.Unmarshal(h[0].Value, &got); err != nil {
		t.Fatalf("x-death is not a JSON array of objects: %v (%s)", err, h[0].Value)
	}
	if len(got) != 1 || got[0].Count != 1 || got[0].Reason != "expired" || !got[0].Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("got %+v", got)
	}
}

func TestTableFromHeaders(t *testing.T) {
	tests := []struct {
		name string
		in   delivery.Headers
		want amqp.Table
	}{
		{"empty", nil, nil},
		{"strings", delivery.Headers{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("x y")}}, amqp.Table{"a": "1", "b": "x y"}},
		{"last duplicate wins", delivery.Headers{{Key: "a", Value: []byte("old")}, {Key: "a", Value: []byte("new")}}, amqp.Table{"a": "new"}},
		{"empty value", delivery.Headers{{Key: "a"}}, amqp.Table{"a": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TableFromHeaders(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("table not valid for AMQP: %v", err)
			}
		})
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	in := delivery.Headers{{Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("1")}}
	got := HeadersFromTable(TableFromHeaders(in))
	want := delivery.Headers{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
