package dlqstore

import (
	"slices"
	"strings"

	"switchyard/access"
	"switchyard/delivery"
)

// resourceOf is the access-policy resource an entry is checked against:
// the topic or queue the message failed on when the dead letter says so,
// else the DLQ topic or queue itself (k, where the record is stored). Migration 2 computes the same for
// entries stored before it.
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

// ruleCond is the SQL condition that keeps only rows the scope's Rules
// allow, on the given resource and tenant columns; "" when the scope has no
// rules (its tenant list is then the whole restriction). A rule allows a
// row whose resource matches one of its patterns (access.GlobSQL) and whose
// tenant is among its tenants or empty (access.Grant semantics).
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
