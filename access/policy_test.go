package access_test

import (
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
