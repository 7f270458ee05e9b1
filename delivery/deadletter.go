package delivery

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Header is one message header. Kafka header values are bytes as sent;
// AMQP header values are converted by delivery/rabbitmq: strings as their
// bytes, numbers in decimal, timestamps in RFC 3339, and tables and arrays
// (x-death) as JSON.
type Header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Headers is an ordered header list; duplicate keys are allowed (Kafka).
type Headers []Header

// Get returns the last value of key, and whether it was present.
func (h Headers) Get(key string) ([]byte, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Key == key {
			return h[i].Value, true
		}
	}
	return nil, false
}

// String returns the last value of key as a string, or "".
func (h Headers) String(key string) string {
	v, _ := h.Get(key)
	return string(v)
}

// Without returns the headers minus every key for which drop returns true.
func (h Headers) Without(drop func(key string) bool) Headers {
	out := make(Headers, 0, len(h))
	for _, x := range h {
		if !drop(x.Key) {
			out = append(out, x)
		}
	}
	return out
}

// Broker names used in Location.Broker.
const (
	BrokerKafka    = "kafka"
	BrokerRabbitMQ = "rabbitmq"
)

// Location names a message's place on a broker. Kafka uses Cluster, Topic,
// Partition and Offset; RabbitMQ uses Cluster, VHost, Exchange, RoutingKey
// and Queue. Partition and Offset are -1 when unknown. ConsumerGroup (Kafka)
// or Service names who was consuming when the message failed.
type Location struct {
	Broker        string `json:"broker,omitempty"`
	Cluster       string `json:"cluster,omitempty"`
	Topic         string `json:"topic,omitempty"`
	Partition     int32  `json:"partition"`
	Offset        int64  `json:"offset"`
	VHost         string `json:"vhost,omitempty"`
	Exchange      string `json:"exchange,omitempty"`
	RoutingKey    string `json:"routing_key,omitempty"`
	Queue         string `json:"queue,omitempty"`
	ConsumerGroup string `json:"consumer_group,omitempty"`
	Service       string `json:"service,omitempty"`
}

// Destination is the topic or queue name of the location.
func (l Location) Destination() string {
	if l.Topic != "" {
		return l.Topic
	}
	return l.Queue
}

// ErrorInfo is the error context of a failure.
type ErrorInfo struct {
	Code          string         `json:"code,omitempty"`
	Message       string         `json:"message,omitempty"`
	Details       map[string]any `json:"details,omitempty"`
	ExceptionType string         `json:"exception_type,omitempty"`
	Stack         string         `json:"stack,omitempty"`
}

// Format names the dead-letter header format a record was read from.
type Format string

// The dead-letter formats Decode understands.
const (
	FormatSwitchyard  Format = "switchyard"
	FormatSpring      Format = "spring"      // Spring Kafka kafka_dlt-*
	FormatConnect     Format = "connect"     // Kafka Connect __connect.errors.*
	FormatStreams     Format = "streams"     // Kafka Streams __streams.errors.* (KIP-1034)
	FormatRabbitMQ    Format = "rabbitmq"    // RabbitMQ x-death / x-first-death-*
	FormatMassTransit Format = "masstransit" // MassTransit MT-Fault-*
	FormatUnknown     Format = "unknown"     // no known headers: payload and coordinates only
)

// Foreign reports whether f is another framework's dead-letter format
// (Spring, Connect, Streams, MassTransit), whose payload is that
// framework's own record: decoded from its headers, a dead letter of it is
// whole without a platform envelope.
func (f Format) Foreign() bool {
	switch f {
	case FormatSpring, FormatConnect, FormatStreams, FormatMassTransit:
		return true
	}
	return false
}

// DeadLetter is one normalized failure record, whatever format it came in.
type DeadLetter struct {
	Format Format `json:"format"`
	// Envelope is the decoded platform envelope, nil when the payload is not
	// one; EnvelopeError then says why (not JSON, not UTF-8, invalid fields).
	Envelope      *Envelope `json:"envelope,omitempty"`
	EnvelopeError string    `json:"envelope_error,omitempty"`
	Key           []byte    `json:"key,omitempty"`
	Payload       []byte    `json:"payload"`
	// Origin is where the message was when it failed; DLQ is where this
	// dead-letter record itself is stored.
	Origin         Location  `json:"origin"`
	DLQ            Location  `json:"dlq"`
	Error          ErrorInfo `json:"error"`
	Attempts       int       `json:"attempts"`
	RedriveCount   int       `json:"redrive_count"`
	FirstFailureAt time.Time `json:"first_failure_at"`
	LastFailureAt  time.Time `json:"last_failure_at"`
	// Headers are all the headers the record carried, in order.
	Headers Headers `json:"headers"`
}

// Message is a raw record read from a dead-letter topic or queue: its own
// coordinates (Location), key, headers and body.
type Message struct {
	Location  Location
	MessageID string
	Key       []byte
	Headers   Headers
	Body      []byte
	Timestamp time.Time
}

// Switchyard's own dead-letter headers, written by EncodeHeaders.
const (
	HeaderPrefix          = "switchyard."
	HeaderErrorCode       = "switchyard.error.code"
	HeaderErrorMessage    = "switchyard.error.message"
	HeaderErrorDetails    = "switchyard.error.details" // JSON object
	HeaderErrorType       = "switchyard.error.type"
	HeaderErrorStack      = "switchyard.error.stack"
	HeaderAttempts        = "switchyard.attempts"
	HeaderFirstFailure    = "switchyard.first_failure_at" // RFC 3339
	HeaderLastFailure     = "switchyard.last_failure_at"  // RFC 3339
	HeaderOriginBroker    = "switchyard.origin.broker"
	HeaderOriginCluster   = "switchyard.origin.cluster"
	HeaderOriginTopic     = "switchyard.origin.topic"
	HeaderOriginPartition = "switchyard.origin.partition"
	HeaderOriginOffset    = "switchyard.origin.offset"
	HeaderOriginVHost     = "switchyard.origin.vhost"
	HeaderOriginExchange  = "switchyard.origin.exchange"
	HeaderOriginRouting   = "switchyard.origin.routing_key"
	HeaderOriginQueue     = "switchyard.origin.queue"
	HeaderOriginGroup     = "switchyard.origin.consumer_group"
	HeaderOriginService   = "switchyard.origin.service"
	// Redrive provenance (written by the console when it redrives).
	HeaderRedriveCount = "switchyard.redrive.count"
	HeaderRedriveJob   = "switchyard.redrive.job"
	// Propagation headers written by every publisher of the delivery core.
	HeaderTraceparent   = "traceparent"
	HeaderCorrelationID = "correlation_id"
	HeaderEventID       = "event_id"
	HeaderEventType     = "event_type"
	HeaderTenantID      = "tenant_id"
)

// EncodeHeaders writes the dead letter's error context and origin as
// Switchyard headers, appended to the message's own headers minus any
// stale dead-letter headers of any format. A redrive count the message
// already carries (it was redriven) is kept, or replaced when
// dl.RedriveCount is set: the key is never written twice.
func EncodeHeaders(dl DeadLetter) Headers {
	out := dl.Headers.Without(func(k string) bool {
		return IsDeadLetterHeader(k) || (dl.RedriveCount > 0 && k == HeaderRedriveCount)
	})
	add := func(k, v string) {
		if v != "" {
			out = append(out, Header{Key: k, Value: []byte(v)})
		}
	}
	add(HeaderErrorCode, dl.Error.Code)
	add(HeaderErrorMessage, dl.Error.Message)
	if len(dl.Error.Details) > 0 {
		if b, err := json.Marshal(dl.Error.Details); err == nil {
			add(HeaderErrorDetails, string(b))
		}
	}
	add(HeaderErrorType, dl.Error.ExceptionType)
	add(HeaderErrorStack, dl.Error.Stack)
	if dl.Attempts > 0 {
		add(HeaderAttempts, strconv.Itoa(dl.Attempts))
	}
	if !dl.FirstFailureAt.IsZero() {
		add(HeaderFirstFailure, dl.FirstFailureAt.UTC().Format(time.RFC3339Nano))
	}
	if !dl.LastFailureAt.IsZero() {
		add(HeaderLastFailure, dl.LastFailureAt.UTC().Format(time.RFC3339Nano))
	}
	o := dl.Origin
	add(HeaderOriginBroker, o.Broker)
	add(HeaderOriginCluster, o.Cluster)
	add(HeaderOriginTopic, o.Topic)
	if o.Topic != "" && o.Partition >= 0 {
		add(HeaderOriginPartition, strconv.Itoa(int(o.Partition)))
	}
	if o.Topic != "" && o.Offset >= 0 {
		add(HeaderOriginOffset, strconv.FormatInt(o.Offset, 10))
	}
	add(HeaderOriginVHost, o.VHost)
	add(HeaderOriginExchange, o.Exchange)
	add(HeaderOriginRouting, o.RoutingKey)
	add(HeaderOriginQueue, o.Queue)
	add(HeaderOriginGroup, o.ConsumerGroup)
	add(HeaderOriginService, o.Service)
	if dl.RedriveCount > 0 {
		add(HeaderRedriveCount, strconv.Itoa(dl.RedriveCount))
	}
	return out
}

// IsDeadLetterHeader reports whether key is error context written by any
// known dead-letter format (Switchyard's error and origin headers included,
// redrive provenance excluded). Redrives strip these so that a redriven
// message does not carry a stale error.
func IsDeadLetterHeader(key string) bool {
	switch {
	case strings.HasPrefix(key, HeaderPrefix+"error."),
		strings.HasPrefix(key, HeaderPrefix+"origin."),
		key == HeaderAttempts, key == HeaderFirstFailure, key == HeaderLastFailure,
		strings.HasPrefix(key, "kafka_dlt-"),
		strings.HasPrefix(key, "__connect.errors."),
		strings.HasPrefix(key, "__streams.errors."),
		key == "x-death", strings.HasPrefix(key, "x-first-death-"), strings.HasPrefix(key, "x-last-death-"),
		strings.HasPrefix(key, "MT-Fault-"), key == "MT-Reason":
		return true
	}
	return false
}

// decoder fills dl from the headers it recognizes and reports whether it
// recognized any.
type decoder struct {
	format Format
	decode func(h Headers, dl *DeadLetter) bool
}

// Decode reads a dead-letter record of any known format into one
// DeadLetter. It never fails: a record with no known headers is FormatUnknown,
// and a payload that is not a valid envelope keeps its raw bytes with
// EnvelopeError set. The first format whose headers are present wins, in the
// order Switchyard, Spring, Connect, Streams, MassTransit, RabbitMQ x-death;
// fields it leaves empty are taken from the formats after it (a RabbitMQ
// message carries x-death beside any other format's headers).
func Decode(m Message) DeadLetter {
	dl := DeadLetter{
		Format:  FormatUnknown,
		Key:     m.Key,
		Payload: m.Body,
		Headers: m.Headers,
		DLQ:     m.Location,
		Origin:  Location{Partition: -1, Offset: -1},
	}
	for _, d := range decoders {
		var part DeadLetter
		part.Origin = Location{Partition: -1, Offset: -1}
		if !d.decode(m.Headers, &part) {
			continue
		}
		if dl.Format == FormatUnknown {
			dl.Format = d.format
		}
		mergeDeadLetter(&dl, part)
	}
	if dl.Origin.Broker == "" {
		dl.Origin.Broker = m.Location.Broker
	}
	if dl.Origin.Cluster == "" {
		dl.Origin.Cluster = m.Location.Cluster
	}
	// RabbitMQ dead-letters within one vhost, and x-death does not name
	// it: without this a RabbitMQ origin had no vhost to redrive to.
	if dl.Origin.Broker == BrokerRabbitMQ && m.Location.Broker == BrokerRabbitMQ && dl.Origin.VHost == "" {
		dl.Origin.VHost = m.Location.VHost
	}
	if dl.Attempts < 1 {
		dl.Attempts = 1
	}
	if dl.LastFailureAt.IsZero() {
		dl.LastFailureAt = m.Timestamp.UTC()
	}
	if dl.FirstFailureAt.IsZero() {
		dl.FirstFailureAt = dl.LastFailureAt
	}
	if n, err := strconv.Atoi(m.Headers.String(HeaderRedriveCount)); err == nil && n > 0 {
		dl.RedriveCount = n
	}
	dl.Envelope, dl.EnvelopeError = decodeEnvelope(m.Body)
	return dl
}

// decodeEnvelope parses and validates a payload as an envelope.
func decodeEnvelope(b []byte) (*Envelope, string) {
	if len(b) == 0 {
		return nil, "empty payload"
	}
	if !utf8Valid(b) {
		return nil, "payload is not UTF-8"
	}
	env, err := ParseEnvelope(b)
	if err != nil {
		return nil, "payload is not a JSON envelope: " + err.Error()
	}
	if err := env.Validate(); err != nil {
		return &env, err.Error()
	}
	return &env, ""
}

// mergeDeadLetter copies into dst every field of src that dst lacks.
func mergeDeadLetter(dst *DeadLetter, src DeadLetter) {
	mergeLocation(&dst.Origin, src.Origin)
	e, s := &dst.Error, src.Error
	if e.Code == "" {
		e.Code = s.Code
	}
	if e.Message == "" {
		e.Message = s.Message
	}
	if e.Details == nil {
		e.Details = s.Details
	}
	if e.ExceptionType == "" {
		e.ExceptionType = s.ExceptionType
	}
	if e.Stack == "" {
		e.Stack = s.Stack
	}
	if dst.Attempts == 0 {
		dst.Attempts = src.Attempts
	}
	if dst.FirstFailureAt.IsZero() {
		dst.FirstFailureAt = src.FirstFailureAt
	}
	if dst.LastFailureAt.IsZero() {
		dst.LastFailureAt = src.LastFailureAt
	}
}

func mergeLocation(d *Location, s Location) {
	set := func(dp *string, v string) {
		if *dp == "" {
			*dp = v
		}
	}
	set(&d.Broker, s.Broker)
	set(&d.Cluster, s.Cluster)
	set(&d.Topic, s.Topic)
	set(&d.VHost, s.VHost)
	set(&d.Exchange, s.Exchange)
	set(&d.RoutingKey, s.RoutingKey)
	set(&d.Queue, s.Queue)
	set(&d.ConsumerGroup, s.ConsumerGroup)
	set(&d.Service, s.Service)
	if d.Partition < 0 {
		d.Partition = s.Partition
	}
	if d.Offset < 0 {
		d.Offset = s.Offset
	}
}
