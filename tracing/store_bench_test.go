package tracing

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// searchBenchSpans is how many spans BenchmarkSpanSearch searches: the issue's
// 2,000,000, or TRACING_BENCH_SPANS for a quick look.
var searchBenchSpans = func() int {
	if n, err := strconv.Atoi(os.Getenv("TRACING_BENCH_SPANS")); err == nil && n > 0 {
		return n / 5 * 5
	}
	return 2_000_000
}()

// searchBenchEnd is where the seeded 72 hours end.
var searchBenchEnd = time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)

var searchBenchServices = []string{"orders", "billing", "inventory", "shipping", "mailer", "gateway", "fraud", "ledger", "search", "catalog"}

// searchBenchResources are the services' resource attributes, one process each,
// as an OTel SDK sends them.
var searchBenchResources = func() [][]Attr {
	var out [][]Attr
	for i, svc := range searchBenchServices {
		out = append(out, []Attr{
			{"service.name", svc}, {"service.version", "1." + strconv.Itoa(i) + ".0"},
			{"service.instance.id", fmt.Sprintf("%s-7d9f%02d", svc, i)}, {"host.name", "node-" + strconv.Itoa(i%4)},
			{"telemetry.sdk.name", "opentelemetry"}, {"telemetry.sdk.language", "go"}, {"telemetry.sdk.version", "1.47.0"},
		})
	}
	return out
}()

// searchBenchStory appends the five spans of message story i: an HTTP request
// that publishes an event, its consumer in another service with one
// attempt (a second one for 1 in 20, failed first), and a database call.
// Starts are spread evenly over 72 hours; durations are log-normal
// (median 5 ms). Trace and event ids are random, as SDKs make them.
// Every tenth correlation id is shared by two stories.
func searchBenchStory(out []Span, i int, r *rand.Rand) []Span {
	// Stories arrive in time order, as they do at a receiver, a second
	// of jitter apart.
	step := int64(72*time.Hour) / int64(searchBenchSpans/5)
	start := searchBenchEnd.Add(-72*time.Hour + time.Duration(int64(i)*step+r.Int64N(int64(time.Second))))
	var trace TraceID
	putBE64(trace[:8], r.Uint64())
	putBE64(trace[8:], uint64(i)+1)
	prod, cons := i%len(searchBenchServices), (i*7+3)%len(searchBenchServices)
	tenant := "tenant-" + strconv.Itoa(i%8)
	corr := i
	if i%10 == 9 {
		corr = i - 1
	}
	evType := searchBenchServices[prod] + ".thing." + []string{"created", "updated", "cancelled"}[i%3] + ".v1"
	topic := searchBenchServices[prod] + ".events"
	evID := fmt.Sprintf("%016x", r.Uint64())
	dur := func() time.Duration {
		return time.Duration(math.Exp(math.Log(float64(5*time.Millisecond)) + 1.2*r.NormFloat64()))
	}
	msg := []Attr{
		{delivery.AttrSystem, "kafka"}, {delivery.AttrDest, topic}, {delivery.AttrCluster, "prod"},
		{delivery.AttrMessageID, evID}, {delivery.AttrCorrelationID, "corr-" + strconv.Itoa(corr)}, {delivery.AttrEventType, evType},
		{delivery.AttrTenant, tenant},
	}
	mk := func(n int, parent int, svc int, name string, kind Kind, at time.Time, attrs []Attr) Span {
		sp := Span{TraceID: trace, Name: name, Kind: kind, Start: at, End: at.Add(dur()), Attrs: attrs, ResourceAttrs: searchBenchResources[svc]}
		putBE64(sp.SpanID[:], uint64(i)<<4|uint64(n))
		if parent > 0 {
			putBE64(sp.ParentSpanID[:], uint64(i)<<4|uint64(parent))
		}
		Derive(&sp)
		return sp
	}
	root := mk(1, 0, prod, "POST /api/"+searchBenchServices[prod], KindServer, start, []Attr{
		{"http.request.method", "POST"}, {"url.path", "/api/" + searchBenchServices[prod]}, {"http.response.status_code", "202"},
		{"client.address", "10.0.3." + strconv.Itoa(i%250)}, {delivery.AttrTenant, tenant},
	})
	root.End = root.Start.Add(dur() + 20*time.Millisecond)
	pub := mk(2, 1, prod, topic+" publish", KindProducer, start.Add(time.Millisecond),
		append(slices.Clone(msg), Attr{delivery.AttrStep, delivery.StepPublish}, Attr{"messaging.kafka.message.key", evID[:8]}))
	proc := mk(3, 2, cons, topic+" process", KindConsumer, start.Add(3*time.Millisecond),
		append(slices.Clone(msg), Attr{delivery.AttrConsumer, searchBenchServices[cons]}, Attr{delivery.AttrStep, delivery.StepProcess},
			Attr{"messaging.kafka.offset", strconv.Itoa(i)}))
	att := mk(4, 3, cons, "handle "+evType, KindInternal, proc.Start.Add(100*time.Microsecond),
		[]Attr{{delivery.AttrAttempt, "1"}, {delivery.AttrStep, delivery.StepAttempt}, {delivery.AttrTenant, tenant}})
	db := mk(5, 4, cons, "INSERT "+searchBenchServices[cons], KindClient, att.Start.Add(50*time.Microsecond),
		[]Attr{{"db.system", "postgresql"}, {"db.operation.name", "INSERT"}, {"db.collection.name", searchBenchServices[cons]}, {"server.address", "db-1"}})
	out = append(out, root, pub, proc, att, db)
	if i%20 == 0 {
		out[len(out)-2].Status, out[len(out)-2].StatusMsg = StatusError, "timeout calling "+searchBenchServices[(cons+1)%len(searchBenchServices)]
		out[len(out)-2].Events = []Event{{Time: att.End, Name: "exception", Attrs: []Attr{{"exception.type", "TimeoutError"}, {"exception.message", "context deadline exceeded"}}}}
		retry := mk(6, 3, cons, "handle "+evType, KindInternal, att.End.Add(200*time.Millisecond),
			[]Attr{{delivery.AttrAttempt, "2"}, {delivery.AttrStep, delivery.StepAttempt}, {delivery.AttrTenant, tenant}})
		out = append(out[:len(out)-1], retry) // keeps five spans a story: the retry instead of the db call
	}
	return out
}

func putBE64(b []byte, v uint64) {
	for k := range 8 {
		b[k] = byte(v >> (56 - 8*k))
	}
}

type searchBenchDB struct {
	s     *Store
	dir   string
	keep  bool
	bytes int64
	corrs int // correlation ids are corr-0 … corr-(corrs-1)
}

var benchSearchStore = sync.OnceValues(func() (*searchBenchDB, error) {
	dir, keep := os.Getenv("TRACING_BENCH_DIR"), true
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "tracing-bench-"); err != nil {
			return nil, err
		}
		keep = false
	}
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, "traces.db"), Options{Now: func() time.Time { return searchBenchEnd }})
	if err != nil {
		return nil, err
	}
	db := &searchBenchDB{s: s, dir: dir, keep: keep, corrs: searchBenchSpans / 5}
	searchBenchBuilt.Lock()
	searchBenchBuilt.db = db
	searchBenchBuilt.Unlock()
	var have int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM spans`).Scan(&have); err != nil {
		return nil, err
	}
	if have != searchBenchSpans {
		if have != 0 {
			return nil, fmt.Errorf("%s has %d spans, want 0 or %d", dir, have, searchBenchSpans)
		}
		began := time.Now()
		r := rand.New(rand.NewPCG(13, 13))
		batch := make([]Span, 0, 5000)
		for i := range searchBenchSpans / 5 {
			batch = searchBenchStory(batch, i, r)
			if len(batch) >= 5000 {
				if err := s.Write(ctx, batch); err != nil {
					return nil, err
				}
				batch = batch[:0]
			}
		}
		if err := s.Write(ctx, batch); err != nil {
			return nil, err
		}
		took := time.Since(began)
		fmt.Fprintf(os.Stderr, "tracing bench: wrote %d spans in %s (%.0f spans/s)\n", searchBenchSpans, took.Round(time.Second), float64(searchBenchSpans)/took.Seconds())
	}
	if _, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return nil, err
	}
	if db.bytes, err = s.size(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "tracing bench: %d spans, %d bytes (%.0f bytes/span)\n", searchBenchSpans, db.bytes, float64(db.bytes)/float64(searchBenchSpans))
	return db, nil
})

// searchBenchBuilt records the bench database so that TestMain closes it and
// removes its directory (unless TRACING_BENCH_DIR keeps it).
var searchBenchBuilt struct {
	sync.Mutex
	db *searchBenchDB
}

func TestMain(m *testing.M) {
	code := m.Run()
	searchBenchBuilt.Lock()
	if db := searchBenchBuilt.db; db != nil {
		db.s.Close()
		if !db.keep {
			os.RemoveAll(db.dir)
		}
	}
	searchBenchBuilt.Unlock()
	os.Exit(code)
}

// BenchmarkSpanSearch runs first-page searches (limit 50) over 2,000,000
// stored spans, as the search page does: a service with a minimum duration
// in a time range (1 to 24 hours, minimum 20 to 250 ms), and a correlation
// id. Beside each, /bare-sql runs the best hand-written query for the same
// page on the same file, reading the same columns without building Spans.
// The switchyard variants also report the file's bytes per span. Set
// TRACING_BENCH_DIR to keep the seeded file between runs.
func BenchmarkSpanSearch(b *testing.B) {
	db, err := benchSearchStore()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	serviceQuery := func(r *rand.Rand) SearchQuery {
		to := searchBenchEnd.Add(-time.Duration(r.Int64N(int64(48 * time.Hour))))
		return SearchQuery{
			Service:     searchBenchServices[r.IntN(len(searchBenchServices))],
			MinDuration: []time.Duration{20, 50, 100, 250}[r.IntN(4)] * time.Millisecond,
			From:        to.Add(-time.Duration(1+r.IntN(24)) * time.Hour), To: to,
		}
	}
	corrQuery := func(r *rand.Rand) SearchQuery {
		return SearchQuery{CorrelationID: "corr-" + strconv.Itoa(r.IntN(db.corrs))}
	}
	type benchCase struct {
		name string
		q    func(*rand.Rand) SearchQuery
		sc   *access.TenantScope // the caller's scope; nil: unrestricted
		bare func(SearchQuery) (string, []any)
	}
	// A caller of one tenant and of a new one without spans yet opens the
	// search page: the newest spans they may see, nothing else to narrow.
	scoped := &access.TenantScope{Tenants: []string{"tenant-3", "tenant-new"}}
	newest := func(*rand.Rand) SearchQuery { return SearchQuery{} }
	// Both variants run the same query sequence; reading it once first
	// puts its pages in the OS cache, so that the one that runs first is
	// not the one that pays for the disk.
	warm := func(c benchCase) {
		r := rand.New(rand.NewPCG(1, 2))
		for range 1000 {
			query, args := c.bare(c.q(r))
			if _, err := bareSearchRows(ctx, db.s.DB(), query, args); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, c := range []benchCase{
		{"service-duration-range", serviceQuery, nil, func(q SearchQuery) (string, []any) {
			return `SELECT ` + spanColumns + spanFrom + ` WHERE s.service = ? AND s.start_ns >= ? AND s.start_ns < ? AND s.dur_ns >= ?
				ORDER BY s.start_ns DESC, s.id DESC LIMIT 51`, []any{q.Service, q.From.UnixNano(), q.To.UnixNano(), int64(q.MinDuration)}
		}},
		{"correlation", corrQuery, nil, func(q SearchQuery) (string, []any) {
			return `SELECT ` + spanColumns + spanFrom + ` WHERE s.correlation_id = ? ORDER BY s.start_ns DESC, s.id DESC LIMIT 51`, []any{q.CorrelationID}
		}},
		// The best hand-written form: one arm per tenant, merged.
		{"scoped-newest", newest, scoped, func(SearchQuery) (string, []any) {
			arm := `SELECT ` + spanColumns + spanFrom + ` WHERE s.tenant = ?`
			return arm + ` UNION ALL ` + arm + ` UNION ALL ` + arm + ` ORDER BY 5 DESC, 1 DESC LIMIT 51`, []any{"", "tenant-3", "tenant-new"}
		}},
	} {
		warm(c)
		b.Run(c.name+"/switchyard", func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			var lat []time.Duration
			found := 0
			for b.Loop() {
				q := c.q(r)
				began := time.Now()
				res, err := db.s.Search(ctx, q, c.sc)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(began))
				found += len(res.Spans)
			}
			reportSearchP99(b, lat, found)
			b.ReportMetric(float64(db.bytes)/float64(searchBenchSpans), "bytes/span")
		})
		b.Run(c.name+"/bare-sql", func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			var lat []time.Duration
			found := 0
			for b.Loop() {
				query, args := c.bare(c.q(r))
				began := time.Now()
				n, err := bareSearchRows(ctx, db.s.DB(), query, args)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(began))
				found += min(n, 50)
			}
			reportSearchP99(b, lat, found)
		})
	}
}

// bareSearchRows runs query and reads every column of every row as raw values.
func bareSearchRows(ctx context.Context, db *sql.DB, query string, args []any) (int, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

func reportSearchP99(b *testing.B, lat []time.Duration, found int) {
	if len(lat) == 0 {
		return
	}
	reportLatency(b, lat)
	b.ReportMetric(float64(found)/float64(len(lat)), "spans/query")
}

// reportLatency reports the p99 and p50 of lat (sorted in place), in ms:
// scripts/bench.sh compares the p99.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[min(len(lat)*99/100, len(lat)-1)].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}
