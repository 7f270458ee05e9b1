package access_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"switchyard/access"
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
	if err := a.Append(ctx, access.AuditEvent{Action: "x", Outcome: "maybe"}); access.ErrorCode(err) != access.EINVALID {
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
	if err := s.SaveRole(ctx, vera, access.Role{Name: "sneaky", Actions: []access.Action{access.ActionAdmin}}); access.ErrorCode(err) != access.EFORBIDDEN {
		t.Errorf("viewer saved a role: %v", err)
	}
	if err := s.SaveRole(ctx, admin, access.Role{Name: "operator", Actions: []access.Action{access.ActionView}}); access.ErrorCode(err) != access.EINVALID {
		t.Errorf("built-in role overwritten: %v", err)
	}
	if err := s.SaveRole(ctx, admin, access.Role{Name: "odd", Actions: []access.Action{"fly"}}); access.ErrorCode(err) != access.EINVALID {
		t.Errorf("unknown action accepted: %v", err)
	}
	id, err := s.AddBinding(ctx, admin, access.Binding{Subject: "user:vera", Role: "replayer", Resources: []string{"kafka:prod/orders.*"}, Tenants: []string{"t1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []access.Binding{
		{Subject: "vera", Role: "viewer"},
		{Subject: "user:vera", Role: "nope"},
		{Subject: "user:vera", Role: "viewer", Resources: []string{"orders"}},
		{Subject: "group:a b", Role: "viewer"},
		{Subject: "user:vera", Role: "viewer", Tenants: []string{"t 1"}},
	} {
		if _, err := s.AddBinding(ctx, admin, bad); access.ErrorCode(err) != access.EINVALID {
			t.Errorf("AddBinding(%+v) = %v, want EINVALID", bad, err)
		}
	}
	pv, _ := s.PrincipalFor(ctx, "vera")
	if !(access.Policy{}).Can(pv, access.ActionRedrive, access.Resource{Name: "kafka:prod/orders.created", Tenant: "t1"}) {
		t.Errorf("custom role binding not effective: %+v", pv.Grants)
	}
	if err := s.DeleteRole(ctx, admin, "replayer"); access.ErrorCode(err) != access.ECONFLICT {
		t.Errorf("deleting a bound role: %v", err)
	}
	if err := s.DeleteBinding(ctx, admin, id); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRole(ctx, admin, "replayer"); err != nil {
		t.Errorf("deleting an unbound role: %v", err)
	}
	if err := s.DeleteRole(ctx, admin, "viewer"); access.ErrorCode(err) != access.EINVALID {
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
