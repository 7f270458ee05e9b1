package tracing

import "switchyard/sqldb"

// Schema is traces.db's schema, owned by this package and applied by Open
// through sqldb. The span store has a file of its own so that a burst of
// trace volume never holds the write lock the dead-letter index needs.
func Schema() sqldb.Schema {
	return sqldb.Schema{Owner: "tracing", Migrations: Migrations()}
}

// Migrations returns the schema of traces.db, in order. A released
// migration is never edited: a change is a new version.
//
// One row per span in spans. What a search filters or sorts on is a
// column; everything else a page needs (attributes, events, links, the
// status message) is one compact binary blob (see appendBody in store.go),
// which no query looks into. Times are INTEGER Unix nanoseconds and the
// duration is its own column (end = start_ns + dur_ns), so a duration
// filter reads an index key instead of computing end − start. Trace and
// span ids are 16- and 8-byte BLOBs: half the size of their hex.
//
// Resource attributes are the same for every span a process sends (host,
// SDK, version, service name), often a third of a span's bytes, so they
// live once in resources and a span points at its row. Rows are unique by
// their encoded attributes; retention drops a row once its last_ns (the
// latest start of its spans) is older than every stored span.
//
// The sparse text columns (correlation_id, event_id, destination) are
// NULL when the span has none — an HTTP span of the console itself has
// none — and their indexes are partial on IS NOT NULL, which SQLite uses
// for any "col = ?" term: spans without the field cost no index entry.
// tenant and resource are never NULL because access.TenantScope.Cond
// compares them with the empty string (a span without a tenant is visible
// to any non-empty scope).
//
// Indexes, each for a query Search or the assembly actually runs (the
// plans are checked in TestSearchPlans):
//   - spans_trace (trace_id, start_ns, span_id): Spans reads a trace in
//     start order from the index; Write's duplicate check reads span ids
//     without touching rows; Roots finds a trace's earliest match.
//   - spans_service (service, start_ns, dur_ns): the service page and
//     "service + min duration + time range", newest first; the duration
//     is in the key so a selective minimum skips rows without reading
//     them. Operation is matched on the same scan (always with a service
//     in practice).
//   - spans_start (start_ns): time-range-only searches and retention,
//     which deletes oldest first.
//   - spans_correlation, spans_event, spans_destination: the saga page,
//     a dead letter's event id, a topic's or queue's traces.
//   - spans_tenant (tenant, start_ns): a tenant filter.
//   - spans_group (grp, start_ns), migration 2: a consumer group's traces.
//   - spans_errors (start_ns) of the failed spans only: "errors, newest
//     first" (Search writes status = 2 as a literal so that SQLite can
//     use the partial index). Spans with status ok or unset are the bulk,
//     and a filter on those rides on the other indexes.
//
// Each has start_ns right after its equality column (and the implicit
// rowid last), so that a filtered page is a range scan in the keyset order
// of Search, (start_ns DESC, id DESC), which stops at LIMIT; spans_service
// and spans_trace only sort the rows of one start among themselves.
//
// Measured (BenchmarkSpanSearch, 2,000,000 messaging spans over 72 hours):
// 364 bytes a span on disk, indexes included.
//
// span_links holds one row per link of a span to another trace, so that
// LinkingTraces ("which traces link into this one") is an index lookup and
// not a scan of every span's links. Retention deletes them with their span.
func Migrations() []sqldb.Migration {
	return []sqldb.Migration{
		{Version: 1, Name: "span store", SQL: `
CREATE TABLE resources (
	id    INTEGER PRIMARY KEY,
	attrs   BLOB    NOT NULL UNIQUE, -- appendAttrs of the resource attributes
	last_ns INTEGER NOT NULL DEFAULT 0 -- latest start_ns of its spans
);
CREATE TABLE spans (
	id             INTEGER PRIMARY KEY,
	trace_id       BLOB    NOT NULL, -- 16 bytes
	span_id        BLOB    NOT NULL, -- 8 bytes
	parent_id      BLOB,             -- 8 bytes; NULL for a root
	start_ns       INTEGER NOT NULL,
	dur_ns         INTEGER NOT NULL, -- end − start; ≤ 0 with FlagNonPositive
	service        TEXT    NOT NULL,
	name           TEXT    NOT NULL,
	kind           INTEGER NOT NULL,
	status         INTEGER NOT NULL,
	flags          INTEGER NOT NULL,
	correlation_id TEXT,
	event_id       TEXT,
	event_type     TEXT    NOT NULL,
	system         TEXT    NOT NULL,
	destination    TEXT,
	cluster        TEXT    NOT NULL,
	grp            TEXT    NOT NULL,
	tenant         TEXT    NOT NULL,
	resource       TEXT    NOT NULL,
	attempt        INTEGER NOT NULL,
	step           TEXT    NOT NULL,
	resource_id    INTEGER NOT NULL, -- resources.id; no FOREIGN KEY: only this package writes
	body           BLOB    NOT NULL  -- appendBody: status message, attributes, events, links
);
CREATE INDEX spans_trace       ON spans(trace_id, start_ns, span_id);
CREATE INDEX spans_service     ON spans(service, start_ns, dur_ns);
CREATE INDEX spans_start       ON spans(start_ns);
CREATE INDEX spans_correlation ON spans(correlation_id, start_ns) WHERE correlation_id IS NOT NULL;
CREATE INDEX spans_event       ON spans(event_id, start_ns) WHERE event_id IS NOT NULL;
CREATE INDEX spans_destination ON spans(destination, start_ns) WHERE destination IS NOT NULL;
CREATE INDEX spans_tenant      ON spans(tenant, start_ns);
CREATE INDEX spans_errors      ON spans(start_ns) WHERE status = 2;
CREATE TABLE span_links (
	linked_trace BLOB    NOT NULL, -- the trace linked to
	span_row     INTEGER NOT NULL, -- spans.id of the linking span
	PRIMARY KEY (linked_trace, span_row)
) WITHOUT ROWID;
CREATE INDEX span_links_span ON span_links(span_row);
`},
		// A consumer group page lists its group's recent traces: without
		// an index a quiet group's search walks every span. Spans without
		// a group share the '' key, appended in start order: cheap.
		{Version: 2, Name: "spans by consumer group", SQL: `
CREATE INDEX spans_group ON spans(grp, start_ns);
`},
	}
}
