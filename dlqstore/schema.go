package dlqstore

import "switchyard/sqldb"

// Schema is dlq.db's schema, owned by this package and applied by Open
// through sqldb. Releases before per-owner bookkeeping recorded its
// versions without an owner, as the file's only schema; AdoptUnowned takes
// them over.
func Schema() sqldb.Schema {
	return sqldb.Schema{Owner: "dlqstore", Migrations: Migrations(), AdoptUnowned: true}
}

// Migrations returns the schema of dlq.db, in order. A released migration
// is never edited: a change is a new version.
//
// Times are INTEGER Unix nanoseconds (0 = unknown) rather than sqldb's
// fixed-width text: the (…, last_failure_at) indexes that serve every list
// query are then 8 bytes a key instead of 30, which matters at millions of
// entries.
//
// The full-text index is a contentless FTS5 table with contentless_delete=1
// and rowid = entries.id. Contentless because every indexed text is already
// in entries (the payload as a BLOB, ids and error in record), so an
// external-content table would need a view that re-derives the text, and a
// regular one would store the payload twice; contentless_delete (SQLite
// 3.43+) lets Purge delete a row by rowid without re-supplying its text.
// Snippets are not needed: the list shows the stored entry. The tokenizer is
// unicode61 with remove_diacritics 2 and no extra tokenchars: queries are
// rewritten so that an id such as 3f2a…-…, com.acme.Foo or ORDER_NOT_FOUND
// becomes a quoted phrase of its parts, which matches the id exactly while a
// search for one part (NullPointerException, ORDER) still finds it — with
// tokenchars '-_.' the dotted exception type and the code would be one token
// each and a part would find nothing.
func Migrations() []sqldb.Migration {
	return []sqldb.Migration{
		{Version: 1, Name: "dead letter index", SQL: `
CREATE TABLE entries (
	id               INTEGER PRIMARY KEY,
	status           TEXT    NOT NULL DEFAULT 'dead' CHECK (status IN ('dead','redriving','redriven','quarantined','discarded','resolved')),
	broker           TEXT    NOT NULL,
	cluster          TEXT    NOT NULL,
	vhost            TEXT    NOT NULL DEFAULT '',
	destination      TEXT    NOT NULL,
	kpartition       INTEGER,          -- Kafka only
	koffset          INTEGER,          -- Kafka only
	message_id       TEXT,             -- RabbitMQ only; NULL when the message had none (never deduplicated)
	death_count      INTEGER,          -- RabbitMQ only
	tenant           TEXT    NOT NULL DEFAULT '',
	event_type       TEXT    NOT NULL DEFAULT '',
	error_code       TEXT    NOT NULL DEFAULT '',
	fingerprint      TEXT    NOT NULL,
	group_id         INTEGER NOT NULL, -- groups.id; no FOREIGN KEY: only this package writes, and the check costs a lookup per row
	first_failure_at INTEGER NOT NULL,
	last_failure_at  INTEGER NOT NULL,
	indexed_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL, -- last status change; retention counts from here
	flags            TEXT    NOT NULL DEFAULT '', -- comma-separated
	payload_size     INTEGER NOT NULL DEFAULT 0,
	payload_hash     TEXT    NOT NULL DEFAULT '',
	truncated        INTEGER NOT NULL DEFAULT 0
);
-- The bulky part of an entry lives apart, so that entries rows stay around
-- 200 bytes: a search that checks a column no index holds reads a few
-- dense pages instead of one 5 KB row per candidate, and only the page
-- shown reads bodies.
CREATE TABLE entry_bodies (
	id      INTEGER PRIMARY KEY, -- entries.id
	payload BLOB,                -- as received, capped by the indexer
	headers BLOB,                -- JSON, see storedHeader
	record  BLOB NOT NULL        -- JSON storedRecord: the delivery.DeadLetter minus payload and headers
);
-- Re-indexing is a no-op: the same record is the same key.
CREATE UNIQUE INDEX entries_kafka_key  ON entries(cluster, destination, kpartition, koffset) WHERE broker = 'kafka';
CREATE UNIQUE INDEX entries_rabbit_key ON entries(cluster, vhost, destination, message_id, death_count) WHERE broker = 'rabbitmq';
-- Lists are newest first by (last_failure_at, id); every filter column
-- leads an index that ends in last_failure_at (and the implicit rowid), so a
-- filtered page is a range scan in order that stops at LIMIT.
CREATE INDEX entries_time        ON entries(last_failure_at);
CREATE INDEX entries_tenant      ON entries(tenant, last_failure_at);
CREATE INDEX entries_status      ON entries(status, last_failure_at);
CREATE INDEX entries_status_tenant ON entries(status, tenant, last_failure_at);
CREATE INDEX entries_broker      ON entries(broker, last_failure_at);
CREATE INDEX entries_cluster     ON entries(cluster, last_failure_at);
CREATE INDEX entries_destination ON entries(destination, last_failure_at);
CREATE INDEX entries_event_type  ON entries(event_type, last_failure_at);
CREATE INDEX entries_error_code  ON entries(error_code, last_failure_at);
-- Group pages and trends; tenant last so that a scoped trend is index-only.
CREATE INDEX entries_group       ON entries(group_id, last_failure_at, tenant);
-- Retention looks only at finished entries.
CREATE INDEX entries_finished    ON entries(updated_at) WHERE status IN ('resolved', 'discarded');

CREATE VIRTUAL TABLE entries_fts USING fts5(
	message, exception, ids, payload,
	content = '', contentless_delete = 1,
	tokenize = 'unicode61 remove_diacritics 2'
);

-- The next offset to read per partition, written in the same transaction
-- as the entries read before it.
CREATE TABLE kafka_offsets (
	cluster     TEXT    NOT NULL,
	topic       TEXT    NOT NULL,
	kpartition  INTEGER NOT NULL,
	next_offset INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (cluster, topic, kpartition)
) WITHOUT ROWID;

-- One row per failure cause (delivery.Fingerprint). count, first_seen and
-- last_seen are totals over every tenant; scoped views read group_stats.
CREATE TABLE groups (
	id             INTEGER PRIMARY KEY,
	fingerprint    TEXT    NOT NULL UNIQUE,
	title          TEXT    NOT NULL,
	error_code     TEXT    NOT NULL DEFAULT '',
	event_type     TEXT    NOT NULL DEFAULT '',
	exception_type TEXT    NOT NULL DEFAULT '',
	count          INTEGER NOT NULL DEFAULT 0,
	first_seen     INTEGER NOT NULL DEFAULT 0,
	last_seen      INTEGER NOT NULL DEFAULT 0,
	state          TEXT    NOT NULL DEFAULT 'open' CHECK (state IN ('open','acknowledged','resolved','snoozed')),
	owner          TEXT    NOT NULL DEFAULT '',
	note           TEXT    NOT NULL DEFAULT '',
	snoozed_until  INTEGER NOT NULL DEFAULT 0,
	updated_by     TEXT    NOT NULL DEFAULT '',
	updated_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX groups_count     ON groups(count, id);
CREATE INDEX groups_last_seen ON groups(last_seen, id);

-- Entry counts per (group, tenant, broker, destination, event type,
-- status), kept in the same transaction as every insert, status change and
-- purge. A tenant-scoped view of groups and counts sums only its tenants'
-- rows, so a t1 user never sees t2 numbers, at the cost of
-- groups×tenants×destinations rows instead of a scan of every entry; the
-- total of an entry list without a time range or text is read here too.
CREATE TABLE group_stats (
	group_id    INTEGER NOT NULL,
	tenant      TEXT    NOT NULL,
	broker      TEXT    NOT NULL,
	destination TEXT    NOT NULL,
	event_type  TEXT    NOT NULL,
	status      TEXT    NOT NULL,
	n           INTEGER NOT NULL,
	first_seen  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	PRIMARY KEY (group_id, tenant, broker, destination, event_type, status)
) WITHOUT ROWID;
CREATE INDEX group_stats_tenant ON group_stats(tenant, group_id);
`},
		{Version: 2, Name: "resource of every entry, for access rules in queries", SQL: migrationResource},
		{Version: 3, Name: "redrive jobs, their ledger, and redrive provenance of entries", SQL: migrationJobs},
		{Version: 4, Name: "tenant at the end of the filter indexes", SQL: migrationFilterTenant},
		{Version: 5, Name: "who may see a job: the resources and tenants of its entries", SQL: migrationJobScopes},
		{Version: 6, Name: "who cancelled a job", SQL: migrationCancelledBy},
		{Version: 7, Name: "full-text index of codes, exception words, destinations, services, event types and keys", SQL: migrationSearchColumns},
		{Version: 8, Name: "what became of a redrive: re-failures linked to the entries they were redriven from", SQL: migrationRefailures},
		{Version: 9, Name: "capture first: filter tokens in the full-text index, compressed bodies", SQL: migrationCapture},
		{Version: 10, Name: "a redrive holds its entries in its ledger, not in their status", SQL: migrationLedgerHolds},
		{Version: 11, Name: "compression dictionaries of bodies, trained on the store's own dead letters", SQL: migrationBodyDicts},
		{Version: 12, Name: "the full-text index merges sixteen segments at a time", SQL: migrationFTSMerge},
	}
}

// migrationCapture gives the full-text index a filters column (the
// entry's tenant, event type, error code, broker, cluster, destination and
// resource as tokens, filterTokens), so that a filter with text is one
// full-text query; FTS5 cannot add a column, so the index is created anew,
// empty, and filled again from the entries by the text indexer. Bodies
// gain codec (blob.go): rows written before it keep their blobs as they
// are.
//
// Capture no longer writes the full-text index: text_progress is the text
// indexer's progress (rebuild.go), starting with every existing entry
// "older" (below) and none new (above), so that the same walk that keeps
// up with new entries refills the index, newest first.
//
// Two of the filter indexes go: broker and cluster have a handful of
// values each, so a list filtered by either walks entries_time and finds
// a page among the first rows it reads, and neither index paid for its
// cost on every insert. Status keeps its own index: quarantined or
// resolved entries can be few, and entries_status_tenant serves a status
// only with a tenant.
const migrationCapture = `
DROP TABLE entries_fts;
CREATE VIRTUAL TABLE entries_fts USING fts5(
	message, exception, ids, payload, code, destination, service, event_type, key, filters,
	content = '', contentless_delete = 1,
	tokenize = 'unicode61 remove_diacritics 2'
);
ALTER TABLE entry_bodies ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;
CREATE TABLE text_progress (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	above INTEGER NOT NULL, -- every entry with a greater id lacks its text
	below INTEGER NOT NULL, -- every entry with this id or less lacks its text
	purges INTEGER NOT NULL DEFAULT 0 -- bumped by every purge, which may free ids for reuse
);
INSERT INTO text_progress (id, above, below) SELECT 1, coalesce(max(id), 0), coalesce(max(id), 0) FROM entries;
DROP INDEX entries_broker;
DROP INDEX entries_cluster;
`

// migrationSearchColumns gives the full-text index a column for each kind
// of text an operator sees on an entry and searches for beyond its message,
// exception, ids and payload (fts.go): the error code, the DLQ and origin
// topic or queue, the origin service and consumer group, the event type,
// and the key. An FTS5 table cannot gain columns, and the exception's
// camel-case words take Go (nameText), so the index is created anew, empty,
// and RebuildText fills it for the entries stored before, newest first, in
// small transactions while the console runs: filling it here would hold
// the write lock, and the console's start, for minutes over millions of
// entries.
const migrationSearchColumns = `
DROP TABLE entries_fts;
CREATE VIRTUAL TABLE entries_fts USING fts5(
	message, exception, ids, payload, code, destination, service, event_type, key,
	content = '', contentless_delete = 1,
	tokenize = 'unicode61 remove_diacritics 2'
);
`

// migrationRefailures links a redriven entry to what became of its
// message. A dead letter indexed with redrive provenance (redrive_job
// set) is a re-failure: refailure_of names the entry it was redriven from
// (found by the switchyard.redrive.from header among the job's ledger,
// linkRefailure in refailure.go), and that entry's refailed_as names its
// first re-failure. A redriven entry with refailed_as = 0 was not seen
// again (Entry.Outcome).
//
// The failure group counts messages, not deliveries: a redriven entry whose
// message failed again is counted once, as its re-failure. So group_stats
// gains refailed (1 for such an entry) in its key, groups.count leaves
// them out, and Counts reports them apart (FailedAgain).
//
// Backfill: existing re-failures are linked the same way, in SQL (the
// location string of LocationString, with the default vhost's "/" as
// %2F); then group_stats is rebuilt from its own rows (every row
// refailed = 0) with the re-failed originals moved to refailed = 1, and
// the groups' counts follow. entries.headers is text JSON stored as a
// BLOB, hence the CAST.
const migrationRefailures = `
ALTER TABLE entries ADD COLUMN refailure_of INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN refailed_as  INTEGER NOT NULL DEFAULT 0;
CREATE INDEX entries_refailure_of ON entries(refailure_of) WHERE refailure_of != 0;

UPDATE entries SET refailure_of = coalesce((
	SELECT o.id FROM job_items i JOIN entries o ON o.id = i.entry_id
	WHERE i.job_id = entries.redrive_job AND o.id != entries.id
		AND (CASE o.broker
			WHEN 'kafka' THEN 'kafka:' || o.cluster || '/' || o.destination || '/' || o.kpartition || '@' || o.koffset
			ELSE 'rabbitmq:' || o.cluster || '/' || replace(o.vhost, '/', '%2F') || '/' || o.destination END) = (
			SELECT json_extract(h.value, '$.v') FROM entry_bodies b,
				json_each(CASE WHEN json_valid(CAST(b.headers AS TEXT)) THEN CAST(b.headers AS TEXT) ELSE '[]' END) h
			WHERE b.id = entries.id AND json_extract(h.value, '$.k') = 'switchyard.redrive.from'
			ORDER BY h.key DESC LIMIT 1)
		AND (o.broker = 'kafka' OR o.message_id = entries.message_id)
	ORDER BY o.id DESC LIMIT 1), 0)
WHERE redrive_job != 0;
UPDATE entries SET refailed_as = (SELECT min(r.id) FROM entries r WHERE r.refailure_of = entries.id)
WHERE id IN (SELECT refailure_of FROM entries WHERE refailure_of != 0);

CREATE TABLE group_stats_v3 (
	group_id    INTEGER NOT NULL,
	tenant      TEXT    NOT NULL,
	broker      TEXT    NOT NULL,
	cluster     TEXT    NOT NULL,
	destination TEXT    NOT NULL,
	resource    TEXT    NOT NULL,
	event_type  TEXT    NOT NULL,
	status      TEXT    NOT NULL,
	refailed    INTEGER NOT NULL, -- 1: redriven entries whose message failed again (counted as their re-failure)
	n           INTEGER NOT NULL,
	first_seen  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	PRIMARY KEY (group_id, tenant, broker, cluster, destination, resource, event_type, status, refailed)
) WITHOUT ROWID;
INSERT INTO group_stats_v3 (group_id, tenant, broker, cluster, destination, resource, event_type, status, refailed, n, first_seen, last_seen)
	SELECT group_id, tenant, broker, cluster, destination, resource, event_type, status, 0, n, first_seen, last_seen FROM group_stats;
INSERT INTO group_stats_v3 (group_id, tenant, broker, cluster, destination, resource, event_type, status, refailed, n, first_seen, last_seen)
	SELECT group_id, tenant, broker, cluster, destination, resource, event_type, status, 1, count(*), min(first_failure_at), max(last_failure_at)
	FROM entries WHERE id IN (SELECT refailure_of FROM entries WHERE refailure_of != 0)
	GROUP BY group_id, tenant, broker, cluster, destination, resource, event_type, status;
UPDATE group_stats_v3 AS s SET n = s.n - r.n FROM group_stats_v3 AS r
WHERE s.refailed = 0 AND r.refailed = 1 AND r.group_id = s.group_id AND r.tenant = s.tenant AND r.broker = s.broker
	AND r.cluster = s.cluster AND r.destination = s.destination AND r.resource = s.resource AND r.event_type = s.event_type AND r.status = s.status;
DELETE FROM group_stats_v3 WHERE n <= 0;
DROP TABLE group_stats;
ALTER TABLE group_stats_v3 RENAME TO group_stats;
CREATE INDEX group_stats_tenant ON group_stats(tenant, group_id);
UPDATE groups SET count = max(0, count - (SELECT sum(n) FROM group_stats s WHERE s.refailed = 1 AND s.group_id = groups.id))
WHERE id IN (SELECT group_id FROM group_stats WHERE refailed = 1);
`

// migrationCancelledBy records who asked to cancel a job
// (JobRecord.CancelledBy), which pages said by reading "cancelled by X"
// back out of the job's error. Jobs cancelled before it get the name from
// that error, once.
const migrationCancelledBy = `
ALTER TABLE jobs ADD COLUMN cancelled_by TEXT NOT NULL DEFAULT '';
UPDATE jobs SET cancelled_by = substr(error, 14) WHERE error LIKE 'cancelled by %' AND state IN ('cancelling', 'cancelled');
`

// migrationJobScopes records, per job, what acting on it needs: its
// access action (jobs.access: the policy action the engine checks on each
// entry, discard for a restore, edit for an edit-and-redrive) on every
// distinct (resource, tenant) of its entries, and redrive_elsewhere on the
// destination of a redrive elsewhere (job_scopes). A job is visible and
// cancellable only by someone whose rules allow all of it (JobViewer),
// which the jobs list checks in its query with a NOT EXISTS over these few
// rows rather than over a ledger of 100,000 entries. jobs.scoped is 1 once
// job_scopes holds the whole frozen set; until then (a big set being
// frozen) only an admin sees the job.
//
// Existing jobs are backfilled from their ledger joined to the entries,
// once. A job whose ledger names an entry retention has purged cannot be
// judged (its tenant is gone with it), so it stays unscoped: admins only.
// jobs.request is text JSON stored as a BLOB, hence the CAST.
const migrationJobScopes = `
ALTER TABLE jobs ADD COLUMN access TEXT    NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN scoped INTEGER NOT NULL DEFAULT 0;
CREATE TABLE job_scopes (
	job_id   INTEGER NOT NULL,
	action   TEXT    NOT NULL, -- access action needed on resource for tenant
	resource TEXT    NOT NULL,
	tenant   TEXT    NOT NULL,
	PRIMARY KEY (job_id, action, resource, tenant)
) WITHOUT ROWID;

UPDATE jobs SET access = CASE action WHEN 'edit_redrive' THEN 'edit' WHEN 'restore' THEN 'discard' ELSE action END;
INSERT INTO job_scopes (job_id, action, resource, tenant)
	SELECT DISTINCT i.job_id, j.access, e.resource, e.tenant
	FROM job_items i JOIN jobs j ON j.id = i.job_id JOIN entries e ON e.id = i.entry_id;
INSERT OR IGNORE INTO job_scopes (job_id, action, resource, tenant)
	SELECT id, 'redrive_elsewhere', json_extract(CAST(request AS TEXT), '$.destination'), '' FROM jobs
	WHERE json_valid(CAST(request AS TEXT)) AND coalesce(json_extract(CAST(request AS TEXT), '$.destination'), '') != '';
UPDATE jobs SET scoped = 1 WHERE state != 'freezing'
	AND EXISTS (SELECT 1 FROM job_items i WHERE i.job_id = jobs.id)
	AND NOT EXISTS (SELECT 1 FROM job_items i WHERE i.job_id = jobs.id
		AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.id = i.entry_id));
`

// migrationFilterTenant ends the event type, destination and error code
// indexes with the tenant, as entries_group already is: every user limited
// to some tenants adds a tenant condition, which these indexes can now check
// without reading the row of every entry of that type. It replaces indexes
// rather than adding any, so indexing costs the same.
const migrationFilterTenant = `
DROP INDEX entries_event_type;
CREATE INDEX entries_event_type  ON entries(event_type,  last_failure_at, tenant);
DROP INDEX entries_destination;
CREATE INDEX entries_destination ON entries(destination, last_failure_at, tenant);
DROP INDEX entries_error_code;
CREATE INDEX entries_error_code  ON entries(error_code,  last_failure_at, tenant);
`

// migrationJobs adds the jobs of package redrive and their per-entry
// ledger, kept here because an item's outcome and its entry's status
// change commit in one transaction. Entries learn how often their message
// had been redriven and by which job (from the redrive headers), so that a
// canary can see a re-failure and loop protection can quarantine; the
// RabbitMQ redelivery key includes the redrive count, since a redriven
// message that fails again starts its x-death count afresh.
const migrationJobs = `
ALTER TABLE entries ADD COLUMN redrive_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN redrive_job   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN status_reason TEXT    NOT NULL DEFAULT '';
DROP INDEX entries_rabbit_key;
CREATE UNIQUE INDEX entries_rabbit_key ON entries(cluster, vhost, destination, message_id, death_count, redrive_count) WHERE broker = 'rabbitmq';
CREATE INDEX entries_redrive_job ON entries(redrive_job) WHERE redrive_job != 0;

CREATE TABLE jobs (
	id           INTEGER PRIMARY KEY,
	action       TEXT    NOT NULL,
	state        TEXT    NOT NULL,
	actor        TEXT    NOT NULL,
	reason       TEXT    NOT NULL,
	request      BLOB    NOT NULL, -- JSON of the request: selector, rate, canary, destination, edit
	destinations TEXT    NOT NULL DEFAULT '', -- JSON array of the frozen set's destinations
	total        INTEGER NOT NULL DEFAULT 0,
	done         INTEGER NOT NULL DEFAULT 0,
	failed       INTEGER NOT NULL DEFAULT 0,
	cancelled    INTEGER NOT NULL DEFAULT 0,
	error        TEXT    NOT NULL DEFAULT '',
	canary_until INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	finished_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_unfinished ON jobs(id) WHERE finished_at = 0;

-- One row per entry of a job, frozen when the job starts; state moves from
-- pending to sent, failed or cancelled in the transaction that changes the
-- entry's status.
CREATE TABLE job_items (
	job_id      INTEGER NOT NULL,
	seq         INTEGER NOT NULL,
	entry_id    INTEGER NOT NULL,
	destination TEXT    NOT NULL,
	prev_status TEXT    NOT NULL,
	state       TEXT    NOT NULL DEFAULT 'pending',
	error       TEXT    NOT NULL DEFAULT '',
	done_at     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE INDEX job_items_pending ON job_items(job_id, seq) WHERE state = 'pending';
CREATE INDEX job_items_entry ON job_items(entry_id);
`

// migrationResource gives every entry the access-policy resource it is
// checked against (entries.resource: its origin topic or queue when known,
// else the DLQ itself, as resourceOf computes it for new entries), and
// rebuilds group_stats with that resource and the cluster in each row, so
// that a principal bound to kafka:prod/orders.* gets groups, counts and
// totals computed over exactly what they may see, and the per-destination
// gauges come from group_stats instead of a scan of entries.
const migrationResource = `
ALTER TABLE entries ADD COLUMN resource TEXT NOT NULL DEFAULT '';
UPDATE entries SET resource = CASE WHEN broker = 'rabbitmq'
	THEN 'rabbitmq:' || (CASE WHEN vhost = '/' THEN '' ELSE vhost END) || '/' || destination
	ELSE 'kafka:' || cluster || '/' || destination END;
UPDATE entries SET resource = (
	SELECT CASE
		WHEN o.broker = 'kafka' AND o.topic != '' THEN 'kafka:' || o.cluster || '/' || o.topic
		WHEN o.broker = 'rabbitmq' AND o.queue != '' THEN 'rabbitmq:' || (CASE WHEN o.vhost = '/' THEN '' ELSE o.vhost END) || '/' || o.queue
		ELSE entries.resource END
	FROM (SELECT
		coalesce(nullif(json_extract(b.record, '$.origin.broker'), ''), entries.broker) AS broker,
		coalesce(nullif(json_extract(b.record, '$.origin.cluster'), ''), entries.cluster) AS cluster,
		coalesce(nullif(json_extract(b.record, '$.origin.vhost'), ''), entries.vhost) AS vhost,
		coalesce(json_extract(b.record, '$.origin.topic'), '') AS topic,
		coalesce(json_extract(b.record, '$.origin.queue'), '') AS queue
		FROM entry_bodies b WHERE b.id = entries.id) o)
WHERE EXISTS (SELECT 1 FROM entry_bodies b WHERE b.id = entries.id AND json_valid(b.record));

CREATE TABLE group_stats_v2 (
	group_id    INTEGER NOT NULL,
	tenant      TEXT    NOT NULL,
	broker      TEXT    NOT NULL,
	cluster     TEXT    NOT NULL,
	destination TEXT    NOT NULL,
	resource    TEXT    NOT NULL,
	event_type  TEXT    NOT NULL,
	status      TEXT    NOT NULL,
	n           INTEGER NOT NULL,
	first_seen  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	PRIMARY KEY (group_id, tenant, broker, cluster, destination, resource, event_type, status)
) WITHOUT ROWID;
INSERT INTO group_stats_v2
	SELECT group_id, tenant, broker, cluster, destination, resource, event_type, status,
		count(*), min(first_failure_at), max(last_failure_at)
	FROM entries GROUP BY group_id, tenant, broker, cluster, destination, resource, event_type, status;
DROP TABLE group_stats;
ALTER TABLE group_stats_v2 RENAME TO group_stats;
CREATE INDEX group_stats_tenant ON group_stats(tenant, group_id);
`

// migrationLedgerHolds: a job that sends its entries holds them in its
// ledger (hold.go) instead of writing redriving into every entry, which
// cost a rewrite of two status indexes per entry at the start of every
// redrive. jobs.hold names the status its pending entries show. A job left
// unfinished by an older version held its pending entries by their status:
// it gets the hold, and those entries get back the status the ledger kept
// (prev_status); the counts already count them as redriving.
const migrationLedgerHolds = `
ALTER TABLE jobs ADD COLUMN hold TEXT NOT NULL DEFAULT '';
UPDATE jobs SET hold = 'redriving' WHERE finished_at = 0 AND EXISTS (
	SELECT 1 FROM job_items i JOIN entries e ON e.id = i.entry_id
	WHERE i.job_id = jobs.id AND i.state = 'pending' AND e.status = 'redriving');
UPDATE entries SET status = (
	SELECT i.prev_status FROM job_items i JOIN jobs j ON j.id = i.job_id
	WHERE i.entry_id = entries.id AND i.state = 'pending' AND j.hold != '' LIMIT 1)
WHERE status = 'redriving' AND EXISTS (
	SELECT 1 FROM job_items i JOIN jobs j ON j.id = i.job_id
	WHERE i.entry_id = entries.id AND i.state = 'pending' AND j.hold != '');
`

// migrationBodyDicts: sets of S2 dictionaries (one per body column, NULL
// where none was built) trained on the store's recent bodies (dict.go); a
// body packed with one names it in its codec. Existing bodies stay as
// they are.
const migrationBodyDicts = `
CREATE TABLE body_dicts (
	id         INTEGER PRIMARY KEY,
	payload    BLOB,
	headers    BLOB,
	record     BLOB,
	samples    INTEGER NOT NULL,
	trained_at INTEGER NOT NULL
);
`

// migrationFTSMerge: the full-text index merges its segments sixteen at a
// time (FTS5's automerge; the default is four), and at once only past
// sixty-four on one level (crisismerge; default sixteen, which would
// otherwise cut sixteen short). Every text transaction writes a new
// segment, and each merge rewrites what it merges: with four at a time,
// a posting was rewritten at about five levels by a million entries, with
// sixteen at about two and a half. Over a flood of 200,000 entries this
// wrote 6,100–6,300 bytes an entry instead of 7,300–7,400, and the text
// index was whole 0.6–1.2 s after capture ended instead of 2.1–3.6 s, at
// the same capture rate; searches over 1,000,000 entries took as long as
// before (p99 within a run's noise for filter, text, and both), though
// each looks for a word in more segments. Thirty-two at a time wrote
// more, not less. The settings live in the index's own config table and
// apply to the merges from now on.
const migrationFTSMerge = `
INSERT INTO entries_fts (entries_fts, rank) VALUES ('automerge', 16);
INSERT INTO entries_fts (entries_fts, rank) VALUES ('crisismerge', 64);
`
