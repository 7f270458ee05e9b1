package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/collector"
	"switchyard/tsdb"
)

// otlpCounter is one OTLP/JSON data point of event.processed or
// event.failed: a cumulative value with the delivery core's attributes.
type otlpCounter struct {
	metric, service, system, dest, tenant string
	value                                 float64
}

// ingestEvents sends one OTLP/JSON export per service through POST
// /v1/metrics with an ingest token, then records the services' current
// values in the history at at, as collector.History does every interval.
func ingestEvents(t *testing.T, e *env, token string, at time.Time, points []otlpCounter) {
	t.Helper()
	attr := func(k, v string) map[string]any {
		return map[string]any{"key": k, "value": map[string]any{"stringValue": v}}
	}
	for _, p := range points {
		dp := map[string]any{"asDouble": p.value, "attributes": []any{
			attr("messaging.system", p.system), attr("messaging.destination.name", p.dest),
			attr("tenant.id", p.tenant), attr("event.type", testTopic),
		}}
		if p.metric == "event.failed" {
			dp["attributes"] = append(dp["attributes"].([]any), attr("error.code", "PAYMENT_DECLINED"))
		}
		body, _ := json.Marshal(map[string]any{"resourceMetrics": []any{map[string]any{
			"resource": map[string]any{"attributes": []any{attr("service.name", p.service)}},
			"scopeMetrics": []any{map[string]any{"metrics": []any{map[string]any{
				"name": p.metric, "sum": map[string]any{"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": []any{dp}},
			}}}},
		}}})
		if r := e.post(t, "/v1/metrics", "application/json", "Bearer "+token, body); r.status != http.StatusOK {
			t.Fatalf("OTLP export = %d %s", r.status, r.body)
		}
	}
	if err := e.series.Append(context.Background(), collector.ServiceSamples(e.svc.Points(), at)); err != nil {
		t.Fatal(err)
	}
}

// seriesTotals reads /api/v1/series for a metric and returns the latest
// value per series, keyed by the labels named.
func seriesTotals(t *testing.T, c *client, metric string, key ...string) map[string]float64 {
	t.Helper()
	status, b, body := getSeries(t, c, "name="+metric)
	if status != http.StatusOK {
		t.Fatalf("series %s as %s = %d %s", metric, c.user, status, body)
	}
	out := map[string]float64{}
	for _, s := range b.Series {
		var k []string
		for _, l := range key {
			k = append(k, s.Labels[l])
		}
		last := s.Points[len(s.Points)-1][1]
		if last == nil {
			t.Fatalf("series %v ends in null", s.Labels)
		}
		out[strings.Join(k, "/")] += *last
	}
	return out
}

// serviceRow returns the processed and failed cells of a service's row
// on the overview.
func serviceRow(t *testing.T, body, service string) (processed, failed string, ok bool) {
	t.Helper()
	i := strings.Index(body, `data-testid="service-row" data-service="`+service+`"`)
	if i < 0 {
		return "", "", false
	}
	row := body[i : i+strings.Index(body[i:], "</tr>")]
	cell := func(id string) string {
		m := regexp.MustCompile(`data-testid="` + id + `">([^<]*)<`).FindStringSubmatch(row)
		if m == nil {
			t.Fatalf("no %s in row %s", id, row)
		}
		return m[1]
	}
	return cell("service-processed"), cell("service-failed"), true
}

func statOf(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`data-testid="` + id + `">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s on the page", id)
	}
	return m[1]
}

// A user scoped to tenant t1 (tess: operator on kafka:demo/* for t1) reads
// only t1's counts of what she may view, in the series API, the
// overview's Services table and the dead-letter sources strip; the admin
// reads everyone's. The numbers are those ingested (services, through
// OTLP) and indexed (dead letters) for each tenant.
func TestCountsAreScopedToTenants(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	admin, tess, sam := e.as(t, "admin"), e.as(t, "tess"), addScopedUser(t, e)
	tok, err := e.store.CreateToken(ctx, "admin", "exporter", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// billing on orders (kafka:demo/orders.order.created.v1) for t1 and
	// t2; notify on a RabbitMQ queue for t1, which tess may not view.
	now := time.Now()
	export := func(at time.Time, k float64) {
		ingestEvents(t, e, tok, at, []otlpCounter{
			{"event.processed", "billing", "kafka", testTopic, "t1", 10 * k},
			{"event.failed", "billing", "kafka", testTopic, "t1", 1 * k},
			{"event.processed", "billing", "kafka", testTopic, "t2", 100 * k},
			{"event.failed", "billing", "kafka", testTopic, "t2", 10 * k},
			{"event.processed", "notify", "rabbitmq", matrixQueue, "t1", 7 * k},
		})
	}
	export(now.Add(-20*time.Minute), 1)
	export(now.Add(-time.Minute), 5) // increases: t1 40/4, t2 400/40, notify 28
	// The dead-letter counts, recorded as the console's gauges do; and one
	// series as recorded before it had tenants, summing every tenant.
	if err := collector.NewDLQGauges(e.dlq, e.series, time.Minute, slog.New(slog.DiscardHandler)).Poll(ctx); err != nil {
		t.Fatal(err)
	}
	old := tsdb.L(tsdb.MetricName, collector.MDLQEntries, "broker", "kafka", "cluster", testCluster, "destination", testDLQ, "state", "dead")
	if err := e.series.Append(ctx, []tsdb.Sample{{Series: old, T: now.Add(-2 * time.Minute), V: 5}}); err != nil {
		t.Fatal(err)
	}

	t.Run("series API", func(t *testing.T) {
		for _, tc := range []struct {
			who  *client
			name string
			key  []string
			want map[string]float64
		}{
			{tess, collector.PromEventProcessed, []string{"tenant", "destination"}, map[string]float64{"t1/" + testTopic: 50}},
			{tess, collector.PromEventFailed, []string{"tenant", "destination"}, map[string]float64{"t1/" + testTopic: 5}},
			// Seeded dead letters: orders DLQ t1 3, t2 2; payments DLQ
			// t1 1, t2 1; the mail DLQ t1 1 (a RabbitMQ queue).
			{tess, collector.MDLQEntries, []string{"tenant", "destination"}, map[string]float64{"t1/" + testDLQ: 3, "t1/" + payDLQ: 1}},
			// sam views kafka:demo/orders.* for every tenant.
			{sam, collector.PromEventProcessed, []string{"tenant", "destination"}, map[string]float64{"t1/" + testTopic: 50, "t2/" + testTopic: 500}},
			{sam, collector.MDLQEntries, []string{"tenant", "destination"}, map[string]float64{"t1/" + testDLQ: 3, "t2/" + testDLQ: 2}},
			{admin, collector.PromEventProcessed, []string{"tenant", "destination"}, map[string]float64{"t1/" + testTopic: 50, "t2/" + testTopic: 500, "t1/" + matrixQueue: 35}},
			{admin, collector.PromEventFailed, []string{"tenant"}, map[string]float64{"t1": 5, "t2": 50}},
			{admin, collector.MDLQEntries, []string{"tenant", "destination"}, map[string]float64{
				"t1/" + testDLQ: 3, "t2/" + testDLQ: 2, "t1/" + payDLQ: 1, "t2/" + payDLQ: 1, "t1/" + mailDLQ: 1, "/" + testDLQ: 5}},
		} {
			if got := seriesTotals(t, tc.who, tc.name, tc.key...); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("%s reads %s = %v, want %v", tc.who.user, tc.name, got, tc.want)
			}
		}
	})

	t.Run("overview services", func(t *testing.T) {
		for _, tc := range []struct {
			who                  *client
			processed, failed    string
			rows                 []string
			billingP, billingF   string
			scopedNote, notifyOK bool
		}{
			{who: tess, processed: "40", failed: "4", billingP: "40", billingF: "4", scopedNote: true},
			{who: admin, processed: "468", failed: "44", billingP: "440", billingF: "44", notifyOK: true},
		} {
			body := tc.who.get(t, "/").body
			if got := statOf(t, body, "svc-processed"); got != tc.processed {
				t.Errorf("%s: processed total = %s, want %s", tc.who.user, got, tc.processed)
			}
			if got := statOf(t, body, "svc-failed"); got != tc.failed {
				t.Errorf("%s: failed total = %s, want %s", tc.who.user, got, tc.failed)
			}
			p, f, ok := serviceRow(t, body, "billing")
			if !ok || p != tc.billingP || f != tc.billingF {
				t.Errorf("%s: billing row = %s/%s (%v), want %s/%s", tc.who.user, p, f, ok, tc.billingP, tc.billingF)
			}
			if _, _, ok := serviceRow(t, body, "notify"); ok != tc.notifyOK {
				t.Errorf("%s: notify row shown = %v, want %v", tc.who.user, ok, tc.notifyOK)
			}
			if got := strings.Contains(body, `data-testid="services-scoped"`); got != tc.scopedNote {
				t.Errorf("%s: scoped note = %v", tc.who.user, got)
			}
		}
	})

	t.Run("sources strip", func(t *testing.T) {
		entries := regexp.MustCompile(`data-destination="([^"]+)">(?s:.*?)data-testid="indexer-entries">([^<]*)<`)
		strip := func(c *client) (map[string]string, string) {
			body := c.get(t, "/dead-letters").body
			i := strings.Index(body, `data-testid="indexer-status"`)
			if i < 0 {
				t.Fatalf("no sources strip for %s", c.user)
			}
			body = body[i : i+strings.Index(body[i:], "</details>")]
			got := map[string]string{}
			for _, m := range entries.FindAllStringSubmatch(body, -1) {
				got[m[1]] = m[2]
			}
			return got, body
		}
		got, body := strip(tess)
		if want := map[string]string{testDLQ: "3", payDLQ: "1"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("tess's sources = %v, want %v", got, want)
		}
		// The indexers count every tenant: not hers to see.
		if strings.Count(body, `data-testid="indexer-counters-hidden"`) != 2 || strings.Contains(body, `data-testid="indexer-indexed"`) {
			t.Errorf("tess sees the indexers' all-tenant counters:\n%s", body)
		}
		got, body = strip(admin)
		if want := map[string]string{testDLQ: "5", payDLQ: "2", mailDLQ: "1"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("admin's sources = %v, want %v", got, want)
		}
		indexed := regexp.MustCompile(`data-testid="indexer-indexed">([^<]*)<`).FindAllStringSubmatch(body, -1)
		var ns []string
		for _, m := range indexed {
			ns = append(ns, m[1])
		}
		if slices.Sort(ns); strings.Join(ns, ",") != "1,2,5" {
			t.Errorf("admin's indexed counters = %v, want the indexers' 5, 2 and 1", ns)
		}
	})
}
