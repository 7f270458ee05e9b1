// Package dlq is the dead-letter service: the one place that applies, for
// a caller, every rule that protects dead letters. Service is the type
// that matters; the web pages and the JSON API (and through it the CLI)
// call it, and it is the only caller of the store's scoped queries
// (dlqstore.ViewStore). Where each rule lives:
//   - the caller's scope of every list and total — entries, groups, a
//     group, trends, the open count of the navigation badge, the sources'
//     entries — is their view scope (dlqstore.ScopeFor), applied in the
//     store's query, so a page is never filtered after it was read and is
//     full unless it is the last: entries.go, groups.go;
//   - a full-text search stays off payload text for a caller who may not
//     probe it (dlqstore.MaySearchPayloads decides, Filter.NoPayloadText
//     does it in the store): FindEntries in entries.go; the redrive engine
//     applies the same to a job's filter itself;
//   - an entry out of the caller's reach answers the same ENOTFOUND as a
//     missing one: Entry in entries.go;
//   - an entry's payload, key and envelope metadata are withheld without
//     read_payload (its headers named withheld too: pages show them only
//     with PayloadAllowed) and masked without read_pii (Masker), and every
//     payload shown is audited as payload.read: payload.go;
//   - which sources a caller sees, and the indexers' counters only to
//     whoever views every tenant of a source: sources.go;
//   - triage (redrive on console:dlq, on a group the caller can see) and
//     its dlq.triage audit record: triage.go;
//   - the job buttons a page offers (the access action of each job
//     action, an entry's status: redrive.Eligible; edit and redrive only
//     on a JSON payload read in full): actions.go;
//   - jobs — plan, start, cancel, one job, the list, a ledger, an entry's
//     history — go to the redrive engine with the caller, which authorizes
//     them and keeps job visibility in its query (dlqstore.JobViewer):
//     jobs.go;
//   - what became of a redrive — an entry's outcome after the watch
//     window (RedriveWatch), a job's re-failures within the caller's
//     view scope: outcomes.go;
//   - the landing page's aggregates (groups, trends, the open count, the
//     sources' counts) shared between callers of the same scope for a
//     short while, invalidated by every operator change: cache.go.
package dlq

import (
	"context"
	"fmt"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/indexer"
	"switchyard/redrive"
)

// Masker hides PII in dead letters: the message by its event type (an
// envelope's payload and metadata, or a bare payload), the record key, and
// the envelope metadata shown beside the payload. *access.Masker
// implements it.
type Masker interface {
	MaskMessage(eventType string, value []byte) ([]byte, int)
	MaskKey(eventType string, key []byte) ([]byte, bool)
	MaskMetadata(eventType string, md delivery.Metadata) (delivery.Metadata, int)
}

// AuditLog records payload reads and triage. access.AuditLog implements it.
type AuditLog interface {
	Append(ctx context.Context, e access.AuditEvent) error
}

// IndexerStatus reports the dead-letter sources being indexed. The
// console's indexers implement it.
type IndexerStatus interface {
	Status() []indexer.SourceStatus
}

var (
	_ Masker   = (*access.Masker)(nil)
	_ AuditLog = access.AuditLog(nil)
)

// Options configures a Service. Store is required; every other field may
// be left zero.
type Options struct {
	// Store is the dead-letter index.
	Store dlqstore.ViewStore
	// Jobs runs dead-letter jobs; nil answers job calls ENOTFOUND and
	// offers no job action.
	Jobs *redrive.Engine
	// Policy decides what a caller may see and do; its zero value is the
	// console's policy.
	Policy access.Policy
	// Masker masks PII for callers without read_pii; nil shows it as
	// stored.
	Masker Masker
	// Audit records triage, and payload reads with AuditReads; nil
	// records nothing.
	Audit AuditLog
	// AuditReads records every payload shown as payload.read (the
	// console's auth.audit_payload_reads).
	AuditReads bool
	// Indexers report the sources; nil leaves them unknown.
	Indexers IndexerStatus
	// RedriveWatch is how long a redriven message is watched for a
	// re-failure before its entry is "not seen again" (Outcome); default
	// DefaultRedriveWatch.
	RedriveWatch time.Duration
	// Cache shares the landing page's aggregate reads between callers of
	// the same scope (see Cache); nil reads the store every time. Hand
	// the redrive engine Cache.WatchJobs of its store, so that jobs'
	// changes show at once.
	Cache *Cache
	// Now is the clock of audit records; default time.Now.
	Now func() time.Time
}

// Service applies the dead-letter rules for a caller. Its methods are safe
// for concurrent use.
type Service struct {
	store      dlqstore.ViewStore
	jobs       *redrive.Engine
	policy     access.Policy
	masker     Masker
	audit      AuditLog
	auditReads bool
	indexers   IndexerStatus
	watch      time.Duration
	cache      *Cache
	now        func() time.Time
}

// New returns a service over opts.Store.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("dlq: a store is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RedriveWatch < 0 {
		return nil, fmt.Errorf("dlq: the redrive watch window must not be negative")
	}
	if opts.RedriveWatch == 0 {
		opts.RedriveWatch = DefaultRedriveWatch
	}
	return &Service{store: opts.Store, jobs: opts.Jobs, policy: opts.Policy, masker: opts.Masker, audit: opts.Audit,
		auditReads: opts.AuditReads, indexers: opts.Indexers, watch: opts.RedriveWatch, cache: opts.Cache, now: opts.Now}, nil
}

// Caller is who asks and through what: the principal with where the
// request came from (redrive.Actor, which the engine checks and audits)
// and the route it came by, recorded with payload reads.
type Caller struct {
	redrive.Actor
	Route string
}

// scope is what the caller may view of the dead letters, in the store's
// terms: every list and total below is computed over it in the query.
func (s *Service) scope(c Caller) *dlqstore.TenantScope {
	return dlqstore.ScopeFor(s.policy, c.P, access.ActionView)
}

// event is an audit record of the caller doing action on resource.
func (s *Service) event(c Caller, action, resource, outcome string) access.AuditEvent {
	ev := access.AuditEvent{Time: s.now(), SourceIP: c.SourceIP, UserAgent: c.UserAgent,
		Action: action, Resource: resource, Outcome: outcome}
	if c.P != nil {
		ev.Actor, ev.Method = c.P.User, c.P.Method
	}
	return ev
}
