package delivery

import (
	"net/url"
	"strings"
)

// MassTransit fault headers, added when a consumer faults and the message
// is moved to the <queue>_error queue (MassTransit.MessageHeaders).
// MT-Reason ("fault") and the MT-Host-* headers stay in Headers only.
const (
	mtFaultPrefix        = "MT-Fault-"
	mtFaultExceptionType = "MT-Fault-ExceptionType"
	mtFaultMessage       = "MT-Fault-Message"
	mtFaultStackTrace    = "MT-Fault-StackTrace"
	mtFaultTimestamp     = "MT-Fault-Timestamp"
	mtFaultConsumerType  = "MT-Fault-ConsumerType"
	mtFaultMessageType   = "MT-Fault-MessageType"
	mtFaultRetryCount    = "MT-Fault-RetryCount"
	mtFaultInputAddress  = "MT-Fault-InputAddress"
)

// decodeMassTransit reads MassTransit's MT-Fault-* headers. The consumer
// type is the service, the input address names the queue (and vhost), the
// retry count plus the first try is the attempt count, and the code is the
// exception's simple type name.
func decodeMassTransit(h Headers, dl *DeadLetter) bool {
	if !hasHeaderPrefix(h, mtFaultPrefix) {
		return false
	}
	s := h.String
	typ := s(mtFaultExceptionType)
	dl.Error = ErrorInfo{
		Code:          simpleTypeName(typ),
		Message:       s(mtFaultMessage),
		ExceptionType: typ,
		Stack:         s(mtFaultStackTrace),
	}
	if v := s(mtFaultMessageType); v != "" {
		dl.Error.Details = map[string]any{"message_type": v}
	}
	if n := atoiDefault(s(mtFaultRetryCount), -1); n >= 0 {
		dl.Attempts = n + 1
	}
	if t := parseDotNetTime(s(mtFaultTimestamp)); !t.IsZero() {
		dl.FirstFailureAt, dl.LastFailureAt = t, t
	}
	dl.Origin = massTransitAddress(s(mtFaultInputAddress))
	dl.Origin.Service = s(mtFaultConsumerType)
	return true
}

// massTransitAddress turns an endpoint address such as
// rabbitmq://host/vhost/queue?durable=true into a location. Only the
// RabbitMQ transport is mapped to a broker; other schemes keep just the
// queue name.
func massTransitAddress(addr string) Location {
	loc := Location{Partition: -1, Offset: -1}
	if addr == "" {
		return loc
	}
	u, err := url.Parse(addr)
	if err != nil {
		return loc
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) == 0 || segs[0] == "" {
		return loc
	}
	loc.Queue = segs[len(segs)-1]
	switch u.Scheme {
	case "rabbitmq", "rabbitmqs", "amqp", "amqps":
		loc.Broker = BrokerRabbitMQ
		loc.VHost = "/" // MassTransit leaves the default vhost out of addresses
		if len(segs) > 1 {
			loc.VHost = segs[0]
		}
	}
	return loc
}
