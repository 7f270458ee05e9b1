package dlqstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"switchyard/delivery"
)

// What became of a redrive. A redriven message that fails again comes back
// as a new dead letter carrying its provenance (delivery.RedriveHeaders):
// the job (switchyard.redrive.job, entries.redrive_job, which the canary
// counts) and where its record was redriven from (switchyard.redrive.from).
// When such a dead letter is indexed, linkRefailure finds the entry it was
// redriven from — by that location, among the entries of the job's ledger
// — in the same transaction as the insert, and links both ways:
// refailure_of on the re-failure, refailed_as on the original (its first
// re-failure). A RabbitMQ location names no message, so there the
// message id picks the entry; a message without one is not linked (its
// re-failure still names the job).
//
// The group counts messages, not deliveries: the original, once its
// message failed again, is counted as its re-failure only, so it moves to
// refailed = 1 in group_stats and leaves groups.count.

// refailedOriginal is the entry a re-failure was redriven from, with
// what its group_stats row needs.
type refailedOriginal struct {
	id         int64
	refailedAs int64
	k          statKey
	last       int64
}

// refailureLinks finds originals inside one insert transaction; its
// statements are prepared on first use, so that a batch without redrive
// provenance costs nothing.
type refailureLinks struct {
	tx                  *sql.Tx
	kafka, rabbit, mark *sql.Stmt
}

func (l *refailureLinks) close() {
	for _, st := range []*sql.Stmt{l.kafka, l.rabbit, l.mark} {
		if st != nil {
			st.Close()
		}
	}
}

var originalColumns = `o.id, o.refailed_as, o.group_id, o.tenant, o.broker, o.cluster, o.destination, o.resource, o.event_type, ` + shownStatus("o") + `, o.last_failure_at`

// find returns the entry of job's ledger that it was redriven from, or
// ok=false when the item names none (no or an unreadable from header, an
// entry purged since, a RabbitMQ message without an id). The broker
// literals name the unique indexes' partial conditions, which SQLite only
// matches verbatim. The ledger is asked with a scalar subquery, not
// EXISTS: SQLite plans the same index seek for both, yet ran the EXISTS
// form at 50–80 µs a lookup against 5–18 µs, which made a flood of
// re-failures (a redrive whose downstream is still broken) capture at
// 3,000/s instead of 6,500–7,600/s (BenchmarkCaptureRefailures).
func (l *refailureLinks) find(ctx context.Context, job int64, it *IndexItem) (refailedOriginal, bool, error) {
	from, err := delivery.ParseLocation(it.DL.Headers.String(delivery.HeaderRedriveFrom))
	if err != nil {
		return refailedOriginal{}, false, nil
	}
	var row *sql.Row
	switch {
	case from.Broker == delivery.BrokerKafka && from.Partition >= 0 && from.Offset >= 0:
		if l.kafka == nil {
			if l.kafka, err = l.tx.PrepareContext(ctx, "SELECT "+originalColumns+` FROM entries o
WHERE o.broker = 'kafka' AND o.cluster = ? AND o.destination = ? AND o.kpartition = ? AND o.koffset = ?
	AND (SELECT 1 FROM job_items i WHERE i.entry_id = o.id AND i.job_id = ?)`); err != nil {
				return refailedOriginal{}, false, err
			}
		}
		row = l.kafka.QueryRowContext(ctx, from.Cluster, from.Topic, from.Partition, from.Offset, job)
	case from.Broker == delivery.BrokerRabbitMQ && it.MessageID != "":
		if l.rabbit == nil {
			if l.rabbit, err = l.tx.PrepareContext(ctx, "SELECT "+originalColumns+` FROM entries o
WHERE o.broker = 'rabbitmq' AND o.cluster = ? AND o.vhost = ? AND o.destination = ? AND o.message_id = ?
	AND (SELECT 1 FROM job_items i WHERE i.entry_id = o.id AND i.job_id = ?)
ORDER BY o.id DESC LIMIT 1`); err != nil {
				return refailedOriginal{}, false, err
			}
		}
		row = l.rabbit.QueryRowContext(ctx, from.Cluster, from.VHost, from.Queue, it.MessageID, job)
	default:
		return refailedOriginal{}, false, nil
	}
	var o refailedOriginal
	k := &o.k
	err = row.Scan(&o.id, &o.refailedAs, &k.group, &k.tenant, &k.broker, &k.cluster, &k.destination, &k.resource, &k.eventType, &k.status, &o.last)
	if errors.Is(err, sql.ErrNoRows) {
		return refailedOriginal{}, false, nil
	}
	if err != nil {
		return refailedOriginal{}, false, fmt.Errorf("find the entry a re-failure was redriven from: %w", err)
	}
	return o, true, nil
}

// supersede records on o its first re-failure refailure and moves o in
// the counts: out of its group's messages (stats, groups) and into
// refailed. A later re-failure of the same entry (the message sent twice
// after a crash) is linked to it but moves nothing.
func (l *refailureLinks) supersede(ctx context.Context, o refailedOriginal, refailure int64, stats map[statKey]*statDelta, groups map[int64]int) error {
	if o.refailedAs != 0 {
		return nil
	}
	if l.mark == nil {
		var err error
		if l.mark, err = l.tx.PrepareContext(ctx, "UPDATE entries SET refailed_as = ? WHERE id = ? AND refailed_as = 0"); err != nil {
			return err
		}
	}
	res, err := l.mark.ExecContext(ctx, refailure, o.id)
	if err != nil {
		return fmt.Errorf("link entry %d to its re-failure %d: %w", o.id, refailure, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // an earlier item of this batch re-failed it already
	}
	addStat(stats, o.k, -1, o.last)
	k := o.k
	k.refailed = true
	addStat(stats, k, 1, o.last)
	groups[o.k.group]++
	return nil
}

// addStat adds n entries last failed at t to the stats row of k.
func addStat(stats map[statKey]*statDelta, k statKey, n int, t int64) {
	d := stats[k]
	if d == nil {
		d = &statDelta{first: t, last: t}
		stats[k] = d
	}
	d.n += n
	d.first, d.last = min(d.first, t), max(d.last, t)
}

// Refailure is an entry that dead-lettered again after a job redrove its
// message, for the job's page.
type Refailure struct {
	Entry Entry // the re-failure, without its body but for the error (DL.Error)
	// Seq is the ledger seq, in the job, of the entry it was redriven
	// from (Entry.RefailureOf); 0 when that is not known.
	Seq int
}

// Refailures lists the re-failures of a job's messages within scope,
// oldest first, up to limit, and how many there are in all.
func (s *Store) Refailures(ctx context.Context, jobID int64, scope *TenantScope, limit int) ([]Refailure, int, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	tenants, visible := scopeTenants(scope)
	if !visible {
		return nil, 0, nil
	}
	cond, args := "", []any{jobID}
	if c, a := scopeCond(scope, tenants, "e.tenant", "e.resource"); c != "" {
		cond = " AND " + c
		args = append(args, a...)
	}
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM entries e WHERE e.redrive_job = ?"+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("re-failures of job %d: %w", jobID, err)
	}
	if total == 0 {
		return nil, 0, nil
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+entryColumns+`, e.last_failure_at, coalesce(i.seq, 0) FROM entries e
LEFT JOIN job_items i ON i.job_id = e.redrive_job AND i.entry_id = e.refailure_of AND e.refailure_of != 0
WHERE e.redrive_job = ?`+cond+" ORDER BY e.id LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, 0, fmt.Errorf("re-failures of job %d: %w", jobID, err)
	}
	defer rows.Close()
	var out []Refailure
	var es []Entry
	for rows.Next() {
		var r Refailure
		e, _, err := scanEntry(scanAlso{rows, &r.Seq})
		if err != nil {
			return nil, 0, fmt.Errorf("re-failures of job %d: %w", jobID, err)
		}
		out = append(out, r)
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("re-failures of job %d: %w", jobID, err)
	}
	rows.Close()
	if err := s.fillBodiesWith(ctx, es, false); err != nil {
		return nil, 0, fmt.Errorf("re-failures of job %d: %w", jobID, err)
	}
	for i := range out {
		out[i].Entry = es[i]
	}
	return out, total, nil
}

// scanAlso scans the columns of scanEntry and then more.
type scanAlso struct {
	r     scanner
	extra *int
}

func (s scanAlso) Scan(dest ...any) error { return s.r.Scan(append(dest, s.extra)...) }
