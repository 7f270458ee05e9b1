package main

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/sqldb/sqldbtest"
)

// previousConsoleDB is, verbatim, the schema the release before per-owner
// bookkeeping left in console.db: access's tables as its migrations 1-4
// made them (then in sqldb), recorded in the owner-less schema_migrations,
// sqldb's probe table, and the lag_windows table the window store created
// ad hoc, unrecorded.
const previousConsoleDB = sqldbtest.LegacyBookkeeping + `;
` + `CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
	password_hash TEXT    NOT NULL,
	role          TEXT    NOT NULL,
	created_at    TEXT    NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0
);
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
CREATE INDEX api_tokens_user_id ON api_tokens(user_id);
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
END;
ALTER TABLE audit_log ADD COLUMN hash_scheme TEXT NOT NULL DEFAULT 'sha256';
CREATE TABLE IF NOT EXISTS sqldb_probe (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	at TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS lag_windows (
	cluster     TEXT NOT NULL,
	grp         TEXT NOT NULL,
	topic       TEXT NOT NULL,
	"partition" INTEGER NOT NULL,
	window_json TEXT NOT NULL,
	updated_at  TEXT NOT NULL,
	PRIMARY KEY (cluster, grp, topic, "partition")
) WITHOUT ROWID;
INSERT INTO schema_migrations (version, name, applied_at) VALUES
	(1, 'users', '2025-01-10T09:00:00.000000000Z'),
	(2, 'api_tokens', '2025-01-10T09:00:00.100000000Z'),
	(3, 'access control', '2025-03-02T08:30:00.000000000Z'),
	(4, 'audit hash scheme', '2025-04-20T16:45:00.000000000Z');
INSERT INTO sqldb_probe (id, at) VALUES (1, '2025-04-21T10:00:00.000000000Z');
INSERT INTO lag_windows VALUES ('demo', 'billing', 'orders.v1', 3,
	'[{"offset":41,"lag":2,"time":"2025-04-21T10:00:00Z"},{"offset":44,"lag":0,"time":"2025-04-21T10:01:00Z"}]',
	'2025-04-21T10:01:00.000000000Z');`

// A console.db of the previous release opens with this one: nothing is
// lost, access's versions are recorded as access's with their first
// times, the lag window table is recorded without being rebuilt, and
// logins, tokens, the audit chain and the saved lag windows all work.
func TestConsoleDBOfThePreviousReleaseUpgrades(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "console.db")
	old, err := sql.Open("sqlite3", path+"?_busy_timeout=5000&_foreign_keys=on&_journal_mode=WAL&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(previousConsoleDB); err != nil {
		t.Fatalf("previous release's schema: %v", err)
	}
	// The previous release's rows, written by access over the old tables:
	// users, bindings, a custom role, a token, a session, a throttled
	// login and the audit chain of all of it.
	const pw = "the admin's old password"
	prev, err := access.NewStore(old, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := prev.AddUser(ctx, "admin", pw, access.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	admin, err := prev.PrincipalFor(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := prev.SaveRole(ctx, admin, access.Role{Name: "replayer", Actions: []access.Action{access.ActionView, access.ActionRedrive}}); err != nil {
		t.Fatal(err)
	}
	if err := prev.CreateUser(ctx, admin, "vera", "vera's old password"); err != nil {
		t.Fatal(err)
	}
	if _, err := prev.AddBinding(ctx, admin, access.Binding{Subject: "user:vera", Role: "replayer", Resources: []string{"kafka:demo/*"}, Tenants: []string{"t1"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := prev.CreateToken(ctx, "vera", "ci", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prev.Login(ctx, "admin", pw, "192.0.2.1:1", "old browser"); err != nil {
		t.Fatal(err)
	}
	if _, err := prev.Login(ctx, "vera", "not her password", "192.0.2.2:1", "old browser"); err == nil {
		t.Fatal("wrong password accepted")
	}
	before := sqldbtest.Rows(t, old)
	for _, table := range []string{"users", "api_tokens", "sessions", "roles", "role_bindings", "login_attempts", "audit_log", "lag_windows", "sqldb_probe"} {
		if len(before[table]) == 0 {
			t.Fatalf("fixture has no %s rows", table)
		}
	}
	old.Close()
	// lag_windows 2 adds the recent polls' watermarks: each window keeps
	// its row and reads as having none.
	for i, r := range before["lag_windows"] {
		before["lag_windows"][i] = r + " | watermarks_json=[]"
	}
	// alerting 1 adds its tables, empty.
	for _, table := range []string{"alert_groups", "alert_remote_silences", "alert_rule_status", "alert_rules",
		"alert_sets", "alert_silences", "alert_transitions"} {
		before[table] = []string{}
	}

	for range 2 { // the upgrade, then an ordinary start
		db, err := openConsoleDB(ctx, dir)
		if err != nil {
			t.Fatalf("open the previous release's console.db: %v", err)
		}
		if after := sqldbtest.Rows(t, db); !maps.EqualFunc(after, before, slices.Equal) {
			t.Errorf("rows changed by the upgrade:\nbefore %v\nafter  %v", before, after)
		}
		var got []string
		rows, err := db.Query(`SELECT owner || ' ' || version || ' ' || name || ' ' || applied_at FROM schema_migrations ORDER BY owner, version`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		rows.Close()
		want := []string{
			"access 1 users 2025-01-10T09:00:00.000000000Z",
			"access 2 api_tokens 2025-01-10T09:00:00.100000000Z",
			"access 3 access control 2025-03-02T08:30:00.000000000Z",
			"access 4 audit hash scheme 2025-04-20T16:45:00.000000000Z",
		}
		if len(got) != 7 || !slices.Equal(got[:4], want) || !strings.HasPrefix(got[4], "alerting 1 alerting ") ||
			!strings.HasPrefix(got[5], "lag_windows 1 lag windows ") || !strings.HasPrefix(got[6], "lag_windows 2 lag window watermarks ") {
			t.Errorf("schema_migrations = %q\nwant access's four versions as recorded, then alerting 1, lag_windows 1 and 2", got)
		}
		db.Close()
	}

	db, err := openConsoleDB(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	users, err := access.NewStore(db, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.Login(ctx, "admin", pw, "192.0.2.1:1", "new browser"); err != nil {
		t.Errorf("admin login after the upgrade: %v", err)
	}
	p, err := users.Authenticate(ctx, access.Credentials{Authorization: "Bearer " + tok})
	if err != nil || !(access.Policy{}).Can(p, access.ActionRedrive, access.Resource{Name: "kafka:demo/orders", Tenant: "t1"}) {
		t.Errorf("vera's token after the upgrade: %+v, %v; want her custom role's grant", p, err)
	}
	if res, err := users.Audit().Verify(ctx); err != nil || !res.OK || res.Rows != len(before["audit_log"])+1 {
		t.Errorf("audit chain after the upgrade: %+v, %v", res, err)
	}
	windows, err := collector.NewSQLiteWindowStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	w, err := windows.Load(ctx)
	key := collector.PartitionKey{Cluster: "demo", Group: "billing", Topic: "orders.v1", Partition: 3}
	if c := w[key].Commits; err != nil || len(c) != 2 || c[1].Offset != 44 || !c[1].Time.Equal(time.Date(2025, 4, 21, 10, 1, 0, 0, time.UTC)) {
		t.Errorf("lag windows after the upgrade = %v, %v", w, err)
	}
}
