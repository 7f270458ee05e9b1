package dlq

import (
	"context"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

// FindEntries pages the entries of f that the caller may view: their
// scope goes into the store's query (f.Tenants is replaced), so every page
// but the last is full and the total counts only their entries, and the
// text of f.Q is kept off payloads unless they may search them. A text
// search that finds nothing suggests, in the same scope, the error codes,
// event types and DLQs whose names hold its words (Page.Suggestions, at
// most maxSuggestions of each). Errors: EINVALID (a bad filter, cursor or
// search, named as typed).
func (s *Service) FindEntries(ctx context.Context, c Caller, f dlqstore.Filter) (dlqstore.Page, error) {
	f.Tenants = s.scope(c)
	f.NoPayloadText = !dlqstore.MaySearchPayloads(s.policy, c.P)
	page, err := s.store.FindEntries(ctx, f)
	if err != nil || len(page.Entries) > 0 || f.Cursor != "" || f.Q == "" {
		return page, err
	}
	page.Suggestions, err = s.store.FieldMatches(ctx, f, dlqstore.SearchTerms(f.Q), maxSuggestions)
	return page, err
}

// maxSuggestions bounds the suggestions of an empty search, per field.
const maxSuggestions = 3

// Entry is one dead letter as the caller may see it (see payload.go), the
// payload read audited. An entry the caller may not view — view on its
// resource (dlqstore.Entry.Resource) in its tenant — is ENOTFOUND like a
// missing id, so that the answer does not tell it exists. Errors:
// ENOTFOUND, and the audit log's.
func (s *Service) Entry(ctx context.Context, c Caller, id int64) (Entry, error) {
	notFound := delivery.Errorf(delivery.ENOTFOUND, "dead letter %d not found", id)
	if id <= 0 {
		return Entry{}, notFound
	}
	e, err := s.store.Entry(ctx, id)
	if delivery.ErrorCode(err) == delivery.ENOTFOUND {
		return Entry{}, notFound
	}
	if err != nil {
		return Entry{}, err
	}
	r := resourceOf(e)
	if !s.policy.Can(c.P, access.ActionView, r) {
		return Entry{}, notFound
	}
	out := s.shown(c, e, r)
	if out.PayloadAllowed {
		if err := s.auditRead(ctx, c, out, r); err != nil {
			return Entry{}, err
		}
	}
	return out, nil
}

// resourceOf is what an entry is checked against: the resource the store
// filters lists on (its origin topic or queue when known, else its DLQ),
// with the entry's tenant.
func resourceOf(e dlqstore.Entry) access.Resource {
	r := access.Res(e.Resource)
	r.Tenant = e.Tenant
	return r
}
