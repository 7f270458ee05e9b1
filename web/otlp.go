package web

import (
	"errors"
	"mime"
	"strings"

	"github.com/gofiber/fiber/v2"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/delivery"
)

// handleOTLPMetrics is the OTLP/HTTP metrics receiver: services export
// event.processed, event.failed and event.processing.duration here, as
// protobuf or JSON. The answer is an ExportMetricsServiceResponse in the
// request's encoding, with partial_success when some points were refused
// (the series cap, invalid values). Errors follow the platform contract.
func (s *Server) handleOTLPMetrics(c *fiber.Ctx) error {
	if s.otlp == nil {
		return s.fail(c, delivery.Errorf(delivery.ENOTFOUND, "the OTLP metrics receiver is not configured"))
	}
	isJSON, err := otlpEncoding(c)
	if err != nil {
		return s.fail(c, err)
	}
	// limitBody has decoded any Content-Encoding and held the body to
	// MaxOTLPBody.
	body := c.Body()
	res, err := s.otlp.Ingest(body, isJSON)
	if err != nil {
		if errors.Is(err, collector.ErrBadOTLP) {
			return s.fail(c, &delivery.Error{Code: delivery.EINVALID, Message: "the body is not an OTLP metrics export", Cause: err})
		}
		return s.fail(c, err)
	}
	resp := &colmetrics.ExportMetricsServiceResponse{}
	if res.Rejected > 0 {
		c.Locals(partialIngestKey{}, true)
		resp.PartialSuccess = &colmetrics.ExportMetricsPartialSuccess{
			RejectedDataPoints: int64(res.Rejected),
			ErrorMessage:       "data points refused: the service-metric series cap was reached or values were invalid",
		}
	}
	return s.sendOTLP(c, resp, isJSON)
}

// otlpEncoding reads an OTLP/HTTP request's Content-Type: JSON or
// protobuf, anything else an EINVALID error.
func otlpEncoding(c *fiber.Ctx) (isJSON bool, err error) {
	mt, _, perr := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	isJSON = mt == "application/json"
	if perr != nil || (!isJSON && mt != "application/x-protobuf") {
		return false, &delivery.Error{Code: delivery.EINVALID,
			Message: "Content-Type must be application/x-protobuf or application/json",
			Details: map[string]any{"content_type": strings.Clone(c.Get(fiber.HeaderContentType))}}
	}
	return isJSON, nil
}

// sendOTLP answers an OTLP/HTTP export with resp in the request's encoding.
func (s *Server) sendOTLP(c *fiber.Ctx, resp proto.Message, isJSON bool) error {
	var out []byte
	var err error
	if isJSON {
		out, err = protojson.Marshal(resp)
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	} else {
		out, err = proto.Marshal(resp)
		c.Set(fiber.HeaderContentType, "application/x-protobuf")
	}
	if err != nil {
		return s.fail(c, err)
	}
	return c.Send(out)
}

// partialIngestKey marks an export some of whose points were refused.
type partialIngestKey struct{}

// countIngest counts an OTLP export in /metrics
// (switchyard_otlp_ingest_requests_total) by the account that sent it and
// how it ended: statusOutcome of its status, and partial for a success some of
// whose points were refused. Ingest is a service's routine push — a
// demo's service account sends several a second — not an operator's
// mutation: an audit record for each would bury the ones that matter.
func (s *Server) countIngest(c *fiber.Ctx, p *access.Principal) {
	outcome := statusOutcome(c.Response().StatusCode())
	if outcome == "success" && c.Locals(partialIngestKey{}) != nil {
		outcome = "partial"
	}
	s.CountIngest(p.User, outcome)
}

// CountIngest counts one OTLP export received outside this server (the
// OTLP/gRPC trace receiver) in switchyard_otlp_ingest_requests_total, so
// that an account's exports add up whichever transport it uses.
func (s *Server) CountIngest(account, outcome string) {
	s.metrics.ingest.WithLabelValues(account, outcome).Inc()
}
