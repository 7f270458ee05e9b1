package sqldb

// Migration is one step of the console's schema. Versions are applied in
// order, each in its own transaction, and recorded in schema_migrations.
// A migration is never edited after release: a change is a new version.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the schema steps this binary knows, in order. It is a
// function rather than a package variable so that nothing can change the
// list at run time.
//
// Timestamps are TEXT in the fixed-width UTC layout of TimeLayout, so that
// they sort and compare as strings.
func Migrations() []Migration {
	return []Migration{
		{Version: 1, Name: "users", SQL: `
CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
	password_hash TEXT    NOT NULL,
	role          TEXT    NOT NULL,
	created_at    TEXT    NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0
);`},
		{Version: 2, Name: "api_tokens", SQL: `
CREATE TABLE api_tokens (
	id           INTEGER PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name         TEXT    NOT NULL,
	token_hash   TEXT    NOT NULL UNIQUE,
	created_at   TEXT    NOT NULL,
	expires_at   TEXT,
	last_used_at TEXT,
	revoked_at   TEXT
);
CREATE INDEX api_tokens_user_id ON api_tokens(user_id);`},
	}
}
