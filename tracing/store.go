package tracing

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// Options configure a Store; the zero value keeps 72 hours of spans in at
// most 2 GiB with the default Limits.
type Options struct {
	// MaxAge is how long a span is kept, from its start; default 72h.
	MaxAge time.Duration
	// MaxBytes caps the file (page_count × page_size, which counts pages
	// still in the WAL); default 2 GiB. Whichever of the two is reached
	// first deletes the oldest spans.
	MaxBytes int64
	// Limits cap what one span may carry (FromOTLP applies them).
	Limits Limits
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger gets what RunRetention did; default slog.Default().
	Logger *slog.Logger
	// WriterCacheKB is the page cache of the connection a Write runs on,
	// in KiB (writerPragmas says why it is large); default 131072 (128 MiB).
	// The demo, whose platform is small, keeps it smaller to bound memory.
	WriterCacheKB int
}

// The Options defaults.
const (
	DefaultMaxAge         = 72 * time.Hour
	DefaultMaxBytes int64 = 2 << 30
)

func (o Options) withDefaults() (Options, error) {
	if o.MaxAge < 0 || o.MaxBytes < 0 || o.WriterCacheKB < 0 {
		return o, errors.New("span store: negative max age, size or cache")
	}
	if o.WriterCacheKB == 0 {
		o.WriterCacheKB = 131072
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	o.Limits = o.Limits.withDefaults()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// Store keeps spans in their own SQLite file (traces.db), indexed for the
// trace page, the correlation page and search, and trims itself to an age
// and a size (Retain). Write is the ingest path; Spans, LinkingTraces and
// Search are what assembly and the pages read.
type Store struct {
	db      *sql.DB
	opts    Options
	pragmas string // writerPragmas of opts

	// wmu serialises Write and Retain (SQLite has one writer anyway), so
	// that the resource id cache never names a row retention removed.
	wmu       sync.Mutex
	resources map[string]int64 // appendAttrs(resource attrs) → resources.id
}

// maxCachedResources bounds the resource id cache; beyond it the cache
// starts over (a process restart's new pid is a new resource).
const maxCachedResources = 4096

// Open opens (creating if needed) the span store at path, e.g.
// data/traces.db. The file uses incremental auto-vacuum, so that the
// pages retention frees go back to the file system.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	db, err := sqldb.OpenWith(ctx, path, sqldb.Options{IncrementalVacuum: true}, Schema())
	if err != nil {
		return nil, err
	}
	return &Store{db: db, opts: opts, resources: map[string]int64{}, pragmas: writerPragmas(opts.WriterCacheKB)}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Limits returns the caps FromOTLP must apply before Write: the
// receivers read them here so that configuration has one home.
func (s *Store) Limits() Limits { return s.opts.Limits }

// DB is the database, for the readiness write probe (sqldb.NewProber) and
// for benchmarks that compare against hand-written SQL on the same file.
func (s *Store) DB() *sql.DB { return s.db }

// storedKey is a span's identity for duplicate detection.
type storedKey struct {
	t TraceID
	s SpanID
}

// writerPragmas tune the connection a Write runs on (they are per
// connection, and sqldb's DSN is shared by every store, so they are set
// here; setting them again is free). Trace and event ids are random, so
// every span inserts into a random leaf of spans_trace and spans_event:
// with SQLite's default 2 MB page cache those leaves are read back from
// the OS for each insert, which halved ingest in measurements. 128 MB
// holds the hot index pages of a few million spans (Options.WriterCacheKB).
// A larger WAL checkpoint interval (64 MB) lets a leaf changed by several
// batches be copied into the database once.
func writerPragmas(cacheKB int) string {
	return fmt.Sprintf("PRAGMA cache_size=-%d; PRAGMA wal_autocheckpoint=16384", cacheKB)
}

// insertSpanHead lists the columns of spans in the order Write binds them.
const insertSpanHead = `INSERT INTO spans (trace_id, span_id, parent_id, start_ns, dur_ns, service, name, kind, status, flags,
	correlation_id, event_id, event_type, system, destination, cluster, grp, tenant, resource, attempt, step, resource_id, body)
	VALUES `

// Write stores spans in one transaction. A span whose (trace id, span id)
// is already stored, or repeats within the batch, is stored too, with
// FlagDuplicate (set on spans[i] too, for the caller's counters): a
// retrying exporter or a buggy SDK must show on the page, not vanish. Spans should come from FromOTLP (ids valid, caps applied,
// Derive run); a span with a zero trace or span id is refused, since no
// page could ever find it.
//
// The duplicate check is one query per batch (the stored span ids of the
// batch's traces, read from the spans_trace index alone); the rows go in
// rowsPerInsert at a time (rowWriter).
func (s *Store) Write(ctx context.Context, spans []Span) error {
	if len(spans) == 0 {
		return nil
	}
	for i := range spans {
		if spans[i].TraceID.IsZero() || spans[i].SpanID.IsZero() {
			return fmt.Errorf("write spans: span %d has no trace or span id", i)
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write spans: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := s.write(ctx, tx, spans); err != nil {
		s.resources = map[string]int64{} // ids inserted by the rolled-back transaction are gone
		return fmt.Errorf("write spans: %w", err)
	}
	if err := tx.Commit(); err != nil {
		s.resources = map[string]int64{}
		return fmt.Errorf("write spans: %w", err)
	}
	return nil
}

func (s *Store) write(ctx context.Context, tx *sql.Tx, spans []Span) error {
	if _, err := tx.ExecContext(ctx, s.pragmas); err != nil {
		return err
	}
	stored, err := storedIDs(ctx, tx, spans)
	if err != nil {
		return err
	}
	seen := make(map[storedKey]struct{}, len(spans))
	w := rowWriter{tx: tx}
	defer w.close()
	var res []byte
	latest := map[int64]int64{} // resources.id → latest span start of the batch
	var lastRes []Attr
	var resID int64
	for i := range spans {
		sp := &spans[i]
		k := storedKey{sp.TraceID, sp.SpanID}
		flags := sp.Flags
		if _, ok := stored[k]; ok {
			flags |= FlagDuplicate
		} else if _, ok := seen[k]; ok {
			flags |= FlagDuplicate
		}
		seen[k] = struct{}{}
		sp.Flags = flags // the receiver counts what Write found
		// Spans of one ResourceSpans share their ResourceAttrs slice.
		if i == 0 || !sameSlice(sp.ResourceAttrs, lastRes) {
			res = appendAttrs(res[:0], sp.ResourceAttrs, nil)
			if resID, err = s.resourceID(ctx, tx, res); err != nil {
				return err
			}
			lastRes = sp.ResourceAttrs
		}
		start := unixNano(sp.Start)
		if l, ok := latest[resID]; !ok || start > l {
			latest[resID] = start
		}
		if err := w.add(ctx, sp, start, resID); err != nil {
			return err
		}
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	for id, start := range latest {
		if _, err := tx.ExecContext(ctx, `UPDATE resources SET last_ns = ? WHERE id = ? AND last_ns < ?`, start, id, start); err != nil {
			return err
		}
	}
	return nil
}

// rowsPerInsert is how many spans one INSERT statement writes: one
// statement per span spent more time in the per-statement work of
// database/sql, cgo and SQLite's VDBE than in the rows (23 columns × 32
// rows stays far below SQLite's 32,766 parameters).
const rowsPerInsert = 32

// rowWriter inserts spans rowsPerInsert at a time, and their links to
// other traces once their row ids are known: SQLite gives the rows of one
// multi-row INSERT consecutive rowids (max(rowid)+1 each, no AUTOINCREMENT),
// so the last insert id tells every row's.
type rowWriter struct {
	tx         *sql.Tx
	full, tail *sql.Stmt
	args       []any
	spans      []*Span // the pending rows' spans, for their links
	bodies     []byte  // the pending rows' bodies, back to back
	link       *sql.Stmt
}

func (w *rowWriter) add(ctx context.Context, sp *Span, start, resID int64) error {
	from := len(w.bodies)
	w.bodies = appendBody(w.bodies, sp)
	var parent any
	if !sp.ParentSpanID.IsZero() {
		parent = sp.ParentSpanID[:]
	}
	w.args = append(w.args, sp.TraceID[:], sp.SpanID[:], parent, start, int64(sp.End.Sub(sp.Start)),
		sp.Service, sp.Name, int(sp.Kind), int(sp.Status), int(sp.Flags),
		nullable(sp.CorrelationID), nullable(sp.EventID), sp.EventType, sp.System, nullable(sp.Destination),
		sp.Cluster, sp.Group, sp.Tenant, sp.Resource, sp.Attempt, sp.Step, resID, w.bodies[from:len(w.bodies):len(w.bodies)])
	w.spans = append(w.spans, sp)
	if len(w.spans) == rowsPerInsert {
		return w.flush(ctx)
	}
	return nil
}

// flush inserts the pending rows and their links.
func (w *rowWriter) flush(ctx context.Context) error {
	n := len(w.spans)
	if n == 0 {
		return nil
	}
	var stmt *sql.Stmt
	var err error
	if n == rowsPerInsert {
		if w.full == nil {
			if w.full, err = w.tx.PrepareContext(ctx, insertRows(n)); err != nil {
				return err
			}
		}
		stmt = w.full
	} else {
		// The last rows of a batch: a statement of their own size, once.
		if w.tail, err = w.tx.PrepareContext(ctx, insertRows(n)); err != nil {
			return err
		}
		defer func() { w.tail.Close(); w.tail = nil }()
		stmt = w.tail
	}
	r, err := stmt.ExecContext(ctx, w.args...)
	if err != nil {
		return err
	}
	last, err := r.LastInsertId()
	if err != nil {
		return err
	}
	for k, sp := range w.spans {
		if err := w.links(ctx, sp, last-int64(n-1-k)); err != nil {
			return err
		}
	}
	clear(w.args) // let the pending rows' values go
	w.args, w.spans, w.bodies = w.args[:0], w.spans[:0], w.bodies[:0]
	return nil
}

// links records which other traces the span in row links into.
func (w *rowWriter) links(ctx context.Context, sp *Span, row int64) error {
	for _, l := range sp.Links {
		if l.TraceID.IsZero() || l.TraceID == sp.TraceID {
			continue
		}
		if w.link == nil {
			var err error
			if w.link, err = w.tx.PrepareContext(ctx, `INSERT OR IGNORE INTO span_links (linked_trace, span_row) VALUES (?, ?)`); err != nil {
				return err
			}
		}
		if _, err := w.link.ExecContext(ctx, l.TraceID[:], row); err != nil {
			return err
		}
	}
	return nil
}

func (w *rowWriter) close() {
	for _, st := range []*sql.Stmt{w.full, w.tail, w.link} {
		if st != nil {
			st.Close()
		}
	}
}

// insertRows is the INSERT of n spans.
func insertRows(n int) string {
	row := "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
	return insertSpanHead + strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// storedIDs returns which spans of the batch's traces are already stored.
func storedIDs(ctx context.Context, tx *sql.Tx, spans []Span) (map[storedKey]struct{}, error) {
	traces := make(map[TraceID]struct{}, 64)
	var args []any
	for i := range spans {
		if _, ok := traces[spans[i].TraceID]; !ok {
			traces[spans[i].TraceID] = struct{}{}
			args = append(args, spans[i].TraceID[:])
		}
	}
	out := map[storedKey]struct{}{}
	const chunk = 500
	for len(args) > 0 {
		n := min(len(args), chunk)
		rows, err := tx.QueryContext(ctx, `SELECT trace_id, span_id FROM spans INDEXED BY spans_trace WHERE trace_id IN (`+sqlParams(n)+`)`, args[:n]...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var t, sid []byte
			if err := rows.Scan(&t, &sid); err != nil {
				rows.Close()
				return nil, err
			}
			var k storedKey
			copy(k.t[:], t)
			copy(k.s[:], sid)
			out[k] = struct{}{}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		args = args[n:]
	}
	return out, nil
}

// resourceID returns the resources row of the encoded attributes, adding
// it when new.
func (s *Store) resourceID(ctx context.Context, tx *sql.Tx, enc []byte) (int64, error) {
	if id, ok := s.resources[string(enc)]; ok {
		return id, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO resources (attrs) VALUES (?)`, enc); err != nil {
		return 0, err
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM resources WHERE attrs = ?`, enc).Scan(&id); err != nil {
		return 0, err
	}
	if len(s.resources) >= maxCachedResources {
		s.resources = map[string]int64{}
	}
	s.resources[string(enc)] = id
	return id, nil
}

func sameSlice(a, b []Attr) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func sqlParams(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// unixNano is t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// spanColumns are the columns scanSpan reads, with the resource's
// attributes; queries select them FROM spans s LEFT JOIN resources r.
const spanColumns = `s.id, s.trace_id, s.span_id, s.parent_id, s.start_ns, s.dur_ns, s.service, s.name, s.kind, s.status, s.flags,
	s.correlation_id, s.event_id, s.event_type, s.system, s.destination, s.cluster, s.grp, s.tenant, s.resource, s.attempt, s.step,
	s.resource_id, r.attrs, s.body`

const spanFrom = ` FROM spans s LEFT JOIN resources r ON r.id = s.resource_id`

// spanScanner reads rows of spanColumns. The spans of one process share
// its resource attributes, so each resource row is decoded once per query
// and its slice shared by the spans that point at it: readers treat
// attribute slices as read-only (the tracing service masks on a copy).
// Blobs are scanned as sql.RawBytes, without a copy: decoding copies what
// it keeps.
type spanScanner struct {
	resources map[int64][]Attr
}

// scan reads one row; it returns the row id too, for the keyset cursor.
func (sc *spanScanner) scan(rows *sql.Rows) (Span, int64, error) {
	var (
		sp                  Span
		id, start, dur, rid int64
		kind, status, flags int
		tid, sid, pid       sql.RawBytes
		resAttrs, body      sql.RawBytes
		corr, evID, dest    sql.NullString
	)
	if err := rows.Scan(&id, &tid, &sid, &pid, &start, &dur, &sp.Service, &sp.Name, &kind, &status, &flags,
		&corr, &evID, &sp.EventType, &sp.System, &dest, &sp.Cluster, &sp.Group, &sp.Tenant, &sp.Resource, &sp.Attempt, &sp.Step,
		&rid, &resAttrs, &body); err != nil {
		return sp, 0, err
	}
	copy(sp.TraceID[:], tid)
	copy(sp.SpanID[:], sid)
	copy(sp.ParentSpanID[:], pid)
	sp.Start = time.Unix(0, start).UTC()
	sp.End = time.Unix(0, start+dur).UTC()
	sp.Kind, sp.Status, sp.Flags = Kind(kind), Status(status), Flags(flags)
	sp.CorrelationID, sp.EventID, sp.Destination = corr.String, evID.String, dest.String
	res, ok := sc.resources[rid]
	if !ok {
		var err error
		if res, _, err = readAttrs(resAttrs); err != nil {
			return sp, 0, fmt.Errorf("span %s: resource: %w", sp.SpanID, err)
		}
		if sc.resources == nil {
			sc.resources = map[int64][]Attr{}
		}
		sc.resources[rid] = res
	}
	sp.ResourceAttrs = res
	if err := readBody(body, &sp); err != nil {
		return sp, 0, fmt.Errorf("span %s: %w", sp.SpanID, err)
	}
	return sp, id, nil
}

// Spans returns every span of the given traces ordered by start time, at
// most limit of them (then truncated is true): the trace page of a
// 100,000-span runaway trace draws its first limit spans instead of
// reading them all. A limit ≤ 0 means no limit.
func (s *Store) Spans(ctx context.Context, ids []TraceID, limit int) (spans []Span, truncated bool, err error) {
	if len(ids) == 0 {
		return nil, false, nil
	}
	args := make([]any, 0, len(ids)+1)
	for _, id := range ids {
		args = append(args, id[:])
	}
	q := `SELECT ` + spanColumns + spanFrom + ` WHERE s.trace_id IN (` + sqlParams(len(ids)) + `) ORDER BY s.start_ns, s.id`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit+1)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("read traces: %w", err)
	}
	defer rows.Close()
	var scan spanScanner
	for rows.Next() {
		sp, _, err := scan.scan(rows)
		if err != nil {
			return nil, false, fmt.Errorf("read traces: %w", err)
		}
		spans = append(spans, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read traces: %w", err)
	}
	if limit > 0 && len(spans) > limit {
		return spans[:limit], true, nil
	}
	return spans, false, nil
}

// Span returns the stored copies of one span, in start order: one, or
// more when duplicates of it were stored, or none. The trace page loads a
// span's details with it, one span at a time, instead of rendering every
// span's attributes for a 5,000-span trace. spans_trace holds the span id,
// so only the matching rows are read.
func (s *Store) Span(ctx context.Context, t TraceID, id SpanID) ([]Span, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+spanColumns+spanFrom+` WHERE s.trace_id = ? AND s.span_id = ? ORDER BY s.start_ns, s.id`, t[:], id[:])
	if err != nil {
		return nil, fmt.Errorf("read span %s: %w", id, err)
	}
	defer rows.Close()
	var out []Span
	var scan spanScanner
	for rows.Next() {
		sp, _, err := scan.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("read span %s: %w", id, err)
		}
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read span %s: %w", id, err)
	}
	return out, nil
}

// LinkingTraces returns the traces, other than ids, that have a span with
// a link into one of ids, at most limit (≤ 0: no limit): the consumer's
// own trace linked to the producer's, a redrive linked to the
// dead-lettered message's trace.
func (s *Store) LinkingTraces(ctx context.Context, ids []TraceID, limit int) ([]TraceID, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 2*len(ids)+1)
	for _, id := range ids {
		args = append(args, id[:])
	}
	args = append(args, args...)
	q := `SELECT DISTINCT s.trace_id FROM span_links l JOIN spans s ON s.id = l.span_row
		WHERE l.linked_trace IN (` + sqlParams(len(ids)) + `) AND s.trace_id NOT IN (` + sqlParams(len(ids)) + `)`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("linking traces: %w", err)
	}
	defer rows.Close()
	var out []TraceID
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("linking traces: %w", err)
		}
		var t TraceID
		copy(t[:], b)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("linking traces: %w", err)
	}
	return out, nil
}

// Stats says how much the store holds.
type Stats struct {
	Spans int64
	// Bytes is page_count × page_size: the size retention compares with
	// MaxBytes.
	Bytes          int64
	Oldest, Newest time.Time // span starts; zero when empty
}

// Stats counts the stored spans (a scan of the smallest index: tens of
// milliseconds at millions of spans, so not for every page view) and reads
// the file size and the time span.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var oldest, newest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(start_ns), MAX(start_ns) FROM spans`).Scan(&st.Spans, &oldest, &newest); err != nil {
		return st, fmt.Errorf("span store stats: %w", err)
	}
	if oldest.Valid {
		st.Oldest = time.Unix(0, oldest.Int64).UTC()
		st.Newest = time.Unix(0, newest.Int64).UTC()
	}
	var err error
	if st.Bytes, err = s.size(ctx); err != nil {
		return st, fmt.Errorf("span store stats: %w", err)
	}
	return st, nil
}

// size is the database's size as SQLite counts it.
func (s *Store) size(ctx context.Context) (int64, error) {
	var pages, pageSize int64
	if err := s.db.QueryRowContext(ctx, `SELECT page_count, page_size FROM pragma_page_count(), pragma_page_size()`).Scan(&pages, &pageSize); err != nil {
		return 0, err
	}
	return pages * pageSize, nil
}

// The body blob: what a page shows but no query filters on, in a compact
// binary form (uvarint lengths and counts, varint times), a few hundred
// bytes for a typical messaging span and an order of magnitude faster to
// write and read than JSON. Layout, version 1:
//
//	version=1 statusMsg attrs events links
//	attrs  = n (key value)*n
//	key    = uvarint 2×len+0, bytes | uvarint 2×i+1: attrKeys[i]
//	value  = uvarint 2×len+0, bytes | uvarint 2×c+1: the span's column c (valueColumns)
//	events = n (timeDelta name attrs)*n   timeDelta: varint ns from the span start
//	links  = n (traceID[16] spanID[8] attrs)*n
//	string = uvarint length, bytes
//
// The keys of the semantic conventions are a byte each, and a span
// attribute whose value is one of the span's indexed columns (the
// destination, the correlation id, the tenant …) is stored once, in the
// column: together a third of a messaging span's bytes.
const bodyVersion = 1

// attrKeys are the attribute keys written as their position. Append only:
// stored bodies and resources refer to the positions.
var attrKeys = []string{
	"service.name", "service.version", "service.instance.id", "service.namespace", "host.name", "host.arch",
	"os.type", "process.pid", "process.runtime.name", "process.runtime.version", "telemetry.sdk.name",
	"telemetry.sdk.language", "telemetry.sdk.version", "deployment.environment", "deployment.environment.name",
	"k8s.namespace.name", "k8s.pod.name", "k8s.deployment.name", "container.id",
	delivery.AttrSystem, delivery.AttrDest, "messaging.operation", "messaging.operation.name", "messaging.operation.type",
	delivery.AttrMessageID, delivery.AttrCorrelationID, delivery.AttrConsumer, "messaging.kafka.message.key",
	"messaging.kafka.offset", "messaging.destination.partition.id", "messaging.rabbitmq.destination.routing_key",
	"messaging.message.body.size", "messaging.client.id",
	delivery.AttrCluster, delivery.AttrAttempt, delivery.AttrStep, delivery.AttrRedriveJob, delivery.AttrDLQEntry, AttrCut,
	delivery.AttrEventType, delivery.AttrTenant, attrTenantPlain, attrCorrelationPlain, attrEventIDDotted, attrEventIDPlain,
	delivery.AttrErrorCode, "error.type",
	"http.request.method", "http.response.status_code", "http.route", "url.path", "url.full", "url.scheme",
	"server.address", "server.port", "client.address", "network.peer.address", "user_agent.original",
	"db.system", "db.system.name", "db.operation.name", "db.collection.name", "db.query.text", "db.namespace",
	"rpc.system", "rpc.service", "rpc.method",
	"exception.type", "exception.message", "exception.stacktrace", "exception.escaped",
	"otel.scope.name", "code.function", "code.namespace", "thread.id",
}

var attrKeyIndex = func() map[string]int {
	m := make(map[string]int, len(attrKeys))
	for i, k := range attrKeys {
		m[k] = i
	}
	return m
}()

// valueColumns are the span columns an attribute value may refer to, by
// position. Append only, like attrKeys.
var valueColumns = []func(*Span) string{
	func(s *Span) string { return s.CorrelationID },
	func(s *Span) string { return s.EventID },
	func(s *Span) string { return s.EventType },
	func(s *Span) string { return s.System },
	func(s *Span) string { return s.Destination },
	func(s *Span) string { return s.Cluster },
	func(s *Span) string { return s.Group },
	func(s *Span) string { return s.Tenant },
	func(s *Span) string { return s.Step },
}

func appendBody(b []byte, sp *Span) []byte {
	b = append(b, bodyVersion)
	b = appendString(b, sp.StatusMsg)
	b = appendAttrs(b, sp.Attrs, sp)
	b = binary.AppendUvarint(b, uint64(len(sp.Events)))
	start := unixNano(sp.Start)
	for _, e := range sp.Events {
		b = binary.AppendVarint(b, unixNano(e.Time)-start)
		b = appendString(b, e.Name)
		b = appendAttrs(b, e.Attrs, nil)
	}
	b = binary.AppendUvarint(b, uint64(len(sp.Links)))
	for _, l := range sp.Links {
		b = append(b, l.TraceID[:]...)
		b = append(b, l.SpanID[:]...)
		b = appendAttrs(b, l.Attrs, nil)
	}
	return b
}

// appendAttrs encodes as; values equal to a column of sp (when not nil)
// refer to it.
func appendAttrs(b []byte, as []Attr, sp *Span) []byte {
	b = binary.AppendUvarint(b, uint64(len(as)))
	for _, a := range as {
		if i, ok := attrKeyIndex[a.Key]; ok {
			b = binary.AppendUvarint(b, uint64(i)<<1|1)
		} else {
			b = appendTagged(b, a.Key)
		}
		b = appendValue(b, a.Value, sp)
	}
	return b
}

func appendValue(b []byte, v string, sp *Span) []byte {
	if sp != nil && v != "" {
		for c, col := range valueColumns {
			if col(sp) == v {
				return binary.AppendUvarint(b, uint64(c)<<1|1)
			}
		}
	}
	return appendTagged(b, v)
}

func appendTagged(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s))<<1)
	return append(b, s...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorrupt = errors.New("corrupt span body")

// readBody fills sp's status message, attributes, events and links from
// b; sp's columns must be read already (attribute values refer to them).
func readBody(b []byte, sp *Span) error {
	if len(b) == 0 || b[0] != bodyVersion {
		return errCorrupt
	}
	b = b[1:]
	var err error
	if sp.StatusMsg, b, err = readString(b); err != nil {
		return err
	}
	if sp.Attrs, b, err = decodeAttrs(b, sp); err != nil {
		return err
	}
	n, b, err := readCount(b)
	if err != nil {
		return err
	}
	start := unixNano(sp.Start)
	for range n {
		var e Event
		d, k := binary.Varint(b)
		if k <= 0 {
			return errCorrupt
		}
		e.Time = time.Unix(0, start+d).UTC()
		if e.Name, b, err = readString(b[k:]); err != nil {
			return err
		}
		if e.Attrs, b, err = decodeAttrs(b, nil); err != nil {
			return err
		}
		sp.Events = append(sp.Events, e)
	}
	if n, b, err = readCount(b); err != nil {
		return err
	}
	for range n {
		var l Link
		if len(b) < 24 {
			return errCorrupt
		}
		copy(l.TraceID[:], b)
		copy(l.SpanID[:], b[16:])
		if l.Attrs, b, err = decodeAttrs(b[24:], nil); err != nil {
			return err
		}
		sp.Links = append(sp.Links, l)
	}
	if len(b) != 0 {
		return errCorrupt
	}
	return nil
}

// readAttrs decodes attributes without column references: a resource's.
func readAttrs(b []byte) ([]Attr, []byte, error) {
	if len(b) == 0 {
		return nil, b, nil // a span without a resources row
	}
	return decodeAttrs(b, nil)
}

// decodeAttrs decodes appendAttrs; sp gives the columns values refer to.
func decodeAttrs(b []byte, sp *Span) ([]Attr, []byte, error) {
	n, b, err := readCount(b)
	if err != nil || n == 0 {
		return nil, b, err
	}
	as := make([]Attr, n)
	for i := range as {
		t, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, b, errCorrupt
		}
		if t&1 == 1 {
			if t>>1 >= uint64(len(attrKeys)) {
				return nil, b, errCorrupt
			}
			as[i].Key, b = attrKeys[t>>1], b[k:]
		} else if as[i].Key, b, err = readTagged(b); err != nil {
			return nil, b, err
		}
		if t, k = binary.Uvarint(b); k <= 0 {
			return nil, b, errCorrupt
		}
		if t&1 == 1 {
			if sp == nil || t>>1 >= uint64(len(valueColumns)) {
				return nil, b, errCorrupt
			}
			as[i].Value, b = valueColumns[t>>1](sp), b[k:]
		} else if as[i].Value, b, err = readTagged(b); err != nil {
			return nil, b, err
		}
	}
	return as, b, nil
}

func readTagged(b []byte) (string, []byte, error) {
	t, k := binary.Uvarint(b)
	if k <= 0 || t&1 == 1 || t>>1 > uint64(len(b)-k) {
		return "", b, errCorrupt
	}
	n := int(t >> 1)
	return string(b[k : k+n]), b[k+n:], nil
}

// readCount reads a count, refusing one larger than the bytes left could
// hold (each element takes at least one byte), so a corrupt blob cannot
// make a huge allocation.
func readCount(b []byte) (int, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return 0, b, errCorrupt
	}
	return int(n), b[k:], nil
}

func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", b, errCorrupt
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// randomID fills b with random bytes that are not all zero.
func randomID(b []byte) {
	for {
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
		for _, c := range b {
			if c != 0 {
				return
			}
		}
	}
}

// clampNano converts an OTLP uint64 time to int64 nanoseconds.
func clampNano(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}
