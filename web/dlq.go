package web

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/indexer"
	"switchyard/web/templates"
)

// The dead-letter area: failure groups (the landing page), the entries
// list, an entry's detail, triage, and their JSON API. Access works in two
// layers. Routes that list ask only for view on "*"; every list is then
// computed over the principal's tenant scope inside the store (so counts,
// totals and groups never include another tenant's entries), and entry rows
// are further filtered with Can on the entry's resource — its ORIGIN
// destination (kafka:<cluster>/<topic> or rabbitmq:<vhost>/<queue>) with
// its tenant. An entry the principal may not view answers 404, never 403,
// so that its existence does not leak. Triage changes shared state of a
// cause that may span tenants and destinations: it is redrive on
// console:dlq (operators and admins bound to it).

// DeadLetters is the dead-letter index the pages read. *dlqstore.Store
// implements it. Errors: EINVALID (bad filter, cursor or full-text query,
// bad triage), ENOTFOUND.
type DeadLetters interface {
	FindEntries(ctx context.Context, f dlqstore.Filter) (dlqstore.Page, error)
	Entry(ctx context.Context, id int64) (dlqstore.Entry, error)
	Groups(ctx context.Context, f dlqstore.GroupFilter) ([]dlqstore.Group, string, error)
	Group(ctx context.Context, id int64, scope *dlqstore.TenantScope) (dlqstore.Group, error)
	SetTriage(ctx context.Context, id int64, t dlqstore.Triage) (dlqstore.Group, error)
	Trend(ctx context.Context, groupID int64, scope *dlqstore.TenantScope, from, to time.Time, step time.Duration) ([]int, error)
	Counts(ctx context.Context, scope *dlqstore.TenantScope) (dlqstore.Counts, error)
	SourceCounts(ctx context.Context, scope *dlqstore.TenantScope) ([]dlqstore.SourceCount, error)
}

// IndexerStatus reports the dead-letter sources being indexed. The
// console's indexers implement it.
type IndexerStatus interface {
	Status() []indexer.SourceStatus
}

// PayloadMasker hides PII in dead letters: an envelope's payload and
// metadata by its type, a bare payload by the entry's event type, the
// record key, and the envelope metadata shown beside the payload.
// *access.Masker implements it.
type PayloadMasker interface {
	MaskPayload(eventType string, payload []byte) ([]byte, int)
	MaskEnvelope(raw []byte) ([]byte, int)
	MaskMessage(eventType string, value []byte) ([]byte, int)
	MaskKey(eventType string, key []byte) ([]byte, bool)
	MaskMetadata(eventType string, md delivery.Metadata) (delivery.Metadata, int)
}

var (
	_ DeadLetters   = (*dlqstore.Store)(nil)
	_ PayloadMasker = (*access.Masker)(nil)
)

// dlqResource is the console resource that triage is checked on.
const dlqResource = "console:dlq"

func (s *Server) deadLetters() (DeadLetters, error) {
	if s.dlq == nil {
		return nil, delivery.Errorf(delivery.ENOTFOUND, "the dead-letter index is not configured")
	}
	return s.dlq, nil
}

// dlqScope is what the principal may view of the dead letters: the
// tenants of their view grants and, when some grant covers only some
// resources (kafka:prod/orders.*), the grants themselves as rules, so that
// the store computes entries, groups, counts and totals over exactly that.
func (s *Server) dlqScope(p *access.Principal) *dlqstore.TenantScope {
	sc := toTenantScope(s.policy.Scope(p, access.ActionView, "*"))
	rules := s.policy.Rules(p, access.ActionView)
	for _, r := range rules {
		if !slices.Contains(r.Resources, "*") {
			sc.Rules = rules
			break
		}
	}
	return sc
}

func toTenantScope(sc access.Scope) *dlqstore.TenantScope {
	if sc.All {
		return &dlqstore.TenantScope{All: true}
	}
	return &dlqstore.TenantScope{Tenants: slices.Clone(sc.Tenants)}
}

// entryResource is what an entry is checked against (the store's
// Entry.Resource, the same the store's rules filter on): its origin
// destination when known, else the dead-letter topic or queue itself, with
// the entry's tenant.
func entryResource(e dlqstore.Entry) access.Resource {
	r := access.Res(e.Resource)
	r.Tenant = e.Tenant
	return r
}

// canSeeEntry: view on the entry's resource and tenant.
func (s *Server) canSeeEntry(p *access.Principal, e dlqstore.Entry) bool {
	return s.policy.Can(p, access.ActionView, entryResource(e))
}

// loadEntry reads an entry the principal may view; anything else is the
// same 404 as a missing id.
func (s *Server) loadEntry(c *fiber.Ctx) (dlqstore.Entry, error) {
	st, err := s.deadLetters()
	if err != nil {
		return dlqstore.Entry{}, err
	}
	raw := param(c, "id")
	notFound := delivery.Errorf(delivery.ENOTFOUND, "dead letter %s not found", raw)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return dlqstore.Entry{}, notFound
	}
	e, err := st.Entry(c.UserContext(), id)
	if err != nil {
		if delivery.ErrorCode(err) == delivery.ENOTFOUND {
			return dlqstore.Entry{}, notFound
		}
		return dlqstore.Entry{}, err
	}
	if !s.canSeeEntry(principal(c), e) {
		return dlqstore.Entry{}, notFound
	}
	return e, nil
}

// entryQuery is the filter of the entries page and API, as read from the
// query string, with the values to show back in the form.
type entryQuery struct {
	Filter    dlqstore.Filter
	Statuses  []string
	From, To  string // as typed
	Range     string // range picker key, "" = none
	GroupID   string
	LimitText string
}

// parseEntryQuery reads status (repeatable or comma-separated), broker,
// cluster, destination, event_type, error_code, tenant, from, to (RFC 3339
// or Unix seconds) or range (15m … 7d), group, q, limit and cursor.
// Errors are EINVALID.
func (s *Server) parseEntryQuery(c *fiber.Ctx) (entryQuery, error) {
	var eq entryQuery
	args := queryOf(c)
	f := &eq.Filter
	for _, v := range args["status"] {
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			if st == "" {
				continue
			}
			if !dlqstore.Status(st).Valid() {
				return eq, delivery.Errorf(delivery.EINVALID, "status %q: want dead, redriving, redriven, quarantined, discarded or resolved", st)
			}
			if !slices.Contains(eq.Statuses, st) {
				eq.Statuses = append(eq.Statuses, st)
				f.Status = append(f.Status, dlqstore.Status(st))
			}
		}
	}
	get := func(k string) string { return strings.TrimSpace(args.Get(k)) }
	f.Broker, f.Cluster, f.Destination = get("broker"), get("cluster"), get("destination")
	f.EventType, f.ErrorCode, f.Tenant = get("event_type"), get("error_code"), get("tenant")
	switch f.Broker {
	case "", delivery.BrokerKafka, delivery.BrokerRabbitMQ:
	default:
		return eq, delivery.Errorf(delivery.EINVALID, "broker must be kafka or rabbitmq")
	}
	f.Q = get("q")
	if len(f.Q) > 500 {
		return eq, delivery.Errorf(delivery.EINVALID, "the search is too long (500 characters at most)")
	}
	f.Cursor = get("cursor")
	eq.From, eq.To, eq.Range = get("from"), get("to"), get("range")
	if eq.Range != "" {
		tr, err := parseRange(eq.Range, s.now())
		if err != nil {
			return eq, err
		}
		f.From, f.To = tr.From, time.Time{}
	}
	var err error
	if eq.From != "" {
		if f.From, err = parseFormTime("from", eq.From); err != nil {
			return eq, err
		}
	}
	if eq.To != "" {
		if f.To, err = parseFormTime("to", eq.To); err != nil {
			return eq, err
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return eq, delivery.Errorf(delivery.EINVALID, "to must be after from")
	}
	if eq.GroupID = get("group"); eq.GroupID != "" {
		if f.GroupID, err = strconv.ParseInt(eq.GroupID, 10, 64); err != nil || f.GroupID <= 0 {
			return eq, delivery.Errorf(delivery.EINVALID, "group must be a failure group id")
		}
	}
	if eq.LimitText = get("limit"); eq.LimitText != "" {
		if f.Limit, err = strconv.Atoi(eq.LimitText); err != nil || f.Limit < 1 || f.Limit > 500 {
			return eq, delivery.Errorf(delivery.EINVALID, "limit must be 1 to 500")
		}
	}
	// The store's own checks (control characters, cursor, lengths) before
	// anything is shown back in the form.
	return eq, f.Validate()
}

// parseFormTime accepts what parseTime does plus the browser's
// datetime-local value (taken as UTC).
func parseFormTime(name, v string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return inRange(name, t.UTC())
		}
	}
	return parseTime(name, v)
}

// findEntries runs the entries query for the principal: the tenant scope
// goes into the store filter, the full-text search is kept off payload
// text the principal may not read in full, and rows the principal may not
// view on their resource are dropped.
func (s *Server) findEntries(c *fiber.Ctx, f dlqstore.Filter) (dlqstore.Page, error) {
	st, err := s.deadLetters()
	if err != nil {
		return dlqstore.Page{}, err
	}
	p := principal(c)
	f.Tenants = s.dlqScope(p)
	orig := f.Q
	if orig != "" && !s.mayProbePayloads(p) {
		if f.Q, err = withoutPayloadColumn(orig); err != nil {
			return dlqstore.Page{}, err
		}
	}
	page, err := st.FindEntries(c.UserContext(), f)
	if err != nil {
		if f.Q != orig && delivery.ErrorCode(err) == delivery.EINVALID {
			// Say what is wrong with what the user typed, not with our
			// rewrite of it.
			msg := strings.ReplaceAll(delivery.ErrorMessage(err), strconv.Quote(f.Q), strconv.Quote(orig))
			return dlqstore.Page{}, delivery.Errorf(delivery.EINVALID, "%s", msg)
		}
		return dlqstore.Page{}, err
	}
	kept := page.Entries[:0]
	for _, e := range page.Entries {
		if s.canSeeEntry(p, e) {
			kept = append(kept, e)
		}
	}
	page.Entries = kept
	return page, nil
}

// mayProbePayloads: the full-text index holds payload text unmasked, so
// searching it would tell a principal whether a masked field (or a body
// they may not read) holds a value. Only principals who may read payloads
// and PII in every tenant they can view search the payload column. That
// column is the whole record value, so it also guards the envelope's
// metadata (partition_key); record keys are not indexed at all (the ids
// column holds entry, envelope, correlation, trace and message ids only:
// dlqstore idsText), so a masked key cannot be probed by search either.
func (s *Server) mayProbePayloads(p *access.Principal) bool {
	view := s.policy.Scope(p, access.ActionView, "*")
	for _, a := range []access.Action{access.ActionReadPayload, access.ActionReadPII} {
		if !covers(s.policy.Scope(p, a, "*"), view) {
			return false
		}
	}
	return true
}

func covers(a, b access.Scope) bool {
	if a.All {
		return true
	}
	if b.All {
		return false
	}
	for _, t := range b.Tenants {
		if !a.Allows(t) {
			return false
		}
	}
	return true
}

// withoutPayloadColumn restricts a full-text query to the error message,
// exception type and ids columns. The query must be balanced, so that the
// wrapping parentheses cannot be closed early to search elsewhere.
func withoutPayloadColumn(q string) (string, error) {
	depth, inQuote := 0, false
	for i := 0; i < len(q); i++ {
		switch ch := q[i]; {
		case ch == '"':
			inQuote = !inQuote // "" inside a phrase toggles twice
		case inQuote:
		case ch == '(':
			depth++
		case ch == ')':
			depth--
			if depth < 0 {
				return "", delivery.Errorf(delivery.EINVALID, "search: unbalanced parenthesis in %q", q)
			}
		}
	}
	if inQuote {
		return "", delivery.Errorf(delivery.EINVALID, "search: unbalanced quote in %q", q)
	}
	if depth != 0 {
		return "", delivery.Errorf(delivery.EINVALID, "search: unbalanced parenthesis in %q", q)
	}
	if strings.Contains(strings.ToLower(q), "payload:") {
		return "", delivery.Errorf(delivery.EINVALID, "search: you may not search payload text (payload:) in %q", q)
	}
	return fmt.Sprintf("message:(%s) OR exception:(%s) OR ids:(%s)", q, q, q), nil
}

// payloadView is what the principal may see of an entry's message: the
// payload, the key and the envelope's metadata.
type payloadView struct {
	Allowed bool   // read_payload on the entry
	Body    []byte // masked unless read_pii
	Key     []byte // masked unless read_pii
	// Metadata is the envelope's metadata as shown: masked unless
	// read_pii; without read_payload only the tenant, the partition key
	// being part of the message (withheld).
	Metadata delivery.Metadata
	Masked   int // values masked in Body and Key
}

// entryPayload applies read_payload and read_pii for the entry's resource
// and tenant, and audits the read when configured.
func (s *Server) entryPayload(c *fiber.Ctx, e dlqstore.Entry) (payloadView, error) {
	p := principal(c)
	r := entryResource(e)
	var md delivery.Metadata
	if e.DL.Envelope != nil {
		md = e.DL.Envelope.Metadata
	}
	if !s.policy.Can(p, access.ActionReadPayload, r) {
		return payloadView{Metadata: delivery.Metadata{TenantID: md.TenantID}}, nil
	}
	pv := payloadView{Allowed: true, Body: e.DL.Payload, Key: e.DL.Key, Metadata: md}
	if !s.policy.Can(p, access.ActionReadPII, r) {
		pv = s.maskPayload(e, pv)
	}
	if s.auditReads && s.audit != nil {
		ev := s.auditEvent(c, p, "payload.read", r.Name, access.OutcomeSuccess)
		ev.Tenant = e.Tenant
		ev.AffectedIDs = []string{strconv.FormatInt(e.ID, 10)}
		ev.Details = map[string]any{"route": routeOf(c), "dead_letter": e.ID, "masked_fields": pv.Masked}
		if err := s.audit.Append(c.UserContext(), ev); err != nil {
			return payloadView{}, err
		}
	}
	return pv, nil
}

// maskPayload masks the payload, key and metadata of pv as the entry's
// event type (the envelope's, else its event_type header) says.
func (s *Server) maskPayload(e dlqstore.Entry, pv payloadView) payloadView {
	if s.masker == nil {
		return pv
	}
	pv.Body, pv.Masked = s.masker.MaskMessage(e.EventType, pv.Body)
	var keyMasked bool
	if pv.Key, keyMasked = s.masker.MaskKey(e.EventType, pv.Key); keyMasked {
		pv.Masked++
	}
	pv.Metadata, _ = s.masker.MaskMetadata(e.EventType, pv.Metadata) // the same values as in Body: counted there
	return pv
}

// mayTriage reports whether the principal may change triage state, as the
// triage routes require.
func (s *Server) mayTriage(p *access.Principal) bool {
	return s.policy.Can(p, access.ActionRedrive, access.Res(dlqResource))
}

// correlationOf and traceOf read the ids from the envelope, else from the
// propagation headers.
func correlationOf(dl delivery.DeadLetter) string {
	if dl.Envelope != nil && dl.Envelope.CorrelationID != "" {
		return dl.Envelope.CorrelationID
	}
	return dl.Headers.String(delivery.HeaderCorrelationID)
}

func traceOf(dl delivery.DeadLetter) string {
	if dl.Envelope != nil && dl.Envelope.TraceID != "" {
		return dl.Envelope.TraceID
	}
	parts := strings.Split(dl.Headers.String(delivery.HeaderTraceparent), "-")
	if len(parts) == 4 && len(parts[1]) == 32 {
		return parts[1]
	}
	return ""
}

// truncateText cuts s to n runes with an ellipsis.
func truncateText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// totalText is a page's total: exact, or "10,000+" when the count stopped
// at its cap.
func totalText(total int, capped bool) string {
	s := templates.Exact(int64(total))
	if capped {
		s += "+"
	}
	return s
}

// openOf counts the entries still needing attention.
func openOf(c dlqstore.Counts) int {
	return c.ByStatus[dlqstore.StatusDead] + c.ByStatus[dlqstore.StatusQuarantined]
}

// dlqBadge is the count on the navigation entry: open entries in the
// principal's scope, from the store's running totals (no scan).
func (s *Server) dlqBadge(c *fiber.Ctx, p *access.Principal) string {
	if s.dlq == nil {
		return ""
	}
	counts, err := s.dlq.Counts(c.UserContext(), s.dlqScope(p))
	if err != nil {
		s.log.Warn("dead-letter counts for the navigation", "request_id", requestIDOf(c), "err", err)
		return ""
	}
	if n := openOf(counts); n > 0 {
		return templates.Count(int64(n))
	}
	return ""
}
