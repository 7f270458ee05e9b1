package dlq

import (
	"context"
	"fmt"
	"strconv"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

// What an entry withholds from a caller without read_payload, by the
// names the JSON API reports them under.
const (
	WithheldPayload      = "payload"
	WithheldKey          = "key"
	WithheldHeaders      = "headers"
	WithheldPartitionKey = "envelope.metadata.partition_key" // part of the message, like the key it usually is
)

// Entry is a dead letter as its caller may see it. The embedded entry's
// record holds the message as shown: DL.Payload, DL.Key and the
// envelope's metadata are masked without read_pii (Masked counts the
// values masked in the payload and the key) and left out without
// read_payload (Withheld names them); the envelope's own payload, the
// same bytes as DL.Payload unmasked, is never kept. DL.Headers stay,
// since the correlation and trace ids every caller sees come from them;
// they are shown only with PayloadAllowed.
type Entry struct {
	dlqstore.Entry
	PayloadAllowed bool // read_payload on the entry's resource and tenant
	Masked         int
	Withheld       []string
	// PayloadKept is how many bytes of the payload the index keeps (the
	// first ones of a payload too large to keep whole), whatever is shown.
	PayloadKept int
}

// shown applies read_payload and read_pii for the entry's resource r and
// tenant: the payload, key and metadata withheld or masked (by the entry's
// event type: the envelope's, else its event_type header).
func (s *Service) shown(c Caller, e dlqstore.Entry, r access.Resource) Entry {
	out := Entry{PayloadKept: len(e.DL.Payload)}
	dl := &e.DL
	var md delivery.Metadata
	if dl.Envelope != nil {
		md = dl.Envelope.Metadata
	}
	switch {
	case !s.policy.Can(c.P, access.ActionReadPayload, r):
		out.Withheld = []string{WithheldPayload, WithheldKey, WithheldHeaders}
		if md.PartitionKey != "" {
			out.Withheld = append(out.Withheld, WithheldPartitionKey)
		}
		dl.Payload, dl.Key = nil, nil
		md = delivery.Metadata{TenantID: md.TenantID}
	case !s.policy.Can(c.P, access.ActionReadPII, r) && s.masker != nil:
		out.PayloadAllowed = true
		dl.Payload, out.Masked = s.masker.MaskMessage(e.EventType, dl.Payload)
		var keyMasked bool
		if dl.Key, keyMasked = s.masker.MaskKey(e.EventType, dl.Key); keyMasked {
			out.Masked++
		}
		md, _ = s.masker.MaskMetadata(e.EventType, md) // the same values as in the payload: counted there
	default:
		out.PayloadAllowed = true
	}
	if dl.Envelope != nil {
		env := *dl.Envelope
		env.Payload, env.Metadata = nil, md
		dl.Envelope = &env
	}
	out.Entry = e
	return out
}

// auditRead records a payload shown to the caller as payload.read, when
// the console audits reads.
func (s *Service) auditRead(ctx context.Context, c Caller, e Entry, r access.Resource) error {
	if !s.auditReads || s.audit == nil {
		return nil
	}
	ev := s.event(c, "payload.read", r.Name, access.OutcomeSuccess)
	ev.Tenant = e.Tenant
	ev.AffectedIDs = []string{strconv.FormatInt(e.ID, 10)}
	ev.Details = map[string]any{"route": c.Route, "dead_letter": e.ID, "masked_fields": e.Masked}
	if err := s.audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("audit payload read: %w", err)
	}
	return nil
}
