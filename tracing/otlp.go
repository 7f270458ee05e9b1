package tracing

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	otrace "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Limits cap what one span may carry, so that one misbehaving SDK (a
// request body logged into an attribute, an event per loop iteration)
// cannot fill the store or stall a page. Zero fields take the defaults.
// What is cut is said on the span: FlagAttrsCut and an attribute
// AttrCut.
type Limits struct {
	MaxAttrs   int // per span; resource attributes counted separately; default 128
	MaxAttrLen int // bytes of one value; default 4096 (cut at a UTF-8 boundary, "…" appended)
	MaxEvents  int // default 128
	MaxLinks   int // default 128
}

// The Limits defaults.
const (
	DefaultMaxAttrs   = 128
	DefaultMaxAttrLen = 4096
	DefaultMaxEvents  = 128
	DefaultMaxLinks   = 128
)

func (l Limits) withDefaults() Limits {
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = DefaultMaxAttrs
	}
	if l.MaxAttrLen <= 0 {
		l.MaxAttrLen = DefaultMaxAttrLen
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = DefaultMaxEvents
	}
	if l.MaxLinks <= 0 {
		l.MaxLinks = DefaultMaxLinks
	}
	return l
}

// AttrCut is the attribute FromOTLP adds to a span it cut, saying how
// much went: "attrs 40, events 0, links 0, values 3" (attributes, events
// and links dropped beyond the caps, values shortened to the length cap).
const AttrCut = "switchyard.cut"

// maxKeyLen caps an attribute key, apart from the value cap: keys of the
// semantic conventions are under 100 bytes, and a small value cap must
// not cut service.name into something Derive no longer finds.
const maxKeyLen = 256

// futureSlack is how far ahead of the receiving clock a span may start
// before it is flagged FlagFuture: clocks of different hosts disagree by
// milliseconds, not minutes.
const futureSlack = time.Minute

// ErrBadOTLP is wrapped by every DecodeRequest error: the receivers answer
// it with 400 (HTTP) or InvalidArgument (gRPC).
var ErrBadOTLP = errors.New("malformed OTLP traces request")

// DecodeRequest parses an ExportTraceServiceRequest from protobuf or from
// OTLP/JSON. OTLP/JSON differs from protobuf's JSON mapping in one place:
// trace and span ids are hex, not base64. protojson decodes a 32-character
// hex id as base64 into 24 bytes (every hex digit is a base64 digit), so
// an id of 24 (12 for a span id) bytes is encoded back to that text and
// read as hex; this costs nothing on the bytes that were right, unlike
// rewriting the JSON document before decoding. Unknown fields are ignored,
// as the OTLP specification asks of receivers. Errors wrap ErrBadOTLP.
func DecodeRequest(body []byte, isJSON bool) (*coltrace.ExportTraceServiceRequest, error) {
	req := &coltrace.ExportTraceServiceRequest{}
	if !isJSON {
		if err := proto.Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadOTLP, err)
		}
		return req, nil
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, req); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOTLP, err)
	}
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				sp.TraceId = hexID(sp.TraceId, 16)
				sp.SpanId = hexID(sp.SpanId, 8)
				sp.ParentSpanId = hexID(sp.ParentSpanId, 8)
				for _, l := range sp.GetLinks() {
					l.TraceId = hexID(l.TraceId, 16)
					l.SpanId = hexID(l.SpanId, 8)
				}
			}
		}
	}
	return req, nil
}

// hexID undoes protojson's base64 reading of an n-byte hex id; other ids
// are returned as they are (FromOTLP replaces invalid ones).
func hexID(b []byte, n int) []byte {
	if len(b) != n*3/2 {
		return b
	}
	var txt [48]byte
	base64.StdEncoding.Encode(txt[:], b)
	out := make([]byte, n)
	if _, err := hex.Decode(out, txt[:2*n]); err != nil {
		return b
	}
	return out
}

// FromOTLP turns a request into spans ready for Store.Write. It never
// fails: whatever a span carries, it is kept and what was wrong is
// flagged.
//   - A missing or invalid trace or span id is replaced by a random one:
//     FlagNoIDs. An invalid parent id makes the span a root.
//   - Attribute values become text (Attr); beyond lim the attributes,
//     events and links are dropped and long values shortened: FlagAttrsCut
//     and the attribute AttrCut.
//   - End at or before start: FlagNonPositive. A start more than a minute
//     after now: FlagFuture.
//   - Derive fills the indexed fields.
func FromOTLP(req *coltrace.ExportTraceServiceRequest, lim Limits, now time.Time) []Span {
	lim = lim.withDefaults()
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	out := make([]Span, 0, n)
	for _, rs := range req.GetResourceSpans() {
		var rc cuts
		res := convAttrs(rs.GetResource().GetAttributes(), lim, &rc)
		for _, ss := range rs.GetScopeSpans() {
			for _, p := range ss.GetSpans() {
				out = append(out, fromProto(p, res, rc, lim, now))
			}
		}
	}
	return out
}

// cuts counts what the caps removed from one span.
type cuts struct{ attrs, events, links, values int }

func (c cuts) any() bool { return c != cuts{} }

func fromProto(p *otrace.Span, res []Attr, c cuts, lim Limits, now time.Time) Span {
	sp := Span{
		Name:          capString(p.GetName(), lim.MaxAttrLen, &c),
		Kind:          Kind(p.GetKind()),
		Status:        Status(p.GetStatus().GetCode()),
		StatusMsg:     capString(p.GetStatus().GetMessage(), lim.MaxAttrLen, &c),
		Start:         time.Unix(0, clampNano(p.GetStartTimeUnixNano())).UTC(),
		End:           time.Unix(0, clampNano(p.GetEndTimeUnixNano())).UTC(),
		ResourceAttrs: res,
	}
	if sp.Kind < KindUnspecified || sp.Kind > KindConsumer {
		sp.Kind = KindUnspecified
	}
	if sp.Status < StatusUnset || sp.Status > StatusError {
		sp.Status = StatusUnset
	}
	if !copyID(sp.TraceID[:], p.GetTraceId()) {
		randomID(sp.TraceID[:])
		sp.Flags |= FlagNoIDs
	}
	if !copyID(sp.SpanID[:], p.GetSpanId()) {
		randomID(sp.SpanID[:])
		sp.Flags |= FlagNoIDs
	}
	copyID(sp.ParentSpanID[:], p.GetParentSpanId())
	sp.Attrs = convAttrs(p.GetAttributes(), lim, &c)

	evs := p.GetEvents()
	if len(evs) > lim.MaxEvents {
		c.events += len(evs) - lim.MaxEvents
		evs = evs[:lim.MaxEvents]
	}
	for _, e := range evs {
		sp.Events = append(sp.Events, Event{
			Time:  time.Unix(0, clampNano(e.GetTimeUnixNano())).UTC(),
			Name:  capString(e.GetName(), lim.MaxAttrLen, &c),
			Attrs: convAttrs(e.GetAttributes(), lim, &c),
		})
	}
	links := p.GetLinks()
	if len(links) > lim.MaxLinks {
		c.links += len(links) - lim.MaxLinks
		links = links[:lim.MaxLinks]
	}
	for _, l := range links {
		var ln Link
		copyID(ln.TraceID[:], l.GetTraceId())
		copyID(ln.SpanID[:], l.GetSpanId())
		ln.Attrs = convAttrs(l.GetAttributes(), lim, &c)
		sp.Links = append(sp.Links, ln)
	}

	if c.any() {
		sp.Flags |= FlagAttrsCut
		sp.Attrs = append(sp.Attrs, Attr{Key: AttrCut, Value: fmt.Sprintf("attrs %d, events %d, links %d, values %d", c.attrs, c.events, c.links, c.values)})
	}
	if !sp.End.After(sp.Start) {
		sp.Flags |= FlagNonPositive
	}
	if sp.Start.Sub(now) > futureSlack {
		sp.Flags |= FlagFuture
	}
	Derive(&sp)
	return sp
}

// copyID copies a valid (right length, not all zero) id into dst.
func copyID(dst, src []byte) bool {
	if len(src) != len(dst) {
		return false
	}
	for _, c := range src {
		if c != 0 {
			copy(dst, src)
			return true
		}
	}
	return false
}

func convAttrs(kvs []*common.KeyValue, lim Limits, c *cuts) []Attr {
	if len(kvs) == 0 {
		return nil
	}
	if len(kvs) > lim.MaxAttrs {
		c.attrs += len(kvs) - lim.MaxAttrs
		kvs = kvs[:lim.MaxAttrs]
	}
	out := make([]Attr, len(kvs))
	for i, kv := range kvs {
		out[i] = Attr{
			Key:   capString(kv.GetKey(), maxKeyLen, c),
			Value: capString(valueText(kv.GetValue()), lim.MaxAttrLen, c),
		}
	}
	return out
}

// capString cuts s to at most max bytes at a UTF-8 boundary and appends
// "…", counting the cut.
func capString(s string, max int, c *cuts) string {
	if len(s) <= max {
		return s
	}
	c.values++
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// valueText renders an OTLP value as the pages show it: strings as they
// are, numbers and booleans in their usual form, bytes as base64, arrays
// and maps as JSON.
func valueText(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *common.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *common.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *common.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *common.AnyValue_ArrayValue, *common.AnyValue_KvlistValue:
		b, err := json.Marshal(jsonValue(v, 0))
		if err != nil {
			return ""
		}
		return string(b)
	}
	return ""
}

// maxValueDepth bounds the nesting jsonValue follows, so a hostile
// request of nested arrays cannot exhaust the stack.
const maxValueDepth = 32

// jsonValue is v as a value encoding/json renders: arrays and maps
// become JSON arrays and objects, scalars keep their JSON type.
func jsonValue(v *common.AnyValue, depth int) any {
	if depth > maxValueDepth {
		return nil
	}
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_BoolValue:
		return x.BoolValue
	case *common.AnyValue_IntValue:
		return x.IntValue
	case *common.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64) // NaN and Inf have no JSON number
	case *common.AnyValue_BytesValue:
		return x.BytesValue // base64, as encoding/json writes []byte
	case *common.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, jsonValue(e, depth+1))
		}
		return out
	case *common.AnyValue_KvlistValue:
		out := make(map[string]any, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = jsonValue(kv.GetValue(), depth+1)
		}
		return out
	}
	return nil
}
