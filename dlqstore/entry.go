package dlqstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"switchyard/delivery"
)

// Entry is one stored dead letter.
type Entry struct {
	ID                           int64
	Status                       Status
	Broker, Cluster, VHost       string
	Destination                  string // the DLQ topic or queue
	Partition                    int32  // Kafka; -1 for RabbitMQ
	Offset                       int64  // Kafka; -1 for RabbitMQ
	MessageID                    string // RabbitMQ
	DeathCount                   int    // RabbitMQ
	Tenant, EventType, ErrorCode string
	Fingerprint                  string
	GroupID                      int64
	DL                           delivery.DeadLetter // full record: envelope, origin, error, attempts, times, headers, payload (capped)
	Flags                        []string
	PayloadSize                  int
	PayloadHash                  string
	Truncated                    bool
	IndexedAt, UpdatedAt         time.Time
	// Resource is what the access policy checks the entry against: the
	// origin topic or queue (kafka:<cluster>/<topic>,
	// rabbitmq:<vhost>/<queue>) when the dead letter names it, else the
	// DLQ itself.
	Resource string
	// RedriveCount is how often the message had been redriven before this
	// failure, RedriveJob the job that last redrove it (0 = none).
	RedriveCount int
	RedriveJob   int64
	// StatusReason says why the entry has its status when something other
	// than its failure put it there (a discard reason, loop protection).
	StatusReason string
	// RefailedAs is, on a redriven entry, the entry its message became
	// when it dead-lettered again (0: not seen again); RefailureOf is, on
	// that re-failure, the redriven entry it came back from (0: none, or
	// not known — RedriveJob still names the job). See Outcome.
	RefailedAs, RefailureOf int64
}

// Outcome says what became of a redriven entry's message at now, given
// how long a redrive is watched for a re-failure (watch).
func (e Entry) Outcome(now time.Time, watch time.Duration) RedriveOutcome {
	switch {
	case e.RefailedAs != 0:
		return OutcomeFailedAgain
	case e.Status != StatusRedriven:
		return OutcomeNone
	case now.Sub(e.UpdatedAt) < watch: // UpdatedAt: when it was sent
		return OutcomeWatching
	}
	return OutcomeNotSeenAgain
}

// entryColumns are an entry's columns on alias e, its status as shown
// (shownStatus).
var entryColumns = `e.id, ` + shownStatus("e") + `, e.broker, e.cluster, e.vhost, e.destination, e.kpartition, e.koffset,
	e.message_id, e.death_count, e.tenant, e.event_type, e.error_code, e.fingerprint, e.group_id,
	e.indexed_at, e.updated_at, e.flags, e.payload_size, e.payload_hash, e.truncated, e.resource,
	e.redrive_count, e.redrive_job, e.status_reason, e.refailed_as, e.refailure_of`

// Entry returns one entry with its full record. Errors: ENOTFOUND.
func (s *Store) Entry(ctx context.Context, id int64) (Entry, error) {
	row := s.db.QueryRowContext(ctx, "SELECT "+entryColumns+", e.last_failure_at FROM entries e WHERE e.id = ?", id)
	e, _, err := scanEntry(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, delivery.Errorf(delivery.ENOTFOUND, "dead letter %d not found", id)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("entry %d: %w", id, err)
	}
	es := []Entry{e}
	if err := s.fillBodies(ctx, es); err != nil {
		return Entry{}, err // names the entry
	}
	return es[0], nil
}

// entriesByID reads the entries of ids (without bodies) in one query; an
// id without an entry is absent from the map.
func entriesByID(ctx context.Context, db querier, ids []int64) (map[int64]Entry, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.QueryContext(ctx, "SELECT "+entryColumns+", e.last_failure_at FROM entries e WHERE e.id IN ("+placeholders(len(ids))+")", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byID := make(map[int64]Entry, len(ids))
	for rows.Next() {
		e, _, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		byID[e.ID] = e
	}
	return byID, rows.Err()
}

// fillBodies reads the payload, headers and record of es in one query.
func (s *Store) fillBodies(ctx context.Context, es []Entry) error {
	return s.fillBodiesWith(ctx, es, true)
}

// fillBodiesWith is fillBodies; inner=false skips re-parsing the payload
// for the envelope's inner payload (DL.Envelope.Payload stays empty), which
// a redrive — sending DL.Payload as it is — does not need.
func (s *Store) fillBodiesWith(ctx context.Context, es []Entry, inner bool) error {
	if len(es) == 0 {
		return nil
	}
	byID := make(map[int64]*Entry, len(es))
	args := make([]any, len(es))
	for i := range es {
		byID[es[i].ID] = &es[i]
		args[i] = es[i].ID
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, codec, payload, headers, record FROM entry_bodies WHERE id IN ("+placeholders(len(es))+")", args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var codec int
		var payload, headers, record []byte
		if err := rows.Scan(&id, &codec, &payload, &headers, &record); err != nil {
			return err
		}
		e := byID[id]
		d, err := s.dictOf(ctx, codec)
		if err != nil {
			return fmt.Errorf("entry %d: %w", id, err)
		}
		dl, err := decodeBody(d, codec, record, payload, headers, e.Truncated || !inner)
		if err != nil {
			return fmt.Errorf("entry %d: %w", id, err)
		}
		e.DL = dl
	}
	return rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

// scanEntry reads the columns of entryColumns plus last_failure_at; the
// body (DL) comes from fillBodies.
func scanEntry(r scanner) (Entry, int64, error) {
	var e Entry
	var part, off, dc sql.NullInt64
	var mid sql.NullString
	var indexed, updated, last int64
	var flags string
	var truncated int
	if err := r.Scan(&e.ID, &e.Status, &e.Broker, &e.Cluster, &e.VHost, &e.Destination, &part, &off,
		&mid, &dc, &e.Tenant, &e.EventType, &e.ErrorCode, &e.Fingerprint, &e.GroupID,
		&indexed, &updated, &flags, &e.PayloadSize, &e.PayloadHash, &truncated, &e.Resource,
		&e.RedriveCount, &e.RedriveJob, &e.StatusReason, &e.RefailedAs, &e.RefailureOf, &last); err != nil {
		return Entry{}, 0, err
	}
	e.Partition, e.Offset = -1, -1
	if part.Valid {
		e.Partition, e.Offset = int32(part.Int64), off.Int64
	}
	e.MessageID, e.DeathCount = mid.String, int(dc.Int64)
	e.IndexedAt, e.UpdatedAt = fromNano(indexed), fromNano(updated)
	if flags != "" {
		e.Flags = strings.Split(flags, ",")
	}
	e.Truncated = truncated != 0
	return e, last, nil
}
