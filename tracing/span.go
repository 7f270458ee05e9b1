package tracing

import (
	"encoding/hex"
	"fmt"
	"time"
)

// TraceID and SpanID are the W3C ids, stored as raw bytes and shown as
// lower-case hex. The zero value is "no id".
type (
	TraceID [16]byte
	SpanID  [8]byte
)

// String is the 32-character lower-case hex form.
func (t TraceID) String() string { return hex.EncodeToString(t[:]) }

// IsZero reports whether t is the invalid all-zero id.
func (t TraceID) IsZero() bool { return t == TraceID{} }

// String is the 16-character lower-case hex form.
func (s SpanID) String() string { return hex.EncodeToString(s[:]) }

// IsZero reports whether s is the invalid all-zero id.
func (s SpanID) IsZero() bool { return s == SpanID{} }

// MarshalText is the hex form, so that ids are hex strings in JSON.
func (t TraceID) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// MarshalText is the hex form, so that ids are hex strings in JSON.
func (s SpanID) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the hex form (the zero id from "").
func (t *TraceID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*t = TraceID{}
		return nil
	}
	id, ok := ParseTraceID(string(b))
	if !ok {
		return fmt.Errorf("trace id %q: want 32 hex characters", b)
	}
	*t = id
	return nil
}

// UnmarshalText reads the hex form (the zero id from "").
func (s *SpanID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = SpanID{}
		return nil
	}
	id, ok := ParseSpanID(string(b))
	if !ok {
		return fmt.Errorf("span id %q: want 16 hex characters", b)
	}
	*s = id
	return nil
}

// ParseTraceID reads 32 hex characters (either case).
func ParseTraceID(s string) (TraceID, bool) {
	var t TraceID
	if len(s) != 32 {
		return t, false
	}
	if _, err := hex.Decode(t[:], []byte(s)); err != nil {
		return TraceID{}, false
	}
	return t, !t.IsZero()
}

// ParseSpanID reads 16 hex characters (either case).
func ParseSpanID(s string) (SpanID, bool) {
	var id SpanID
	if len(s) != 16 {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return SpanID{}, false
	}
	return id, !id.IsZero()
}

// Kind is the OTLP span kind (0 unspecified … 5 consumer).
type Kind int8

// The OTLP span kinds.
const (
	KindUnspecified Kind = iota
	KindInternal
	KindServer
	KindClient
	KindProducer
	KindConsumer
)

// String is the lower-case name the pages show.
func (k Kind) String() string {
	switch k {
	case KindInternal:
		return "internal"
	case KindServer:
		return "server"
	case KindClient:
		return "client"
	case KindProducer:
		return "producer"
	case KindConsumer:
		return "consumer"
	}
	return "unspecified"
}

// Status is the OTLP status code.
type Status int8

// The OTLP status codes.
const (
	StatusUnset Status = iota
	StatusOK
	StatusError
)

// String is "unset", "ok" or "error".
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusError:
		return "error"
	}
	return "unset"
}

// Flags mark what was wrong with a span as received or assembled. A span
// is stored whatever it carries; the flags say so on the page.
type Flags uint16

// The flags. Ingest sets the first group; trace assembly the second (they
// are never stored).
const (
	// FlagAttrsCut: attributes, events or links beyond the caps were
	// dropped, or values were shortened to the length cap.
	FlagAttrsCut Flags = 1 << iota
	// FlagDuplicate: a span with the same trace and span id was already
	// stored; this copy is kept beside it.
	FlagDuplicate
	// FlagNonPositive: end time at or before the start time.
	FlagNonPositive
	// FlagFuture: it starts more than a minute after the console received it.
	FlagFuture
	// FlagNoIDs: no valid trace or span id; a random one was given.
	FlagNoIDs

	// FlagUnknownParent (assembly): its parent is not in the store.
	FlagUnknownParent
	// FlagSkewed (assembly): moved so that it starts no earlier than its
	// parent, as Jaeger corrects clock skew; Span.Skew says by how much.
	FlagSkewed
	// FlagRedacted (assembly): the caller may not see it; only its
	// timing is shown.
	FlagRedacted
)

// Has reports whether every flag of g is set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// flagNames name each flag, in bit order: the flag label of
// switchyard_traces_spans_flagged_total and the API's flags list.
var flagNames = []struct {
	flag Flags
	name string
}{
	{FlagAttrsCut, "attrs_cut"}, {FlagDuplicate, "duplicate"}, {FlagNonPositive, "non_positive"},
	{FlagFuture, "future"}, {FlagNoIDs, "no_ids"}, {FlagUnknownParent, "unknown_parent"},
	{FlagSkewed, "skewed"}, {FlagRedacted, "redacted"},
}

// Names are the names of the flags set in f, in bit order; never nil.
func (f Flags) Names() []string {
	out := []string{}
	for _, n := range flagNames {
		if f.Has(n.flag) {
			out = append(out, n.name)
		}
	}
	return out
}

// Attr is one attribute with its value rendered as text (OTLP's typed
// values: strings as they are, numbers and booleans in their usual form,
// arrays and maps as JSON, bytes as base64).
type Attr struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Event is a span event; an exception is an event named "exception" with
// exception.type, exception.message and exception.stacktrace.
type Event struct {
	Time  time.Time `json:"time"`
	Name  string    `json:"name"`
	Attrs []Attr    `json:"attrs,omitempty"`
}

// Link is a span link: to the producer's span from a consumer that started
// its own trace, or from a redrive's producer span to the dead-lettered
// message's failing span.
type Link struct {
	TraceID TraceID `json:"trace_id"`
	SpanID  SpanID  `json:"span_id"`
	Attrs   []Attr  `json:"attrs,omitempty"`
}

// Span is one stored span. The indexed fields after Links are derived from
// the attributes at ingest (see Derive) so that searches never parse JSON.
type Span struct {
	TraceID       TraceID
	SpanID        SpanID
	ParentSpanID  SpanID
	Service       string // resource service.name
	Name          string // operation
	Kind          Kind
	Start, End    time.Time
	Status        Status
	StatusMsg     string
	Attrs         []Attr // span attributes
	ResourceAttrs []Attr // resource attributes, service.name included
	Events        []Event
	Links         []Link
	Flags         Flags

	// Derived, indexed.
	CorrelationID string // delivery.AttrCorrelationID, or correlation_id
	EventID       string // delivery.AttrMessageID, or event.id
	EventType     string // event.type
	System        string // messaging.system: kafka, rabbitmq
	Destination   string // messaging.destination.name
	Cluster       string // delivery.AttrCluster: the Kafka cluster or the RabbitMQ vhost
	Group         string // messaging.consumer.group.name
	Tenant        string // tenant.id / tenant_id, span before resource
	Resource      string // the access-policy resource name (access.KafkaTopic…); "" when none
	Attempt       int    // delivery.AttrAttempt; 0 when not a consumer attempt
	Step          string // delivery.AttrStep

	// Assembly only (never stored): how far the span was moved to start
	// no earlier than its parent.
	Skew time.Duration
}

// Duration is End−Start (negative for a FlagNonPositive span).
func (s *Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Attr returns the value of the span attribute key, then of the resource
// attribute, and whether either exists.
func (s *Span) Attr(key string) (string, bool) {
	for _, a := range s.Attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	for _, a := range s.ResourceAttrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// ErrorLine is the span's failure in one line, as Row.Error gives it for
// an assembled trace: the status message, else its first exception's type
// and message; "" when it did not fail.
func (s *Span) ErrorLine() string { return errorLine(s) }
