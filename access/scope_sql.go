package access

import (
	"slices"
	"strings"
)

// TenantScope is the set of tenants a caller may see (Scope): All,
// or only Tenants. As in Scope.Allows, entries without a tenant are
// visible to any non-empty scope.
//
// Rules, when not nil, further limit what is visible to the rows that one
// of them allows (Policy.Rules): a principal bound to
// kafka:prod/orders.* sees entries, groups, counts and totals of those
// topics only, computed in the query. All/Tenants must then be the union of
// the rules' tenants, which the list queries split on. An empty non-nil
// Rules shows nothing.
//
// Every query that reads entries or their totals for a caller keeps to the
// scope with Cond, the one place its SQL is written: the dead-letter
// store and the span store alike.
type TenantScope struct {
	All     bool
	Tenants []string
	Rules   []Rule
}

// ScopeFor is what p may do a on, as the store's queries need it: the
// tenants of p's grants with a (Policy.Scope) and, when some grant
// covers only some resources (kafka:prod/orders.*), those grants as Rules.
// Rules that all cover every resource ("*") allow exactly what the tenant
// list does, so they are left out and an unrestricted caller's lists read
// the stored totals. It is the one place a caller's scope is built: the
// dead-letter service's views (view) and the redrive engine's selections
// (the job's action) alike.
func ScopeFor(pol Policy, p *Principal, a Action) *TenantScope {
	sc := pol.Scope(p, a, "*")
	out := &TenantScope{All: sc.All}
	if !sc.All {
		out.Tenants = slices.Clone(sc.Tenants)
	}
	rules := pol.Rules(p, a)
	for _, r := range rules {
		if !slices.Contains(r.Resources, "*") {
			out.Rules = rules
			break
		}
	}
	return out
}

// Values returns the tenant values a scope may see (nil = all), and
// false when it may see nothing.
func (sc *TenantScope) Values() ([]string, bool) {
	if sc != nil && sc.Rules != nil && len(sc.Rules) == 0 {
		return nil, false
	}
	if sc == nil || sc.All {
		return nil, true
	}
	if len(sc.Tenants) == 0 {
		return nil, false
	}
	// Entries without a tenant are visible to any non-empty scope
	// (access.Scope.Allows). Duplicates would repeat entries in the
	// per-tenant branches of a page.
	ts := append([]string{""}, sc.Tenants...)
	slices.Sort(ts)
	return slices.Compact(ts), true
}

// Cond is the SQL condition (no leading AND; "" when nothing
// restricts) that keeps the rows of a table — entries, group_stats,
// job_scopes — that sc may see, on its tenant and resource columns:
//   - tenant IN tenants, the tenant values of the scope as scopeTenants
//     gives them (a caller may narrow them to those with entries, or pass
//     nil when it pins one tenant per branch of a page itself);
//   - and the scope's Rules (ruleCond), when it has any.
//
// The queries of entries, totals, groups, a group, trends, counts, source
// counts, job selections and job visibility all build their security
// filter here.
func (sc *TenantScope) Cond(tenants []string, tenantCol, resourceCol string) (string, []any) {
	var cs []string
	var args []any
	if tenants != nil {
		cs = append(cs, tenantCol+" IN ("+placeholders(len(tenants))+")")
		for _, t := range tenants {
			args = append(args, t)
		}
	}
	if c, a := sc.ruleCond(resourceCol, tenantCol); c != "" {
		cs = append(cs, c)
		args = append(args, a...)
	}
	return strings.Join(cs, " AND "), args
}

// ruleCond is the SQL condition that keeps only rows the scope's Rules
// allow, on the given resource and tenant columns; "" when the scope has no
// rules (its tenant list is then the whole restriction), "0" when they
// allow nothing. A rule allows a row whose resource matches one of its
// patterns (access.GlobSQL) and whose tenant is among its tenants or empty
// (access.Grant semantics).
func (sc *TenantScope) ruleCond(resourceCol, tenantCol string) (string, []any) {
	if sc == nil || sc.Rules == nil {
		return "", nil
	}
	if len(sc.Rules) == 0 {
		return "0", nil
	}
	var ors []string
	var args []any
	for _, r := range sc.Rules {
		var ands []string
		if !slices.Contains(r.Resources, "*") {
			if len(r.Resources) == 0 {
				continue
			}
			var globs []string
			for _, pat := range r.Resources {
				globs = append(globs, resourceCol+" GLOB ?")
				args = append(args, GlobSQL(pat))
			}
			ands = append(ands, "("+strings.Join(globs, " OR ")+")")
		}
		if r.Tenants != nil {
			ts := append([]string{""}, r.Tenants...)
			ands = append(ands, tenantCol+" IN ("+placeholders(len(ts))+")")
			for _, t := range ts {
				args = append(args, t)
			}
		}
		if len(ands) == 0 {
			return "", nil // this rule allows everything the tenant list does
		}
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	if len(ors) == 0 {
		return "0", nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// HasRules reports whether the scope restricts by resource.
func (sc *TenantScope) HasRules() bool { return sc != nil && sc.Rules != nil }

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
