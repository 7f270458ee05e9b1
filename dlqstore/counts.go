package dlqstore

import (
	"context"
	"fmt"
	"time"
)

// Counts are entry counts over a tenant scope. Destination keys are topic
// or queue names. They count messages, not deliveries: a redriven entry
// whose message dead-lettered again is counted once, as its re-failure (in
// its status, usually dead), and apart in FailedAgain, so that neither the
// open total nor the redriven one claims it twice.
type Counts struct {
	ByStatus            map[Status]int
	ByDestination       map[string]int            // every status
	ByDestinationStatus map[string]map[Status]int // for "open entries per destination"
	// FailedAgain is the redriven entries whose message failed again
	// (RedriveOutcome OutcomeFailedAgain), in none of the maps.
	FailedAgain int
}

// statsScope is the condition (" AND …", or "") and arguments that keep
// group_stats rows to a scope (scopeCond).
func statsScope(scope *TenantScope, tenants []string) (string, []any) {
	c, args := scopeCond(scope, tenants, "tenant", "resource")
	if c == "" {
		return "", nil
	}
	return " AND " + c, args
}

// Counts returns the entry counts of scope (nil = all), from the
// per-tenant totals kept with every write, so it costs no scan of entries.
func (s *Store) Counts(ctx context.Context, scope *TenantScope) (Counts, error) {
	c := Counts{ByStatus: map[Status]int{}, ByDestination: map[string]int{}, ByDestinationStatus: map[string]map[Status]int{}}
	tenants, visible := scopeTenants(scope)
	if !visible {
		return c, nil
	}
	cond, args := statsScope(scope, tenants)
	rows, err := s.db.QueryContext(ctx, "SELECT destination, status, refailed, SUM(n) FROM group_stats WHERE 1"+cond+" GROUP BY destination, status, refailed", args...)
	if err != nil {
		return c, fmt.Errorf("counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var dest string
		var st Status
		var refailed bool
		var n int
		if err := rows.Scan(&dest, &st, &refailed, &n); err != nil {
			return c, fmt.Errorf("counts: %w", err)
		}
		if refailed {
			c.FailedAgain += n
			continue
		}
		c.ByStatus[st] += n
		c.ByDestination[dest] += n
		if c.ByDestinationStatus[dest] == nil {
			c.ByDestinationStatus[dest] = map[Status]int{}
		}
		c.ByDestinationStatus[dest][st] += n
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("counts: %w", err)
	}
	return c, nil
}

// EntryGauge is the number of entries of one destination in one status,
// for one tenant and one resource (the origin topic or queue the entries
// are checked against, Entry.Resource), so that a reader of the history can
// apply the same access rules as the store's scoped queries.
type EntryGauge struct {
	Broker, Cluster, Destination string
	Tenant, Resource             string
	Status                       Status
	Count                        int
}

// EntryGauges counts entries per DLQ destination, status, tenant and
// resource, for switchyard_dlq_entries on /metrics (summed over tenants and
// resources there) and in the time-series store, from the group_stats
// totals kept with every write (a few rows per group and destination), so
// it costs no scan of entries.
func (s *Store) EntryGauges(ctx context.Context) ([]EntryGauge, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT broker, cluster, destination, tenant, resource, status, SUM(n) FROM group_stats
		 GROUP BY broker, cluster, destination, tenant, resource, status HAVING SUM(n) > 0`)
	if err != nil {
		return nil, fmt.Errorf("entry gauges: %w", err)
	}
	defer rows.Close()
	var out []EntryGauge
	for rows.Next() {
		var g EntryGauge
		if err := rows.Scan(&g.Broker, &g.Cluster, &g.Destination, &g.Tenant, &g.Resource, &g.Status, &g.Count); err != nil {
			return nil, fmt.Errorf("entry gauges: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// GroupGauge is the number of entries of one failure group (its id and
// error code) in one DLQ destination, for one tenant and one resource, in
// every status: what the history records as
// switchyard_dlq_group_entries_total, a counter of dead-letter arrivals per
// failure group.
type GroupGauge struct {
	Broker, Cluster, Destination string
	Tenant, Resource             string
	Group                        int64
	ErrorCode                    string
	Count                        int
}

// GroupGauges counts the entries of every failure group per DLQ
// destination, tenant and resource, over every status and re-failed
// originals included, from the group_stats totals. Status changes
// (redrive, quarantine, discard, resolve) and a re-failure's link to its
// original move n between rows of one sum, so it only grows as entries
// are indexed — except at Purge, which deletes resolved and discarded
// entries and subtracts them (purgeOnce); the history's counter makes up
// for that (collector.DLQGauges).
func (s *Store) GroupGauges(ctx context.Context) ([]GroupGauge, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT s.broker, s.cluster, s.destination, s.tenant, s.resource, s.group_id, g.error_code, SUM(s.n)
		 FROM group_stats s JOIN groups g ON g.id = s.group_id
		 GROUP BY s.group_id, s.broker, s.cluster, s.destination, s.tenant, s.resource HAVING SUM(s.n) > 0`)
	if err != nil {
		return nil, fmt.Errorf("group gauges: %w", err)
	}
	defer rows.Close()
	var out []GroupGauge
	for rows.Next() {
		var g GroupGauge
		if err := rows.Scan(&g.Broker, &g.Cluster, &g.Destination, &g.Tenant, &g.Resource, &g.Group, &g.ErrorCode, &g.Count); err != nil {
			return nil, fmt.Errorf("group gauges: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// SourceCount is how many entries of one dead-letter topic or queue a
// scope holds, and when the newest of them last failed.
type SourceCount struct {
	Broker, Cluster, Destination string
	Count                        int
	LastSeen                     time.Time
}

// SourceCounts counts the entries of scope (nil = all) per DLQ destination,
// in the query (the scope's tenants and rules, as Counts), from the
// group_stats totals. The indexers' own counters span every tenant; the
// sources strip shows these to a principal who may not see them all.
func (s *Store) SourceCounts(ctx context.Context, scope *TenantScope) ([]SourceCount, error) {
	tenants, visible := scopeTenants(scope)
	if !visible {
		return nil, nil
	}
	cond, args := statsScope(scope, tenants)
	rows, err := s.db.QueryContext(ctx, "SELECT broker, cluster, destination, SUM(n), MAX(last_seen) FROM group_stats WHERE 1"+cond+
		" GROUP BY broker, cluster, destination HAVING SUM(n) > 0", args...)
	if err != nil {
		return nil, fmt.Errorf("source counts: %w", err)
	}
	defer rows.Close()
	var out []SourceCount
	for rows.Next() {
		var c SourceCount
		var last int64
		if err := rows.Scan(&c.Broker, &c.Cluster, &c.Destination, &c.Count, &last); err != nil {
			return nil, fmt.Errorf("source counts: %w", err)
		}
		c.LastSeen = fromNano(last)
		out = append(out, c)
	}
	return out, rows.Err()
}
