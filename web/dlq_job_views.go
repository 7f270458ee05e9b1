package web

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/redrive"
	"switchyard/web/templates"
)

// The view models of jobs: their links, buttons, labels, sentences and
// badges, shared by the job pages and the dead-letter pages.

func jobHref(id int64) string { return "/dead-letters/jobs/" + itoa64(id) }

// dlqActionsOf is the buttons' view of the job actions the service offers.
func dlqActionsOf(a dlq.Actions) templates.DLQActions {
	return templates.DLQActions{Enabled: a.Enabled, Redrive: a.Redrive, Quarantine: a.Quarantine, Discard: a.Discard, Restore: a.Restore}
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

// selectorText describes a selection in words; groupTitle is the title
// of its failure group, when it selects one the caller can see.
func selectorText(sel redrive.Selector, groupTitle string) string {
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
		return templates.Entries(len(sel.IDs)) + ": " + strings.Join(ids, ", ")
	case sel.Group != 0 && groupTitle != "":
		return "failure group “" + truncateText(groupTitle, 120) + "” (#" + itoa64(sel.Group) + ")"
	case sel.Group != 0:
		return "failure group #" + itoa64(sel.Group)
	case sel.RestOf != 0:
		return "the rest of job #" + itoa64(sel.RestOf) + ": the entries it did not send, and the re-failures of those it sent"
	case sel.Filter != nil:
		return "every entry matching " + filterText(*sel.Filter)
	}
	return "nothing"
}

func filterText(f dlqstore.Filter) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+" "+v)
		}
	}
	var statuses []string
	for _, st := range f.Status {
		statuses = append(statuses, string(st))
	}
	add("status", strings.Join(statuses, "/"))
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
	if f.GroupID != 0 {
		add("group", itoa64(f.GroupID))
	}
	if f.Q != "" {
		add("text", "“"+f.Q+"”")
	}
	if len(parts) == 0 {
		return "no filter (all entries you may act on)"
	}
	return strings.Join(parts, ", ")
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

func jobRowOf(j redrive.Job, now time.Time) templates.JobRow {
	n := func(i int) string { return templates.Exact(int64(i)) }
	r := templates.JobRow{
		ID: j.ID, Href: jobHref(j.ID), Action: string(j.Action), State: string(j.State), StateClass: jobTone(j.State).Badge(),
		StateText: jobStateText(j.State), Actor: j.Actor, Reason: j.Reason,
		Total: n(j.Total), Done: n(j.Done), Failed: n(j.Failed), Cancelled: n(j.Cancelled), Remaining: n(j.Remaining),
		Rate: "—", CurrentRate: "—", ETA: "—",
		Created: templates.Ago(now, j.CreatedAt), CreatedExact: fmtTime(j.CreatedAt),
	}
	r.Progress, r.ProgressLabel = progressOf(j)
	if j.Action.Republishes() || j.PublishQuarantine {
		r.Rate = rateText(j.Rate)
	}
	if !j.Finished() {
		if j.CurrentRate > 0 {
			r.CurrentRate = rateText(j.CurrentRate)
		}
		if j.ETA > 0 {
			r.ETA = durationText(j.ETA) // the engine's: the measured rate, and the canary window ahead
		}
	}
	return r
}

// progressOf is a job's progress bar: done, failed and cancelled in that
// order, each its share of the total, and the bar in words.
func progressOf(j redrive.Job) ([]templates.ProgressSegment, string) {
	total := max(j.Total, 1)
	pct := func(n int) string { return strconv.FormatFloat(float64(n)*100/float64(total), 'f', 2, 64) }
	parts := []struct {
		kind, label string
		n           int
	}{
		{"done", doneVerb(j.Action), j.Done},
		{"failed", "failed", j.Failed},
		{"cancelled", "cancelled", j.Cancelled},
	}
	var segs []templates.ProgressSegment
	var words []string
	at := 0
	for _, p := range parts {
		if p.n == 0 {
			continue
		}
		label := templates.Exact(int64(p.n)) + " " + p.label
		segs = append(segs, templates.ProgressSegment{Kind: p.kind, X: pct(at), Width: pct(p.n), Label: label})
		words = append(words, label)
		at += p.n
	}
	if rest := j.Total - at; rest > 0 {
		words = append(words, templates.Exact(int64(rest))+" to go")
	}
	return segs, strings.Join(words, ", ") + " of " + templates.Entries(j.Total)
}

// jobStateText is a job state in words.
func jobStateText(st dlqstore.JobState) string {
	switch st {
	case dlqstore.JobCanaryWait:
		return "waiting for canary"
	case dlqstore.JobCanaryFailed:
		return "canary failed"
	case dlqstore.JobFreezing:
		return "freezing its set"
	}
	return strings.ReplaceAll(string(st), "_", " ")
}

// jobTone is the colour of a job state's badge: done well, under way, or
// gone wrong (a cancelled or freezing job is neutral).
func jobTone(st dlqstore.JobState) templates.Tone {
	switch st {
	case dlqstore.JobCompleted:
		return templates.ToneOK
	case dlqstore.JobRunning, dlqstore.JobCanaryWait, dlqstore.JobCancelling:
		return templates.ToneWarn
	case dlqstore.JobFailed, dlqstore.JobCanaryFailed:
		return templates.ToneBad
	}
	return templates.ToneNeutral
}

// statusTone is the colour of an entry status's badge: needs attention,
// under way, or dealt with.
func statusTone(st dlqstore.Status) templates.Tone {
	switch st {
	case dlqstore.StatusDead, dlqstore.StatusQuarantined:
		return templates.ToneBad
	case dlqstore.StatusRedriving:
		return templates.ToneWarn
	case dlqstore.StatusRedriven, dlqstore.StatusResolved:
		return templates.ToneOK
	}
	return templates.ToneNeutral
}

// triageTone is the colour of a failure group's triage badge.
func triageTone(state string) templates.Tone {
	switch state {
	case dlqstore.TriageOpen:
		return templates.ToneBad
	case dlqstore.TriageAcknowledged, dlqstore.TriageSnoozed:
		return templates.ToneWarn
	case dlqstore.TriageResolved:
		return templates.ToneOK
	}
	return templates.ToneNeutral
}

// itemTone is the colour of a ledger state's badge.
func itemTone(st dlqstore.ItemState) templates.Tone {
	switch st {
	case dlqstore.ItemSent:
		return templates.ToneOK
	case dlqstore.ItemPending:
		return templates.ToneWarn
	case dlqstore.ItemFailed:
		return templates.ToneBad
	}
	return templates.ToneNeutral
}

// jobSentence says what a job's state means, its error included once.
func jobSentence(j redrive.Job) string { return jobSentenceWith(j, 0) }

// jobSentenceWith is jobSentence knowing how many of its messages came
// back (refailed; 0 when none or not known).
func jobSentenceWith(j redrive.Job, refailed int) string {
	n := func(i int) string { return templates.Exact(int64(i)) }
	verb := doneVerb(j.Action)
	var s string
	switch j.State {
	case dlqstore.JobRunning:
		s = fmt.Sprintf("Running: %s of %s %s so far, %s failed, %s to go.", n(j.Done), n(j.Total), verb, n(j.Failed), n(j.Remaining))
		if j.Error != "" {
			s += " " + strings.ToUpper(j.Error[:1]) + j.Error[1:] + "." // a broker outage pauses the job
		}
	case dlqstore.JobCanaryWait:
		s = fmt.Sprintf("The canary (%s) was sent; watching for %s whether it dead-letters again before sending the other %s.",
			templates.Entries(j.Canary), durationText(j.CanaryWindow), n(j.Remaining))
	case dlqstore.JobCancelling:
		s = fmt.Sprintf("Cancelling: the job stops after the batch in flight; %s of %s were %s.", n(j.Done), n(j.Total), verb)
		if j.Error != "" {
			s += " (" + j.Error + ")"
		}
	case dlqstore.JobCompleted:
		s = fmt.Sprintf("Completed: %s of %s were %s", n(j.Done), n(j.Total), verb)
		if j.Failed > 0 {
			s += fmt.Sprintf(", %s failed (see the ledger)", n(j.Failed))
		}
		s += "."
	case dlqstore.JobCancelled:
		by := ""
		if j.CancelledBy != "" {
			by = " by " + j.CancelledBy
		}
		return fmt.Sprintf("Cancelled%s after %s of %s were %s; nothing %s was reverted, and the other %s were left as they were.",
			by, n(j.Done), n(j.Total), verb, verb, n(j.Cancelled+j.Remaining))
	case dlqstore.JobCanaryFailed:
		// Its error says the same with the engine's counts: the sentence
		// is the one place that says it.
		came := "messages of the canary"
		if refailed > 0 {
			came = fmt.Sprintf("%s of the canary's %s", n(refailed), templates.Entries(j.Canary))
		}
		return fmt.Sprintf("The canary failed: %s dead-lettered again within %s, so the other %s were not sent.",
			came, durationText(j.CanaryWindow), n(j.Cancelled+j.Remaining))
	case dlqstore.JobFailed:
		s = fmt.Sprintf("The job failed after %s of %s were %s; nothing %s was reverted.", n(j.Done), n(j.Total), verb, verb)
	case dlqstore.JobFreezing:
		s = "Freezing its set of entries; nothing is sent until that is done."
	default:
		s = "State: " + jobStateText(j.State) + "."
	}
	if j.Error != "" && j.Finished() && j.State != dlqstore.JobCompleted {
		s += " " + j.Error
	}
	return s
}

// outcomeText is what became of a redriven entry's message, in words
// ("" when it was not redriven).
func outcomeText(o dlqstore.RedriveOutcome) string {
	switch o {
	case dlqstore.OutcomeFailedAgain:
		return "failed again"
	case dlqstore.OutcomeWatching:
		return "not back so far"
	case dlqstore.OutcomeNotSeenAgain:
		return "not seen again"
	}
	return ""
}

// outcomeTone is the colour of an outcome's badge.
func outcomeTone(o dlqstore.RedriveOutcome) templates.Tone {
	switch o {
	case dlqstore.OutcomeFailedAgain:
		return templates.ToneBad
	case dlqstore.OutcomeWatching:
		return templates.ToneWarn
	case dlqstore.OutcomeNotSeenAgain:
		return templates.ToneOK
	}
	return templates.ToneNeutral
}

// inCanary reports whether the item at ledger seq was one of j's canary:
// the first Canary items, when the canary held any back.
func inCanary(j redrive.Job, seq int) bool {
	return j.Canary > 0 && j.Total > j.Canary && seq > 0 && seq <= j.Canary
}
