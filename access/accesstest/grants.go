package accesstest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"switchyard/access"
	"switchyard/delivery"
)

// The Directory cases on authority: bindings, roles, and the audit of
// every change to them.

func groupBindingsViaProxy(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	c := NewClock()
	s := mustDirectory(t, newBackend(t), access.Options{Now: c.Now, Proxy: access.ProxyOptions{
		Enabled: true, TrustedCIDRs: []string{"10.0.0.0/8"}}})
	ctx := context.Background()
	if err := s.AddUser(ctx, "root", "a long root password", access.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	admin, err := s.PrincipalFor(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddBinding(ctx, admin, access.Binding{Subject: "group:ops", Role: access.RoleOperator,
		Resources: []string{"kafka:prod/*"}, Tenants: []string{"t1"}, Proxy: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddBinding(ctx, admin, access.Binding{Subject: "user:sso.carol", Role: access.RoleViewer,
		Resources: []string{"rabbitmq:/*"}, Tenants: []string{"*"}, Proxy: true}); err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, access.Credentials{PeerAddr: "10.1.2.3:4000", ProxyUser: "sso.carol", ProxyGroups: "ops, devs ,,ops"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Method != access.MethodProxy || !slices.Equal(p.Groups, []string{"ops", "devs"}) || len(p.Grants) != 2 {
		t.Fatalf("proxy principal = %+v", p)
	}
	var pol access.Policy
	if !pol.Can(p, access.ActionRedrive, access.Resource{Name: "kafka:prod/orders", Tenant: "t1"}) {
		t.Error("group:ops binding did not grant redrive on prod for t1")
	}
	if pol.Can(p, access.ActionRedrive, access.Resource{Name: "kafka:prod/orders", Tenant: "t2"}) {
		t.Error("group:ops binding granted redrive for t2")
	}
	if !pol.Can(p, access.ActionView, access.RabbitQueue("/", "q")) {
		t.Error("user:sso.carol binding did not grant view on queues")
	}
	// Without the group, only the user's own binding remains.
	p2, err := s.Authenticate(ctx, access.Credentials{PeerAddr: "10.1.2.3", ProxyUser: "sso.carol"})
	if err != nil || len(p2.Grants) != 1 || pol.Can(p2, access.ActionView, access.KafkaTopic("prod", "orders")) {
		t.Errorf("proxy principal without groups = %+v, %v", p2, err)
	}
	// The admin check for SSO users.
	pw, err := s.PrincipalWith(ctx, "sso.carol", []string{"ops"})
	if err != nil || len(pw.Grants) != 2 {
		t.Errorf("PrincipalWith = %+v, %v", pw, err)
	}
}

// A binding never grants more than what was typed: empty resources or
// tenants are refused (not taken as "*"), and a subject the console cannot
// find is refused unless the caller says it is an SSO identity.
func bindingsRefuseAccidentalGrants(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	ctx := context.Background()
	all := []string{"*"}
	for _, proxyOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("proxy mode %v", proxyOn), func(t *testing.T) {
			opts := access.Options{}
			if proxyOn {
				opts.Proxy = access.ProxyOptions{Enabled: true, TrustedCIDRs: []string{"10.0.0.0/8"}}
			}
			s := mustDirectory(t, newBackend(t), opts)
			if err := s.AddUser(ctx, "root", "a long root password", access.RoleAdmin); err != nil {
				t.Fatal(err)
			}
			if err := s.AddUser(ctx, "vera", "a long viewer password", access.RoleViewer); err != nil {
				t.Fatal(err)
			}
			admin, _ := s.PrincipalFor(ctx, "root")
			tests := []struct {
				name string
				b    access.Binding
				want string // error message fragment; "" = accepted
			}{
				{"empty resources", access.Binding{Subject: "user:vera", Role: "operator", Tenants: all}, "type * to bind the role on every resource"},
				{"empty tenants", access.Binding{Subject: "user:vera", Role: "operator", Resources: all}, "type * to bind the role for every tenant"},
				{"unknown user", access.Binding{Subject: "user:veronica", Role: "operator", Resources: all, Tenants: all}, `there is no user "veronica"`},
				{"unconfirmed group", access.Binding{Subject: "group:ops", Role: "operator", Resources: all, Tenants: all}, `group "ops"`},
				{"typed star", access.Binding{Subject: "user:vera", Role: "operator", Resources: all, Tenants: all}, ""},
				{"sso group", access.Binding{Subject: "group:ops", Role: "operator", Resources: all, Tenants: []string{"t1"}, Proxy: true}, ""},
				{"sso user", access.Binding{Subject: "user:sso.carol", Role: "viewer", Resources: all, Tenants: all, Proxy: true}, ""},
			}
			for _, tt := range tests {
				before, _ := s.ListBindings(ctx)
				_, err := s.AddBinding(ctx, admin, tt.b)
				after, _ := s.ListBindings(ctx)
				if tt.want == "" {
					if err != nil || len(after) != len(before)+1 {
						t.Errorf("%s: %v, %d bindings after; want it added", tt.name, err, len(after))
					}
					continue
				}
				if delivery.ErrorCode(err) != delivery.EINVALID || !strings.Contains(delivery.ErrorMessage(err), tt.want) || len(after) != len(before) {
					t.Errorf("%s: %v (%d bindings after %d); want EINVALID saying %q and nothing added", tt.name, err, len(after), len(before), tt.want)
				}
			}
			group := access.Binding{Subject: "group:ops", Proxy: true}
			_, err := s.AddBinding(ctx, admin, access.Binding{Subject: "group:devs", Role: "viewer", Resources: all, Tenants: all})
			if note := s.BindingNote(group); proxyOn {
				if note != "" || !strings.Contains(delivery.ErrorMessage(err), "X-Forwarded-Groups") {
					t.Errorf("proxy on: note %q, unconfirmed group %v", note, err)
				}
			} else if !strings.Contains(note, "matches nobody") || !strings.Contains(delivery.ErrorMessage(err), "could never match") {
				t.Errorf("proxy off: note %q, unconfirmed group %v; both must say the group cannot match", note, err)
			}
		})
	}
}

func auditsLoginsAndAdminChanges(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	s, _ := fresh(t, newBackend)
	ctx := context.Background()
	s.AddUser(ctx, "root", "a long root password", access.RoleAdmin)
	s.AddUser(ctx, "vera", "viewer password", access.RoleViewer)
	if _, err := s.Login(ctx, "root", "wrong password!!", "203.0.113.5:999", "curl/8"); err == nil {
		t.Fatal("wrong password accepted")
	}
	s.Login(ctx, "nobody", "wrong password!!", "203.0.113.5:999", "curl/8")
	sess := MustLogin(t, s, "root", "a long root password")
	admin, err := s.Authenticate(ctx, SessionCreds(sess.Token))
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
