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
// switchyard_dlq_entries on /metrics and in the time-series store. It is a
// GROUP BY over the entries table (~150 bytes a row), run every 30 s by the
// caller; group_stats could serve it without the scan once it carries
// broker and cluster.
func (s *Store) EntryGauges(ctx context.Context) ([]EntryGauge, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT broker, cluster, destination, status, COUNT(*) FROM entries GROUP BY broker, cluster, destination, status`)
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
