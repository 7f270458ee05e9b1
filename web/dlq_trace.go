package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/tracing"
)

// failingAttemptSpan is the span id of the consumer attempt that failed
// the entry's message for good: the failed attempt span with the highest
// attempt number in the entry's trace (of its event id, when the envelope
// names one), as the caller may see it. "" when there is no span store,
// no trace id or no such span: the entry page then links the plain trace.
func (s *Server) failingAttemptSpan(c *fiber.Ctx, e dlq.Entry) string {
	if s.traces == nil {
		return ""
	}
	tid, ok := tracing.ParseTraceID(traceOf(e.DL))
	if !ok {
		return ""
	}
	q := tracing.SearchQuery{TraceID: tid, Step: delivery.StepAttempt, Status: "error", Limit: 100}
	if e.DL.Envelope != nil {
		q.EventID = e.DL.Envelope.ID
	}
	res, err := s.traces.Search(c.UserContext(), principal(c), q)
	if err != nil {
		s.log.WarnContext(c.UserContext(), "failing attempt of a dead letter", "request_id", requestIDOf(c), "err", err)
		return ""
	}
	best := -1
	for i, sp := range res.Spans {
		if best < 0 || sp.Attempt > res.Spans[best].Attempt {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return res.Spans[best].SpanID.String()
}
