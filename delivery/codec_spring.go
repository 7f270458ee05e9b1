package delivery

import "time"

// Spring Kafka DeadLetterPublishingRecoverer headers (KafkaHeaders.DLT_*).
// Partition is a 4-byte big-endian int, offset and timestamp 8-byte
// big-endian longs; the rest are UTF-8 strings.
const (
	springPrefix             = "kafka_dlt-"
	springOrigTopic          = "kafka_dlt-original-topic"
	springOrigPartition      = "kafka_dlt-original-partition"
	springOrigOffset         = "kafka_dlt-original-offset"
	springOrigTimestamp      = "kafka_dlt-original-timestamp"
	springOrigTimestampType  = "kafka_dlt-original-timestamp-type"
	springOrigGroup          = "kafka_dlt-original-consumer-group"
	springExceptionFQCN      = "kafka_dlt-exception-fqcn"
	springExceptionCauseFQCN = "kafka_dlt-exception-cause-fqcn"
	springExceptionMessage   = "kafka_dlt-exception-message"
	springExceptionStack     = "kafka_dlt-exception-stacktrace"
	springKeyExceptionFQCN   = "kafka_dlt-key-exception-fqcn"
	springKeyExceptionMsg    = "kafka_dlt-key-exception-message"
	springKeyExceptionStack  = "kafka_dlt-key-exception-stacktrace"
	// Attempt counters Spring writes beside the DLT headers: the retryable
	// topics' attempt number and the container's delivery attempt (both
	// 4-byte ints).
	springRetryTopicAttempts = "retry_topic-attempts"
	springDeliveryAttempt    = "kafka_deliveryAttempt"
)

// decodeSpring reads Spring Kafka's kafka_dlt-* headers.
//
// Spring has no error code, so the code is the simple class name of the
// exception that matters: the cause when Spring recorded one (the outer
// exception is usually ListenerExecutionFailedException, which says only
// that "the listener threw"), else the exception itself. The message is
// the cause's message when the stack trace carries it, else the
// exception's. ExceptionType is the fully qualified name of the same class.
// The value exception is preferred; the key-deserializer one
// (kafka_dlt-key-exception-*) is used when no value exception is present.
func decodeSpring(h Headers, dl *DeadLetter) bool {
	if !hasHeaderPrefix(h, springPrefix) {
		return false
	}
	s := h.String
	fqcn, msg, stack := s(springExceptionFQCN), s(springExceptionMessage), s(springExceptionStack)
	cause := s(springExceptionCauseFQCN)
	failedOn := "value"
	if fqcn == "" && msg == "" && stack == "" {
		fqcn, msg, stack = s(springKeyExceptionFQCN), s(springKeyExceptionMsg), s(springKeyExceptionStack)
		cause = ""
		failedOn = "key"
	}
	details := map[string]any{}
	typ := fqcn
	if cause != "" && cause != fqcn {
		typ = cause
		details["exception_fqcn"] = fqcn
		if m := javaCauseMessage(stack, cause); m != "" {
			msg = m
		}
	}
	if fqcn != "" || stack != "" {
		details["failed_on"] = failedOn
	}
	if b, ok := h.Get(springOrigTimestamp); ok {
		if ms := javaLong(b, -1); ms >= 0 {
			details["original_timestamp"] = time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
		}
	}
	if v := s(springOrigTimestampType); v != "" {
		details["original_timestamp_type"] = v
	}
	dl.Error = ErrorInfo{Code: simpleTypeName(typ), Message: msg, ExceptionType: typ, Stack: stack}
	if len(details) > 0 {
		dl.Error.Details = details
	}
	partition, offset := int64(-1), int64(-1)
	if b, ok := h.Get(springOrigPartition); ok {
		partition = javaInt(b, -1)
	}
	if b, ok := h.Get(springOrigOffset); ok {
		offset = javaLong(b, -1)
	}
	dl.Origin = Location{
		Broker:        BrokerKafka,
		Topic:         s(springOrigTopic),
		Partition:     partitionOf(partition),
		Offset:        offsetOf(offset),
		ConsumerGroup: s(springOrigGroup),
	}
	for _, k := range []string{springRetryTopicAttempts, springDeliveryAttempt} {
		if b, ok := h.Get(k); ok {
			if n := javaInt(b, 0); n > 0 && n < 1<<20 {
				dl.Attempts = int(n)
				break
			}
		}
	}
	return true
}
