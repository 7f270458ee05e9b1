package access

import (
	"strings"

	"switchyard/delivery"
)

// Resource names are spelled in this file only: every package that names a
// topic, group or queue for the policy (routes, the time-series scope, the
// dead-letter store's scope column, redrive destinations) builds the name
// with KafkaTopic, KafkaGroup or RabbitQueue and reads one back with
// ParseResource, so that a change of spelling is one change here.
//
//	kafka:<cluster>/<topic>           KafkaTopic
//	kafka:<cluster>/group/<group>     KafkaGroup
//	rabbitmq:<vhost>/<queue>          RabbitQueue (the default vhost "/" is written "")
//	console:<area>                    the console's own parts: ConsoleAdmin, ConsoleAudit, …
//	*                                 no specific resource (list routes; see Policy.Can)
const (
	prefixKafka   = "kafka:"
	prefixRabbit  = "rabbitmq:"
	prefixConsole = "console:"
	groupSegment  = "group/"
)

// Resource names what a request touches (see the list above). Tenant is
// the tenant the thing belongs to, "" when it is not tenant-specific.
type Resource struct {
	Name   string
	Tenant string
}

// Res returns a resource without a tenant.
func Res(name string) Resource { return Resource{Name: name} }

// KafkaTopic is the resource of a topic.
func KafkaTopic(cluster, topic string) Resource { return Res(prefixKafka + cluster + "/" + topic) }

// KafkaGroup is the resource of a consumer group.
func KafkaGroup(cluster, group string) Resource {
	return Res(prefixKafka + cluster + "/" + groupSegment + group)
}

// RabbitQueue is the resource of a queue. The default vhost "/" is written
// as the empty string, so its queues are "rabbitmq:/<queue>" and a pattern
// like "rabbitmq:/notify.*" reads naturally; other vhosts appear as named.
func RabbitQueue(vhost, queue string) Resource {
	if vhost == "/" {
		vhost = ""
	}
	return Res(prefixRabbit + vhost + "/" + queue)
}

// Console is the resource of a part of the console itself
// ("console:admin"); the parts routes check have their names below.
func Console(area string) Resource { return Res(prefixConsole + area) }

// The names of the console's own resources, which routes check rather
// than a broker's topic or queue.
const (
	ConsoleAdmin   = prefixConsole + "admin"   // users, tokens, roles, bindings
	ConsoleAudit   = prefixConsole + "audit"   // the audit log
	ConsoleMetrics = prefixConsole + "metrics" // GET /metrics
	ConsoleIngest  = prefixConsole + "ingest"  // POST /v1/metrics (OTLP)
	ConsoleDLQ     = prefixConsole + "dlq"     // dead-letter triage
	ConsoleAlerts  = prefixConsole + "alerts"  // alert rules and silences, in the audit log
)

// AllOfKafkaCluster is the name "kafka:<cluster>/*". Asked of Policy.Can
// it is allowed by a grant whose pattern matches that name itself, as one
// that covers the whole cluster ("kafka:<cluster>/*", "kafka:*", "*")
// does, and not by one that covers some topics only.
func AllOfKafkaCluster(cluster string) Resource { return KafkaTopic(cluster, "*") }

// AllRabbitQueues is the name "rabbitmq:*", allowed in the same way by a
// grant that covers every queue of every vhost ("rabbitmq:*", "*").
func AllRabbitQueues() Resource { return Res(prefixRabbit + "*") }

// ResourcePrefixed reports whether a resource pattern names one of the
// kinds above by its prefix (kafka:, rabbitmq:, console:); "*" does not.
func ResourcePrefixed(pattern string) bool {
	for _, p := range []string{prefixKafka, prefixRabbit, prefixConsole} {
		if strings.HasPrefix(pattern, p) {
			return true
		}
	}
	return false
}

// ResourceKind says which of the names above a ResourceName is.
type ResourceKind string

// The kinds of resource names.
const (
	KindKafkaTopic  ResourceKind = "kafka_topic"
	KindKafkaGroup  ResourceKind = "kafka_group"
	KindRabbitQueue ResourceKind = "rabbitmq_queue"
	KindConsole     ResourceKind = "console"
)

// ResourceName is a resource name taken apart by ParseResource. Only the
// fields of its Kind are set: Cluster and Topic or Group for Kafka, VHost
// ("/" for the default vhost) and Queue for RabbitMQ, Area for the console.
type ResourceName struct {
	Kind    ResourceKind
	Cluster string
	Topic   string
	Group   string
	VHost   string
	Queue   string
	Area    string
}

// Resource builds the name again (without a tenant).
func (n ResourceName) Resource() Resource {
	switch n.Kind {
	case KindKafkaTopic:
		return KafkaTopic(n.Cluster, n.Topic)
	case KindKafkaGroup:
		return KafkaGroup(n.Cluster, n.Group)
	case KindRabbitQueue:
		return RabbitQueue(n.VHost, n.Queue)
	case KindConsole:
		return Console(n.Area)
	}
	return Resource{}
}

// String is the resource name.
func (n ResourceName) String() string { return n.Resource().Name }

// ParseResource takes a resource name apart; it is the inverse of the
// builders above for every name they build from non-empty parts (a
// cluster name holding '/' cannot be read back, which is why config
// cluster names are plain). Kafka topic names cannot hold '/', so "kafka:c/group/g" is always the group g;
// a group name may hold '/'. A RabbitMQ name splits at its last '/': vhosts
// may hold '/', and queue names are taken not to. Errors: EINVALID for
// anything else, patterns included ("kafka:prod/*" parses as a topic named
// "*": ParseResource reads names, not patterns).
func ParseResource(name string) (ResourceName, error) {
	bad := func() (ResourceName, error) {
		return ResourceName{}, delivery.Errorf(delivery.EINVALID,
			"resource %q: want kafka:<cluster>/<topic>, kafka:<cluster>/group/<group>, rabbitmq:<vhost>/<queue> or console:<area>", name)
	}
	switch {
	case strings.HasPrefix(name, prefixKafka):
		cluster, rest, ok := strings.Cut(name[len(prefixKafka):], "/")
		if !ok || cluster == "" || rest == "" {
			return bad()
		}
		if group, isGroup := strings.CutPrefix(rest, groupSegment); isGroup {
			if group == "" {
				return bad()
			}
			return ResourceName{Kind: KindKafkaGroup, Cluster: cluster, Group: group}, nil
		}
		if strings.Contains(rest, "/") {
			return bad()
		}
		return ResourceName{Kind: KindKafkaTopic, Cluster: cluster, Topic: rest}, nil
	case strings.HasPrefix(name, prefixRabbit):
		rest := name[len(prefixRabbit):]
		i := strings.LastIndexByte(rest, '/')
		if i < 0 || i == len(rest)-1 {
			return bad()
		}
		vhost := rest[:i]
		if vhost == "" {
			vhost = "/"
		}
		return ResourceName{Kind: KindRabbitQueue, VHost: vhost, Queue: rest[i+1:]}, nil
	case strings.HasPrefix(name, prefixConsole):
		area := name[len(prefixConsole):]
		if area == "" || strings.Contains(area, "/") {
			return bad()
		}
		return ResourceName{Kind: KindConsole, Area: area}, nil
	}
	return bad()
}
