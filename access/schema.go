package access

import "switchyard/sqldb"

// Schema is the part of console.db that access owns — users, api_tokens,
// sessions, roles, role_bindings, login_attempts and audit_log — for
// sqldb.Open, which whoever opens console.db passes it to (cmd/console).
// Versions are applied in order, each in its own transaction. A migration
// is never edited after release: a change is a new version. Releases
// before per-owner bookkeeping recorded these versions without an owner,
// as the file's only schema; AdoptUnowned takes them over.
//
// Timestamps are TEXT in the fixed-width UTC layout of sqldb.TimeLayout,
// so that they sort and compare as strings.
func Schema() sqldb.Schema {
	return sqldb.Schema{Owner: "access", AdoptUnowned: true, Migrations: []sqldb.Migration{
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
		// Version 3 moves authority from users.role to role_bindings (one
		// binding per existing user on every resource and tenant, so nobody
		// gains or loses anything). users.role stays as an ignored column,
		// blanked here, because older tooling and tests still name it in
		// INSERTs; role_bindings alone decides. audit_log refuses UPDATE and
		// DELETE at the database level; the hash chain catches anyone who
		// drops the triggers first.
		{Version: 3, Name: "access control", SQL: `
CREATE TABLE sessions (
	id                  TEXT    PRIMARY KEY,
	token_hash          TEXT    NOT NULL UNIQUE,
	user_id             INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	csrf_token          TEXT    NOT NULL,
	created_at          TEXT    NOT NULL,
	last_seen_at        TEXT    NOT NULL,
	idle_expires_at     TEXT    NOT NULL,
	absolute_expires_at TEXT    NOT NULL,
	peer_addr           TEXT    NOT NULL DEFAULT '',
	user_agent          TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_absolute_expires_at ON sessions(absolute_expires_at);

CREATE TABLE roles (
	name       TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
	actions    TEXT NOT NULL, -- JSON array of action names
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);

CREATE TABLE role_bindings (
	id         INTEGER PRIMARY KEY,
	subject    TEXT NOT NULL COLLATE NOCASE, -- user:NAME or group:NAME
	role       TEXT NOT NULL COLLATE NOCASE,
	resources  TEXT NOT NULL, -- JSON array of glob patterns
	tenants    TEXT NOT NULL, -- JSON array; "*" = every tenant
	created_at TEXT NOT NULL
);
CREATE INDEX role_bindings_subject ON role_bindings(subject);
CREATE INDEX role_bindings_role ON role_bindings(role);

INSERT INTO role_bindings (subject, role, resources, tenants, created_at)
	SELECT 'user:' || name, role, '["*"]', '["*"]', created_at FROM users WHERE role <> '' ORDER BY id;
UPDATE users SET role = '';
ALTER TABLE users ADD COLUMN last_login_at TEXT;

CREATE TABLE login_attempts (
	user_name    TEXT    NOT NULL COLLATE NOCASE,
	peer_ip      TEXT    NOT NULL,
	failures     INTEGER NOT NULL,
	window_start TEXT    NOT NULL,
	lockouts     INTEGER NOT NULL DEFAULT 0,
	locked_until TEXT,
	PRIMARY KEY (user_name, peer_ip)
);

CREATE TABLE audit_log (
	id           INTEGER PRIMARY KEY,
	time         TEXT NOT NULL,
	actor        TEXT NOT NULL,
	method       TEXT NOT NULL,
	source_ip    TEXT NOT NULL,
	user_agent   TEXT NOT NULL,
	action       TEXT NOT NULL,
	resource     TEXT NOT NULL,
	tenant       TEXT NOT NULL,
	reason       TEXT NOT NULL,
	affected_ids TEXT NOT NULL, -- JSON array
	outcome      TEXT NOT NULL,
	details      TEXT NOT NULL, -- canonical JSON object
	prev_hash    TEXT NOT NULL,
	hash         TEXT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log(time);
CREATE INDEX audit_log_actor ON audit_log(actor, id);
CREATE INDEX audit_log_action ON audit_log(action, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;`},
		// Version 4 records how each audit row was hashed: 'sha256' (every
		// row written before this version, and rows written without an
		// audit key) or 'hmac-sha256:<key id>'. Adding a column fires no
		// trigger, so the append-only guard stays as it is.
		{Version: 4, Name: "audit hash scheme", SQL: `
ALTER TABLE audit_log ADD COLUMN hash_scheme TEXT NOT NULL DEFAULT 'sha256';`},
	}}
}
