package tracing

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"
	otrace "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"switchyard/delivery"
)

func kv(k, v string) *common.KeyValue {
	return &common.KeyValue{Key: k, Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: v}}}
}

// otlpRequest is one resource ("billing") with the given spans.
func otlpRequest(spans ...*otrace.Span) *coltrace.ExportTraceServiceRequest {
	return &coltrace.ExportTraceServiceRequest{ResourceSpans: []*otrace.ResourceSpans{{
		Resource:   &resource.Resource{Attributes: []*common.KeyValue{kv("service.name", "billing"), kv(delivery.AttrTenant, "t-res")}},
		ScopeSpans: []*otrace.ScopeSpans{{Spans: spans}},
	}}}
}

func consumerSpan() *otrace.Span {
	tid, sid, pid := tid(7), sid(2), sid(1)
	return &otrace.Span{
		TraceId: tid[:], SpanId: sid[:], ParentSpanId: pid[:],
		Name: "orders process", Kind: otrace.Span_SPAN_KIND_CONSUMER,
		StartTimeUnixNano: uint64(storeT0.UnixNano()), EndTimeUnixNano: uint64(storeT0.Add(5 * time.Millisecond).UnixNano()),
		Attributes: []*common.KeyValue{
			kv(delivery.AttrSystem, "rabbitmq"), kv(delivery.AttrDest, "orders"), kv(delivery.AttrCorrelationID, "c-1"),
			{Key: delivery.AttrAttempt, Value: &common.AnyValue{Value: &common.AnyValue_IntValue{IntValue: 2}}},
			{Key: "ok", Value: &common.AnyValue{Value: &common.AnyValue_BoolValue{BoolValue: true}}},
			{Key: "ratio", Value: &common.AnyValue{Value: &common.AnyValue_DoubleValue{DoubleValue: 0.25}}},
			{Key: "raw", Value: &common.AnyValue{Value: &common.AnyValue_BytesValue{BytesValue: []byte{1, 2, 3}}}},
			{Key: "list", Value: &common.AnyValue{Value: &common.AnyValue_ArrayValue{ArrayValue: &common.ArrayValue{Values: []*common.AnyValue{
				{Value: &common.AnyValue_StringValue{StringValue: "a"}}, {Value: &common.AnyValue_IntValue{IntValue: 1}}}}}}},
		},
		Status: &otrace.Status{Code: otrace.Status_STATUS_CODE_ERROR, Message: "declined"},
		Events: []*otrace.Span_Event{{TimeUnixNano: uint64(storeT0.Add(time.Millisecond).UnixNano()), Name: "exception",
			Attributes: []*common.KeyValue{kv("exception.type", "Declined")}}},
		Links: []*otrace.Span_Link{{TraceId: tid[:], SpanId: pid[:]}},
	}
}

func checkConsumerSpan(t *testing.T, got []Span) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("%d spans, want 1", len(got))
	}
	sp := got[0]
	if sp.TraceID != tid(7) || sp.SpanID != sid(2) || sp.ParentSpanID != sid(1) {
		t.Errorf("ids %s %s %s", sp.TraceID, sp.SpanID, sp.ParentSpanID)
	}
	if sp.Kind != KindConsumer || sp.Status != StatusError || sp.StatusMsg != "declined" || sp.Name != "orders process" {
		t.Errorf("kind %v status %v %q name %q", sp.Kind, sp.Status, sp.StatusMsg, sp.Name)
	}
	if !sp.Start.Equal(storeT0) || sp.Duration() != 5*time.Millisecond || sp.Flags != 0 {
		t.Errorf("start %v duration %v flags %b", sp.Start, sp.Duration(), sp.Flags)
	}
	for k, want := range map[string]string{delivery.AttrAttempt: "2", "ok": "true", "ratio": "0.25", "raw": "AQID", "list": `["a",1]`} {
		if v, _ := sp.Attr(k); v != want {
			t.Errorf("attribute %s = %q, want %q", k, v, want)
		}
	}
	if sp.Service != "billing" || sp.Tenant != "t-res" || sp.Resource != "rabbitmq:/orders" || sp.Attempt != 2 || sp.CorrelationID != "c-1" {
		t.Errorf("derived service %q tenant %q resource %q attempt %d correlation %q", sp.Service, sp.Tenant, sp.Resource, sp.Attempt, sp.CorrelationID)
	}
	if len(sp.Events) != 1 || sp.Events[0].Name != "exception" || !sp.Events[0].Time.Equal(storeT0.Add(time.Millisecond)) {
		t.Errorf("events %+v", sp.Events)
	}
	if len(sp.Links) != 1 || sp.Links[0].TraceID != tid(7) || sp.Links[0].SpanID != sid(1) {
		t.Errorf("links %+v", sp.Links)
	}
}

func TestDecodeRequestProtobuf(t *testing.T) {
	body, err := proto.Marshal(otlpRequest(consumerSpan()))
	if err != nil {
		t.Fatal(err)
	}
	req, err := DecodeRequest(body, false)
	if err != nil {
		t.Fatal(err)
	}
	checkConsumerSpan(t, FromOTLP(req, Limits{}, storeT0))
}

// OTLP/JSON writes ids in hex, which protobuf's JSON mapping would read
// as base64 into the wrong bytes.
func TestDecodeRequestJSON(t *testing.T) {
	body, err := protojson.Marshal(otlpRequest(consumerSpan()))
	if err != nil {
		t.Fatal(err)
	}
	// protojson writes base64 ids; OTLP/JSON exporters write hex.
	tid, sid, pid := tid(7), sid(2), sid(1)
	js := string(body)
	for _, id := range [][]byte{tid[:], sid[:], pid[:]} {
		b64, _ := protojson.Marshal(&common.AnyValue{Value: &common.AnyValue_BytesValue{BytesValue: id}})
		enc := strings.TrimSuffix(strings.TrimPrefix(string(b64), `{"bytesValue":"`), `"}`)
		hexID := strings.ToUpper(hex.EncodeToString(id)) // upper case is valid OTLP/JSON too
		js = strings.ReplaceAll(js, `"`+enc+`"`, `"`+hexID+`"`)
	}
	if !strings.Contains(js, strings.ToUpper(tid.String())) {
		t.Fatalf("test request has no hex trace id: %s", js)
	}
	// Unknown fields (a newer OTLP) are ignored.
	js = strings.Replace(js, `{"resourceSpans"`, `{"futureField":1,"resourceSpans"`, 1)
	req, err := DecodeRequest([]byte(js), true)
	if err != nil {
		t.Fatal(err)
	}
	checkConsumerSpan(t, FromOTLP(req, Limits{}, storeT0))
}

// The example request of the OTLP specification's JSON section, as a
// user's exporter would send it.
func TestDecodeRequestSpecExample(t *testing.T) {
	js := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
	"scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0"},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C",
	"spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173","name":"I'm a server span","startTimeUnixNano":"1544712660000000000",
	"endTimeUnixNano":"1544712661000000000","kind":2,"attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}},
	{"key":"n","value":{"intValue":"42"}}]}]}]}]}`
	req, err := DecodeRequest([]byte(js), true)
	if err != nil {
		t.Fatal(err)
	}
	got := FromOTLP(req, Limits{}, time.Unix(1544712660, 0))
	if len(got) != 1 {
		t.Fatalf("%d spans", len(got))
	}
	sp := got[0]
	if sp.TraceID.String() != "5b8efff798038103d269b633813fc60c" || sp.SpanID.String() != "eee19b7ec3c1b174" || sp.ParentSpanID.String() != "eee19b7ec3c1b173" {
		t.Errorf("ids %s %s %s", sp.TraceID, sp.SpanID, sp.ParentSpanID)
	}
	if sp.Kind != KindServer || sp.Service != "my.service" || sp.Duration() != time.Second || sp.Flags != 0 {
		t.Errorf("kind %v service %q duration %v flags %b", sp.Kind, sp.Service, sp.Duration(), sp.Flags)
	}
	if v, _ := sp.Attr("n"); v != "42" {
		t.Errorf("int attribute = %q", v)
	}
}

func TestDecodeRequestMalformed(t *testing.T) {
	for name, c := range map[string]struct {
		body   string
		isJSON bool
	}{
		"truncated protobuf": {"\x0a\x05\x0a", false},
		"not JSON":           {"{resourceSpans", true},
		"wrong JSON type":    {`{"resourceSpans":"x"}`, true},
		"bad time":           {`{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}`, true},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeRequest([]byte(c.body), c.isJSON); !errors.Is(err, ErrBadOTLP) {
				t.Errorf("error %v, want ErrBadOTLP", err)
			}
		})
	}
}

// What is wrong with a span is flagged on it, never a reason to drop it.
func TestFromOTLPFlags(t *testing.T) {
	now := storeT0
	base := func() *otrace.Span {
		tid, sid := tid(1), sid(1)
		return &otrace.Span{TraceId: tid[:], SpanId: sid[:], Name: "x",
			StartTimeUnixNano: uint64(now.UnixNano()), EndTimeUnixNano: uint64(now.Add(time.Millisecond).UnixNano())}
	}
	lim := Limits{MaxAttrs: 3, MaxAttrLen: 8, MaxEvents: 2, MaxLinks: 1}
	for _, c := range []struct {
		name  string
		edit  func(*otrace.Span)
		flags Flags
		cut   string
	}{
		{"clean", func(*otrace.Span) {}, 0, ""},
		{"zero duration", func(s *otrace.Span) { s.EndTimeUnixNano = s.StartTimeUnixNano }, FlagNonPositive, ""},
		{"negative duration", func(s *otrace.Span) { s.EndTimeUnixNano = s.StartTimeUnixNano - 5 }, FlagNonPositive, ""},
		{"no end", func(s *otrace.Span) { s.EndTimeUnixNano = 0 }, FlagNonPositive, ""},
		{"future start", func(s *otrace.Span) {
			s.StartTimeUnixNano = uint64(now.Add(2 * time.Minute).UnixNano())
			s.EndTimeUnixNano = s.StartTimeUnixNano + 1
		}, FlagFuture, ""},
		{"slightly ahead is not future", func(s *otrace.Span) {
			s.StartTimeUnixNano = uint64(now.Add(30 * time.Second).UnixNano())
			s.EndTimeUnixNano = s.StartTimeUnixNano + 1
		}, 0, ""},
		{"missing trace id", func(s *otrace.Span) { s.TraceId = nil }, FlagNoIDs, ""},
		{"zero span id", func(s *otrace.Span) { s.SpanId = make([]byte, 8) }, FlagNoIDs, ""},
		{"short span id", func(s *otrace.Span) { s.SpanId = []byte{1, 2} }, FlagNoIDs, ""},
		{"too many attrs", func(s *otrace.Span) {
			for range 5 {
				s.Attributes = append(s.Attributes, kv("k", "v"))
			}
		}, FlagAttrsCut, "attrs 2, events 0, links 0, values 0"},
		{"long value", func(s *otrace.Span) { s.Attributes = []*common.KeyValue{kv("k", "ééééé")} }, FlagAttrsCut, "attrs 0, events 0, links 0, values 1"},
		{"events and links", func(s *otrace.Span) {
			s.Events = make([]*otrace.Span_Event, 5)
			s.Links = make([]*otrace.Span_Link, 2)
		}, FlagAttrsCut, "attrs 0, events 3, links 1, values 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := base()
			c.edit(p)
			got := FromOTLP(otlpRequest(p), lim, now)
			if len(got) != 1 {
				t.Fatalf("%d spans", len(got))
			}
			sp := got[0]
			if sp.Flags != c.flags {
				t.Errorf("flags %b, want %b", sp.Flags, c.flags)
			}
			if sp.TraceID.IsZero() || sp.SpanID.IsZero() {
				t.Error("span without ids")
			}
			if cut, _ := sp.Attr(AttrCut); cut != c.cut {
				t.Errorf("%s = %q, want %q", AttrCut, cut, c.cut)
			}
			if len(sp.Attrs) > lim.MaxAttrs+1 || len(sp.Events) > lim.MaxEvents || len(sp.Links) > lim.MaxLinks {
				t.Errorf("%d attrs, %d events, %d links beyond the caps", len(sp.Attrs), len(sp.Events), len(sp.Links))
			}
			for _, a := range sp.Attrs {
				if a.Key != AttrCut && len(a.Value) > lim.MaxAttrLen+len("…") || !utf8.ValidString(a.Value) {
					t.Errorf("value %q longer than the cap or cut inside a character", a.Value)
				}
			}
		})
	}
	t.Run("missing ids differ", func(t *testing.T) {
		a, b := base(), base()
		a.TraceId, b.TraceId = nil, nil
		got := FromOTLP(otlpRequest(a, b), Limits{}, now)
		if got[0].TraceID == got[1].TraceID {
			t.Error("two spans without trace ids got the same random one")
		}
	})
}

func TestDerive(t *testing.T) {
	res := func(attrs ...Attr) []Attr { return attrs }
	for _, c := range []struct {
		name       string
		attrs, res []Attr
		want       Span
	}{
		{"no service", nil, nil, Span{Service: UnknownService}},
		{"kafka consumer attempt",
			[]Attr{{delivery.AttrSystem, "kafka"}, {delivery.AttrDest, "orders"}, {delivery.AttrCluster, "prod"}, {delivery.AttrConsumer, "billing"},
				{delivery.AttrAttempt, "2"}, {delivery.AttrStep, delivery.StepAttempt}, {delivery.AttrMessageID, "ev-1"},
				{delivery.AttrCorrelationID, "c-1"}, {delivery.AttrEventType, "orders.order.placed.v1"}, {delivery.AttrTenant, "t1"}},
			res(Attr{"service.name", "billing"}, Attr{delivery.AttrTenant, "t-res"}),
			Span{Service: "billing", System: "kafka", Destination: "orders", Cluster: "prod", Group: "billing", Attempt: 2,
				Step: delivery.StepAttempt, EventID: "ev-1", CorrelationID: "c-1", EventType: "orders.order.placed.v1", Tenant: "t1",
				Resource: "kafka:prod/orders"}},
		{"rabbitmq default vhost, plain keys",
			[]Attr{{delivery.AttrSystem, "rabbitmq"}, {delivery.AttrDest, "notify"}, {"correlation_id", "c-2"}, {"event_id", "ev-2"}, {"tenant_id", "t2"}},
			res(Attr{"service.name", "mailer"}),
			Span{Service: "mailer", System: "rabbitmq", Destination: "notify", CorrelationID: "c-2", EventID: "ev-2", Tenant: "t2", Resource: "rabbitmq:/notify"}},
		{"rabbitmq named vhost, event.id",
			[]Attr{{delivery.AttrSystem, "rabbitmq"}, {delivery.AttrDest, "q"}, {delivery.AttrCluster, "shop"}, {"event.id", "ev-3"}},
			nil,
			Span{Service: UnknownService, System: "rabbitmq", Destination: "q", Cluster: "shop", EventID: "ev-3", Resource: "rabbitmq:shop/q"}},
		{"tenant from the resource", nil, res(Attr{"tenant_id", "t3"}), Span{Service: UnknownService, Tenant: "t3"}},
		{"no destination, no resource", []Attr{{delivery.AttrSystem, "kafka"}}, nil, Span{Service: UnknownService, System: "kafka"}},
		{"bad attempt", []Attr{{delivery.AttrAttempt, "x"}}, nil, Span{Service: UnknownService}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sp := Span{Attrs: c.attrs, ResourceAttrs: c.res}
			Derive(&sp)
			sp.Attrs, sp.ResourceAttrs = nil, nil
			if !reflect.DeepEqual(sp, c.want) {
				t.Errorf("got  %+v\nwant %+v", sp, c.want)
			}
		})
	}
}
