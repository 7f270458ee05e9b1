package delivery

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Envelope is the platform message schema, field for field
// (platform-standard.md, "Message schema").
type Envelope struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	OccurredAt    string          `json:"occurred_at"`
	Source        string          `json:"source"`
	CorrelationID string          `json:"correlation_id"`
	TraceID       string          `json:"trace_id"`
	Payload       json.RawMessage `json:"payload"`
	Metadata      Metadata        `json:"metadata"`
}

// Metadata carries routing and tenancy.
type Metadata struct {
	PartitionKey string `json:"partition_key"`
	TenantID     string `json:"tenant_id"`
}

// NewEnvelope returns an envelope with a fresh UUID id, occurred_at set to
// now (UTC, RFC 3339 with nanoseconds) and the given fields. The correlation
// id defaults to the id; trace_id is left to the publisher, which fills it
// from the active span when empty.
func NewEnvelope(eventType, source string, payload any, md Metadata) (Envelope, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Envelope{}, fmt.Errorf("marshal payload: %w", err)
	}
	id := uuid.NewString()
	return Envelope{
		ID:            id,
		Type:          eventType,
		OccurredAt:    time.Now().UTC().Format(time.RFC3339Nano),
		Source:        source,
		CorrelationID: id,
		Payload:       raw,
		Metadata:      md,
	}, nil
}

// ParseEnvelope decodes a JSON envelope. It fails only when the bytes are
// not a JSON object of the envelope's shape; call Validate for the rules.
func ParseEnvelope(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	return e, nil
}

// Time returns occurred_at parsed, or the zero time when it is invalid.
func (e Envelope) Time() time.Time {
	t, err := time.Parse(time.RFC3339Nano, e.OccurredAt)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Violation is one broken rule of a value, named by its JSON path.
type Violation struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every violation found at once, so that a producer
// fixes all of them in one go.
type ValidationError struct {
	Violations []Violation
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Field + ": " + v.Message
	}
	return "invalid envelope: " + strings.Join(parts, "; ")
}

// Body returns the error in the platform error contract, code
// VALIDATION_FAILED, one detail per field.
func (e *ValidationError) Body() ErrorBody {
	d := make(map[string]any, len(e.Violations))
	for _, v := range e.Violations {
		d[v.Field] = v.Message
	}
	return ErrorBody{Code: CodeValidationFailed, Message: e.Error(), Details: d}
}

// ValidEventType reports whether t is dotted lower-case ending in .vN (at
// least one name segment before the version): the grammar
// [a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.v[1-9][0-9]*. A hand-written scan,
// because it runs for every message published and consumed.
func ValidEventType(t string) bool {
	dot := strings.LastIndexByte(t, '.')
	if dot <= 0 {
		return false
	}
	ver := t[dot+1:]
	if len(ver) < 2 || ver[0] != 'v' || ver[1] < '1' || ver[1] > '9' {
		return false
	}
	for i := 2; i < len(ver); i++ {
		if ver[i] < '0' || ver[i] > '9' {
			return false
		}
	}
	start := true
	for i := 0; i < dot; i++ {
		c := t[i]
		switch {
		case c == '.':
			if start {
				return false
			}
			start = true
		case c >= 'a' && c <= 'z':
			start = false
		case (c >= '0' && c <= '9') || c == '_':
			if start {
				return false
			}
		default:
			return false
		}
	}
	return !start
}

// Validate checks the envelope against the platform schema and returns a
// *ValidationError listing every violation, or nil.
func (e Envelope) Validate() error {
	var vs []Violation
	add := func(f, m string) { vs = append(vs, Violation{Field: f, Message: m}) }
	if e.ID == "" {
		add("id", "required")
	} else if _, err := uuid.Parse(e.ID); err != nil || len(e.ID) != 36 {
		add("id", "must be a UUID")
	}
	switch {
	case e.Type == "":
		add("type", "required")
	case !ValidEventType(e.Type):
		add("type", "must be dotted lower-case ending in .vN, e.g. order.created.v1")
	}
	if e.OccurredAt == "" {
		add("occurred_at", "required")
	} else if _, err := time.Parse(time.RFC3339Nano, e.OccurredAt); err != nil {
		add("occurred_at", "must be an RFC 3339 timestamp")
	}
	if strings.TrimSpace(e.Source) == "" {
		add("source", "required")
	}
	if strings.TrimSpace(e.CorrelationID) == "" {
		add("correlation_id", "required")
	}
	if strings.TrimSpace(e.TraceID) == "" {
		add("trace_id", "required")
	}
	if len(e.Payload) == 0 || string(e.Payload) == "null" {
		add("payload", "required")
	} else if !json.Valid(e.Payload) {
		add("payload", "must be valid JSON")
	}
	if strings.TrimSpace(e.Metadata.PartitionKey) == "" {
		add("metadata.partition_key", "required")
	}
	if strings.TrimSpace(e.Metadata.TenantID) == "" {
		add("metadata.tenant_id", "required")
	}
	if len(vs) == 0 {
		return nil
	}
	return &ValidationError{Violations: vs}
}
