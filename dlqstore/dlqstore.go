// Package dlqstore is the dead-letter store: one Entry per failed message
// read from a DLQ topic or queue, failure Groups by fingerprint with their
// triage state, a full-text index, the Kafka offsets committed in the same
// transaction as the entries read before them, and the jobs of package
// redrive with their per-entry ledger.
//
// The contract is declared here, beside the domain types, grouped by who
// uses it: IndexStore (the indexers), JobStore (the redrive engine),
// ViewStore (the dead-letter service, package dlq, for the pages and the
// API; the gauges) and RetentionStore; Backend is all of
// them. dlqstoretest is its conformance suite, which every implementation
// runs; Store is the SQLite implementation (FTS5, its own dlq.db).
//
// Where each rule lives:
//   - the states of entries, jobs and ledger items: state.go (Status,
//     JobState, ItemState);
//   - the filter and its one codec (query string, JSON, CLI) with its
//     validation: filter.go (Filter, ParseValues, Values);
//   - a caller's scope: scope.go — built from the access policy once
//     (ScopeFor, for the dead-letter service's views and the redrive
//     engine's selections alike) and turned into SQL once (scopeCond, every
//     scoped query's security filter);
//   - who may search payload and key text (MaySearchPayloads, scope.go)
//     and the search kept off them for everyone else (Filter.NoPayloadText, applied
//     by ftsQuery in fts.go);
//   - which jobs a principal may see and cancel: visibility.go (JobViewer,
//     in the query);
//   - what a search finds: the query syntax and the index's columns in
//     fts.go, the text of an entry in text.go (textOf, for new entries
//     and the rebuild of older ones, rebuild.go), and the filter values
//     an empty search suggests in suggest.go (FieldMatches);
//   - how a search runs (planner, modes, SQL, cursor): search.go,
//     where.go, cursor.go, tuned by Options.Tuning;
//   - indexing, deduplication and offsets: index.go; freezing a job's set:
//     freeze.go; its ledger: ledger.go; its record: job.go;
//   - what became of a redrive — a re-failure linked to the entry it was
//     redriven from, and the group counting that message once:
//     refailure.go (RedriveOutcome and Entry.Outcome in state.go and
//     entry.go);
//   - the schema and its migrations: schema.go.
package dlqstore

import (
	"context"
	"io"
	"time"
)

// IndexStore is what the indexers need: entries written with the Kafka
// offset they were read up to, or a RabbitMQ batch acked only once stored.
type IndexStore interface {
	// IndexKafka stores records of one partition and its next offset in
	// one transaction. Errors: EINVALID (malformed batch).
	IndexKafka(ctx context.Context, cluster, topic string, partition int32, items []IndexItem, nextOffset int64) (IndexResult, error)
	// KafkaOffsets is the next offset to read of every indexed partition
	// of cluster.
	KafkaOffsets(ctx context.Context, cluster string) (map[TopicPartition]int64, error)
	// IndexRabbit stores a batch of RabbitMQ dead letters, redeliveries
	// counted as duplicates. Errors: EINVALID (an item without a RabbitMQ
	// location).
	IndexRabbit(ctx context.Context, items []IndexItem) (IndexResult, error)
}

// JobStore is what the redrive engine needs: a selection planned and
// frozen into a job's ledger, outcomes recorded with their entries' status
// in one transaction, the job's state, and which jobs a viewer may see.
type JobStore interface {
	// Entry is one entry with its body. Errors: ENOTFOUND.
	Entry(ctx context.Context, id int64) (Entry, error)
	// PlanSelection counts a selection as CreateJob would freeze it.
	// Errors: EINVALID (bad selection or filter).
	PlanSelection(ctx context.Context, sel Selection, sample int) (SelectionPlan, error)
	// CreateJob stores a job and freezes its selection. Errors: EINVALID
	// (bad or empty selection).
	CreateJob(ctx context.Context, j JobRecord, sel Selection, hold Status) (JobRecord, error)
	// AbandonFreezing ends the jobs a stopped process left JobFreezing.
	AbandonFreezing(ctx context.Context) ([]int64, error)
	// Job is one job, whoever may see it (the runner). Errors: ENOTFOUND.
	Job(ctx context.Context, id int64) (JobRecord, error)
	// ViewJob is one job if v may see it. Errors: ENOTFOUND, also for a
	// job v may not see.
	ViewJob(ctx context.Context, id int64, v JobViewer) (JobRecord, error)
	// Jobs lists jobs newest first, filtered by the viewer in the query.
	// Errors: EINVALID.
	Jobs(ctx context.Context, q JobQuery) ([]JobRecord, int64, error)
	// JobItems pages a job's ledger.
	JobItems(ctx context.Context, jobID int64, afterSeq, limit int) ([]JobItem, int, error)
	// EntryHistory lists the jobs v may see that acted on an entry.
	EntryHistory(ctx context.Context, entryID int64, v *JobViewer) ([]EntryJob, error)
	// PendingItems reads the next pending items of a job with their entries,
	// each holding only what sending it takes (a page reads an entry whole
	// with Entry).
	PendingItems(ctx context.Context, jobID int64, afterSeq, limit int) ([]JobItem, []Entry, error)
	// CompleteItems records outcomes and their entries' status together.
	CompleteItems(ctx context.Context, jobID int64, outs []Outcome, done Status, reason string) error
	// CancelPending ends a job's pending items as cancelled.
	CancelPending(ctx context.Context, jobID int64, why string) error
	// SetJobState sets a job's state and error; finished ends it.
	SetJobState(ctx context.Context, id int64, state JobState, errText string, finished bool) error
	// CancelJob marks an unfinished job cancelling, by whom and why, and
	// reports whether it did; an ended job is left as it is (false).
	CancelJob(ctx context.Context, id int64, by, errText string) (bool, error)
	// SetCanaryUntil records when a job's canary window ends.
	SetCanaryUntil(ctx context.Context, id int64, until time.Time) error
	// Refailed counts the entries that failed again after a job's redrive.
	Refailed(ctx context.Context, jobID int64) (int, error)
	// Refailures lists those entries within scope, oldest first, up to
	// limit, with their total.
	Refailures(ctx context.Context, jobID int64, scope *TenantScope, limit int) ([]Refailure, int, error)
}

// ViewStore is what the dead-letter service (package dlq, for the pages
// and the API) and the gauges read, each list computed over the caller's
// scope in the query; the service is the only caller that passes one.
type ViewStore interface {
	// FindEntries pages the entries of a filter. Errors: EINVALID (bad
	// filter, cursor or full-text query).
	FindEntries(ctx context.Context, f Filter) (Page, error)
	// FieldMatches lists the error codes, event types and DLQs of a
	// filter's entries whose names hold a search's terms. Errors:
	// EINVALID.
	FieldMatches(ctx context.Context, f Filter, terms []string, limit int) ([]FieldMatch, error)
	// Entry is one entry with its body. Errors: ENOTFOUND.
	Entry(ctx context.Context, id int64) (Entry, error)
	// Groups pages failure groups. Errors: EINVALID.
	Groups(ctx context.Context, f GroupFilter) ([]Group, string, error)
	// Group is one group over a scope. Errors: ENOTFOUND, also when the
	// group has no entry in the scope.
	Group(ctx context.Context, id int64, scope *TenantScope) (Group, error)
	// SetTriage sets a group's triage state. Errors: EINVALID, ENOTFOUND.
	SetTriage(ctx context.Context, id int64, t Triage) (Group, error)
	// Trends counts the failures of each of a page of groups per bucket,
	// in one query. Errors: EINVALID.
	Trends(ctx context.Context, groupIDs []int64, scope *TenantScope, from, to time.Time, step time.Duration) (map[int64][]int, error)
	// Counts are the entry counts of a scope.
	Counts(ctx context.Context, scope *TenantScope) (Counts, error)
	// SourceCounts counts a scope's entries per DLQ.
	SourceCounts(ctx context.Context, scope *TenantScope) ([]SourceCount, error)
	// EntryGauges counts entries per DLQ, status, tenant and resource.
	EntryGauges(ctx context.Context) ([]EntryGauge, error)
}

// RetentionStore changes entries outside jobs: statuses, and the purge of
// resolved and discarded ones.
type RetentionStore interface {
	// SetStatus sets the status of entries. Errors: EINVALID.
	SetStatus(ctx context.Context, ids []int64, status Status) (int, error)
	// Purge deletes resolved and discarded entries older than a time.
	Purge(ctx context.Context, resolvedBefore time.Time) (int64, error)
}

// Backend is the whole contract: what cmd/console opens and hands out by
// role. A PostgreSQL store would implement it and pass dlqstoretest.
type Backend interface {
	IndexStore
	JobStore
	ViewStore
	RetentionStore
	io.Closer
}

var _ Backend = (*Store)(nil)
