package dlq_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
	"switchyard/internal/testenv"
	"switchyard/redrive"
)

// countingStore is the real store, counting the landing page's aggregate
// queries that reach it; with gate set, Counts waits for it to close.
type countingStore struct {
	dlqstore.ViewStore
	groups, trends, counts, sources atomic.Int64
	gate                            chan struct{}
}

func (s *countingStore) Groups(ctx context.Context, f dlqstore.GroupFilter) ([]dlqstore.Group, string, error) {
	s.groups.Add(1)
	return s.ViewStore.Groups(ctx, f)
}

func (s *countingStore) Trends(ctx context.Context, ids []int64, sc *dlqstore.TenantScope, from, to time.Time, step time.Duration) (map[int64][]int, error) {
	s.trends.Add(1)
	return s.ViewStore.Trends(ctx, ids, sc, from, to, step)
}

func (s *countingStore) Counts(ctx context.Context, sc *dlqstore.TenantScope) (dlqstore.Counts, error) {
	s.counts.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	return s.ViewStore.Counts(ctx, sc)
}

func (s *countingStore) SourceCounts(ctx context.Context, sc *dlqstore.TenantScope) ([]dlqstore.SourceCount, error) {
	s.sources.Add(1)
	return s.ViewStore.SourceCounts(ctx, sc)
}

// clock is a settable cache clock.
type clock struct{ at atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.at.Load()) }
func (c *clock) advance(d time.Duration) { c.at.Add(int64(d)) }

// cached is the world's service over a counting store with a cache of ttl
// (and at most max results) on clk.
func (w *world) cached(t *testing.T, ttl time.Duration, max int, clk *clock) (*dlq.Service, *countingStore, *dlq.Cache) {
	t.Helper()
	cache, err := dlq.NewCache(dlq.CacheOptions{TTL: ttl, MaxEntries: max, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{ViewStore: w.store}
	o := w.opts
	o.Store, o.Cache = cs, cache
	return w.service(t, o), cs, cache
}

// Callers with different scopes never share a result, however alike:
// tenants alone, tenants and resource rules, a subset of tenants. Callers
// with the same scope, whoever they are and however their grants order
// or repeat tenants, share one query.
func TestCacheNeverSharesAcrossScopes(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	svc, cs, _ := w.cached(t, time.Hour, 0, &clock{})
	view := []access.Action{access.ActionView}
	callers := []struct {
		name string
		c    dlq.Caller
		open int
	}{
		{"admin", admin, 13},
		{"olga (orders of t1)", olga, 6},
		{"tom (everything of t1)", callerWith("tom", grant(everything, t1, view...)), 10},
		{"tia (everything of t2)", callerWith("tia", grant(everything, []string{"t2"}, view...)), 4},
		{"tim (everything of t1 and t2)", callerWith("tim", grant(everything, []string{"t1", "t2"}, view...)), 13},
		{"oscar (orders of t1 and t2)", callerWith("oscar", grant(orders, []string{"t1", "t2"}, view...)), 9},
	}
	for round := range 2 {
		for _, c := range callers {
			if n, err := svc.OpenCount(ctx, c.c); err != nil || n != c.open {
				t.Errorf("round %d: %s's open count = %d (%v), want %d", round, c.name, n, err, c.open)
			}
		}
	}
	if n := cs.counts.Load(); n != int64(len(callers)) {
		t.Errorf("the store counted %d times for %d scopes asked twice each, want once per scope", n, len(callers))
	}
	// The same scopes held by other people, tenants reordered and
	// repeated: no new query.
	same := []struct {
		c    dlq.Caller
		open int
	}{
		{callerWith("tina", grant(everything, []string{"t2", "t1", "t2"}, view...)), 13},
		{callerWith("otto", grant(orders, []string{"t2", "t1", "t1"}, view...)), 9},
		{callerWith("ada2", grant(everything, everything, access.ActionView)), 13},
	}
	for _, c := range same {
		if n, err := svc.OpenCount(ctx, c.c); err != nil || n != c.open {
			t.Errorf("%s's open count = %d (%v), want %d", c.c.P.User, n, err, c.open)
		}
	}
	if n := cs.counts.Load(); n != int64(len(callers)) {
		t.Errorf("the store counted %d times, want %d: callers of an already asked scope share its result", n, len(callers))
	}

	// Groups, their trends and the sources likewise: olga's page holds
	// her A entries only, whoever asked first.
	for _, c := range []dlq.Caller{admin, olga, admin, olga} {
		groups, _, err := svc.Groups(ctx, c, dlqstore.GroupFilter{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"A": 9, "B": 4}
		if c.P.User == "olga" {
			want = map[string]int{"A": 6}
		}
		got := map[string]int{}
		ids := []int64{}
		for _, g := range groups {
			got[g.ErrorCode] = g.Count
			ids = append(ids, g.ID)
		}
		if !mapsEqual(got, want) {
			t.Errorf("%s's groups = %v, want %v", c.P.User, got, want)
		}
		trends, err := svc.Trends(ctx, c, ids, dlqstoretest.T0().Add(-time.Hour), dlqstoretest.T0().Add(time.Hour), 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			if sum := sumOf(trends[g.ID]); sum != want[g.ErrorCode] {
				t.Errorf("%s's trend of %s sums to %d, want %d", c.P.User, g.ErrorCode, sum, want[g.ErrorCode])
			}
		}
		sources, _, err := svc.Sources(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		entries := map[string]int{}
		for _, s := range sources {
			entries[s.Destination] = s.Entries
		}
		wantEntries := map[string]int{ordersDLQ: 9, paymentsDLQ: 4}
		if c.P.User == "olga" {
			wantEntries = map[string]int{ordersDLQ: 6}
		}
		if !mapsEqual(entries, wantEntries) {
			t.Errorf("%s's sources = %v, want %v", c.P.User, entries, wantEntries)
		}
	}
	if g, tr, s := cs.groups.Load(), cs.trends.Load(), cs.sources.Load(); g != 2 || tr != 2 || s != 2 {
		t.Errorf("two scopes asked twice queried groups %d, trends %d, sources %d times, want 2 each", g, tr, s)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// Twenty operators of one scope missing the cache at once run the query
// once and all get its answer.
func TestCacheRunsConcurrentMissesOnce(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	svc, cs, cache := w.cached(t, time.Hour, 0, &clock{})
	cs.gate = make(chan struct{})
	const operators = 20
	var wg sync.WaitGroup
	got := make([]int, operators)
	errs := make([]error, operators)
	for i := range operators {
		wg.Go(func() {
			c := callerWith("op"+string(rune('a'+i)), grant(everything, everything, access.ActionView))
			got[i], errs[i] = svc.OpenCount(ctx, c)
		})
	}
	// One query is held at the store; the others wait for it.
	testenv.WaitWithin(t, 10*time.Second, "19 operators waiting on the first one's query", func() bool {
		return cache.Stats().Shared == operators-1
	})
	close(cs.gate)
	wg.Wait()
	for i := range operators {
		if errs[i] != nil || got[i] != 13 {
			t.Errorf("operator %d's open count = %d (%v), want 13", i, got[i], errs[i])
		}
	}
	if n := cs.counts.Load(); n != 1 {
		t.Errorf("%d concurrent identical reads queried the store %d times, want once", operators, n)
	}
}

// New dead letters show once the TTL has passed; an operator's own change
// — triage, a job and what it did to entries — at once.
func TestCacheShowsOperatorsChangesAtOnce(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	clk := &clock{}
	cache, err := dlq.NewCache(dlq.CacheOptions{TTL: time.Minute, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	// The engine writes through the watched store, as the console's does.
	eng, err := redrive.New(redrive.Options{Store: cache.WatchJobs(w.store), Unlimited: true, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- eng.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-ran; err != nil {
			t.Error(err)
		}
	})
	o := w.opts
	o.Cache, o.Jobs = cache, eng
	svc := w.service(t, o)

	open := func(want int, when string) {
		t.Helper()
		if n, err := svc.OpenCount(ctx, admin); err != nil || n != want {
			t.Errorf("%s: the open count = %d (%v), want %d", when, n, err, want)
		}
	}
	groupOf := func(code string) dlqstore.Group {
		t.Helper()
		groups, _, err := svc.Groups(ctx, admin, dlqstore.GroupFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			if g.ErrorCode == code {
				return g
			}
		}
		t.Fatalf("no group %s in %+v", code, groups)
		return dlqstore.Group{}
	}
	open(13, "at first")
	a := groupOf("A")

	// A dead letter indexed: the page may be up to the TTL behind.
	sp := dlqstoretest.Spec{Dest: paymentsDLQ, Off: 4, Tenant: "t1", Code: "B", Origin: "payments", Msg: "failure B",
		At: dlqstoretest.T0().Add(time.Hour)}
	if _, err := w.store.IndexKafka(ctx, "main", paymentsDLQ, 0, []dlqstore.IndexItem{sp.Item()}, 5); err != nil {
		t.Fatal(err)
	}
	open(13, "within the TTL of a new dead letter")
	clk.advance(time.Minute)
	open(14, "the TTL after a new dead letter")

	// Triage shows at once.
	if _, err := svc.SetTriage(ctx, admin, a.ID, dlqstore.Triage{State: dlqstore.TriageAcknowledged, Owner: "ada"}); err != nil {
		t.Fatal(err)
	}
	if g := groupOf("A"); g.Triage.State != dlqstore.TriageAcknowledged {
		t.Errorf("group A right after its triage is %q, want acknowledged", g.Triage.State)
	}

	// A discard job: its entries leave the open count as the engine
	// discards them, in the background, whatever was read meanwhile.
	b := groupOf("B")
	job, err := svc.Start(ctx, admin, redrive.Request{Action: redrive.ActionDiscard, Selector: redrive.Selector{Group: b.ID}, Reason: "duplicates"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitWithin(t, 20*time.Second, "the discard job to end", func() bool {
		_, _ = svc.OpenCount(ctx, admin) // keep a result cached while it runs
		j, err := svc.Job(ctx, admin, job.ID)
		return err == nil && j.Finished()
	})
	open(9, "right after the discard of group B's 5 entries")
}

// At most MaxEntries results are kept, the least recently used dropped;
// a TTL of 0 caches nothing.
func TestCacheIsBoundedAndCanBeOff(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	svc, cs, _ := w.cached(t, time.Hour, 2, &clock{})
	tom := callerWith("tom", grant(everything, t1, access.ActionView))
	for _, c := range []dlq.Caller{admin, olga, admin, tom, admin, olga} {
		if _, err := svc.OpenCount(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// admin, olga kept; admin used; tom in, olga (least recent) out;
	// admin kept; olga again.
	if n := cs.counts.Load(); n != 4 {
		t.Errorf("the store counted %d times, want 4 (olga's result dropped for tom's)", n)
	}

	off, err := dlq.NewCache(dlq.CacheOptions{})
	if err != nil || off != nil {
		t.Fatalf("a cache with TTL 0 = %v (%v), want none", off, err)
	}
	if _, err := dlq.NewCache(dlq.CacheOptions{TTL: -time.Second}); err == nil {
		t.Error("a negative TTL was accepted")
	}
	cs2 := &countingStore{ViewStore: w.store}
	o := w.opts
	o.Store = cs2
	uncached := w.service(t, o)
	for range 3 {
		if _, err := uncached.OpenCount(ctx, admin); err != nil {
			t.Fatal(err)
		}
	}
	if n := cs2.counts.Load(); n != 3 {
		t.Errorf("without a cache 3 reads counted %d times, want 3", n)
	}
}

// The trends of a relative range ("the last 24 h", ending now) asked
// within one step share a key; a window a step later does not.
func TestCacheSharesTrendsWithinAStep(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	svc, cs, _ := w.cached(t, time.Hour, 0, &clock{})
	groups, _, err := svc.Groups(ctx, admin, dlqstore.GroupFilter{})
	if err != nil {
		t.Fatal(err)
	}
	ids := []int64{groups[0].ID, groups[1].ID}
	step := 10 * time.Minute
	end := dlqstoretest.T0().Truncate(step).Add(2 * time.Hour)
	for _, to := range []time.Time{end.Add(time.Second), end.Add(3 * time.Second), end.Add(step + time.Second)} {
		if _, err := svc.Trends(ctx, admin, ids, to.Add(-24*time.Hour), to, step); err != nil {
			t.Fatal(err)
		}
	}
	if n := cs.trends.Load(); n != 2 {
		t.Errorf("three windows, two of them within one step, queried trends %d times, want 2", n)
	}
}

// A result read in the second half of its TTL is served and refreshed in
// the background, so that a page read steadily never waits for a query
// and still shows new dead letters within the TTL.
func TestCacheRefreshesAhead(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	clk := &clock{}
	svc, cs, _ := w.cached(t, time.Minute, 0, clk)
	open := func() int {
		t.Helper()
		n, err := svc.OpenCount(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := open(); n != 13 {
		t.Fatalf("the open count = %d, want 13", n)
	}
	sp := dlqstoretest.Spec{Dest: paymentsDLQ, Off: 4, Tenant: "t1", Code: "B", Origin: "payments", Msg: "failure B",
		At: dlqstoretest.T0().Add(time.Hour)}
	if _, err := w.store.IndexKafka(ctx, "main", paymentsDLQ, 0, []dlqstore.IndexItem{sp.Item()}, 5); err != nil {
		t.Fatal(err)
	}
	clk.advance(20 * time.Second)
	if n := open(); n != 13 || cs.counts.Load() != 1 {
		t.Errorf("in the first half of the TTL: %d (%d queries), want the kept 13 (1 query)", n, cs.counts.Load())
	}
	clk.advance(20 * time.Second)
	if n := open(); n != 13 {
		t.Errorf("in the second half of the TTL the read got %d, want the kept 13 without waiting", n)
	}
	testenv.WaitWithin(t, 10*time.Second, "the refreshed count", func() bool { return open() == 14 })
	// Past the first result's TTL (it started at 0 and is kept for a
	// minute), before the refreshed one's (started at 40 s) second half,
	// where reading would start another refresh: at 70 s the check below
	// raced it.
	clk.advance(25 * time.Second)
	if n, q := open(), cs.counts.Load(); n != 14 || q != 2 {
		t.Errorf("after the first result's TTL: %d (%d queries), want the refreshed 14 (2 queries)", n, q)
	}
}
