package alerting

import "switchyard/sqldb"

// Schema is the alerting tables' part of console.db, owner "alerting":
// rules, their alerts, statuses and transitions, silences, and the
// notifiers' state. Whoever opens console.db lists it beside access's
// (cmd/console). A released migration is never edited: a change is a new
// version.
//
// Times are TEXT in sqldb.TimeLayout (UTC, fixed width, so string order is
// time order), NULL for a zero time; values are REAL, NULL for NaN (which
// SQLite cannot hold as a REAL). Label sets, annotations, matchers, a
// rule's expression and a rule's alerts are JSON: they are read whole and
// nothing queries inside them.
//
// There are no foreign keys: only this package writes these tables, and
// DeleteRule removes a rule's rows itself in one transaction, so that the
// cascade does not depend on the connection's foreign_keys pragma and a
// cycle's writes do not pay a parent lookup each.
func Schema() sqldb.Schema {
	return sqldb.Schema{Owner: "alerting", Migrations: []sqldb.Migration{
		{Version: 1, Name: "alerting", SQL: `
-- name_key is the name folded to lower case by Go (strings.ToLower), so
-- that names are unique regardless of case beyond ASCII, which is all
-- COLLATE NOCASE folds. spec is the JSON of the expression and its
-- settings (ruleSpec); the columns are what lists sort and filter on.
CREATE TABLE alert_rules (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	name_key   TEXT    NOT NULL UNIQUE,
	severity   TEXT    NOT NULL,
	enabled    INTEGER NOT NULL,
	spec       TEXT    NOT NULL,
	created_by TEXT    NOT NULL,
	updated_by TEXT    NOT NULL,
	created_at TEXT    NOT NULL,
	updated_at TEXT    NOT NULL,
	version    INTEGER NOT NULL
);

-- One row per rule with the evaluator's last word on it.
CREATE TABLE alert_rule_status (
	rule_id          INTEGER PRIMARY KEY,
	last_eval        TEXT,
	eval_duration_ns INTEGER NOT NULL,
	error            TEXT    NOT NULL,
	series           INTEGER NOT NULL,
	firing           INTEGER NOT NULL,
	pending          INTEGER NOT NULL,
	no_data          INTEGER NOT NULL,
	no_data_since    TEXT
);

-- A rule's alerts, as one JSON array (storedAlert) replaced whole by
-- SaveCycle: one row write per changed rule instead of a delete and an
-- insert per alert, and nothing queries inside them (the evaluator loads
-- them all at start and keeps them in memory). A rule without alerts has
-- no row.
CREATE TABLE alert_sets (
	rule_id INTEGER PRIMARY KEY,
	alerts  TEXT NOT NULL
);

-- Transitions are paged per rule newest first by id, and pruned by age.
CREATE TABLE alert_transitions (
	id          INTEGER PRIMARY KEY,
	rule_id     INTEGER NOT NULL,
	fingerprint TEXT    NOT NULL,
	labels      TEXT    NOT NULL,
	from_state  TEXT    NOT NULL,
	to_state    TEXT    NOT NULL,
	at          TEXT    NOT NULL,
	value       REAL
);
CREATE INDEX alert_transitions_rule ON alert_transitions(rule_id, id);
CREATE INDEX alert_transitions_at ON alert_transitions(at);

CREATE TABLE alert_silences (
	id         INTEGER PRIMARY KEY,
	matchers   TEXT NOT NULL,
	created_by TEXT NOT NULL,
	comment    TEXT NOT NULL,
	starts_at  TEXT NOT NULL,
	ends_at    TEXT NOT NULL,
	created_at TEXT NOT NULL,
	expired_by TEXT NOT NULL
);
CREATE INDEX alert_silences_ends ON alert_silences(ends_at);

-- The notifiers' memory, so that a restart neither re-notifies a group
-- nor loses track of the silences it mirrored to an Alertmanager.
CREATE TABLE alert_groups (
	target        TEXT NOT NULL,
	key           TEXT NOT NULL,
	hash          TEXT NOT NULL,
	last_notified TEXT,
	PRIMARY KEY (target, key)
) WITHOUT ROWID;

CREATE TABLE alert_remote_silences (
	target     TEXT    NOT NULL,
	silence_id INTEGER NOT NULL,
	remote_id  TEXT    NOT NULL,
	PRIMARY KEY (target, silence_id)
) WITHOUT ROWID;`},
	}}
}
