// Package dlqstore is the dead-letter index: one Entry per failed message
// read from a DLQ topic or queue, failure Groups by fingerprint with their
// triage state, a full-text index, and the Kafka offsets committed in the
// same transaction as the entries read before them. Store is the one type;
// it owns its own SQLite file (dlq.db, WAL) so that indexing never contends
// with the console database.
package dlqstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// Status is the state of one entry.
type Status string

// Entry states. Retention purges only resolved and discarded entries.
const (
	StatusDead        Status = "dead"
	StatusRedriving   Status = "redriving"
	StatusRedriven    Status = "redriven"
	StatusQuarantined Status = "quarantined"
	StatusDiscarded   Status = "discarded"
	StatusResolved    Status = "resolved"
)

// Valid reports whether s is one of the known states.
func (s Status) Valid() bool {
	switch s {
	case StatusDead, StatusRedriving, StatusRedriven, StatusQuarantined, StatusDiscarded, StatusResolved:
		return true
	}
	return false
}

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

// Options configures a Store; the zero value is usable.
type Options struct {
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()
	// MaxRedrives is loop protection: a dead letter whose message had
	// already been redriven this many times is stored quarantined, with the
	// reason, instead of dead (default delivery.DefaultMaxRedrives).
	MaxRedrives int
}

// Store is the dead-letter index. Its methods are safe for concurrent use;
// writes queue on SQLite's write lock (transactions start IMMEDIATE).
type Store struct {
	db          *sql.DB
	now         func() time.Time
	logger      *slog.Logger
	maxRedrives int

	mu           sync.Mutex
	sinceAnalyze int // entries inserted since the last ANALYZE
	analyzedAt   int // entries at the last ANALYZE
}

// Open opens (creating and migrating) the dead-letter database at path.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	db, err := sqldb.OpenWith(ctx, path, Migrations())
	if err != nil {
		return nil, fmt.Errorf("dlqstore: %w", err)
	}
	if opts.MaxRedrives <= 0 {
		opts.MaxRedrives = delivery.DefaultMaxRedrives
	}
	s := &Store{db: db, now: opts.Now, logger: opts.Logger, maxRedrives: opts.MaxRedrives}
	if err := s.tune(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("dlqstore: open %s: %w", path, err)
	}
	if err := s.analyze(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("dlqstore: open %s: %w", path, err)
	}
	return s, nil
}

// poolSize is the number of connections: one writer at a time (writes
// queue on SQLite's lock) and a few concurrent searches.
const poolSize = 4

// tune gives every pooled connection a memory map and a larger page cache:
// a search reads index and row pages at random, and with the default 2 MB
// cache each read is a system call. The pool keeps its connections for
// good, so the settings stay (a connection replaced after an error merely
// runs without them).
func (s *Store) tune(ctx context.Context) error {
	s.db.SetMaxOpenConns(poolSize)
	s.db.SetMaxIdleConns(poolSize)
	s.db.SetConnMaxLifetime(0)
	s.db.SetConnMaxIdleTime(0)
	conns := make([]*sql.Conn, 0, poolSize)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range poolSize {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		// wal_autocheckpoint: an insert batch writes a few thousand pages
		// (bodies, ~13 index leaves per entry, full-text segments), so at
		// the default 1000 pages every commit checkpointed, with two
		// fsyncs, and copied pages that the next batch dirtied again.
		if _, err := c.ExecContext(ctx, "PRAGMA mmap_size = 2147418112; PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 10000; PRAGMA temp_store = MEMORY"); err != nil {
			return err
		}
	}
	return nil
}

// analyze refreshes the planner's statistics. Without them SQLite cannot
// tell that (status, tenant, last_failure_at) beats (status,
// last_failure_at) for a tenant's dead entries, and a list that should take
// milliseconds walks a whole status. analysis_limit keeps it to a fraction
// of a second at millions of rows.
func (s *Store) analyze(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM entries LIMIT 1000000)").Scan(&n); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, "PRAGMA analysis_limit = 1000; ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	s.mu.Lock()
	s.sinceAnalyze, s.analyzedAt = 0, n
	s.mu.Unlock()
	return nil
}

// inserted notes n new entries and re-analyzes when the table has grown
// by half (and at least 10,000 entries) since the last time.
func (s *Store) inserted(ctx context.Context, n int) {
	s.mu.Lock()
	s.sinceAnalyze += n
	due := s.sinceAnalyze >= max(10000, s.analyzedAt/2)
	s.mu.Unlock()
	if due {
		if err := s.analyze(ctx); err != nil {
			s.logger.Warn("dlqstore: refreshing planner statistics failed", "err", err)
		}
	}
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the underlying database, for readiness checks.
func (s *Store) DB() *sql.DB { return s.db }

// maxFTSText caps the payload text put into the full-text index: the
// first 64 KiB of a body hold whatever an operator searches for, and a 5 MB
// body would otherwise cost megabytes of index.
const maxFTSText = 64 << 10

// IndexKafka stores the records read from one partition of a DLQ topic and
// sets the partition's next offset to nextOffset, in ONE transaction: after
// a crash at any moment the stored offset and the stored entries agree, so
// the indexer resumes exactly where the committed entries end. A record
// already stored (same cluster, topic, partition and offset) counts as a
// Duplicate. Every item's DL.DLQ.Offset must lie in [0, nextOffset).
// Errors: EINVALID for a malformed batch.
func (s *Store) IndexKafka(ctx context.Context, cluster, topic string, partition int32, items []IndexItem, nextOffset int64) (IndexResult, error) {
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
	var res IndexResult
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		var err error
		if res, err = s.insert(ctx, tx, now, items, loc); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO kafka_offsets (cluster, topic, kpartition, next_offset, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (cluster, topic, kpartition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
			cluster, topic, partition, nextOffset, now)
		if err != nil {
			return fmt.Errorf("store offset: %w", err)
		}
		return nil
	})
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
	var res IndexResult
	err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		var err error
		res, err = s.insert(ctx, tx, now, items, loc)
		return err
	})
	if err != nil {
		return IndexResult{}, fmt.Errorf("index rabbitmq: %w", err)
	}
	s.inserted(ctx, res.Inserted)
	return res, nil
}

// write runs fn in one write transaction.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx, now int64) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := fn(tx, unixNano(s.now())); err != nil {
		return err
	}
	return tx.Commit()
}

// key is where an entry's record lives, its deduplication key.
type key struct {
	broker, cluster, vhost, destination string
	partition                           int32
	offset                              int64
	messageID                           string
	deathCount                          int
}

// statKey is one row of group_stats.
type statKey struct {
	group                                                     int64
	tenant, broker, cluster, destination, resource, eventType string
	status                                                    Status
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

// insert stores items, skipping duplicates, and updates groups, their stats
// and the full-text index, all inside tx. Statements are prepared once per
// batch; group and stats rows are written once per distinct key per batch,
// not per entry.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, now int64, items []IndexItem, loc func(*IndexItem) key) (IndexResult, error) {
	var res IndexResult
	if len(items) == 0 {
		return res, nil
	}
	groupIDs, err := s.ensureGroups(ctx, tx, now, items)
	if err != nil {
		return res, err
	}
	insEntry, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO entries (
	status, broker, cluster, vhost, destination, kpartition, koffset, message_id, death_count,
	tenant, event_type, error_code, fingerprint, group_id, first_failure_at, last_failure_at,
	indexed_at, updated_at, flags, payload_size, payload_hash, truncated, resource,
	redrive_count, redrive_job, status_reason)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return res, fmt.Errorf("prepare entry insert: %w", err)
	}
	defer insEntry.Close()
	insBody, err := tx.PrepareContext(ctx, "INSERT INTO entry_bodies (id, payload, headers, record) VALUES (?, ?, ?, ?)")
	if err != nil {
		return res, fmt.Errorf("prepare body insert: %w", err)
	}
	defer insBody.Close()
	insFTS, err := tx.PrepareContext(ctx, "INSERT INTO entries_fts (rowid, message, exception, ids, payload) VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		return res, fmt.Errorf("prepare fts insert: %w", err)
	}
	defer insFTS.Close()

	groups := map[int64]*groupDelta{}
	stats := map[statKey]*statDelta{}
	var enc encoder
	for i := range items {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		it := &items[i]
		k := loc(it)
		r := rowOf(it, &enc)
		r.resource = resourceOf(&it.DL, k)
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
		result, err := insEntry.ExecContext(ctx, string(status),
			k.broker, k.cluster, k.vhost, k.destination, part, off, mid, dc,
			r.tenant, r.eventType, it.DL.Error.Code, it.Fingerprint, gid, r.first, r.last,
			now, now, strings.Join(it.Flags, ","), it.PayloadSize, it.PayloadHash, truncated, r.resource,
			it.DL.RedriveCount, job, reason)
		if err != nil {
			return res, fmt.Errorf("insert entry %d: %w", i, err)
		}
		if n, _ := result.RowsAffected(); n == 0 {
			res.Duplicates++
			continue
		}
		id, err := result.LastInsertId()
		if err != nil {
			return res, fmt.Errorf("insert entry %d: %w", i, err)
		}
		res.Inserted++
		if _, err := insBody.ExecContext(ctx, id, nonNil(it.DL.Payload), r.headers, r.record); err != nil {
			return res, fmt.Errorf("insert body of entry %d: %w", i, err)
		}
		if _, err := insFTS.ExecContext(ctx, id, it.DL.Error.Message, it.DL.Error.ExceptionType,
			idsText(id, it), payloadText(it.DL.Payload)); err != nil {
			return res, fmt.Errorf("index text of entry %d: %w", i, err)
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
			return res, fmt.Errorf("prepare group update: %w", err)
		}
		defer updGroup.Close()
		for gid, d := range groups {
			if _, err := updGroup.ExecContext(ctx, d.n, d.first, d.first, d.last, gid); err != nil {
				return res, fmt.Errorf("update group %d: %w", gid, err)
			}
		}
	}
	if err := applyStats(ctx, tx, stats); err != nil {
		return res, err
	}
	return res, nil
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
	up, err := tx.PrepareContext(ctx, `INSERT INTO group_stats (group_id, tenant, broker, cluster, destination, resource, event_type, status, n, first_seen, last_seen)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (group_id, tenant, broker, cluster, destination, resource, event_type, status) DO UPDATE SET
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
		if _, err := up.ExecContext(ctx, k.group, k.tenant, k.broker, k.cluster, k.destination, k.resource, k.eventType, string(k.status), d.n, d.first, d.last); err != nil {
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

// groupTitle is the normalized message of a group's first entry, or what
// else names the failure when there is no message.
func groupTitle(dl delivery.DeadLetter) string {
	if t := delivery.NormalizeMessage(dl.Error.Message); t != "" {
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

// idsText is the ids column of the full-text index: entry id, envelope id,
// correlation id (envelope or header), trace id and message id.
func idsText(id int64, it *IndexItem) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", id)
	add := func(v string) {
		if v != "" {
			b.WriteByte(' ')
			b.WriteString(v)
		}
	}
	dl := &it.DL
	if dl.Envelope != nil {
		add(dl.Envelope.ID)
		add(dl.Envelope.CorrelationID)
		add(dl.Envelope.TraceID)
	}
	if c := dl.Headers.String(delivery.HeaderCorrelationID); dl.Envelope == nil || c != dl.Envelope.CorrelationID {
		add(c)
	}
	if dl.Envelope == nil {
		add(dl.Headers.String(delivery.HeaderEventID))
		add(traceIDOf(dl.Headers.String(delivery.HeaderTraceparent)))
	}
	add(it.MessageID)
	return b.String()
}

// traceIDOf returns the trace id of a W3C traceparent header.
func traceIDOf(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) == 4 && len(parts[1]) == 32 {
		return parts[1]
	}
	return ""
}

// payloadText is the searchable text of a payload: the payload itself when
// it is UTF-8 (cut at a rune boundary to maxFTSText), nothing otherwise.
func payloadText(p []byte) string {
	if len(p) > maxFTSText {
		p = p[:maxFTSText]
		for len(p) > 0 && !utf8.RuneStart(p[len(p)-1]) {
			p = p[:len(p)-1]
		}
		if len(p) > 0 {
			p = p[:len(p)-1] // the last rune may be cut: drop it
		}
	}
	if !utf8.Valid(p) {
		return ""
	}
	return string(p)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// row is the derived columns of one item.
type row struct {
	tenant, eventType, resource string
	first, last                 int64
	headers, record             []byte
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

// encoder reuses its buffers across a batch.
type encoder struct{}

// storedHeader is one header in entries.headers: the value as a JSON string
// when it is UTF-8 (most are), base64 only when it is not, so that the
// column stays readable and a third smaller than []byte's base64.
type storedHeader struct {
	K string  `json:"k"`
	V *string `json:"v,omitempty"`
	B []byte  `json:"b,omitempty"`
}

func (encoder) headers(h delivery.Headers) []byte {
	if len(h) == 0 {
		return nil
	}
	out := make([]storedHeader, len(h))
	for i, x := range h {
		out[i].K = x.Key
		switch {
		case x.Value == nil:
		case utf8.Valid(x.Value):
			v := string(x.Value)
			out[i].V = &v
		default:
			out[i].B = x.Value
		}
	}
	b, _ := json.Marshal(out) // cannot fail: strings and bytes only
	return b
}

func decodeHeaders(b []byte) (delivery.Headers, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var in []storedHeader
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	out := make(delivery.Headers, len(in))
	for i, x := range in {
		out[i].Key = x.K
		switch {
		case x.V != nil:
			out[i].Value = []byte(*x.V)
		case x.B != nil:
			out[i].Value = x.B
		}
	}
	return out, nil
}

// storedRecord is entries.record: the dead letter minus what has its own
// column (payload, headers), the envelope's inner payload when the stored
// payload is whole (it is re-read from there), and the stack trace when a
// header carries it verbatim (Spring, Connect and Switchyard's own format
// all do): StackHeader then names that header. Stacks are the biggest part
// of a dead letter, often kilobytes, and would otherwise be stored twice.
type storedRecord struct {
	delivery.DeadLetter
	StackHeader string `json:"stack_header,omitempty"`
}

func (encoder) record(dl *delivery.DeadLetter, truncated bool) []byte {
	r := storedRecord{DeadLetter: *dl}
	c := &r.DeadLetter
	c.Payload, c.Headers = nil, nil
	if c.Envelope != nil {
		env := *c.Envelope
		// A cut payload cannot give the inner payload back; keep it
		// then, unless it alone is bigger than the cap the indexer chose.
		if !truncated || len(env.Payload) > len(dl.Payload) {
			env.Payload = nil
		}
		c.Envelope = &env
	}
	if st := c.Error.Stack; len(st) > 64 {
		for _, h := range dl.Headers {
			if len(h.Value) == len(st) && string(h.Value) == st {
				if v, _ := dl.Headers.Get(h.Key); string(v) == st { // read back with Get: the last of the key
					r.StackHeader, c.Error.Stack = h.Key, ""
					break
				}
			}
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		// Only Error.Details can hold an unmarshalable value (it came
		// from JSON, so in practice it cannot); keep the rest.
		c.Error.Details = nil
		b, _ = json.Marshal(r)
	}
	return b
}

func decodeRecord(b, payload []byte, headers []byte, truncated bool) (delivery.DeadLetter, error) {
	var r storedRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r.DeadLetter, fmt.Errorf("decode record: %w", err)
	}
	dl := r.DeadLetter
	dl.Payload = payload
	h, err := decodeHeaders(headers)
	if err != nil {
		return dl, fmt.Errorf("decode headers: %w", err)
	}
	dl.Headers = h
	if r.StackHeader != "" {
		dl.Error.Stack = h.String(r.StackHeader)
	}
	if dl.Envelope != nil && (dl.Envelope.Payload == nil || string(dl.Envelope.Payload) == "null") && !truncated {
		if env, err := delivery.ParseEnvelope(payload); err == nil {
			dl.Envelope.Payload = env.Payload
		}
	}
	return dl, nil
}
