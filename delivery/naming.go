package delivery

import (
	"fmt"
	"regexp"
	"strings"
)

// Naming conventions of the platform (platform-standard.md, "Topic/queue
// conventions"), and the names Switchyard derives from them:
//
//	Kafka topic        domain.entity.event.vN     orders.order.created.v1
//	its dead letters   <topic>.dlq                orders.order.created.v1.dlq
//	its quarantine     <topic>.quarantine         orders.order.created.v1.quarantine
//	Rabbit queue       service.action.priority    notify.email.high
//	its dead letters   <queue>.dlq                notify.email.high.dlq
//	its quarantine     <queue>.quarantine         notify.email.high.quarantine
//
// Segments are lower-case letters, digits and '_' (or '-'), starting with a
// letter. Queue priorities are one of QueuePriorities.

// QueuePriorities is the documented set of RabbitMQ queue priorities.
var QueuePriorities = []string{"critical", "high", "normal", "low", "bulk"}

const (
	dlqSuffix        = ".dlq"
	quarantineSuffix = ".quarantine"
)

var (
	segmentRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	versionRE = regexp.MustCompile(`^v[1-9][0-9]*$`)
)

// NamingError explains why a name breaks the convention and what a
// conforming name looks like.
type NamingError struct {
	Name    string
	Kind    string // "topic" or "queue"
	Problem string
	Example string
}

func (e *NamingError) Error() string {
	return fmt.Sprintf("%s %q: %s (expected e.g. %s)", e.Kind, e.Name, e.Problem, e.Example)
}

// LintTopic checks a Kafka topic name against domain.entity.event.vN. Derived
// names (.dlq, .quarantine) are checked against their base topic.
func LintTopic(name string) error {
	base := BaseName(name)
	fail := func(p string) error {
		return &NamingError{Name: name, Kind: "topic", Problem: p, Example: "orders.order.created.v1"}
	}
	if base == "" {
		return fail("is empty")
	}
	if base != strings.ToLower(base) {
		return fail("must be lower-case")
	}
	segs := strings.Split(base, ".")
	if len(segs) != 4 {
		return fail(fmt.Sprintf("has %d dot-separated segments, want 4: domain.entity.event.vN", len(segs)))
	}
	for i, s := range segs[:3] {
		if !segmentRE.MatchString(s) {
			return fail(fmt.Sprintf("segment %d (%s) %q must start with a letter and hold only a-z, 0-9, _ or -", i+1, []string{"domain", "entity", "event"}[i], s))
		}
	}
	if !versionRE.MatchString(segs[3]) {
		return fail(fmt.Sprintf("last segment %q must be a version like v1", segs[3]))
	}
	return nil
}

// LintQueue checks a RabbitMQ queue name against service.action.priority.
func LintQueue(name string) error {
	base := BaseName(name)
	fail := func(p string) error {
		return &NamingError{Name: name, Kind: "queue", Problem: p, Example: "notify.email.high"}
	}
	if base == "" {
		return fail("is empty")
	}
	if base != strings.ToLower(base) {
		return fail("must be lower-case")
	}
	segs := strings.Split(base, ".")
	if len(segs) != 3 {
		return fail(fmt.Sprintf("has %d dot-separated segments, want 3: service.action.priority", len(segs)))
	}
	for i, s := range segs[:2] {
		if !segmentRE.MatchString(s) {
			return fail(fmt.Sprintf("segment %d (%s) %q must start with a letter and hold only a-z, 0-9, _ or -", i+1, []string{"service", "action"}[i], s))
		}
	}
	for _, p := range QueuePriorities {
		if segs[2] == p {
			return nil
		}
	}
	return fail(fmt.Sprintf("priority %q must be one of %s", segs[2], strings.Join(QueuePriorities, ", ")))
}

// DLQTopic returns the dead-letter topic of a Kafka topic: <topic>.dlq.
func DLQTopic(topic string) string { return topic + dlqSuffix }

// DLQQueue returns the dead-letter queue of a RabbitMQ queue: <queue>.dlq.
func DLQQueue(queue string) string { return queue + dlqSuffix }

// QuarantineName returns the quarantine topic or queue: <name>.quarantine.
func QuarantineName(name string) string { return BaseName(name) + quarantineSuffix }

// IsDLQName reports whether name follows the dead-letter convention.
func IsDLQName(name string) bool { return strings.HasSuffix(name, dlqSuffix) }

// BaseName strips a .dlq or .quarantine suffix.
func BaseName(name string) string {
	name = strings.TrimSuffix(name, dlqSuffix)
	return strings.TrimSuffix(name, quarantineSuffix)
}
