// Package tsdb is Switchyard's embedded time-series store: the history
// behind every chart, kept in tsdb.db in the data directory. Store is the
// one type; Open it, Append one batch per collection cycle, Query it from
// any number of goroutines, and let Run enforce retention.
//
// What a query's results mean is computed here too, by pure functions over
// []Series that the pages, the alert evaluator and a history read from
// Prometheus share: Aggregate and Combine (sum, avg, min, max, count across
// series, by labels) in aggregate.go, Increase, IncreaseBy and Rate for
// counters in counter.go, and HistogramsBy and HistogramQuantile
// (Prometheus' histogram_quantile) in quantile.go. They know nothing of
// authorization: callers pass results already narrowed to what a principal
// may see (collector.SeriesScope builds that narrowing as Q.Or).
//
// # Design and its trade-offs
//
// Points are not stored one row each: at a 10 s interval, 10,000 series
// make 86 million points a day, and a (series, time, value) row costs SQLite
// 30-40 bytes, about 3 GB. Instead each series' points are cut into fixed
// windows (ChunkWindow, 1 h) and encoded as Gorilla chunks (delta-of-delta
// timestamps, XOR-compressed floats), typically 1-4 bytes per point. Only
// the open window of each series (its head) lives in memory; when a window
// closes the chunk is sealed into SQLite (raw_chunks) together with its
// rollup chunk (rollup_chunks: min, max, sum, count and last per
// RollupStep, stored column-wise so that a query decodes only the columns
// its aggregation needs). Memory is therefore bounded by MaxSeries times one
// window of points.
//
// Durability of the heads comes from a log inside the same database: each
// Append writes its whole batch as one blob row of head_log in one
// transaction (no per-sample fsync: WAL mode, synchronous=NORMAL), and Open
// replays the log rows that heads still need. Log rows are deleted once
// every head that needs them is sealed. A process kill loses nothing that
// Append returned for; a power cut may lose the last transactions, which
// SQLite rolls back cleanly. The price is that each point is written twice
// (log, then chunk) and that reading a window still open costs a copy of its
// head; the log holds at most one window of batches (about 40 MB for
// 10,000 series at 10 s).
//
// Rollups are computed inline, when Append (or Maintain) seals a window;
// queries compute the rollups of the open window from its head on the fly.
// Retention is enforced by Maintain, which Run calls every MaintainEvery:
// it deletes raw chunks older than RawRetention, rollup chunks older than
// RollupRetention and series with no data left, and returns free pages to
// the file system (auto_vacuum=incremental).
//
// Per series, samples must arrive in time order: a sample not newer than
// the series' last one, or in a window already sealed, or further in the
// future than MaxFuture, is refused and counted (Stats.Rejected). New series
// beyond MaxSeries are refused and counted (Dropped).
package tsdb

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// FileName is the store's file in the data directory.
const FileName = "tsdb.db"

// coarseWindows is how many chunk windows one coarse chunk spans: 6 h of
// 5-minute buckets, 72, make a row large enough that SQLite's per-row
// cost is small beside it.
const coarseWindows = 6

// Defaults of Options that the console's configuration shares
// (history.raw_retention, history.rollup_retention, history.max_series).
const (
	DefaultRawRetention    = 24 * time.Hour
	DefaultRollupRetention = 14 * 24 * time.Hour
	DefaultMaxSeries       = 100_000
	DefaultCoarseAfter     = 48 * time.Hour
	DefaultCoarseStep      = 5 * time.Minute
)

// Options configures a Store. The zero value, with Dir set, is the default.
type Options struct {
	// Dir is the data directory; the store lives in Dir/tsdb.db. Required.
	Dir string
	// RawRetention is how long raw points are kept; default 24h.
	RawRetention time.Duration
	// RollupRetention is how long rollups are kept; default 14 days. It
	// must not be shorter than RawRetention.
	RollupRetention time.Duration
	// RollupStep is the rollup resolution; default 1 minute. It must divide
	// ChunkWindow.
	RollupStep time.Duration
	// ChunkWindow is the time span of one chunk; default 1 hour. Longer
	// windows compress slightly better but hold more in memory and in the
	// head log. Keep it fixed for a store: after a change, queries may miss
	// the older chunks that straddle a range's start.
	ChunkWindow time.Duration
	// CoarseAfter is the age beyond which rollups are compacted to
	// CoarseStep (coarse.go); default 48 hours, or RawRetention when that
	// is longer. It must not be shorter than RawRetention.
	CoarseAfter time.Duration
	// CoarseStep is the resolution of rollups older than CoarseAfter;
	// default 5 minutes. It must be a multiple of RollupStep and divide
	// ChunkWindow.
	CoarseStep time.Duration
	// MaxSeries caps the number of distinct series; default 100,000.
	// Samples of new series beyond it are refused and counted by Dropped.
	MaxSeries int
	// MaxPoints caps the points one query returns per series; default
	// 11,000, as Prometheus does.
	MaxPoints int
	// MaxFuture is how far ahead of Now a sample may be; default 10 minutes.
	MaxFuture time.Duration
	// MaintainEvery is how often Run calls Maintain; default 1 minute.
	MaintainEvery time.Duration
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// Logger receives warnings about refused samples and maintenance
	// failures; default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Dir == "" {
		return errors.New("tsdb: Options.Dir is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.RawRetention, DefaultRawRetention)
	def(&o.RollupRetention, DefaultRollupRetention)
	def(&o.RollupStep, time.Minute)
	def(&o.ChunkWindow, time.Hour)
	def(&o.CoarseAfter, max(DefaultCoarseAfter, o.RawRetention))
	def(&o.CoarseStep, max(DefaultCoarseStep, o.RollupStep))
	def(&o.MaxFuture, 10*time.Minute)
	def(&o.MaintainEvery, time.Minute)
	if o.MaxSeries == 0 {
		o.MaxSeries = DefaultMaxSeries
	}
	if o.MaxPoints == 0 {
		o.MaxPoints = 11_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.RawRetention < 0 || o.RollupRetention < 0 || o.MaxFuture < 0 || o.MaintainEvery < 0 || o.MaxSeries < 0 || o.MaxPoints < 0:
		return errors.New("tsdb: options must not be negative")
	case o.RollupRetention < o.RawRetention:
		return fmt.Errorf("tsdb: RollupRetention %s is shorter than RawRetention %s", o.RollupRetention, o.RawRetention)
	case o.RollupStep < time.Millisecond || o.ChunkWindow < o.RollupStep || o.ChunkWindow%o.RollupStep != 0:
		return fmt.Errorf("tsdb: RollupStep %s must be at least 1ms and divide ChunkWindow %s", o.RollupStep, o.ChunkWindow)
	case o.CoarseAfter < o.RawRetention:
		return fmt.Errorf("tsdb: CoarseAfter %s is shorter than RawRetention %s", o.CoarseAfter, o.RawRetention)
	case o.CoarseStep%o.RollupStep != 0 || o.ChunkWindow%o.CoarseStep != 0:
		return fmt.Errorf("tsdb: CoarseStep %s must be a multiple of RollupStep %s and divide ChunkWindow %s", o.CoarseStep, o.RollupStep, o.ChunkWindow)
	}
	return nil
}

// Sample is one value of one series at one time.
type Sample struct {
	Series Labels
	T      time.Time
	V      float64
}

// Stats are the store's counters, for /metrics.
type Stats struct {
	Series     int    // distinct series held
	HeadBytes  int    // memory held by open chunks
	Dropped    uint64 // samples refused because MaxSeries was reached
	Rejected   uint64 // samples refused as out of order, too old, too far in the future or badly labelled
	LogRows    int64  // batches kept in the head log for the open heads
	Sealed     uint64 // chunks sealed since Open
	Maintained time.Time
}

// Store is an open time-series store. Its methods are safe for concurrent
// use; Append is meant to be called by one collector at a time.
type Store struct {
	opts Options
	db   *sql.DB
	log  *slog.Logger

	// window, step and retention in milliseconds.
	window, step int64
	// coarseStep, coarseAfter and coarseWindow (the span of one coarse
	// chunk) in milliseconds.
	coarseStep, coarseAfter, coarseWindow int64

	// compactMu makes compactions take turns; compactBatch (series per
	// transaction, 0 for the default) and compacted (called after each
	// committed batch) are for tests.
	compactMu    sync.Mutex
	compactBatch int
	compacted    func(series int)

	mu         sync.RWMutex
	closed     bool
	byKey      map[string]*memSeries
	byHash     map[uint64][]*memSeries // by hashLabels, to find a series without building its key
	byName     map[string]map[uint64]*memSeries
	byID       map[uint64]*memSeries
	nextID     uint64
	nextSeq    int64
	minLogSeq  int64 // lowest head_log seq still stored
	idleCheck  int64 // ms; when idle heads were last sealed
	dropped    uint64
	rejected   uint64
	sealed     uint64
	maintained time.Time
}

type memSeries struct {
	id     uint64
	labels Labels
	key    string
	// sealedThrough is the end (ms) of the last sealed window: samples
	// before it can no longer be stored.
	sealedThrough int64
	head          *head
}

type head struct {
	start    int64 // window start, ms
	firstSeq int64 // head_log row of its first sample
	c        rawChunk
}

type sealedChunk struct {
	series *memSeries
	head   *head
}

// Open opens or creates the store in opts.Dir — through sqldb, with the
// schema of schema.go — and replays the head log, so that points appended
// before a crash are back. Errors name the file and say what is wrong with
// it (not a database, corrupt, written by a newer release).
func Open(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	path := filepath.Join(opts.Dir, FileName)
	// auto_vacuum must be chosen before the first table exists; it lets
	// Maintain give deleted chunks' pages back to the file system.
	db, err := sqldb.OpenWith(ctx, path, sqldb.Options{IncrementalVacuum: true}, schema())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	s := &Store{
		opts:   opts,
		db:     db,
		log:    opts.Logger.With("component", "tsdb"),
		window: opts.ChunkWindow.Milliseconds(),
		step:   opts.RollupStep.Milliseconds(),

		coarseStep:   opts.CoarseStep.Milliseconds(),
		coarseAfter:  opts.CoarseAfter.Milliseconds(),
		coarseWindow: coarseWindows * opts.ChunkWindow.Milliseconds(),
	}
	if err := s.load(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// load rebuilds the in-memory state from the database: the series, then
// the heads from head_log. Windows that closed while the store was down
// are sealed at once.
func (s *Store) load(ctx context.Context) error {
	s.byKey = map[string]*memSeries{}
	s.byHash = map[uint64][]*memSeries{}
	s.byName = map[string]map[uint64]*memSeries{}
	s.byID = map[uint64]*memSeries{}
	s.nextID, s.nextSeq, s.minLogSeq = 1, 1, 0

	rows, err := s.db.QueryContext(ctx, `SELECT id, labels, sealed_through FROM series`)
	if err != nil {
		return fmt.Errorf("load series: %w", err)
	}
	for rows.Next() {
		var ms memSeries
		if err := rows.Scan(&ms.id, &ms.key, &ms.sealedThrough); err != nil {
			rows.Close()
			return fmt.Errorf("load series: %w", err)
		}
		if ms.labels, err = parseLabels(ms.key); err != nil {
			rows.Close()
			return fmt.Errorf("load series %d: %w", ms.id, err)
		}
		s.register(&ms)
		s.nextID = max(s.nextID, ms.id+1)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load series: %w", err)
	}

	rows, err = s.db.QueryContext(ctx, `SELECT seq, data FROM head_log ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("replay head log: %w", err)
	}
	defer rows.Close()
	var sealed []sealedChunk
	first := true
	for rows.Next() {
		var seq int64
		var data []byte
		if err := rows.Scan(&seq, &data); err != nil {
			return fmt.Errorf("replay head log: %w", err)
		}
		if first {
			s.minLogSeq, first = seq, false
		}
		s.nextSeq = seq + 1
		if err := decodeBatch(data, func(id uint64, t int64, v float64) {
			if ms := s.byID[id]; ms != nil {
				s.ingest(ms, t, v, seq, &sealed)
			}
		}); err != nil {
			// A row is written in one transaction, so a bad one is a
			// bug, not a torn write; skip it rather than refuse to start.
			s.log.Warn("tsdb: skipping unreadable head log row", "seq", seq, "err", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("replay head log: %w", err)
	}
	rows.Close()
	sealed = append(sealed, s.sealIdle(s.opts.Now().UnixMilli(), true)...)
	if len(sealed) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := s.writeSealed(ctx, tx, sealed); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) register(ms *memSeries) {
	s.byKey[ms.key] = ms
	h := hashLabels(ms.labels)
	s.byHash[h] = append(s.byHash[h], ms)
	s.byID[ms.id] = ms
	name := ms.labels.Name()
	if s.byName[name] == nil {
		s.byName[name] = map[uint64]*memSeries{}
	}
	s.byName[name][ms.id] = ms
}

func (s *Store) unregister(ms *memSeries) {
	delete(s.byKey, ms.key)
	h := hashLabels(ms.labels)
	s.byHash[h] = slices.DeleteFunc(s.byHash[h], func(o *memSeries) bool { return o == ms })
	if len(s.byHash[h]) == 0 {
		delete(s.byHash, h)
	}
	delete(s.byID, ms.id)
	name := ms.labels.Name()
	delete(s.byName[name], ms.id)
	if len(s.byName[name]) == 0 {
		delete(s.byName, name)
	}
}

// ingest adds one point to a series' head, sealing the head first when the
// point opens a later window. It reports false for a point that cannot be
// stored (not newer than the last one, or in a sealed window).
func (s *Store) ingest(ms *memSeries, t int64, v float64, seq int64, sealed *[]sealedChunk) bool {
	if t < ms.sealedThrough || (ms.head != nil && t <= ms.head.c.t) {
		return false
	}
	w := floorDiv(t, s.window) * s.window
	if ms.head != nil && w != ms.head.start {
		*sealed = append(*sealed, s.seal(ms))
	}
	if ms.head == nil {
		ms.head = &head{start: w, firstSeq: seq}
	}
	ms.head.c.append(t, v)
	return true
}

func (s *Store) seal(ms *memSeries) sealedChunk {
	sc := sealedChunk{series: ms, head: ms.head}
	ms.sealedThrough = ms.head.start + s.window
	ms.head = nil
	return sc
}

// sealGrace is how long after its end a window of a series that stopped
// reporting is kept open for late points.
const sealGrace = 5 * time.Minute

// sealIdle seals the heads of windows that ended more than sealGrace
// before now. It scans all series at most once per RollupStep.
func (s *Store) sealIdle(now int64, force bool) []sealedChunk {
	if !force && now-s.idleCheck < s.step {
		return nil
	}
	s.idleCheck = now
	var out []sealedChunk
	for _, ms := range s.byID {
		if ms.head != nil && ms.head.start+s.window+sealGrace.Milliseconds() <= now {
			out = append(out, s.seal(ms))
		}
	}
	return out
}

// writeSealed stores sealed chunks with their rollups, records how far each
// series is sealed and drops the head log rows no head needs any more.
func (s *Store) writeSealed(ctx context.Context, tx *sql.Tx, sealed []sealedChunk) error {
	if len(sealed) == 0 {
		return nil
	}
	raw, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO raw_chunks (series_id, start, data) VALUES (?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("seal chunks: %w", err)
	}
	defer raw.Close()
	roll, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO rollup_chunks (series_id, start, data) VALUES (?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("seal chunks: %w", err)
	}
	defer roll.Close()
	upd, err := tx.PrepareContext(ctx, `UPDATE series SET sealed_through = ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("seal chunks: %w", err)
	}
	defer upd.Close()
	for _, sc := range sealed {
		data := sc.head.c.bytes()
		rollup, err := encodeRollup(data, sc.head.start, s.step)
		if err != nil {
			return fmt.Errorf("seal chunk of %s: %w", sc.series.key, err)
		}
		if _, err := raw.ExecContext(ctx, sc.series.id, sc.head.start, data); err != nil {
			return fmt.Errorf("seal chunk of %s: %w", sc.series.key, err)
		}
		if _, err := roll.ExecContext(ctx, sc.series.id, sc.head.start, rollup); err != nil {
			return fmt.Errorf("seal rollup of %s: %w", sc.series.key, err)
		}
		if _, err := upd.ExecContext(ctx, sc.head.start+s.window, sc.series.id); err != nil {
			return fmt.Errorf("seal chunk of %s: %w", sc.series.key, err)
		}
	}
	keep := s.nextSeq
	for _, ms := range s.byID {
		if ms.head != nil {
			keep = min(keep, ms.head.firstSeq)
		}
	}
	if keep > s.minLogSeq {
		if _, err := tx.ExecContext(ctx, `DELETE FROM head_log WHERE seq < ?`, keep); err != nil {
			return fmt.Errorf("trim head log: %w", err)
		}
		s.minLogSeq = keep // a failed commit reloads it
	}
	return nil
}

// Append stores a batch of samples in one transaction. Samples that cannot
// be stored (see the package comment) are skipped and counted; the error
// is for a failure of the database, in which case none of the batch is
// stored.
func (s *Store) Append(ctx context.Context, samples []Sample) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("tsdb: append to a closed store")
	}
	now := s.opts.Now().UnixMilli()
	oldest := now - s.opts.RawRetention.Milliseconds()
	newest := now + s.opts.MaxFuture.Milliseconds()
	seq := s.nextSeq
	var (
		batch     batchEncoder
		sealed    []sealedChunk
		created   []*memSeries
		rejected  int
		dropped   int
		firstWhy  string
		prevLabel Labels
		prevMS    *memSeries
	)
	for _, smp := range samples {
		ms := prevMS
		// Batches often carry runs of the same series; skip the lookup.
		if ms == nil || !slices.Equal(prevLabel, smp.Series) {
			ms = s.lookup(smp.Series)
		}
		if ms == nil {
			ls, err := normalize(smp.Series)
			if err != nil {
				rejected++
				if firstWhy == "" {
					firstWhy = err.Error()
				}
				continue
			}
			key := ls.String()
			ms = s.byKey[key]
			if ms == nil {
				if len(s.byID) >= s.opts.MaxSeries {
					dropped++
					continue
				}
				ms = &memSeries{id: s.nextID, labels: ls, key: key}
				s.nextID++
				s.register(ms)
				created = append(created, ms)
			}
		}
		prevLabel, prevMS = smp.Series, ms
		t := smp.T.UnixMilli()
		if t < oldest || t > newest || !s.ingest(ms, t, smp.V, seq, &sealed) {
			rejected++
			if firstWhy == "" {
				firstWhy = fmt.Sprintf("sample of %s at %s is out of order, too old or in the future", ms.key, smp.T.UTC().Format(time.RFC3339Nano))
			}
			continue
		}
		batch.add(ms.id, t, smp.V)
	}
	sealed = append(sealed, s.sealIdle(now, false)...)
	s.rejected += uint64(rejected)
	s.dropped += uint64(dropped)
	if rejected > 0 {
		s.log.Warn("tsdb: samples refused", "count", rejected, "first", firstWhy)
	}
	if batch.n == 0 && len(sealed) == 0 && len(created) == 0 {
		return nil
	}
	if err := s.commit(ctx, seq, batch.bytes(), created, sealed); err != nil {
		// Memory already holds the batch; rebuild it from what the
		// database has, so that memory never runs ahead of disk.
		if lerr := s.load(context.WithoutCancel(ctx)); lerr != nil {
			s.log.Error("tsdb: reload after failed append", "err", lerr)
		}
		return fmt.Errorf("tsdb append: %w", err)
	}
	if batch.n > 0 {
		s.nextSeq++
	}
	s.sealed += uint64(len(sealed))
	return nil
}

// lookup finds the series of ls without allocating when ls is already in
// normal form, which is the common case of a collector reusing its labels.
func (s *Store) lookup(ls Labels) *memSeries {
	for i, l := range ls {
		if l.Value == "" || (i > 0 && ls[i-1].Name >= l.Name) {
			return nil // not normal: the slow path normalizes it
		}
	}
	for _, ms := range s.byHash[hashLabels(ls)] {
		if slices.Equal(ms.labels, ls) {
			return ms
		}
	}
	return nil
}

// hashLabels is FNV-1a over the names and values, each followed by a 0xff
// byte, which no UTF-8 string contains.
func hashLabels(ls Labels) uint64 {
	h := uint64(14695981039346656037)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * 1099511628211
		}
		h = (h ^ 0xff) * 1099511628211
	}
	for _, l := range ls {
		add(l.Name)
		add(l.Value)
	}
	return h
}

func (s *Store) commit(ctx context.Context, seq int64, batch []byte, created []*memSeries, sealed []sealedChunk) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if len(created) > 0 {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO series (id, labels, sealed_through) VALUES (?, ?, 0)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, ms := range created {
			if _, err := ins.ExecContext(ctx, ms.id, ms.key); err != nil {
				return fmt.Errorf("add series %s: %w", ms.key, err)
			}
		}
	}
	if batch != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO head_log (seq, data) VALUES (?, ?)`, seq, batch); err != nil {
			return fmt.Errorf("write head log: %w", err)
		}
	}
	if err := s.writeSealed(ctx, tx, sealed); err != nil {
		return err
	}
	return tx.Commit()
}

// batchEncoder writes a head_log row: per sample the uvarint series id,
// the varint time delta (ms) from the previous sample and the value's 8
// bytes.
type batchEncoder struct {
	b     []byte
	n     int
	prevT int64
}

func (e *batchEncoder) add(id uint64, t int64, v float64) {
	e.b = binary.AppendUvarint(e.b, id)
	e.b = binary.AppendVarint(e.b, t-e.prevT)
	e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v))
	e.prevT = t
	e.n++
}

func (e *batchEncoder) bytes() []byte {
	if e.n == 0 {
		return nil
	}
	return e.b
}

func decodeBatch(b []byte, f func(id uint64, t int64, v float64)) error {
	var t int64
	for len(b) > 0 {
		id, k := binary.Uvarint(b)
		if k <= 0 {
			return errShortChunk
		}
		b = b[k:]
		d, k := binary.Varint(b)
		if k <= 0 || len(b) < k+8 {
			return errShortChunk
		}
		t += d
		v := math.Float64frombits(binary.LittleEndian.Uint64(b[k:]))
		b = b[k+8:]
		f(id, t, v)
	}
	return nil
}

// Maintain seals the windows of series that stopped reporting, deletes raw
// chunks older than RawRetention, rollups older than RollupRetention and
// series with nothing left, compacts rollups older than CoarseAfter to
// CoarseStep (coarse.go) and returns free pages to the file system.
func (s *Store) Maintain(ctx context.Context) error {
	now, err := s.retain(ctx)
	if err != nil {
		return err
	}
	if err := s.compact(ctx, now); err != nil {
		return fmt.Errorf("tsdb maintain: %w", err)
	}
	return s.vacuum(ctx)
}

// retain is the part of Maintain that needs s.mu: sealing and retention.
// It returns the time (ms) it ran at.
func (s *Store) retain(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errors.New("tsdb: maintain a closed store")
	}
	nowT := s.opts.Now()
	now := nowT.UnixMilli()
	sealed := s.sealIdle(now, true)
	rawCut := now - s.opts.RawRetention.Milliseconds() - s.window
	rollCut := now - s.opts.RollupRetention.Milliseconds() - s.window
	coarseCut := now - s.opts.RollupRetention.Milliseconds() - s.coarseWindow
	var gone []*memSeries
	for _, ms := range s.byID {
		if ms.head == nil && ms.sealedThrough <= rollCut+s.window {
			gone = append(gone, ms)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("tsdb maintain: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := s.writeSealed(ctx, tx, sealed); err != nil {
		s.restoreAfterFailure(ctx)
		return 0, fmt.Errorf("tsdb maintain: %w", err)
	}
	// A chunk starting at or before cut ends at or before the retention
	// boundary, so none of its points is still wanted.
	for _, q := range []struct {
		sql string
		cut int64
	}{
		{`DELETE FROM raw_chunks WHERE start <= ?`, rawCut},
		{`DELETE FROM rollup_chunks WHERE start <= ?`, rollCut},
		{`DELETE FROM coarse_chunks WHERE start <= ?`, coarseCut},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.cut); err != nil {
			s.restoreAfterFailure(ctx)
			return 0, fmt.Errorf("tsdb retention: %w", err)
		}
	}
	for _, ms := range gone {
		// A coarse chunk may outlive its series' last sealed window by up
		// to a coarse window: it goes with the series, so that a later
		// series given the same id never inherits it.
		for _, q := range []string{`DELETE FROM coarse_chunks WHERE series_id = ?`, `DELETE FROM series WHERE id = ?`} {
			if _, err := tx.ExecContext(ctx, q, ms.id); err != nil {
				s.restoreAfterFailure(ctx)
				return 0, fmt.Errorf("tsdb retention: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		s.restoreAfterFailure(ctx)
		return 0, fmt.Errorf("tsdb maintain: %w", err)
	}
	for _, ms := range gone {
		s.unregister(ms)
	}
	s.sealed += uint64(len(sealed))
	s.maintained = nowT
	return now, nil
}

// vacuum returns a large surplus of free pages to the file system.
func (s *Store) vacuum(ctx context.Context) error {
	// Freed pages are reused by new chunks; give back only a large surplus,
	// so that a steady store does not shrink and regrow every run.
	var free, pages int64
	if err := s.db.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
		return fmt.Errorf("tsdb vacuum: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		return fmt.Errorf("tsdb vacuum: %w", err)
	}
	if surplus := free - pages/10; surplus > 0 {
		// incremental_vacuum frees one page per step of the statement:
		// Exec steps it once, so its rows are read to the end.
		rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, surplus))
		if err != nil {
			return fmt.Errorf("tsdb vacuum: %w", err)
		}
		for rows.Next() {
		}
		err = rows.Err()
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("tsdb vacuum: %w", err)
		}
	}
	return nil
}

func (s *Store) restoreAfterFailure(ctx context.Context) {
	if err := s.load(context.WithoutCancel(ctx)); err != nil {
		s.log.Error("tsdb: reload after failed maintenance", "err", err)
	}
}

// Run calls Maintain every MaintainEvery until ctx is done, logging
// failures, and returns nil then.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.MaintainEvery)
	defer t.Stop()
	for {
		if err := s.Maintain(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("tsdb maintenance failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Close closes the database. The open heads need no flush: their points
// are in the head log and come back on the next Open.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

// Dropped returns how many samples were refused because MaxSeries series
// already existed.
func (s *Store) Dropped() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dropped
}

// SeriesCount returns the number of distinct series held.
func (s *Store) SeriesCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{
		Series:     len(s.byID),
		Dropped:    s.dropped,
		Rejected:   s.rejected,
		Sealed:     s.sealed,
		Maintained: s.maintained,
	}
	for _, ms := range s.byID {
		if ms.head != nil {
			st.HeadBytes += ms.head.c.size()
		}
	}
	st.LogRows = s.nextSeq - max(s.minLogSeq, 1)
	return st
}

func invalidf(format string, args ...any) error {
	return delivery.Errorf(delivery.EINVALID, format, args...)
}
