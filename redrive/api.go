// Package redrive runs dead-letter jobs: redrive (back to the original
// topic or queue, or elsewhere), quarantine, discard, restore and
// edit-and-redrive, over one entry, a checked set, a failure group or a
// filter. A job freezes its set when it starts, sends through the delivery
// core (Kafka idempotent producer with the original key; RabbitMQ with
// publisher confirms and mandatory routing) at a rate limit, optionally
// after a canary, keeps a per-entry ledger in the dead-letter database and
// resumes after a restart. Engine is the one entry point; the web pages,
// the JSON API and the CLI all go through it.
package redrive

import (
	"encoding/json"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

// Action is what a job does to its entries.
type Action string

// Job actions.
const (
	ActionRedrive     Action = "redrive"      // publish again, to the origin or Request.Destination
	ActionQuarantine  Action = "quarantine"   // out of the way, kept, restorable
	ActionDiscard     Action = "discard"      // dropped with a reason; restorable until retention purges it
	ActionRestore     Action = "restore"      // quarantined or discarded back to dead
	ActionEditRedrive Action = "edit_redrive" // one entry, payload/headers edited, new message id (config: dlq.edit_redrive)
)

// Job states. A job is created running; it ends completed, cancelled,
// canary_failed or failed.
const (
	StateFreezing     = dlqstore.JobFreezing // a big set is being frozen, a chunk per transaction
	StateRunning      = "running"
	StateCanaryWait   = "canary_wait"   // the canary was sent; watching for re-failures
	StateCancelling   = "cancelling"    // cancel asked; stops after the batch in flight
	StateCompleted    = "completed"     // every entry has an outcome
	StateCancelled    = "cancelled"     // stopped by an operator; what was sent stays sent
	StateCanaryFailed = "canary_failed" // a canary entry dead-lettered again; the rest was not sent
	StateFailed       = "failed"        // the job could not go on (e.g. destination unknown)
)

// Ledger item states.
const (
	ItemPending   = "pending"
	ItemSent      = "sent"      // redrive: the broker acknowledged it; other actions: applied
	ItemFailed    = "failed"    // not sent; Error says why; the entry is back in its previous status
	ItemCancelled = "cancelled" // the job stopped before it; the entry is back in its previous status
)

// Defaults and limits.
const (
	DefaultRate         = 50.0 // messages per second
	DefaultCanaryWindow = 30 * time.Second
	MaxSample           = 5
)

// FilterSpec is a list filter as the API and CLI send it (the entries
// page's query parameters).
type FilterSpec struct {
	Status      []string  `json:"status,omitempty"`
	Broker      string    `json:"broker,omitempty"`
	Cluster     string    `json:"cluster,omitempty"`
	Destination string    `json:"destination,omitempty"`
	EventType   string    `json:"event_type,omitempty"`
	ErrorCode   string    `json:"error_code,omitempty"`
	Tenant      string    `json:"tenant,omitempty"`
	From        time.Time `json:"from,omitzero"`
	To          time.Time `json:"to,omitzero"`
	Group       int64     `json:"group,omitempty"`
	Q           string    `json:"q,omitempty"` // full text
}

// Selector chooses a job's entries: exactly one of IDs, Group or Filter.
type Selector struct {
	IDs    []int64     `json:"ids,omitempty"`
	Group  int64       `json:"group,omitempty"`
	Filter *FilterSpec `json:"filter,omitempty"`
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
	// the job if any of them dead-letters again.
	Canary       int           `json:"canary,omitempty"`
	CanaryWindow time.Duration `json:"canary_window,omitempty"` // nanoseconds in JSON; default DefaultCanaryWindow
	// Destination redrives elsewhere ("kafka:<cluster>/<topic>" or
	// "rabbitmq:<vhost>/<queue>", the access policy's resource names);
	// needs redrive_elsewhere on it. "" = each entry's origin.
	Destination string `json:"destination,omitempty"`
	Reason      string `json:"reason"`
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

// DestinationCount is how many entries of a plan go to one destination.
type DestinationCount struct {
	Destination string `json:"destination"` // resource name, e.g. kafka:demo/orders
	Count       int    `json:"count"`
}

// SampleItem is one entry of a plan's sample with what the job would do to
// its headers.
type SampleItem struct {
	EntryID        int64             `json:"entry_id"`
	Destination    string            `json:"destination"`
	ErrorMessage   string            `json:"error_message"`
	HeadersAdded   []delivery.Header `json:"headers_added,omitempty"`
	HeadersRemoved []string          `json:"headers_removed,omitempty"`
}

// Plan is what a job would do: the exact count of its frozen set if it
// started now, per destination, and a sample.
type Plan struct {
	Action        Action             `json:"action"`
	Count         int                `json:"count"`
	Destinations  []DestinationCount `json:"destinations"`
	Sample        []SampleItem       `json:"sample"`
	Rate          float64            `json:"rate"`
	Canary        int                `json:"canary,omitempty"`
	EstimatedTime time.Duration      `json:"estimated_time"` // at the rate
	Warnings      []string           `json:"warnings,omitempty"`
}

// Job is a job with its progress.
type Job struct {
	ID                int64         `json:"id"`
	Action            Action        `json:"action"`
	State             string        `json:"state"`
	Actor             string        `json:"actor"`
	Reason            string        `json:"reason"`
	Selector          Selector      `json:"selector"`
	Destination       string        `json:"destination,omitempty"`
	Rate              float64       `json:"rate"`
	Canary            int           `json:"canary,omitempty"`
	CanaryWindow      time.Duration `json:"canary_window,omitempty"`
	Force             bool          `json:"force,omitempty"`
	PublishQuarantine bool          `json:"publish_quarantine,omitempty"`
	Total             int           `json:"total"`
	Done              int           `json:"done"` // sent or applied
	Failed            int           `json:"failed"`
	Cancelled         int           `json:"cancelled"`
	Remaining         int           `json:"remaining"`
	CurrentRate       float64       `json:"current_rate"` // messages/s over the last seconds
	ETA               time.Duration `json:"eta,omitempty"`
	Destinations      []string      `json:"destinations"`
	Error             string        `json:"error,omitempty"`
	CreatedAt         time.Time     `json:"created_at"`
	UpdatedAt         time.Time     `json:"updated_at"`
	FinishedAt        time.Time     `json:"finished_at,omitzero"`
}

// Finished reports whether the job has ended.
func (j Job) Finished() bool {
	switch j.State {
	case StateCompleted, StateCancelled, StateCanaryFailed, StateFailed:
		return true
	}
	return false
}

// LedgerItem is the outcome of one entry of a job.
type LedgerItem struct {
	Seq         int       `json:"seq"`
	EntryID     int64     `json:"entry_id"`
	Destination string    `json:"destination"`
	State       string    `json:"state"`
	Error       string    `json:"error,omitempty"`
	At          time.Time `json:"at,omitzero"`
}

// HistoryItem is one action on an entry, for its page.
type HistoryItem struct {
	JobID       int64     `json:"job_id"`
	Action      Action    `json:"action"`
	Actor       string    `json:"actor"`
	Reason      string    `json:"reason"`
	State       string    `json:"state"` // the ledger state
	Destination string    `json:"destination,omitempty"`
	Error       string    `json:"error,omitempty"`
	At          time.Time `json:"at"`
}

// JobFilter selects jobs for the Jobs page and API; Engine.Jobs keeps
// only those its caller may see.
type JobFilter struct {
	Running  bool  // only jobs not finished
	Finished bool  // only finished jobs
	Before   int64 // keyset: ids below
	Limit    int   // default 50
}
