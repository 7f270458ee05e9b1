package alerting_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/sqldb"
	"switchyard/tsdb"
)

var svcT0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// world is a real history store, a real console.db with the alerting and
// access schemas, the evaluator and the service over them.
type world struct {
	clock *deliverytest.Clock
	hist  *tsdb.Store
	store *alerting.Store
	audit *access.Audit
	eval  *alerting.Evaluator
	svc   *alerting.Service
}

func newWorld(t *testing.T, notifier alerting.Notifier) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	w := &world{clock: deliverytest.NewClock(svcT0)}
	h, err := tsdb.Open(ctx, tsdb.Options{Dir: filepath.Join(dir, "tsdb"), Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	w.hist = h
	db, err := sqldb.Open(ctx, filepath.Join(dir, "console.db"), access.Schema(), alerting.Schema())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w.store = alerting.NewStore(db, w.clock.Now)
	if w.audit, err = access.NewAudit(db, w.clock.Now); err != nil {
		t.Fatal(err)
	}
	w.eval, err = alerting.NewEvaluator(alerting.EvaluatorOptions{Store: w.store, History: h, Notifier: notifier, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.eval.Load(ctx); err != nil {
		t.Fatal(err)
	}
	w.svc, err = alerting.NewService(alerting.ServiceOptions{Store: w.store, Evaluator: w.eval, History: h,
		Audit: w.audit, Now: w.clock.Now,
		ScopeOptions: func() collector.ScopeOptions { return collector.ScopeOptions{KafkaClusters: []string{"prod", "dev"}} }})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// newWorldOn is w with another evaluator and service over the same store,
// history and clock, handing their alerts to notifier: a notifier that
// keeps its state in w's store needs the store first.
func newWorldOn(t *testing.T, w *world, notifier alerting.Notifier) *world {
	t.Helper()
	nw := *w
	var err error
	nw.eval, err = alerting.NewEvaluator(alerting.EvaluatorOptions{Store: w.store, History: w.hist, Notifier: notifier, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := nw.eval.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	nw.svc, err = alerting.NewService(alerting.ServiceOptions{Store: w.store, Evaluator: nw.eval, History: w.hist, Audit: w.audit, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &nw
}

// lagSeries are three consumer groups' lag in seconds: orders-svc and
// billing-svc on prod, orders-svc on dev.
var lagSeries = []tsdb.Labels{
	tsdb.L(tsdb.MetricName, collector.MGroupMaxLagSeconds, "cluster", "prod", "group", "orders-svc"),
	tsdb.L(tsdb.MetricName, collector.MGroupMaxLagSeconds, "cluster", "prod", "group", "billing-svc"),
	tsdb.L(tsdb.MetricName, collector.MGroupMaxLagSeconds, "cluster", "dev", "group", "orders-svc"),
}

// record appends one sample per series at the clock's time, values v[i].
func (w *world) record(t *testing.T, series []tsdb.Labels, v ...float64) {
	t.Helper()
	batch := make([]tsdb.Sample, len(series))
	for i, ls := range series {
		batch[i] = tsdb.Sample{Series: ls, T: w.clock.Now(), V: v[i]}
	}
	if err := w.hist.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

func grant(resources, tenants []string, acts ...access.Action) access.Grant {
	return access.Grant{Role: "custom", Actions: acts, Resources: resources, Tenants: tenants}
}

func caller(user string, grants ...access.Grant) alerting.Caller {
	return alerting.Caller{P: &access.Principal{User: user, Method: access.MethodSession, Grants: grants},
		SourceIP: "192.0.2.9", UserAgent: "alerting-test"}
}

var (
	admin = caller("ada", grant([]string{"*"}, []string{"*"}, access.Actions()...))
	// olga manages alerts on prod's orders topics and groups, for t1.
	olga = caller("olga", grant([]string{"kafka:prod/orders*", "kafka:prod/group/orders*"}, []string{"t1"},
		access.ActionView, access.ActionManageAlerts))
	// vera views prod's billing group only.
	vera = caller("vera", grant([]string{"kafka:prod/group/billing*"}, []string{"*"}, access.ActionView))
)

func svcLagRule(name string, ms ...string) alerting.Rule {
	r := alerting.Rule{Name: name, Expr: alerting.Selector{Metric: collector.MGroupMaxLagSeconds},
		Op: alerting.OpGT, Threshold: 30, For: alerting.Duration(time.Minute), Severity: alerting.SeverityWarning, Enabled: true}
	for _, m := range ms {
		pm, err := tsdb.ParseMatcher(m)
		if err != nil {
			panic(err)
		}
		r.Expr.Matchers = append(r.Expr.Matchers, pm)
	}
	return r
}

func code(err error) string { return delivery.ErrorCode(err) }

// A scoped operator writes rules only inside her patterns; what she may
// not touch is refused with the reason, and audited as denied.
func TestScopedOperatorWritesOnlyInsideHerPatterns(t *testing.T) {
	w := newWorld(t, nil)
	w.record(t, lagSeries, 1, 1, 1)
	ctx := context.Background()

	own, err := w.svc.CreateRule(ctx, olga, svcLagRule("orders lag", `cluster="prod"`, `group="orders-svc"`))
	if err != nil {
		t.Fatalf("olga's own group: %v", err)
	}
	for name, ms := range map[string][]string{
		"another cluster":   {`cluster="dev"`, `group="orders-svc"`},
		"no group named":    {`cluster="prod"`},
		"another group":     {`cluster="prod"`, `group="billing-svc"`},
		"a wider regexp":    {`cluster="prod"`, `group=~"o.*"`},
		"nothing pinned at": nil,
	} {
		_, err := w.svc.CreateRule(ctx, olga, svcLagRule("x "+name, ms...))
		if code(err) != delivery.EFORBIDDEN {
			t.Errorf("%s: got %v, want EFORBIDDEN", name, err)
		}
	}
	// She may not change or delete an admin's rule over every group.
	wide, err := w.svc.CreateRule(ctx, admin, svcLagRule("any lag"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.svc.DeleteRule(ctx, olga, wide.ID); code(err) != delivery.ENOTFOUND && code(err) != delivery.EFORBIDDEN {
		t.Fatalf("olga deleting the admin's rule: %v", err)
	}
	if _, err := w.svc.GetRule(ctx, admin, wide.ID); err != nil {
		t.Fatalf("the admin's rule is gone: %v", err)
	}
	page, err := w.svc.ListRules(ctx, olga, alerting.RuleFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Rules) != 1 || page.Rules[0].ID != own.ID || !page.Rules[0].CanEdit {
		t.Fatalf("olga's rules = %+v, want only her own, editable", page.Rules)
	}

	recs, _, err := w.audit.List(ctx, access.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var denied, created int
	for _, r := range recs {
		switch {
		case r.Action == "alert.rule.create" && r.Outcome == access.OutcomeDenied && r.Actor == "olga":
			denied++
		case r.Action == "alert.rule.create" && r.Outcome == access.OutcomeSuccess:
			created++
		}
	}
	if denied != 5 || created != 2 {
		t.Fatalf("audit: %d denied and %d successful creates, want 5 and 2", denied, created)
	}
}

// A bad rule is refused with a reason per field, in the API's JSON too.
func TestInvalidRuleReasonsPerField(t *testing.T) {
	w := newWorld(t, nil)
	w.record(t, lagSeries, 1, 1, 1)
	ctx := context.Background()
	fields := func(err error) map[string]string {
		var de *delivery.Error
		if !errors.As(err, &de) || de.Code != delivery.EINVALID {
			t.Fatalf("got %v, want EINVALID", err)
		}
		f, _ := de.Details["fields"].(map[string]string)
		return f
	}
	r := svcLagRule("bad", `topic="orders"`)
	r.Expr.Metric = "switchyard_no_such_metric"
	f := fields(w.svc.Validate(ctx, r))
	if f["expr.metric"] == "" {
		t.Errorf("unknown metric not named: %v", f)
	}
	f = fields(w.svc.Validate(ctx, svcLagRule("bad", `topic="orders"`)))
	if f["expr.matchers"] == "" {
		t.Errorf("a matcher on a label the metric lacks: %v", f)
	}
	_, err := alerting.DecodeRule([]byte(`{"name":"x","expr":{"metric":"m"},"op":">","threshold":"abc","for":"-5m"}`))
	f = fields(err)
	if f["threshold"] == "" || f["for"] == "" {
		t.Errorf("threshold not a number and negative for: %v", f)
	}
}

// Alerts are seen by whoever may view the series their labels pin: vera,
// who views only billing-svc, sees its alert of the admin's rule over every
// group and not the others.
func TestAlertsVisibleByTheirLabels(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	w.record(t, lagSeries, 100, 100, 100)
	r := svcLagRule("any lag")
	r.For = 0
	if _, err := w.svc.CreateRule(ctx, admin, r); err != nil {
		t.Fatal(err)
	}
	if err := w.eval.Cycle(ctx, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	all, err := w.svc.Alerts(ctx, admin, alerting.AlertFilter{})
	if err != nil || all.Counts.Firing != 3 {
		t.Fatalf("admin: %+v, %v", all.Counts, err)
	}
	hers, err := w.svc.Alerts(ctx, vera, alerting.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hers.Alerts) != 1 || hers.Alerts[0].Labels["group"] != "billing-svc" || hers.Counts.Firing != 1 {
		t.Fatalf("vera sees %+v", hers.Alerts)
	}
	// The rule itself reads every group: not hers to see.
	if _, err := w.svc.GetRule(ctx, vera, hers.Alerts[0].RuleID); code(err) != delivery.ENOTFOUND {
		t.Fatalf("vera reading the rule: %v", err)
	}
	if links := hers.Alerts[0].Links; len(links) == 0 || links[0].URL != "/consumers/prod/billing-svc" {
		t.Fatalf("links = %+v", links)
	}
}

// A restart neither re-fires an alert nor forgets one: the state and the
// transitions come back from the store, and evaluation goes on from them.
func TestRestartNeitherRefiresNorForgets(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	one := lagSeries[:1]
	w.record(t, one, 100)
	rule, err := w.svc.CreateRule(ctx, admin, svcLagRule("orders lag", `cluster="prod"`, `group="orders-svc"`))
	if err != nil {
		t.Fatal(err)
	}
	var fired time.Time
	for i := 0; i < 8; i++ { // 8 × 15s: pending at 0, firing from 60s
		if i > 0 {
			w.record(t, one, 100)
		}
		if err := w.eval.Cycle(ctx, w.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if a := w.eval.Snapshot().Alerts[rule.ID]; len(a) == 1 && a[0].State == alerting.StateFiring && fired.IsZero() {
			fired = a[0].FiredAt
		}
		w.clock.Advance(15 * time.Second)
	}
	if fired.IsZero() {
		t.Fatal("the alert never fired")
	}
	before, _, err := w.store.Transitions(ctx, rule.ID, 0, 100)
	if err != nil || len(before) != 2 {
		t.Fatalf("transitions before the restart: %v, %v", before, err)
	}

	// A new evaluator over the same store: the process restarted.
	again, err := alerting.NewEvaluator(alerting.EvaluatorOptions{Store: w.store, History: w.hist, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Load(ctx); err != nil {
		t.Fatal(err)
	}
	as := again.Snapshot().Alerts[rule.ID]
	if len(as) != 1 || as[0].State != alerting.StateFiring || !as[0].FiredAt.Equal(fired) {
		t.Fatalf("after the restart: %+v, want firing since %v", as, fired)
	}
	w.record(t, one, 100)
	if err := again.Cycle(ctx, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	after, _, _ := w.store.Transitions(ctx, rule.ID, 0, 100)
	if len(after) != len(before) {
		t.Fatalf("the restart made transitions: %v", after[:len(after)-len(before)])
	}
	// The lag goes: it resolves, once.
	w.clock.Advance(15 * time.Second)
	w.record(t, one, 0)
	if err := again.Cycle(ctx, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	after, _, _ = w.store.Transitions(ctx, rule.ID, 0, 100)
	if len(after) != 3 || after[0].From != alerting.StateFiring || after[0].To != alerting.StateInactive {
		t.Fatalf("transitions after resolving: %+v", after)
	}
}

// A rule whose series vanish says so: no data, and when since.
func TestRuleWhoseSeriesVanishSaysSo(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	w.record(t, lagSeries[:1], 5)
	rule, err := w.svc.CreateRule(ctx, admin, svcLagRule("orders lag", `cluster="prod"`, `group="orders-svc"`))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.eval.Cycle(ctx, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.svc.GetRule(ctx, admin, rule.ID); v.State != "ok" || v.Status.NoData {
		t.Fatalf("with data: %+v", v)
	}
	w.clock.Advance(alerting.Lookback + time.Minute)
	if err := w.eval.Cycle(ctx, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	v, err := w.svc.GetRule(ctx, admin, rule.ID)
	if err != nil || v.State != "nodata" || !v.Status.NoData || !v.Status.NoDataSince.Equal(w.clock.Now()) {
		t.Fatalf("after the series vanished: %+v, %v", v, err)
	}
	page, _ := w.svc.ListRules(ctx, admin, alerting.RuleFilter{State: "nodata"})
	if len(page.Rules) != 1 || !slices.ContainsFunc(page.Rules, func(r alerting.RuleView) bool { return r.ID == rule.ID }) {
		t.Fatalf("the nodata filter: %+v", page.Rules)
	}
}

// Every one-click template gives a rule that validates against a history
// holding what it reads, with the page's labels as its matchers.
func TestTemplatesGiveValidRules(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	L := tsdb.L
	w.record(t, []tsdb.Labels{
		L(tsdb.MetricName, collector.MGroupStatus, "cluster", "prod", "group", "orders-svc"),
		L(tsdb.MetricName, collector.MGroupMaxLagSeconds, "cluster", "prod", "group", "orders-svc"),
		L(tsdb.MetricName, collector.MDLQArrivals, "broker", "kafka", "cluster", "prod", "destination", "orders.dlq"),
		L(tsdb.MetricName, collector.MDLQGroupEntries, "broker", "kafka", "cluster", "prod", "destination", "orders.dlq",
			"tenant", "t1", "resource", "kafka:prod/orders", "dlq_group", "7", "error_code", "TIMEOUT"),
		L(tsdb.MetricName, collector.PromEventFailed, "service", "billing"),
		L(tsdb.MetricName, collector.PromEventProcessed, "service", "billing"),
		L(tsdb.MetricName, collector.PromEventDuration+"_bucket", "service", "billing", "le", "0.5"),
		L(tsdb.MetricName, collector.MQueueReady, "cluster", "rabbit", "vhost", "/", "queue", "payments"),
		L(tsdb.MetricName, collector.MQueueConsumers, "cluster", "rabbit", "vhost", "/", "queue", "payments"),
		L(tsdb.MetricName, collector.MJobsPaused),
		L(tsdb.MetricName, collector.MKafkaUp, "cluster", "prod"),
	}, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	labels := map[string]string{"cluster": "prod", "group": "orders-svc", "broker": "kafka", "destination": "orders.dlq",
		"dlq_group": "7", "tenant": "t1", "resource": "kafka:prod/orders", "service": "billing", "vhost": "/", "queue": "payments", "kind": "kafka"}
	for _, ti := range alerting.Templates() {
		ls := map[string]string{}
		for k, v := range labels {
			ls[k] = v
		}
		if ti.Kind == alerting.TemplateQueueNoConsumers {
			ls["cluster"] = "rabbit"
		}
		r, err := w.svc.Template(ctx, admin, ti.Kind, ls)
		if err != nil {
			t.Fatalf("%s: %v", ti.Kind, err)
		}
		if err := w.svc.Validate(ctx, r); err != nil {
			t.Errorf("%s: %v (%s)", ti.Kind, err, alerting.PromQL(&r))
		}
		for _, l := range ti.Labels {
			if _, err := w.svc.Template(ctx, admin, ti.Kind, map[string]string{l: ""}); code(err) != delivery.EINVALID {
				t.Errorf("%s without %s: %v", ti.Kind, l, err)
			}
		}
	}
	if _, err := w.svc.Template(ctx, admin, "nope", nil); code(err) != delivery.EINVALID {
		t.Errorf("unknown kind: %v", err)
	}
}
