package collector_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/tsdb"
)

// scopeHistory is a history holding series of every family a SeriesScope
// places, and the policy's own answer for each series (want).
type scopeHistory struct {
	st       *tsdb.Store
	now      time.Time
	clusters []string
	queues   []collector.QueueRef
	opts     collector.ScopeOptions
}

func newScopeHistory(t *testing.T) *scopeHistory {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	st, err := tsdb.Open(ctx, tsdb.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	clusters := []string{"demo", "prod"}
	// orders.created.dl2q: matched by orders.created.d*q, not by
	// orders.created.d?q.
	topics := []string{"orders.created", "orders.created.dlq", "pay.settled", "orders.created.dl2q"}
	groups := []string{"billing", "orders-audit"}
	queues := []collector.QueueRef{{VHost: "/", Name: "mail.high"}, {VHost: "stg", Name: "mail.high"}, {VHost: "stg", Name: "sms.low"}}
	tenants := []string{"", "t1", "t2"}
	var samples []tsdb.Sample
	add := func(nv ...string) {
		samples = append(samples, tsdb.Sample{Series: tsdb.L(nv...), T: now.Add(-time.Minute), V: 1})
	}
	for _, c := range clusters {
		add(tsdb.MetricName, collector.MKafkaUp, "cluster", c)
		for _, tp := range topics {
			add(tsdb.MetricName, collector.MKafkaTopicMessages, "cluster", c, "topic", tp)
			add(tsdb.MetricName, collector.MDLQArrivals, "broker", "kafka", "cluster", c, "destination", tp)
			for _, g := range groups {
				add(tsdb.MetricName, collector.MGroupLag, "cluster", c, "group", g, "topic", tp, "partition", "0")
			}
		}
		for _, g := range groups {
			add(tsdb.MetricName, collector.MGroupTotalLag, "cluster", c, "group", g)
		}
	}
	for _, q := range queues {
		add(tsdb.MetricName, collector.MQueueMessages, "cluster", "mq", "vhost", q.VHost, "queue", q.Name)
	}
	// A queue known in two vhosts, one only in stg, one nowhere.
	for _, q := range []string{"mail.high", "sms.low", "push.new"} {
		add(tsdb.MetricName, collector.MDLQArrivals, "broker", "rabbitmq", "cluster", "mq", "destination", q)
	}
	for _, tn := range tenants {
		for _, tp := range topics {
			add(tsdb.MetricName, collector.PromEventProcessed, "service", "billing", "messaging_system", "kafka", "destination", tp, "tenant", tn)
			add(tsdb.MetricName, collector.MDLQEntries, "broker", "kafka", "cluster", "demo", "destination", tp+".dlq", "state", "dead",
				"tenant", tn, "resource", access.KafkaTopic("demo", tp).Name)
			add(tsdb.MetricName, collector.MDLQGroupEntries, "broker", "kafka", "cluster", "demo", "destination", tp+".dlq",
				"tenant", tn, "resource", access.KafkaTopic("demo", tp).Name, "dlq_group", "7", "error_code", "OUT_OF_STOCK")
		}
		for _, q := range []string{"mail.high", "sms.low", "push.new"} {
			add(tsdb.MetricName, collector.PromEventProcessed, "service", "notify", "messaging_system", "rabbitmq", "destination", q, "tenant", tn)
		}
		add(tsdb.MetricName, collector.PromEventProcessed, "service", "cron", "tenant", tn)
		add(tsdb.MetricName, collector.PromEventProcessed, "service", "mailer", "messaging_system", "smtp", "destination", "relay", "tenant", tn)
	}
	// Recorded before the dead-letter series had tenants: every tenant's.
	add(tsdb.MetricName, collector.MDLQEntries, "broker", "kafka", "cluster", "demo", "destination", "orders.created.dlq", "state", "dead")
	add(tsdb.MetricName, collector.MJobsPaused)
	if err := st.Append(ctx, samples); err != nil {
		t.Fatal(err)
	}
	return &scopeHistory{st: st, now: now, clusters: clusters, queues: queues, opts: collector.ScopeOptions{
		KafkaClusters: clusters, Queues: queues,
		Values: func(ctx context.Context, metric, label string) ([]string, error) {
			return st.LabelValues(ctx, label, tsdb.Matcher{Label: tsdb.MetricName, Op: tsdb.MatchEqual, Value: metric})
		},
	}}
}

// want is the policy's own answer for one series: may p view it?
func (h *scopeHistory) want(t *testing.T, p *access.Principal, ls tsdb.Labels) bool {
	var pol access.Policy
	can := func(name, tenant string) bool {
		return pol.Can(p, access.ActionView, access.Resource{Name: name, Tenant: tenant})
	}
	vhostsOf := func(queue string) []string {
		var out []string
		for _, q := range h.queues {
			if q.Name == queue {
				out = append(out, q.VHost)
			}
		}
		if out == nil {
			out = []string{"/"}
		}
		return out
	}
	everything := slices.ContainsFunc(p.Grants, func(g access.Grant) bool {
		return slices.Contains(g.Resources, "*") && slices.Contains(g.Tenants, "*")
	})
	c, tn := ls.Get("cluster"), ls.Get("tenant")
	switch ls.Name() {
	case collector.MKafkaTopicMessages:
		return can(access.KafkaTopic(c, ls.Get("topic")).Name, "")
	case collector.MGroupLag, collector.MGroupTotalLag:
		return can(access.KafkaGroup(c, ls.Get("group")).Name, "") &&
			(ls.Get("topic") == "" || can(access.KafkaTopic(c, ls.Get("topic")).Name, ""))
	case collector.MQueueMessages:
		return can(access.RabbitQueue(ls.Get("vhost"), ls.Get("queue")).Name, "")
	case collector.MDLQEntries, collector.MDLQGroupEntries:
		if ls.Get("resource") == "" {
			return everything // sums every tenant
		}
		return can(ls.Get("resource"), tn)
	case collector.MDLQArrivals:
		dest := ls.Get("destination")
		if ls.Get("broker") == "kafka" {
			return can(access.KafkaTopic(c, dest).Name, "")
		}
		return slices.ContainsFunc(vhostsOf(dest), func(vh string) bool { return can(access.RabbitQueue(vh, dest).Name, "") })
	case collector.MJobsPaused:
		return everything
	case collector.PromEventProcessed:
		dest := ls.Get("destination")
		switch {
		case dest == "" || (ls.Get("messaging_system") != "kafka" && ls.Get("messaging_system") != "rabbitmq"):
			return can("*", tn)
		case ls.Get("messaging_system") == "kafka":
			return slices.ContainsFunc(h.clusters, func(c string) bool { return can(access.KafkaTopic(c, dest).Name, tn) })
		default:
			return slices.ContainsFunc(vhostsOf(dest), func(vh string) bool { return can(access.RabbitQueue(vh, dest).Name, tn) })
		}
	}
	t.Fatalf("no reference for %s", ls)
	return false
}

// referenced are the metrics want knows.
var referenced = []string{collector.MKafkaTopicMessages, collector.MGroupLag, collector.MGroupTotalLag, collector.MQueueMessages,
	collector.MDLQEntries, collector.MDLQGroupEntries, collector.MDLQArrivals, collector.MJobsPaused, collector.PromEventProcessed}

// randomPrincipal has one to three view grants of random patterns and
// tenants.
func randomPrincipal(rng *rand.Rand, i int) *access.Principal {
	patterns := []string{"*", "kafka:*", "kafka:demo/*", "kafka:*/orders.*", "kafka:prod/pay.settled", "kafka:demo/group/*",
		"kafka:*/group/bill*", "kafka:demo/orders.created", "rabbitmq:*", "rabbitmq:/*", "rabbitmq:stg/*", "rabbitmq:stg/mail.high", "rabbitmq:/push.new", "rabbitmq:/sms.low",
		"kafka:demo/orders.created.d?q", "kafka:demo/orders.*.dlq"}
	tenantSets := [][]string{{"*"}, {"t1"}, {"t1", "t2"}, {"t2"}, {}}
	p := &access.Principal{User: fmt.Sprint("u", i)}
	for range 1 + rng.IntN(3) {
		var res []string
		for range 1 + rng.IntN(3) {
			res = append(res, patterns[rng.IntN(len(patterns))])
		}
		p.Grants = append(p.Grants, access.Grant{Actions: []access.Action{access.ActionView}, Resources: res, Tenants: tenantSets[rng.IntN(len(tenantSets))]})
	}
	return p
}

// The series a SeriesScope selects in the store are exactly those the
// policy lets the principal view, series family by family, for random
// bindings: resources by the policy's globs, tenants by the rule that
// grants the resource.
func TestSeriesScopeSelectsWhatThePolicyAllows(t *testing.T) {
	ctx := context.Background()
	h := newScopeHistory(t)
	var pol access.Policy
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 200 {
		p := randomPrincipal(rng, i)
		scope := collector.NewSeriesScope(pol.Rules(p, access.ActionView), h.opts)
		for _, name := range referenced {
			all, err := h.st.Query(ctx, tsdb.Q{Name: name, From: h.now.Add(-time.Hour), To: h.now, Step: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			q, err := scope.Restrict(ctx, tsdb.Q{Name: name, From: h.now.Add(-time.Hour), To: h.now, Step: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			got, err := h.st.Query(ctx, q)
			if err != nil {
				t.Fatalf("%+v: %v", q.Or, err)
			}
			selected := map[string]bool{}
			for _, sr := range got {
				selected[sr.Labels.String()] = true
			}
			for _, sr := range all {
				if w := h.want(t, p, sr.Labels); selected[sr.Labels.String()] != w {
					t.Fatalf("grants %+v: %s selected = %v, the policy says %v\nselector: %v", p.Grants, sr.Labels, !w, w, q.Or)
				}
			}
		}
	}
}

// Cluster-wide series show to whoever may view something of the cluster,
// and a metric the scope does not know only to who may view everything.
func TestSeriesScopeClusterAndUnknownSeries(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	st, err := tsdb.Open(ctx, tsdb.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var samples []tsdb.Sample
	for _, c := range []string{"demo", "prod"} {
		samples = append(samples, tsdb.Sample{Series: tsdb.L(tsdb.MetricName, collector.MKafkaUp, "cluster", c), T: now, V: 1})
	}
	samples = append(samples,
		tsdb.Sample{Series: tsdb.L(tsdb.MetricName, collector.MRabbitUp, "cluster", "mq"), T: now, V: 1},
		tsdb.Sample{Series: tsdb.L(tsdb.MetricName, "some_future_metric", "tenant", "t2"), T: now, V: 1})
	if err := st.Append(ctx, samples); err != nil {
		t.Fatal(err)
	}
	opts := collector.ScopeOptions{Values: func(ctx context.Context, metric, label string) ([]string, error) {
		return st.LabelValues(ctx, label, tsdb.Matcher{Label: tsdb.MetricName, Op: tsdb.MatchEqual, Value: metric})
	}}
	read := func(rules []access.Rule, name string) []string {
		t.Helper()
		q, err := collector.NewSeriesScope(rules, opts).Restrict(ctx, tsdb.Q{Name: name, From: now.Add(-time.Hour), To: now, Step: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range got {
			out = append(out, s.Labels.Get("cluster")+s.Labels.Get("tenant"))
		}
		return out
	}
	demo := []access.Rule{{Resources: []string{"kafka:demo/orders.*"}, Tenants: []string{"t1"}}}
	everything := []access.Rule{{Resources: []string{"*"}}}
	t1Everywhere := []access.Rule{{Resources: []string{"*"}, Tenants: []string{"t1"}}}
	for _, tc := range []struct {
		name  string
		rules []access.Rule
		want  []string
	}{
		{collector.MKafkaUp, demo, []string{"demo"}},
		{collector.MKafkaUp, everything, []string{"demo", "prod"}},
		{collector.MRabbitUp, demo, nil},
		{collector.MRabbitUp, []access.Rule{{Resources: []string{"rabbitmq:/notify.*"}}}, []string{"mq"}},
		{"some_future_metric", t1Everywhere, nil},
		{"some_future_metric", everything, []string{"t2"}},
		{collector.MKafkaUp, nil, nil},
	} {
		if got := read(tc.rules, tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("%s with %+v = %v, want %v", tc.name, tc.rules, got, tc.want)
		}
	}
	// A nil scope sees nothing.
	var none *collector.SeriesScope
	if q, _ := none.Restrict(ctx, tsdb.Q{Name: collector.MKafkaUp}); q.Or == nil || len(q.Or) != 0 {
		t.Errorf("nil scope selector = %v, want nothing", q.Or)
	}
}

func ms(t *testing.T, sel ...string) []tsdb.Matcher {
	t.Helper()
	out := make([]tsdb.Matcher, 0, len(sel))
	for _, s := range sel {
		m, err := tsdb.ParseMatcher(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// A rule's matchers are covered when they stay inside the principal's
// patterns, whatever series appear later; when they do not, the reason
// says what to pin.
func TestSeriesScopeCovers(t *testing.T) {
	ctx := context.Background()
	var pol access.Policy
	grant := func(tenants []string, resources ...string) *access.Principal {
		return &access.Principal{User: "op", Grants: []access.Grant{{Actions: []access.Action{access.ActionManageAlerts},
			Resources: resources, Tenants: tenants}}}
	}
	opts := collector.ScopeOptions{KafkaClusters: []string{"prod", "dev"}, Queues: []collector.QueueRef{{VHost: "stg", Name: "mail.high"}}}
	scope := func(p *access.Principal) *collector.SeriesScope {
		return collector.NewSeriesScope(pol.Rules(p, access.ActionManageAlerts), opts)
	}
	operator := scope(grant([]string{"t1"}, "kafka:prod/orders.*"))
	// The same with the orders consumer groups: groups are
	// kafka:<cluster>/group/<name>, which kafka:prod/orders.* leaves out.
	withGroups := scope(grant([]string{"t1"}, "kafka:prod/orders.*", "kafka:prod/group/orders-*"))
	queues := scope(grant(nil, "rabbitmq:/notify.*", "rabbitmq:stg/mail.*"))
	admin := scope(grant([]string{"*"}, "*"))
	// One character, whatever it is: a star of the rule's may stand for
	// more.
	twoLetters := scope(grant(nil, "kafka:prod/orders.??"))
	upper := scope(grant(nil, "kafka:prod/ORDERS.*"))

	for _, tc := range []struct {
		scope *collector.SeriesScope
		name  string
		sel   []string
		ok    bool
		why   string // part of the reason when not ok
	}{
		// Topics: the cluster and a topic within orders.*.
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic="orders.eu"`}, true, ""},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"orders\\.eu.*"`}, true, ""},
		{operator, collector.MKafkaTopicMessages, []string{`cluster=~"prod"`, `topic=~"orders\\.(eu|us)"`}, true, ""},
		{operator, collector.MKafkaHighWatermark, []string{`cluster="prod"`, `topic=~"orders\\..+"`, `partition="0"`}, true, ""},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"orders.*"`}, false, `topic=~"orders.*" is wider than kafka:prod/orders.*`},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic!="payments"`}, false, `topic!="payments" is wider than kafka:prod/orders.*`},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`}, false, `name the topic with topic="…" (kafka:prod/orders.*)`},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="dev"`, `topic="orders"`}, false, `no switchyard_kafka_topic_messages of cluster "dev" is in your scope`},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic="orders"`}, false, `topic="orders" is wider than kafka:prod/orders.*`},
		{operator, collector.MKafkaTopicMessages, []string{`cluster=~".*"`, `topic="orders.eu"`}, false, `name the cluster with cluster="…"`},
		{operator, collector.MKafkaTopicMessages, []string{`topic="orders.eu"`}, false, `name the cluster with cluster="…"`},
		{operator, collector.MKafkaTopicMessages, []string{`cluster=~"prod|dev"`, `topic="orders.eu"`}, false, `of cluster "dev" is in your scope`},
		{operator, collector.MKafkaTopicMessages, []string{`cluster=""`, `topic="orders.eu"`}, false, `name the cluster`},
		{operator, collector.MKafkaUp, []string{`cluster="prod"`}, true, ""},
		{operator, collector.MKafkaUp, []string{`cluster!="dev"`}, false, `name the cluster`},
		// How a regular expression reads: optional parts, case folding,
		// classes, anchors.
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"orders(\\.eu)?"`}, false, `is wider than kafka:prod/orders.*`},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"(?i)orders\\.eu"`}, false, `is wider than kafka:prod/orders.*`},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"orders\\.e[uU]"`}, true, ""},
		{upper, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"ORDERS\\.eu"`}, true, ""},
		{upper, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"(?i)orders\\.eu"`}, false, `is wider than kafka:prod/ORDERS.*`},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"^orders\\.eu$"`}, true, ""},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"orders\\.[a-z]+"`}, true, ""},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"orders\\.eu|pay"`}, false, `is wider than kafka:prod/orders.*`},
		{operator, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"orders\\.eu"`, `topic=~".*"`}, true, ""},
		{twoLetters, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"orders\\.e."`}, true, ""},
		{twoLetters, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"orders\\.(eu|us)"`}, true, ""},
		{twoLetters, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"orders\\.e.*"`}, false, `is wider than kafka:prod/orders.??`},
		{twoLetters, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic=~"orders\\.e.+"`}, false, `is wider than kafka:prod/orders.??`},
		// Groups: orders.* covers no group, not even one named orders-svc.
		{operator, collector.MGroupLagSeconds, []string{`cluster="prod"`, `group="orders-svc"`}, false, `no switchyard_consumer_group_lag_seconds of cluster "prod" is in your scope`},
		{withGroups, collector.MGroupLagSeconds, []string{`cluster="prod"`, `group="orders-svc"`, `topic="orders.eu"`}, true, ""},
		{withGroups, collector.MGroupMaxLagSeconds, []string{`cluster="prod"`, `group=~"orders-.*"`, `topic=""`}, true, ""},
		// A group's per-partition series name topics of their own.
		{withGroups, collector.MGroupLagSeconds, []string{`cluster="prod"`, `group="orders-svc"`}, false, `name the topic with topic="…"`},
		{withGroups, collector.MGroupLagSeconds, []string{`cluster="prod"`, `group="billing"`, `topic="orders.eu"`}, false, `group="billing" is wider than kafka:prod/group/orders-*`},
		// The services' series: a Kafka destination of t1 (or untenanted).
		{operator, collector.PromEventFailed, []string{`messaging_system="kafka"`, `destination="orders.eu"`, `tenant="t1"`}, true, ""},
		{operator, collector.PromEventFailed, []string{`messaging_system="kafka"`, `destination="orders.eu"`, `tenant=~"t1|"`}, true, ""},
		{operator, collector.PromEventFailed, []string{`messaging_system="kafka"`, `destination="orders.eu"`, `tenant="t2"`}, false, `tenant="t2" is wider than tenants t1 or none`},
		{operator, collector.PromEventFailed, []string{`messaging_system="kafka"`, `destination="orders.eu"`}, false, `name the tenant with tenant="…" (tenants t1 or none)`},
		// A RabbitMQ queue may be named orders.eu too.
		{operator, collector.PromEventFailed, []string{`destination="orders.eu"`, `tenant="t1"`}, false, `name the messaging_system`},
		{operator, collector.PromEventDuration + "_bucket", []string{`messaging_system="kafka"`, `destination=~"orders\\..*"`, `tenant="t1"`}, true, ""},
		// Dead letters per failure group: the entries' resource and tenant.
		{operator, collector.MDLQGroupEntries, []string{`resource="kafka:prod/orders.eu"`, `tenant="t1"`}, true, ""},
		{operator, collector.MDLQGroupEntries, []string{`resource=~"kafka:prod/orders\\..*"`, `tenant="t1"`, `dlq_group="7"`}, true, ""},
		{operator, collector.MDLQGroupEntries, []string{`resource="kafka:prod/payments"`, `tenant="t1"`}, false, `resource="kafka:prod/payments" is wider than kafka:prod/orders.*`},
		{operator, collector.MDLQGroupEntries, []string{`resource="kafka:prod/orders.eu"`}, false, `name the tenant`},
		{operator, collector.MDLQEntries, []string{`resource="kafka:prod/orders.eu"`, `tenant="t1"`, `state="dead"`}, true, ""},
		// Arrivals: the dead-letter topic, or a queue.
		{operator, collector.MDLQArrivals, []string{`broker="kafka"`, `cluster="prod"`, `destination="orders.eu.dlq"`}, true, ""},
		{operator, collector.MDLQArrivals, []string{`broker="kafka"`, `cluster="prod"`, `destination="payments.dlq"`}, false, `destination="payments.dlq" is wider than kafka:prod/orders.*`},
		{operator, collector.MDLQArrivals, []string{`broker="kafka"`, `destination="orders.eu.dlq"`}, false, `name the cluster`},
		{queues, collector.MDLQArrivals, []string{`broker="rabbitmq"`, `destination=~"notify\\..*"`}, true, ""},
		{queues, collector.MDLQArrivals, []string{`broker="rabbitmq"`, `destination="mail.high"`}, true, ""},
		{queues, collector.MDLQArrivals, []string{`broker="rabbitmq"`, `destination="mail.low"`}, false, `destination="mail.low" is wider than`},
		{queues, collector.MQueueReady, []string{`vhost="stg"`, `queue=~"mail\\..*"`}, true, ""},
		{queues, collector.MQueueReady, []string{`vhost="/"`, `queue=~"mail\\..*"`}, false, `queue=~"mail\\..*" is wider than rabbitmq:/notify.*`},
		{queues, collector.MRabbitUp, nil, true, ""},
		// Cluster-wide console metrics are everything's.
		{operator, collector.MJobsPaused, nil, false, "only who may view everything"},
		{operator, collector.MDLQIndexErrors, []string{`cluster="prod"`}, false, "only who may view everything"},
		{admin, collector.MJobsPaused, nil, true, ""},
		{admin, collector.MKafkaTopicMessages, nil, true, ""},
		{admin, collector.PromEventFailed, []string{`tenant="t9"`}, true, ""},
		{nil, collector.MKafkaTopicMessages, []string{`cluster="prod"`, `topic="orders.eu"`}, false, "nothing"},
	} {
		ok, why, err := tc.scope.Covers(ctx, tc.name, ms(t, tc.sel...))
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.ok || !strings.Contains(why, tc.why) || (!ok && why == "") {
			t.Errorf("%s%v: covered %v (%q), want %v (%q)", tc.name, tc.sel, ok, why, tc.ok, tc.why)
		}
	}

	// The read check of an alert: the scope of view, with the alert's
	// labels as equalities.
	viewer := collector.NewSeriesScope(pol.Rules(&access.Principal{Grants: []access.Grant{{Actions: []access.Action{access.ActionView},
		Resources: []string{"kafka:prod/orders.*"}, Tenants: []string{"t1"}}}}, access.ActionView), opts)
	for labels, want := range map[string]bool{
		`cluster=prod topic=orders.eu`: true,
		`cluster=prod topic=payments`:  false,
		`cluster=dev topic=orders.eu`:  false,
	} {
		var sel []tsdb.Matcher
		for _, kv := range strings.Fields(labels) {
			k, v, _ := strings.Cut(kv, "=")
			sel = append(sel, tsdb.Matcher{Label: k, Op: tsdb.MatchEqual, Value: v})
		}
		if ok, why, _ := viewer.Covers(ctx, collector.MGroupLag, sel); ok {
			t.Errorf("a group-less lag alert {%s} shows to a viewer of topics only (%q)", labels, why)
		}
		if ok, _, _ := viewer.Covers(ctx, collector.MKafkaTopicMessages, sel); ok != want {
			t.Errorf("alert {%s} visible = %v, want %v", labels, ok, want)
		}
	}
}

// Covers never claims more than Restrict allows: for random scopes and
// random selectors, when it says yes, every stored series the selector
// reads is among those the restricted query reads — and the policy's
// own answer for each is yes.
func TestSeriesScopeCoversNoMoreThanRestrict(t *testing.T) {
	ctx := context.Background()
	h := newScopeHistory(t)
	var pol access.Policy
	rng := rand.New(rand.NewPCG(3, 5))
	vocab := map[string][]string{
		"cluster":          {"prod", "demo", "dev", "", "prod|demo", ".*", "pro.*", "demo|"},
		"topic":            {"orders.created", "orders.created.dlq", "pay.settled", "", `orders\..*`, "orders.*", `orders\.created(\.dlq)?`, ".*", `pay\.settled|orders\.created`, `orders\.created\..+`, `(?i)ORDERS\.created`, `orders\.created\.d.q`, `orders\.created\.d.*q`},
		"group":            {"billing", "orders-audit", "", "bill.*", "orders-.*", "billing|orders-audit"},
		"partition":        {"0", ""},
		"vhost":            {"/", "stg", "", "stg|/"},
		"queue":            {"mail.high", "sms.low", `mail\..*`, ".*"},
		"tenant":           {"t1", "t2", "", "t1|t2", "t1|", ".*", "t[12]"},
		"destination":      {"orders.created", "orders.created.dlq", "pay.settled", "mail.high", "sms.low", "push.new", "relay", "", `orders\..*`, `mail\..*|sms\..*`, `push\.new|relay`, `orders\.created\.d.*q`},
		"messaging_system": {"kafka", "rabbitmq", "smtp", "", "kafka|rabbitmq", "kafka|smtp"},
		"resource":         {"kafka:demo/orders.created", "kafka:demo/pay.settled", "", `kafka:demo/orders\..*`, "kafka:.*", `kafka:demo/(orders|pay)\..*`, `kafka:demo/orders\.created\.d.*q`},
		"broker":           {"kafka", "rabbitmq", "kafka|rabbitmq"},
		"state":            {"dead"},
	}
	labels := slices.Sorted(maps.Keys(vocab))
	ops := []tsdb.MatchOp{tsdb.MatchEqual, tsdb.MatchEqual, tsdb.MatchRegexp, tsdb.MatchRegexp, tsdb.MatchRegexp, tsdb.MatchNotEqual, tsdb.MatchNotRegexp}
	// Each family's own labels, named more often than not, so that many
	// selectors are covered and the corners of the patterns are reached.
	own := map[string][]string{
		collector.MKafkaTopicMessages: {"cluster", "topic"},
		collector.MGroupLag:           {"cluster", "group", "topic", "partition"},
		collector.MGroupTotalLag:      {"cluster", "group", "topic"},
		collector.MQueueMessages:      {"vhost", "queue"},
		collector.MDLQEntries:         {"resource", "tenant", "state"},
		collector.MDLQGroupEntries:    {"resource", "tenant", "destination"},
		collector.MDLQArrivals:        {"broker", "cluster", "destination"},
		collector.PromEventProcessed:  {"messaging_system", "destination", "tenant"},
		collector.MKafkaUp:            {"cluster"},
		collector.MRabbitUp:           {"cluster"},
		collector.MJobsPaused:         {"cluster"},
	}
	names := slices.Sorted(maps.Keys(own))
	covered, checked := 0, 0
	for i := range 150 {
		p := randomPrincipal(rng, i)
		scope := collector.NewSeriesScope(pol.Rules(p, access.ActionView), h.opts)
		for _, name := range names {
			for range 40 {
				var sel []tsdb.Matcher
				for _, l := range own[name] {
					if rng.IntN(4) > 0 {
						sel = append(sel, tsdb.Matcher{Label: l, Op: ops[rng.IntN(len(ops))], Value: vocab[l][rng.IntN(len(vocab[l]))]})
					}
				}
				if rng.IntN(4) == 0 {
					l := labels[rng.IntN(len(labels))]
					sel = append(sel, tsdb.Matcher{Label: l, Op: ops[rng.IntN(len(ops))], Value: vocab[l][rng.IntN(len(vocab[l]))]})
				}
				ok, why, err := scope.Covers(ctx, name, sel)
				if err != nil {
					t.Fatal(err)
				}
				checked++
				if !ok {
					if why == "" {
						t.Fatalf("%s%v not covered, without a reason", name, sel)
					}
					continue
				}
				covered++
				q := tsdb.Q{Name: name, Matchers: sel, From: h.now.Add(-time.Hour), To: h.now, Step: time.Minute}
				read, err := h.st.Query(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				rq, err := scope.Restrict(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				allowed, err := h.st.Query(ctx, rq)
				if err != nil {
					t.Fatal(err)
				}
				in := map[string]bool{}
				for _, s := range allowed {
					in[s.Labels.String()] = true
				}
				for _, s := range read {
					if !in[s.Labels.String()] {
						t.Fatalf("grants %+v: %s%v is covered, but reads %s, which Restrict leaves out", p.Grants, name, sel, s.Labels)
					}
					if slices.Contains(referenced, name) && !h.want(t, p, s.Labels) {
						t.Fatalf("grants %+v: %s%v is covered, but reads %s, which the policy denies", p.Grants, name, sel, s.Labels)
					}
				}
			}
		}
	}
	// Not a test that passes by saying no.
	if covered < checked/20 {
		t.Errorf("only %d of %d selectors covered: the test checks too little", covered, checked)
	}
	t.Logf("%d of %d selectors covered", covered, checked)
}
