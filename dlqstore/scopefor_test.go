package dlqstore_test

import (
	"reflect"
	"testing"

	"switchyard/access"
	"switchyard/dlqstore"
)

func principalWith(grants ...access.Grant) *access.Principal {
	return &access.Principal{User: "p", Grants: grants}
}

func grant(resources, tenants []string, acts ...access.Action) access.Grant {
	return access.Grant{Role: "custom", Actions: acts, Resources: resources, Tenants: tenants}
}

var (
	all     = []string{"*"}
	t1      = []string{"t1"}
	view    = access.ActionView
	payload = access.ActionReadPayload
	pii     = access.ActionReadPII
)

// ScopeFor keeps a principal's rules only when some rule covers part of
// the resources: rules over every resource say no more than the tenants.
func TestScopeFor(t *testing.T) {
	demo := []string{"kafka:demo/*"}
	for _, tc := range []struct {
		name string
		p    *access.Principal
		want dlqstore.TenantScope
	}{
		{"nobody", nil, dlqstore.TenantScope{}},
		{"no grant with the action", principalWith(grant(all, all, payload)), dlqstore.TenantScope{}},
		{"everything", principalWith(grant(all, all, view)), dlqstore.TenantScope{All: true}},
		{"every resource of a tenant", principalWith(grant(all, t1, view)), dlqstore.TenantScope{Tenants: t1}},
		{"some resources", principalWith(grant(demo, t1, view)),
			dlqstore.TenantScope{Tenants: t1, Rules: []access.Rule{{Resources: demo, Tenants: t1}}}},
		{"some resources beside all of them", principalWith(grant(all, t1, view), grant(demo, all, view)),
			dlqstore.TenantScope{All: true, Rules: []access.Rule{{Resources: all, Tenants: t1}, {Resources: demo}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dlqstore.ScopeFor(access.Policy{}, tc.p, view); !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("ScopeFor = %+v, want %+v", *got, tc.want)
			}
		})
	}
}

// Payload text is searchable only with read_payload and read_pii over
// every tenant the principal views, and every tenant of the actions named.
func TestMaySearchPayloads(t *testing.T) {
	two := []string{"t1", "t2"}
	for _, tc := range []struct {
		name string
		p    *access.Principal
		acts []access.Action
		want bool
	}{
		{"nobody", nil, nil, false},
		{"admin", principalWith(grant(all, all, view, payload, pii)), nil, true},
		{"no read_pii", principalWith(grant(all, t1, view, payload)), nil, false},
		{"no read_payload", principalWith(grant(all, t1, view, pii)), nil, false},
		{"both in the tenant viewed", principalWith(grant(all, t1, view, payload, pii)), nil, true},
		{"a tenant viewed without them", principalWith(grant(all, t1, view, payload, pii), grant(all, two, view)), nil, false},
		{"all tenants viewed, one read", principalWith(grant(all, all, view), grant(all, t1, payload, pii)), nil, false},
		{"an action's tenant without them", principalWith(grant(all, t1, view, payload, pii), grant(all, two, access.ActionDiscard)),
			[]access.Action{access.ActionDiscard}, false},
		{"an action within them", principalWith(grant(all, t1, view, payload, pii, access.ActionDiscard)),
			[]access.Action{access.ActionDiscard}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dlqstore.MaySearchPayloads(access.Policy{}, tc.p, tc.acts...); got != tc.want {
				t.Errorf("MaySearchPayloads = %v, want %v", got, tc.want)
			}
		})
	}
}
