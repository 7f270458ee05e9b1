package dlqstore_test

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/dlqstore"
)

// The one filter codec: what a query string says, JSON says with the API's
// field names, and each reads back as the same filter.
func TestFilterCodecRoundTrips(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f := dlqstore.Filter{
		Status: []dlqstore.Status{dlqstore.StatusDead, dlqstore.StatusQuarantined}, Broker: delivery.BrokerKafka, Cluster: "prod",
		Destination: "orders.dlq", EventType: "order.created", ErrorCode: "TIMEOUT", Tenant: "t1",
		From: from, To: from.Add(time.Hour), GroupID: 7, Q: `"timed out" NOT retry`,
	}
	got, err := dlqstore.ParseValues(f.Values())
	if err != nil || !reflect.DeepEqual(got, f) {
		t.Errorf("ParseValues(Values()) = %+v, %v\nwant %+v", got, err, f)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"status":["dead","quarantined"],"broker":"kafka","cluster":"prod","destination":"orders.dlq","event_type":"order.created",` +
		`"error_code":"TIMEOUT","tenant":"t1","from":"2026-11-01T00:00:00Z","to":"2026-11-01T01:00:00Z","group":7,"q":"\"timed out\" NOT retry"}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant %s", b, want)
	}
	var back dlqstore.Filter
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, f) {
		t.Errorf("JSON round trip = %+v, %v", back, err)
	}
	// The reader's own fields stay out of the JSON.
	scoped := dlqstore.Filter{Q: "x", Limit: 5, Cursor: "abc", Tenants: &dlqstore.TenantScope{All: true}}
	if b, _ := json.Marshal(scoped); string(b) != `{"q":"x"}` {
		t.Errorf("JSON of a scoped page = %s", b)
	}
	if err := json.Unmarshal([]byte(`{"q":"x","limit":5}`), &back); err == nil || !strings.Contains(err.Error(), `unknown field "limit"`) {
		t.Errorf("JSON with limit: %v, want unknown field", err)
	}
	for _, name := range []string{"status", "from", "group", "q"} {
		if !dlqstore.FilterField(name) {
			t.Errorf("FilterField(%q) = false", name)
		}
	}
	for _, name := range []string{"limit", "cursor", "range", "tenants"} {
		if dlqstore.FilterField(name) {
			t.Errorf("FilterField(%q) = true", name)
		}
	}
}

// ParseValues reads what the entries page and the CLI send: repeated or
// comma-separated statuses, trimmed values, Unix seconds and a browser's
// datetime-local, and refuses what the store cannot hold, naming the field.
func TestParseValues(t *testing.T) {
	f, err := dlqstore.ParseValues(url.Values{
		"status": {"dead, quarantined", "dead"}, "broker": {" rabbitmq "}, "from": {"1772366400"}, "to": {"2026-03-02T10:30"},
		"group": {"3"}, "limit": {"20"}, "other": {"ignored"},
	})
	want := dlqstore.Filter{Status: []dlqstore.Status{dlqstore.StatusDead, dlqstore.StatusQuarantined}, Broker: delivery.BrokerRabbitMQ,
		From: time.Unix(1772366400, 0).UTC(), To: time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC), GroupID: 3, Limit: 20}
	if err != nil || !reflect.DeepEqual(f, want) {
		t.Errorf("ParseValues = %+v, %v\nwant %+v", f, err, want)
	}
	for _, tc := range []struct{ query, field string }{
		{"status=gone", "status"},
		{"broker=nats", "broker"},
		{"from=9999-01-01T00:00:00Z", "from"},
		{"from=tomorrow", "from"},
		{"from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "to"},
		{"group=x", "group"},
		{"limit=501", "limit"},
		{"q=" + url.QueryEscape("a\x00b"), "q"},
		{"cursor=!!", "cursor"},
	} {
		v, _ := url.ParseQuery(tc.query)
		_, err := dlqstore.ParseValues(v)
		if delivery.ErrorCode(err) != delivery.EINVALID || !strings.Contains(delivery.ErrorMessage(err), tc.field) {
			t.Errorf("ParseValues(%s) = %v, want EINVALID naming %s", tc.query, err, tc.field)
		}
	}
}
