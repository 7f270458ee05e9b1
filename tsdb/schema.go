package tsdb

import "switchyard/sqldb"

// schema is tsdb.db's, applied by Open through sqldb. A released migration
// is never edited: a change is a new version. Releases before per-owner
// bookkeeping recorded version 1 without an owner, as the file's only
// schema; AdoptUnowned takes it over.
func schema() sqldb.Schema {
	return sqldb.Schema{Owner: "tsdb", AdoptUnowned: true, Migrations: []sqldb.Migration{
		{Version: 1, Name: "tsdb", SQL: `
CREATE TABLE series (
	id             INTEGER PRIMARY KEY,
	labels         TEXT    NOT NULL UNIQUE,
	sealed_through INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE raw_chunks (
	id        INTEGER PRIMARY KEY,
	series_id INTEGER NOT NULL,
	start     INTEGER NOT NULL,
	data      BLOB    NOT NULL
);
CREATE UNIQUE INDEX raw_chunks_series ON raw_chunks(series_id, start);
CREATE INDEX raw_chunks_start ON raw_chunks(start);
CREATE TABLE rollup_chunks (
	id        INTEGER PRIMARY KEY,
	series_id INTEGER NOT NULL,
	start     INTEGER NOT NULL,
	data      BLOB    NOT NULL
);
CREATE UNIQUE INDEX rollup_chunks_series ON rollup_chunks(series_id, start);
CREATE INDEX rollup_chunks_start ON rollup_chunks(start);
CREATE TABLE head_log (
	seq  INTEGER PRIMARY KEY,
	data BLOB NOT NULL
);`},
		// Rollups older than CoarseAfter, at CoarseStep, one row per
		// series and coarse window (coarse.go). Keyed without a rowid:
		// the rows are small and only ever found by series and start.
		{Version: 2, Name: "coarse rollups", SQL: `
CREATE TABLE coarse_chunks (
	series_id INTEGER NOT NULL,
	start     INTEGER NOT NULL,
	data      BLOB    NOT NULL,
	PRIMARY KEY (series_id, start)
) WITHOUT ROWID;
CREATE INDEX coarse_chunks_start ON coarse_chunks(start);`},
	}}
}
