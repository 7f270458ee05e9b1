package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/browse"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/redrive"
	"switchyard/web/templates"
)

// Dead-letter jobs: the plan (a dry run) and its confirmation form,
// starting a job, the jobs list, a job's page with its ledger, and
// cancelling. The routes ask only for view: the engine authorizes every
// entry of a job by the principal's rules for the job's action, and its
// EFORBIDDEN, EINVALID and ECONFLICT answers are shown on the page. Which
// jobs a principal sees and may cancel is the engine's rule too (those
// whose every entry they may act on, or all for an admin); a job they may
// not see is ENOTFOUND, a 404 like a job that does not exist. The buttons
// on the dead-letter pages are offered by Can, as a convenience.

// DLQJobs runs dead-letter jobs. *redrive.Engine implements it.
type DLQJobs interface {
	// Plan is the dry run of req: the exact count, per destination, and a
	// sample. Errors: EINVALID, EFORBIDDEN.
	Plan(ctx context.Context, a redrive.Actor, req redrive.Request) (redrive.Plan, error)
	// Start freezes the set, audits and runs the job in the background.
	// Errors: EINVALID, EFORBIDDEN, ECONFLICT (another job runs on a
	// destination; retry with Force).
	Start(ctx context.Context, a redrive.Actor, req redrive.Request) (redrive.Job, error)
	// Job is a job a may see. Errors: ENOTFOUND (also for a job a may
	// not see).
	Job(ctx context.Context, a redrive.Actor, id int64) (redrive.Job, error)
	// Jobs lists the jobs a may see, newest first, filtered in the
	// store's query; the int64 is the next Before cursor (0 on the last
	// page). Errors: EINVALID.
	Jobs(ctx context.Context, a redrive.Actor, f redrive.JobFilter) ([]redrive.Job, int64, error)
	// Ledger pages the entries of a job a may see after afterSeq; the int
	// is the next afterSeq (0 at the end). Errors: ENOTFOUND, EINVALID.
	Ledger(ctx context.Context, a redrive.Actor, id int64, afterSeq, limit int) ([]redrive.LedgerItem, int, error)
	// Cancel stops a job a may see. Errors: ENOTFOUND (also for a job a
	// may not see), EINVALID (already ended).
	Cancel(ctx context.Context, a redrive.Actor, id int64) (redrive.Job, error)
	// History is every job a may see that acted on an entry, oldest first.
	History(ctx context.Context, a redrive.Actor, entryID int64) ([]redrive.HistoryItem, error)
	EditEnabled() bool
	MaxRate() float64
}

var _ DLQJobs = (*redrive.Engine)(nil)

// Page sizes.
const (
	jobsPerPage    = 50
	runningJobsMax = 100
	ledgerPerPage  = 100
)

func (s *Server) dlqJobs() (DLQJobs, error) {
	if s.jobs == nil {
		return nil, delivery.Errorf(delivery.ENOTFOUND, "dead-letter jobs are not configured")
	}
	return s.jobs, nil
}

// actorOf is who asks, for the engine's policy checks and audit records.
func actorOf(c *fiber.Ctx) redrive.Actor {
	return redrive.Actor{
		P:         principal(c),
		SourceIP:  c.Context().RemoteIP().String(),
		UserAgent: strings.Clone(c.Get(fiber.HeaderUserAgent)),
	}
}

func jobHref(id int64) string { return "/dead-letters/jobs/" + itoa64(id) }

// jobActions are the job buttons offered on r ("*" for lists: any grant).
func (s *Server) jobActions(p *access.Principal, r access.Resource) templates.DLQActions {
	if s.jobs == nil {
		return templates.DLQActions{}
	}
	return templates.DLQActions{
		Enabled:    true,
		Redrive:    s.policy.Can(p, access.ActionRedrive, r),
		Quarantine: s.policy.Can(p, access.ActionQuarantine, r),
		Discard:    s.policy.Can(p, access.ActionDiscard, r),
		Restore:    s.policy.Can(p, access.ActionDiscard, r), // restoring undoes a discard or a quarantine
	}
}

// guardRequest keeps a filter's full-text search off payload text for
// principals who may not probe it, as the entries list does: a plan's
// count would otherwise tell them what a masked field holds.
func (s *Server) guardRequest(p *access.Principal, req redrive.Request) (redrive.Request, error) {
	f := req.Selector.Filter
	if f == nil || f.Q == "" || s.mayProbePayloads(p) {
		return req, nil
	}
	q, err := withoutPayloadColumn(f.Q)
	if err != nil {
		return req, err
	}
	cp := *f
	cp.Q = q
	req.Selector.Filter = &cp
	return req, nil
}

// jobInput is a job request as the plan and start forms send it, with the
// form as typed for showing it back.
type jobInput struct {
	req      redrive.Request
	form     templates.JobForm
	selector string // canonical JSON of req.Selector; "" when the action or selection is missing or malformed
}

// formValues copies the form fields of the request body (url-encoded or
// multipart).
func formValues(c *fiber.Ctx) url.Values {
	v := url.Values{}
	c.Request().PostArgs().VisitAll(func(k, val []byte) { v.Add(string(k), string(val)) })
	if mf, err := c.MultipartForm(); err == nil {
		for k, vs := range mf.Value {
			v[k] = append(v[k], vs...)
		}
	}
	return v
}

func checked(v string) bool { return v != "" && v != "0" && v != "false" && v != "off" }

func validJobAction(a redrive.Action) bool {
	switch a {
	case redrive.ActionRedrive, redrive.ActionQuarantine, redrive.ActionDiscard, redrive.ActionRestore, redrive.ActionEditRedrive:
		return true
	}
	return false
}

// sends reports whether an action publishes messages (rate, canary and
// destination apply).
func sends(a redrive.Action) bool {
	return a == redrive.ActionRedrive || a == redrive.ActionEditRedrive
}

// parseJobForm reads action, selector (JSON) or ids (repeatable or
// comma-separated) or group, reason, rate, canary, canary_window
// (seconds), destination, force, publish_quarantine, and for edit_redrive
// payload and headers. Errors are EINVALID; the returned input holds what
// could be read.
func (s *Server) parseJobForm(c *fiber.Ctx, jobs DLQJobs) (jobInput, error) {
	v := formValues(c)
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	in := jobInput{form: templates.JobForm{
		Reason: v.Get("reason"), Rate: get("rate"), Canary: get("canary"), CanaryWindow: get("canary_window"),
		Destination: get("destination"), Force: checked(get("force")), PublishQuarantine: checked(get("publish_quarantine")),
		Payload: v.Get("payload"), Headers: v.Get("headers"),
	}}
	a := redrive.Action(get("action"))
	in.req.Action = a
	f := &in.form
	f.MaxRate = strconv.FormatFloat(jobs.MaxRate(), 'f', -1, 64)
	f.Sends, f.Quarantine, f.Edit = sends(a), a == redrive.ActionQuarantine, a == redrive.ActionEditRedrive
	if f.Rate == "" {
		f.Rate = strconv.FormatFloat(min(redrive.DefaultRate, jobs.MaxRate()), 'f', -1, 64)
	}
	if f.CanaryWindow == "" {
		f.CanaryWindow = strconv.Itoa(int(redrive.DefaultCanaryWindow / time.Second))
	}
	if !validJobAction(a) {
		return in, delivery.Errorf(delivery.EINVALID, "action must be redrive, quarantine, discard, restore or edit_redrive")
	}
	sel, err := selectorOf(v)
	if err != nil {
		return in, err
	}
	in.req.Selector = sel
	b, err := json.Marshal(sel)
	if err != nil {
		return in, fmt.Errorf("selector: %w", err)
	}
	in.selector = string(b)

	r := &in.req
	r.Reason = strings.TrimSpace(f.Reason)
	r.Destination, r.Force, r.PublishQuarantine = f.Destination, f.Force, f.PublishQuarantine && f.Quarantine
	if f.Sends {
		if r.Rate, err = strconv.ParseFloat(f.Rate, 64); err != nil || math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0) || r.Rate <= 0 {
			return in, delivery.Errorf(delivery.EINVALID, "rate must be a positive number of messages per second")
		}
		if f.Canary != "" {
			if r.Canary, err = strconv.Atoi(f.Canary); err != nil || r.Canary < 0 {
				return in, delivery.Errorf(delivery.EINVALID, "canary must be a count of entries (0 for none)")
			}
		}
		secs, err := strconv.Atoi(f.CanaryWindow)
		if err != nil || secs < 1 || secs > 24*3600 {
			return in, delivery.Errorf(delivery.EINVALID, "the canary window must be 1 to 86400 seconds")
		}
		if r.Canary > 0 {
			r.CanaryWindow = time.Duration(secs) * time.Second
		}
	} else if f.Destination != "" {
		return in, delivery.Errorf(delivery.EINVALID, "a destination applies to redrives only")
	}
	if f.Edit {
		payload := strings.TrimSpace(f.Payload)
		if !json.Valid([]byte(payload)) {
			return in, delivery.Errorf(delivery.EINVALID, "the edited envelope is not valid JSON")
		}
		headers, err := parseHeaderEdits(f.Headers)
		if err != nil {
			return in, err
		}
		r.Edit = &redrive.Edit{Payload: json.RawMessage(payload), Headers: headers}
	}
	return in, nil
}

// selectorOf reads the selection: a JSON selector, or ids, or a group.
func selectorOf(v url.Values) (redrive.Selector, error) {
	var sel redrive.Selector
	if raw := strings.TrimSpace(v.Get("selector")); raw != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sel); err != nil {
			return sel, delivery.Errorf(delivery.EINVALID, "the selection is malformed: %s", jsonProblem(err))
		}
	}
	for _, raw := range v["ids"] {
		for part := range strings.SplitSeq(raw, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			id, err := strconv.ParseInt(part, 10, 64)
			if err != nil || id <= 0 {
				return sel, delivery.Errorf(delivery.EINVALID, "entry id %q is not a number", truncateText(part, 40))
			}
			if !slices.Contains(sel.IDs, id) {
				sel.IDs = append(sel.IDs, id)
			}
		}
	}
	if g := strings.TrimSpace(v.Get("group")); g != "" {
		id, err := strconv.ParseInt(g, 10, 64)
		if err != nil || id <= 0 {
			return sel, delivery.Errorf(delivery.EINVALID, "group must be a failure group id")
		}
		sel.Group = id
	}
	n := 0
	for _, set := range []bool{len(sel.IDs) > 0, sel.Group != 0, sel.Filter != nil} {
		if set {
			n++
		}
	}
	switch n {
	case 0:
		return sel, delivery.Errorf(delivery.EINVALID, "nothing is selected: tick at least one entry")
	case 1:
		return sel, nil
	}
	return sel, delivery.Errorf(delivery.EINVALID, "choose entries, a failure group or a filter, not several")
}

// jsonProblem says what is wrong with a JSON body without echoing it.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + te.Field + " must be " + te.Type.String()
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "not a JSON object"
}

// parseHeaderEdits reads "key: value" (set) and "-key" (remove) lines.
func parseHeaderEdits(text string) (map[string]*string, error) {
	out := map[string]*string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "-"):
			if k := strings.TrimSpace(line[1:]); k != "" {
				out[k] = nil
				continue
			}
		default:
			if k, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) != "" {
				val = strings.TrimSpace(val)
				out[strings.TrimSpace(k)] = &val
				continue
			}
		}
		return nil, delivery.Errorf(delivery.EINVALID, "header change on line %d: want “key: value” or “-key”", i+1)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// handleDLQJobPlan is the plan page: the engine's dry run of the posted
// selection and the form that starts the job.
func (s *Server) handleDLQJobPlan(c *fiber.Ctx) error {
	jobs, err := s.dlqJobs()
	if err != nil {
		return s.fail(c, err)
	}
	in, err := s.parseJobForm(c, jobs)
	return s.showPlan(c, jobs, in, err)
}

// handleDLQJobStart starts the job of the confirmation form and goes to
// its page; a refusal shows the plan page again with the reason (and, for
// a conflict, the option to force).
func (s *Server) handleDLQJobStart(c *fiber.Ctx) error {
	jobs, err := s.dlqJobs()
	if err != nil {
		return s.fail(c, err)
	}
	in, err := s.parseJobForm(c, jobs)
	if err != nil {
		return s.showPlan(c, jobs, in, err)
	}
	req, err := s.guardRequest(principal(c), in.req)
	if err != nil {
		return s.showPlan(c, jobs, in, err)
	}
	j, err := jobs.Start(c.UserContext(), actorOf(c), req)
	if err != nil {
		return s.showPlan(c, jobs, in, err)
	}
	return s.flash(c, jobHref(j.ID), fmt.Sprintf("Job #%d started: %s of %s entries.",
		j.ID, strings.ToLower(actionLabel(j.Action)), templates.Exact(int64(j.Total))))
}

// showPlan renders the plan page: the dry run of in when it is complete,
// and failed — why parsing or starting did not go through — in place.
func (s *Server) showPlan(c *fiber.Ctx, jobs DLQJobs, in jobInput, failed error) error {
	vm := templates.JobPlan{
		Action: string(in.req.Action), ActionLabel: actionLabel(in.req.Action),
		Selector: in.selector, Form: in.form,
	}
	if in.selector != "" {
		vm.SelectorText = selectorText(in.req.Selector)
	}
	status := fiber.StatusOK
	// Plan whenever the selection could be read, so that a form refused
	// for one field comes back with its plan and what was typed.
	if in.selector != "" {
		req, err := s.guardRequest(principal(c), in.req)
		var plan redrive.Plan
		if err == nil {
			plan, err = jobs.Plan(c.UserContext(), actorOf(c), req)
		}
		if err != nil {
			msg, shown := formError(err)
			if !shown {
				return s.fail(c, err)
			}
			vm.Error, vm.Conflict, status = msg, delivery.ErrorCode(err) == delivery.ECONFLICT, statusOf(delivery.ErrorCode(err))
		} else {
			planView(&vm, plan)
		}
	}
	if failed != nil {
		msg, shown := formError(failed)
		if !shown {
			return s.fail(c, failed)
		}
		vm.Error, vm.Conflict, status = msg, delivery.ErrorCode(failed) == delivery.ECONFLICT, statusOf(delivery.ErrorCode(failed))
	}
	c.Status(status)
	return s.render(c, templates.Page{Title: vm.ActionLabel + " · plan", Area: templates.AreaDeadLetters},
		templates.JobPlanView(vm))
}

func planView(vm *templates.JobPlan, p redrive.Plan) {
	vm.Planned = true
	vm.Count, vm.CountN = templates.Exact(int64(p.Count)), p.Count
	for _, d := range p.Destinations {
		vm.Destinations = append(vm.Destinations, templates.JobDestination{Destination: d.Destination, Count: templates.Exact(int64(d.Count))})
	}
	for _, si := range p.Sample {
		row := templates.JobSampleRow{EntryID: si.EntryID, Href: entryHref(si.EntryID), Destination: si.Destination,
			Error: truncateText(si.ErrorMessage, 200), HeadersRemoved: si.HeadersRemoved}
		for _, h := range si.HeadersAdded {
			row.HeadersAdded = append(row.HeadersAdded, h.Key+": "+truncateText(printable(h.Value), 120))
		}
		vm.Sample = append(vm.Sample, row)
	}
	vm.Warnings = p.Warnings
	vm.Estimated = durationText(p.EstimatedTime)
	vm.Rate = rateText(p.Rate)
}

func actionLabel(a redrive.Action) string {
	switch a {
	case redrive.ActionRedrive:
		return "Redrive"
	case redrive.ActionQuarantine:
		return "Quarantine"
	case redrive.ActionDiscard:
		return "Discard"
	case redrive.ActionRestore:
		return "Restore"
	case redrive.ActionEditRedrive:
		return "Edit and redrive"
	}
	return "Job"
}

// doneVerb is what happened to an entry the job is done with.
func doneVerb(a redrive.Action) string {
	switch a {
	case redrive.ActionQuarantine:
		return "quarantined"
	case redrive.ActionDiscard:
		return "discarded"
	case redrive.ActionRestore:
		return "restored"
	}
	return "sent"
}

// selectorText describes a selection in words.
func selectorText(sel redrive.Selector) string {
	switch {
	case len(sel.IDs) == 1:
		return "entry " + itoa64(sel.IDs[0])
	case len(sel.IDs) > 1:
		var ids []string
		for i, id := range sel.IDs {
			if i == 10 {
				ids = append(ids, "…")
				break
			}
			ids = append(ids, itoa64(id))
		}
		return templates.Exact(int64(len(sel.IDs))) + " entries: " + strings.Join(ids, ", ")
	case sel.Group != 0:
		return "failure group " + itoa64(sel.Group)
	case sel.Filter != nil:
		return "every entry matching " + filterText(*sel.Filter)
	}
	return "nothing"
}

func filterText(f redrive.FilterSpec) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+" "+v)
		}
	}
	add("status", strings.Join(f.Status, "/"))
	add("broker", f.Broker)
	add("cluster", f.Cluster)
	add("DLQ", f.Destination)
	add("event type", f.EventType)
	add("error code", f.ErrorCode)
	add("tenant", f.Tenant)
	if !f.From.IsZero() {
		add("from", fmtTime(f.From))
	}
	if !f.To.IsZero() {
		add("to", fmtTime(f.To))
	}
	if f.Group != 0 {
		add("group", itoa64(f.Group))
	}
	if f.Q != "" {
		add("text", "“"+f.Q+"”")
	}
	if len(parts) == 0 {
		return "no filter (all entries you may act on)"
	}
	return strings.Join(parts, ", ")
}

// filterSpecOf is the entries list's filter as a job selects it.
func filterSpecOf(f dlqstore.Filter) redrive.FilterSpec {
	spec := redrive.FilterSpec{
		Broker: f.Broker, Cluster: f.Cluster, Destination: f.Destination, EventType: f.EventType,
		ErrorCode: f.ErrorCode, Tenant: f.Tenant, From: f.From, To: f.To, Group: f.GroupID, Q: f.Q,
	}
	for _, st := range f.Status {
		spec.Status = append(spec.Status, string(st))
	}
	return spec
}

// durationText is a duration for people: "under a second", "45s",
// "3m 20s", "2h 05m".
func durationText(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return "under a second"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm %02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh %02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func rateText(r float64) string { return templates.PerSec(templates.Rate{PerSec: r, Known: true}) }

// loadJob reads the job of the :id parameter if the principal may see it
// (the engine decides); anything else is the same 404.
func (s *Server) loadJob(c *fiber.Ctx, jobs DLQJobs) (redrive.Job, error) {
	raw := param(c, "id")
	notFound := delivery.Errorf(delivery.ENOTFOUND, "job %s not found", truncateText(raw, 40))
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return redrive.Job{}, notFound
	}
	j, err := jobs.Job(c.UserContext(), actorOf(c), id)
	if err != nil {
		if delivery.ErrorCode(err) == delivery.ENOTFOUND {
			return redrive.Job{}, notFound
		}
		return redrive.Job{}, err
	}
	return j, nil
}

// jobLedger reads the page of j's ledger that ?after_seq= asks for.
// Errors: EINVALID for a bad after_seq, and Ledger's.
func jobLedger(c *fiber.Ctx, jobs DLQJobs, j redrive.Job, limit int) ([]redrive.LedgerItem, int, error) {
	after, err := int64Query(c, "after_seq")
	if err != nil || after > math.MaxInt32 {
		return nil, 0, delivery.Errorf(delivery.EINVALID, "after_seq must be a ledger sequence number")
	}
	return jobs.Ledger(c.UserContext(), actorOf(c), j.ID, int(after), limit)
}

// handleDLQJobs lists the jobs the principal may see: on the first page
// the running ones, then the finished ones newest first with keyset paging
// (?before=), both filtered by the engine in its query.
func (s *Server) handleDLQJobs(c *fiber.Ctx) error {
	jobs, err := s.dlqJobs()
	if err != nil {
		return s.fail(c, err)
	}
	before, err := int64Query(c, "before")
	if err != nil {
		return s.fail(c, err)
	}
	a := actorOf(c)
	ctx := c.UserContext()
	now := s.now()
	var vm templates.JobsList
	if before == 0 {
		running, _, err := jobs.Jobs(ctx, a, redrive.JobFilter{Running: true, Limit: runningJobsMax})
		if err != nil {
			return s.fail(c, err)
		}
		for _, j := range running {
			vm.Running = append(vm.Running, jobRowOf(j, now))
		}
	} else {
		vm.FirstHref = "/dead-letters/jobs"
	}
	list, next, err := jobs.Jobs(ctx, a, redrive.JobFilter{Finished: true, Before: before, Limit: jobsPerPage})
	if err != nil {
		return s.fail(c, err)
	}
	for _, j := range list {
		vm.Finished = append(vm.Finished, jobRowOf(j, now))
	}
	if next > 0 {
		vm.NextHref = "/dead-letters/jobs?before=" + itoa64(next)
	}
	return s.render(c, templates.Page{Title: "Dead letters · jobs", Area: templates.AreaDeadLetters, Refresh: len(vm.Running) > 0},
		templates.JobsView(vm))
}

// int64Query reads a non-negative integer query parameter; 0 when absent.
func int64Query(c *fiber.Ctx, name string) (int64, error) {
	raw := strings.TrimSpace(c.Query(name))
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, delivery.Errorf(delivery.EINVALID, "%s must be a non-negative integer", name)
	}
	return n, nil
}

func jobRowOf(j redrive.Job, now time.Time) templates.JobRow {
	n := func(i int) string { return templates.Exact(int64(i)) }
	r := templates.JobRow{
		ID: j.ID, Href: jobHref(j.ID), Action: string(j.Action), State: j.State, StateClass: templates.JobStateClass(j.State),
		Actor: j.Actor, Reason: j.Reason,
		Total: n(j.Total), Done: n(j.Done), Failed: n(j.Failed), Cancelled: n(j.Cancelled), Remaining: n(j.Remaining),
		TotalN: j.Total, ProcessedN: j.Done + j.Failed + j.Cancelled,
		Rate: "—", CurrentRate: "—", ETA: "—",
		Created: templates.Ago(now, j.CreatedAt), CreatedExact: fmtTime(j.CreatedAt),
	}
	if sends(j.Action) || j.PublishQuarantine {
		r.Rate = rateText(j.Rate)
	}
	if !j.Finished() {
		r.CurrentRate = rateText(j.CurrentRate)
		switch {
		case j.State == redrive.StateCanaryWait:
			// The engine's ETA counts sending only, not the wait.
			r.ETA = "after the canary window"
		case j.ETA > 0:
			r.ETA = durationText(j.ETA)
		}
	}
	return r
}

// jobSentence says what a job's state means.
func jobSentence(j redrive.Job) string {
	n := func(i int) string { return templates.Exact(int64(i)) }
	verb := doneVerb(j.Action)
	var s string
	switch j.State {
	case redrive.StateRunning:
		s = fmt.Sprintf("Running: %s of %s %s so far, %s failed, %s to go.", n(j.Done), n(j.Total), verb, n(j.Failed), n(j.Remaining))
		if j.Error != "" {
			s += " " + strings.ToUpper(j.Error[:1]) + j.Error[1:] + "." // a broker outage pauses the job
		}
	case redrive.StateCanaryWait:
		s = fmt.Sprintf("The canary (%s) was sent; watching for %s whether it dead-letters again before sending the other %s.",
			entries(j.Canary), durationText(j.CanaryWindow), n(j.Remaining))
	case redrive.StateCancelling:
		s = fmt.Sprintf("Cancelling: the job stops after the batch in flight; %s of %s were %s.", n(j.Done), n(j.Total), verb)
		if j.Error != "" {
			s += " (" + j.Error + ")"
		}
	case redrive.StateCompleted:
		s = fmt.Sprintf("Completed: %s of %s were %s", n(j.Done), n(j.Total), verb)
		if j.Failed > 0 {
			s += fmt.Sprintf(", %s failed (see the ledger)", n(j.Failed))
		}
		s += "."
	case redrive.StateCancelled:
		by := ""
		if who, ok := strings.CutPrefix(j.Error, "cancelled by "); ok && who != "" {
			by = " by " + who
		}
		return fmt.Sprintf("Cancelled%s after %s of %s were %s; nothing %s was reverted, and the other %s were left as they were.",
			by, n(j.Done), n(j.Total), verb, verb, n(j.Cancelled+j.Remaining))
	case redrive.StateCanaryFailed:
		s = fmt.Sprintf("The canary failed: the first %s dead-lettered again within %s, so the other %s were not sent.",
			entries(j.Canary), durationText(j.CanaryWindow), n(j.Cancelled+j.Remaining))
	case redrive.StateFailed:
		s = fmt.Sprintf("The job failed after %s of %s were %s; nothing %s was reverted.", n(j.Done), n(j.Total), verb, verb)
	case redrive.StateFreezing:
		s = "Freezing its set of entries; nothing is sent until that is done."
	default:
		s = "State " + j.State + "."
	}
	if j.Error != "" && j.Finished() && j.State != redrive.StateCompleted {
		s += " " + j.Error
	}
	return s
}

// entries is "1 entry", "12 entries".
func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return templates.Exact(int64(n)) + " entries"
}

// handleDLQJob is a job's page: progress, what it does, and a page of
// its ledger (?after_seq=). It refreshes while the job runs.
func (s *Server) handleDLQJob(c *fiber.Ctx) error {
	jobs, err := s.dlqJobs()
	if err != nil {
		return s.fail(c, err)
	}
	j, err := s.loadJob(c, jobs)
	if err != nil {
		return s.fail(c, err)
	}
	items, next, err := jobLedger(c, jobs, j, ledgerPerPage)
	if err != nil {
		return s.fail(c, err)
	}
	now := s.now()
	vm := templates.JobDetail{
		JobRow: jobRowOf(j, now), Sentence: jobSentence(j), Live: !j.Finished(),
		SelectorText: selectorText(j.Selector), Destination: j.Destination, Destinations: j.Destinations,
		Error: j.Error, Updated: fmtTime(j.UpdatedAt), Finished: fmtTime(j.FinishedAt),
	}
	if b, err := json.Marshal(j.Selector); err == nil {
		vm.Selector = string(b)
	}
	if vm.Live && j.State != redrive.StateCancelling {
		vm.CancelAction = jobHref(j.ID) + "/cancel"
	}
	if j.Canary > 0 {
		vm.Canary = fmt.Sprintf("%s first, then %s of watching for re-failures", entries(j.Canary), durationText(j.CanaryWindow))
	}
	if j.Force {
		vm.Options = append(vm.Options, "forced: started while another job ran on a destination")
	}
	if j.PublishQuarantine {
		vm.Options = append(vm.Options, "Kafka entries also published to <topic>.quarantine")
	}
	for _, it := range items {
		vm.Ledger = append(vm.Ledger, templates.LedgerRow{
			Seq: it.Seq, EntryID: it.EntryID, Href: entryHref(it.EntryID), Destination: it.Destination,
			State: it.State, StateCls: templates.JobStateClass(it.State), Error: it.Error, At: fmtTime(it.At),
		})
	}
	if next > 0 {
		vm.LedgerNext = jobHref(j.ID) + "?after_seq=" + strconv.Itoa(next)
	}
	if after, _ := strconv.Atoi(c.Query("after_seq")); after > 0 {
		vm.LedgerFirst = jobHref(j.ID)
	}
	return s.render(c, templates.Page{Title: "Job #" + itoa64(j.ID), Area: templates.AreaDeadLetters, Refresh: vm.Live},
		templates.JobView(vm))
}

// handleDLQJobCancel asks a running job to stop, then back to its page.
func (s *Server) handleDLQJobCancel(c *fiber.Ctx) error {
	jobs, err := s.dlqJobs()
	if err != nil {
		return s.fail(c, err)
	}
	j, err := s.loadJob(c, jobs)
	if err != nil {
		return s.fail(c, err)
	}
	cj, err := jobs.Cancel(c.UserContext(), actorOf(c), j.ID)
	if err != nil {
		if code := delivery.ErrorCode(err); code == delivery.EINVALID || code == delivery.ECONFLICT {
			return s.flash(c, jobHref(j.ID), "Not cancelled: "+delivery.ErrorMessage(err))
		}
		return s.fail(c, err)
	}
	j = cj
	return s.flash(c, jobHref(j.ID), fmt.Sprintf("Job #%d is %s: it stops after the batch in flight; what was already %s stays %s.",
		j.ID, j.State, doneVerb(j.Action), doneVerb(j.Action)))
}

// entryJobs is the jobs part of an entry's page. Edit and redrive is
// offered only on a JSON payload the principal reads in full: a masked
// payload sent back would overwrite the real values.
func (s *Server) entryJobs(c *fiber.Ctx, e dlqstore.Entry, pv payloadView) (templates.EntryJobs, error) {
	p := principal(c)
	r := entryResource(e)
	j := templates.EntryJobs{DLQActions: s.jobActions(p, r), ID: e.ID}
	if s.jobs == nil {
		return j, nil
	}
	// Offer what applies to the entry's status, as the engine does.
	switch e.Status {
	case dlqstore.StatusDead:
		j.Restore = false
	case dlqstore.StatusQuarantined:
		j.Quarantine = false
	case dlqstore.StatusDiscarded:
		j.Redrive, j.Quarantine, j.Discard = false, false, false
	default: // redriving, redriven, resolved
		j.Redrive, j.Quarantine, j.Discard, j.Restore = false, false, false, false
	}
	if s.jobs.EditEnabled() && j.Redrive && s.policy.Can(p, access.ActionEdit, r) {
		text, kind := browse.Pretty(pv.Body)
		switch {
		case !pv.Allowed:
			j.EditNote = "Edit and redrive needs read access to the payload."
		case pv.Masked > 0:
			j.EditNote = "Edit and redrive needs the unmasked payload (read_pii): masked values would be sent."
		case kind != "json":
			j.EditNote = "Edit and redrive works on JSON payloads only."
		default:
			j.Edit, j.EditPayload = true, text
		}
	}
	hist, err := s.jobs.History(c.UserContext(), actorOf(c), e.ID)
	if err != nil {
		return j, err
	}
	now := s.now()
	for _, h := range hist {
		j.History = append(j.History, templates.JobHistoryRow{
			JobID: h.JobID, JobHref: jobHref(h.JobID), Action: string(h.Action), Actor: h.Actor, Reason: h.Reason,
			State: h.State, StateClass: templates.JobStateClass(h.State), Destination: h.Destination, Error: h.Error,
			At: templates.Ago(now, h.At), AtExact: fmtTime(h.At),
		})
	}
	return j, nil
}
