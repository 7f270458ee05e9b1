package delivery

import (
	"fmt"
	"strings"
)

// PoisonRules decide which messages no retry or redrive can fix (platform
// standard, "Poison-pill detection and quarantine"). Consumer runners call
// Check before the handler so that such a message is dead-lettered at once
// instead of burning retries; the console calls Classify to propose
// quarantine instead of another redrive. The zero value is the default:
// 1 MiB and 3 redrives.
type PoisonRules struct {
	// MaxPayloadBytes is the largest body accepted; ≤ 0 means 1 MiB.
	MaxPayloadBytes int
	// MaxRedrives is how many redrives a dead letter gets before it is
	// proposed for quarantine; ≤ 0 means 3.
	MaxRedrives int
}

// Defaults of the zero PoisonRules.
const (
	DefaultMaxPayloadBytes = 1 << 20
	DefaultMaxRedrives     = 3
)

func (r PoisonRules) withDefaults() PoisonRules {
	if r.MaxPayloadBytes <= 0 {
		r.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if r.MaxRedrives <= 0 {
		r.MaxRedrives = DefaultMaxRedrives
	}
	return r
}

// Check parses body as an envelope and returns it when it is a message a
// handler can work on. Otherwise the error is permanent (IsPermanent
// reports true, ErrorInfoOf gives its code):
//
//   - *Error PAYLOAD_TOO_LARGE: the body is over MaxPayloadBytes;
//   - *Error UNDECODABLE: the body is empty, not UTF-8 or not a JSON envelope;
//   - *ValidationError (VALIDATION_FAILED): the envelope breaks the schema.
//     The parsed envelope is returned with it, for metrics and logs.
func (r PoisonRules) Check(body []byte) (Envelope, error) {
	r = r.withDefaults()
	if len(body) > r.MaxPayloadBytes {
		return Envelope{}, &Error{
			Code:      CodePayloadTooLarge,
			Message:   fmt.Sprintf("payload is %d bytes, over the limit of %d bytes", len(body), r.MaxPayloadBytes),
			Details:   map[string]any{"size": len(body), "limit": r.MaxPayloadBytes},
			Permanent: true,
		}
	}
	if len(body) == 0 {
		return Envelope{}, &Error{Code: CodeUndecodable, Message: "payload is empty", Permanent: true}
	}
	if !utf8Valid(body) {
		return Envelope{}, &Error{Code: CodeUndecodable, Message: "payload is not UTF-8", Permanent: true}
	}
	env, err := ParseEnvelope(body)
	if err != nil {
		return Envelope{}, &Error{Code: CodeUndecodable, Message: "payload is not a JSON envelope", Permanent: true, Cause: err}
	}
	if err := env.Validate(); err != nil {
		return env, err
	}
	return env, nil
}

// Classify says whether a dead letter should be quarantined rather than
// redriven, with a one-line reason for the console. Poison is: a payload
// over the limit, a payload that is not an envelope, an envelope that
// breaks the schema, a failure the handler itself declared undecodable,
// too large or invalid, or a message redriven MaxRedrives times already.
func (r PoisonRules) Classify(dl DeadLetter) (poison bool, reason string) {
	r = r.withDefaults()
	switch {
	case len(dl.Payload) > r.MaxPayloadBytes:
		return true, fmt.Sprintf("payload is %d bytes, over the %d-byte limit", len(dl.Payload), r.MaxPayloadBytes)
	case dl.Envelope == nil:
		why := dl.EnvelopeError
		if why == "" {
			why = "payload is not an envelope"
		}
		return true, "undecodable: " + why
	case dl.EnvelopeError != "":
		return true, "schema-invalid: " + strings.TrimPrefix(dl.EnvelopeError, "invalid envelope: ")
	}
	switch dl.Error.Code {
	case CodeUndecodable, CodePayloadTooLarge, CodeValidationFailed:
		msg := dl.Error.Message
		if msg == "" {
			msg = "no message"
		}
		return true, fmt.Sprintf("handler failed it with %s: %s", dl.Error.Code, firstLine(msg))
	}
	if dl.RedriveCount >= r.MaxRedrives {
		return true, fmt.Sprintf("redriven %d times (limit %d) and still failing", dl.RedriveCount, r.MaxRedrives)
	}
	return false, ""
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
