package dlqstore

import (
	"switchyard/access"
	"switchyard/delivery"
)

// TenantScope is the caller's scope as the store's queries need it; it is
// access.TenantScope, whose SQL (access.TenantScope.Cond) every scoped
// query of this package builds its security filter from.
type TenantScope = access.TenantScope

// ScopeFor is access.ScopeFor: what p may do a on.
func ScopeFor(pol access.Policy, p *access.Principal, a access.Action) *TenantScope {
	return access.ScopeFor(pol, p, a)
}

// scopeTenants is access.TenantScope.Values.
func scopeTenants(sc *TenantScope) ([]string, bool) { return sc.Values() }

// scopeCond is access.TenantScope.Cond.
func scopeCond(sc *TenantScope, tenants []string, tenantCol, resourceCol string) (string, []any) {
	return sc.Cond(tenants, tenantCol, resourceCol)
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
