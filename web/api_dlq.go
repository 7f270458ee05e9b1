package web

import (
	"cmp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/dlqstore"
)

// The dead-letter JSON API: the same filters and access rules as the
// pages, errors in the platform contract.

// apiDLQEntry is an entry without its payload, as lists return it.
type apiDLQEntry struct {
	ID           int64  `json:"id"`
	Status       string `json:"status"`
	StatusReason string `json:"status_reason,omitempty"` // why an action or loop protection set the status
	RedriveJob   int64  `json:"redrive_job,omitempty"`   // the job that redrove the message before this failure
	// Outcome is what became of a redriven entry's message:
	// failed_again (as entry RefailedAs), watching (within the watch
	// window), not_seen_again; omitted when it was not redriven.
	// RefailureOf is, on a re-failure, the entry it was redriven from.
	Outcome        dlqstore.RedriveOutcome `json:"outcome,omitempty"`
	RefailedAs     int64                   `json:"refailed_as,omitempty"`
	RefailureOf    int64                   `json:"refailure_of,omitempty"`
	Broker         string                  `json:"broker"`
	Cluster        string                  `json:"cluster"`
	VHost          string                  `json:"vhost,omitempty"`
	Destination    string                  `json:"destination"` // the DLQ topic or queue
	Partition      *int32                  `json:"partition,omitempty"`
	Offset         *int64                  `json:"offset,omitempty"`
	MessageID      string                  `json:"message_id,omitempty"`
	Tenant         string                  `json:"tenant"`
	EventType      string                  `json:"event_type"`
	ErrorCode      string                  `json:"error_code"`
	ErrorMessage   string                  `json:"error_message"`
	ExceptionType  string                  `json:"exception_type,omitempty"`
	Fingerprint    string                  `json:"fingerprint"`
	GroupID        int64                   `json:"group_id"`
	Format         string                  `json:"format"`
	Origin         delivery.Location       `json:"origin"`
	Attempts       int                     `json:"attempts"`
	RedriveCount   int                     `json:"redrive_count"`
	FirstFailureAt time.Time               `json:"first_failure_at,omitzero"`
	LastFailureAt  time.Time               `json:"last_failure_at,omitzero"`
	CorrelationID  string                  `json:"correlation_id,omitempty"`
	TraceID        string                  `json:"trace_id,omitempty"`
	Flags          []string                `json:"flags"`
	PayloadSize    int                     `json:"payload_size"`
	PayloadHash    string                  `json:"payload_hash"`
	Truncated      bool                    `json:"truncated"`
	IndexedAt      time.Time               `json:"indexed_at,omitzero"`
}

func apiDLQEntryOf(e dlqstore.Entry, o dlqstore.RedriveOutcome) apiDLQEntry {
	out := apiDLQEntry{
		ID: e.ID, Status: string(e.Status), StatusReason: e.StatusReason, RedriveJob: e.RedriveJob, Broker: e.Broker, Cluster: e.Cluster, VHost: e.VHost, Destination: e.Destination,
		Outcome: o, RefailedAs: e.RefailedAs, RefailureOf: e.RefailureOf,
		MessageID: e.MessageID, Tenant: e.Tenant, EventType: e.EventType, ErrorCode: e.ErrorCode,
		ErrorMessage: e.DL.Error.Message, ExceptionType: e.DL.Error.ExceptionType, Fingerprint: e.Fingerprint,
		GroupID: e.GroupID, Format: string(e.DL.Format), Origin: e.DL.Origin, Attempts: e.DL.Attempts,
		RedriveCount: e.DL.RedriveCount, FirstFailureAt: e.DL.FirstFailureAt, LastFailureAt: e.DL.LastFailureAt,
		CorrelationID: correlationOf(e.DL), TraceID: traceOf(e.DL), Flags: e.Flags,
		PayloadSize: e.PayloadSize, PayloadHash: e.PayloadHash, Truncated: e.Truncated, IndexedAt: e.IndexedAt,
	}
	if out.Flags == nil {
		out.Flags = []string{}
	}
	if e.Broker == delivery.BrokerKafka {
		p, o := e.Partition, e.Offset
		out.Partition, out.Offset = &p, &o
	}
	return out
}

type dlqEntriesResponse struct {
	Entries     []apiDLQEntry `json:"entries"`
	NextCursor  string        `json:"next_cursor,omitempty"`
	Total       int           `json:"total"`
	TotalCapped bool          `json:"total_capped"` // total stopped counting at dlqstore.TotalCap
	// With q: the full-text columns searched, whether the index is still
	// being rebuilt for older entries, how many seconds text search lags
	// capture (0 when it is current; filters and totals never lag), and —
	// when nothing matched — the filters whose values hold the search's
	// words.
	Searched               []string           `json:"searched,omitempty"`
	TextIndexPending       bool               `json:"text_index_pending,omitempty"`
	TextIndexBehindSeconds *float64           `json:"text_index_behind_seconds,omitempty"`
	Suggestions            []apiDLQSuggestion `json:"suggestions,omitempty"`
}

// apiDLQSuggestion is a filter an empty search suggests: the query
// parameter and value, and how many entries (of any time) it holds.
type apiDLQSuggestion struct {
	Param string `json:"param"`
	Value string `json:"value"`
	Count int    `json:"count"`
}

// handleAPIDLQEntries lists entries, newest failure first.
func (s *Server) handleAPIDLQEntries(c *fiber.Ctx) error {
	eq, err := s.parseEntryQuery(c)
	if err != nil {
		return s.fail(c, err)
	}
	st, err := s.deadLetters()
	if err != nil {
		return s.fail(c, err)
	}
	page, err := st.FindEntries(c.UserContext(), callerOf(c), eq.Filter)
	if err != nil {
		return s.fail(c, err)
	}
	out := dlqEntriesResponse{Entries: []apiDLQEntry{}, NextCursor: page.Next, Total: page.Total, TotalCapped: page.TotalCapped,
		Searched: page.Searched, TextIndexPending: page.TextPending}
	if page.Searched != nil {
		behind := page.TextBehind.Round(time.Millisecond).Seconds()
		out.TextIndexBehindSeconds = &behind
	}
	for _, m := range page.Suggestions {
		out.Suggestions = append(out.Suggestions, apiDLQSuggestion{Param: m.Field, Value: m.Value, Count: m.Count})
	}
	for _, e := range page.Entries {
		out.Entries = append(out.Entries, apiDLQEntryOf(e, st.Outcome(e)))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// apiDLQEntryDetail adds the error context, the envelope's fields and —
// with read_payload — the key, headers, payload and the envelope's
// partition key (masked without read_pii; masked_fields counts the
// payload's and the key's): text when UTF-8, else base64. Without
// read_payload, withheld names what is left out.
type apiDLQEntryDetail struct {
	apiDLQEntry
	Error          delivery.ErrorInfo `json:"error"`
	Envelope       *apiEnvelope       `json:"envelope,omitempty"`
	EnvelopeError  string             `json:"envelope_error,omitempty"`
	DLQ            delivery.Location  `json:"dlq"`
	PayloadAllowed bool               `json:"payload_allowed"`
	Withheld       []string           `json:"withheld,omitempty"`
	MaskedFields   int                `json:"masked_fields"`
	Key            string             `json:"key,omitempty"`
	KeyBase64      []byte             `json:"key_base64,omitempty"`
	Headers        []apiHeader        `json:"headers,omitempty"`
	PayloadText    *string            `json:"payload_text,omitempty"`
	PayloadBase64  []byte             `json:"payload_base64,omitempty"`
}

// apiEnvelope is the envelope without its payload (which is in the
// payload fields, under the payload rules).
type apiEnvelope struct {
	ID            string      `json:"id"`
	Type          string      `json:"type"`
	OccurredAt    string      `json:"occurred_at"`
	Source        string      `json:"source"`
	CorrelationID string      `json:"correlation_id"`
	TraceID       string      `json:"trace_id"`
	Metadata      apiMetadata `json:"metadata"`
}

// apiMetadata is the envelope's metadata as the caller may see it: the
// partition key is absent without read_payload (see withheld) and masked
// without read_pii.
type apiMetadata struct {
	PartitionKey string `json:"partition_key,omitempty"`
	TenantID     string `json:"tenant_id"`
}

func (s *Server) handleAPIDLQEntry(c *fiber.Ctx) error {
	e, err := s.loadEntry(c)
	if err != nil {
		return s.fail(c, err)
	}
	dl := e.DL
	out := apiDLQEntryDetail{
		apiDLQEntry: apiDLQEntryOf(e.Entry, s.dlq.Outcome(e.Entry)), Error: dl.Error, EnvelopeError: dl.EnvelopeError, DLQ: dl.DLQ,
		PayloadAllowed: e.PayloadAllowed, MaskedFields: e.Masked, Withheld: e.Withheld,
	}
	if env := dl.Envelope; env != nil {
		out.Envelope = &apiEnvelope{ID: env.ID, Type: env.Type, OccurredAt: env.OccurredAt, Source: env.Source,
			CorrelationID: env.CorrelationID, TraceID: env.TraceID,
			Metadata: apiMetadata{PartitionKey: env.Metadata.PartitionKey, TenantID: env.Metadata.TenantID}}
	}
	if e.PayloadAllowed {
		if utf8.Valid(dl.Key) {
			out.Key = string(dl.Key)
		} else {
			out.KeyBase64 = dl.Key
		}
		out.Headers = []apiHeader{}
		for _, h := range dl.Headers {
			if utf8.Valid(h.Value) {
				out.Headers = append(out.Headers, apiHeader{Key: h.Key, Value: string(h.Value)})
			} else {
				out.Headers = append(out.Headers, apiHeader{Key: h.Key, ValueBase64: h.Value})
			}
		}
		if utf8.Valid(dl.Payload) {
			t := string(dl.Payload)
			out.PayloadText = &t
		} else {
			out.PayloadBase64 = dl.Payload
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// apiDLQGroup is a failure group over the caller's tenant scope.
type apiDLQGroup struct {
	ID            int64        `json:"id"`
	Fingerprint   string       `json:"fingerprint"`
	Title         string       `json:"title"`
	ErrorCode     string       `json:"error_code"`
	EventType     string       `json:"event_type"`
	ExceptionType string       `json:"exception_type"`
	Count         int          `json:"count"`
	Open          int          `json:"open"`
	FailedAgain   int          `json:"failed_again"` // redriven entries whose message failed again: counted once, as their re-failure, not in count
	FirstSeen     time.Time    `json:"first_seen,omitzero"`
	LastSeen      time.Time    `json:"last_seen,omitzero"`
	Destinations  []string     `json:"destinations"`
	Tenants       []string     `json:"tenants"`
	Triage        apiDLQTriage `json:"triage"`
}

type apiDLQTriage struct {
	State        string    `json:"state"`
	Owner        string    `json:"owner,omitempty"`
	Note         string    `json:"note,omitempty"`
	SnoozedUntil time.Time `json:"snoozed_until,omitzero"`
	UpdatedBy    string    `json:"updated_by,omitempty"`
	UpdatedAt    time.Time `json:"updated_at,omitzero"`
}

func apiDLQGroupOf(g dlqstore.Group) apiDLQGroup {
	out := apiDLQGroup{
		ID: g.ID, Fingerprint: g.Fingerprint, Title: g.Title, ErrorCode: g.ErrorCode, EventType: g.EventType,
		ExceptionType: g.ExceptionType, Count: g.Count, Open: g.Open, FailedAgain: g.FailedAgain, FirstSeen: g.FirstSeen, LastSeen: g.LastSeen,
		Destinations: g.Destinations, Tenants: g.Tenants,
		Triage: apiDLQTriage{State: g.Triage.State, Owner: g.Triage.Owner, Note: g.Triage.Note,
			SnoozedUntil: g.Triage.SnoozedUntil, UpdatedBy: g.Triage.UpdatedBy, UpdatedAt: g.Triage.UpdatedAt},
	}
	if out.Destinations == nil {
		out.Destinations = []string{}
	}
	if out.Tenants == nil {
		out.Tenants = []string{}
	}
	return out
}

type dlqGroupsResponse struct {
	Groups     []apiDLQGroup `json:"groups"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// handleAPIDLQGroups lists groups: state, broker, destination, q, sort
// (count, last_seen), limit, cursor.
func (s *Server) handleAPIDLQGroups(c *fiber.Ctx) error {
	st, err := s.deadLetters()
	if err != nil {
		return s.fail(c, err)
	}
	q := queryOf(c)
	f := dlqstore.GroupFilter{
		State:  strings.TrimSpace(q.Get("state")),
		Broker: strings.TrimSpace(q.Get("broker")), Destination: strings.TrimSpace(q.Get("destination")),
		Q: strings.TrimSpace(q.Get("q")), Sort: cmp.Or(strings.TrimSpace(q.Get("sort")), "count"),
		Cursor: strings.TrimSpace(q.Get("cursor")),
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 500 {
			return s.fail(c, delivery.Errorf(delivery.EINVALID, "limit must be 1 to 500"))
		}
	}
	groups, next, err := st.Groups(c.UserContext(), callerOf(c), f)
	if err != nil {
		return s.fail(c, err)
	}
	out := dlqGroupsResponse{Groups: []apiDLQGroup{}, NextCursor: next}
	for _, g := range groups {
		out.Groups = append(out.Groups, apiDLQGroupOf(g))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// handleAPIDLQTriage sets a group's triage state from a JSON body
// {state, owner, note, snoozed_until} and returns the group.
func (s *Server) handleAPIDLQTriage(c *fiber.Ctx) error {
	var in triageInput
	if err := c.BodyParser(&in); err != nil {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "body must be JSON: {state, owner, note, snoozed_until}"))
	}
	g, err := s.setTriage(c, in)
	if err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(apiDLQGroupOf(g))
}
