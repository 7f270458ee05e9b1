package dlq

import (
	"context"
	"maps"
	"slices"
	"time"

	"switchyard/dlqstore"
)

// Groups pages the failure groups of f over the caller's scope (f.Tenants
// is replaced): counts, tenants and destinations are theirs only, and a
// group without an entry of theirs is not listed. The page may be shared
// with callers of the same scope (Cache): its groups' slices are
// read-only. Errors: EINVALID.
func (s *Service) Groups(ctx context.Context, c Caller, f dlqstore.GroupFilter) ([]dlqstore.Group, string, error) {
	f.Tenants = s.scope(c)
	type page struct {
		groups []dlqstore.Group
		next   string
	}
	p, err := load(ctx, s.cache, func() string { return groupsKey(scopeKey(f.Tenants), f) }, func(ctx context.Context) (page, error) {
		groups, next, err := s.store.Groups(ctx, f)
		return page{groups, next}, err
	})
	return slices.Clone(p.groups), p.next, err
}

// Group is one failure group over the caller's scope. Errors: ENOTFOUND,
// also for a group without an entry the caller may view.
func (s *Service) Group(ctx context.Context, c Caller, id int64) (dlqstore.Group, error) {
	return s.store.Group(ctx, id, s.scope(c))
}

// Trends counts, for each of a page of groups, the failures the caller
// may view per step from from to to, in one query. The counts may be
// shared with callers of the same scope (Cache): read-only. Errors:
// EINVALID.
func (s *Service) Trends(ctx context.Context, c Caller, groupIDs []int64, from, to time.Time, step time.Duration) (map[int64][]int, error) {
	scope := s.scope(c)
	trends, err := load(ctx, s.cache, func() string { return s.cache.trendsKey(scopeKey(scope), groupIDs, from, to, step) },
		func(ctx context.Context) (map[int64][]int, error) {
			return s.store.Trends(ctx, groupIDs, scope, from, to, step)
		})
	return maps.Clone(trends), err
}

// OpenCount is how many entries the caller may view still need attention
// (dlqstore.Status.Open), from the store's running totals (no scan): the
// navigation badge and the groups page.
func (s *Service) OpenCount(ctx context.Context, c Caller) (int, error) {
	scope := s.scope(c)
	return load(ctx, s.cache, func() string { return "open|" + scopeKey(scope) }, func(ctx context.Context) (int, error) {
		counts, err := s.store.Counts(ctx, scope)
		if err != nil {
			return 0, err
		}
		n := 0
		for st, k := range counts.ByStatus {
			if st.Open() {
				n += k
			}
		}
		return n, nil
	})
}
