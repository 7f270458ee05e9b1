package access_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"switchyard/access"
	"switchyard/delivery"
)

func grantOf(role string, resources, tenants []string) access.Grant {
	acts, _ := access.BuiltInRole(role)
	return access.Grant{Binding: 1, Subject: "user:x", Role: role, Actions: acts, Resources: resources, Tenants: tenants}
}

func principalWith(role string) *access.Principal {
	return &access.Principal{User: role, Grants: []access.Grant{grantOf(role, []string{"*"}, []string{"*"})}}
}

func TestBuiltInRoleMatrix(t *testing.T) {
	var pol access.Policy
	allowed := map[string][]access.Action{
		access.RoleScraper: {access.ActionScrape},
		access.RoleViewer:  {access.ActionView},
		access.RoleOperator: {access.ActionView, access.ActionReadPayload, access.ActionRedrive,
			access.ActionQuarantine, access.ActionDiscard, access.ActionExport},
		access.RoleAdmin: access.Actions(),
	}
	r := access.KafkaTopic("main", "orders.order.created.v1")
	for _, role := range access.Roles() {
		p := principalWith(role)
		for _, a := range access.Actions() {
			t.Run(role+"/"+string(a), func(t *testing.T) {
				want := ""
				if !slices.Contains(allowed[role], a) {
					want = delivery.EFORBIDDEN
				}
				if got := delivery.ErrorCode(pol.Authorize(p, a, r)); got != want {
					t.Errorf("Authorize(%s, %s) code = %q, want %q", role, a, got, want)
				}
			})
		}
	}
	if got := delivery.ErrorCode(pol.Authorize(nil, access.ActionView, r)); got != delivery.EUNAUTHORIZED {
		t.Errorf("anonymous: %q, want EUNAUTHORIZED", got)
	}
	if err := pol.Authorize(principalWith(access.RoleAdmin), "launch_missiles", r); delivery.ErrorCode(err) != delivery.EFORBIDDEN {
		t.Errorf("unknown action allowed: %v", err)
	}
	if err := pol.Authorize(&access.Principal{User: "nobody"}, access.ActionView, access.Res("*")); delivery.ErrorCode(err) != delivery.EFORBIDDEN {
		t.Errorf("principal without grants: %v", err)
	}
}

func TestMatchResource(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "kafka:prod/orders", true},
		{"*", "console:admin", true},
		{"kafka:prod/orders.*", "kafka:prod/orders.created", true},
		{"kafka:prod/orders.*", "kafka:prod/orders.", true},
		{"kafka:prod/orders.*", "kafka:prod/orders", false},
		{"kafka:prod/orders.*", "kafka:staging/orders.created", false},
		{"kafka:prod/orders.*", "kafka:prod/group/orders.x", false},
		{"kafka:*/group/billing", "kafka:prod/group/billing", true},
		{"kafka:*/group/billing", "kafka:eu/west/group/billing", true}, // * crosses "/"
		{"kafka:*/group/billing", "kafka:prod/group/billing-2", false},
		{"kafka:*/group/billing", "kafka:prod/billing", false},
		{"kafka:prod/*", "kafka:prod/group/billing", true}, // a cluster grant covers its groups
		{"rabbitmq:/notify.*", "rabbitmq:/notify.email", true},
		{"rabbitmq:/notify.*", "rabbitmq:prod/notify.email", false},
		{"rabbitmq:/notify.*", "rabbitmq:/notifications", false},
		{"kafka:prod/t?", "kafka:prod/t1", true},
		{"kafka:prod/t?", "kafka:prod/t12", false},
		{"kafka:prod/t?", "kafka:prod/tä", true}, // ? is one character, not one byte
		{"kafka:prod/*.dlq", "kafka:prod/a.b.dlq", true},
		{"kafka:prod/Orders", "kafka:prod/orders", false},
		{"", "", true},
		{"", "x", false},
	}
	for _, tt := range tests {
		if got := access.MatchResource(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchResource(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
	if got := access.RabbitQueue("/", "notify.email").Name; got != "rabbitmq:/notify.email" {
		t.Errorf("RabbitQueue default vhost = %q", got)
	}
	if got := access.KafkaGroup("prod", "billing").Name; got != "kafka:prod/group/billing" {
		t.Errorf("KafkaGroup = %q", got)
	}
}

func TestResourceAndTenantGrants(t *testing.T) {
	var pol access.Policy
	op := &access.Principal{User: "olga", Grants: []access.Grant{
		grantOf(access.RoleOperator, []string{"kafka:prod/orders.*"}, []string{"t1"}),
		grantOf(access.RoleViewer, []string{"kafka:*/group/billing", "rabbitmq:/notify.*"}, []string{"*"}),
	}}
	tests := []struct {
		name string
		a    access.Action
		r    access.Resource
		want bool
	}{
		{"own topic, own tenant", access.ActionRedrive, access.Resource{Name: "kafka:prod/orders.created", Tenant: "t1"}, true},
		{"own topic, no tenant", access.ActionRedrive, access.KafkaTopic("prod", "orders.created"), true},
		{"own topic, other tenant", access.ActionRedrive, access.Resource{Name: "kafka:prod/orders.created", Tenant: "t2"}, false},
		{"other topic", access.ActionRedrive, access.KafkaTopic("prod", "payments"), false},
		{"other cluster", access.ActionView, access.KafkaTopic("staging", "orders.created"), false},
		{"group on any cluster", access.ActionView, access.KafkaGroup("eu", "billing"), true},
		{"group, any tenant", access.ActionView, access.Resource{Name: "kafka:eu/group/billing", Tenant: "t9"}, true},
		{"group but not redrive", access.ActionRedrive, access.KafkaGroup("eu", "billing"), false},
		{"queue", access.ActionView, access.RabbitQueue("/", "notify.sms"), true},
		{"queue other vhost", access.ActionView, access.RabbitQueue("prod", "notify.sms"), false},
		{"list: any grant has view", access.ActionView, access.Res("*"), true},
		{"list: any grant has redrive", access.ActionRedrive, access.Res("*"), true},
		{"list: tenant t2 view via viewer *", access.ActionView, access.Resource{Name: "*", Tenant: "t2"}, true},
		{"list: tenant t2 redrive", access.ActionRedrive, access.Resource{Name: "*", Tenant: "t2"}, false},
		{"list: nobody has admin", access.ActionAdmin, access.Res("*"), false},
		{"console admin", access.ActionAdmin, access.Res("console:admin"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pol.Can(op, tt.a, tt.r); got != tt.want {
				t.Errorf("Can(%s, %+v) = %v, want %v", tt.a, tt.r, got, tt.want)
			}
			err := pol.Authorize(op, tt.a, tt.r)
			if (err == nil) != tt.want || (err != nil && delivery.ErrorCode(err) != delivery.EFORBIDDEN) {
				t.Errorf("Authorize = %v, want allowed=%v", err, tt.want)
			}
		})
	}
}

func TestScope(t *testing.T) {
	var pol access.Policy
	p := &access.Principal{User: "u", Grants: []access.Grant{
		grantOf(access.RoleOperator, []string{"kafka:prod/*"}, []string{"t2", "t1"}),
		grantOf(access.RoleViewer, []string{"kafka:staging/*"}, []string{"t3", "t1"}),
		grantOf(access.RoleViewer, []string{"rabbitmq:/*"}, []string{"*"}),
	}}
	tests := []struct {
		name     string
		a        access.Action
		resource string
		want     access.Scope
	}{
		{"redrive anywhere", access.ActionRedrive, "*", access.Scope{Tenants: []string{"t1", "t2"}}},
		{"view on a prod topic", access.ActionView, "kafka:prod/orders", access.Scope{Tenants: []string{"t1", "t2"}}},
		{"view on a staging topic", access.ActionView, "kafka:staging/x", access.Scope{Tenants: []string{"t1", "t3"}}},
		{"view on a queue", access.ActionView, "rabbitmq:/q", access.Scope{All: true}},
		{"view anywhere", access.ActionView, "*", access.Scope{All: true}},
		{"redrive on staging", access.ActionRedrive, "kafka:staging/x", access.Scope{}},
		{"admin", access.ActionAdmin, "*", access.Scope{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pol.Scope(p, tt.a, tt.resource)
			if got.All != tt.want.All || !slices.Equal(got.Tenants, tt.want.Tenants) {
				t.Errorf("Scope = %+v, want %+v", got, tt.want)
			}
		})
	}
	s := access.Scope{Tenants: []string{"t1", "t2"}}
	for tenant, want := range map[string]bool{"t1": true, "t2": true, "t3": false, "": true} {
		if s.Allows(tenant) != want {
			t.Errorf("Scope{t1,t2}.Allows(%q) = %v, want %v", tenant, !want, want)
		}
	}
	if (access.Scope{}).Allows("") || (access.Scope{}).Allows("t1") || !(access.Scope{}).Empty() {
		t.Error("an empty scope allows something")
	}
	if !(access.Scope{All: true}).Allows("anything") {
		t.Error("Scope{All} denies a tenant")
	}
	if got := pol.Scope(nil, access.ActionView, "*"); !got.Empty() {
		t.Errorf("nil principal scope = %+v", got)
	}
}

func TestExplain(t *testing.T) {
	var pol access.Policy
	p := &access.Principal{User: "alice", Grants: []access.Grant{{
		Binding: 7, Subject: "user:alice", Role: access.RoleOperator,
		Actions:   []access.Action{access.ActionView, access.ActionRedrive},
		Resources: []string{"kafka:prod/*"}, Tenants: []string{"t1"},
	}}}
	ds := pol.Explain(p, access.Resource{Name: "kafka:prod/orders", Tenant: "t1"})
	if len(ds) != len(access.Actions()) {
		t.Fatalf("Explain gave %d decisions, want one per action (%d)", len(ds), len(access.Actions()))
	}
	byAction := map[access.Action]access.Decision{}
	for _, d := range ds {
		byAction[d.Action] = d
		if strings.Contains(d.Because, "\n") || d.Because == "" {
			t.Errorf("%s: reason %q is not one line", d.Action, d.Because)
		}
	}
	if d := byAction[access.ActionRedrive]; !d.Allowed || d.Because != "granted by role operator via user:alice on kafka:prod/*, tenants t1" {
		t.Errorf("redrive: %+v", d)
	}
	if d := byAction[access.ActionDiscard]; d.Allowed || d.Because != "no binding grants discard" {
		t.Errorf("discard: %+v", d)
	}
	for _, d := range pol.Explain(p, access.Resource{Name: "kafka:prod/orders", Tenant: "t2"}) {
		if d.Action == access.ActionView && (d.Allowed || d.Because != "view on kafka:prod/orders is granted only for tenants t1, not t2") {
			t.Errorf("view for t2: %+v", d)
		}
	}
	elsewhere := pol.Explain(p, access.KafkaTopic("staging", "x"))
	for _, d := range elsewhere {
		if d.Action == access.ActionView && (d.Allowed || d.Because != "no binding grants view on kafka:staging/x (only on kafka:prod/*)") {
			t.Errorf("view elsewhere: %+v", d)
		}
	}
	for _, d := range pol.Explain(nil, access.Res("*")) {
		if d.Allowed || d.Because != "not authenticated" {
			t.Errorf("nil principal: %+v", d)
		}
	}
}

func TestGroupBindingsViaProxy(t *testing.T) {
	db := mustDB(t)
	c := newClock()
	s := mustStoreOpts(t, db, access.Options{Now: c.Now, Proxy: access.ProxyOptions{
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

// Rules carry each grant's patterns and tenants for the action, and GlobSQL
// keeps the pattern's meaning in SQLite.
func TestRulesAndGlobSQL(t *testing.T) {
	p := &access.Principal{User: "tess", Grants: []access.Grant{
		{Role: "operator", Actions: []access.Action{access.ActionView, access.ActionRedrive}, Resources: []string{"kafka:demo/*"}, Tenants: []string{"t1"}},
		{Role: "viewer", Actions: []access.Action{access.ActionView}, Resources: []string{"rabbitmq:/notify.*"}, Tenants: []string{"*"}},
	}}
	rs := (access.Policy{}).Rules(p, access.ActionView)
	if len(rs) != 2 || rs[0].Resources[0] != "kafka:demo/*" || len(rs[0].Tenants) != 1 || rs[1].Tenants != nil {
		t.Errorf("view rules = %+v, want the tenant-scoped kafka rule and an all-tenant rabbit rule", rs)
	}
	if rs := (access.Policy{}).Rules(p, access.ActionRedrive); len(rs) != 1 {
		t.Errorf("redrive rules = %+v, want only the operator grant", rs)
	}
	if rs := (access.Policy{}).Rules(nil, access.ActionView); rs != nil {
		t.Errorf("anonymous rules = %+v", rs)
	}
	if got := access.GlobSQL("kafka:a[1]/*"); got != "kafka:a[[]1]/*" {
		t.Errorf("GlobSQL = %q", got)
	}
}

// A binding never grants more than what was typed: empty resources or
// tenants are refused (not taken as "*"), and a subject the console cannot
// find is refused unless the caller says it is an SSO identity.
func TestAddBindingRefusesAccidentalGrants(t *testing.T) {
	ctx := context.Background()
	all := []string{"*"}
	for _, proxyOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("proxy mode %v", proxyOn), func(t *testing.T) {
			opts := access.Options{}
			if proxyOn {
				opts.Proxy = access.ProxyOptions{Enabled: true, TrustedCIDRs: []string{"10.0.0.0/8"}}
			}
			s := mustStoreOpts(t, mustDB(t), opts)
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
