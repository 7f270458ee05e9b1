package delivery

// Kafka Streams dead-letter headers (KIP-1034, ExceptionHandlerUtils). Every
// value is a UTF-8 string; partition and offset are decimal, and the
// message header is absent or empty when the exception had none.
const (
	streamsPrefix     = "__streams.errors."
	streamsException  = "__streams.errors.exception"
	streamsMessage    = "__streams.errors.message"
	streamsStacktrace = "__streams.errors.stacktrace"
	streamsTopic      = "__streams.errors.topic"
	streamsPartition  = "__streams.errors.partition"
	streamsOffset     = "__streams.errors.offset"
)

// decodeStreams reads Kafka Streams' __streams.errors.* headers. The code
// is the exception's simple class name. Streams does not name the
// application, so Service stays empty.
func decodeStreams(h Headers, dl *DeadLetter) bool {
	if !hasHeaderPrefix(h, streamsPrefix) {
		return false
	}
	s := h.String
	typ := s(streamsException)
	dl.Error = ErrorInfo{
		Code:          simpleTypeName(typ),
		Message:       s(streamsMessage),
		ExceptionType: typ,
		Stack:         s(streamsStacktrace),
	}
	dl.Origin = Location{
		Broker:    BrokerKafka,
		Topic:     s(streamsTopic),
		Partition: partitionOf(parseInt(s(streamsPartition), -1)),
		Offset:    offsetOf(parseInt(s(streamsOffset), -1)),
	}
	return true
}
