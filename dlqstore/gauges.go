package dlqstore

import (
	"context"
	"fmt"
)

// EntryGauge is the number of entries of one destination in one status.
type EntryGauge struct {
	Broker, Cluster, Destination string
	Status                       Status
	Count                        int
}

// EntryGauges counts entries per DLQ destination and status, for
// switchyard_dlq_entries on /metrics and in the time-series store, from
// the group_stats totals kept with every write (a few rows per group and
// destination), so the caller's 30 s refresh costs no scan of entries.
func (s *Store) EntryGauges(ctx context.Context) ([]EntryGauge, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT broker, cluster, destination, status, SUM(n) FROM group_stats GROUP BY broker, cluster, destination, status HAVING SUM(n) > 0`)
	if err != nil {
		return nil, fmt.Errorf("entry gauges: %w", err)
	}
	defer rows.Close()
	var out []EntryGauge
	for rows.Next() {
		var g EntryGauge
		if err := rows.Scan(&g.Broker, &g.Cluster, &g.Destination, &g.Status, &g.Count); err != nil {
			return nil, fmt.Errorf("entry gauges: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
