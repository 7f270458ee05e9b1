package dlqstore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// Options configures a Store; the zero value is usable.
type Options struct {
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()
	// MaxRedrives is loop protection: a dead letter whose message had
	// already been redriven this many times is stored quarantined, with the
	// reason, instead of dead (default delivery.DefaultMaxRedrives).
	MaxRedrives int
	// Tuning sets how searches and big job selections run; the zero value
	// is the measured defaults (DefaultTuning).
	Tuning Tuning
	// CacheKB is each pooled connection's page cache in KiB (tune says
	// why it is larger than SQLite's default); default 32768 (32 MiB). The
	// demo, whose platform is small, keeps it smaller to bound memory.
	CacheKB int

	// noTextIndexer keeps Open from starting the text indexer, so that a
	// test of this package can step it (textBatch) or stop between
	// capture and text.
	noTextIndexer bool
}

// Tuning are the thresholds of the search planner and of freezing a job's
// set. How a search with text runs depends on how many entries the text
// matches (counted up to FTSMemberMax, which costs a few milliseconds):
//   - up to FTSDriveMax: start from the full-text matches, look each entry
//     up and sort by time;
//   - more, with no filter or a broad one: walk the time-ordered filter
//     index in chunks and ask the full-text index which ids of each
//     chunk's id range match (chunkedPage);
//   - up to FTSMemberMax with a narrow filter: put the matches in a
//     temporary table of the connection once, then walk the filter index
//     and test each entry's id against it by key, for the page and for the
//     count;
//   - more with a narrow filter: walk the filter index and probe the
//     full-text index per entry.
//
// With a filter, the matches are counted by loading them into that
// temporary table, up to ExactSetMax (loadMatches), and every mode reads
// them from there when they are all loaded.
//
// The defaults were measured over 1,000,000 entries; a test sets small
// values to run every mode over a small index. A field left 0 takes its
// default.
type Tuning struct {
	FTSDriveMax  int
	FTSMemberMax int
	// ExactCountMax: a text search with a filter counts exactly when the
	// filter alone selects at most this many entries and every match of
	// the text with the filter tokens is loaded: at most ExactSetMax, or
	// the page loaded them all.
	ExactCountMax, ExactSetMax int
	// ChunkFirst is chunkedPage's first chunk (it doubles up to 8192), and
	// ChunkScanMax bounds the entries it walks before it falls back to the
	// match set.
	ChunkFirst, ChunkScanMax int
	// ChunkRangeMax is the most full-text rowids chunkedPage should expect
	// to read per chunk, and CountScanMax how many of the newest matches a
	// bounded count looks at: each is an entry looked up at random, about
	// 5 µs over 1,000,000 entries, so 2,500 keep a common word with a
	// tenant's scope (a lower bound: "2,230+") to ~12 ms of a search.
	ChunkRangeMax float64
	CountScanMax  int
	// FreezeOneTx is the largest selection frozen in one transaction, and
	// FreezeChunk how many entries each transaction of a bigger one takes,
	// so that the indexers never wait long on the write lock.
	FreezeOneTx, FreezeChunk int
	// TextWait bounds how long CreateJob waits for the full-text index to
	// hold every entry its selection's text could match (the text index
	// follows capture by seconds, and a job must not miss the newest).
	TextWait time.Duration
	// NoFilterTokens searches without the filter tokens of the full-text
	// index (withFilterTokens): the plan of a filter with text before
	// them, which a test compares every page with.
	NoFilterTokens bool
}

// DefaultTuning is the tuning of a zero Options.Tuning.
func DefaultTuning() Tuning {
	return Tuning{FTSDriveMax: 8000, FTSMemberMax: 300000, ExactCountMax: 10000, ExactSetMax: 20000, ChunkFirst: 512, ChunkScanMax: 50000,
		ChunkRangeMax: 3000, CountScanMax: 2500, FreezeOneTx: 20000, FreezeChunk: 10000, TextWait: 10 * time.Second}
}

// withDefaults fills the zero fields of t from DefaultTuning.
func (t Tuning) withDefaults() Tuning {
	d := DefaultTuning()
	or := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	or(&t.FTSDriveMax, d.FTSDriveMax)
	or(&t.FTSMemberMax, d.FTSMemberMax)
	or(&t.ExactCountMax, d.ExactCountMax)
	or(&t.ExactSetMax, d.ExactSetMax)
	or(&t.ChunkFirst, d.ChunkFirst)
	or(&t.ChunkScanMax, d.ChunkScanMax)
	or(&t.CountScanMax, d.CountScanMax)
	or(&t.FreezeOneTx, d.FreezeOneTx)
	or(&t.FreezeChunk, d.FreezeChunk)
	if t.TextWait <= 0 {
		t.TextWait = d.TextWait
	}
	if t.ChunkRangeMax <= 0 {
		t.ChunkRangeMax = d.ChunkRangeMax
	}
	return t
}

// Store is the SQLite implementation of the dead-letter store contract
// (Backend): its own file (dlq.db, WAL) so that indexing never contends
// with the console database. Its methods are safe for concurrent use;
// writes queue on SQLite's write lock (transactions start IMMEDIATE).
type Store struct {
	db          *sql.DB
	now         func() time.Time
	logger      *slog.Logger
	maxRedrives int
	tuning      Tuning
	cacheKB     int

	mu           sync.Mutex
	sinceAnalyze int // entries inserted since the last ANALYZE
	analyzedAt   int // entries at the last ANALYZE

	// textPending is set while entries stored before the full-text index
	// had its present columns are not in it yet (RebuildText).
	textPending atomic.Bool

	// The text indexer (rebuild.go): textPoke wakes it after a capture,
	// textMoved is closed (and replaced, under textMu) whenever its
	// progress moves, for WaitText; textStop and textWG stop it on Close.
	textPoke  chan struct{}
	textMu    sync.Mutex
	textMoved chan struct{}
	textStop  context.CancelFunc
	textWG    sync.WaitGroup

	// wmu makes this process's write transactions queue in Go, where the
	// next one starts the moment the last commits, rather than on SQLite's
	// busy handler, which retries only every few (up to 100) milliseconds;
	// writersWaiting counts the writes (capture, triage, jobs) waiting for
	// it, which the text indexer lets go first.
	wmu            sync.Mutex
	writersWaiting atomic.Int32
	// capturing counts the captures under way, from preparing their rows
	// to their commit: while one is, the text indexer waits unless its
	// text is falling textYieldMax behind (writeText).
	capturing atomic.Int32

	// textQueue holds what capture committed, for the text indexer to
	// index without reading and decoding it again (queueText).
	textQueue textQueue

	// dicts are the bodies' compression dictionaries (dict.go).
	dicts bodyDicts
}

// Open opens (creating and migrating) the dead-letter database at path.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	// 16 KB pages: a compressed body of a realistic dead letter takes a
	// fraction of one instead of most of a 4 KB page of its own. Only a
	// new file gets them (sqldb.Options.PageSize): an existing dlq.db
	// keeps the page size it was created with.
	db, err := sqldb.OpenWith(ctx, path, sqldb.Options{PageSize: 16384}, Schema())
	if err != nil {
		return nil, fmt.Errorf("dlqstore: %w", err)
	}
	if opts.MaxRedrives <= 0 {
		opts.MaxRedrives = delivery.DefaultMaxRedrives
	}
	if opts.CacheKB <= 0 {
		opts.CacheKB = 32768
	}
	s := &Store{db: db, now: opts.Now, logger: opts.Logger, maxRedrives: opts.MaxRedrives, tuning: opts.Tuning.withDefaults(), cacheKB: opts.CacheKB,
		textPoke: make(chan struct{}, 1), textMoved: make(chan struct{})}
	if err := s.tune(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("dlqstore: open %s: %w", path, err)
	}
	if err := s.analyze(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("dlqstore: open %s: %w", path, err)
	}
	if err := s.checkText(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("dlqstore: open %s: %w", path, err)
	}
	if err := s.loadDicts(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("dlqstore: open %s: %w", path, err)
	}
	if !opts.noTextIndexer {
		s.startText()
	}
	return s, nil
}

// poolSize is the number of connections: one writer at a time (writes
// queue on SQLite's lock), the text indexer's reads, and a few concurrent
// searches.
const poolSize = 5

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
		// With 16 KB pages the WAL grows to 160 MB before a checkpoint:
		// 2,500 pages (40 MB) measured more bytes written per entry and
		// fewer entries a second during a flood.
		if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA mmap_size = 2147418112; PRAGMA cache_size = -%d; PRAGMA wal_autocheckpoint = 10000; PRAGMA temp_store = MEMORY", s.cacheKB)); err != nil {
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
	// One transaction: were ANALYZE to commit alone (a flood's captures
	// holding the write lock past busy_timeout made the DELETE fail), the
	// full-text statistics would stay until the next refresh, and with
	// them the full scans the next comment describes.
	defer s.lockWrites()()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, "PRAGMA analysis_limit = 1000; ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	// No statistics for the full-text index's own tables: ANALYZE of a
	// young index records its data table as a few rows, after which FTS5's
	// internal range DELETE (every segment merge) plans a full scan of it,
	// and merges slow down as the index grows. Without a row SQLite assumes
	// a big table and uses the rowid range. ANALYZE sqlite_schema reloads
	// what is left.
	if _, err := tx.ExecContext(ctx, "DELETE FROM sqlite_stat1 WHERE tbl LIKE 'entries\\_fts\\_%' ESCAPE '\\'; ANALYZE sqlite_schema"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	s.mu.Lock()
	s.sinceAnalyze, s.analyzedAt = 0, n
	s.mu.Unlock()
	return nil
}

// inserted notes n new entries, re-analyzes when the table has grown by
// half (and at least 10,000 entries) since the last time, and trains body
// dictionaries when due (captured).
func (s *Store) inserted(ctx context.Context, n int) {
	s.captured(n)
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

// Close stops the text indexer (what it has not indexed yet, it indexes
// after the next Open) and a dictionary training under way, and closes the
// database.
func (s *Store) Close() error {
	s.stopDicts()
	if s.textStop != nil {
		s.textStop()
		s.textWG.Wait()
	}
	return s.db.Close()
}

// DB returns the underlying database, for readiness checks.
func (s *Store) DB() *sql.DB { return s.db }

// write runs fn in one write transaction.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx, now int64) error) error {
	return s.writeThen(ctx, fn, nil)
}

// writeThen is write, and runs then (when not nil) once the transaction
// has committed, before the next write of this process can start: what
// then does follows the order of the commits.
func (s *Store) writeThen(ctx context.Context, fn func(tx *sql.Tx, now int64) error, then func()) error {
	defer s.lockWrites()()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := fn(tx, unixNano(s.now())); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if then != nil {
		then()
	}
	return nil
}

// exec runs one write statement, queued like every write of this process
// (lockWrites).
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	defer s.lockWrites()()
	return s.db.ExecContext(ctx, q, args...)
}

// lockWrites queues for this process's turn to write (wmu) and returns
// the function that ends it. Every write of the store takes it: a write
// left to SQLite's busy handler alone, which retries only every few (up to
// 100) milliseconds, could wait out busy_timeout behind a flood's
// back-to-back captures and fail with "database is locked" — an
// operator's triage or cancel failing just when dead letters pour in, and
// the planner's statistics not refreshed after a capture had waited 5 s
// for them.
func (s *Store) lockWrites() (unlock func()) {
	s.writersWaiting.Add(1)
	s.wmu.Lock()
	s.writersWaiting.Add(-1)
	return s.wmu.Unlock
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

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// lit is a state as an SQL string literal, for the conditions that must
// name a partial index's value verbatim for SQLite to use the index (a
// bound parameter would not): the value still comes from its constant.
func lit[S ~string](s S) string { return "'" + strings.ReplaceAll(string(s), "'", "''") + "'" }
