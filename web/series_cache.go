package web

import (
	"context"
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

func cacheKey(q tsdb.Q) string {
	var b strings.Builder
	step := q.Step
	b.WriteString(q.Name)
	for _, m := range q.Matchers {
		b.WriteByte(0)
		b.WriteString(m.String())
	}
	b.WriteByte(0)
	b.WriteString(q.From.Truncate(step).String())
	b.WriteByte(0)
	b.WriteString(q.To.Truncate(step).String())
	b.WriteByte(0)
	b.WriteString(step.String() + "/" + string(q.Agg))
	return b.String()
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
