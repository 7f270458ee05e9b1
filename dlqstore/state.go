package dlqstore

// The states of entries, jobs and ledger items, typed and spelled here
// only: the engine (package redrive), the pages and the SQL of this
// package use these constants, so that a new state or a rename is one
// change. The schema's CHECK constraints and partial indexes repeat the
// spellings (released migrations are never edited), which is why the
// values never change.

// Status is the state of one entry.
type Status string

// Entry states. Retention purges only resolved and discarded entries.
const (
	StatusDead        Status = "dead"
	StatusRedriving   Status = "redriving"
	StatusRedriven    Status = "redriven"
	StatusQuarantined Status = "quarantined"
	StatusDiscarded   Status = "discarded"
	StatusResolved    Status = "resolved"
)

// Statuses lists every entry state, in the order the pages offer them.
func Statuses() []Status {
	return []Status{StatusDead, StatusRedriving, StatusRedriven, StatusQuarantined, StatusDiscarded, StatusResolved}
}

// Valid reports whether s is one of the known states.
func (s Status) Valid() bool {
	switch s {
	case StatusDead, StatusRedriving, StatusRedriven, StatusQuarantined, StatusDiscarded, StatusResolved:
		return true
	}
	return false
}

// Open reports whether an entry in s still needs attention (the pages'
// "open" counts: dead or quarantined).
func (s Status) Open() bool { return s == StatusDead || s == StatusQuarantined }

// RedriveOutcome is what became of a redriven entry's message
// (Entry.Outcome): the entry keeps its status, redriven, and its outcome
// says whether the message came back. The pages show it beside the status
// ("redriven → failed again"), and the counts keep a re-failed entry apart
// (Counts.FailedAgain, Group.FailedAgain), counted once as its re-failure.
type RedriveOutcome string

// Redrive outcomes.
const (
	OutcomeNone         RedriveOutcome = ""               // not redriven
	OutcomeWatching     RedriveOutcome = "watching"       // redriven within the watch window; no re-failure yet
	OutcomeFailedAgain  RedriveOutcome = "failed_again"   // its message dead-lettered again (Entry.RefailedAs)
	OutcomeNotSeenAgain RedriveOutcome = "not_seen_again" // redriven, and not seen again within the watch window
)

// JobState is the state of a job. A job is created running (or freezing,
// while a big set is frozen a chunk per transaction); it ends completed,
// cancelled, canary_failed or failed.
type JobState string

// Job states.
const (
	JobFreezing     JobState = "freezing"      // a big set is being frozen; a job left in it by a stopped process is ended
	JobRunning      JobState = "running"       // sending or applying
	JobCanaryWait   JobState = "canary_wait"   // the canary was sent; watching for re-failures
	JobCancelling   JobState = "cancelling"    // cancel asked; stops after the batch in flight
	JobCompleted    JobState = "completed"     // every entry has an outcome
	JobCancelled    JobState = "cancelled"     // stopped by an operator; what was sent stays sent
	JobCanaryFailed JobState = "canary_failed" // a canary entry dead-lettered again; the rest was not sent
	JobFailed       JobState = "failed"        // the job could not go on (e.g. destination unknown)
)

// Valid reports whether s is one of the known job states.
func (s JobState) Valid() bool {
	switch s {
	case JobFreezing, JobRunning, JobCanaryWait, JobCancelling, JobCompleted, JobCancelled, JobCanaryFailed, JobFailed:
		return true
	}
	return false
}

// Finished reports whether a job in s has ended.
func (s JobState) Finished() bool {
	switch s {
	case JobCompleted, JobCancelled, JobCanaryFailed, JobFailed:
		return true
	}
	return false
}

// ItemState is the state of one ledger item: pending until the job has
// dealt with its entry.
type ItemState string

// Ledger item states.
const (
	ItemPending   ItemState = "pending"
	ItemSent      ItemState = "sent"      // redrive: the broker acknowledged it; other actions: applied
	ItemFailed    ItemState = "failed"    // not sent; the error says why; the entry is back in its previous status
	ItemCancelled ItemState = "cancelled" // the job stopped before it; the entry is back in its previous status
)

// Valid reports whether s is one of the known item states.
func (s ItemState) Valid() bool {
	switch s {
	case ItemPending, ItemSent, ItemFailed, ItemCancelled:
		return true
	}
	return false
}

// Finished reports whether the item has its outcome.
func (s ItemState) Finished() bool { return s.Valid() && s != ItemPending }

// Triage states of a group.
const (
	TriageOpen         = "open"
	TriageAcknowledged = "acknowledged"
	TriageResolved     = "resolved"
	TriageSnoozed      = "snoozed"
)

// TriageStates are every triage state, in the order pages offer them.
func TriageStates() []string {
	return []string{TriageOpen, TriageAcknowledged, TriageResolved, TriageSnoozed}
}
