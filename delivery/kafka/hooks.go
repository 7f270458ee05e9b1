package kafka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
)

// Semantic-convention attribute keys used on spans beside delivery's.
const (
	attrPartition = "messaging.destination.partition.id"
	attrOffset    = "messaging.kafka.offset"
	attrOperation = "messaging.operation.type"
)

// publishSpanKey marks a record context that carries a publish span this
// package started, so that the hook never ends a caller's own span.
type publishSpanKey struct{}

// hooks is the package's kgo instrumentation, installed on every client it
// creates: the publish span ends when kgo un-buffers the record, which is
// the moment the broker's ack (or the final error) is known, for Produce
// and ProduceSync alike; group management errors, which PollFetches would
// otherwise only surface in passing, are logged.
type hooks struct {
	log *slog.Logger
}

var (
	_ kgo.HookProduceRecordUnbuffered = (*hooks)(nil)
	_ kgo.HookGroupManageError        = (*hooks)(nil)
)

func (h *hooks) OnProduceRecordUnbuffered(r *kgo.Record, err error) { endPublishSpan(r, err) }

func (h *hooks) OnGroupManageError(err error) {
	h.log.Warn("kafka group management error", "err", err)
}

// hasHooks reports whether cl carries this package's hooks; a caller's own
// client usually does not, and Publisher then ends spans in its promise.
func hasHooks(cl *kgo.Client) bool {
	hs, _ := cl.OptValue(kgo.WithHooks).([]kgo.Hook)
	for _, h := range hs {
		if _, ok := h.(*hooks); ok {
			return true
		}
	}
	return false
}

// endPublishSpan records where the record landed, or why it did not, on the
// publish span in its context and ends the span.
func endPublishSpan(r *kgo.Record, err error) {
	if r == nil || r.Context == nil {
		return
	}
	span, ok := r.Context.Value(publishSpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(
			attribute.Int(attrPartition, int(r.Partition)),
			attribute.Int64(attrOffset, r.Offset),
		)
	}
	span.End()
}

// kgoLogger forwards franz-go's own log lines to slog. Only warnings and
// errors pass: franz-go's info level logs every request.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	case kgo.LogLevelInfo:
		lv = slog.LevelInfo
	}
	k.l.Log(context.Background(), lv, "kgo: "+msg, keyvals...)
}

// baseOpts are the options every client of this package starts with.
func baseOpts(brokers []string, log *slog.Logger) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.WithHooks(&hooks{log: log}),
		kgo.WithLogger(kgoLogger{log}),
	}
}

// toHeaders copies kgo record headers into delivery headers.
func toHeaders(hs []kgo.RecordHeader) delivery.Headers {
	out := make(delivery.Headers, len(hs))
	for i, h := range hs {
		out[i] = delivery.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// fromHeaders copies delivery headers into kgo record headers.
func fromHeaders(hs delivery.Headers) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, len(hs))
	for i, h := range hs {
		out[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
	}
	return out
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
