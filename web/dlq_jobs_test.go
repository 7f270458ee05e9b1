package web

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/internal/testenv"
	"switchyard/redrive"
)

var (
	hiddenRE    = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
	jobPathRE   = regexp.MustCompile(`^/dead-letters/jobs/(\d+)$`)
	ledgerRowRE = regexp.MustCompile(`data-testid="ledger-row" data-entry-id="(\d+)" data-state="([^"]*)"`)
	historyRE   = regexp.MustCompile(`data-testid="history-row" data-job-id="(\d+)" data-action="([^"]*)"`)
	textRE      = func(testid string) *regexp.Regexp {
		return regexp.MustCompile(`data-testid="` + testid + `"[^>]*>([^<]*)<`)
	}
)

// section returns the element of body that opens with the tag holding
// attr, up to its closing tag: enough for forms and tables, which do not
// nest themselves.
func section(body, attr, closing string) string {
	i := strings.Index(body, attr)
	if i < 0 {
		return ""
	}
	start := strings.LastIndex(body[:i], "<")
	end := strings.Index(body[i:], closing)
	if end < 0 {
		return body[start:]
	}
	return body[start : i+end+len(closing)]
}

// hiddenFields are a form's hidden inputs, unescaped as a browser would
// send them (the CSRF token excluded: client.post adds its own).
func hiddenFields(form string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(form, -1) {
		if m[1] != "_csrf" {
			v.Add(m[1], html.UnescapeString(m[2]))
		}
	}
	return v
}

func textOf(t *testing.T, body, testid string) string {
	t.Helper()
	m := textRE(testid).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in\n%.2000s", testid, body)
	}
	return html.UnescapeString(strings.TrimSpace(m[1]))
}

func idList(ids ...int64) string {
	var s []string
	for _, id := range ids {
		s = append(s, strconv.FormatInt(id, 10))
	}
	return strings.Join(s, ",")
}

// startJob posts the plan page's start form (with reason) and returns the
// new job's id from the redirect.
func startJob(t *testing.T, c *client, plan response, reason string, extra ...string) int64 {
	t.Helper()
	form := section(plan.body, `data-testid="job-start-form"`, "</form>")
	if form == "" {
		t.Fatalf("plan page %d has no start form:\n%.3000s", plan.status, plan.body)
	}
	v := hiddenFields(form)
	v.Set("reason", reason)
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	r := c.post(t, "/dead-letters/jobs", v)
	if r.status != http.StatusSeeOther {
		t.Fatalf("start = %d, want 303\n%.3000s", r.status, r.body)
	}
	m := jobPathRE.FindStringSubmatch(r.header.Get("Location"))
	if m == nil {
		t.Fatalf("start redirects to %q, want a job page", r.header.Get("Location"))
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	return id
}

// overseer is an actor with an admin's grants, who sees every job: for
// tests that watch a job's state rather than test who may see it.
func overseer() redrive.Actor {
	return redrive.Actor{P: &access.Principal{User: "overseer", Grants: []access.Grant{
		{Role: access.RoleAdmin, Actions: access.Actions(), Resources: []string{"*"}, Tenants: []string{"*"}}}}}
}

// waitJob polls the engine until the job's state is one of states; the
// deadline only bounds a hung engine.
func waitJob(t *testing.T, je *jobsEnv, id int64, states ...dlqstore.JobState) redrive.Job {
	t.Helper()
	var j redrive.Job
	testenv.WaitWithin(t, 15*time.Second, fmt.Sprintf("job %d to be one of %v", id, states), func() bool {
		var err error
		if j, err = je.engine.Job(context.Background(), overseer(), id); err != nil {
			t.Fatal(err)
		}
		return slices.Contains(states, j.State)
	})
	return j
}

func statusOfEntry(t *testing.T, e *env, id int64) dlqstore.Status {
	t.Helper()
	en, err := e.dlq.Entry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return en.Status
}

func TestDeadLetterJobsNotConfigured(t *testing.T) {
	e := newEnv(t, envOptions{})
	tess := e.as(t, "tess")
	for _, path := range []string{"/dead-letters/jobs", "/dead-letters/jobs/1"} {
		r := tess.get(t, path)
		if r.status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, r.status)
		}
		mustContain(t, path, r.body, "dead-letter jobs are not configured")
	}
	r := tess.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"discard"}, "ids": {idList(e.dlqIDs["nf1"])}})
	if r.status != http.StatusNotFound {
		t.Errorf("plan = %d, want 404", r.status)
	}
	r = tess.api(t, http.MethodPost, "/api/v1/dlq/jobs", redrive.Request{Action: redrive.ActionDiscard, Reason: "x",
		Selector: redrive.Selector{IDs: []int64{e.dlqIDs["nf1"]}}})
	if got := decodeJSON[delivery.ErrorResponse](t, r); r.status != http.StatusNotFound || got.Error.Code != delivery.ENOTFOUND {
		t.Errorf("API create = %d %+v, want 404 ENOTFOUND", r.status, got)
	}
	// No buttons, no checkboxes, no jobs tab; the history says nothing
	// happened.
	r = tess.get(t, "/dead-letters/entries")
	mustNotContain(t, "entries without jobs", r.body, `data-testid="entry-select"`, `data-testid="entries-actions"`, `data-testid="tab-jobs"`)
	r = tess.get(t, entryHref(e.dlqIDs["nf1"]))
	mustNotContain(t, "entry without jobs", r.body, `data-testid="entry-actions"`, `data-testid="entry-edit"`)
	mustContain(t, "entry without jobs", r.body, `data-testid="entry-history-empty"`)
	r = tess.get(t, "/dead-letters")
	mustNotContain(t, "groups without jobs", r.body, `data-testid="group-redrive"`, `data-testid="tab-jobs"`)
}

func TestDeadLetterJobPlanPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.withJobs(t)
	nf1, nf2, nf3 := e.dlqIDs["nf1"], e.dlqIDs["nf2"], e.dlqIDs["nf3"]
	tess := e.as(t, "tess")

	// Two t1 entries of kafka:demo: the exact count, per destination, the
	// sample with the header changes, and the confirmation form.
	r := tess.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"redrive"}, "ids": {idList(nf1, nf2)}})
	if r.status != http.StatusOK {
		t.Fatalf("plan = %d\n%s", r.status, r.body)
	}
	if got := textOf(t, r.body, "plan-count"); got != "2" {
		t.Errorf("plan count = %q, want 2", got)
	}
	mustContain(t, "plan", r.body,
		`data-testid="plan-destination"><td class="mono name">kafka:demo/`+testTopic+`</td><td class="num">2</td>`,
		`data-testid="plan-sample-row" data-entry-id="`+strconv.FormatInt(nf1, 10)+`"`,
		`data-testid="plan-sample-row" data-entry-id="`+strconv.FormatInt(nf2, 10)+`"`,
		delivery.HeaderRedriveCount+": 1", delivery.HeaderErrorCode, // added, removed
		"order 4711 not found", `data-testid="plan-estimate"`)
	start := section(r.body, `data-testid="job-start-form"`, "</form>")
	mustContain(t, "start form", start, `name="_csrf" value="`+tess.csrf+`"`, `name="reason"`, `name="rate" value="50"`,
		`name="canary"`, `name="destination"`, `name="force"`)
	sel := hiddenFields(start).Get("selector")
	var got redrive.Selector
	if err := json.Unmarshal([]byte(sel), &got); err != nil || !sameIDs(got.IDs, []int64{nf1, nf2}) {
		t.Errorf("hidden selector = %q (%v)", sel, err)
	}
	if n := len(e.mustJobs(t)); n != 0 {
		t.Errorf("planning started %d jobs", n)
	}

	// nf3 is t2's: tess's plan leaves it out and says so.
	r = tess.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"redrive"}, "ids": {idList(nf1, nf3)}})
	if got := textOf(t, r.body, "plan-count"); got != "1" {
		t.Errorf("plan of nf1+nf3 for tess = %q, want 1", got)
	}
	mustContain(t, "plan warning", r.body, `data-testid="plan-warning"`, "not found or not yours")

	// The failure group of the three "order not found": tess's tenant
	// holds two of them, admin sees all three.
	nf, err := e.dlq.Entry(context.Background(), nf1)
	if err != nil {
		t.Fatal(err)
	}
	groups := tess.get(t, "/dead-letters")
	form := section(groups.body, `data-testid="group-redrive"`, "</form>")
	if form == "" {
		t.Fatalf("no Redrive group button for tess")
	}
	gr := tess.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"redrive"}, "selector": {`{"group":` + strconv.FormatInt(nf.GroupID, 10) + `}`}})
	if got := textOf(t, gr.body, "plan-count"); got != "2" {
		t.Errorf("group plan for tess = %q, want 2", got)
	}
	admin := e.as(t, "admin")
	gr = admin.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"redrive"}, "group": {strconv.FormatInt(nf.GroupID, 10)}})
	if got := textOf(t, gr.body, "plan-count"); got != "3" {
		t.Errorf("group plan for admin = %q, want 3", got)
	}

	// "Redrive all N matching" carries the filter, full text included.
	list := admin.get(t, "/dead-letters/entries?q=declined")
	all := section(list.body, `data-testid="redrive-all"`, "</form>")
	mustContain(t, "redrive all", all, "Redrive all 1 matching")
	r = admin.post(t, "/dead-letters/jobs/plan", hiddenFields(all))
	if got := textOf(t, r.body, "plan-count"); got != "1" {
		t.Errorf("plan of q=declined = %q, want 1\n%s", got, r.body)
	}
	mustContain(t, "filter plan", r.body, `data-entry-id="`+strconv.FormatInt(e.dlqIDs["declined"], 10)+`"`, "“declined”")

	// A filter's full text stays off payload text for those who may not
	// read it unmasked, as on the entries list: tess (no read_pii) cannot
	// count entries by what their payloads say.
	probe := url.Values{"action": {"quarantine"}, "selector": {`{"filter":{"q":"fixture"}}`}}
	if got := textOf(t, admin.post(t, "/dead-letters/jobs/plan", probe).body, "plan-count"); got == "0" {
		t.Errorf("admin's payload search planned nothing")
	}
	if got := textOf(t, tess.post(t, "/dead-letters/jobs/plan", probe).body, "plan-count"); got != "0" {
		t.Errorf("tess's payload search planned %s entries, want 0", got)
	}
	probe.Set("selector", `{"filter":{"q":"payload:fixture"}}`)
	r = tess.post(t, "/dead-letters/jobs/plan", probe)
	if r.status != http.StatusBadRequest {
		t.Errorf("tess payload: search = %d, want 400", r.status)
	}
	mustContain(t, "payload search", r.body, "you may not search payload text")

	// Refusals are messages on the page, not error pages.
	for _, tc := range []struct {
		user   string
		form   url.Values
		status int
		want   string
	}{
		{"vera", url.Values{"action": {"redrive"}, "ids": {idList(nf1)}}, http.StatusForbidden, "you may not redrive dead letters"},
		{"tess", url.Values{"action": {"redrive"}}, http.StatusBadRequest, "nothing is selected"},
		{"tess", url.Values{"action": {"explode"}, "ids": {idList(nf1)}}, http.StatusBadRequest, "action must be"},
		{"tess", url.Values{"action": {"redrive"}, "ids": {idList(nf1)}, "destination": {"kafka:demo/elsewhere"}}, http.StatusForbidden, "redrive_elsewhere"},
		{"tess", url.Values{"action": {"redrive"}, "selector": {`{"ids":[1],"bogus":1}`}}, http.StatusBadRequest, "unknown field"},
	} {
		r := e.as(t, tc.user).post(t, "/dead-letters/jobs/plan", tc.form)
		if r.status != tc.status {
			t.Errorf("%s plan %v = %d, want %d", tc.user, tc.form, r.status, tc.status)
		}
		mustContain(t, tc.user+" plan refusal", r.body, `data-testid="plan-error"`, tc.want)
		mustNotContain(t, tc.user+" plan refusal", r.body, `data-testid="job-start-form"`, `data-testid="error-page"`)
	}
	// otto's rules reach none of them: a plan of nothing, and no form.
	r = e.as(t, "otto").post(t, "/dead-letters/jobs/plan", url.Values{"action": {"redrive"}, "ids": {idList(nf1, nf2)}})
	if got := textOf(t, r.body, "plan-count"); r.status != http.StatusOK || got != "0" {
		t.Errorf("otto plan = %d %q, want 200 and 0", r.status, got)
	}
	mustNotContain(t, "otto plan", r.body, `data-testid="job-start-form"`)
}

func (e *env) mustJobs(t *testing.T) []redrive.Job {
	t.Helper()
	jobs, _, err := e.srv.dlq.Jobs(context.Background(), dlq.Caller{Actor: overseer()}, redrive.JobFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func TestDeadLetterJobDiscardAndRestore(t *testing.T) {
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	nf1, nf2 := e.dlqIDs["nf1"], e.dlqIDs["nf2"]
	tess := e.as(t, "tess")

	// The entries list: a checkbox per row in the "entries-select" form,
	// and its buttons.
	list := tess.get(t, "/dead-letters/entries")
	mustContain(t, "entries", list.body, `<form method="post" action="/dead-letters/jobs/plan" id="entries-select"`,
		`name="ids" value="`+strconv.FormatInt(nf1, 10)+`" form="entries-select"`,
		`form="entries-select" name="action" value="discard" data-testid="selected-discard"`,
		`data-testid="selected-redrive"`, `data-testid="selected-quarantine"`, `data-testid="tab-jobs"`)
	sel := section(list.body, `id="entries-select"`, "</form>")
	mustContain(t, "select form", sel, `name="_csrf" value="`+tess.csrf+`"`)
	// A viewer gets no checkboxes.
	mustNotContain(t, "vera entries", e.as(t, "vera").get(t, "/dead-letters/entries").body, `data-testid="entry-select"`)

	// Tick nf1 and nf2, press "Discard selected".
	plan := tess.post(t, "/dead-letters/jobs/plan", url.Values{"ids": {idList(nf1), idList(nf2)}, "action": {"discard"}})
	if got := textOf(t, plan.body, "plan-count"); got != "2" {
		t.Fatalf("discard plan = %q\n%s", got, plan.body)
	}
	// Without a reason the job does not start.
	v := hiddenFields(section(plan.body, `data-testid="job-start-form"`, "</form>"))
	r := tess.post(t, "/dead-letters/jobs", v)
	if r.status != http.StatusBadRequest {
		t.Errorf("start without reason = %d, want 400", r.status)
	}
	mustContain(t, "no reason", r.body, `data-testid="plan-error"`, "needs a reason", `data-testid="job-start-form"`)

	id := startJob(t, tess, plan, "duplicates of a replayed batch")
	j := waitJob(t, je, id, dlqstore.JobCompleted)
	if j.Done != 2 || j.Actor != "tess" {
		t.Errorf("job = %+v, want 2 done by tess", j)
	}
	for _, n := range []int64{nf1, nf2} {
		if st := statusOfEntry(t, e, n); st != dlqstore.StatusDiscarded {
			t.Errorf("entry %d is %s, want discarded", n, st)
		}
	}
	page := tess.get(t, jobHref(id))
	mustContain(t, "job page", page.body, `data-testid="job-state" data-state="completed"`,
		"Completed: 2 of 2 were discarded.", "duplicates of a replayed batch", `data-testid="job-actor">tess<`)
	rows := ledgerRowRE.FindAllStringSubmatch(page.body, -1)
	if len(rows) != 2 || dlqstore.ItemState(rows[0][2]) != dlqstore.ItemSent || dlqstore.ItemState(rows[1][2]) != dlqstore.ItemSent {
		t.Errorf("ledger = %v, want both entries sent", rows)
	}
	mustContain(t, "ledger links", page.body, `href="`+entryHref(nf1)+`"`, `href="`+entryHref(nf2)+`"`)
	mustNotContain(t, "finished job", page.body, `data-testid="job-cancel"`, `data-refresh-ms`)

	// The entry's page: history, and Restore (discarded) instead of
	// Discard.
	ep := tess.get(t, entryHref(nf1))
	h := historyRE.FindAllStringSubmatch(ep.body, -1)
	if len(h) != 1 || h[0][1] != strconv.FormatInt(id, 10) || h[0][2] != "discard" {
		t.Fatalf("history = %v", h)
	}
	mustContain(t, "history", ep.body, `data-testid="history-actor">tess<`, "duplicates of a replayed batch", `href="`+jobHref(id)+`"`,
		`data-testid="entry-status-reason">discarded: duplicates of a replayed batch<`)
	mustNotContain(t, "history", ep.body, `data-testid="entry-history-empty"`, `data-testid="entry-discard"`)
	restore := section(ep.body, `data-testid="entry-restore"`, "</form>")
	if restore == "" {
		t.Fatalf("no Restore button on a discarded entry")
	}
	plan = tess.post(t, "/dead-letters/jobs/plan", hiddenFields(restore))
	if got := textOf(t, plan.body, "plan-count"); got != "1" {
		t.Fatalf("restore plan = %q", got)
	}
	rid := startJob(t, tess, plan, "discarded by mistake")
	waitJob(t, je, rid, dlqstore.JobCompleted)
	if st := statusOfEntry(t, e, nf1); st != dlqstore.StatusDead {
		t.Errorf("restored entry is %s, want dead", st)
	}
	ep = tess.get(t, entryHref(nf1))
	if h := historyRE.FindAllStringSubmatch(ep.body, -1); len(h) != 2 {
		t.Errorf("history after restore = %v, want discard and restore", h)
	}
	mustContain(t, "restored entry", ep.body, `data-testid="entry-discard"`, "discarded by mistake")
	mustNotContain(t, "restored entry", ep.body, `data-testid="entry-restore"`)

	// The jobs list, newest first.
	jl := tess.get(t, "/dead-letters/jobs")
	mustContain(t, "jobs list", jl.body, `data-testid="jobs-finished"`)
	if i, k := strings.Index(jl.body, `data-job-id="`+strconv.FormatInt(rid, 10)+`"`), strings.Index(jl.body, `data-job-id="`+strconv.FormatInt(id, 10)+`"`); i < 0 || k < i {
		t.Errorf("jobs list: restore job %d should come before discard job %d", rid, id)
	}
	// otto may not see tess's jobs.
	if r := e.as(t, "otto").get(t, jobHref(id)); r.status != http.StatusNotFound {
		t.Errorf("otto job page = %d, want 404", r.status)
	}
	mustNotContain(t, "otto jobs", e.as(t, "otto").get(t, "/dead-letters/jobs").body, `data-testid="job-row"`)
}

func TestDeadLetterJobRedriveSendsToKafka(t *testing.T) {
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	nf1 := e.dlqIDs["nf1"]
	tess := e.as(t, "tess")
	ep := tess.get(t, entryHref(nf1))
	form := section(ep.body, `data-testid="entry-redrive"`, "</form>")
	if form == "" {
		t.Fatalf("no Redrive button on a dead entry")
	}
	plan := tess.post(t, "/dead-letters/jobs/plan", hiddenFields(form))
	id := startJob(t, tess, plan, "the order service is fixed")
	waitJob(t, je, id, dlqstore.JobCompleted)
	if st := statusOfEntry(t, e, nf1); st != dlqstore.StatusRedriven {
		t.Errorf("entry is %s, want redriven", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rec *kgo.Record
	for rec == nil && ctx.Err() == nil {
		je.kafka.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if string(r.Key) == "key-nf1" {
				rec = r
			}
		})
	}
	if rec == nil {
		t.Fatal("the redriven record never reached " + testTopic)
	}
	if rec.Topic != testTopic {
		t.Errorf("record topic = %s", rec.Topic)
	}
	headers := map[string]string{}
	for _, h := range rec.Headers {
		headers[h.Key] = string(h.Value)
	}
	if got := headers[delivery.HeaderRedriveJob]; got != strconv.FormatInt(id, 10) {
		t.Errorf("redrive job header = %q, want %d (headers %v)", got, id, headers)
	}
	if _, ok := headers[delivery.HeaderErrorCode]; ok {
		t.Errorf("the dead-letter error header was sent along: %v", headers)
	}
}

func TestDeadLetterJobLiveRefreshAndCancel(t *testing.T) {
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	nf1, nf2 := e.dlqIDs["nf1"], e.dlqIDs["nf2"]
	tess := e.as(t, "tess")
	plan := tess.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"redrive"}, "ids": {idList(nf1, nf2)}})
	id := startJob(t, tess, plan, "canary first", "canary", "1", "canary_window", "3600")
	waitJob(t, je, id, dlqstore.JobCanaryWait)

	page := tess.get(t, jobHref(id))
	mustContain(t, "running job", page.body, `<main id="panel" data-refresh-ms="5000"`, `http-equiv="refresh"`,
		`data-testid="job-live"`, `data-state="canary_wait"`, "The canary (1 entry) was sent")
	cancelForm := section(page.body, `data-testid="job-cancel-form"`, "</form>")
	mustContain(t, "cancel form", cancelForm, `action="/dead-letters/jobs/`+strconv.FormatInt(id, 10)+`/cancel"`,
		`name="_csrf" value="`+tess.csrf+`"`)
	// The jobs list shows it under Running and refreshes too.
	jl := tess.get(t, "/dead-letters/jobs")
	mustContain(t, "jobs list", jl.body, `data-testid="jobs-running"`, `data-refresh-ms="5000"`)

	r := tess.post(t, jobHref(id)+"/cancel", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != jobHref(id) {
		t.Fatalf("cancel = %d → %q", r.status, r.header.Get("Location"))
	}
	j := waitJob(t, je, id, dlqstore.JobCancelled)
	page = tess.get(t, jobHref(id))
	mustContain(t, "cancelled job", page.body, `data-refresh-stop`,
		"Cancelled by tess after 1 of 2 were sent; nothing sent was reverted")
	mustNotContain(t, "cancelled job", page.body, `data-testid="job-cancel"`, `data-refresh-ms`, `http-equiv="refresh"`)
	if j.Done != 1 || j.Cancelled != 1 {
		t.Errorf("cancelled job = %+v, want 1 sent and 1 cancelled", j)
	}
	// The one not sent is back where it was; its ledger row says so.
	rows := ledgerRowRE.FindAllStringSubmatch(page.body, -1)
	states := map[string]string{}
	for _, m := range rows {
		states[m[1]] = m[2]
	}
	var dead int
	for _, n := range []int64{nf1, nf2} {
		if statusOfEntry(t, e, n) == dlqstore.StatusDead {
			dead++
			if s := states[strconv.FormatInt(n, 10)]; dlqstore.ItemState(s) != dlqstore.ItemCancelled {
				t.Errorf("ledger state of unsent entry %d = %q, want cancelled", n, s)
			}
		}
	}
	if dead != 1 {
		t.Errorf("%d entries back to dead, want 1 (ledger %v)", dead, rows)
	}
	// Cancelling again says it has ended.
	r = tess.post(t, jobHref(id)+"/cancel", nil)
	if r.status != http.StatusSeeOther {
		t.Errorf("second cancel = %d", r.status)
	}
	mustContain(t, "second cancel", tess.get(t, jobHref(id)).body, `data-testid="flash">Not cancelled: job `+strconv.FormatInt(id, 10)+` has already ended`)
}

func TestDeadLetterJobConflictOffersForce(t *testing.T) {
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	tess := e.as(t, "tess")
	plan := tess.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"redrive"}, "ids": {idList(e.dlqIDs["nf1"], e.dlqIDs["nf2"])}})
	first := startJob(t, tess, plan, "first", "canary", "1", "canary_window", "3600")
	waitJob(t, je, first, dlqstore.JobCanaryWait)

	plan = tess.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"redrive"}, "ids": {idList(e.dlqIDs["script"])}})
	v := hiddenFields(section(plan.body, `data-testid="job-start-form"`, "</form>"))
	v.Set("reason", "second")
	r := tess.post(t, "/dead-letters/jobs", v)
	if r.status != http.StatusConflict {
		t.Fatalf("conflicting start = %d, want 409\n%s", r.status, r.body)
	}
	mustContain(t, "conflict", r.body, `data-testid="plan-error"`, "job "+strconv.FormatInt(first, 10)+" is still running on kafka:demo/"+testTopic,
		`data-testid="job-start-force"`)
	second := startJob(t, tess, r, "second", "force", "1")
	j := waitJob(t, je, second, dlqstore.JobCompleted)
	if !j.Force || j.Done != 1 {
		t.Errorf("forced job = %+v", j)
	}
}

func TestDeadLetterJobsAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	admin := e.as(t, "admin")
	declined := e.dlqIDs["declined"]
	req := redrive.Request{Action: redrive.ActionDiscard, Selector: redrive.Selector{IDs: []int64{declined}}, DryRun: true}

	r := admin.api(t, http.MethodPost, "/api/v1/dlq/jobs", req)
	plan := decodeJSON[struct {
		Plan redrive.Plan `json:"plan"`
	}](t, r)
	if r.status != http.StatusOK || plan.Plan.Count != 1 || plan.Plan.Action != redrive.ActionDiscard {
		t.Fatalf("dry run = %d %+v", r.status, plan)
	}
	if n := len(e.mustJobs(t)); n != 0 {
		t.Fatalf("a dry run started %d jobs", n)
	}
	req.DryRun = false
	r = admin.api(t, http.MethodPost, "/api/v1/dlq/jobs", req)
	if got := decodeJSON[delivery.ErrorResponse](t, r); r.status != http.StatusBadRequest || got.Error.Code != delivery.EINVALID ||
		!strings.Contains(got.Error.Message, "reason") {
		t.Errorf("create without reason = %d %+v", r.status, got)
	}
	r = admin.api(t, http.MethodPost, "/api/v1/dlq/jobs", map[string]any{"action": "discard", "selecter": map[string]any{}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "unknown field") {
		t.Errorf("misspelt body = %d %s", r.status, r.body)
	}
	req.Reason = "card declined for good"
	r = admin.api(t, http.MethodPost, "/api/v1/dlq/jobs", req)
	created := decodeJSON[redrive.Job](t, r)
	if r.status != http.StatusCreated || created.ID == 0 || created.Total != 1 || r.header.Get("Location") != "/api/v1/dlq/jobs/"+strconv.FormatInt(created.ID, 10) {
		t.Fatalf("create = %d %+v %v", r.status, created, r.header)
	}
	waitJob(t, je, created.ID, dlqstore.JobCompleted)

	type detail struct {
		redrive.Job
		Ledger  []redrive.LedgerItem `json:"ledger"`
		NextSeq int                  `json:"next_seq"`
	}
	r = admin.get(t, "/api/v1/dlq/jobs/"+strconv.FormatInt(created.ID, 10))
	d := decodeJSON[detail](t, r)
	if r.status != http.StatusOK || d.State != dlqstore.JobCompleted || len(d.Ledger) != 1 ||
		d.Ledger[0].EntryID != declined || d.Ledger[0].State != dlqstore.ItemSent || d.NextSeq != 0 {
		t.Errorf("get = %d %+v", r.status, d)
	}
	r = admin.api(t, http.MethodPost, "/api/v1/dlq/jobs/"+strconv.FormatInt(created.ID, 10)+"/cancel", nil)
	if got := decodeJSON[delivery.ErrorResponse](t, r); r.status != http.StatusBadRequest || got.Error.Code != delivery.EINVALID {
		t.Errorf("cancel of a finished job = %d %+v", r.status, got)
	}

	// A running job: the ledger pages, the running filter, cancel.
	r = admin.api(t, http.MethodPost, "/api/v1/dlq/jobs", redrive.Request{Action: redrive.ActionRedrive, Reason: "canary",
		Selector: redrive.Selector{IDs: []int64{e.dlqIDs["nf3"], e.dlqIDs["timeout"]}}, Canary: 1, CanaryWindow: time.Hour})
	running := decodeJSON[redrive.Job](t, r)
	if r.status != http.StatusCreated {
		t.Fatalf("create canary job = %d %s", r.status, r.body)
	}
	waitJob(t, je, running.ID, dlqstore.JobCanaryWait)
	base := "/api/v1/dlq/jobs/" + strconv.FormatInt(running.ID, 10)
	d = decodeJSON[detail](t, admin.get(t, base+"?limit=1"))
	if len(d.Ledger) != 1 || d.NextSeq == 0 {
		t.Fatalf("first ledger page = %+v", d)
	}
	d2 := decodeJSON[detail](t, admin.get(t, base+"?limit=1&after_seq="+strconv.Itoa(d.NextSeq)))
	if len(d2.Ledger) != 1 || d2.Ledger[0].Seq == d.Ledger[0].Seq || d2.NextSeq != 0 {
		t.Errorf("second ledger page = %+v after %+v", d2, d)
	}
	list := decodeJSON[struct {
		Jobs []redrive.Job `json:"jobs"`
	}](t, admin.get(t, "/api/v1/dlq/jobs?running=1"))
	if len(list.Jobs) != 1 || list.Jobs[0].ID != running.ID {
		t.Errorf("running jobs = %+v, want only %d", list.Jobs, running.ID)
	}
	list = decodeJSON[struct {
		Jobs []redrive.Job `json:"jobs"`
	}](t, admin.get(t, "/api/v1/dlq/jobs"))
	if len(list.Jobs) != 2 || list.Jobs[0].ID != running.ID || list.Jobs[1].ID != created.ID {
		t.Errorf("jobs = %+v, want %d then %d", list.Jobs, running.ID, created.ID)
	}
	r = admin.api(t, http.MethodPost, base+"/cancel", nil)
	if c := decodeJSON[redrive.Job](t, r); r.status != http.StatusOK || (c.State != dlqstore.JobCancelling && c.State != dlqstore.JobCancelled) {
		t.Errorf("cancel = %d %+v", r.status, c)
	}
	waitJob(t, je, running.ID, dlqstore.JobCancelled)

	// An API token needs no CSRF token.
	by, err := e.store.PrincipalFor(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.store.IssueToken(context.Background(), by, "admin", "jobs", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r = e.bearer(t, tok, http.MethodPost, "/api/v1/dlq/jobs", redrive.Request{Action: redrive.ActionQuarantine, Reason: "by token",
		Selector: redrive.Selector{IDs: []int64{e.dlqIDs["script"]}}})
	if r.status != http.StatusCreated {
		t.Errorf("token create = %d %s", r.status, r.body)
	}
	// otto's rules reach nothing of kafka:demo: not even the job.
	if r := e.as(t, "otto").get(t, base); r.status != http.StatusNotFound {
		t.Errorf("otto API job = %d, want 404", r.status)
	}
}

func TestDeadLetterJobFormsNeedCSRF(t *testing.T) {
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	tess := e.as(t, "tess")
	nf1 := e.dlqIDs["nf1"]
	for _, path := range []string{"/dead-letters/jobs/plan", "/dead-letters/jobs"} {
		r := tess.send(t, http.MethodPost, path, url.Values{"action": {"discard"}, "ids": {idList(nf1)}, "reason": {"no token"}})
		if r.status != http.StatusForbidden {
			t.Errorf("POST %s without CSRF = %d, want 403", path, r.status)
		}
		r = tess.send(t, http.MethodPost, path, url.Values{"action": {"discard"}, "ids": {idList(nf1)}, "reason": {"no token"}, "_csrf": {"forged"}})
		if r.status != http.StatusForbidden {
			t.Errorf("POST %s with a wrong CSRF token = %d, want 403", path, r.status)
		}
	}
	r := tess.request(http.MethodPost, "/api/v1/dlq/jobs", strings.NewReader(`{"action":"discard","reason":"x","selector":{"ids":[`+idList(nf1)+`]}}`))
	r.Header.Set("Content-Type", "application/json")
	if resp := e.do(t, r); resp.status != http.StatusForbidden {
		t.Errorf("API create with the session cookie and no CSRF header = %d, want 403", resp.status)
	}
	if n := len(e.mustJobs(t)); n != 0 {
		t.Fatalf("%d jobs started without a CSRF token", n)
	}
	if st := statusOfEntry(t, e, nf1); st != dlqstore.StatusDead {
		t.Errorf("entry is %s", st)
	}
	// Cancel too.
	plan := tess.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"redrive"}, "ids": {idList(nf1, e.dlqIDs["nf2"])}})
	id := startJob(t, tess, plan, "canary", "canary", "1", "canary_window", "3600")
	waitJob(t, je, id, dlqstore.JobCanaryWait)
	if r := tess.send(t, http.MethodPost, jobHref(id)+"/cancel", url.Values{}); r.status != http.StatusForbidden {
		t.Errorf("cancel without CSRF = %d, want 403", r.status)
	}
	if j, _ := je.engine.Job(context.Background(), overseer(), id); j.State != dlqstore.JobCanaryWait {
		t.Errorf("job is %s after a forged cancel", j.State)
	}
}

func TestDeadLetterJobHostileReasonIsEscaped(t *testing.T) {
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	tess := e.as(t, "tess")
	nf2 := e.dlqIDs["nf2"]
	const hostile = `<script>alert("job")</script><img src=x onerror=alert(1)>`
	plan := tess.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"quarantine"}, "ids": {idList(nf2)}})
	id := startJob(t, tess, plan, hostile)
	waitJob(t, je, id, dlqstore.JobCompleted)
	escaped := html.EscapeString(hostile)
	for _, path := range []string{jobHref(id), "/dead-letters/jobs", entryHref(nf2)} {
		r := tess.get(t, path)
		mustContain(t, path, r.body, escaped)
		mustNotContain(t, path, r.body, `<script>alert("job")`, `<img src=x`)
	}
	// Typed back into the form on a refused start, still escaped.
	v := hiddenFields(section(tess.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"discard"}, "ids": {idList(nf2)}}).body,
		`data-testid="job-start-form"`, "</form>"))
	v.Set("reason", hostile)
	v.Set("rate", "not a number")
	v.Set("action", "redrive")
	r := tess.post(t, "/dead-letters/jobs", v)
	if r.status != http.StatusBadRequest {
		t.Errorf("bad rate = %d", r.status)
	}
	mustContain(t, "refused start", r.body, "rate must be a positive number", `value="`+escaped+`"`)
	mustNotContain(t, "refused start", r.body, `<script>alert("job")`)
}

func TestDeadLetterJobEditAndRedrive(t *testing.T) {
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	nf1 := e.dlqIDs["nf1"]
	// tess may not edit (no edit action): no form.
	mustNotContain(t, "tess entry", e.as(t, "tess").get(t, entryHref(nf1)).body, `data-testid="entry-edit-form"`)

	admin := e.as(t, "admin")
	ep := admin.get(t, entryHref(nf1))
	form := section(ep.body, `data-testid="entry-edit-form"`, "</form>")
	m := regexp.MustCompile(`(?s)<textarea name="payload"[^>]*>(.*?)</textarea>`).FindStringSubmatch(form)
	if m == nil {
		t.Fatalf("no edit form with the payload:\n%s", form)
	}
	payload := html.UnescapeString(m[1])
	if !strings.Contains(payload, "\n  \"") || !strings.Contains(payload, fixtureEmail("nf1")) {
		t.Fatalf("edit payload is not the pretty, unmasked envelope:\n%s", payload)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(payload), &env); err != nil {
		t.Fatal(err)
	}
	origID := env["id"].(string)
	env["payload"].(map[string]any)["note"] = "fixed by hand"
	edited, _ := json.Marshal(env)

	v := hiddenFields(form)
	v.Set("payload", string(edited))
	v.Set("headers", "x-fixed: yes\n-"+delivery.HeaderTenantID)
	plan := admin.post(t, "/dead-letters/jobs/plan", v)
	if got := textOf(t, plan.body, "plan-count"); got != "1" {
		t.Fatalf("edit plan = %q\n%s", got, plan.body)
	}
	id := startJob(t, admin, plan, "fix the note")
	waitJob(t, je, id, dlqstore.JobCompleted)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rec *kgo.Record
	for rec == nil && ctx.Err() == nil {
		je.kafka.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if string(r.Key) == "key-nf1" {
				rec = r
			}
		})
	}
	if rec == nil {
		t.Fatal("the edited record never arrived")
	}
	var sent delivery.Envelope
	if err := json.Unmarshal(rec.Value, &sent); err != nil {
		t.Fatal(err)
	}
	if sent.ID == origID || sent.CorrelationID != origID || !strings.Contains(string(sent.Payload), "fixed by hand") {
		t.Errorf("sent envelope = %+v (original id %s)", sent, origID)
	}
	headers := map[string]string{}
	for _, h := range rec.Headers {
		headers[h.Key] = string(h.Value)
	}
	if _, ok := headers[delivery.HeaderTenantID]; ok || headers["x-fixed"] != "yes" {
		t.Errorf("headers = %v, want x-fixed set and %s removed", headers, delivery.HeaderTenantID)
	}
	// A bad edit is refused on the plan page.
	v.Set("payload", "{not json")
	r := admin.post(t, "/dead-letters/jobs/plan", v)
	if r.status != http.StatusBadRequest {
		t.Errorf("bad edit = %d", r.status)
	}
	mustContain(t, "bad edit", r.body, "not valid JSON")
}

func TestDeadLetterJobsListPaging(t *testing.T) {
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	tess := e.as(t, "tess")
	mustContain(t, "no jobs", tess.get(t, "/dead-letters/jobs").body, `data-testid="empty-jobs"`, "No jobs yet")
	var ids []int64
	for _, n := range []string{"nf1", "nf2", "script"} {
		plan := tess.post(t, "/dead-letters/jobs/plan", url.Values{"action": {"quarantine"}, "ids": {idList(e.dlqIDs[n])}})
		id := startJob(t, tess, plan, "quarantine "+n)
		waitJob(t, je, id, dlqstore.JobCompleted)
		ids = append(ids, id)
	}
	// Older than the newest: the other two, and a link back.
	r := tess.get(t, "/dead-letters/jobs?before="+strconv.FormatInt(ids[2], 10))
	mustContain(t, "page 2", r.body, `data-job-id="`+strconv.FormatInt(ids[0], 10)+`"`, `data-job-id="`+strconv.FormatInt(ids[1], 10)+`"`,
		`data-testid="page-first"`)
	mustNotContain(t, "page 2", r.body, `data-job-id="`+strconv.FormatInt(ids[2], 10)+`"`)
	r = tess.get(t, "/dead-letters/jobs")
	for _, col := range []string{"1 done", "0 failed", "0 of 1 remaining", `width="100.00" height="4" data-testid="job-progress-segment" data-kind="done"`, "quarantine nf1"} {
		mustContain(t, "columns", r.body, col)
	}
	if r := tess.get(t, "/dead-letters/jobs?before=x"); r.status != http.StatusBadRequest {
		t.Errorf("bad cursor = %d", r.status)
	}
}

// TestBrowserDeadLetterJob drives a real Chromium: tick two entries (the
// checkboxes belong to the form through their form attribute), discard
// them, confirm with a reason, and land on the job page, which shows the
// job completed (app.js refreshes it if it was still running).
func TestBrowserDeadLetterJob(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.withJobs(t)
	ctx := newBrowser(t)
	base := serve(t, e)
	submit := func(what, sel string) {
		t.Helper()
		clickAndLoad(t, ctx, what, sel)
	}
	signIn(t, ctx, base, "/dead-letters/entries", "tess", operatorPassword)

	nf1, nf2 := e.dlqIDs["nf1"], e.dlqIDs["nf2"]
	box := func(id int64) string {
		return `input[data-testid="entry-select"][value="` + strconv.FormatInt(id, 10) + `"]`
	}
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(box(nf1))),
		chromedp.Click(chromedp.CSS(box(nf1))),
		chromedp.Click(chromedp.CSS(box(nf2))),
	); err != nil {
		t.Fatalf("tick entries: %v", err)
	}
	submit("Discard selected", `[data-testid="selected-discard"]`)
	count, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="plan-count"]`)))
	if err != nil || count != "2" {
		t.Fatalf("plan count = %q (%v)", count, err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`input[data-testid="job-reason"]`), "replayed twice")); err != nil {
		t.Fatal(err)
	}
	submit("Start", `[data-testid="job-start"]`)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !jobPathRE.MatchString(strings.TrimPrefix(loc, base)) {
		t.Fatalf("after start at %q (%v), want a job page", loc, err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid="job-state"][data-state="completed"]`))); err != nil {
		t.Fatalf("job page never showed completed: %v", err)
	}
	flash, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	if !strings.Contains(flash, "replayed twice") || !strings.Contains(flash, "Completed: 2 of 2 were discarded.") {
		t.Errorf("job page text:\n%s", flash)
	}
	for _, id := range []int64{nf1, nf2} {
		if st := statusOfEntry(t, e, id); st != dlqstore.StatusDiscarded {
			t.Errorf("entry %d is %s, want discarded", id, st)
		}
	}
	if n := len(e.mustJobs(t)); n != 1 {
		t.Errorf("%d jobs, want 1", n)
	}
}

// A job paused by a broker outage says so on its page.
func TestJobSentenceSaysWhyAJobIsPaused(t *testing.T) {
	j := redrive.Job{Action: redrive.ActionRedrive, State: dlqstore.JobRunning, Total: 10, Done: 4, Remaining: 6,
		Error: "sending paused: dial tcp 127.0.0.1:5672: connection refused; retrying every 4s"}
	got := jobSentence(j)
	if !strings.Contains(got, "4 of 10") || !strings.Contains(got, "Sending paused: dial tcp 127.0.0.1:5672: connection refused; retrying every 4s.") {
		t.Errorf("sentence = %q", got)
	}
}

// jobRowIDs are the ids of the job rows in the table with testid.
func jobRowIDs(body, testid string) []int64 {
	var out []int64
	for _, m := range jobRowRE.FindAllStringSubmatch(section(body, `data-testid="`+testid+`"`, "</table>"), -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		out = append(out, id)
	}
	return out
}

var jobRowRE = regexp.MustCompile(`data-testid="job-row" data-job-id="(\d+)"`)

type apiJobList struct {
	Jobs       []redrive.Job `json:"jobs"`
	NextBefore int64         `json:"next_before"`
}

// A t1-only operator neither lists, reads, pages nor cancels an admin's
// redrive of t2 entries, or of t1 and t2 entries — on the pages or the API
// — and does not see its reason in an entry's history; every answer is
// the 404 of a job that does not exist, and the jobs keep running. The
// admin, and an operator allowed on every entry of a job, see and cancel
// it.
func TestDeadLetterJobsOfOtherTenantsAreHidden(t *testing.T) {
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	ctx := context.Background()
	admin, tess := e.as(t, "admin"), e.as(t, "tess")
	x := seedMoreDLQ(t, e.dlq, "t2", 0, "x1")
	start := func(reason string, ids ...int64) int64 {
		t.Helper()
		r := admin.api(t, http.MethodPost, "/api/v1/dlq/jobs", redrive.Request{Action: redrive.ActionRedrive, Reason: reason,
			Selector: redrive.Selector{IDs: ids}, Canary: 1, CanaryWindow: time.Hour, Force: true})
		j := decodeJSON[redrive.Job](t, r)
		if r.status != http.StatusCreated {
			t.Fatalf("admin starts %q = %d %s", reason, r.status, r.body)
		}
		waitJob(t, je, j.ID, dlqstore.JobCanaryWait)
		return j.ID
	}
	theirs := start("t2 refund SECRET-T2", e.dlqIDs["nf3"], e.dlqIDs["declined"])
	mixed := start("mixed batch SECRET-MIXED", e.dlqIDs["nf1"], x["x1"])
	ours := start("t1 only", e.dlqIDs["nf2"], e.dlqIDs["script"])
	secrets := []string{"SECRET-T2", "SECRET-MIXED"}

	// The lists: the page (running section) and the API.
	page := tess.get(t, "/dead-letters/jobs")
	if got := jobRowIDs(page.body, "jobs-running"); page.status != http.StatusOK || !slices.Equal(got, []int64{ours}) {
		t.Errorf("tess's jobs page = %d, running %v, want only %d", page.status, got, ours)
	}
	mustNotContain(t, "tess's jobs page", page.body, secrets...)
	for _, q := range []string{"", "?running=1"} {
		r := tess.get(t, "/api/v1/dlq/jobs"+q)
		var got []int64
		for _, j := range decodeJSON[apiJobList](t, r).Jobs {
			got = append(got, j.ID)
		}
		if r.status != http.StatusOK || !slices.Equal(got, []int64{ours}) {
			t.Errorf("tess's API jobs%s = %d %v, want only %d", q, r.status, got, ours)
		}
		mustNotContain(t, "tess's API jobs", r.body, secrets...)
	}
	// One job, its ledger, cancelling: 404 everywhere, and it runs on.
	for _, id := range []int64{theirs, mixed} {
		base, api := jobHref(id), "/api/v1/dlq/jobs/"+strconv.FormatInt(id, 10)
		for _, path := range []string{base, base + "?after_seq=1", api, api + "?after_seq=1"} {
			r := tess.get(t, path)
			if r.status != http.StatusNotFound {
				t.Errorf("tess GET %s = %d, want 404", path, r.status)
			}
			mustNotContain(t, "tess GET "+path, r.body, secrets...)
			if strings.HasPrefix(path, "/api/") {
				if got := decodeJSON[delivery.ErrorResponse](t, r); got.Error.Code != delivery.ENOTFOUND {
					t.Errorf("tess GET %s: code %q, want %s", path, got.Error.Code, delivery.ENOTFOUND)
				}
			}
		}
		if r := tess.post(t, base+"/cancel", nil); r.status != http.StatusNotFound {
			t.Errorf("tess cancels job %d with the page form = %d, want 404", id, r.status)
		}
		r := tess.api(t, http.MethodPost, api+"/cancel", nil)
		if got := decodeJSON[delivery.ErrorResponse](t, r); r.status != http.StatusNotFound || got.Error.Code != delivery.ENOTFOUND {
			t.Errorf("tess cancels job %d through the API = %d %+v, want 404 ENOTFOUND", id, r.status, got)
		}
		if j, _ := je.engine.Job(ctx, overseer(), id); j.State != dlqstore.JobCanaryWait || j.Error != "" {
			t.Errorf("job %d after tess's cancels: %s %q, want still waiting on its canary", id, j.State, j.Error)
		}
	}
	// nf1 is tess's to see; the mixed job that redrove it, and its reason,
	// are not. The admin sees it in the history.
	entry := tess.get(t, entryHref(e.dlqIDs["nf1"]))
	if entry.status != http.StatusOK {
		t.Fatalf("tess's entry page = %d", entry.status)
	}
	if rows := historyRE.FindAllStringSubmatch(entry.body, -1); len(rows) != 0 {
		t.Errorf("tess's history of nf1 = %v, want none", rows)
	}
	mustNotContain(t, "tess's entry page", entry.body, secrets...)
	entry = admin.get(t, entryHref(e.dlqIDs["nf1"]))
	if rows := historyRE.FindAllStringSubmatch(entry.body, -1); len(rows) != 1 || rows[0][1] != strconv.FormatInt(mixed, 10) {
		t.Errorf("admin's history of nf1 = %v, want job %d", rows, mixed)
	}
	mustContain(t, "admin's entry page", entry.body, "SECRET-MIXED")

	// An operator of kafka:demo for t1 and t2 may act on every entry of
	// the mixed job: she sees it and cancels it with the page form.
	by, err := e.store.PrincipalFor(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateUser(ctx, by, "tina", operatorPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.AddBinding(ctx, by, access.Binding{Subject: "user:tina", Role: access.RoleOperator,
		Resources: []string{"kafka:demo/*"}, Tenants: []string{"t1", "t2"}}); err != nil {
		t.Fatal(err)
	}
	tina := e.login(t, "tina", operatorPassword)
	if got := jobRowIDs(tina.get(t, "/dead-letters/jobs").body, "jobs-running"); !slices.Equal(got, []int64{ours, mixed, theirs}) {
		t.Errorf("tina's running jobs = %v, want %v", got, []int64{ours, mixed, theirs})
	}
	if r := tina.get(t, jobHref(mixed)); r.status != http.StatusOK {
		t.Errorf("tina's page of the mixed job = %d", r.status)
	}
	if r := tina.post(t, jobHref(mixed)+"/cancel", nil); r.status != http.StatusSeeOther {
		t.Errorf("tina cancels the mixed job = %d, want 303", r.status)
	}
	if j := waitJob(t, je, mixed, dlqstore.JobCancelled); j.Error != "cancelled by tina" {
		t.Errorf("mixed job ended %q, want cancelled by tina", j.Error)
	}
	// The admin sees and cancels the t2 job; tess cancels her own kind.
	if r := admin.get(t, "/api/v1/dlq/jobs/"+strconv.FormatInt(theirs, 10)); r.status != http.StatusOK {
		t.Errorf("admin GET t2 job = %d", r.status)
	}
	if r := admin.api(t, http.MethodPost, "/api/v1/dlq/jobs/"+strconv.FormatInt(theirs, 10)+"/cancel", nil); r.status != http.StatusOK {
		t.Errorf("admin cancels the t2 job = %d %s", r.status, r.body)
	}
	if r := tess.api(t, http.MethodPost, "/api/v1/dlq/jobs/"+strconv.FormatInt(ours, 10)+"/cancel", nil); r.status != http.StatusOK {
		t.Errorf("tess cancels the t1 job = %d %s", r.status, r.body)
	}
	waitJob(t, je, theirs, dlqstore.JobCancelled)
	waitJob(t, je, ours, dlqstore.JobCancelled)
}

// seedPaymentsDLQ indexes dead letters of tenant that failed on
// otherTopic (read from payDLQ, partition 0 from offset base) and returns
// their ids by name.
func seedPaymentsDLQ(t *testing.T, st *dlqstore.Store, tenant string, base int64, names ...string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	var items []dlqstore.IndexItem
	for i, n := range names {
		f := dlqFixture{name: n, tenant: tenant, code: "EXTRA_PAYMENT", msg: "extra payment " + n, age: time.Minute}
		o := delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: otherTopic, Partition: 0, Offset: base + int64(i)}
		d := delivery.Location{Broker: delivery.BrokerKafka, Cluster: testCluster, Topic: payDLQ, Partition: 0, Offset: base + int64(i)}
		items = append(items, deadLetterOf(t, f, o, d, now))
	}
	if res, err := st.IndexKafka(ctx, testCluster, payDLQ, 0, items, base+int64(len(items))); err != nil || res.Inserted != len(items) {
		t.Fatalf("index payments: %+v %v", res, err)
	}
	page, err := st.FindEntries(ctx, dlqstore.Filter{ErrorCode: "EXTRA_PAYMENT", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, e := range page.Entries {
		name, _ := e.DL.Error.Details["fixture"].(string)
		ids[name] = e.ID
	}
	return ids
}

// The jobs list is filtered in the query: with more jobs a t1 operator may
// not see than a page between the ones she may (t2 redrives of her topics,
// and above them a page of other topics' jobs), every page up to the last
// is full while it has a next cursor, and each of her jobs is listed
// exactly once, on the API and on the page.
func TestDeadLetterJobsListPagingSkipsHiddenJobs(t *testing.T) {
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	ctx := context.Background()
	by, err := e.store.PrincipalFor(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	// olga: operator of the orders topics for t1 (tess has all of
	// kafka:demo for t1).
	if err := e.store.CreateUser(ctx, by, "olga", operatorPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.AddBinding(ctx, by, access.Binding{Subject: "user:olga", Role: access.RoleOperator,
		Resources: []string{"kafka:demo/orders.*"}, Tenants: []string{"t1"}}); err != nil {
		t.Fatal(err)
	}
	names := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, prefix+strconv.Itoa(i))
		}
		return out
	}
	mine := seedMoreDLQ(t, e.dlq, "t1", 0, names("v", 5)...)
	t2 := seedMoreDLQ(t, e.dlq, "t2", 100, names("h", 12)...)
	pay := seedPaymentsDLQ(t, e.dlq, "t2", 100, names("p", jobsPerPage)...)
	var all, visible []int64
	quarantine := func(entry int64) int64 {
		t.Helper()
		j, err := je.engine.Start(ctx, redrive.Actor{P: by}, redrive.Request{Action: redrive.ActionQuarantine,
			Selector: redrive.Selector{IDs: []int64{entry}}, Reason: "paging"})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, j.ID)
		return j.ID
	}
	for i := range 5 {
		visible = append(visible, quarantine(mine["v"+strconv.Itoa(i)]))
		if i < 4 {
			for k := range 3 { // more than a page of 2 between two of hers
				quarantine(t2["h"+strconv.Itoa(3*i+k)])
			}
		}
	}
	for i := range jobsPerPage { // a whole page of the jobs page on top
		quarantine(pay["p"+strconv.Itoa(i)])
	}
	for _, id := range all {
		waitJob(t, je, id, dlqstore.JobCompleted)
	}
	slices.Reverse(visible) // newest first
	slices.Reverse(all)
	olga := e.login(t, "olga", operatorPassword)

	walkAPI := func(c *client, limit int) []int64 {
		t.Helper()
		var got []int64
		path := "/api/v1/dlq/jobs?limit=" + strconv.Itoa(limit)
		for {
			r := c.get(t, path)
			l := decodeJSON[apiJobList](t, r)
			if r.status != http.StatusOK {
				t.Fatalf("%s = %d %s", path, r.status, r.body)
			}
			if l.NextBefore != 0 && len(l.Jobs) != limit {
				t.Errorf("%s as %s: %d jobs and a next cursor, want a full page of %d", path, c.user, len(l.Jobs), limit)
			}
			for _, j := range l.Jobs {
				got = append(got, j.ID)
			}
			if l.NextBefore == 0 {
				return got
			}
			path = "/api/v1/dlq/jobs?limit=" + strconv.Itoa(limit) + "&before=" + strconv.FormatInt(l.NextBefore, 10)
		}
	}
	nextRE := regexp.MustCompile(`href="(/dead-letters/jobs\?before=\d+)" data-testid="page-next"`)
	walkPage := func(c *client) []int64 {
		t.Helper()
		var got []int64
		path := "/dead-letters/jobs"
		for {
			r := c.get(t, path)
			if r.status != http.StatusOK {
				t.Fatalf("%s = %d", path, r.status)
			}
			ids := jobRowIDs(r.body, "jobs-finished")
			m := nextRE.FindStringSubmatch(r.body)
			if m != nil && len(ids) != jobsPerPage {
				t.Errorf("%s as %s: %d finished jobs and an older page, want a full page of %d", path, c.user, len(ids), jobsPerPage)
			}
			got = append(got, ids...)
			if m == nil {
				return got
			}
			path = html.UnescapeString(m[1])
		}
	}
	for _, c := range []*client{olga, e.as(t, "tess")} {
		if got := walkAPI(c, 2); !slices.Equal(got, visible) {
			t.Errorf("%s's API pages list %v, want %v", c.user, got, visible)
		}
		if got := walkPage(c); !slices.Equal(got, visible) {
			t.Errorf("%s's jobs pages list %v, want %v", c.user, got, visible)
		}
	}
	admin := e.as(t, "admin")
	if got := walkAPI(admin, 7); !slices.Equal(got, all) {
		t.Errorf("admin's API pages list %d jobs, want all %d once each", len(got), len(all))
	}
	if got := walkPage(admin); !slices.Equal(got, all) {
		t.Errorf("admin's jobs pages list %d jobs, want all %d once each", len(got), len(all))
	}
}
