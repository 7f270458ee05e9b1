package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/sqldb"
	"switchyard/tsdb"
)

// benchCluster is a synthesized view (our own type, not a broker) of
// 2,000 partitions — 200 topics of 10 — and 200 groups, each reading one
// topic, in every status.
func benchCluster(at time.Time, step int) collector.ClusterView {
	v := collector.ClusterView{Name: "bench", Polled: true, Reachable: true, HasSnapshot: true,
		TopicRates: map[string]float64{}, GroupRates: map[string]float64{}}
	v.Snapshot.TakenAt = at
	v.Snapshot.Brokers = []collector.Broker{{ID: 1}, {ID: 2}, {ID: 3}}
	statuses := []collector.Status{collector.StatusOK, collector.StatusOK, collector.StatusWarn, collector.StatusStall, collector.StatusStop}
	for ti := range 200 {
		name := fmt.Sprintf("domain%02d.entity%03d.event.v1", ti%20, ti)
		if ti%25 == 0 {
			name += ".dlq"
		}
		t := collector.Topic{Name: name, IsDLQ: v.Snapshot.IsDLQTopic(name)}
		for p := range int32(10) {
			high := int64(step*100 + ti*10 + int(p))
			t.Partitions = append(t.Partitions, collector.Partition{Partition: p, Leader: p % 3, Low: 0, High: high, Rate: float64(ti%9) / 10})
			t.Messages += high
		}
		v.Snapshot.Topics = append(v.Snapshot.Topics, t)
		v.TopicRates[name] = float64(ti % 9)
	}
	slices.SortFunc(v.Snapshot.Topics, func(a, b collector.Topic) int { return compare(a.Name, b.Name) })
	for gi := range 200 {
		t := v.Snapshot.Topics[gi]
		g := collector.Group{Name: fmt.Sprintf("service-%03d", gi), State: "Stable", Members: 3, Complete: 1}
		for _, p := range t.Partitions {
			st := statuses[(gi+int(p.Partition))%len(statuses)]
			lag := int64((gi*7+int(p.Partition)*13+step)%500 + 1)
			g.Partitions = append(g.Partitions, collector.GroupPartition{Topic: t.Name, Partition: p.Partition,
				Committed: p.High - lag, High: p.High, Lag: lag, Member: fmt.Sprintf("consumer-%d", p.Partition%3),
				LagSeconds: float64(lag) / 10, LagSecondsKnown: true, Status: st,
				Reason: fmt.Sprintf("%s: offset %d over 10 commits", st, p.High-lag)})
			g.TotalLag += lag
			if float64(lag)/10 > g.MaxLagSeconds {
				g.MaxLagSeconds, g.MaxLagTopic, g.MaxLagPartition = float64(lag)/10, t.Name, p.Partition
			}
		}
		g.Status = statuses[gi%len(statuses)]
		if g.Status == collector.StatusStall || g.Status == collector.StatusStop {
			g.Status = collector.StatusErr
		}
		g.Reason = g.Status.String() + ": synthetic"
		v.Snapshot.Groups = append(v.Snapshot.Groups, g)
		v.GroupRates[g.Name] = float64(gi % 5)
	}
	return v
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// benchAccess is a real access store in a console database of its own,
// with the admin account.
func benchAccess(b *testing.B) *access.Store {
	b.Helper()
	db, err := sqldb.Open(context.Background(), filepath.Join(b.TempDir(), "console.db"), access.Schema())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	store, err := access.NewStore(db, access.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := store.EnsureAdmin(context.Background(), adminPassword); err != nil {
		b.Fatal(err)
	}
	return store
}

type benchEnv struct {
	srv    *Server
	cookie string
}

// newBenchEnv builds a server over the synthesized cluster and a real
// time-series store holding one hour of its history at a 30 s interval,
// recorded through collector.History, with a real access store for the
// session.
func newBenchEnv(b *testing.B, cold, scoped bool) *benchEnv {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	series, err := tsdb.Open(ctx, tsdb.Options{Dir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { series.Close() })
	hist := collector.NewHistory(collector.HistoryOptions{Store: series})
	var view collector.ClusterView
	for i := 120; i >= 0; i-- {
		view = benchCluster(now.Add(-time.Duration(i)*30*time.Second), 120-i)
		hist.RecordKafka(ctx, view)
	}
	store := benchAccess(b)
	user, password := "admin", adminPassword
	if scoped {
		// A viewer of one domain's topics (and their groups) for t1: every
		// history query carries her scope as label matchers.
		user, password = "sam", viewerPassword
		if err := store.AddUser(ctx, user, password, access.RoleViewer); err != nil {
			b.Fatal(err)
		}
		by, err := store.PrincipalFor(ctx, "admin")
		if err != nil {
			b.Fatal(err)
		}
		bindings, err := store.ListBindings(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, bd := range bindings {
			if bd.Subject == "user:sam" {
				if err := store.DeleteBinding(ctx, by, bd.ID); err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, err := store.AddBinding(ctx, by, access.Binding{Subject: "user:sam", Role: access.RoleViewer,
			Resources: []string{"kafka:bench/domain03.*", "kafka:bench/group/service-*"}, Tenants: []string{"t1"}}); err != nil {
			b.Fatal(err)
		}
	}
	sess, err := store.Login(ctx, user, password, "127.0.0.1", "bench")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{
		Logger: slog.New(slog.DiscardHandler), Auth: store, Policy: access.Policy{},
		Clusters: fixedClusters{view}, Series: series, Now: time.Now,
	})
	if err != nil {
		b.Fatal(err)
	}
	if cold {
		srv.series = series // every request reads the store
	}
	return &benchEnv{srv: srv, cookie: sess.Token}
}

func (e *benchEnv) get(b *testing.B, path string) time.Duration {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.cookie})
	start := time.Now()
	resp, err := e.srv.App().Test(req, -1)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if resp.StatusCode != http.StatusOK || n == 0 {
		b.Fatalf("GET %s = %d", path, resp.StatusCode)
	}
	return d
}

// benchPage reports ns/op and the p99 of one page's full request (routing,
// session check, policy filtering, history queries, rendering).
func benchPage(b *testing.B, path string) {
	for _, cold := range []bool{false, true} {
		name := "cached"
		if cold {
			name = "uncached"
		}
		b.Run(name, func(b *testing.B) { benchPageOnce(b, path, cold, false) })
	}
}

func benchPageOnce(b *testing.B, path string, cold, scoped bool) {
	e := newBenchEnv(b, cold, scoped)
	e.get(b, path) // warm up
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		durs = append(durs, e.get(b, path))
	}
	b.StopTimer()
	slices.Sort(durs)
	if len(durs) > 0 {
		b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkOverview2000Partitions renders the overview of a cluster of
// 2,000 partitions and 200 groups with an hour of history (range 1h).
func BenchmarkOverview2000Partitions(b *testing.B) { benchPage(b, "/") }

// BenchmarkOverviewScoped2000Partitions is the uncached overview for a
// viewer of one domain's topics in tenant t1: what narrowing every history
// query to her scope costs beside the admin's uncached overview.
func BenchmarkOverviewScoped2000Partitions(b *testing.B) { benchPageOnce(b, "/", true, true) }

// BenchmarkGroupPage2000Partitions renders a consumer group page (10
// partitions, per-partition chart) on that cluster.
func BenchmarkGroupPage2000Partitions(b *testing.B) {
	benchPage(b, "/consumers/bench/service-007")
}

// BenchmarkConsumersList200Groups renders the consumers list.
func BenchmarkConsumersList200Groups(b *testing.B) { benchPage(b, "/consumers?sort=status") }
