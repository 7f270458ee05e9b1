package web

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"switchyard/tsdb"
)

// seriesCache keeps query results for a short while. The store reads one
// series at a time from disk, so a chart over every topic of a large
// cluster costs one read per topic; the pages refresh every few seconds
// and many people look at the same ranges, so the same query repeats. A
// result is reused while the range's bucket boundaries have not moved and
// for at most maxAge, so a chart is never more than one step (and never
// more than maxAge) behind the store. Results are shared: callers must
// not modify them.
type seriesCache struct {
	store  SeriesStore
	now    func() time.Time
	maxAge time.Duration
	limit  int

	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	series  []tsdb.Series
	expires time.Time
}

func newSeriesCache(store SeriesStore, now func() time.Time) *seriesCache {
	return &seriesCache{store: store, now: now, maxAge: 30 * time.Second, limit: 1024, entries: map[string]cacheEntry{}}
}

// cacheKey names a query unambiguously: every name and value is quoted,
// so that no label a caller types (match[]) can make its query's key equal
// to that of a query with another scope.
func cacheKey(q tsdb.Q) string {
	var b strings.Builder
	step := q.Step
	matcher := func(m tsdb.Matcher) {
		b.WriteString(strconv.Quote(m.Label))
		b.WriteString(string(m.Op))
		b.WriteString(strconv.Quote(m.Value))
	}
	b.WriteString(strconv.Quote(q.Name))
	for _, m := range q.Matchers {
		b.WriteByte(' ')
		matcher(m)
	}
	// The principal's scope: queries of principals who see the same share
	// an entry, others never do.
	if q.Or != nil {
		b.WriteString(" or[")
		for _, alt := range q.Or {
			b.WriteString(" (")
			for _, m := range alt {
				b.WriteByte(' ')
				matcher(m)
			}
			b.WriteString(")")
		}
		b.WriteString("]")
	}
	b.WriteByte(' ')
	b.WriteString(q.From.Truncate(step).String())
	b.WriteByte(' ')
	b.WriteString(q.To.Truncate(step).String())
	b.WriteByte(' ')
	b.WriteString(step.String() + "/" + strconv.Quote(string(q.Agg)))
	return b.String()
}

// LabelValues is the store's, uncached: it reads only the store's
// in-memory index.
func (c *seriesCache) LabelValues(ctx context.Context, label string, matchers ...tsdb.Matcher) ([]string, error) {
	return c.store.LabelValues(ctx, label, matchers...)
}

// Query answers from the cache or the store.
func (c *seriesCache) Query(ctx context.Context, q tsdb.Q) ([]tsdb.Series, error) {
	key := cacheKey(q)
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.series, nil
	}
	got, err := c.store.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	expires := now.Add(min(c.maxAge, max(q.Step, time.Second)))
	if next := q.To.Truncate(q.Step).Add(q.Step); next.Before(expires) {
		expires = next
	}
	c.mu.Lock()
	if len(c.entries) >= c.limit {
		for k, old := range c.entries {
			if !now.Before(old.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.limit {
			clear(c.entries) // a burst of distinct queries: start over
		}
	}
	c.entries[key] = cacheEntry{series: got, expires: expires}
	c.mu.Unlock()
	return got, nil
}
