package web

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/redrive"
	"switchyard/web/templates"
)

// handleDLQEntries is the entries list: filters, full-text search with an
// inline message for a query the index cannot understand, keyset paging
// (newest first) and the total.
func (s *Server) handleDLQEntries(c *fiber.Ctx) error {
	st, err := s.deadLetters()
	if err != nil {
		return s.dlqNotConfigured(c)
	}
	vm := templates.DeadLetterEntries{GroupsHref: "/dead-letters"}
	for _, sv := range dlqstore.Statuses() {
		vm.StatusOptions = append(vm.StatusOptions, string(sv))
	}
	for _, r := range ranges {
		vm.RangeOptions = append(vm.RangeOptions, r.key)
	}
	page := templates.Page{Title: "Dead letters · entries", Area: templates.AreaDeadLetters}
	caller := callerOf(c)
	jobs := templates.EntriesJobs{DLQActions: dlqActionsOf(st.Actions(caller, nil))}
	eq, err := s.parseEntryQuery(c)
	vm.Filter = entryForm(eq)
	if err == nil && eq.Filter.GroupID != 0 {
		g, gerr := st.Group(c.UserContext(), caller, eq.Filter.GroupID)
		switch {
		case gerr == nil:
			vm.GroupTitle = g.Title
		case delivery.ErrorCode(gerr) != delivery.ENOTFOUND:
			return s.fail(c, gerr)
		}
	}
	var res dlqstore.Page
	if err == nil {
		res, err = st.FindEntries(c.UserContext(), caller, eq.Filter)
	}
	if err != nil {
		if delivery.ErrorCode(err) != delivery.EINVALID {
			return s.fail(c, err)
		}
		c.Status(fiber.StatusBadRequest)
		vm.Error = delivery.ErrorMessage(err)
		return s.render(c, page, templates.DeadLetterEntriesView(vm, jobs))
	}
	now := s.now()
	for _, e := range res.Entries {
		o := st.Outcome(e)
		vm.Rows = append(vm.Rows, templates.DLQEntryRow{
			ID: e.ID, Href: entryHref(e.ID),
			Time: templates.Ago(now, e.DL.LastFailureAt), TimeExact: fmtTime(e.DL.LastFailureAt),
			Destination: e.Destination, Where: whereOf(e),
			ErrorCode: e.ErrorCode, Message: truncateText(e.DL.Error.Message, 160),
			EventType: e.EventType, Tenant: e.Tenant, Status: string(e.Status), StatusClass: statusClassOf(e, o), Attempts: e.DL.Attempts,
			Outcome: outcomeOf(e, o),
		})
	}
	vm.Total = totalText(res.Total, res.TotalCapped)
	vm.Searched, vm.TextPending, vm.TextBehind = searchedText(res.Searched), res.TextPending, res.TextBehind
	vm.Suggestions = searchSuggestions(queryOf(c), res.Suggestions)
	if len(vm.Rows) > 0 {
		// "Redrive all N matching": the filter as typed (its JSON holds
		// neither the page's cursor nor a scope); the engine freezes the
		// set when the job starts.
		f := eq.Filter
		if b, err := json.Marshal(redrive.Selector{Filter: &f}); err == nil {
			jobs.FilterSelector, jobs.Total = string(b), vm.Total
		}
	}
	q := queryOf(c)
	q.Del("cursor")
	if res.Next != "" {
		nq := cloneValues(q)
		nq.Set("cursor", res.Next)
		vm.NextHref = "/dead-letters/entries?" + nq.Encode()
	}
	if eq.Filter.Cursor != "" {
		vm.FirstHref = withQuery("/dead-letters/entries", q)
	}
	return s.render(c, page, templates.DeadLetterEntriesView(vm, jobs))
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func entryForm(eq entryQuery) templates.EntryFilterForm {
	f := eq.Filter
	return templates.EntryFilterForm{
		Statuses: eq.Statuses, Broker: f.Broker, Cluster: f.Cluster, Destination: f.Destination,
		EventType: f.EventType, ErrorCode: f.ErrorCode, Tenant: f.Tenant,
		From: eq.From, To: eq.To, Range: eq.Range, Group: eq.GroupID, Q: f.Q, Limit: eq.LimitText,
	}
}

func entryHref(id int64) string { return "/dead-letters/entries/" + itoa64(id) }

// whereOf names the broker and cluster (and vhost) of an entry's DLQ.
func whereOf(e dlqstore.Entry) string {
	parts := []string{e.Broker, e.Cluster}
	if e.VHost != "" {
		parts = append(parts, e.VHost)
	}
	return strings.Join(parts, " ")
}
