package dlqstore

import (
	"fmt"
	"testing"

	"switchyard/access"
)

// scopeCond is every scoped query's security filter: the tenant list (the
// caller's, possibly narrowed or left to per-branch conditions) and the
// scope's rules, in that order, on the columns it is given.
func TestScopeCond(t *testing.T) {
	rule := access.Rule{Resources: []string{"kafka:main/orders*"}, Tenants: []string{"t1"}}
	for _, tc := range []struct {
		name     string
		sc       *TenantScope
		tenants  []string
		want     string
		wantArgs string
	}{
		{"everything", nil, nil, "", "[]"},
		{"all tenants, no rules", &TenantScope{All: true}, nil, "", "[]"},
		{"tenants", &TenantScope{Tenants: []string{"t1"}}, []string{"", "t1"}, "s.tenant IN (?,?)", "[ t1]"},
		{"tenants and a rule", &TenantScope{Tenants: []string{"t1"}, Rules: []access.Rule{rule}}, []string{"", "t1"},
			"s.tenant IN (?,?) AND (((s.resource GLOB ?) AND s.tenant IN (?,?)))", "[ t1 kafka:main/orders*  t1]"},
		{"a rule, tenants pinned by the caller", &TenantScope{Tenants: []string{"t1"}, Rules: []access.Rule{rule}}, nil,
			"(((s.resource GLOB ?) AND s.tenant IN (?,?)))", "[kafka:main/orders*  t1]"},
		{"no rules at all", &TenantScope{All: true, Rules: []access.Rule{}}, nil, "0", "[]"},
		{"a rule on everything", &TenantScope{All: true, Rules: []access.Rule{{Resources: []string{"*"}}}}, nil, "", "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, args := scopeCond(tc.sc, tc.tenants, "s.tenant", "s.resource")
			if got != tc.want || fmt.Sprint(args) != tc.wantArgs {
				t.Errorf("scopeCond = %q %v, want %q %s", got, args, tc.want, tc.wantArgs)
			}
		})
	}
}
