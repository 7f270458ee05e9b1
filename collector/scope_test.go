package collector_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/tsdb"
)

// The series a SeriesScope selects in the store are exactly those the
// policy lets the principal view, series family by family, for random
// bindings: resources by the policy's globs, tenants by the rule that
// grants the resource.
func TestSeriesScopeSelectsWhatThePolicyAllows(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	st, err := tsdb.Open(ctx, tsdb.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	clusters := []string{"demo", "prod"}
	topics := []string{"orders.created", "orders.created.dlq", "pay.settled"}
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
	for _, tn := range tenants {
		for _, tp := range topics {
			add(tsdb.MetricName, collector.PromEventProcessed, "service", "billing", "messaging_system", "kafka", "destination", tp, "tenant", tn)
			add(tsdb.MetricName, collector.MDLQEntries, "broker", "kafka", "cluster", "demo", "destination", tp+".dlq", "state", "dead",
				"tenant", tn, "resource", access.KafkaTopic("demo", tp).Name)
		}
		// A queue known in two vhosts, one only in stg, one nowhere.
		for _, q := range []string{"mail.high", "sms.low", "push.new"} {
			add(tsdb.MetricName, collector.PromEventProcessed, "service", "notify", "messaging_system", "rabbitmq", "destination", q, "tenant", tn)
		}
		add(tsdb.MetricName, collector.PromEventProcessed, "service", "cron", "tenant", tn)
		add(tsdb.MetricName, collector.PromEventProcessed, "service", "mailer", "messaging_system", "smtp", "destination", "relay", "tenant", tn)
	}
	// Recorded before the dead-letter series had tenants: every tenant's.
	add(tsdb.MetricName, collector.MDLQEntries, "broker", "kafka", "cluster", "demo", "destination", "orders.created.dlq", "state", "dead")
	if err := st.Append(ctx, samples); err != nil {
		t.Fatal(err)
	}

	var pol access.Policy
	vhostsOf := func(queue string) []string {
		var out []string
		for _, q := range queues {
			if q.Name == queue {
				out = append(out, q.VHost)
			}
		}
		if out == nil {
			out = []string{"/"}
		}
		return out
	}
	// want is the policy's own answer for one series.
	want := func(p *access.Principal, ls tsdb.Labels) bool {
		can := func(name, tenant string) bool {
			return pol.Can(p, access.ActionView, access.Resource{Name: name, Tenant: tenant})
		}
		c, tn := ls.Get("cluster"), ls.Get("tenant")
		switch ls.Name() {
		case collector.MKafkaTopicMessages:
			return can(access.KafkaTopic(c, ls.Get("topic")).Name, "")
		case collector.MGroupLag, collector.MGroupTotalLag:
			return can(access.KafkaGroup(c, ls.Get("group")).Name, "") &&
				(ls.Get("topic") == "" || can(access.KafkaTopic(c, ls.Get("topic")).Name, ""))
		case collector.MQueueMessages:
			return can(access.RabbitQueue(ls.Get("vhost"), ls.Get("queue")).Name, "")
		case collector.MDLQEntries:
			if ls.Get("resource") == "" {
				// Sums every tenant: only for who sees them all.
				return slices.ContainsFunc(p.Grants, func(g access.Grant) bool {
					return slices.Contains(g.Resources, "*") && slices.Contains(g.Tenants, "*")
				})
			}
			return can(ls.Get("resource"), tn)
		case collector.PromEventProcessed:
			dest := ls.Get("destination")
			switch {
			case dest == "" || (ls.Get("messaging_system") != "kafka" && ls.Get("messaging_system") != "rabbitmq"):
				return can("*", tn)
			case ls.Get("messaging_system") == "kafka":
				return slices.ContainsFunc(clusters, func(c string) bool { return can(access.KafkaTopic(c, dest).Name, tn) })
			default:
				return slices.ContainsFunc(vhostsOf(dest), func(vh string) bool { return can(access.RabbitQueue(vh, dest).Name, tn) })
			}
		}
		t.Fatalf("no reference for %s", ls)
		return false
	}

	patterns := []string{"*", "kafka:*", "kafka:demo/*", "kafka:*/orders.*", "kafka:prod/pay.settled", "kafka:demo/group/*",
		"kafka:*/group/bill*", "kafka:demo/orders.created", "rabbitmq:*", "rabbitmq:/*", "rabbitmq:stg/*", "rabbitmq:stg/mail.high", "rabbitmq:/push.new", "rabbitmq:/sms.low"}
	tenantSets := [][]string{{"*"}, {"t1"}, {"t1", "t2"}, {"t2"}, {}}
	rng := rand.New(rand.NewPCG(7, 11))
	opts := collector.ScopeOptions{
		KafkaClusters: clusters, Queues: queues,
		Values: func(ctx context.Context, metric, label string) ([]string, error) {
			return st.LabelValues(ctx, label, tsdb.Matcher{Label: tsdb.MetricName, Op: tsdb.MatchEqual, Value: metric})
		},
	}
	names := []string{collector.MKafkaTopicMessages, collector.MGroupLag, collector.MGroupTotalLag, collector.MQueueMessages, collector.MDLQEntries, collector.PromEventProcessed}
	for i := range 200 {
		p := &access.Principal{User: fmt.Sprint("u", i)}
		for range 1 + rng.IntN(3) {
			var res []string
			for range 1 + rng.IntN(3) {
				res = append(res, patterns[rng.IntN(len(patterns))])
			}
			p.Grants = append(p.Grants, access.Grant{Actions: []access.Action{access.ActionView}, Resources: res, Tenants: tenantSets[rng.IntN(len(tenantSets))]})
		}
		scope := collector.NewSeriesScope(pol.Rules(p, access.ActionView), opts)
		for _, name := range names {
			all, err := st.Query(ctx, tsdb.Q{Name: name, From: now.Add(-time.Hour), To: now, Step: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			q, err := scope.Restrict(ctx, tsdb.Q{Name: name, From: now.Add(-time.Hour), To: now, Step: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Query(ctx, q)
			if err != nil {
				t.Fatalf("%+v: %v", q.Or, err)
			}
			selected := map[string]bool{}
			for _, sr := range got {
				selected[sr.Labels.String()] = true
			}
			for _, sr := range all {
				if w := want(p, sr.Labels); selected[sr.Labels.String()] != w {
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
