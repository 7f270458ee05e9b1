package dlqstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"switchyard/delivery"
)

// IndexItem is one decoded dead letter ready to store (the indexer decodes
// with delivery.Decode).
type IndexItem struct {
	DL          delivery.DeadLetter // DL.DLQ = where the record is (broker, cluster, topic/partition/offset or vhost/queue)
	MessageID   string              // RabbitMQ message id ("" for Kafka; "" for RabbitMQ means no redelivery dedupe)
	DeathCount  int                 // RabbitMQ: x-death count of the DLQ hop, for redelivery dedupe
	Fingerprint string              // delivery.Fingerprint(DL); filled in when empty
	Flags       []string            // "undecodable", "not_utf8", "invalid_envelope", "too_large", "no_error_context"
	PayloadSize int                 // original size in bytes
	PayloadHash string              // sha256 hex of the original payload
	Truncated   bool                // DL.Payload was cut to the configured cap
	ReceivedAt  time.Time           // not stored: Entry.IndexedAt is the store's own clock
}

// IndexResult says how many items of a batch became entries and how many
// were already stored.
type IndexResult struct{ Inserted, Duplicates int }

// TopicPartition names a Kafka partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// IndexKafka stores the records read from one partition of a DLQ topic and
// sets the partition's next offset to nextOffset, in ONE transaction: after
// a crash at any moment the stored offset and the stored entries agree, so
// the indexer resumes exactly where the committed entries end. A record
// already stored (same cluster, topic, partition and offset) counts as a
// Duplicate. Every item's DL.DLQ.Offset must lie in [0, nextOffset).
// Errors: EINVALID for a malformed batch.
func (s *Store) IndexKafka(ctx context.Context, cluster, topic string, partition int32, items []IndexItem, nextOffset int64) (IndexResult, error) {
	s.capturing.Add(1)
	defer s.capturing.Add(-1)
	if cluster == "" || topic == "" || partition < 0 || nextOffset < 0 {
		return IndexResult{}, delivery.Errorf(delivery.EINVALID, "index kafka: want a cluster, topic, partition and next offset (got %q %q %d %d)", cluster, topic, partition, nextOffset)
	}
	for i := range items {
		if o := items[i].DL.DLQ.Offset; o < 0 || o >= nextOffset {
			return IndexResult{}, delivery.Errorf(delivery.EINVALID, "index kafka %s/%d: offset %d of item %d outside [0, %d)", topic, partition, o, i, nextOffset)
		}
	}
	loc := func(it *IndexItem) key {
		return key{broker: delivery.BrokerKafka, cluster: cluster, destination: topic, partition: partition, offset: it.DL.DLQ.Offset}
	}
	rows := prepareRows(items, loc, s.dictFor(ctx, items))
	var res IndexResult
	var fresh []queuedText
	err := s.writeThen(ctx, func(tx *sql.Tx, now int64) error {
		var err error
		if res, fresh, err = s.insert(ctx, tx, now, items, rows, loc); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO kafka_offsets (cluster, topic, kpartition, next_offset, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (cluster, topic, kpartition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
			cluster, topic, partition, nextOffset, now)
		if err != nil {
			return fmt.Errorf("store offset: %w", err)
		}
		return nil
	}, func() { s.queueText(fresh) })
	if err != nil {
		return IndexResult{}, fmt.Errorf("index kafka %s %s/%d: %w", cluster, topic, partition, err)
	}
	s.inserted(ctx, res.Inserted)
	return res, nil
}

// KafkaOffsets returns the next offset to read of every partition of
// cluster that has been indexed.
func (s *Store) KafkaOffsets(ctx context.Context, cluster string) (map[TopicPartition]int64, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT topic, kpartition, next_offset FROM kafka_offsets WHERE cluster = ?", cluster)
	if err != nil {
		return nil, fmt.Errorf("kafka offsets: %w", err)
	}
	defer rows.Close()
	out := map[TopicPartition]int64{}
	for rows.Next() {
		var tp TopicPartition
		var next int64
		if err := rows.Scan(&tp.Topic, &tp.Partition, &next); err != nil {
			return nil, fmt.Errorf("kafka offsets: %w", err)
		}
		out[tp] = next
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kafka offsets: %w", err)
	}
	return out, nil
}

// IndexRabbit stores a batch of messages taken from RabbitMQ DLQ queues in
// one transaction; the caller acks them only after it returns nil. The same
// (cluster, vhost, queue, message id, death count) is a Duplicate (a
// redelivery); a message without a message id is never taken for a
// duplicate, since two different messages could not be told apart.
// Errors: EINVALID for an item without a RabbitMQ location.
func (s *Store) IndexRabbit(ctx context.Context, items []IndexItem) (IndexResult, error) {
	s.capturing.Add(1)
	defer s.capturing.Add(-1)
	for i := range items {
		d := items[i].DL.DLQ
		if d.Broker != delivery.BrokerRabbitMQ || d.Cluster == "" || d.Queue == "" {
			return IndexResult{}, delivery.Errorf(delivery.EINVALID, "index rabbitmq: item %d has no RabbitMQ cluster and queue in DL.DLQ", i)
		}
	}
	loc := func(it *IndexItem) key {
		d := it.DL.DLQ
		return key{broker: delivery.BrokerRabbitMQ, cluster: d.Cluster, vhost: d.VHost, destination: d.Queue,
			messageID: it.MessageID, deathCount: it.DeathCount}
	}
	rows := prepareRows(items, loc, s.dictFor(ctx, items))
	var res IndexResult
	var fresh []queuedText
	err := s.writeThen(ctx, func(tx *sql.Tx, now int64) error {
		var err error
		res, fresh, err = s.insert(ctx, tx, now, items, rows, loc)
		return err
	}, func() { s.queueText(fresh) })
	if err != nil {
		return IndexResult{}, fmt.Errorf("index rabbitmq: %w", err)
	}
	s.inserted(ctx, res.Inserted)
	return res, nil
}

// key is where an entry's record lives, its deduplication key.
type key struct {
	broker, cluster, vhost, destination string
	partition                           int32
	offset                              int64
	messageID                           string
	deathCount                          int
}

// statKey is one row of group_stats. refailed counts redriven entries
// whose message failed again apart (see refailure.go).
type statKey struct {
	group                                                     int64
	tenant, broker, cluster, destination, resource, eventType string
	status                                                    Status
	refailed                                                  bool
}

type statDelta struct {
	n           int
	first, last int64
}

// groupDelta is what one batch adds to a group's totals.
type groupDelta struct {
	n           int
	first, last int64
}

// insert stores items, skipping duplicates, and updates groups and their
// stats, all inside tx; the text indexer puts them into the full-text index
// afterwards (rebuild.go), from the returned queuedText of each new entry
// once tx has committed. Statements are prepared once per
// batch; group and stats rows are written once per distinct key per batch,
// not per entry.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, now int64, items []IndexItem, rows []row, loc func(*IndexItem) key) (res IndexResult, fresh []queuedText, err error) {
	if len(items) == 0 {
		return res, nil, nil
	}
	groupIDs, err := s.ensureGroups(ctx, tx, now, items)
	if err != nil {
		return res, nil, err
	}
	fresh = make([]queuedText, 0, len(items))
	insEntry, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO entries (
	status, broker, cluster, vhost, destination, kpartition, koffset, message_id, death_count,
	tenant, event_type, error_code, fingerprint, group_id, first_failure_at, last_failure_at,
	indexed_at, updated_at, flags, payload_size, payload_hash, truncated, resource,
	redrive_count, redrive_job, status_reason, refailure_of)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return res, nil, fmt.Errorf("prepare entry insert: %w", err)
	}
	defer insEntry.Close()
	insBody, err := tx.PrepareContext(ctx, "INSERT INTO entry_bodies (id, codec, payload, headers, record) VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		return res, nil, fmt.Errorf("prepare body insert: %w", err)
	}
	defer insBody.Close()

	groups := map[int64]*groupDelta{}
	stats := map[statKey]*statDelta{}
	links := &refailureLinks{tx: tx}
	defer links.close()
	superseded := map[int64]int{} // per group: originals now counted as their re-failure
	for i := range items {
		if err := ctx.Err(); err != nil {
			return res, nil, err
		}
		it := &items[i]
		k := loc(it)
		r := &rows[i]
		gid := groupIDs[it.Fingerprint]
		var part, off, dc any
		var mid any
		if k.broker == delivery.BrokerKafka {
			part, off = k.partition, k.offset
		} else {
			dc = k.deathCount
			if k.messageID != "" {
				mid = k.messageID
			}
		}
		truncated := 0
		if it.Truncated {
			truncated = 1
		}
		status, reason := StatusDead, ""
		if it.DL.RedriveCount >= s.maxRedrives {
			status = StatusQuarantined
			reason = fmt.Sprintf("quarantined automatically: redriven %d times (limit %d) and still failing", it.DL.RedriveCount, s.maxRedrives)
		}
		job, _ := strconv.ParseInt(it.DL.Headers.String(delivery.HeaderRedriveJob), 10, 64)
		var orig refailedOriginal
		if job != 0 {
			if orig, _, err = links.find(ctx, job, it); err != nil {
				return res, nil, fmt.Errorf("insert entry %d: %w", i, err)
			}
		}
		result, err := insEntry.ExecContext(ctx, string(status),
			k.broker, k.cluster, k.vhost, k.destination, part, off, mid, dc,
			r.tenant, r.eventType, it.DL.Error.Code, it.Fingerprint, gid, r.first, r.last,
			now, now, strings.Join(it.Flags, ","), it.PayloadSize, it.PayloadHash, truncated, r.resource,
			it.DL.RedriveCount, job, reason, orig.id)
		if err != nil {
			return res, nil, fmt.Errorf("insert entry %d: %w", i, err)
		}
		if n, _ := result.RowsAffected(); n == 0 {
			res.Duplicates++
			continue
		}
		id, err := result.LastInsertId()
		if err != nil {
			return res, nil, fmt.Errorf("insert entry %d: %w", i, err)
		}
		res.Inserted++
		if orig.id != 0 {
			if err := links.supersede(ctx, orig, id, stats, superseded); err != nil {
				return res, nil, err
			}
		}
		fresh = append(fresh, queuedText{id: id, text: r.text})
		if _, err := insBody.ExecContext(ctx, id, r.codec, r.payload, r.headers, r.record); err != nil {
			return res, nil, fmt.Errorf("insert body of entry %d: %w", i, err)
		}
		g := groups[gid]
		if g == nil {
			g = &groupDelta{first: r.first, last: r.last}
			groups[gid] = g
		}
		g.n++
		g.first, g.last = min(g.first, r.first), max(g.last, r.last)
		sk := statKey{group: gid, tenant: r.tenant, broker: k.broker, cluster: k.cluster, destination: k.destination,
			resource: r.resource, eventType: r.eventType, status: status}
		st := stats[sk]
		if st == nil {
			st = &statDelta{first: r.first, last: r.last}
			stats[sk] = st
		}
		st.n++
		st.first, st.last = min(st.first, r.first), max(st.last, r.last)
	}
	if len(groups) > 0 {
		updGroup, err := tx.PrepareContext(ctx, `UPDATE groups SET count = count + ?,
	first_seen = CASE WHEN first_seen = 0 OR ? < first_seen THEN ? ELSE first_seen END,
	last_seen = max(last_seen, ?) WHERE id = ?`)
		if err != nil {
			return res, nil, fmt.Errorf("prepare group update: %w", err)
		}
		defer updGroup.Close()
		for gid, d := range groups {
			if _, err := updGroup.ExecContext(ctx, d.n, d.first, d.first, d.last, gid); err != nil {
				return res, nil, fmt.Errorf("update group %d: %w", gid, err)
			}
		}
	}
	for gid, n := range superseded {
		if _, err := tx.ExecContext(ctx, "UPDATE groups SET count = max(count - ?, 0) WHERE id = ?", n, gid); err != nil {
			return res, nil, fmt.Errorf("update group %d: %w", gid, err)
		}
	}
	if err := applyStats(ctx, tx, stats); err != nil {
		return res, nil, err
	}
	return res, fresh, nil
}

// applyStats adds deltas (possibly negative) to group_stats and drops rows
// that reach zero.
//
// The statement is prepared once per call: an insert batch has up to one
// row per entry, and re-preparing the upsert for each cost more than running
// it. Only a negative delta can bring a row to zero, so the sweep of
// group_stats (a scan of the whole table) runs only then.
func applyStats(ctx context.Context, tx *sql.Tx, stats map[statKey]*statDelta) error {
	if len(stats) == 0 {
		return nil
	}
	up, err := tx.PrepareContext(ctx, `INSERT INTO group_stats (group_id, tenant, broker, cluster, destination, resource, event_type, status, refailed, n, first_seen, last_seen)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (group_id, tenant, broker, cluster, destination, resource, event_type, status, refailed) DO UPDATE SET
	n = n + excluded.n, first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)`)
	if err != nil {
		return fmt.Errorf("update group stats: %w", err)
	}
	defer up.Close()
	negative := false
	for k, d := range stats {
		if d.n == 0 {
			continue
		}
		negative = negative || d.n < 0
		if _, err := up.ExecContext(ctx, k.group, k.tenant, k.broker, k.cluster, k.destination, k.resource, k.eventType, string(k.status), k.refailed, d.n, d.first, d.last); err != nil {
			return fmt.Errorf("update group stats: %w", err)
		}
	}
	if negative {
		if _, err := tx.ExecContext(ctx, "DELETE FROM group_stats WHERE n <= 0"); err != nil {
			return fmt.Errorf("update group stats: %w", err)
		}
	}
	return nil
}

// ensureGroups returns the group id of every fingerprint of items, creating
// the groups that do not exist yet. Counts are added after the entries, so
// that a batch of duplicates changes nothing but possibly an empty group.
func (s *Store) ensureGroups(ctx context.Context, tx *sql.Tx, now int64, items []IndexItem) (map[string]int64, error) {
	ids := map[string]int64{}
	// Most groups exist already: look them up, and insert only the new
	// ones (the upsert rewrote the row of every existing group).
	get, err := tx.PrepareContext(ctx, "SELECT id FROM groups WHERE fingerprint = ?")
	if err != nil {
		return nil, fmt.Errorf("prepare group lookup: %w", err)
	}
	defer get.Close()
	var add *sql.Stmt
	for i := range items {
		it := &items[i]
		if it.Fingerprint == "" {
			it.Fingerprint = delivery.Fingerprint(it.DL)
		}
		if _, ok := ids[it.Fingerprint]; ok {
			continue
		}
		var id int64
		err := get.QueryRowContext(ctx, it.Fingerprint).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			if add == nil {
				if add, err = tx.PrepareContext(ctx, `INSERT INTO groups (fingerprint, title, error_code, event_type, exception_type, updated_at)
VALUES (?, ?, ?, ?, ?, ?) RETURNING id`); err != nil {
					return nil, fmt.Errorf("prepare group insert: %w", err)
				}
				defer add.Close()
			}
			err = add.QueryRowContext(ctx, it.Fingerprint, groupTitle(it.DL), it.DL.Error.Code, eventType(it.DL), it.DL.Error.ExceptionType, now).Scan(&id)
		}
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", it.Fingerprint, err)
		}
		ids[it.Fingerprint] = id
	}
	return ids, nil
}

// groupTitle is the shape of a group's first entry's message
// (delivery.MessageTitle: the fingerprint's, with its case), or what else
// names the failure when there is no message.
func groupTitle(dl delivery.DeadLetter) string {
	if t := delivery.MessageTitle(dl.Error.Message); t != "" {
		return t
	}
	if dl.Error.ExceptionType != "" {
		return dl.Error.ExceptionType
	}
	if dl.Error.Code != "" {
		return dl.Error.Code
	}
	return "(no error message)"
}

func tenantOf(dl delivery.DeadLetter) string {
	if dl.Envelope != nil && dl.Envelope.Metadata.TenantID != "" {
		return dl.Envelope.Metadata.TenantID
	}
	return dl.Headers.String(delivery.HeaderTenantID)
}

func eventType(dl delivery.DeadLetter) string {
	if dl.Envelope != nil && dl.Envelope.Type != "" {
		return dl.Envelope.Type
	}
	return dl.Headers.String(delivery.HeaderEventType)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// row is the derived columns of one item.
type row struct {
	tenant, eventType, resource string
	first, last                 int64
	headers, record             []byte
	// After prepareRows: the body as stored, each blob packed
	// (packBody), and its codec.
	codec   int
	payload []byte
	// text is what the full-text index will hold of it but its id
	// (textFor), for the text indexer's queue.
	text entryText
}

// prepareRowsMin is the smallest batch prepareRows splits across cores.
const prepareRowsMin = 256

// prepareRows computes the stored form of every item — fingerprint,
// derived columns, encoded and packed bodies — before the write
// transaction and on every core: under a flood the write lock, held by one
// core at a time, is the bottleneck, and encoding and compressing took
// half of what capture did inside it. d is the dictionary set to pack
// the bodies with (nil: none yet).
func prepareRows(items []IndexItem, loc func(*IndexItem) key, d *dictSet) []row {
	rows := make([]row, len(items))
	prep := func(from, to int) {
		var enc encoder
		for i := from; i < to; i++ {
			it := &items[i]
			if it.Fingerprint == "" {
				it.Fingerprint = delivery.Fingerprint(it.DL)
			}
			r := rowOf(it, &enc)
			k := loc(it)
			r.resource = resourceOf(&it.DL, k)
			r.text = textFor(it, entryFilters{tenant: r.tenant, eventType: r.eventType, errorCode: it.DL.Error.Code,
				broker: k.broker, cluster: k.cluster, destination: k.destination, resource: r.resource})
			r.codec, r.payload, r.headers, r.record = packBody(d, nonNil(it.DL.Payload), r.headers, r.record)
			rows[i] = r
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(items)/prepareRowsMin)
	if workers <= 1 {
		prep(0, len(items))
		return rows
	}
	var wg sync.WaitGroup
	per := (len(items) + workers - 1) / workers
	for from := 0; from < len(items); from += per {
		wg.Go(func() { prep(from, min(from+per, len(items))) })
	}
	wg.Wait()
	return rows
}

func rowOf(it *IndexItem, enc *encoder) row {
	dl := &it.DL
	r := row{tenant: tenantOf(*dl), eventType: eventType(*dl),
		first: unixNano(dl.FirstFailureAt), last: unixNano(dl.LastFailureAt)}
	if r.first == 0 {
		r.first = r.last
	}
	r.headers = enc.headers(dl.Headers)
	r.record = enc.record(dl, it.Truncated)
	return r
}
