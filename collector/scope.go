package collector

import (
	"context"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/tsdb"
)

// SeriesScope is what one principal may read of the stored history,
// written as tsdb selectors (Q.Or), so that the store itself leaves out
// every series the principal may not view, before a point is read — the
// way dlqstore applies a TenantScope inside its SQL. Pages, the series
// API and (next) alerting all narrow their queries through Restrict;
// nothing filters results afterwards.
//
// A series is visible by what its labels name, with the policy's
// semantics (access.MatchResource over access.Rule, one rule at a time):
//
//   - Kafka topic series (cluster, topic): view on kafka:<cluster>/<topic>.
//   - Consumer group series (cluster, group, and topic on per-partition
//     series): view on the group and, when a topic is named, on the topic.
//   - RabbitMQ queue series (vhost, queue): view on rabbitmq:<vhost>/<queue>.
//   - Cluster-wide series (switchyard_kafka_up, switchyard_rabbitmq_up,
//     node alarms): some resource of that cluster (RabbitMQ: some queue).
//   - The services' event_* series: their tenant must be one of the rule's
//     tenants (or empty), and their destination a topic the rule covers
//     on any configured Kafka cluster, or a queue it covers in a vhost
//     the queue is known in (the default vhost if unknown). A series
//     without a destination is the service's own: only its tenant counts.
//   - switchyard_dlq_entries and switchyard_dlq_group_entries_total
//     (resource, tenant): the entries' resource and tenant, exactly as
//     dlqstore's scoped counts.
//   - switchyard_dlq_arrivals_total (broker, cluster, destination): view on
//     the dead-letter topic kafka:<cluster>/<destination>, or on the queue
//     as for the services' series (a vhost it is known in, else the
//     default vhost).
//
// Any other metric is visible only to principals who may view everything.
//
// Restrict narrows a query; Covers checks that a selector can never
// select more than the scope (alert rules and alerts).
type SeriesScope struct {
	rules []access.Rule
	// all: some rule covers every resource of every tenant.
	// resourcesAll: some rule covers every resource (of some tenants),
	// which is all there is to series without a tenant.
	all, resourcesAll bool
	opts              ScopeOptions
}

// ScopeOptions is what a SeriesScope needs to know besides the rules. The
// zero value is safe: series it cannot place are left out for a principal
// who may not view everything.
type ScopeOptions struct {
	// KafkaClusters are the configured Kafka clusters: a service's event
	// series names its topic but not the cluster, so it counts as on any
	// of them.
	KafkaClusters []string
	// Queues are the RabbitMQ queues known to the collector, by vhost: a
	// service's event series names its queue but not the vhost.
	Queues []QueueRef
	// Values lists the values a label has among the stored series of a
	// metric (tsdb.Store.LabelValues with a name matcher). Selectors of
	// Kafka and RabbitMQ series name the cluster or vhost in each
	// alternative, because resource patterns span both labels
	// ("kafka:*/orders"). Nil lists none.
	Values func(ctx context.Context, metric, label string) ([]string, error)
}

// QueueRef names one RabbitMQ queue.
type QueueRef struct {
	VHost, Name string
}

// NewSeriesScope returns the scope of a principal's rules for view
// (access.Policy.Rules(p, access.ActionView)). No rules see nothing.
func NewSeriesScope(rules []access.Rule, opts ScopeOptions) *SeriesScope {
	s := &SeriesScope{rules: rules, opts: opts}
	for _, r := range rules {
		if slices.ContainsFunc(r.Resources, access.MatchesAll) {
			s.resourcesAll = true
			if r.Tenants == nil {
				s.all = true
			}
		}
	}
	return s
}

// All reports whether the scope sees every series.
func (s *SeriesScope) All() bool { return s != nil && s.all }

// Restrict returns q narrowed to the series the scope may see (q.Or set or
// intersected). A nil scope sees nothing. Errors come from Values only.
func (s *SeriesScope) Restrict(ctx context.Context, q tsdb.Q) (tsdb.Q, error) {
	if s == nil {
		q.Or = [][]tsdb.Matcher{}
		return q, nil
	}
	alts, err := s.alternatives(ctx, q.Name, s.storedValues(q.Name))
	if err != nil || alts == nil {
		return q, err
	}
	sel := make([][]tsdb.Matcher, 0, len(alts))
	for _, a := range alts {
		sel = append(sel, a.matchers())
	}
	if q.Or == nil {
		q.Or = sel
		return q, nil
	}
	// Both the caller's alternatives and the scope's must hold.
	both := [][]tsdb.Matcher{}
	for _, a := range q.Or {
		for _, b := range sel {
			both = append(both, append(slices.Clip(a), b...))
		}
	}
	q.Or = both
	return q, nil
}

// valuesOf lists the values of a label that alternatives are built for
// (the cluster or vhost each one names).
type valuesOf func(ctx context.Context, label string) ([]string, error)

// storedValues are the label's values among the stored series of metric
// (ScopeOptions.Values): Restrict names every stored cluster or vhost.
func (s *SeriesScope) storedValues(metric string) valuesOf {
	return func(ctx context.Context, label string) ([]string, error) {
		if s.opts.Values == nil {
			return nil, nil
		}
		return s.opts.Values(ctx, metric, label)
	}
}

// alternatives are the selectors of the metric's family, with clusters and
// vhosts from vals; nil means no restriction, empty means nothing.
func (s *SeriesScope) alternatives(ctx context.Context, name string, vals valuesOf) ([]alt, error) {
	if s.all {
		return nil, nil
	}
	fam := familyOf(name)
	if s.resourcesAll && fam != famOther && !fam.tenanted() {
		return nil, nil
	}
	out := []alt{}
	switch fam {
	case famKafkaCluster:
		var seen []string
		err := eachValue(ctx, vals, "cluster", func(c string) {
			if all, pats := s.under(access.KafkaTopic(c, "").Name); all || len(pats) > 0 {
				seen = append(seen, c)
			}
		})
		if len(seen) > 0 {
			out = append(out, alt{oneOf("cluster", seen)})
		}
		return out, err
	case famKafkaTopic:
		err := eachValue(ctx, vals, "cluster", func(c string) {
			all, topics := s.under(access.KafkaTopic(c, "").Name)
			if all || len(topics) > 0 {
				out = append(out, append(alt{eq("cluster", c)}, globs("topic", topics, all, false, kafkaTopics(c))...))
			}
		})
		return out, err
	case famKafkaGroup:
		err := eachValue(ctx, vals, "cluster", func(c string) {
			gAll, groups := s.under(access.KafkaGroup(c, "").Name)
			if !gAll && len(groups) == 0 {
				return
			}
			tAll, topics := s.under(access.KafkaTopic(c, "").Name)
			a := append(alt{eq("cluster", c)}, globs("group", groups, gAll, false, kafkaGroups(c))...)
			// Group-wide series have no topic; per-partition ones need
			// the topic too.
			out = append(out, append(a, globs("topic", topics, tAll, true, kafkaTopics(c))...))
		})
		return out, err
	case famRabbitCluster:
		for _, vh := range s.vhosts() {
			if all, pats := s.under(access.RabbitQueue(vh, "").Name); all || len(pats) > 0 {
				return nil, nil // resources do not name RabbitMQ clusters
			}
		}
		return out, nil
	case famRabbitQueue:
		err := eachValue(ctx, vals, "vhost", func(vh string) {
			all, queues := s.under(access.RabbitQueue(vh, "").Name)
			if all || len(queues) > 0 {
				out = append(out, append(alt{eq("vhost", vh)}, globs("queue", queues, all, false, rabbitQueues(vh))...))
			}
		})
		return out, err
	case famService:
		for _, r := range s.rules {
			out = append(out, s.serviceAlternatives(r)...)
		}
		return out, nil
	case famDLQEntries:
		for _, r := range s.rules {
			if len(r.Resources) == 0 {
				continue
			}
			// Every recorded series has a resource; one without is from
			// before the label existed and sums every tenant.
			res := cond{label: "resource", set: valueSet{not: true, lits: []string{""}}, allowed: "some resource"}
			if !slices.ContainsFunc(r.Resources, access.MatchesAll) {
				res = cond{label: "resource", set: valueSet{globs: r.Resources}, allowed: strings.Join(r.Resources, ", ")}
			}
			out = append(out, withTenants(alt{res}, r.Tenants))
		}
		return out, nil
	case famDLQArrivals:
		// A dead-letter topic is a topic of its cluster.
		err := eachValue(ctx, vals, "cluster", func(c string) {
			all, topics := s.under(access.KafkaTopic(c, "").Name)
			if all || len(topics) > 0 {
				out = append(out, append(alt{eq("broker", delivery.BrokerKafka), eq("cluster", c)},
					globs("destination", topics, all, false, kafkaTopics(c))...))
			}
		})
		// A dead-letter queue names no vhost: as the services' queues.
		var resources []string
		for _, r := range s.rules {
			resources = append(resources, r.Resources...)
		}
		return append(out, s.queueAlternatives(eq("broker", delivery.BrokerRabbitMQ), "destination", resources)...), err
	}
	return out, nil
}

// serviceAlternatives are one rule's selectors of the services' event
// series.
func (s *SeriesScope) serviceAlternatives(r access.Rule) []alt {
	if len(r.Resources) == 0 {
		return nil
	}
	if slices.ContainsFunc(r.Resources, access.MatchesAll) {
		return []alt{withTenants(nil, r.Tenants)}
	}
	var alts []alt
	// A Kafka topic on any configured cluster.
	var topics []string
	topicsAll := false
	for _, c := range s.opts.KafkaClusters {
		for _, p := range r.Resources {
			for _, rest := range access.PatternsUnder(p, access.KafkaTopic(c, "").Name) {
				topicsAll = topicsAll || access.MatchesAll(rest)
				topics = append(topics, rest)
			}
		}
	}
	if topicsAll || len(topics) > 0 {
		alts = append(alts, append(alt{eq("messaging_system", "kafka")}, globs("destination", topics, topicsAll, false, anyKafkaTopics)...))
	}
	alts = append(alts, s.queueAlternatives(eq("messaging_system", "rabbitmq"), "destination", r.Resources)...)
	// The service's own series (no destination), and destinations of
	// other messaging systems, which name no resource of the console.
	alts = append(alts,
		alt{eq("destination", "")},
		alt{{label: "messaging_system", set: valueSet{not: true, lits: []string{"kafka", "rabbitmq"}}}})
	for i, a := range alts {
		alts[i] = withTenants(a, r.Tenants)
	}
	return alts
}

// queueAlternatives select series (first cond: of RabbitMQ) whose label
// names a queue but no vhost, under resources: a queue in a vhost it is
// known in; an unknown queue is taken to be in the default vhost.
func (s *SeriesScope) queueAlternatives(first cond, label string, resources []string) []alt {
	var alts []alt
	known := map[string]bool{}
	var visible []string
	for _, q := range s.opts.Queues {
		known[q.Name] = true
		for _, p := range resources {
			if access.MatchResource(p, access.RabbitQueue(q.VHost, q.Name).Name) {
				visible = append(visible, q.Name)
			}
		}
	}
	if len(visible) > 0 {
		alts = append(alts, alt{first, oneOf(label, visible)})
	}
	var defaults []string
	defaultsAll := false
	for _, p := range resources {
		for _, rest := range access.PatternsUnder(p, access.RabbitQueue("/", "").Name) {
			defaultsAll = defaultsAll || access.MatchesAll(rest)
			defaults = append(defaults, rest)
		}
	}
	if defaultsAll || len(defaults) > 0 {
		a := alt{first}
		if len(known) > 0 {
			a = append(a, cond{label: label, set: valueSet{not: true, lits: keys(known)}, allowed: "queues not known in a vhost"})
		}
		alts = append(alts, append(a, globs(label, defaults, defaultsAll, false, rabbitQueues("/"))...))
	}
	return alts
}

// under is what the rules allow of names under prefix: all, or the
// patterns the rest of a name must match (union over rules; tenants do
// not matter for resources without a tenant).
func (s *SeriesScope) under(prefix string) (all bool, patterns []string) {
	for _, r := range s.rules {
		for _, p := range r.Resources {
			for _, rest := range access.PatternsUnder(p, prefix) {
				if access.MatchesAll(rest) {
					return true, nil
				}
				patterns = append(patterns, rest)
			}
		}
	}
	slices.Sort(patterns)
	return false, slices.Compact(patterns)
}

func eachValue(ctx context.Context, vals valuesOf, label string, f func(string)) error {
	vs, err := vals(ctx, label)
	if err != nil {
		return err
	}
	for _, v := range vs {
		f(v)
	}
	return nil
}

// vhosts are the vhosts of the known queues and the default one.
func (s *SeriesScope) vhosts() []string {
	out := []string{"/"}
	for _, q := range s.opts.Queues {
		if !slices.Contains(out, q.VHost) {
			out = append(out, q.VHost)
		}
	}
	return out
}

type family int

const (
	famOther family = iota
	famKafkaCluster
	famKafkaTopic
	famKafkaGroup
	famRabbitCluster
	famRabbitQueue
	famService
	famDLQEntries
	famDLQArrivals
)

// tenanted families carry a tenant label.
func (f family) tenanted() bool { return f == famService || f == famDLQEntries }

// pin is the label whose value each alternative of the family names (one
// alternative per stored cluster or vhost), "" when none does.
func (f family) pin() string {
	switch f {
	case famKafkaCluster, famKafkaTopic, famKafkaGroup, famDLQArrivals:
		return "cluster"
	case famRabbitQueue:
		return "vhost"
	}
	return ""
}

func familyOf(name string) family {
	switch name {
	case MKafkaUp:
		return famKafkaCluster
	case MKafkaHighWatermark, MKafkaLowWatermark, MKafkaPartitionRate, MKafkaTopicRate, MKafkaTopicMessages, MKafkaDLQMessages:
		return famKafkaTopic
	case MGroupLag, MGroupLagSeconds, MGroupPartitionStatus, MGroupTotalLag, MGroupMaxLagSeconds, MGroupStatus, MGroupMembers, MGroupConsumeRate:
		return famKafkaGroup
	case MRabbitUp, MRabbitNodeAlarm:
		return famRabbitCluster
	case MQueueReady, MQueueUnacked, MQueueMessages, MQueueConsumers, MQueueUtilisation,
		MQueuePublishRate, MQueueDeliverRate, MQueueAckRate, MQueueRedeliverRate, MQueueIsDLQ:
		return famRabbitQueue
	case PromEventProcessed, PromEventFailed, PromEventDuration + "_bucket", PromEventDuration + "_sum", PromEventDuration + "_count":
		return famService
	case MDLQEntries, MDLQGroupEntries:
		return famDLQEntries
	case MDLQArrivals:
		return famDLQArrivals
	}
	return famOther
}

// alt is one alternative of a scope: a conjunction of conditions.
type alt []cond

func (a alt) matchers() []tsdb.Matcher {
	out := make([]tsdb.Matcher, len(a))
	for i, c := range a {
		out[i] = c.matcher()
	}
	return out
}

// cond is one matcher of a scope's alternative kept as the set of values
// it lets through, so that Covers compares a rule's matchers with what the
// scope allows without reading regular expressions back.
type cond struct {
	label string
	set   valueSet
	// allowed says what the set allows in the policy's words
	// ("kafka:prod/orders.*"), for Covers' reasons.
	allowed string
}

// valueSet is a set of label values ("" standing for an absent label, as
// tsdb matchers read it): lits and the names matching globs (resource
// pattern syntax, access.MatchResource), or, when not, every value but
// lits.
type valueSet struct {
	not   bool
	lits  []string
	globs []string
}

// matcher is the tsdb matcher of c.
func (c cond) matcher() tsdb.Matcher {
	m := tsdb.Matcher{Label: c.label}
	switch {
	case len(c.set.lits) == 1 && len(c.set.globs) == 0:
		m.Op, m.Value = tsdb.MatchEqual, c.set.lits[0]
		if c.set.not {
			m.Op = tsdb.MatchNotEqual
		}
	case c.set.not:
		m.Op, m.Value = tsdb.MatchNotRegexp, literals(c.set.lits)
	case len(c.set.lits) == 0 && len(c.set.globs) == 0:
		m.Op, m.Value = tsdb.MatchRegexp, `[^\x00-\x{10FFFF}]` // no value: not even ""
	default:
		var res []string
		if len(c.set.lits) > 0 {
			res = append(res, literals(c.set.lits))
		}
		if len(c.set.globs) > 0 {
			res = append(res, globRegexps(c.set.globs))
		}
		m.Op, m.Value = tsdb.MatchRegexp, strings.Join(res, "|")
	}
	return m
}

func (c cond) describe() string {
	if c.allowed != "" {
		return c.allowed
	}
	vs := make([]string, 0, len(c.set.lits)+len(c.set.globs))
	for _, v := range c.set.lits {
		vs = append(vs, strconv.Quote(v))
	}
	vs = append(vs, c.set.globs...)
	if c.set.not {
		return "anything but " + strings.Join(vs, ", ")
	}
	return strings.Join(vs, ", ")
}

func eq(label, value string) cond {
	return cond{label: label, set: valueSet{lits: []string{value}}}
}

// How globs spells the patterns it is given as resources, for reasons.
func kafkaTopics(cluster string) func(string) string {
	return func(p string) string { return access.KafkaTopic(cluster, p).Name }
}

func kafkaGroups(cluster string) func(string) string {
	return func(p string) string { return access.KafkaGroup(cluster, p).Name }
}

func rabbitQueues(vhost string) func(string) string {
	return func(p string) string { return access.RabbitQueue(vhost, p).Name }
}

func anyKafkaTopics(p string) string { return "topic " + p + " of a configured cluster" }

// globs is the condition on a label whose values must match one of the
// patterns (spelled as resources by name): none when all, an empty value
// allowed when orAbsent; no pattern at all then leaves only the absent
// label.
func globs(label string, patterns []string, all, orAbsent bool, name func(string) string) []cond {
	switch {
	case all:
		return nil
	case len(patterns) == 0:
		return []cond{{label: label, set: valueSet{lits: []string{""}}, allowed: "no " + label}}
	}
	c := cond{label: label, set: valueSet{globs: patterns}}
	names := make([]string, len(patterns))
	for i, p := range patterns {
		names[i] = name(p)
	}
	c.allowed = strings.Join(names, ", ")
	if orAbsent {
		c.set.lits = []string{""}
		c.allowed += " or no " + label
	}
	return []cond{c}
}

func globRegexps(patterns []string) string {
	res := make([]string, len(patterns))
	for i, p := range patterns {
		res[i] = access.GlobRegexp(p)
	}
	return strings.Join(res, "|")
}

// oneOf matches the label against a set of values.
func oneOf(label string, values []string) cond {
	vs := slices.Clone(values)
	slices.Sort(vs)
	return cond{label: label, set: valueSet{lits: slices.Compact(vs)}}
}

func literals(values []string) string {
	vs := slices.Clone(values)
	slices.Sort(vs)
	vs = slices.Compact(vs)
	for i, v := range vs {
		vs[i] = regexp.QuoteMeta(v)
	}
	return strings.Join(vs, "|")
}

// withTenants adds the rule's tenant restriction: its tenants, or none
// (access.Grant semantics: untenanted series are the rule's too).
func withTenants(a alt, tenants []string) alt {
	if tenants == nil {
		return a
	}
	allowed := "no tenant"
	if len(tenants) > 0 {
		allowed = "tenants " + strings.Join(tenants, ", ") + " or none"
	}
	return append(slices.Clone(a), cond{label: "tenant", set: valueSet{lits: append([]string{""}, tenants...)}, allowed: allowed})
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Covers reports whether every series of metric name that matchers ms can
// ever select — now or in the future — is within the scope. It is the
// write check of alert rules (scope built from Policy.Rules(p,
// access.ActionManageAlerts)) and the read check of alerts (scope of view,
// with the alert's own labels added as equality matchers). A nil scope
// covers nothing; an all scope covers all.
//
// It is sound, not complete: when it cannot prove containment it says no,
// and why says what to pin ("name the cluster with cluster=\"…\"",
// "topic=~\"orders.*\" is wider than kafka:prod/orders.*"). The proof is
// that one of the scope's alternatives (Restrict's selectors) is implied
// by ms: each of its conditions by a matcher of ms on the same label,
// whose values (over-approximated: a regular expression read as a union
// of globs, "." as "?" and any repetition as "*") all lie in the
// condition's. The alternatives of Kafka and RabbitMQ series each name a
// cluster or vhost, so ms must name it too, with an equality or a
// literal alternation; each value named is checked on its own, for the
// cluster or vhost whether or not the history holds it yet. Errors: ctx's.
func (s *SeriesScope) Covers(ctx context.Context, name string, ms []tsdb.Matcher) (ok bool, why string, err error) {
	if s == nil {
		return false, "nothing is in your scope", nil
	}
	if err := ctx.Err(); err != nil {
		return false, "", err
	}
	sel := newSelector(ms)
	fam := familyOf(name)
	pin := fam.pin()
	namePin := fmt.Sprintf("name the %s with %s=\"…\"", pin, pin)
	vals, pinned := sel.literals(pin)
	if !pinned {
		alts, err := s.alternatives(ctx, name, noValues)
		if err != nil || alts == nil {
			return err == nil, "", err
		}
		ok, why, onPath := sel.impliesSome(alts)
		switch {
		case ok:
			return true, "", nil
		case pin != "" && !onPath:
			// Not a series of the alternatives that name no cluster
			// (RabbitMQ's among the arrivals).
			return false, namePin, nil
		case len(alts) == 0 && fam == famOther:
			return false, fmt.Sprintf("%s names no topic, group or queue: only who may view everything may use it", name), nil
		case len(alts) == 0:
			return false, fmt.Sprintf("nothing of %s is in your scope", name), nil
		}
		return false, why, nil
	}
	for _, v := range vals {
		if v == "" {
			// Restrict names only stored clusters and vhosts: a series
			// without one is in no alternative.
			return false, namePin, nil
		}
		alts, err := s.alternatives(ctx, name, func(_ context.Context, label string) ([]string, error) {
			if label == pin {
				return []string{v}, nil
			}
			return nil, nil
		})
		if err != nil || alts == nil {
			return err == nil, "", err
		}
		if ok, why, _ := sel.with(pin, v).impliesSome(alts); !ok {
			if !slices.ContainsFunc(alts, func(a alt) bool { return a.names(pin, v) }) {
				why = fmt.Sprintf("no %s of %s %q is in your scope", name, pin, v)
			}
			return false, why, nil
		}
	}
	return true, "", nil
}

func noValues(context.Context, string) ([]string, error) { return nil, nil }

// names reports whether a's condition on label lets value through.
func (a alt) names(label, value string) bool {
	return slices.ContainsFunc(a, func(c cond) bool {
		return c.label == label && !c.set.not && slices.Contains(c.set.lits, value)
	})
}

// selector is a rule's matchers by label, each with the set of values it
// lets through, over-approximated; known is false when that set could not
// be told (any value, then).
type selector map[string][]selMatcher

type selMatcher struct {
	m     tsdb.Matcher
	set   valueSet
	known bool
}

func newSelector(ms []tsdb.Matcher) selector {
	sel := selector{}
	for _, m := range ms {
		set, known := matcherSet(m)
		sel[m.Label] = append(sel[m.Label], selMatcher{m: m, set: set, known: known})
	}
	return sel
}

// literals are the values some matcher confines label to, when one does.
func (sel selector) literals(label string) ([]string, bool) {
	if label == "" {
		return nil, false
	}
	for _, u := range sel[label] {
		if u.known && !u.set.not && len(u.set.globs) == 0 {
			return u.set.lits, true
		}
	}
	return nil, false
}

// with is sel and label=value.
func (sel selector) with(label, value string) selector {
	out := make(selector, len(sel)+1)
	for l, us := range sel {
		out[l] = us
	}
	c := eq(label, value)
	out[label] = append(slices.Clip(sel[label]), selMatcher{m: c.matcher(), set: c.set, known: true})
	return out
}

// impliesSome reports whether sel implies one of alts. If not, why names
// the first condition sel misses in the alternative it comes closest to:
// first those whose leading condition (the kind of series: cluster,
// broker, messaging system) it implies, then those whose leading label it
// leaves open, then the others, each by the fewest misses; onPath says
// whether that one's leading condition holds.
func (sel selector) impliesSome(alts []alt) (ok bool, why string, onPath bool) {
	best := -1
	for _, a := range alts {
		missing, first, tier := 0, "", 0
		for i, c := range a {
			if ok, r := sel.implies(c); !ok {
				missing++
				if i == 0 {
					tier = 1
					if len(sel[c.label]) > 0 {
						tier = 2
					}
				}
				if first == "" {
					first = r
				}
			}
		}
		if missing == 0 {
			return true, "", true
		}
		if score := tier*1000 + missing; best < 0 || score < best {
			best, why, onPath = score, first, tier == 0
		}
	}
	return false, why, onPath
}

func (sel selector) implies(c cond) (bool, string) {
	us := sel[c.label]
	if len(us) == 0 {
		return false, fmt.Sprintf("name the %s with %s=\"…\" (%s)", c.label, c.label, c.describe())
	}
	for _, u := range us {
		if u.known && u.set.within(c.set) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("%s is wider than %s", us[0].m, c.describe())
}

// within reports whether every value of u (a selector's set) is in s (a
// scope condition's).
func (u valueSet) within(s valueSet) bool {
	switch {
	case u.not && s.not:
		// Every value but u.lits is in "every value but s.lits" when
		// s.lits ⊆ u.lits.
		return !slices.ContainsFunc(s.lits, func(v string) bool { return !slices.Contains(u.lits, v) })
	case u.not:
		return false
	case s.not:
		for _, v := range s.lits {
			if slices.Contains(u.lits, v) || slices.ContainsFunc(u.globs, func(g string) bool { return access.MatchResource(g, v) }) {
				return false
			}
		}
		return true
	}
	for _, v := range u.lits {
		if !slices.Contains(s.lits, v) && !slices.ContainsFunc(s.globs, func(p string) bool { return access.MatchResource(p, v) }) {
			return false
		}
	}
	for _, g := range u.globs {
		if !slices.ContainsFunc(s.globs, func(p string) bool { return globContains(p, g) }) {
			return false
		}
	}
	return true
}

// globContains reports whether every name glob g matches, pattern p
// matches too. It matches p against g's own text, g's wildcards read as
// characters: p's literals then stand on g's literals (p holds no '*' or
// '?' but as wildcards, the glob syntax having no escapes), p's stars
// span whatever g has there, and a '?' of p one character of g — which
// is sound unless that character is a star of g, which stands for any
// number of characters, so a p with '?' is refused against a g with '*'
// (sound, if not complete).
func globContains(p, g string) bool {
	if strings.Contains(p, "?") && strings.Contains(g, "*") {
		return false
	}
	return access.MatchResource(p, g)
}

// matcherSet is the set of values m lets through: exact for equalities
// and for a regular expression's negation when it is a list of literals,
// an over-approximation for a regular expression (a union of globs);
// known is false when it cannot tell.
func matcherSet(m tsdb.Matcher) (set valueSet, known bool) {
	switch m.Op {
	case tsdb.MatchEqual:
		return valueSet{lits: []string{m.Value}}, true
	case tsdb.MatchNotEqual:
		return valueSet{not: true, lits: []string{m.Value}}, true
	case tsdb.MatchRegexp:
		gs, ok := regexpLanguage(m.Value, false)
		if !ok {
			return valueSet{}, false
		}
		for _, g := range gs {
			if strings.ContainsAny(g, "*?") {
				set.globs = append(set.globs, g)
			} else {
				set.lits = append(set.lits, g)
			}
		}
		return set, true
	case tsdb.MatchNotRegexp:
		lits, ok := regexpLanguage(m.Value, true)
		return valueSet{not: true, lits: lits}, ok
	}
	return valueSet{}, false
}

// maxLanguage bounds the globs one regular expression is read as.
const maxLanguage = 64

// regexpLanguage reads an anchored regular expression (tsdb and PromQL
// anchor theirs) as the union of globs whose names it can match: a
// superset of its language, where "." and any class but a small one are
// "?", and any repetition "*" (a literal '*' or '?' it names turns into a
// wildcard too, a superset still). With exact, only a finite list of
// literal values is read (ok false otherwise), for the negations, whose
// superset would need a subset of the expression's language.
func regexpLanguage(re string, exact bool) ([]string, bool) {
	r, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil, false
	}
	out, ok := language(r.Simplify(), exact)
	if !ok {
		return nil, false
	}
	for i, g := range out {
		if !exact {
			for strings.Contains(g, "**") {
				g = strings.ReplaceAll(g, "**", "*")
			}
			out[i] = g
		}
	}
	slices.Sort(out)
	return slices.Compact(out), true
}

func language(r *syntax.Regexp, exact bool) ([]string, bool) {
	switch r.Op {
	case syntax.OpNoMatch:
		return []string{}, true
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		// An assertion matches no character: reading it as empty only
		// widens the language.
		return []string{""}, !exact
	case syntax.OpLiteral:
		var b strings.Builder
		for _, c := range r.Rune {
			if r.Flags&syntax.FoldCase != 0 && unicode.SimpleFold(c) != c {
				if exact {
					return nil, false
				}
				b.WriteByte('?')
				continue
			}
			b.WriteRune(c)
		}
		return []string{b.String()}, true
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(r.Rune) && len(out) <= 16; i += 2 {
			for c := r.Rune[i]; c <= r.Rune[i+1] && len(out) <= 16; c++ {
				out = append(out, string(c))
			}
		}
		if len(out) <= 16 {
			return out, true
		}
		return []string{"?"}, !exact
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return []string{"?"}, !exact
	case syntax.OpStar, syntax.OpPlus, syntax.OpRepeat:
		return []string{"*"}, !exact
	case syntax.OpCapture:
		return language(r.Sub[0], exact)
	case syntax.OpQuest:
		sub, ok := language(r.Sub[0], exact)
		return append(sub, ""), ok
	case syntax.OpConcat:
		out := []string{""}
		for _, sub := range r.Sub {
			gs, ok := language(sub, exact)
			if !ok || len(out)*len(gs) > maxLanguage {
				return nil, false
			}
			next := make([]string, 0, len(out)*len(gs))
			for _, a := range out {
				for _, b := range gs {
					next = append(next, a+b)
				}
			}
			out = next
		}
		return out, true
	case syntax.OpAlternate:
		out := []string{}
		for _, sub := range r.Sub {
			gs, ok := language(sub, exact)
			if !ok || len(out)+len(gs) > maxLanguage {
				return nil, false
			}
			out = append(out, gs...)
		}
		return out, true
	}
	return nil, false
}
