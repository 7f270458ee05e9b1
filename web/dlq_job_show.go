package web

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/alerting"
	"switchyard/dlqstore"
	"switchyard/redrive"
	"switchyard/web/templates"
)

// refailuresShown is how many of a job's re-failures its page lists.
const refailuresShown = 50

// handleDLQJob is a job's page: progress, the messages that came back
// (the canaries, on a canary-failed job), "re-plan the rest" once it has
// stopped short, what it does, and a page of its ledger (?after_seq=). It
// refreshes while the job runs.
func (s *Server) handleDLQJob(c *fiber.Ctx) error {
	jobs, j, err := s.loadJob(c)
	if err != nil {
		return s.fail(c, err)
	}
	items, next, err := jobLedger(c, jobs, j, ledgerPerPage)
	if err != nil {
		return s.fail(c, err)
	}
	var back []dlqstore.Refailure
	total := 0
	if j.Action.Republishes() {
		if back, total, err = jobs.Refailures(c.UserContext(), callerOf(c), j.ID, refailuresShown); err != nil {
			return s.fail(c, err)
		}
	}
	now := s.now()
	vm := templates.JobDetail{
		JobRow: jobRowOf(j, now), Sentence: jobSentenceWith(j, total), Live: !j.Finished(),
		WentWrong:    j.State == dlqstore.JobFailed || j.State == dlqstore.JobCanaryFailed,
		Stopped:      j.State == dlqstore.JobCancelled || j.State == dlqstore.JobCancelling,
		SelectorText: selectorText(j.Selector, s.groupTitle(c, j.Selector)), Target: j.Target, Targets: j.Targets,
		Updated: fmtTime(j.UpdatedAt), Finished: fmtTime(j.FinishedAt),
	}
	if b, err := json.Marshal(j.Selector); err == nil {
		vm.Selector = string(b)
	}
	if vm.Live && j.State != dlqstore.JobCancelling {
		vm.CancelAction = jobHref(j.ID) + "/cancel"
	}
	if vm.Live && j.Error != "" {
		// A running job carries an error only while a broker outage holds
		// it up (redrive clears it when sending resumes).
		vm.AlertOn = s.alertOn(c, "Alert when jobs pause", alerting.TemplateJobPaused)
	}
	if j.Canary > 0 {
		vm.Canary = canaryText(j.Canary, j.CanaryWindow)
	}
	if j.Force {
		vm.Options = append(vm.Options, "forced: started while another job ran on a destination")
	}
	if j.PublishQuarantine {
		vm.Options = append(vm.Options, "Kafka entries also published to <topic>.quarantine")
	}
	refailedAs := refailuresView(&vm, j, back, total, now)
	vm.Rest = restForm(j, total)
	for _, it := range items {
		row := templates.LedgerRow{
			Seq: it.Seq, EntryID: it.EntryID, Href: entryHref(it.EntryID), Target: it.Target,
			State: string(it.State), StateCls: itemTone(it.State).Badge(), Error: it.Error, At: fmtTime(it.At),
		}
		if id := refailedAs[it.EntryID]; id != 0 {
			row.RefailedID, row.RefailedHref = id, entryHref(id)
		}
		vm.Ledger = append(vm.Ledger, row)
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

// refailuresView lists the messages of j that came back, of total, and
// returns, by the entry each was redriven from, its first re-failure
// shown (for the ledger's rows).
func refailuresView(vm *templates.JobDetail, j redrive.Job, back []dlqstore.Refailure, total int, now time.Time) map[int64]int64 {
	if len(back) == 0 {
		return nil
	}
	vm.RefailuresTitle = fmt.Sprintf("Failed again: %s of its messages came back", templates.Exact(int64(total)))
	if j.State == dlqstore.JobCanaryFailed {
		vm.RefailuresTitle = "The canaries that came back"
	}
	if more := total - len(back); more > 0 {
		vm.RefailuresMore = fmt.Sprintf("and %s more", templates.Exact(int64(more)))
	}
	from := map[int64]int64{}
	for _, r := range back {
		e := r.Entry
		row := templates.RefailureRow{
			Seq: r.Seq, Canary: inCanary(j, r.Seq), EntryID: e.ID, EntryHref: entryHref(e.ID),
			Error: truncateText(e.DL.Error.Message, 200),
			At:    templates.Ago(now, e.DL.LastFailureAt), AtExact: fmtTime(e.DL.LastFailureAt),
		}
		if e.RefailureOf != 0 {
			row.FromID, row.FromHref = e.RefailureOf, entryHref(e.RefailureOf)
			if from[e.RefailureOf] == 0 {
				from[e.RefailureOf] = e.ID
			}
		}
		vm.Refailures = append(vm.Refailures, row)
	}
	return from
}

// restForm is "re-plan the rest" of a job that stopped short — its canary
// failed, it was cancelled or failed, or messages it sent came back
// (refailed) — with its rate, canary and destination: the plan form then
// shows what is left, which the engine selects (Selector.RestOf). nil for
// a job still running, one that got everything through, and an edit.
func restForm(j redrive.Job, refailed int) *templates.RestForm {
	if !j.Finished() || j.Action == redrive.ActionEditRedrive {
		return nil
	}
	if j.State == dlqstore.JobCompleted && j.Failed == 0 && refailed == 0 {
		return nil
	}
	sel, err := json.Marshal(redrive.Selector{RestOf: j.ID})
	if err != nil {
		return nil
	}
	f := &templates.RestForm{
		Action: string(j.Action), Selector: string(sel), Rate: strconv.FormatFloat(j.Rate, 'f', -1, 64), Target: j.Target,
		Entries: fmt.Sprintf("the %s it did not get through", templates.Entries(j.Failed+j.Cancelled+j.Remaining)),
	}
	if refailed > 0 {
		f.Entries += fmt.Sprintf(", and the %s of those it sent that came back", templates.Entries(refailed))
	}
	if j.Canary > 0 {
		f.Canary, f.CanaryWindow = strconv.Itoa(j.Canary), strconv.Itoa(int(j.CanaryWindow.Seconds()))
	}
	return f
}
