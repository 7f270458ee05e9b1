// Package redrive runs dead-letter jobs: redrive (back to the original
// topic or queue, or elsewhere), quarantine, discard, restore and
// edit-and-redrive, over one entry, a checked set, a failure group or a
// filter. A job freezes its set when it starts, sends through the delivery
// core (Kafka idempotent producer with the original key; RabbitMQ with
// publisher confirms and mandatory routing) at a rate limit, optionally
// after a canary, keeps a per-entry ledger in the dead-letter store
// (dlqstore.JobStore) and resumes after a restart. Engine is the one entry
// point: the dead-letter service (package dlq) calls it for the web pages,
// the JSON API and the CLI, and it enforces its rules itself, whoever
// calls.
//
// Where each rule lives:
//   - what an action does — the access action its entries are checked
//     for, the statuses it applies to (Eligible), the status it holds and
//     leaves them in: action.go;
//   - validating a request, authorizing it, the caller's scope of a
//     selection (dlqstore.ScopeFor) with a filter's text kept off payloads
//     the caller may not probe (dlqstore.MaySearchPayloads), which jobs a
//     caller may see and cancel (viewer): engine.go;
//   - pacing, the canary, sending and recording outcomes, resuming: run.go;
//   - job and ledger states are dlqstore's (JobState, ItemState), the
//     filter of a selector is dlqstore.Filter, and a target (where a job
//     sends: Request.Target, Job.Targets) is an access resource name read
//     with access.ParseResource — an entry's Destination is its DLQ.
package redrive

import (
	"encoding/json"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

// Defaults and limits.
const (
	DefaultRate         = 50.0 // messages per second
	DefaultCanaryWindow = 30 * time.Second
	MaxSample           = 5
	// DefaultCanary is the canary a request that asks for the default
	// (Request.CanaryDefault) gets when its set holds more than
	// DefaultCanaryThreshold entries, unless Options say otherwise (the
	// console's dlq.canary_default and dlq.canary_threshold).
	DefaultCanary          = 10
	DefaultCanaryThreshold = 100
	// DefaultMaxRate caps a request's rate unless Options.MaxRate says
	// otherwise (the console's dlq.max_rate), in messages per second.
	DefaultMaxRate = 1000.0
)

// Selector chooses a job's entries: exactly one of IDs, Group, Filter
// (the entries list's filter, in its JSON form: dlqstore.Filter) or
// RestOf, what a stopped job did not get through (dlqstore.Selection's
// RestOf: the entries it did not send and the re-failures of those it
// sent), for "re-plan the rest".
type Selector struct {
	IDs    []int64          `json:"ids,omitempty"`
	Group  int64            `json:"group,omitempty"`
	Filter *dlqstore.Filter `json:"filter,omitempty"`
	RestOf int64            `json:"rest_of,omitempty"`
}

// Edit is the change of an edit-and-redrive: the new envelope (validated;
// it is sent with a new id and the original id as its correlation id) and
// headers to set (a nil value removes the header).
type Edit struct {
	Payload json.RawMessage    `json:"payload"`
	Headers map[string]*string `json:"headers,omitempty"`
}

// Request asks for a job (or, with DryRun, only its plan).
type Request struct {
	Action   Action   `json:"action"`
	Selector Selector `json:"selector"`
	// Rate is messages per second (default DefaultRate, at most the
	// engine's MaxRate). Ignored by actions that send nothing.
	Rate   float64 `json:"rate,omitempty"`
	DryRun bool    `json:"dry_run,omitempty"`
	// Canary sends the first Canary entries, waits CanaryWindow and stops
	// the job if any of them dead-letters again. CanaryDefault asks, when
	// Canary is 0, for the engine's default canary on a set above its
	// threshold (what the plan form starts with).
	Canary        int  `json:"canary,omitempty"`
	CanaryDefault bool `json:"canary_default,omitempty"`
	// CanaryWindow is nanoseconds in JSON (kept for older clients);
	// CanaryWindowSeconds says it in seconds. Default DefaultCanaryWindow.
	CanaryWindow        time.Duration `json:"canary_window,omitempty"`
	CanaryWindowSeconds float64       `json:"canary_window_seconds,omitempty"`
	// Target redrives elsewhere ("kafka:<cluster>/<topic>" or
	// "rabbitmq:<vhost>/<queue>", the access policy's resource names);
	// needs redrive_elsewhere on it. "" = each entry's origin. (JSON
	// "destination", as the API always named it.)
	Target string `json:"destination,omitempty"`
	Reason string `json:"reason"`
	// Force starts the job although another runs on one of its destinations.
	Force bool `json:"force,omitempty"`
	// PublishQuarantine also publishes quarantined Kafka entries to
	// <topic>.quarantine.
	PublishQuarantine bool  `json:"publish_quarantine,omitempty"`
	Edit              *Edit `json:"edit,omitempty"`
}

// Actor is who asks, for the policy and the audit log.
type Actor struct {
	P         *access.Principal
	SourceIP  string
	UserAgent string
}

// TargetCount is how many entries of a plan go to one target.
type TargetCount struct {
	Target string `json:"destination"` // resource name, e.g. kafka:demo/orders
	Count  int    `json:"count"`
}

// SampleItem is one entry of a plan's sample with what the job would do to
// its headers.
type SampleItem struct {
	EntryID        int64             `json:"entry_id"`
	Target         string            `json:"destination"`
	ErrorMessage   string            `json:"error_message"`
	HeadersAdded   []delivery.Header `json:"headers_added,omitempty"`
	HeadersRemoved []string          `json:"headers_removed,omitempty"`
}

// Plan is what a job would do: the exact count of its frozen set if it
// started now, per target, and a sample.
type Plan struct {
	Action       Action        `json:"action"`
	Count        int           `json:"count"`
	Targets      []TargetCount `json:"destinations"`
	Sample       []SampleItem  `json:"sample"`
	Rate         float64       `json:"rate"`
	Canary       int           `json:"canary,omitempty"`
	CanaryWindow time.Duration `json:"canary_window,omitempty"` // nanoseconds, as Request
	// EstimatedTime is sending at the rate plus the canary window, in
	// nanoseconds (kept for older clients) and in seconds.
	EstimatedTime    time.Duration `json:"estimated_time"`
	EstimatedSeconds float64       `json:"estimated_time_seconds"`
	Warnings         []string      `json:"warnings,omitempty"`
}

// Job is a job with its progress.
type Job struct {
	ID           int64             `json:"id"`
	Action       Action            `json:"action"`
	State        dlqstore.JobState `json:"state"`
	Actor        string            `json:"actor"`
	Reason       string            `json:"reason"`
	Selector     Selector          `json:"selector"`
	Target       string            `json:"destination,omitempty"` // Request.Target
	Rate         float64           `json:"rate"`
	Canary       int               `json:"canary,omitempty"`
	CanaryWindow time.Duration     `json:"canary_window,omitempty"` // nanoseconds; see CanaryWindowSeconds
	// CanaryWindowSeconds is CanaryWindow in seconds.
	CanaryWindowSeconds float64 `json:"canary_window_seconds,omitempty"`
	Force               bool    `json:"force,omitempty"`
	PublishQuarantine   bool    `json:"publish_quarantine,omitempty"`
	Total               int     `json:"total"`
	Done                int     `json:"done"` // sent or applied
	Failed              int     `json:"failed"`
	Cancelled           int     `json:"cancelled"`
	Remaining           int     `json:"remaining"`
	// CurrentRate is the measured rate: messages sent over the time spent
	// sending (the canary window left out), 0 until two batches are out.
	CurrentRate float64       `json:"current_rate"`
	ETA         time.Duration `json:"eta,omitempty"` // nanoseconds; see ETASeconds
	// ETASeconds is ETA in seconds: the entries left at the measured rate
	// (the job's rate until there is one), plus what is left of the
	// canary window.
	ETASeconds  float64   `json:"eta_seconds,omitempty"`
	Targets     []string  `json:"destinations"`
	Error       string    `json:"error,omitempty"`
	CancelledBy string    `json:"cancelled_by,omitempty"` // who asked to cancel it
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
}

// Finished reports whether the job has ended.
func (j Job) Finished() bool { return j.State.Finished() }

// LedgerItem is the outcome of one entry of a job.
type LedgerItem struct {
	Seq     int                `json:"seq"`
	EntryID int64              `json:"entry_id"`
	Target  string             `json:"destination"`
	State   dlqstore.ItemState `json:"state"`
	Error   string             `json:"error,omitempty"`
	At      time.Time          `json:"at,omitzero"`
}

// HistoryItem is one action on an entry, for its page.
type HistoryItem struct {
	JobID  int64              `json:"job_id"`
	Action Action             `json:"action"`
	Actor  string             `json:"actor"`
	Reason string             `json:"reason"`
	State  dlqstore.ItemState `json:"state"` // the ledger state
	Target string             `json:"destination,omitempty"`
	Error  string             `json:"error,omitempty"`
	At     time.Time          `json:"at"`
}

// JobFilter selects jobs for the Jobs page and API; Engine.Jobs keeps
// only those its caller may see.
type JobFilter struct {
	Running  bool  // only jobs not finished
	Finished bool  // only finished jobs
	Before   int64 // keyset: ids below
	Limit    int   // default 50
}
