package dlq

import (
	"context"
	"time"

	"switchyard/dlqstore"
)

// Groups pages the failure groups of f over the caller's scope (f.Tenants
// is replaced): counts, tenants and destinations are theirs only, and a
// group without an entry of theirs is not listed. Errors: EINVALID.
func (s *Service) Groups(ctx context.Context, c Caller, f dlqstore.GroupFilter) ([]dlqstore.Group, string, error) {
	f.Tenants = s.scope(c)
	return s.store.Groups(ctx, f)
}

// Group is one failure group over the caller's scope. Errors: ENOTFOUND,
// also for a group without an entry the caller may view.
func (s *Service) Group(ctx context.Context, c Caller, id int64) (dlqstore.Group, error) {
	return s.store.Group(ctx, id, s.scope(c))
}

// Trend counts a group's failures the caller may view per step from from
// to to. Errors: EINVALID.
func (s *Service) Trend(ctx context.Context, c Caller, groupID int64, from, to time.Time, step time.Duration) ([]int, error) {
	return s.store.Trend(ctx, groupID, s.scope(c), from, to, step)
}

// OpenCount is how many entries the caller may view still need attention
// (dlqstore.Status.Open), from the store's running totals (no scan): the
// navigation badge and the groups page.
func (s *Service) OpenCount(ctx context.Context, c Caller) (int, error) {
	counts, err := s.store.Counts(ctx, s.scope(c))
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
}
