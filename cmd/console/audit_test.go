package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"switchyard/internal/testenv"
	"switchyard/sqldb"
)

// auditKeyHex is a 32-byte audit key as `openssl rand -hex 32` prints it.
const auditKeyHex = "8f1e3b9a0c7d46e2a5b4c3d2e1f00918273645546372819a0b1c2d3e4f506172"

// rewriteChain is the attacker with write access to console.db and the
// documented hash format but no key: after an edit, every hash from row
// `from` on is recomputed as plain SHA-256 and relinked. The update
// trigger must be gone.
func rewriteChain(t *testing.T, db *sql.DB, from int64) {
	t.Helper()
	var prev string
	if err := db.QueryRow(`SELECT hash FROM audit_log WHERE id = ?`, from-1).Scan(&prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	type canon struct {
		ID                                               int64
		Time, Actor, Method, SourceIP, UserAgent, Action string
		Resource, Tenant, Reason, Outcome                string
		AffectedIDs, Details                             json.RawMessage
	}
	rows, err := db.Query(`SELECT id, time, actor, method, source_ip, user_agent, action, resource, tenant,
	reason, affected_ids, outcome, details FROM audit_log WHERE id >= ? ORDER BY id`, from)
	if err != nil {
		t.Fatal(err)
	}
	var all []canon
	for rows.Next() {
		var c canon
		var ids, details string
		if err := rows.Scan(&c.ID, &c.Time, &c.Actor, &c.Method, &c.SourceIP, &c.UserAgent, &c.Action, &c.Resource,
			&c.Tenant, &c.Reason, &ids, &c.Outcome, &details); err != nil {
			t.Fatal(err)
		}
		c.AffectedIDs, c.Details = json.RawMessage(ids), json.RawMessage(details)
		all = append(all, c)
	}
	rows.Close()
	for _, c := range all {
		// The documented canonical form: these keys, in this order.
		ordered := []struct {
			k string
			v any
		}{{"id", c.ID}, {"time", c.Time}, {"actor", c.Actor}, {"method", c.Method}, {"source_ip", c.SourceIP},
			{"user_agent", c.UserAgent}, {"action", c.Action}, {"resource", c.Resource}, {"tenant", c.Tenant},
			{"reason", c.Reason}, {"affected_ids", c.AffectedIDs}, {"outcome", c.Outcome}, {"details", c.Details}}
		var buf bytes.Buffer
		buf.WriteByte('{')
		for i, kv := range ordered {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, _ := json.Marshal(kv.k)
			v, _ := json.Marshal(kv.v)
			buf.Write(k)
			buf.WriteByte(':')
			buf.Write(v)
		}
		buf.WriteByte('}')
		sum := sha256.Sum256([]byte(prev + "\n" + buf.String()))
		h := hex.EncodeToString(sum[:])
		if _, err := db.Exec(`UPDATE audit_log SET prev_hash = ?, hash = ? WHERE id = ?`, prev, h, c.ID); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
}

// tamper opens the data dir's database as an attacker would, edits the
// actor of row id behind the trigger's back and recomputes the chain.
func tamper(t *testing.T, dataDir string, id int64) {
	t.Helper()
	db, err := sqldb.Open(context.Background(), filepath.Join(dataDir, "console.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TRIGGER IF EXISTS audit_log_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'mallory' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	rewriteChain(t, db, id)
}

// The console started with an audit key (a file outside the data dir) and
// an anchor file writes keyed rows and anchors its chain head in its log
// and the file, at start and at shutdown. `console audit verify` then:
// finds the chain intact with the key and every anchor; refuses to call
// it intact without the key (exit 1); and, after someone with only the
// database rewrote it from an edited row with plain SHA-256, names that
// row. Offline commands keep the chain keyed, or refuse without the key.
func TestAuditVerifyKeyedChainAndAnchorsEndToEnd(t *testing.T) {
	ctx := context.Background()
	kafka := testenv.Kafka(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	secrets := t.TempDir() // outside the data dir
	keyFile := filepath.Join(secrets, "audit.key")
	anchorFile := filepath.Join(secrets, "anchors.jsonl")
	if err := os.WriteFile(keyFile, []byte(auditKeyHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(secrets, "console.json")
	if err := os.WriteFile(cfg, []byte(`{"auth":{"audit_key_file":"`+keyFile+`","audit_anchor_file":"`+anchorFile+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &testenv.SyncBuffer{}
	m := NewMain(io.Discard, logs, envMap("CONSOLE_ADDR", "127.0.0.1:0", "CONSOLE_DATA_DIR", dataDir,
		"KAFKA_BROKERS", strings.Join(kafka.ListenAddrs(), ","), "CONSOLE_ADMIN_PASSWORD", "correct-horse-battery"))
	if err := m.ParseFlags([]string{"--config", cfg}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// An offline command while the console runs: keyed like the console.
	var out bytes.Buffer
	if err := run(ctx, []string{"token", "create", "--user", "admin", "--config", cfg, "--data-dir", dataDir}, nil, &out, io.Discard, envMap()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Anchored in the log and the file: at start (row 1: the admin
	// created) and at shutdown (row 2: the token issued).
	logAnchors := regexp.MustCompile(`"msg":"audit chain anchor".*?"seq":(\d+)`).FindAllStringSubmatch(logs.String(), -1)
	if len(logAnchors) != 2 || logAnchors[0][1] != "1" || logAnchors[1][1] != "2" {
		t.Errorf("anchor lines in the log: %v; want seq 1 at start and 2 at shutdown\n%s", logAnchors, logs.String())
	}
	fileAnchors, err := os.ReadFile(anchorFile)
	if err != nil || strings.Count(string(fileAnchors), "\n") != 2 {
		t.Fatalf("anchor file: %q, %v; want two lines", fileAnchors, err)
	}
	logFile := filepath.Join(secrets, "console.log")
	os.WriteFile(logFile, []byte(logs.String()), 0o600)

	verify := func(env func(string) string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"audit", "verify", "--data-dir", dataDir}, args...), nil, &out, io.Discard, env)
		return out.String(), err
	}
	got, err := verify(envMap(), "--config", cfg)
	if err != nil || !strings.Contains(got, "audit log intact: 2 rows") || !strings.Contains(got, "keyed:    2 rows") || !strings.Contains(got, "anchors:  2 matched") {
		t.Errorf("verify with the key file and the anchor file: %v\n%s", err, got)
	}
	got, err = verify(envMap("CONSOLE_AUDIT_KEY", auditKeyHex), "--anchor-file", logFile)
	if err != nil || !strings.Contains(got, "anchors:  2 matched") {
		t.Errorf("verify with CONSOLE_AUDIT_KEY against the console's log: %v\n%s", err, got)
	}
	if _, err := verify(envMap()); err == nil || !strings.Contains(err.Error(), "cannot be verified without the audit key") {
		t.Errorf("verify without the key: %v; want a refusal to call keyed rows intact", err)
	}
	code, _, stderr := runConsole(t, []string{"CONSOLE_DATA_DIR=" + dataDir}, "audit", "verify")
	if code != 1 || !strings.Contains(stderr, "without the audit key") {
		t.Errorf("console audit verify without the key: exit %d, stderr %q; want 1", code, stderr)
	}
	// Writing without the key would put an unkeyed row after keyed ones.
	err = run(ctx, []string{"user", "add", "eve", "--data-dir", dataDir}, strings.NewReader(""), io.Discard, io.Discard, envMap("CONSOLE_USER_PASSWORD", "eve-password-long"))
	if err == nil || !strings.Contains(err.Error(), "no audit key is configured") {
		t.Errorf("user add without the key on a keyed log: %v", err)
	}

	// Someone with the database but not the key edits row 1 and
	// recomputes every later hash: the key alone shows it.
	tamper(t, dataDir, 1)
	for name, tc := range map[string]struct {
		env  func(string) string
		args []string
	}{
		"key alone":       {envMap("CONSOLE_AUDIT_KEY", auditKeyHex), nil},
		"key and anchors": {envMap(), []string{"--config", cfg}},
	} {
		_, err := verify(tc.env, tc.args...)
		if err == nil || !strings.Contains(err.Error(), "broken at row 1") {
			t.Errorf("%s after the rewrite: %v; want broken at row 1", name, err)
		}
	}
}

// Without a key in play the chain can be rewritten consistently, and
// verify alone says intact (and warns that no anchor was checked); with
// an anchor kept from before — the head verify printed — it fails.
func TestAuditVerifyAgainstAnEarlierAnchor(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	add := func(name string) {
		t.Helper()
		if err := run(ctx, []string{"user", "add", name, "--data-dir", dataDir}, strings.NewReader(""), io.Discard, io.Discard,
			envMap("CONSOLE_USER_PASSWORD", name+"-password-long")); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"audit", "verify", "--data-dir", dataDir}, args...), nil, &out, io.Discard, envMap())
		return out.String(), err
	}
	add("alice")
	add("bob")
	got, err := verify()
	head := regexp.MustCompile(`head:\s+(\d+:[0-9a-f]{64})`).FindStringSubmatch(got)
	if err != nil || head == nil || !strings.Contains(got, "unkeyed:  rows 1-2") {
		t.Fatalf("verify of an unkeyed log: %v\n%s", err, got)
	}
	add("carol")
	tamper(t, dataDir, 1)
	got, err = verify()
	if err != nil || !strings.Contains(got, "anchors:  none given") {
		t.Fatalf("a consistent rewrite without a key should pass the chain alone (with the warning): %v\n%s", err, got)
	}
	_, err = verify("--anchor", head[1])
	if err == nil || !strings.Contains(err.Error(), "broken at row 2") || !strings.Contains(err.Error(), "anchor") {
		t.Errorf("verify --anchor %s after the rewrite: %v; want broken at row 2", head[1], err)
	}
	if _, err := verify("--anchor", "2:nothex"); err == nil {
		t.Error("a malformed --anchor was accepted")
	}
}

// The audit key and anchor files must be outside the data dir, given once,
// and hold a long enough key; each problem is a start error.
func TestAuditKeyConfiguration(t *testing.T) {
	dataDir := t.TempDir()
	outside := t.TempDir()
	write := func(dir, name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	good := write(outside, "good.key", auditKeyHex)
	short := write(outside, "short.key", "00112233")
	inside := write(dataDir, "audit.key", auditKeyHex)
	link := filepath.Join(outside, "link")
	os.Symlink(dataDir, link)
	tests := []struct {
		name, file, env, anchor, want string
	}{
		{"key file inside the data dir", inside, "", "", "inside the data dir"},
		{"key file through a link into the data dir", filepath.Join(link, "audit.key"), "", "", "inside the data dir"},
		{"anchor file inside the data dir", "", "", filepath.Join(dataDir, "anchors"), "audit_anchor_file"},
		{"both sources", good, auditKeyHex, "", "not both"},
		{"short key", short, "", "", "at least 32"},
		{"not a key", "", "not a key!", "", "neither hex nor base64"},
		{"good file", good, "", filepath.Join(outside, "anchors"), ""},
		{"good env, base64", "", "jx47mgx9RuKltMPS4fAJGCc2RVRjcoGaCxwtPk9QYXI=", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := write(outside, "c.json", `{"auth":{"audit_key_file":"`+tt.file+`","audit_anchor_file":"`+tt.anchor+`"}}`)
			m := NewMain(io.Discard, io.Discard, envMap("CONSOLE_DATA_DIR", dataDir, "KAFKA_BROKERS", "k:9092", "CONSOLE_AUDIT_KEY", tt.env))
			err := m.ParseFlags([]string{"--config", cfg})
			if tt.want == "" {
				if err != nil || len(m.Config.AuditKey) != 32 {
					t.Errorf("ParseFlags = %v, key of %d bytes; want a 32-byte key", err, len(m.Config.AuditKey))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), auditKeyHex) {
				t.Errorf("ParseFlags = %v; want an error saying %q (and never the key)", err, tt.want)
			}
		})
	}
}

// A start with an admin password shorter than 12 bytes fails with one
// line naming the minimum, before anything exists: no data dir, no
// console.db is left behind.
func TestShortAdminPasswordLeavesNothingBehind(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	code, _, stderr := runConsole(t, []string{"CONSOLE_ADDR=127.0.0.1:0", "DEMO_KAFKA_ADDR=127.0.0.1:0",
		"CONSOLE_DATA_DIR=" + dataDir, "CONSOLE_ADMIN_PASSWORD=short"}, "demo")
	if line, rest, _ := strings.Cut(stderr, "\n"); code != 1 || rest != "" || !strings.HasPrefix(line, "console: ") ||
		!strings.Contains(line, "CONSOLE_ADMIN_PASSWORD must be 12 to 72 bytes long") {
		t.Errorf("exit %d, stderr %q; want exit 1 and one line naming the 12-byte minimum", code, stderr)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed start left %s behind (%v)", dataDir, err)
	}
}
