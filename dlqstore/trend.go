package dlqstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"switchyard/delivery"
)

// Limits of one Trends call: buckets per trend, and groups per call (the
// most a page of Groups holds).
const (
	maxBuckets     = 2000
	maxTrendGroups = 500
)

// Trends returns, for each of groupIDs, the number of its failures (by
// last failure time) per step-wide bucket of [from, to) — bucket k holds
// from+k·step up to the next bucket or to — counting only entries in scope
// (nil = all). Every id asked for has its slice, zeros when nothing
// failed; an id without a group too.
//
// It is one query for a whole page of groups: the buckets are a generated
// table of bounds, and each (group, bucket) pair is counted by a range of
// the entries_group index (group_id, last_failure_at, tenant). Grouping the
// entries by a computed bucket instead would sort every entry of the range
// through a temporary B-tree, which costs several times the count itself
// under load. Errors: EINVALID for a bad range or too many buckets or
// groups.
func (s *Store) Trends(ctx context.Context, groupIDs []int64, scope *TenantScope, from, to time.Time, step time.Duration) (map[int64][]int, error) {
	if step <= 0 || !to.After(from) {
		return nil, delivery.Errorf(delivery.EINVALID, "trend needs from before to and a positive step")
	}
	n := int((to.Sub(from) + step - 1) / step)
	if n > maxBuckets {
		return nil, delivery.Errorf(delivery.EINVALID, "trend of %d buckets is too long (at most %d)", n, maxBuckets)
	}
	if len(groupIDs) > maxTrendGroups {
		return nil, delivery.Errorf(delivery.EINVALID, "trends of %d groups at once are too many (at most %d)", len(groupIDs), maxTrendGroups)
	}
	out := make(map[int64][]int, len(groupIDs))
	for _, id := range groupIDs {
		out[id] = make([]int, n)
	}
	tenants, visible := scopeTenants(scope)
	if !visible || len(out) == 0 {
		return out, nil
	}
	ids := make([]any, 0, len(out))
	for id := range out {
		ids = append(ids, id)
	}
	args := append(ids, from.UnixNano(), int64(step), n, int64(step), to.UnixNano())
	cond := ""
	if c, a := scopeCond(scope, tenants, "e.tenant", "e.resource"); c != "" {
		cond = " AND " + c
		args = append(args, a...)
	}
	q := `WITH ids(id) AS (VALUES ` + strings.TrimSuffix(strings.Repeat("(?),", len(ids)), ",") + `),
	b(k, lo) AS (SELECT 0, ? UNION ALL SELECT k + 1, lo + ? FROM b WHERE k + 1 < ?)
SELECT id, k, c FROM (SELECT ids.id, b.k, (SELECT count(*) FROM entries e
	WHERE e.group_id = ids.id AND e.last_failure_at >= b.lo AND e.last_failure_at < min(b.lo + ?, ?)` + cond + `) AS c
	FROM ids, b) WHERE c > 0`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("trends of %d groups: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var k, c int
		if err := rows.Scan(&id, &k, &c); err != nil {
			return nil, fmt.Errorf("trends of %d groups: %w", len(ids), err)
		}
		if counts := out[id]; k >= 0 && k < len(counts) {
			counts[k] = c
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trends of %d groups: %w", len(ids), err)
	}
	return out, nil
}
