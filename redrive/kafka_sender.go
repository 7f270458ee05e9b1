package redrive

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"

	"switchyard/delivery"
	"switchyard/delivery/kafka"
)

// KafkaSender sends redrives to one Kafka cluster through a Publisher's
// client (idempotent, acks=all), all of a batch in flight at once.
type KafkaSender struct {
	cl  *kgo.Client
	tel *delivery.Telemetry
	// txErr is set when the client is transactional: a record produced
	// outside a transaction would fail, so Send refuses up front.
	txErr error
}

var _ Sender = (*KafkaSender)(nil)

// NewKafkaSender returns a sender over pub's client. pub must not be
// transactional: a redrive is one record at a time, not a transaction.
// It records each message's redrive span with pub's Telemetry.
func NewKafkaSender(pub *kafka.Publisher) *KafkaSender {
	s := &KafkaSender{cl: pub.Client(), tel: pub.Telemetry()}
	if txid, _ := s.cl.OptValue(kgo.TransactionalID).(string); txid != "" {
		s.txErr = delivery.Errorf(delivery.EINVALID, "kafka sender: the publisher is transactional (%s); redrives need a plain idempotent producer", txid)
	}
	return s
}

// Send produces every message as a record (the original key, the body as
// value, the headers as given) to its target topic and waits for every
// acknowledgement. Records are handed to the client in the order given,
// and the idempotent producer keeps that order within a partition. A
// message that is not for Kafka fails alone with EINVALID; a record the
// broker refuses (e.g. its topic does not exist) fails alone with the
// broker's error. When ctx ends, records not yet written fail with its
// error. Each record gets a redrive span (see startSpan) whose traceparent
// it carries, ended when the broker's ack or error arrives.
func (s *KafkaSender) Send(ctx context.Context, msgs []Message) []error {
	errs := make([]error, len(msgs))
	if s.txErr != nil {
		for i := range errs {
			errs[i] = s.txErr
		}
		return errs
	}
	var (
		wg       sync.WaitGroup
		produced int
	)
	for i := range msgs {
		m := &msgs[i]
		if m.Target.Broker != delivery.BrokerKafka || m.Target.Topic == "" {
			errs[i] = delivery.Errorf(delivery.EINVALID, "kafka sender: entry %d: target %s is not a Kafka topic", m.EntryID, m.Target.Resource())
			continue
		}
		span, headers := startSpan(ctx, s.tel, m)
		r := &kgo.Record{
			Topic:   m.Target.Topic,
			Key:     m.Key,
			Value:   m.Body,
			Headers: recordHeaders(headers),
			Context: ctx,
		}
		wg.Add(1)
		produced++
		// Each promise writes only its own slot; Wait orders the writes
		// before the return.
		s.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				errs[i] = fmt.Errorf("produce to %s: %w", r.Topic, err)
			} else if span.IsRecording() {
				span.SetAttributes(attribute.Int("messaging.destination.partition.id", int(r.Partition)), attribute.Int64("messaging.kafka.offset", r.Offset))
			}
			endSpan(span, err)
			wg.Done()
		})
	}
	if produced == 0 {
		return errs
	}
	// Nothing more is coming for this batch, so lingering for more records
	// (kgo's default 10 ms per partition) would only delay the acks we
	// wait for, once per batch. Flush stops the lingers; it also waits for
	// records of other users of the client, so it is cut short once ours
	// are all settled.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		wg.Wait()
		cancel()
	}()
	_ = s.cl.Flush(fctx) // an error is only fctx ending; the promises carry the outcomes
	wg.Wait()
	return errs
}

func recordHeaders(hs delivery.Headers) []kgo.RecordHeader {
	if len(hs) == 0 {
		return nil
	}
	out := make([]kgo.RecordHeader, len(hs))
	for i, h := range hs {
		out[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
	}
	return out
}
