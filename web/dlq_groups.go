package web

import (
	"cmp"
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/web/templates"
)

// groupsPerPage is the page size of the failure groups.
const groupsPerPage = 25

// trendBuckets is the number of points of a group's sparkline.
const trendBuckets = 24

// dlqNotConfigured is the body of the dead-letter pages without an index.
func (s *Server) dlqNotConfigured(c *fiber.Ctx) error {
	return s.render(c, templates.Page{Title: "Dead letters", Area: templates.AreaDeadLetters},
		templates.Empty("dlq-not-configured", "The dead-letter index is not configured", "Start the console with a data directory to index dead-letter topics and queues."))
}

// groupsRange is the trend window: ?range=, 24h by default.
func (s *Server) groupsRange(c *fiber.Ctx) (timeRange, error) {
	key := c.Query("range")
	tr, err := parseRange(cmp.Or(key, "24h"), s.now())
	tr.Explicit = key != ""
	return tr, err
}

// handleDeadLetters is the landing page: failure groups over the
// principal's tenant scope, each with its trend over the range.
func (s *Server) handleDeadLetters(c *fiber.Ctx) error {
	st, err := s.deadLetters()
	if err != nil {
		return s.dlqNotConfigured(c)
	}
	tr, err := s.groupsRange(c)
	if err != nil {
		return s.fail(c, err)
	}
	p := principal(c)
	scope := s.dlqScope(p)
	ctx := c.UserContext()
	q := queryOf(c)
	f := templates.GroupFilterForm{
		State: strings.TrimSpace(q.Get("state")), Broker: strings.TrimSpace(q.Get("broker")),
		Destination: strings.TrimSpace(q.Get("destination")), Q: strings.TrimSpace(q.Get("q")),
		Sort: cmp.Or(strings.TrimSpace(q.Get("sort")), "count"),
	}
	if tr.Explicit {
		f.Range = tr.Key
	}
	pickerQuery := url.Values{}
	for k, v := range q {
		if k != "cursor" {
			pickerQuery[k] = v
		}
	}
	vm := templates.DeadLetterGroups{
		Range: tr.picker("/dead-letters", pickerQuery), Filter: f, CanTriage: s.mayTriage(p),
		EntriesHref: "/dead-letters/entries",
	}
	if err := s.indexerStrip(ctx, st, p, scope, &vm); err != nil {
		return s.fail(c, err)
	}
	if counts, err := st.Counts(ctx, scope); err == nil {
		vm.Open = openOf(counts)
	} else {
		return s.fail(c, err)
	}
	groups, next, err := st.Groups(ctx, dlqstore.GroupFilter{
		Tenants: scope, State: f.State, Broker: f.Broker, Destination: f.Destination, Q: f.Q,
		Sort: f.Sort, Cursor: strings.TrimSpace(q.Get("cursor")), Limit: groupsPerPage,
	})
	if err != nil {
		if delivery.ErrorCode(err) != delivery.EINVALID {
			return s.fail(c, err)
		}
		c.Status(fiber.StatusBadRequest)
		vm.Error = delivery.ErrorMessage(err)
	}
	step := tr.To.Sub(tr.From) / trendBuckets
	now := s.now()
	for _, g := range groups {
		counts, err := st.Trend(ctx, g.ID, scope, tr.From, tr.To, step)
		if err != nil {
			return s.fail(c, err)
		}
		vm.Rows = append(vm.Rows, groupRowOf(g, counts, tr, now))
	}
	if next != "" {
		nq := cloneValues(pickerQuery)
		nq.Set("cursor", next)
		vm.NextHref = "/dead-letters?" + nq.Encode()
	}
	if q.Get("cursor") != "" {
		vm.FirstHref = "/dead-letters"
		if len(pickerQuery) > 0 {
			vm.FirstHref += "?" + pickerQuery.Encode()
		}
	}
	return s.render(c, templates.Page{Title: "Dead letters", Area: templates.AreaDeadLetters, RangeQuery: tr.query()},
		templates.DeadLetterGroupsView(vm, s.jobActions(p, access.Res("*"))))
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func groupRowOf(g dlqstore.Group, trend []int, tr timeRange, now time.Time) templates.DLQGroupRow {
	total := 0
	for _, n := range trend {
		total += n
	}
	r := templates.DLQGroupRow{
		ID: g.ID, Title: g.Title, ErrorCode: g.ErrorCode, ExceptionType: g.ExceptionType, EventType: g.EventType,
		Count: g.Count, Open: g.Open,
		FirstSeen: templates.Ago(now, g.FirstSeen), LastSeen: templates.Ago(now, g.LastSeen),
		FirstSeenExact: fmtTime(g.FirstSeen), LastSeenExact: fmtTime(g.LastSeen),
		Destinations: g.Destinations, Tenants: g.Tenants,
		State: g.Triage.State, StateText: triageText(g.Triage), Owner: g.Triage.Owner, Note: g.Triage.Note,
		UpdateBy:     g.Triage.UpdatedBy,
		Trend:        templates.Sparkline{Counts: trend, Label: strconv.Itoa(total) + " in the last " + tr.Key},
		EntriesHref:  "/dead-letters/entries?group=" + strconv.FormatInt(g.ID, 10),
		TriageAction: "/dead-letters/groups/" + strconv.FormatInt(g.ID, 10) + "/triage",
	}
	if !g.Triage.SnoozedUntil.IsZero() {
		r.SnoozedUntil = g.Triage.SnoozedUntil.UTC().Format("2006-01-02T15:04")
	}
	return r
}

// triageText is the badge of a triage state.
func triageText(t dlqstore.Triage) string {
	switch t.State {
	case dlqstore.TriageAcknowledged:
		if t.Owner != "" {
			return "acknowledged by " + t.Owner
		}
	case dlqstore.TriageSnoozed:
		return "snoozed until " + fmtTime(t.SnoozedUntil)
	}
	return cmp.Or(t.State, dlqstore.TriageOpen)
}

// indexerStrip shows the sources the principal may view: their names and
// lag are as telling as the entries. What each holds is counted in the
// store over the principal's scope (SourceCounts), like every other number
// of the dead-letter pages. The indexers' own counters (indexed,
// duplicates, lag, last indexed) span every tenant of a source, so they are
// shown only to a principal who may view every tenant there.
func (s *Server) indexerStrip(ctx context.Context, st DeadLetters, p *access.Principal, scope *dlqstore.TenantScope, vm *templates.DeadLetterGroups) error {
	if s.indexers == nil {
		return nil
	}
	counts, err := st.SourceCounts(ctx, scope)
	if err != nil {
		return err
	}
	type source struct{ broker, cluster, destination string }
	own := map[source]dlqstore.SourceCount{}
	for _, sc := range counts {
		own[source{sc.Broker, sc.Cluster, sc.Destination}] = sc
	}
	vm.SourcesKnown = true
	now := s.now()
	for _, src := range s.indexers.Status() {
		r := access.KafkaTopic(src.Cluster, src.Destination)
		where := src.Cluster
		if src.Broker == delivery.BrokerRabbitMQ {
			r = access.RabbitQueue(src.VHost, src.Destination)
			where = src.Cluster + " " + src.VHost
		}
		if !s.policy.Can(p, access.ActionView, r) {
			continue
		}
		mine := own[source{src.Broker, src.Cluster, src.Destination}]
		row := templates.DLQSource{
			Broker: src.Broker, Where: where, Destination: src.Destination,
			Entries: mine.Count, LastEntryAgo: templates.Ago(now, mine.LastSeen),
			LastError: src.LastError, LastErrorAgo: templates.Ago(now, src.LastErrorAt),
		}
		if s.policy.Scope(p, access.ActionView, r.Name).All {
			row.AllTenants = true
			row.Indexed, row.Duplicates, row.Lag = src.Indexed, src.Duplicates, src.Lag
			row.LastIndexedAgo = templates.Ago(now, src.LastIndexedAt)
		}
		if row.LastError != "" {
			vm.SourceErrors++
		}
		vm.Sources = append(vm.Sources, row)
	}
	return nil
}

// triageInput is a triage change as a form or JSON body states it.
type triageInput struct {
	State        string `json:"state"`
	Owner        string `json:"owner"`
	Note         string `json:"note"`
	SnoozedUntil string `json:"snoozed_until"`
}

func (in triageInput) triage() (dlqstore.Triage, error) {
	t := dlqstore.Triage{State: strings.TrimSpace(in.State), Owner: in.Owner, Note: in.Note}
	if v := strings.TrimSpace(in.SnoozedUntil); v != "" && t.State == dlqstore.TriageSnoozed {
		at, err := parseFormTime("snoozed_until", v)
		if err != nil {
			return t, err
		}
		t.SnoozedUntil = at
	}
	return t, nil
}

// setTriage changes a group the principal can see (else 404), records it
// in the audit log and returns the group as the principal sees it.
func (s *Server) setTriage(c *fiber.Ctx, in triageInput) (dlqstore.Group, error) {
	st, err := s.deadLetters()
	if err != nil {
		return dlqstore.Group{}, err
	}
	raw := param(c, "id")
	id, perr := strconv.ParseInt(raw, 10, 64)
	if perr != nil || id <= 0 {
		return dlqstore.Group{}, delivery.Errorf(delivery.ENOTFOUND, "failure group %s not found", raw)
	}
	p := principal(c)
	scope := s.dlqScope(p)
	ctx := c.UserContext()
	if _, err := st.Group(ctx, id, scope); err != nil {
		return dlqstore.Group{}, err
	}
	t, err := in.triage()
	if err != nil {
		return dlqstore.Group{}, err
	}
	t.UpdatedBy = p.User
	_, err = st.SetTriage(ctx, id, t)
	if s.audit != nil {
		outcome := access.OutcomeSuccess
		if err != nil {
			outcome = access.OutcomeFailure
		}
		ev := s.auditEvent(c, p, "dlq.triage", dlqResource, outcome)
		ev.AffectedIDs = []string{strconv.FormatInt(id, 10)}
		ev.Reason = strings.TrimSpace(t.Note)
		ev.Details = map[string]any{"group": id, "state": t.State, "owner": strings.TrimSpace(t.Owner)}
		if !t.SnoozedUntil.IsZero() {
			ev.Details["snoozed_until"] = t.SnoozedUntil.UTC().Format(time.RFC3339)
		}
		if aerr := s.audit.Append(ctx, ev); aerr != nil && err == nil {
			err = aerr
		}
	}
	if err != nil {
		return dlqstore.Group{}, err
	}
	return st.Group(ctx, id, scope)
}

// handleDLQTriage is the triage form of a group: a POST, then back to the
// groups with a flash message.
func (s *Server) handleDLQTriage(c *fiber.Ctx) error {
	in := triageInput{
		State: c.FormValue("state"), Owner: c.FormValue("owner"), Note: c.FormValue("note"),
		SnoozedUntil: c.FormValue("snoozed_until"),
	}
	g, err := s.setTriage(c, in)
	if err != nil {
		if code := delivery.ErrorCode(err); code == delivery.EINVALID {
			return s.flash(c, "/dead-letters", "Triage not saved: "+delivery.ErrorMessage(err))
		}
		return s.fail(c, err)
	}
	return s.flash(c, "/dead-letters", "“"+truncateText(g.Title, 80)+"” is now "+triageText(g.Triage)+".")
}
