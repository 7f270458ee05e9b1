package delivery

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// decoders lists the formats Decode tries, in precedence order.
var decoders = []decoder{
	{FormatSwitchyard, decodeSwitchyard},
	{FormatSpring, decodeSpring},
	{FormatConnect, decodeConnect},
	{FormatStreams, decodeStreams},
	{FormatMassTransit, decodeMassTransit},
	{FormatRabbitMQ, decodeRabbitMQ},
}

func decodeSwitchyard(h Headers, dl *DeadLetter) bool {
	found := false
	for _, x := range h {
		if IsDeadLetterHeader(x.Key) && len(x.Key) > len(HeaderPrefix) && x.Key[:len(HeaderPrefix)] == HeaderPrefix {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	s := h.String
	dl.Error = ErrorInfo{
		Code:          s(HeaderErrorCode),
		Message:       s(HeaderErrorMessage),
		ExceptionType: s(HeaderErrorType),
		Stack:         s(HeaderErrorStack),
	}
	if b, ok := h.Get(HeaderErrorDetails); ok {
		var d map[string]any
		if json.Unmarshal(b, &d) == nil {
			dl.Error.Details = d
		}
	}
	if n, err := strconv.Atoi(s(HeaderAttempts)); err == nil && n > 0 {
		dl.Attempts = n
	}
	dl.FirstFailureAt = parseTime(s(HeaderFirstFailure))
	dl.LastFailureAt = parseTime(s(HeaderLastFailure))
	dl.Origin = Location{
		Broker:        s(HeaderOriginBroker),
		Cluster:       s(HeaderOriginCluster),
		Topic:         s(HeaderOriginTopic),
		Partition:     partitionOf(parseInt(s(HeaderOriginPartition), -1)),
		Offset:        offsetOf(parseInt(s(HeaderOriginOffset), -1)),
		VHost:         s(HeaderOriginVHost),
		Exchange:      s(HeaderOriginExchange),
		RoutingKey:    s(HeaderOriginRouting),
		Queue:         s(HeaderOriginQueue),
		ConsumerGroup: s(HeaderOriginGroup),
		Service:       s(HeaderOriginService),
	}
	return true
}

func parseInt(s string, def int64) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return def
	}
	return n
}

// parseTime accepts RFC 3339 or Unix epoch milliseconds; else zero.
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC()
	}
	return time.Time{}
}

func utf8Valid(b []byte) bool { return utf8.Valid(b) }
