package delivery

// Kafka Connect DeadLetterQueueReporter headers, written when
// errors.deadletterqueue.context.headers.enable=true. Every value is a
// UTF-8 string; partition, offset and task id are decimal.
const (
	connectPrefix         = "__connect.errors."
	connectTopic          = "__connect.errors.topic"
	connectPartition      = "__connect.errors.partition"
	connectOffset         = "__connect.errors.offset"
	connectConnector      = "__connect.errors.connector.name"
	connectTaskID         = "__connect.errors.task.id"
	connectStage          = "__connect.errors.stage"
	connectClassName      = "__connect.errors.class.name"
	connectExceptionClass = "__connect.errors.exception.class.name"
	connectExceptionMsg   = "__connect.errors.exception.message"
	connectExceptionStack = "__connect.errors.exception.stacktrace"
)

// decodeConnect reads Kafka Connect's __connect.errors.* headers. The
// connector is the service that failed; the stage (VALUE_CONVERTER,
// TRANSFORMATION, TASK_PUT, …), the executing class and the task id go to
// the error details. The code is the exception's simple class name.
func decodeConnect(h Headers, dl *DeadLetter) bool {
	if !hasHeaderPrefix(h, connectPrefix) {
		return false
	}
	s := h.String
	typ := s(connectExceptionClass)
	dl.Error = ErrorInfo{
		Code:          simpleTypeName(typ),
		Message:       s(connectExceptionMsg),
		ExceptionType: typ,
		Stack:         s(connectExceptionStack),
	}
	details := map[string]any{}
	for k, hk := range map[string]string{"stage": connectStage, "class_name": connectClassName, "task_id": connectTaskID} {
		if v := s(hk); v != "" {
			details[k] = v
		}
	}
	if len(details) > 0 {
		dl.Error.Details = details
	}
	dl.Origin = Location{
		Broker:    BrokerKafka,
		Topic:     s(connectTopic),
		Partition: partitionOf(parseInt(s(connectPartition), -1)),
		Offset:    offsetOf(parseInt(s(connectOffset), -1)),
		Service:   s(connectConnector),
	}
	return true
}
