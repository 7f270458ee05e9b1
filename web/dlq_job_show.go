package web

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"switchyard/dlqstore"
	"switchyard/web/templates"
)

// handleDLQJob is a job's page: progress, what it does, and a page of
// its ledger (?after_seq=). It refreshes while the job runs.
func (s *Server) handleDLQJob(c *fiber.Ctx) error {
	jobs, j, err := s.loadJob(c)
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
		Failed:       j.State == dlqstore.JobFailed || j.State == dlqstore.JobCanaryFailed,
		Cancelled:    j.State == dlqstore.JobCancelled || j.State == dlqstore.JobCancelling,
		SelectorText: selectorText(j.Selector), Target: j.Target, Targets: j.Targets,
		Error: j.Error, Updated: fmtTime(j.UpdatedAt), Finished: fmtTime(j.FinishedAt),
	}
	if b, err := json.Marshal(j.Selector); err == nil {
		vm.Selector = string(b)
	}
	if vm.Live && j.State != dlqstore.JobCancelling {
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
			Seq: it.Seq, EntryID: it.EntryID, Href: entryHref(it.EntryID), Target: it.Target,
			State: string(it.State), StateCls: itemTone(it.State).Badge(), Error: it.Error, At: fmtTime(it.At),
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
