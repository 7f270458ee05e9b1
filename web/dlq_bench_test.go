package web

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/indexer"
)

// The dead-letters landing page under load: 20 operators open
// /dead-letters at once, again and again, while the indexer writes a
// thousand dead letters a second, over a store of 200,000 entries in 200
// failure groups spread over a week. Half the operators see every tenant,
// half two tenants (their groups, counts and trends come from other rows
// and index ranges). The page is asked for the 24 h range, the heaviest
// trends its picker offers below 7 d (and the landing page's default
// before one default range applied everywhere).
const (
	loadOperators  = 20
	loadEntries    = 200_000
	loadGroups     = 200
	loadSpan       = 7 * 24 * time.Hour
	loadBatch      = 50                    // entries per indexing transaction…
	loadEvery      = 50 * time.Millisecond // …every 50 ms: 1,000 a second
	loadPagePath   = "/dead-letters?range=24h"
	loadPageGroups = 25 // groupsPerPage
)

var (
	loadTopics  = []string{"orders.order.created.v1.dlq", "billing.invoice.issued.v1.dlq", "notify.email.v1.dlq", "stock.reserved.v1.dlq"}
	loadTenants = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell"}
	// loadScoped are the tenants of the scoped operators.
	loadScoped = []string{"globex", "hooli"}
)

// loadGen makes the dead letters of the load: a group drawn from a Zipf
// law (a few causes hold most entries, as in real incidents), a tenant
// skewed the same way, a topic per group.
type loadGen struct {
	r    *rand.Rand
	zipf *rand.Zipf
	next map[string]int64 // next offset per topic
}

func newLoadGen(seed uint64) *loadGen {
	r := rand.New(rand.NewPCG(seed, 12))
	return &loadGen{r: r, zipf: rand.NewZipf(r, 1.3, 4, loadGroups-1), next: map[string]int64{}}
}

// item is one dead letter of topic failing at at, in group g.
func (l *loadGen) item(topic string, g int, at time.Time) dlqstore.IndexItem {
	tenant := loadTenants[min(int(l.r.ExpFloat64()*2.5), len(loadTenants)-1)]
	origin := strings.TrimSuffix(topic, ".dlq")
	off := l.next[topic]
	l.next[topic]++
	dl := delivery.DeadLetter{
		Format: delivery.FormatSwitchyard,
		Origin: delivery.Location{Broker: delivery.BrokerKafka, Cluster: "prod", Topic: origin, Partition: int32(g % 6), Offset: off},
		DLQ:    delivery.Location{Broker: delivery.BrokerKafka, Cluster: "prod", Topic: topic, Partition: 0, Offset: off},
		Error: delivery.ErrorInfo{Code: fmt.Sprintf("E_%c%c", 'A'+g/26, 'A'+g%26),
			Message: fmt.Sprintf("cause %c%c failed for order %d", 'a'+g/26, 'a'+g%26, l.r.IntN(1_000_000)), ExceptionType: "com.acme.FailureException"},
		Attempts: 3, FirstFailureAt: at.Add(-time.Minute), LastFailureAt: at,
		Payload: fmt.Appendf(nil, `{"order_id":"ord-%07d","amount":%d}`, l.r.IntN(10_000_000), l.r.IntN(100_000)),
		Headers: delivery.Headers{
			{Key: delivery.HeaderTenantID, Value: []byte(tenant)},
			{Key: delivery.HeaderEventType, Value: []byte(strings.TrimSuffix(origin, ".v1"))},
		},
	}
	return dlqstore.IndexItem{DL: dl, Fingerprint: delivery.Fingerprint(dl), PayloadSize: len(dl.Payload), PayloadHash: "0", ReceivedAt: at}
}

// group draws a failure group.
func (l *loadGen) group() int { return int(l.zipf.Uint64()) }

// seedLoadStore indexes the week of dead letters into a new store at path,
// ending at now, and closes it (checkpointed) for the variants to copy.
func seedLoadStore(b testing.TB, path string, now time.Time) {
	b.Helper()
	ctx := context.Background()
	st, err := dlqstore.Open(ctx, path, dlqstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	gen := newLoadGen(1)
	const batch = 2000
	byTopic := map[string][]dlqstore.IndexItem{}
	for i := range loadEntries {
		g := gen.group()
		topic := loadTopics[g%len(loadTopics)]
		at := now.Add(-loadSpan + time.Duration(i)*(loadSpan/loadEntries))
		byTopic[topic] = append(byTopic[topic], gen.item(topic, g, at))
		if items := byTopic[topic]; len(items) == batch || i == loadEntries-1 {
			for _, t := range loadTopics {
				if items := byTopic[t]; len(items) > 0 {
					if _, err := st.IndexKafka(ctx, "prod", t, 0, items, gen.next[t]); err != nil {
						b.Fatal(err)
					}
					byTopic[t] = nil
				}
			}
		}
	}
	if _, err := st.DB().ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
}

// openLoadCopy opens a private copy of the seeded store.
func openLoadCopy(b *testing.B, seeded string) *dlqstore.Store {
	b.Helper()
	path := filepath.Join(b.TempDir(), "dlq.db")
	raw, err := os.ReadFile(seeded)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		b.Fatal(err)
	}
	st, err := dlqstore.Open(context.Background(), path, dlqstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// indexLoad writes loadBatch new dead letters every loadEvery, failing
// now, round the topics, until ctx ends; started is closed after the
// first batch landed.
func indexLoad(ctx context.Context, st *dlqstore.Store, started chan<- struct{}) error {
	gen := newLoadGen(2)
	for _, t := range loadTopics {
		gen.next[t] = loadEntries // past every seeded offset
	}
	tick := time.NewTicker(loadEvery)
	defer tick.Stop()
	for n := 0; ; n++ {
		topic := loadTopics[n%len(loadTopics)]
		items := make([]dlqstore.IndexItem, 0, loadBatch)
		now := time.Now()
		for range loadBatch {
			items = append(items, gen.item(topic, gen.group(), now))
		}
		if _, err := st.IndexKafka(ctx, "prod", topic, 0, items, gen.next[topic]); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if n == 0 {
			close(started)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// underLoad runs op for loadOperators workers at once, b.N times in all,
// while indexLoad writes, and reports the p50 and p99 of op's latency.
func underLoad(b *testing.B, st *dlqstore.Store, op func(worker int) error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	indexed := make(chan error, 1)
	go func() { indexed <- indexLoad(ctx, st, started) }()
	select {
	case <-started:
	case err := <-indexed:
		b.Fatal(err)
	}
	work := make(chan struct{})
	var (
		mu   sync.Mutex
		durs []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	for w := range loadOperators {
		wg.Go(func() {
			for range work {
				start := time.Now()
				err := op(w)
				d := time.Since(start)
				mu.Lock()
				durs = append(durs, d)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	for b.Loop() {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.StopTimer()
	cancel()
	if err := cmpErr(<-indexed, errors.Join(errs...)); err != nil {
		b.Fatal(err)
	}
	slices.Sort(durs)
	if len(durs) > 0 {
		b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds())/1000, "p99-ms")
	}
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// loadSources is what the indexers report for the load's topics.
type loadSources struct{}

func (loadSources) Status() []indexer.SourceStatus {
	var out []indexer.SourceStatus
	for _, t := range loadTopics {
		out = append(out, indexer.SourceStatus{Broker: delivery.BrokerKafka, Cluster: "prod", Destination: t, Indexed: loadEntries / 4, LastIndexedAt: time.Now()})
	}
	return out
}

// BenchmarkDeadLettersUnderLoad is the landing page under load:
// switchyard answers it through the whole HTTP stack (session, policy, the
// dead-letter service with the console's default cache of its aggregates,
// the store, templ), switchyard-uncached the same with the cache off (every
// page queries the store), bare-sql runs the SQL the page needs — the open
// count, the sources' counts, a page of 25 groups with their stats, their
// trends — directly on the same store's connection pool, uncached, for the
// same operators' scopes, under the same indexing.
func BenchmarkDeadLettersUnderLoad(b *testing.B) {
	seeded := filepath.Join(b.TempDir(), "seed.db")
	seedLoadStore(b, seeded, time.Now())
	for _, v := range []struct {
		name string
		ttl  time.Duration
	}{{"switchyard", dlq.DefaultCacheTTL}, {"switchyard-uncached", 0}} {
		b.Run(v.name, func(b *testing.B) { benchLoadPage(b, seeded, v.ttl) })
	}
	b.Run("bare-sql", func(b *testing.B) {
		st := openLoadCopy(b, seeded)
		db := st.DB()
		underLoad(b, st, func(w int) error {
			var tenants []string
			if w%2 == 1 {
				tenants = append([]string{""}, loadScoped...)
			}
			return barePage(db, tenants, time.Now())
		})
	})
}

// benchLoadPage has the operators load the page through the HTTP stack,
// the service's aggregates cached for ttl (0: not).
func benchLoadPage(b *testing.B, seeded string, ttl time.Duration) {
	st := openLoadCopy(b, seeded)
	srv, cookies := loadServer(b, st, ttl)
	group := []byte(`data-testid="group" `)
	get := func(w int) error {
		req := httptest.NewRequest(http.MethodGet, loadPagePath, nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookies[w]})
		resp, err := srv.App().Test(req, -1)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		// The whole body is read, into a buffer of its announced size
		// (io.ReadAll would grow one by doubling: the harness's cost,
		// not the page's).
		var body bytes.Buffer
		body.Grow(int(max(resp.ContentLength, 0)) + bytes.MinRead)
		if _, err := body.ReadFrom(resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s = %d", loadPagePath, resp.StatusCode)
		}
		if n := bytes.Count(body.Bytes(), group); n != loadPageGroups {
			return fmt.Errorf("GET %s shows %d groups, want %d", loadPagePath, n, loadPageGroups)
		}
		return nil
	}
	underLoad(b, st, get)
}

// loadServer is the console's web server over st, with loadOperators
// signed-in operators: the even ones bound to everything, the odd ones to
// every resource of the loadScoped tenants.
func loadServer(b *testing.B, st *dlqstore.Store, ttl time.Duration) (*Server, []string) {
	b.Helper()
	ctx := context.Background()
	store := benchAccess(b)
	by, err := store.PrincipalFor(ctx, "admin")
	if err != nil {
		b.Fatal(err)
	}
	cookies := make([]string, loadOperators)
	for w := range loadOperators {
		user := fmt.Sprintf("op%02d", w)
		if err := store.CreateUser(ctx, by, user, operatorPassword); err != nil {
			b.Fatal(err)
		}
		tenants := []string{"*"}
		if w%2 == 1 {
			tenants = loadScoped
		}
		if _, err := store.AddBinding(ctx, by, access.Binding{Subject: "user:" + user, Role: access.RoleOperator,
			Resources: []string{"*"}, Tenants: tenants}); err != nil {
			b.Fatal(err)
		}
		sess, err := store.Login(ctx, user, operatorPassword, "127.0.0.1", "bench")
		if err != nil {
			b.Fatal(err)
		}
		cookies[w] = sess.Token
	}
	cache, err := dlq.NewCache(dlq.CacheOptions{TTL: ttl})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := dlq.New(dlq.Options{Store: st, Audit: store.Audit(), AuditReads: true, Indexers: loadSources{}, Cache: cache})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Logger: slog.New(slog.DiscardHandler), Auth: store, Policy: access.Policy{}, DLQ: svc, Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	return srv, cookies
}

// barePage runs the landing page's queries for a scope of tenants (nil =
// all) over the 24 h range and reads every row, as the store's SQL does it.
func barePage(db *sql.DB, tenants []string, now time.Time) error {
	ctx := context.Background()
	cond, args := "", []any(nil)
	if tenants != nil {
		cond = " AND tenant IN (" + strings.TrimSuffix(strings.Repeat("?,", len(tenants)), ",") + ")"
		for _, t := range tenants {
			args = append(args, t)
		}
	}
	drain := func(q string, args ...any) ([][]any, error) {
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var out [][]any
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return nil, err
			}
			out = append(out, vals)
		}
		return out, rows.Err()
	}
	// The open count, and the entries of each source.
	if _, err := drain("SELECT destination, status, SUM(n) FROM group_stats WHERE 1"+cond+" GROUP BY destination, status", args...); err != nil {
		return err
	}
	if _, err := drain("SELECT broker, cluster, destination, SUM(n), MAX(last_seen) FROM group_stats WHERE 1"+cond+
		" GROUP BY broker, cluster, destination HAVING SUM(n) > 0", args...); err != nil {
		return err
	}
	// A page of groups by count, with their stats.
	src := "SELECT id AS group_id, count AS cnt, first_seen AS fs, last_seen AS ls FROM groups WHERE count > 0"
	if tenants != nil {
		src = "SELECT group_id, SUM(n) AS cnt, MIN(first_seen) AS fs, MAX(last_seen) AS ls FROM group_stats WHERE 1" + cond +
			" GROUP BY group_id HAVING SUM(n) > 0"
	}
	groups, err := drain(`SELECT g.id, g.fingerprint, g.title, g.error_code, g.event_type, g.exception_type,
	g.state, g.owner, g.note, g.snoozed_until, g.updated_by, g.updated_at, a.cnt, a.fs, a.ls FROM (`+src+`) a
	JOIN groups g ON g.id = a.group_id ORDER BY a.cnt DESC, g.id DESC LIMIT `+fmt.Sprint(loadPageGroups+1), args...)
	if err != nil {
		return err
	}
	if len(groups) > loadPageGroups {
		groups = groups[:loadPageGroups]
	}
	ids := make([]any, len(groups))
	for i, g := range groups {
		ids[i] = g[0]
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
	if _, err := drain("SELECT group_id, tenant, broker, destination, status, n FROM group_stats WHERE group_id IN ("+in+")"+cond,
		append(slices.Clone(ids), args...)...); err != nil {
		return err
	}
	// Their trends, 24 buckets over the range, as the store counts them:
	// one range of the group index per (group, bucket).
	from, to := now.Add(-24*time.Hour), now
	step := to.Sub(from) / trendBuckets
	targs := append(slices.Clone(ids), from.UnixNano(), int64(step), trendBuckets, int64(step), to.UnixNano())
	_, err = drain(`WITH ids(id) AS (VALUES `+strings.TrimSuffix(strings.Repeat("(?),", len(ids)), ",")+`),
	b(k, lo) AS (SELECT 0, ? UNION ALL SELECT k + 1, lo + ? FROM b WHERE k + 1 < ?)
SELECT id, k, c FROM (SELECT ids.id, b.k, (SELECT count(*) FROM entries e
	WHERE e.group_id = ids.id AND e.last_failure_at >= b.lo AND e.last_failure_at < min(b.lo + ?, ?)`+strings.ReplaceAll(cond, "tenant", "e.tenant")+`) AS c
	FROM ids, b) WHERE c > 0`, append(targs, args...)...)
	return err
}
