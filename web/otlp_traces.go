package web

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"switchyard/delivery"
	"switchyard/tracing"
)

// TraceReceiver stores the spans of a decoded OTLP trace export.
// *tracing.Receiver implements it (the gRPC receiver uses the same one).
// Errors are internal: the store failed.
type TraceReceiver interface {
	Ingest(ctx context.Context, req *coltrace.ExportTraceServiceRequest) (tracing.IngestResult, error)
}

// handleOTLPTraces is the OTLP/HTTP trace receiver: services (and the
// demo's) export their spans here, as protobuf or JSON, like the metrics
// to /v1/metrics. The answer is an ExportTraceServiceResponse in the
// request's encoding, with partial_success when spans were refused.
// Errors follow the platform contract: 400 for a body that is not an
// export, 413 (limitBody) for one over the OTLP body limit.
func (s *Server) handleOTLPTraces(c *fiber.Ctx) error {
	if s.traceRecv == nil {
		return s.fail(c, delivery.Errorf(delivery.ENOTFOUND, "the OTLP trace receiver is not configured"))
	}
	isJSON, err := otlpEncoding(c)
	if err != nil {
		return s.fail(c, err)
	}
	// limitBody has decoded any Content-Encoding and held the body to
	// MaxOTLPBody. The decoded request copies what it keeps of the body,
	// which fiber reuses after the handler.
	req, err := tracing.DecodeRequest(c.Body(), isJSON)
	if err != nil {
		if errors.Is(err, tracing.ErrBadOTLP) {
			return s.fail(c, &delivery.Error{Code: delivery.EINVALID, Message: "the body is not an OTLP trace export", Cause: err})
		}
		return s.fail(c, err)
	}
	res, err := s.traceRecv.Ingest(c.UserContext(), req)
	if err != nil {
		return s.fail(c, err)
	}
	resp := &coltrace.ExportTraceServiceResponse{}
	if res.Rejected > 0 {
		c.Locals(partialIngestKey{}, true)
		resp.PartialSuccess = &coltrace.ExportTracePartialSuccess{
			RejectedSpans: int64(res.Rejected),
			ErrorMessage:  "spans refused: they could not be read as spans",
		}
	}
	return s.sendOTLP(c, resp, isJSON)
}
