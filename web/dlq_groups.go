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

	"switchyard/alerting"
	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/sqldb"
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

// handleDeadLetters is the landing page: failure groups over the
// principal's scope, each with its trend over the range.
func (s *Server) handleDeadLetters(c *fiber.Ctx) error {
	st, err := s.deadLetters()
	if err != nil {
		return s.dlqNotConfigured(c)
	}
	tr, err := s.dashRange(c)
	if err != nil {
		return s.fail(c, err)
	}
	caller := callerOf(c)
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
		Range: tr.picker("/dead-letters", pickerQuery), Filter: f, CanTriage: st.MayTriage(caller), TriageStates: dlqstore.TriageStates(),
		EntriesHref: "/dead-letters/entries",
	}
	if err := s.indexerStrip(ctx, st, caller, &vm); err != nil {
		return s.fail(c, err)
	}
	if vm.Open, err = s.openCount(c); err != nil {
		return s.fail(c, err)
	}
	groups, next, err := st.Groups(ctx, caller, dlqstore.GroupFilter{
		State: f.State, Broker: f.Broker, Destination: f.Destination, Q: f.Q,
		Sort: f.Sort, Cursor: strings.TrimSpace(q.Get("cursor")), Limit: groupsPerPage,
	})
	if err != nil {
		if delivery.ErrorCode(err) != delivery.EINVALID {
			return s.fail(c, err)
		}
		c.Status(fiber.StatusBadRequest)
		vm.Error = delivery.ErrorMessage(err)
	}
	ids := make([]int64, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
	}
	trends, err := st.Trends(ctx, caller, ids, tr.From, tr.To, tr.To.Sub(tr.From)/trendBuckets)
	if err != nil {
		return s.fail(c, err)
	}
	now := s.now()
	for _, g := range groups {
		row := groupRowOf(g, trends[g.ID], tr, now)
		row.AlertOn = s.alertOn(c, "Alert on this", alerting.TemplateDLQGroup, "dlq_group", itoa64(g.ID))
		vm.Rows = append(vm.Rows, row)
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
		templates.DeadLetterGroupsView(vm, dlqActionsOf(st.Actions(caller, nil))))
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
		Count: g.Count, Open: g.Open, FailedAgain: g.FailedAgain,
		FirstSeen: templates.Ago(now, g.FirstSeen), LastSeen: templates.Ago(now, g.LastSeen),
		FirstSeenExact: fmtTime(g.FirstSeen), LastSeenExact: fmtTime(g.LastSeen),
		Destinations: g.Destinations, Tenants: g.Tenants,
		State: g.Triage.State, StateClass: triageTone(g.Triage.State).Badge(), StateText: triageText(g.Triage), Owner: g.Triage.Owner, Note: g.Triage.Note,
		UpdateBy:     g.Triage.UpdatedBy,
		Trend:        templates.Sparkline{Counts: trend, Label: strconv.Itoa(total) + " in the last " + tr.Key},
		EntriesHref:  "/dead-letters/entries?group=" + strconv.FormatInt(g.ID, 10),
		SampleHref:   groupSampleHref(g.ID),
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

// indexerStrip shows the sources the service lets the caller see, with
// what each holds for them; the indexers' own counters only where they
// may view every tenant (dlq.Source).
func (s *Server) indexerStrip(ctx context.Context, st DeadLetters, caller dlq.Caller, vm *templates.DeadLetterGroups) error {
	sources, known, err := st.Sources(ctx, caller)
	if err != nil || !known {
		return err
	}
	vm.SourcesKnown = true
	now := s.now()
	for _, src := range sources {
		where := src.Cluster
		if src.Broker == delivery.BrokerRabbitMQ {
			where = src.Cluster + " " + src.VHost
		}
		row := templates.DLQSource{
			Broker: src.Broker, Where: where, Destination: src.Destination,
			Entries: src.Entries, LastEntryAgo: templates.Ago(now, src.LastEntry),
			LastError: src.LastError, LastErrorAgo: templates.Ago(now, src.LastErrorAt),
		}
		if src.AllTenants {
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
		at, err := sqldb.ParseFormTime("snoozed_until", v)
		if err != nil {
			return t, err
		}
		t.SnoozedUntil = at
	}
	return t, nil
}

// setTriage parses the :id of a group and the change, and has the service
// make it (for a group the caller can see, else 404; audited).
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
	t, err := in.triage()
	if err != nil {
		return dlqstore.Group{}, err
	}
	return st.SetTriage(c.UserContext(), callerOf(c), id, t)
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
