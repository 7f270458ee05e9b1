package dlq

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"switchyard/dlqstore"
)

// The landing page's aggregate reads — a page of groups, their trends, the
// open count of the navigation badge and the sources' counts — are what
// every operator asks for, again and again, and each costs milliseconds of
// SQL over the whole index. A Cache lets the callers with the same
// effective scope asking for the same thing within its TTL share one
// computation, whether they come by the pages, the API or the badge:
//   - the key holds a fingerprint of the caller's view scope (tenants and
//     resource rules as dlqstore.TenantScope states them, canonical:
//     order and duplicates do not matter), so two callers with different
//     scopes never share a result; then the filter, cursor and limit, or
//     the trend window (its end aligned to the step, see trendsKey);
//   - concurrent misses of one key run the query once (singleflight); the
//     others wait for its result, errors included, which are not kept;
//   - a result read in the second half of its TTL is refreshed in the
//     background (once), so that a page read steadily never waits for a
//     query: only the first read of a key, and the first after an
//     invalidation, does;
//   - an operator's own change never goes missing: the service drops
//     every result (Invalidate) after triage, and the store the redrive
//     engine writes through (WatchJobs) after every job change — a job
//     created, its entries frozen, redriven, quarantined or discarded,
//     cancelled, finished;
//   - new dead letters from the indexers do not invalidate: what the
//     landing page counts may be up to the TTL behind the index (README,
//     "Dead letters");
//   - at most MaxEntries results are kept, the least recently used dropped
//     first;
//   - results are shared and read-only: the service hands callers a copy
//     of the outer slice or map, whose elements (a group's destinations
//     and tenants, a trend's counts) they must not change.
//
// A nil *Cache caches nothing: every read goes to the store.
type Cache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	stats   CacheStats
	entries map[string]*list.Element // of *cacheEntry, by key; a new map per generation
	lru     *list.List               // most recently used first
}

// Defaults of CacheOptions.
const (
	DefaultCacheTTL     = 2 * time.Second
	DefaultCacheEntries = 1024
)

// CacheOptions configures a Cache.
type CacheOptions struct {
	// TTL is how long a result is shared; 0 caches nothing (NewCache
	// returns nil).
	TTL time.Duration
	// MaxEntries bounds the results kept (default DefaultCacheEntries).
	MaxEntries int
	// Now is the clock results age by; default time.Now.
	Now func() time.Time
}

// CacheStats counts a cache's reads: those answered by a result another
// read computed (kept, or being computed: they waited for it), and those
// that queried the store.
type CacheStats struct {
	Shared, Queried int64
}

// Stats counts the reads so far.
func (c *Cache) Stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// cacheEntry is one result, or the computation of it while done is open.
// Its fields are set before done is closed and not changed after: a
// refresh replaces the entry (the list element's Value).
type cacheEntry struct {
	key  string
	done chan struct{} // closed once val and err are set
	val  any
	err  error
	// Set with the result, under Cache.mu.
	ready      bool
	refreshAt  time.Time // from then on, a read starts a refresh…
	expires    time.Time // …and from then on, the result is not used
	refreshing bool
}

// NewCache returns a cache of opts, or nil (no caching) when opts.TTL is
// 0. Errors: a negative TTL or MaxEntries.
func NewCache(opts CacheOptions) (*Cache, error) {
	if opts.TTL < 0 || opts.MaxEntries < 0 {
		return nil, fmt.Errorf("dlq: the cache TTL and size must not be negative")
	}
	if opts.TTL == 0 {
		return nil, nil
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultCacheEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{ttl: opts.TTL, max: opts.MaxEntries, now: opts.Now, entries: map[string]*list.Element{}, lru: list.New()}, nil
}

// Invalidate starts a new generation: every result kept, and every one
// being computed or refreshed, is dropped, so the next read of each key
// queries the store. Waiters already sharing a computation still get its
// result: they asked before the change.
func (c *Cache) Invalidate() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]*list.Element{}
	c.lru = list.New() // the computations in flight hold elements of the old one
}

// load returns the result of key: kept and fresh (refreshed in the
// background once past half its TTL), being computed by another caller
// (then waited for), or computed now by fn. fn runs detached from ctx's
// cancellation, as others may be waiting for it; its result is kept for
// the TTL from when it started, unless it failed or the cache was
// invalidated meanwhile.
func load[T any](ctx context.Context, c *Cache, keyOf func() string, fn func(context.Context) (T, error)) (T, error) {
	if c == nil {
		return fn(ctx)
	}
	key := keyOf()
	c.mu.Lock()
	now := c.now()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		if !e.ready || now.Before(e.expires) {
			c.lru.MoveToFront(el)
			c.stats.Shared++
			if !e.ready {
				c.mu.Unlock()
				return wait[T](ctx, e)
			}
			if !e.refreshing && !now.Before(e.refreshAt) {
				e.refreshing = true
				c.stats.Queried++
				go c.refresh(context.WithoutCancel(ctx), el, func(ctx context.Context) (any, error) { return fn(ctx) })
			}
			c.mu.Unlock()
			return e.val.(T), e.err
		}
		c.remove(el)
	}
	e := &cacheEntry{key: key, done: make(chan struct{})}
	for c.lru.Len() >= c.max {
		c.remove(c.lru.Back())
	}
	el := c.lru.PushFront(e)
	c.entries[key] = el
	c.stats.Queried++
	c.mu.Unlock()

	finished := false
	defer func() {
		if finished {
			return
		}
		// fn panicked: release the waiters, keep nothing, panic on.
		c.mu.Lock()
		e.err = fmt.Errorf("dlq: the shared read of %s failed", strings.SplitN(key, "|", 2)[0])
		c.drop(el)
		close(e.done)
		c.mu.Unlock()
	}()
	v, err := fn(context.WithoutCancel(ctx))
	finished = true
	c.mu.Lock()
	e.val, e.err = v, err
	c.settle(e, now)
	if err != nil {
		c.drop(el)
	}
	close(e.done)
	c.mu.Unlock()
	return v, err
}

// refresh computes el's result anew, started at now, and puts it in el's
// place unless it failed or el was dropped meanwhile.
func (c *Cache) refresh(ctx context.Context, el *list.Element, fn func(context.Context) (any, error)) {
	now := c.now()
	v, err := fn(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := el.Value.(*cacheEntry)
	old.refreshing = false
	if err != nil || c.entries[old.key] != el {
		return
	}
	e := &cacheEntry{key: old.key, done: make(chan struct{}), val: v}
	c.settle(e, now)
	close(e.done)
	el.Value = e
}

// settle dates a result computed from started; c.mu is held.
func (c *Cache) settle(e *cacheEntry, started time.Time) {
	e.ready, e.refreshAt, e.expires = true, started.Add(c.ttl/2), started.Add(c.ttl)
}

// wait is the result of a computation another caller runs, or ctx's error
// if ctx ends first.
func wait[T any](ctx context.Context, e *cacheEntry) (T, error) {
	select {
	case <-e.done:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	if e.err != nil {
		var zero T
		return zero, e.err
	}
	return e.val.(T), nil
}

// remove forgets el; c.mu is held.
func (c *Cache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*cacheEntry).key)
	c.lru.Remove(el)
}

// drop forgets el if it is still the entry of its key; c.mu is held.
func (c *Cache) drop(el *list.Element) {
	if c.entries[el.Value.(*cacheEntry).key] == el {
		c.remove(el)
	}
}

// scopeKey is the canonical fingerprint of a view scope: equal for scopes
// that show the same rows however their tenants and rules are ordered or
// repeated, different otherwise (nil, all, a tenant list, rules — none or
// some — each kept apart).
func scopeKey(sc *dlqstore.TenantScope) string {
	if sc == nil {
		return "nil"
	}
	type rule struct {
		Resources, Tenants []string
	}
	k := struct {
		All      bool
		Tenants  []string
		HasRules bool
		Rules    []string
	}{All: sc.All, HasRules: sc.Rules != nil}
	if !sc.All {
		k.Tenants = canonical(sc.Tenants)
	}
	for _, r := range sc.Rules {
		b, _ := json.Marshal(rule{canonical(r.Resources), canonical(r.Tenants)})
		k.Rules = append(k.Rules, string(b))
	}
	k.Rules = canonical(k.Rules)
	b, _ := json.Marshal(k)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// canonical is a set of strings sorted without duplicates; nil stays nil
// (a rule without tenants covers every tenant, an empty list none).
func canonical(s []string) []string {
	if s == nil {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// groupsKey is the key of a page of groups for a scope: every field of
// the filter but the scope it carries.
func groupsKey(scope string, f dlqstore.GroupFilter) string {
	f.Tenants = nil
	b, _ := json.Marshal(f)
	return "groups|" + scope + "|" + string(b)
}

// trendsKey is the key of the trends of a set of groups for a scope. The
// window is keyed by its length, its step and its end aligned down to the
// step — or to the TTL when that is shorter — so that the callers of one
// relative range ("the last 24 h", whose end is now) share a key within
// it; the window shared is then its first asker's, which ends at most
// that alignment (no more than the TTL) before theirs.
func (c *Cache) trendsKey(scope string, groupIDs []int64, from, to time.Time, step time.Duration) string {
	align := step
	if align <= 0 || align > c.ttl {
		align = c.ttl
	}
	ids := slices.Clone(groupIDs)
	slices.Sort(ids)
	var b strings.Builder
	b.WriteString("trends|" + scope + "|")
	b.WriteString(strconv.FormatInt(int64(to.Sub(from)), 10) + "|" + strconv.FormatInt(int64(step), 10) + "|")
	b.WriteString(strconv.FormatInt(to.Truncate(align).UnixNano(), 10) + "|")
	for _, id := range slices.Compact(ids) {
		b.WriteString(strconv.FormatInt(id, 10) + ",")
	}
	return b.String()
}

// WatchJobs returns st with every change it makes for the redrive engine
// — jobs created (their entries frozen), items completed (entries
// redriven, quarantined, discarded), pending items cancelled, a job's
// state, cancellation or canary window set — invalidating the cache once
// made. The console hands the engine this store, so an operator's job and
// what it did to entries show at once. A nil cache returns st.
func (c *Cache) WatchJobs(st dlqstore.JobStore) dlqstore.JobStore {
	if c == nil {
		return st
	}
	return watchedJobs{JobStore: st, c: c}
}

// watchedJobs is a job store invalidating a cache after its changes.
type watchedJobs struct {
	dlqstore.JobStore
	c *Cache
}

func (w watchedJobs) CreateJob(ctx context.Context, j dlqstore.JobRecord, sel dlqstore.Selection, hold dlqstore.Status) (dlqstore.JobRecord, error) {
	defer w.c.Invalidate()
	return w.JobStore.CreateJob(ctx, j, sel, hold)
}

func (w watchedJobs) AbandonFreezing(ctx context.Context) ([]int64, error) {
	ids, err := w.JobStore.AbandonFreezing(ctx)
	if len(ids) > 0 {
		w.c.Invalidate() // their entries are given back
	}
	return ids, err
}

func (w watchedJobs) CompleteItems(ctx context.Context, jobID int64, outs []dlqstore.Outcome, done dlqstore.Status, reason string) error {
	defer w.c.Invalidate()
	return w.JobStore.CompleteItems(ctx, jobID, outs, done, reason)
}

func (w watchedJobs) CancelPending(ctx context.Context, jobID int64, why string) error {
	defer w.c.Invalidate()
	return w.JobStore.CancelPending(ctx, jobID, why)
}

func (w watchedJobs) SetJobState(ctx context.Context, id int64, state dlqstore.JobState, errText string, finished bool) error {
	defer w.c.Invalidate()
	return w.JobStore.SetJobState(ctx, id, state, errText, finished)
}

func (w watchedJobs) CancelJob(ctx context.Context, id int64, by, errText string) (bool, error) {
	defer w.c.Invalidate()
	return w.JobStore.CancelJob(ctx, id, by, errText)
}

func (w watchedJobs) SetCanaryUntil(ctx context.Context, id int64, until time.Time) error {
	defer w.c.Invalidate()
	return w.JobStore.SetCanaryUntil(ctx, id, until)
}
