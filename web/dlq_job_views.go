package web

import (
	"fmt"
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
		Actor: j.Actor, Reason: j.Reason,
		Total: n(j.Total), Done: n(j.Done), Failed: n(j.Failed), Cancelled: n(j.Cancelled), Remaining: n(j.Remaining),
		TotalN: j.Total, ProcessedN: j.Done + j.Failed + j.Cancelled,
		Rate: "—", CurrentRate: "—", ETA: "—",
		Created: templates.Ago(now, j.CreatedAt), CreatedExact: fmtTime(j.CreatedAt),
	}
	if j.Action.Republishes() || j.PublishQuarantine {
		r.Rate = rateText(j.Rate)
	}
	if !j.Finished() {
		r.CurrentRate = rateText(j.CurrentRate)
		switch {
		case j.State == dlqstore.JobCanaryWait:
			// The engine's ETA counts sending only, not the wait.
			r.ETA = "after the canary window"
		case j.ETA > 0:
			r.ETA = durationText(j.ETA)
		}
	}
	return r
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

// jobSentence says what a job's state means.
func jobSentence(j redrive.Job) string {
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
			entries(j.Canary), durationText(j.CanaryWindow), n(j.Remaining))
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
		s = fmt.Sprintf("The canary failed: the first %s dead-lettered again within %s, so the other %s were not sent.",
			entries(j.Canary), durationText(j.CanaryWindow), n(j.Cancelled+j.Remaining))
	case dlqstore.JobFailed:
		s = fmt.Sprintf("The job failed after %s of %s were %s; nothing %s was reverted.", n(j.Done), n(j.Total), verb, verb)
	case dlqstore.JobFreezing:
		s = "Freezing its set of entries; nothing is sent until that is done."
	default:
		s = "State " + string(j.State) + "."
	}
	if j.Error != "" && j.Finished() && j.State != dlqstore.JobCompleted {
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
