package access_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

func TestAuditAppendListExport(t *testing.T) {
	db := mustDB(t)
	c := newClock()
	a, err := access.NewAudit(db, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 25; i++ {
		e := access.AuditEvent{Actor: "alice", Method: access.MethodSession, SourceIP: "192.0.2.1", UserAgent: "ua",
			Action: "payload.read", Resource: "kafka:prod/orders", Tenant: "t1", Outcome: access.OutcomeSuccess,
			AffectedIDs: []string{fmt.Sprint(i)}, Details: map[string]any{"n": i, "big": int64(1) << 60}}
		if i%5 == 0 {
			e.Actor, e.Action, e.Outcome, e.Reason = "bob", "redrive", access.OutcomeDenied, "not allowed"
		}
		if err := a.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Second)
	}
	if err := a.Append(ctx, access.AuditEvent{Action: "x", Outcome: "maybe"}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("bad outcome accepted: %v", err)
	}

	// Keyset paging, newest first, covers every row exactly once.
	var ids []int64
	f := access.AuditFilter{Limit: 10}
	for pages := 0; ; pages++ {
		recs, next, err := a.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		if next == 0 {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		f.Before = next
	}
	if len(ids) != 25 || ids[0] != 25 || ids[24] != 1 {
		t.Errorf("paged ids = %v", ids)
	}

	tests := []struct {
		name string
		f    access.AuditFilter
		want int
	}{
		{"actor", access.AuditFilter{Actor: "bob"}, 5},
		{"action", access.AuditFilter{Action: "payload.read"}, 20},
		{"outcome", access.AuditFilter{Outcome: access.OutcomeDenied}, 5},
		{"resource", access.AuditFilter{Resource: "kafka:prod/orders"}, 25},
		{"since/until", access.AuditFilter{Since: newClock().Now().Add(10 * time.Second), Until: newClock().Now().Add(15 * time.Second)}, 5},
		{"before", access.AuditFilter{Before: 4}, 3},
		{"none", access.AuditFilter{Actor: "mallory"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, _, err := a.List(ctx, tt.f)
			if err != nil || len(recs) != tt.want {
				t.Errorf("List(%+v) = %d records, %v; want %d", tt.f, len(recs), err, tt.want)
			}
		})
	}
	recs, _, _ := a.List(ctx, access.AuditFilter{Limit: 1})
	r := recs[0]
	if r.Actor != "alice" || r.Tenant != "t1" || r.AffectedIDs[0] != "24" || fmt.Sprint(r.Details["big"]) != "1152921504606846976" || r.Hash == "" || r.PrevHash == "" {
		t.Errorf("record = %+v", r)
	}

	var buf bytes.Buffer
	if err := a.ExportJSONL(ctx, &buf, access.AuditFilter{Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	lines := 0
	for sc.Scan() {
		var rec access.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d does not parse: %v", lines+1, err)
		}
		if rec.Actor != "bob" || rec.ID == 0 || rec.Hash == "" || rec.Time.IsZero() {
			t.Errorf("exported %+v", rec)
		}
		lines++
	}
	if lines != 5 {
		t.Errorf("%d exported lines, want 5", lines)
	}

	res, err := a.Verify(ctx)
	if err != nil || !res.OK || res.Rows != 25 {
		t.Errorf("Verify = %+v, %v", res, err)
	}
}

func TestAuditTamperDetection(t *testing.T) {
	db := mustDB(t)
	c := newClock()
	a, _ := access.NewAudit(db, c.Now)
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		if err := a.Append(ctx, access.AuditEvent{Actor: "alice", Action: "redrive", Outcome: access.OutcomeSuccess,
			Details: map[string]any{"count": i}}); err != nil {
			t.Fatal(err)
		}
	}
	// The triggers refuse edits and deletions.
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'mallory' WHERE id = 3`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("UPDATE allowed: %v", err)
	}
	if _, err := db.Exec(`DELETE FROM audit_log WHERE id = 3`); err == nil {
		t.Fatal("DELETE allowed")
	}

	// Someone with write access drops the triggers first.
	if _, err := db.Exec(`DROP TRIGGER audit_log_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET details = '{"count":99}' WHERE id = 4`); err != nil {
		t.Fatal(err)
	}
	res, err := a.Verify(ctx)
	if err != nil || res.OK || res.BrokenAt != 4 || !strings.Contains(res.Problem, "modified") {
		t.Errorf("after editing row 4: %+v, %v", res, err)
	}
	db.Exec(`UPDATE audit_log SET details = '{"count":3}' WHERE id = 4`) // restore
	if res, _ := a.Verify(ctx); !res.OK {
		t.Fatalf("restored chain does not verify: %+v", res)
	}

	// Swapping two rows' contents (reordering) breaks the chain.
	db.Exec(`UPDATE audit_log SET actor = 'bob' WHERE id = 2`)
	if res, _ := a.Verify(ctx); res.OK || res.BrokenAt != 2 {
		t.Errorf("after editing the actor of row 2: %+v", res)
	}
	db.Exec(`UPDATE audit_log SET actor = 'alice' WHERE id = 2`)

	if _, err := db.Exec(`DROP TRIGGER audit_log_no_delete`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM audit_log WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	res, err = a.Verify(ctx)
	if err != nil || res.OK || res.BrokenAt != 4 || res.Rows != 3 {
		t.Errorf("after deleting row 3: %+v, %v", res, err)
	}
	// Renumbering to hide the gap still breaks the prev_hash link.
	db.Exec(`UPDATE audit_log SET id = id - 1 WHERE id > 3`)
	if res, _ := a.Verify(ctx); res.OK || res.BrokenAt != 3 {
		t.Errorf("after renumbering: %+v", res)
	}
}

func TestStoreAuditsLoginsAndAdminChanges(t *testing.T) {
	s, _, _ := mustStore(t)
	ctx := context.Background()
	s.AddUser(ctx, "root", "a long root password", access.RoleAdmin)
	s.AddUser(ctx, "vera", "viewer password", access.RoleViewer)
	if _, err := s.Login(ctx, "root", "wrong password!!", "203.0.113.5:999", "curl/8"); err == nil {
		t.Fatal("wrong password accepted")
	}
	s.Login(ctx, "nobody", "wrong password!!", "203.0.113.5:999", "curl/8")
	sess := mustLogin(t, s, "root", "a long root password")
	admin, err := s.Authenticate(ctx, sessionCreds(sess.Token))
	if err != nil {
		t.Fatal(err)
	}
	vera, _ := s.PrincipalFor(ctx, "vera")
	vera.Method = access.MethodSession

	if err := s.SaveRole(ctx, admin, access.Role{Name: "replayer", Actions: []access.Action{access.ActionRedrive, access.ActionView, access.ActionView}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRole(ctx, vera, access.Role{Name: "sneaky", Actions: []access.Action{access.ActionAdmin}}); delivery.ErrorCode(err) != delivery.EFORBIDDEN {
		t.Errorf("viewer saved a role: %v", err)
	}
	if err := s.SaveRole(ctx, admin, access.Role{Name: "operator", Actions: []access.Action{access.ActionView}}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("built-in role overwritten: %v", err)
	}
	if err := s.SaveRole(ctx, admin, access.Role{Name: "odd", Actions: []access.Action{"fly"}}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("unknown action accepted: %v", err)
	}
	id, err := s.AddBinding(ctx, admin, access.Binding{Subject: "user:vera", Role: "replayer", Resources: []string{"kafka:prod/orders.*"}, Tenants: []string{"t1"}})
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"*"}
	for _, bad := range []access.Binding{
		{Subject: "vera", Role: "viewer", Resources: all, Tenants: all},
		{Subject: "user:vera", Role: "nope", Resources: all, Tenants: all},
		{Subject: "user:vera", Role: "viewer", Resources: []string{"orders"}, Tenants: all},
		{Subject: "group:a b", Role: "viewer", Resources: all, Tenants: all, Proxy: true},
		{Subject: "user:vera", Role: "viewer", Resources: all, Tenants: []string{"t 1"}},
	} {
		if _, err := s.AddBinding(ctx, admin, bad); delivery.ErrorCode(err) != delivery.EINVALID {
			t.Errorf("AddBinding(%+v) = %v, want EINVALID", bad, err)
		}
	}
	pv, _ := s.PrincipalFor(ctx, "vera")
	if !(access.Policy{}).Can(pv, access.ActionRedrive, access.Resource{Name: "kafka:prod/orders.created", Tenant: "t1"}) {
		t.Errorf("custom role binding not effective: %+v", pv.Grants)
	}
	if err := s.DeleteRole(ctx, admin, "replayer"); delivery.ErrorCode(err) != delivery.ECONFLICT {
		t.Errorf("deleting a bound role: %v", err)
	}
	if err := s.DeleteBinding(ctx, admin, id); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRole(ctx, admin, "replayer"); err != nil {
		t.Errorf("deleting an unbound role: %v", err)
	}
	if err := s.DeleteRole(ctx, admin, "viewer"); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("deleting a built-in role: %v", err)
	}
	roles, _ := s.ListRoles(ctx)
	if len(roles) != len(access.Roles()) || !roles[0].BuiltIn {
		t.Errorf("roles = %+v", roles)
	}
	if err := s.CreateUser(ctx, admin, "newbie", "a long new password"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.PrincipalFor(ctx, "newbie"); err != nil || len(p.Grants) != 0 {
		t.Errorf("CreateUser gave grants: %+v, %v", p, err)
	}
	s.Logout(ctx, sess.Token)

	recs, _, err := s.Audit().List(ctx, access.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ action, outcome, reason string }
	got := map[key]access.AuditRecord{}
	for _, r := range recs {
		got[key{r.Action, r.Outcome, r.Reason}] = r
		b, _ := json.Marshal(r)
		for _, secret := range []string{"a long root password", "wrong password!!", sess.Token, sess.CSRFToken, "a long new password"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("audit record %d contains a secret: %s", r.ID, b)
			}
		}
	}
	for _, k := range []key{
		{"user.create", access.OutcomeSuccess, ""},
		{"login", access.OutcomeFailure, "wrong password"},
		{"login", access.OutcomeFailure, "unknown user"},
		{"login", access.OutcomeSuccess, ""},
		{"role.save", access.OutcomeSuccess, ""},
		{"role.save", access.OutcomeDenied, "you may not admin console:admin"},
		{"role.save", access.OutcomeFailure, `built-in role "operator" cannot be changed`},
		{"binding.add", access.OutcomeSuccess, ""},
		{"binding.delete", access.OutcomeSuccess, ""},
		{"role.delete", access.OutcomeFailure, `role "replayer" is used by 1 binding(s); delete them first`},
		{"role.delete", access.OutcomeSuccess, ""},
		{"logout", access.OutcomeSuccess, ""},
	} {
		if _, ok := got[k]; !ok {
			t.Errorf("no audit record %+v", k)
		}
	}
	fail := got[key{"login", access.OutcomeFailure, "wrong password"}]
	if fail.SourceIP != "203.0.113.5" || fail.UserAgent != "curl/8" || fail.Actor != "root" || fail.Details["reason"] != "wrong password" {
		t.Errorf("login failure record = %+v", fail)
	}
	if r := got[key{"binding.add", access.OutcomeSuccess, ""}]; r.Actor != "root" || r.Method != access.MethodSession || len(r.AffectedIDs) != 1 || r.Details["role"] != "replayer" {
		t.Errorf("binding record = %+v", r)
	}
	if res, err := s.Audit().Verify(ctx); err != nil || !res.OK {
		t.Errorf("Verify = %+v, %v", res, err)
	}
}

// Two Audit values (as two processes would have) appending at once never
// fork the chain.
func TestAuditConcurrentAppendsKeepOneChain(t *testing.T) {
	db := mustDB(t)
	a1, _ := access.NewAudit(db, nil)
	a2, _ := access.NewAudit(db, nil)
	ctx := context.Background()
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		a := a1
		if i%2 == 1 {
			a = a2
		}
		go func() {
			errs <- a.Append(ctx, access.AuditEvent{Actor: "x", Action: "api.mutation", Outcome: access.OutcomeSuccess})
		}()
	}
	for i := 0; i < 40; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if res, err := a1.Verify(ctx); err != nil || !res.OK || res.Rows != 40 {
		t.Errorf("Verify = %+v, %v", res, err)
	}
}

// testKey is a 32-byte audit key.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// rewriteFrom does what someone with write access to console.db and the
// documented hash format, but without the audit key, would do after
// editing a row: recompute the plain SHA-256 chain from row `from` to the
// end (relinking every prev_hash). With markUnkeyed the rows also claim
// the plain scheme. The update trigger must be gone already.
func rewriteFrom(t *testing.T, db *sql.DB, from int64, markUnkeyed bool) {
	t.Helper()
	var prev string
	if err := db.QueryRow(`SELECT hash FROM audit_log WHERE id = ?`, from-1).Scan(&prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	type canon struct {
		ID          int64           `json:"id"`
		Time        string          `json:"time"`
		Actor       string          `json:"actor"`
		Method      string          `json:"method"`
		SourceIP    string          `json:"source_ip"`
		UserAgent   string          `json:"user_agent"`
		Action      string          `json:"action"`
		Resource    string          `json:"resource"`
		Tenant      string          `json:"tenant"`
		Reason      string          `json:"reason"`
		AffectedIDs json.RawMessage `json:"affected_ids"`
		Outcome     string          `json:"outcome"`
		Details     json.RawMessage `json:"details"`
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
		b, _ := json.Marshal(c)
		sum := sha256.Sum256([]byte(prev + "\n" + string(b)))
		h := hex.EncodeToString(sum[:])
		q := `UPDATE audit_log SET prev_hash = ?, hash = ? WHERE id = ?`
		if markUnkeyed {
			q = `UPDATE audit_log SET prev_hash = ?, hash = ?, hash_scheme = 'sha256' WHERE id = ?`
		}
		if _, err := db.Exec(q, prev, h, c.ID); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
}

func appendN(t *testing.T, a *access.Audit, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := a.Append(context.Background(), access.AuditEvent{Actor: "alice", Action: "redrive", Outcome: access.OutcomeSuccess,
			Details: map[string]any{"count": i}}); err != nil {
			t.Fatal(err)
		}
	}
}

// With an audit key, someone who can write the database but has no key
// cannot make an edit fit: after dropping the trigger, editing row 3 and
// recomputing every later hash, Verify with the key names row 3 — whether
// or not the rewritten rows pretend to be unkeyed. Without the key, Verify
// refuses to call the keyed rows intact.
func TestAuditKeyedChainDetectsRecomputedHashes(t *testing.T) {
	ctx := context.Background()
	for _, markUnkeyed := range []bool{false, true} {
		t.Run(fmt.Sprintf("marked unkeyed %v", markUnkeyed), func(t *testing.T) {
			db := mustDB(t)
			// Two rows from before the key existed, then six keyed ones.
			plain, _ := access.NewAudit(db, nil)
			appendN(t, plain, 2)
			keyed, err := access.NewAuditWith(db, access.AuditOptions{Key: testKey})
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, keyed, 6)
			res, err := keyed.Verify(ctx)
			if err != nil || !res.OK || res.Unkeyed != 2 || res.Keyed != 6 || res.KeyID != keyed.KeyID() || res.Head.Seq != 8 {
				t.Fatalf("intact chain: %+v, %v; want OK with 2 unkeyed and 6 keyed rows", res, err)
			}
			if _, err := db.Exec(`DROP TRIGGER audit_log_no_update`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`UPDATE audit_log SET details = '{"count":99}' WHERE id = 5`); err != nil {
				t.Fatal(err)
			}
			rewriteFrom(t, db, 5, markUnkeyed)
			res, err = keyed.Verify(ctx)
			if err != nil || res.OK || res.BrokenAt != 5 {
				t.Errorf("after the rewrite, with the key: %+v, %v; want broken at row 5", res, err)
			}
			// Without the key (the plain Audit), the keyed rows are not
			// declared intact either.
			res, err = plain.Verify(ctx)
			if err != nil || res.OK {
				t.Errorf("after the rewrite, without the key: %+v, %v; want not OK", res, err)
			}
		})
	}
}

// An unkeyed Audit cannot extend a keyed chain, nor one with another key;
// CheckKey says so at start, naming the key id.
func TestAuditRefusesToContinueAKeyedChainWithoutItsKey(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	keyed, _ := access.NewAuditWith(db, access.AuditOptions{Key: testKey})
	appendN(t, keyed, 1)
	other, _ := access.NewAuditWith(db, access.AuditOptions{Key: []byte("another key, also thirty-two bytes")})
	plain, _ := access.NewAudit(db, nil)
	for name, a := range map[string]*access.Audit{"no key": plain, "another key": other} {
		if err := a.CheckKey(ctx); delivery.ErrorCode(err) != delivery.EINVALID || !strings.Contains(err.Error(), keyed.KeyID()) {
			t.Errorf("%s: CheckKey = %v, want EINVALID naming key id %s", name, err, keyed.KeyID())
		}
		if err := a.Append(ctx, access.AuditEvent{Action: "login", Outcome: access.OutcomeSuccess}); err == nil {
			t.Errorf("%s: appended to a keyed chain", name)
		}
	}
	if err := keyed.CheckKey(ctx); err != nil {
		t.Errorf("same key: %v", err)
	}
	if res, _ := keyed.Verify(ctx); !res.OK || res.Rows != 1 {
		t.Errorf("chain after refused appends: %+v", res)
	}
	if _, err := access.NewAuditWith(db, access.AuditOptions{Key: []byte("short")}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("short key accepted: %v", err)
	}
}

// Without a key in play, a rewrite of the whole chain is consistent and
// Verify alone cannot see it; an anchor taken before it can. Rows cut off
// the end (or an older copy of the file) fail against a newer anchor.
func TestAuditAnchorsCatchAConsistentRewrite(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	a, _ := access.NewAudit(db, nil)
	appendN(t, a, 5)
	anchor, err := a.Head(ctx)
	if err != nil || anchor.Seq != 5 {
		t.Fatalf("head = %+v, %v", anchor, err)
	}
	appendN(t, a, 3)
	if _, err := db.Exec(`DROP TRIGGER audit_log_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'mallory' WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	rewriteFrom(t, db, 2, false)
	if res, _ := a.Verify(ctx); !res.OK {
		t.Fatalf("the rewrite is not consistent (the test's attacker is wrong): %+v", res)
	}
	res, err := a.Verify(ctx, anchor)
	if err != nil || res.OK || res.BrokenAt != 5 || !strings.Contains(res.Problem, "anchor 5:"+anchor.Hash) {
		t.Errorf("rewritten chain against the anchor %s: %+v, %v; want broken at row 5", anchor, res, err)
	}

	// Cutting the newest rows off: an anchor of row 8 names a row that is gone.
	db2 := mustDB(t)
	b, _ := access.NewAudit(db2, nil)
	appendN(t, b, 8)
	newest, _ := b.Head(ctx)
	if _, err := db2.Exec(`DROP TRIGGER audit_log_no_delete`); err != nil {
		t.Fatal(err)
	}
	if _, err := db2.Exec(`DELETE FROM audit_log WHERE id > 6`); err != nil {
		t.Fatal(err)
	}
	if res, _ := b.Verify(ctx); !res.OK {
		t.Fatalf("truncation is invisible to the chain alone, yet: %+v", res)
	}
	res, err = b.Verify(ctx, newest)
	if err != nil || res.OK || res.BrokenAt != 7 || !strings.Contains(res.Problem, "ends at row 6") {
		t.Errorf("truncated chain against the anchor %s: %+v, %v; want broken at row 7", newest, res, err)
	}
}

// An intact keyed chain verifies with the key and every anchor the
// Anchorer wrote, read back from its file and from its log lines; the
// Anchorer writes only when the head moved (or when asked to).
func TestAuditAnchorerAndIntactChain(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	a, _ := access.NewAuditWith(db, access.AuditOptions{Key: testKey})
	var logs bytes.Buffer
	file := filepath.Join(t.TempDir(), "anchors.jsonl")
	x, err := access.NewAnchorer(access.AnchorOptions{Audit: a, File: file, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := x.Anchor(ctx, false); err != nil || h.Seq != 0 || logs.Len() != 0 {
		t.Fatalf("empty log anchored: %+v, %v, %q", h, err, logs.String())
	}
	for range 3 {
		appendN(t, a, 4)
		if _, err := x.Anchor(ctx, false); err != nil {
			t.Fatal(err)
		}
		if _, err := x.Anchor(ctx, false); err != nil { // unchanged: not written again
			t.Fatal(err)
		}
	}
	if _, err := x.Anchor(ctx, true); err != nil { // shutdown: written in any case
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fromFile, err := access.ReadAnchors(f)
	if err != nil {
		t.Fatal(err)
	}
	fromLog, err := access.ReadAnchors(strings.NewReader("not an anchor\n" + `{"msg":"something else","seq":3}` + "\n" + logs.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(fromFile) != 4 || !slices.Equal(fromFile, fromLog) || fromFile[2].Seq != 12 || fromFile[3] != fromFile[2] {
		t.Fatalf("anchors: file %v, log %v; want 4, 8, 12, 12 in both", fromFile, fromLog)
	}
	res, err := a.Verify(ctx, fromFile...)
	if err != nil || !res.OK || res.Keyed != 12 || res.Unkeyed != 0 || res.Anchors != 4 {
		t.Errorf("intact chain with key and anchors: %+v, %v", res, err)
	}
	if _, err := access.ParseAnchor("12:nothex"); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("bad anchor accepted: %v", err)
	}
	if _, err := access.ReadAnchors(strings.NewReader(`{"msg":"audit chain anchor","seq":1,"hash":"x"}`)); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("malformed anchor line accepted: %v", err)
	}
}

// Run anchors the head every interval while it moves.
func TestAnchorerRunAnchorsWhileTheChainMoves(t *testing.T) {
	db := mustDB(t)
	a, _ := access.NewAudit(db, nil)
	file := filepath.Join(t.TempDir(), "anchors.jsonl")
	x, err := access.NewAnchorer(access.AnchorOptions{Audit: a, File: file, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	for want := int64(1); want <= 3; want++ {
		appendN(t, a, 1)
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(file)
			if strings.Contains(string(b), fmt.Sprintf(`"seq":%d,`, want)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("head %d not anchored within 10s; file:\n%s", want, b)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
