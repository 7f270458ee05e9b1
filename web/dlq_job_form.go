package web

import (
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

	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/redrive"
	"switchyard/web/templates"
)

// The plan and start forms of a job: parsing what they send, the plan
// page (a dry run and the confirmation form) and starting.

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

// parseJobForm reads action, selector (JSON) or ids (repeatable or
// comma-separated) or group, reason, rate, canary, canary_window
// (seconds), destination, force, publish_quarantine, and for edit_redrive
// payload and headers, the rate within opts.MaxRate. Errors are EINVALID;
// the returned input holds what could be read.
func parseJobForm(c *fiber.Ctx, opts dlq.JobOptions) (jobInput, error) {
	v := formValues(c)
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	in := jobInput{form: templates.JobForm{
		Reason: v.Get("reason"), Rate: get("rate"), Canary: get("canary"), CanaryWindow: get("canary_window"),
		Target: get("destination"), Force: checked(get("force")), PublishQuarantine: checked(get("publish_quarantine")),
		Payload: v.Get("payload"), Headers: v.Get("headers"),
	}}
	a := redrive.Action(get("action"))
	in.req.Action = a
	f := &in.form
	f.MaxRate = strconv.FormatFloat(opts.MaxRate, 'f', -1, 64)
	f.Sends, f.Quarantine, f.Edit = a.Republishes(), a == redrive.ActionQuarantine, a == redrive.ActionEditRedrive
	if f.Rate == "" {
		f.Rate = strconv.FormatFloat(min(redrive.DefaultRate, opts.MaxRate), 'f', -1, 64)
	}
	if f.CanaryWindow == "" {
		f.CanaryWindow = strconv.Itoa(int(redrive.DefaultCanaryWindow / time.Second))
	}
	if !a.Valid() {
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
	r.Target, r.Force, r.PublishQuarantine = f.Target, f.Force, f.PublishQuarantine && f.Quarantine
	if f.Sends {
		if r.Rate, err = strconv.ParseFloat(f.Rate, 64); err != nil || math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0) || r.Rate <= 0 {
			return in, delivery.Errorf(delivery.EINVALID, "rate must be a positive number of messages per second")
		}
		if f.Canary != "" {
			if r.Canary, err = strconv.Atoi(f.Canary); err != nil || r.Canary < 0 {
				return in, delivery.Errorf(delivery.EINVALID, "canary must be a count of entries (0 for none)")
			}
		} else {
			// A form that says nothing of a canary (a page's button) gets
			// the engine's default for a big set; the plan shows it.
			r.CanaryDefault = true
		}
		secs, err := strconv.Atoi(f.CanaryWindow)
		if err != nil || secs < 1 || secs > 24*3600 {
			return in, delivery.Errorf(delivery.EINVALID, "the canary window must be 1 to 86400 seconds")
		}
		if r.Canary > 0 || r.CanaryDefault {
			r.CanaryWindow = time.Duration(secs) * time.Second
		}
	} else if f.Target != "" {
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

// selectorOf reads the selection: a JSON selector (ids, group, filter or
// rest_of), or ids, or a group.
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
	for _, set := range []bool{len(sel.IDs) > 0, sel.Group != 0, sel.Filter != nil, sel.RestOf != 0} {
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
	jobs, opts, err := s.dlqJobs()
	if err != nil {
		return s.fail(c, err)
	}
	in, err := parseJobForm(c, opts)
	return s.showPlan(c, jobs, in, err)
}

// handleDLQJobStart starts the job of the confirmation form and goes to
// its page; a refusal shows the plan page again with the reason (and, for
// a conflict, the option to force).
func (s *Server) handleDLQJobStart(c *fiber.Ctx) error {
	jobs, opts, err := s.dlqJobs()
	if err != nil {
		return s.fail(c, err)
	}
	in, err := parseJobForm(c, opts)
	if err != nil {
		return s.showPlan(c, jobs, in, err)
	}
	j, err := jobs.Start(c.UserContext(), callerOf(c), in.req)
	if err != nil {
		return s.showPlan(c, jobs, in, err)
	}
	return s.flash(c, jobHref(j.ID), fmt.Sprintf("Job #%d started: %s of %s.",
		j.ID, strings.ToLower(actionLabel(j.Action)), templates.Entries(j.Total)))
}

// showPlan renders the plan page: the dry run of in when it is complete,
// and failed — why parsing or starting did not go through — in place.
func (s *Server) showPlan(c *fiber.Ctx, jobs DLQJobs, in jobInput, failed error) error {
	vm := templates.JobPlan{
		Action: string(in.req.Action), ActionLabel: actionLabel(in.req.Action),
		Selector: in.selector, Form: in.form,
	}
	if in.selector != "" {
		vm.SelectorText = selectorText(in.req.Selector, s.groupTitle(c, in.req.Selector))
	}
	status := fiber.StatusOK
	// Plan whenever the selection could be read, so that a form refused
	// for one field comes back with its plan and what was typed.
	if in.selector != "" {
		plan, err := jobs.Plan(c.UserContext(), callerOf(c), in.req)
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
	if vm.Planned && vm.Form.Sends && vm.Form.Canary == "" {
		// What the plan gave a form that asked for the default canary.
		vm.Form.Canary = strconv.Itoa(vm.PlanCanary)
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
	vm.Count, vm.CountN, vm.Entries = templates.Exact(int64(p.Count)), p.Count, templates.Entries(p.Count)
	vm.PlanCanary, vm.Canary = p.Canary, "none"
	if p.Canary > 0 {
		vm.Canary = canaryText(p.Canary, p.CanaryWindow)
	}
	for _, t := range p.Targets {
		vm.Targets = append(vm.Targets, templates.JobTarget{Target: t.Target, Count: templates.Exact(int64(t.Count))})
	}
	for _, si := range p.Sample {
		row := templates.JobSampleRow{EntryID: si.EntryID, Href: entryHref(si.EntryID), Target: si.Target,
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

// canaryText says what a canary does: "10 entries first, then 30s of
// watching for re-failures".
func canaryText(n int, window time.Duration) string {
	return fmt.Sprintf("%s first, then %s of watching for re-failures", templates.Entries(n), durationText(window))
}

// groupTitle is the title of the failure group sel selects, when the
// caller can see it ("" otherwise: the selection then names its id).
func (s *Server) groupTitle(c *fiber.Ctx, sel redrive.Selector) string {
	if sel.Group == 0 || s.dlq == nil {
		return ""
	}
	g, err := s.dlq.Group(c.UserContext(), callerOf(c), sel.Group)
	if err != nil {
		return ""
	}
	return g.Title
}
