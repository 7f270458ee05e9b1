package tracing

import (
	"strconv"

	"switchyard/access"
	"switchyard/delivery"
)

// UnknownService is the service of a span whose resource names none, as
// the OpenTelemetry SDKs default it.
const UnknownService = "unknown_service"

// Other spellings of the derived fields that services use beside the
// delivery core's keys (delivery/telemetry.go).
const (
	attrServiceName      = "service.name"
	attrCorrelationPlain = "correlation_id"
	attrEventIDDotted    = "event.id"
	attrEventIDPlain     = "event_id"
	attrTenantPlain      = "tenant_id"
)

// Derive fills the indexed fields of s from its attributes, so that
// searches and the access checks never parse attributes:
//   - Service from the resource's service.name (UnknownService if none);
//   - CorrelationID, EventID, EventType, System, Destination, Cluster,
//     Group, Attempt and Step from the span's attributes, else the
//     resource's, under the delivery core's keys (delivery.Attr…), also
//     accepting correlation_id, event.id and event_id;
//   - Tenant from the span's tenant.id or tenant_id, else the resource's:
//     the tenant scope a caller needs to see the span;
//   - Resource, the access-policy resource the span's destination is:
//     access.KafkaTopic(cluster, destination) for Kafka,
//     access.RabbitQueue(vhost, destination) for RabbitMQ (the vhost is
//     Cluster, "/" when not given), "" when the span names no destination
//     or another system.
func Derive(s *Span) {
	s.Service = UnknownService
	for _, a := range s.ResourceAttrs {
		if a.Key == attrServiceName && a.Value != "" {
			s.Service = a.Value
			break
		}
	}
	s.CorrelationID = derivedAttr(s, delivery.AttrCorrelationID, attrCorrelationPlain)
	s.EventID = derivedAttr(s, delivery.AttrMessageID, attrEventIDDotted, attrEventIDPlain)
	s.EventType = derivedAttr(s, delivery.AttrEventType)
	s.System = derivedAttr(s, delivery.AttrSystem)
	s.Destination = derivedAttr(s, delivery.AttrDest)
	s.Cluster = derivedAttr(s, delivery.AttrCluster)
	s.Group = derivedAttr(s, delivery.AttrConsumer)
	s.Step = derivedAttr(s, delivery.AttrStep)
	s.Attempt = 0
	if v := derivedAttr(s, delivery.AttrAttempt); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			s.Attempt = n
		}
	}
	s.Tenant = attrOf(s.Attrs, delivery.AttrTenant, attrTenantPlain)
	if s.Tenant == "" {
		s.Tenant = attrOf(s.ResourceAttrs, delivery.AttrTenant, attrTenantPlain)
	}
	s.Resource = ""
	if s.Destination != "" {
		switch s.System {
		case delivery.BrokerKafka:
			s.Resource = access.KafkaTopic(s.Cluster, s.Destination).Name
		case delivery.BrokerRabbitMQ:
			vhost := s.Cluster
			if vhost == "" {
				vhost = "/"
			}
			s.Resource = access.RabbitQueue(vhost, s.Destination).Name
		}
	}
}

// derivedAttr is the first non-empty value of keys among the span's
// attributes, then among the resource's.
func derivedAttr(s *Span, keys ...string) string {
	if v := attrOf(s.Attrs, keys...); v != "" {
		return v
	}
	return attrOf(s.ResourceAttrs, keys...)
}

func attrOf(as []Attr, keys ...string) string {
	for _, k := range keys {
		for _, a := range as {
			if a.Key == k && a.Value != "" {
				return a.Value
			}
		}
	}
	return ""
}
