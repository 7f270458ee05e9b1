package dlqstore

import (
	"slices"
	"strings"

	"switchyard/access"
	"switchyard/delivery"
)

// TenantScope is the set of tenants a caller may see (access.Scope): All,
// or only Tenants. As in access.Scope.Allows, entries without a tenant are
// visible to any non-empty scope.
//
// Rules, when not nil, further limit what is visible to the rows that one
// of them allows (access.Policy.Rules): a principal bound to
// kafka:prod/orders.* sees entries, groups, counts and totals of those
// topics only, computed in the query. All/Tenants must then be the union of
// the rules' tenants, which the list queries split on. An empty non-nil
// Rules shows nothing.
//
// Every query that reads entries or their totals for a caller keeps to the
// scope with scopeCond, the one place its SQL is written.
type TenantScope struct {
	All     bool
	Tenants []string
	Rules   []access.Rule
}

// ScopeFor is what p may do a on, as the store's queries need it: the
// tenants of p's grants with a (access.Policy.Scope) and, when some grant
// covers only some resources (kafka:prod/orders.*), those grants as Rules.
// Rules that all cover every resource ("*") allow exactly what the tenant
// list does, so they are left out and an unrestricted caller's lists read
// the stored totals. It is the one place a caller's scope is built: the
// dead-letter service's views (view) and the redrive engine's selections
// (the job's action) alike.
func ScopeFor(pol access.Policy, p *access.Principal, a access.Action) *TenantScope {
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

// MaySearchPayloads reports whether p may search the payload and key text
// of the full-text index. The index holds every record's value and key
// unmasked — the payload, the envelope's metadata (partition_key) and the
// key, which $key rules mask — so searching them would tell whether a
// masked field, a masked key, or a body p may not read, holds a value.
// Only a principal who may read payloads and PII (read_payload and
// read_pii) in every tenant they may view, and in every tenant of the
// actions given (a job's), searches them; anyone else's search is kept to
// the other columns (Filter.NoPayloadText, SearchColumns): message,
// exception, ids, code, destination, service and event type, which every
// viewer of an entry sees on its page. The dead-letter service decides the
// entries list with it, the redrive engine every filter selection.
func MaySearchPayloads(pol access.Policy, p *access.Principal, acts ...access.Action) bool {
	if p == nil {
		return false
	}
	reach := []access.Scope{pol.Scope(p, access.ActionView, "*")}
	for _, a := range acts {
		reach = append(reach, pol.Scope(p, a, "*"))
	}
	for _, need := range []access.Action{access.ActionReadPayload, access.ActionReadPII} {
		have := pol.Scope(p, need, "*")
		for _, r := range reach {
			if !covers(have, r) {
				return false
			}
		}
	}
	return true
}

// covers reports whether scope a allows every tenant scope b does.
func covers(a, b access.Scope) bool {
	if a.All {
		return true
	}
	if b.All {
		return false
	}
	for _, t := range b.Tenants {
		if !a.Allows(t) {
			return false
		}
	}
	return true
}

// scopeTenants returns the tenant values a scope may see (nil = all), and
// false when it may see nothing.
func scopeTenants(sc *TenantScope) ([]string, bool) {
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

// scopeCond is the SQL condition (no leading AND; "" when nothing
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
func scopeCond(sc *TenantScope, tenants []string, tenantCol, resourceCol string) (string, []any) {
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
				args = append(args, access.GlobSQL(pat))
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

// hasRules reports whether the scope restricts by resource.
func (sc *TenantScope) hasRules() bool { return sc != nil && sc.Rules != nil }

// resourceOf is the access-policy resource an entry is checked against:
// the topic or queue the message failed on when the dead letter says so,
// else the DLQ topic or queue itself (k, where the record is stored).
// Migration 2 computes the same for entries stored before it.
func resourceOf(dl *delivery.DeadLetter, k key) string {
	o := dl.Origin
	broker := cmpOr(o.Broker, k.broker)
	switch {
	case broker == delivery.BrokerKafka && o.Topic != "":
		return access.KafkaTopic(cmpOr(o.Cluster, k.cluster), o.Topic).Name
	case broker == delivery.BrokerRabbitMQ && o.Queue != "":
		return access.RabbitQueue(cmpOr(o.VHost, k.vhost), o.Queue).Name
	case k.broker == delivery.BrokerRabbitMQ:
		return access.RabbitQueue(k.vhost, k.destination).Name
	default:
		return access.KafkaTopic(k.cluster, k.destination).Name
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
