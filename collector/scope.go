package collector

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"switchyard/access"
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
//   - switchyard_dlq_entries (resource, tenant): the entries' resource and
//     tenant, exactly as dlqstore's scoped counts.
//
// Any other metric is visible only to principals who may view everything.
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
	alts, err := s.alternatives(ctx, q.Name)
	if err != nil || alts == nil {
		return q, err
	}
	if q.Or == nil {
		q.Or = alts
		return q, nil
	}
	// Both the caller's alternatives and the scope's must hold.
	both := [][]tsdb.Matcher{}
	for _, a := range q.Or {
		for _, b := range alts {
			both = append(both, append(slices.Clip(a), b...))
		}
	}
	q.Or = both
	return q, nil
}

// alternatives are the selectors of the metric's family; nil means no
// restriction, empty means nothing.
func (s *SeriesScope) alternatives(ctx context.Context, name string) ([][]tsdb.Matcher, error) {
	if s.all {
		return nil, nil
	}
	fam := familyOf(name)
	if s.resourcesAll && fam != famOther && !fam.tenanted() {
		return nil, nil
	}
	out := [][]tsdb.Matcher{}
	switch fam {
	case famKafkaCluster:
		var seen []string
		err := s.eachValue(ctx, name, "cluster", func(c string) {
			if all, pats := s.under(access.KafkaTopic(c, "").Name); all || len(pats) > 0 {
				seen = append(seen, c)
			}
		})
		if len(seen) > 0 {
			out = append(out, []tsdb.Matcher{oneOf("cluster", seen)})
		}
		return out, err
	case famKafkaTopic:
		err := s.eachValue(ctx, name, "cluster", func(c string) {
			all, topics := s.under(access.KafkaTopic(c, "").Name)
			if all || len(topics) > 0 {
				out = append(out, append([]tsdb.Matcher{eq("cluster", c)}, globs("topic", topics, all, false)...))
			}
		})
		return out, err
	case famKafkaGroup:
		err := s.eachValue(ctx, name, "cluster", func(c string) {
			gAll, groups := s.under(access.KafkaGroup(c, "").Name)
			if !gAll && len(groups) == 0 {
				return
			}
			tAll, topics := s.under(access.KafkaTopic(c, "").Name)
			alt := append([]tsdb.Matcher{eq("cluster", c)}, globs("group", groups, gAll, false)...)
			// Group-wide series have no topic; per-partition ones need
			// the topic too.
			out = append(out, append(alt, globs("topic", topics, tAll, true)...))
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
		err := s.eachValue(ctx, name, "vhost", func(vh string) {
			all, queues := s.under(access.RabbitQueue(vh, "").Name)
			if all || len(queues) > 0 {
				out = append(out, append([]tsdb.Matcher{eq("vhost", vh)}, globs("queue", queues, all, false)...))
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
			res := tsdb.Matcher{Label: "resource", Op: tsdb.MatchRegexp, Value: ".+"}
			if !slices.ContainsFunc(r.Resources, access.MatchesAll) {
				res.Value = globRegexps(r.Resources)
			}
			out = append(out, withTenants([]tsdb.Matcher{res}, r.Tenants))
		}
		return out, nil
	}
	return out, nil
}

// serviceAlternatives are one rule's selectors of the services' event
// series.
func (s *SeriesScope) serviceAlternatives(r access.Rule) [][]tsdb.Matcher {
	if len(r.Resources) == 0 {
		return nil
	}
	if slices.ContainsFunc(r.Resources, access.MatchesAll) {
		return [][]tsdb.Matcher{withTenants(nil, r.Tenants)}
	}
	var alts [][]tsdb.Matcher
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
		alts = append(alts, append([]tsdb.Matcher{eq("messaging_system", "kafka")}, globs("destination", topics, topicsAll, false)...))
	}
	// A RabbitMQ queue in a vhost it is known in; an unknown queue is
	// taken to be in the default vhost.
	known := map[string]bool{}
	var visible []string
	for _, q := range s.opts.Queues {
		known[q.Name] = true
		for _, p := range r.Resources {
			if access.MatchResource(p, access.RabbitQueue(q.VHost, q.Name).Name) {
				visible = append(visible, q.Name)
			}
		}
	}
	if len(visible) > 0 {
		alts = append(alts, []tsdb.Matcher{eq("messaging_system", "rabbitmq"), oneOf("destination", visible)})
	}
	var defaults []string
	defaultsAll := false
	for _, p := range r.Resources {
		for _, rest := range access.PatternsUnder(p, access.RabbitQueue("/", "").Name) {
			defaultsAll = defaultsAll || access.MatchesAll(rest)
			defaults = append(defaults, rest)
		}
	}
	if defaultsAll || len(defaults) > 0 {
		alt := []tsdb.Matcher{eq("messaging_system", "rabbitmq")}
		if len(known) > 0 {
			alt = append(alt, tsdb.Matcher{Label: "destination", Op: tsdb.MatchNotRegexp, Value: literals(keys(known))})
		}
		alts = append(alts, append(alt, globs("destination", defaults, defaultsAll, false)...))
	}
	// The service's own series (no destination), and destinations of
	// other messaging systems, which name no resource of the console.
	alts = append(alts,
		[]tsdb.Matcher{eq("destination", "")},
		[]tsdb.Matcher{{Label: "messaging_system", Op: tsdb.MatchNotRegexp, Value: "kafka|rabbitmq"}})
	for i, a := range alts {
		alts[i] = withTenants(a, r.Tenants)
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

func (s *SeriesScope) eachValue(ctx context.Context, metric, label string, f func(string)) error {
	if s.opts.Values == nil {
		return nil
	}
	vs, err := s.opts.Values(ctx, metric, label)
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
)

// tenanted families carry a tenant label.
func (f family) tenanted() bool { return f == famService || f == famDLQEntries }

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
	case MDLQEntries:
		return famDLQEntries
	}
	return famOther
}

func eq(label, value string) tsdb.Matcher {
	return tsdb.Matcher{Label: label, Op: tsdb.MatchEqual, Value: value}
}

// globs is the matcher of a label whose values must match one of the
// patterns: none when all, an empty value allowed when orAbsent; no
// pattern at all then leaves only the absent label.
func globs(label string, patterns []string, all, orAbsent bool) []tsdb.Matcher {
	switch {
	case all:
		return nil
	case len(patterns) == 0:
		return []tsdb.Matcher{eq(label, "")}
	}
	re := globRegexps(patterns)
	if orAbsent {
		re = "|" + re
	}
	return []tsdb.Matcher{{Label: label, Op: tsdb.MatchRegexp, Value: re}}
}

func globRegexps(patterns []string) string {
	res := make([]string, len(patterns))
	for i, p := range patterns {
		res[i] = access.GlobRegexp(p)
	}
	return strings.Join(res, "|")
}

// oneOf matches the label against a set of values.
func oneOf(label string, values []string) tsdb.Matcher {
	return tsdb.Matcher{Label: label, Op: tsdb.MatchRegexp, Value: literals(values)}
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
func withTenants(ms []tsdb.Matcher, tenants []string) []tsdb.Matcher {
	if tenants == nil {
		return ms
	}
	out := slices.Clone(ms)
	return append(out, tsdb.Matcher{Label: "tenant", Op: tsdb.MatchRegexp, Value: "|" + literals(tenants)})
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
