package web

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/tsdb"
)

// rows returns the values of attr on elements with data-testid=testid, in
// page order.
func rows(body, testid, attr string) []string {
	re := regexp.MustCompile(`data-testid="` + regexp.QuoteMeta(testid) + `"[^>]*? ` + attr + `="([^"]*)"`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// chartOf returns the <figure> of the chart with data-chart=id.
func chartOf(body, id string) string {
	i := strings.Index(body, `data-chart="`+id+`"`)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "</figure>")
	return body[i : i+j]
}

func TestOverviewDashboards(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.admin(t, "/")
	if r.status != http.StatusOK {
		t.Fatalf("GET / = %d\n%s", r.status, r.body)
	}
	// Throughput and DLQ arrivals come from the hour of history.
	for _, id := range []string{"c-demo-throughput", "c-demo-dlq"} {
		ch := chartOf(r.body, id)
		mustContain(t, id, ch, `data-testid="chart-line"`, `data-testid="chart-xtick"`, `data-testid="chart-ytick"`, `<title id="`+id+`-title">`)
		mustNotContain(t, id, ch, "No data in this range yet")
	}
	mustContain(t, "dlq chart legend", chartOf(r.body, "c-demo-dlq"), "DLQ topics", "0.5/s")
	// Worst-lagging groups carry Burrow's verdict and its reason.
	mustContain(t, "worst groups", r.body,
		`data-testid="group-row" data-group="`+testGroup+`" data-status="OK"`,
		`data-testid="status" title="`+testTopic+`/`,
		`data-testid="group-reason">`+testTopic+`/`, "window incomplete",
		`data-testid="cluster-dlq-rate"`,
	)
	// No service has reported yet.
	mustContain(t, "services", r.body, `data-testid="empty-services"`)
	if strings.Contains(r.body, "<script>") || strings.Contains(r.body, "style=") {
		t.Error("inline script or style in the page: the CSP blocks it")
	}
}

// The chosen range stays in the URL: the picker marks it, and the links to
// other dashboard pages carry it.
func TestRangePickerKeepsRangeInLinks(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.admin(t, "/?range=6h&q=orders")
	if r.status != http.StatusOK {
		t.Fatalf("GET /?range=6h = %d", r.status)
	}
	mustContain(t, "picker", openTag(r.body, `data-testid="range-6h"`), `class="current"`, `aria-current="true"`)
	mustContain(t, "picker keeps the filter", openTag(r.body, `data-testid="range-24h"`), `href="/?q=orders&amp;range=24h"`)
	mustContain(t, "links carry the range", r.body,
		`href="/topics/demo/`+testTopic+`?range=6h"`,
		`href="/consumers/demo/`+testGroup+`?range=6h"`,
	)
	mustContain(t, "nav carries the range", openTag(r.body, `data-testid="nav-consumers"`), `href="/consumers?range=6h"`)
	mustContain(t, "filter form keeps the range", r.body, `<input type="hidden" name="range" value="6h">`)

	g := e.admin(t, "/consumers/demo/"+testGroup+"?range=15m")
	mustContain(t, "group page picker", openTag(g.body, `data-testid="range-15m"`), `class="current"`)
	mustContain(t, "group page links", g.body, `href="/topics/demo/`+testTopic+`?range=15m"`)
	// Without a range the links stay plain, and 1h is the default.
	d := e.admin(t, "/")
	mustContain(t, "default range", openTag(d.body, `data-testid="range-1h"`), `class="current"`)
	mustContain(t, "plain links", d.body, `href="/topics/demo/`+testTopic+`"`)
	if r := e.admin(t, "/?range=2d"); r.status != http.StatusBadRequest {
		t.Errorf("range=2d = %d, want 400", r.status)
	}
}

func TestTopicAndGroupDashboards(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.admin(t, "/topics/demo/"+testTopic)
	mustContain(t, "topic throughput", chartOf(r.body, "topic-throughput"), `data-testid="chart-line"`)
	mustContain(t, "topic groups", r.body, `data-testid="group-row" data-group="`+testGroup+`" data-status="OK"`, `data-testid="partition-rate"`)

	r = e.admin(t, "/consumers/demo/"+testGroup)
	if r.status != http.StatusOK {
		t.Fatalf("group page = %d", r.status)
	}
	mustContain(t, "group verdict", r.body,
		`data-testid="status" title="`+testTopic+`/`, `data-testid="group-reason">`+testTopic+`/`,
		`data-testid="group-complete"`, `data-testid="lag-seconds">`, `data-testid="partition-reason">OK: `,
		`data-testid="group-partition-row" data-topic="`+testTopic+`" data-partition="0" data-status="OK"`,
	)
	// Total lag grew over the backfilled hour; max lag seconds too; one
	// line per partition (3 ≤ 20).
	mustContain(t, "total lag chart", chartOf(r.body, "group-total-lag"), `data-testid="chart-line"`, "total lag")
	mustContain(t, "max lag seconds chart", chartOf(r.body, "group-max-lag-seconds"), `data-testid="chart-line"`)
	if n := strings.Count(chartOf(r.body, "group-partition-lag"), `data-testid="chart-legend"`); n != 3 {
		t.Errorf("per-partition lag chart has %d lines, want 3", n)
	}
}

// bigCluster is our own view of a cluster with n topics and groups, for
// long tables (not a broker: the collector's output type).
func bigCluster(name string, topics, groups int, at time.Time) collector.ClusterView {
	v := collector.ClusterView{Name: name, Polled: true, Reachable: true, HasSnapshot: true,
		TopicRates: map[string]float64{}, GroupRates: map[string]float64{}}
	v.Snapshot.TakenAt = at
	for i := range topics {
		t := collector.Topic{Name: fmt.Sprintf("topic-%04d", i), Messages: int64(i)}
		t.Partitions = []collector.Partition{{Partition: 0, High: int64(i), Rate: float64(i % 7)}}
		v.Snapshot.Topics = append(v.Snapshot.Topics, t)
		v.TopicRates[t.Name] = float64(i % 7)
	}
	statuses := []collector.Status{collector.StatusOK, collector.StatusWarn, collector.StatusErr}
	for i := range groups {
		st := statuses[i%3]
		g := collector.Group{Name: fmt.Sprintf("group-%04d", i), State: "Stable", Members: 1, TotalLag: int64(i),
			Status: st, Reason: st.String() + ": synthetic", MaxLagSeconds: float64((i * 37) % 101), MaxLagTopic: "topic-0000"}
		v.Snapshot.Groups = append(v.Snapshot.Groups, g)
	}
	return v
}

// A cluster with 1,000 topics stays usable: filtered, sorted and paged on
// the server.
func TestLongTablesFilterSortPage(t *testing.T) {
	now := time.Now()
	e := newEnv(t, envOptions{clusters: fixedClusters{bigCluster("big", 1000, 250, now)}})
	r := e.admin(t, "/")
	topics := rows(r.body, "topic-row", "data-topic")
	if len(topics) != 100 || topics[0] != "topic-0000" {
		t.Fatalf("first page has %d topics starting %v, want 100 from topic-0000", len(topics), topics[:min(1, len(topics))])
	}
	mustContain(t, "pager", r.body, `data-testid="page-info">Page 1 of 10 (1,000 topics)`, `href="/?page=2&amp;sort=name"`)
	r = e.admin(t, "/?page=3")
	if got := rows(r.body, "topic-row", "data-topic"); got[0] != "topic-0200" {
		t.Errorf("page 3 starts at %s", got[0])
	}
	r = e.admin(t, "/?q=topic-09")
	if got := rows(r.body, "topic-row", "data-topic"); len(got) != 100 || got[0] != "topic-0900" {
		t.Errorf("q=topic-09 gives %d topics from %v", len(got), got[:1])
	}
	r = e.admin(t, "/?q=topic-099")
	mustContain(t, "filtered count", r.body, `10 topics match “topic-099”`)
	r = e.admin(t, "/?sort=messages")
	if got := rows(r.body, "topic-row", "data-topic"); got[0] != "topic-0999" {
		t.Errorf("sort=messages starts with %s", got[0])
	}
	if r := e.admin(t, "/?sort=size"); r.status != http.StatusBadRequest {
		t.Errorf("sort=size = %d", r.status)
	}
	// The overview shows the ten worst groups: ERR first, then WARN, by lag
	// in seconds.
	worst := rows(e.admin(t, "/").body, "group-row", "data-group")
	if len(worst) != 10 || worst[0] != "group-0131" {
		t.Errorf("worst groups = %v; want 10, led by the ERR group with the most lag seconds (group-0131: 100s)", worst)
	}

	// Consumers: filter, four sorts, paging.
	c := e.admin(t, "/consumers")
	if got := rows(c.body, "group-row", "data-group"); len(got) != 100 || got[0] != "group-0249" {
		t.Errorf("consumers page 1: %d rows from %v", len(got), got[:1])
	}
	mustContain(t, "consumers pager", c.body, "Page 1 of 3 (250 groups)", `data-testid="page-next"`)
	c = e.admin(t, "/consumers?sort=name&page=3")
	if got := rows(c.body, "group-row", "data-group"); len(got) != 50 || got[0] != "group-0200" {
		t.Errorf("sort=name page 3: %d rows from %v", len(got), got[:1])
	}
	c = e.admin(t, "/consumers?sort=status")
	if got := rows(c.body, "group-row", "data-status"); got[0] != "ERR" || got[82] != "ERR" || got[83] != "WARN" {
		t.Errorf("sort=status does not lead with ERR: %v…", got[:3])
	}
	c = e.admin(t, "/consumers?sort=lag-seconds")
	mustContain(t, "lag seconds sort", c.body, `data-testid="group-lag-seconds">1m40s<`)
	c = e.admin(t, "/consumers?q=group-012")
	if got := rows(c.body, "group-row", "data-group"); len(got) != 10 {
		t.Errorf("q=group-012 gives %d groups", len(got))
	}
	mustContain(t, "filter box", c.body, `name="q" value="group-012"`)
}

// An unreachable cluster keeps its last good values, marked stale with the
// error and since when, while the other cluster shows live.
func TestStaleClusterKeepsLastValues(t *testing.T) {
	now := time.Now()
	down := bigCluster("down", 3, 2, now.Add(-10*time.Minute))
	down.Reachable, down.Error, down.UnreachableSince = false, "kafka down: dial tcp 10.1.2.3:9092: i/o timeout", now.Add(-9*time.Minute)
	live := bigCluster("live", 2, 1, now)
	e := newEnv(t, envOptions{clusters: fixedClusters{down, live}})
	r := e.admin(t, "/")
	downCard := r.body[strings.Index(r.body, `data-cluster="down"`):strings.Index(r.body, `data-cluster="live"`)]
	mustContain(t, "down card", downCard,
		`data-testid="cluster-unreachable"`, "since 9m ago", "i/o timeout", `data-testid="cluster-stale"`,
		"Showing the last data received, 10m ago", `data-topic="topic-0002"`, `data-group="group-0001"`)
	liveCard := r.body[strings.Index(r.body, `data-cluster="live"`):]
	mustContain(t, "live card", liveCard, `data-testid="cluster-reachable"`)
	mustNotContain(t, "live card", liveCard[:strings.Index(liveCard, "</section>")], `data-testid="cluster-stale"`)

	var groups groupsResponse
	if err := json.Unmarshal([]byte(e.admin(t, "/api/v1/consumer-groups").body), &groups); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.ConsumerGroups {
		if g.Stale != (g.Cluster == "down") {
			t.Errorf("group %s/%s stale = %v", g.Cluster, g.Name, g.Stale)
		}
	}
}

func TestAPIConsumerGroups(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.admin(t, "/api/v1/consumer-groups")
	var list groupsResponse
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.ConsumerGroups) != 1 {
		t.Fatalf("consumer-groups = %d %s", r.status, r.body)
	}
	g := list.ConsumerGroups[0]
	if g.Cluster != testCluster || g.Name != testGroup || g.TotalLag != 16 || g.Status != "OK" || !strings.Contains(g.Reason, "window incomplete") || g.Partitions != nil {
		t.Errorf("group = %+v", g)
	}
	r = e.admin(t, "/api/v1/consumer-groups/demo/"+testGroup)
	var one struct {
		Cluster    apiCluster        `json:"cluster"`
		Name       string            `json:"name"`
		Partitions []json.RawMessage `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(r.body), &one); err != nil || one.Name != testGroup || len(one.Partitions) != 3 || !one.Cluster.Reachable {
		t.Fatalf("consumer-group = %d %s", r.status, r.body)
	}
	mustContain(t, "partition", string(one.Partitions[0]), `"committed":4`, `"lag":6`, `"lag_seconds":`, `"status":"OK"`)
	if r := e.admin(t, "/api/v1/consumer-groups/demo/nope"); r.status != http.StatusNotFound || !strings.Contains(r.body, `"code":"ENOTFOUND"`) {
		t.Errorf("unknown group = %d %s", r.status, r.body)
	}
	otto := e.as(t, "otto")
	if r := otto.get(t, "/api/v1/consumer-groups"); !strings.Contains(r.body, `"consumer_groups":[]`) {
		t.Errorf("otto sees groups: %s", r.body)
	}
}

// sam views kafka:demo/orders.* only.
func addScopedUser(t *testing.T, e *env) *client {
	t.Helper()
	ctx := context.Background()
	by, err := e.store.PrincipalFor(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateUser(ctx, by, "sam", operatorPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.AddBinding(ctx, by, access.Binding{Subject: "user:sam", Role: access.RoleViewer, Resources: []string{"kafka:demo/orders.*"}, Tenants: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	return e.login(t, "sam", operatorPassword)
}

type seriesBody struct {
	Step   string `json:"step"`
	Series []struct {
		Labels map[string]string `json:"labels"`
		Points [][2]*float64     `json:"points"`
	} `json:"series"`
}

func getSeries(t *testing.T, c *client, query string) (int, seriesBody, string) {
	t.Helper()
	r := c.get(t, "/api/v1/series?"+query)
	var b seriesBody
	if r.status == http.StatusOK {
		if err := json.Unmarshal([]byte(r.body), &b); err != nil {
			t.Fatalf("series body: %v\n%s", err, r.body)
		}
	}
	return r.status, b, r.body
}

func labelValues(b seriesBody, label string) []string {
	var out []string
	for _, s := range b.Series {
		out = append(out, s.Labels[label])
	}
	return out
}

func TestAPISeriesMatchersAndPolicy(t *testing.T) {
	e := newEnv(t, envOptions{})
	admin, sam := e.as(t, "admin"), addScopedUser(t, e)

	_, all, _ := getSeries(t, admin, "name="+collector.MKafkaTopicMessages)
	if got := strings.Join(labelValues(all, "topic"), ","); got != strings.Join([]string{testTopic, testDLQ, envTopic, otherTopic}, ",") &&
		len(all.Series) != 4 {
		t.Errorf("admin topics = %s", got)
	}
	_, scoped, _ := getSeries(t, sam, "name="+collector.MKafkaTopicMessages)
	for _, topic := range labelValues(scoped, "topic") {
		if !strings.HasPrefix(topic, "orders.") {
			t.Errorf("sam sees topic %s", topic)
		}
	}
	if len(scoped.Series) != 3 {
		t.Errorf("sam sees %d topic series, want the 3 orders.* topics", len(scoped.Series))
	}
	// Groups are kafka:demo/group/…, outside sam's grant.
	if _, b, _ := getSeries(t, admin, "name="+collector.MGroupLag); len(b.Series) != 3 {
		t.Errorf("admin group lag series = %d, want 3 partitions", len(b.Series))
	}
	if _, b, _ := getSeries(t, sam, "name="+collector.MGroupLag); len(b.Series) != 0 {
		t.Errorf("sam sees %d group series", len(b.Series))
	}
	// Matchers narrow; from/to as Unix seconds; step in Prometheus form.
	now := time.Now()
	q := url.Values{"name": {collector.MGroupLag}, "match[]": {`partition="2"`, `group=~"bill.*"`},
		"from": {fmt.Sprint(now.Add(-2 * time.Hour).Unix())}, "to": {now.Format(time.RFC3339)}, "step": {"5m"}}
	status, b, body := getSeries(t, admin, q.Encode())
	if status != http.StatusOK || len(b.Series) != 1 || b.Series[0].Labels["partition"] != "2" || b.Step != "5m0s" {
		t.Fatalf("matched query = %d %s", status, body)
	}
	last := b.Series[0].Points[len(b.Series[0].Points)-1]
	if last[1] == nil || *last[1] != 10 {
		t.Errorf("partition 2 lag now = %v, want 10", last[1])
	}
	// NaN and ±Inf come back as null.
	if err := e.series.Append(context.Background(), []tsdb.Sample{
		{Series: tsdb.L(tsdb.MetricName, collector.MKafkaTopicRate, "cluster", testCluster, "topic", testTopic), T: now.Add(time.Second), V: math.Inf(1)},
	}); err != nil {
		t.Fatal(err)
	}
	_, _, body = getSeries(t, admin, "name="+collector.MKafkaTopicRate+"&match[]="+url.QueryEscape(`topic="`+testTopic+`"`)+"&to="+fmt.Sprint(now.Add(time.Minute).Unix()))
	if !strings.Contains(body, ",null]") {
		t.Errorf("+Inf not rendered as null: %.400s", body)
	}
	// Bad input is 400 in the error contract.
	for _, bad := range []string{"", "name=x&match[]=" + url.QueryEscape(`topic=~"(`), "name=x&from=yesterday", "name=x&step=0", "name=x&step=1ms", "name=x&agg=median",
		"name=x&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"} {
		r := admin.get(t, "/api/v1/series?"+bad)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `"code":"EINVALID"`) {
			t.Errorf("series?%s = %d %s", bad, r.status, r.body)
		}
	}
}

// Service metrics recorded through collector.History give the overview's
// failure ratio and latency quantiles; a principal who may not see the
// destination does not see them.
func TestServicesFailureRatioAndLatency(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	now := time.Now()
	labels := map[string]string{"service": "billing", "event_type": testTopic, "messaging_system": "kafka", "destination": testTopic, "consumer": testGroup}
	for i, at := range []time.Time{now.Add(-20 * time.Minute), now.Add(-time.Minute)} {
		k := uint64(i)
		samples := collector.ServiceSamples([]collector.ServicePoint{
			{Name: collector.PromEventProcessed, Labels: labels, Value: float64(90 * k)},
			{Name: collector.PromEventFailed, Labels: labels, Value: float64(10 * k)},
			{Name: collector.PromEventDuration, Labels: labels, Bounds: []float64{0.1, 0.5, 1},
				Buckets: []uint64{50 * k, 90 * k, 100 * k, 100 * k}, Sum: 30 * float64(k), Count: 100 * k},
		}, at)
		if err := e.series.Append(ctx, samples); err != nil {
			t.Fatal(err)
		}
	}
	r := e.admin(t, "/")
	mustContain(t, "services", r.body,
		`data-testid="failure-ratio">10%<`, `data-testid="latency-p50">100ms<`,
		`data-testid="latency-p95">750ms<`, `data-testid="latency-p99">950ms<`,
		`data-testid="service-row" data-service="billing"`,
	)
	mustContain(t, "events chart", chartOf(r.body, "svc-rates"), "processed", "failed")
	mustContain(t, "otto", e.as(t, "otto").get(t, "/").body, `data-testid="empty-services"`)
}
