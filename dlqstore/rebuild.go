package dlqstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"switchyard/delivery"
)

// Capture first, text second: IndexKafka and IndexRabbit commit entries,
// bodies, offsets, groups and counts only, and the Store's text indexer
// (runText, started by Open) puts the new entries into the full-text index
// afterwards, on its own connection and in its own transactions, so that
// the full-text index's inserts, flushes and merges never hold up capture.
//
// Its progress is text_progress (migration 9), two ids kept in the same
// transaction as the text they account for, so a crash loses nothing that
// cannot be redone and never indexes an entry twice:
//   - above: every entry with a greater id lacks its text (new entries,
//     indexed in ascending id order);
//   - below: every entry with this id or less lacks its text (entries
//     stored before the index had its present columns: migration 9 created
//     it anew, empty, and set both to the highest id; they are indexed
//     newest first, so that a freshly upgraded console finds recent
//     entries within seconds).
//
// Entries in (below, above] have their text. New entries come first; the
// older ones are indexed whenever nothing new waits. Entry ids are rowids
// without AUTOINCREMENT, so purging the highest ids lets new entries reuse
// them: Purge lowers both to the highest id left, in its transaction.

// Text batches: a transaction starts at textBatchMin entries and doubles,
// up to textBatchMax, while the backlog is bigger and a transaction stays
// under textTxTarget; over it, the batch halves. Every write of this
// process waits for at most one text transaction.
const (
	textBatchMin = 500
	textBatchMax = 20000
	textTxTarget = 150 * time.Millisecond
)

// textYieldMax is how far behind capture the text index may fall while
// captures keep coming before the text indexer stops letting them go
// first: a flood is captured at full speed, and its text follows within
// seconds rather than after it.
const textYieldMax = 2 * time.Second

// textIdle is how often an idle text indexer looks for entries it was not
// told about (another process writing the file, a missed poke).
const textIdle = 2 * time.Second

// textProgress is the row of text_progress.
type textProgress struct{ above, below, purges int64 }

func readProgress(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
},
) (textProgress, error) {
	var p textProgress
	err := q.QueryRowContext(ctx, "SELECT above, below, purges FROM text_progress WHERE id = 1").Scan(&p.above, &p.below, &p.purges)
	if err != nil {
		return p, fmt.Errorf("text progress: %w", err)
	}
	return p, nil
}

// startText starts the text indexer; Close stops it.
func (s *Store) startText() {
	ctx, cancel := context.WithCancel(context.Background())
	s.textStop = cancel
	s.textWG.Add(1)
	go func() {
		defer s.textWG.Done()
		s.runText(ctx)
	}()
}

// pokeText wakes the text indexer (after a capture commit).
func (s *Store) pokeText() {
	select {
	case s.textPoke <- struct{}{}:
	default:
	}
}

// runText indexes text until ctx ends: a batch whenever entries lack their
// text, the batch growing with the backlog, and otherwise waits for a poke.
func (s *Store) runText(ctx context.Context) {
	size, logged, done := textBatchMin, time.Now(), 0
	for {
		// held is how long the batch held the write lock: its read and
		// its waits for captures are not the transaction's size.
		n, held, err := s.textBatch(ctx, size)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.logger.Warn("dlqstore: full-text indexing failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		case n < 0: // the batch met a purge: read it again
			continue
		case n == 0:
			select {
			case <-ctx.Done():
				return
			case <-s.textPoke:
			case <-time.After(textIdle):
			}
			continue
		}
		done += n
		if held < textTxTarget/2 && n == size {
			size = min(size*2, textBatchMax)
		} else if held > 2*textTxTarget {
			size = max(size/2, textBatchMin)
		}
		if time.Since(logged) >= 10*time.Second && s.textPending.Load() {
			s.logger.Info("dlqstore: indexing older entries for search; until it is done a search may miss them", "done", done)
			logged = time.Now()
		}
	}
}

// textBatch indexes up to limit entries that lack their text — the oldest
// new ones, else the newest older ones — and returns how many, 0 when none
// lacks it, or -1 when the batch must be read again (a purge deleted some
// of it meanwhile), and how long it held the write lock. The entries are
// read and their text computed before the write transaction (textRead),
// which then only checks that nothing moved and inserts (textCommit): the
// write lock is held for the full-text inserts alone.
func (s *Store) textBatch(ctx context.Context, limit int) (int, time.Duration, error) {
	w, err := s.textRead(ctx, limit)
	if err != nil || w == nil {
		return 0, 0, err
	}
	return s.textCommit(ctx, w)
}

// textWork is a batch read by textRead: the progress it was read at,
// whether it is of the older entries, and their texts.
type textWork struct {
	p     textProgress
	older bool
	texts []storedText
	// queued is when the first of texts was queued, zero when they were
	// read from the database (the index is far behind, or catching up
	// after a restart): the text indexer then lets only waiting writes go
	// first, not captures under way.
	queued time.Time
}

// textRead reads the next batch, or nil when every entry has its text.
func (s *Store) textRead(ctx context.Context, limit int) (*textWork, error) {
	p, err := readProgress(ctx, s.db)
	if err != nil {
		return nil, err
	}
	if texts, queued := s.dequeueText(p.above, limit); len(texts) > 0 {
		return &textWork{p: p, texts: texts, queued: queued}, nil
	}
	// An entry whose record cannot be read still gets its ids and DLQ,
	// so that the walk always moves on.
	texts, err := s.readTexts(ctx, "e.id > ? ORDER BY e.id", p.above, limit)
	if err != nil {
		return nil, err
	}
	older := len(texts) == 0
	if older {
		if p.below == 0 {
			s.textPending.Store(false)
			return nil, nil
		}
		if texts, err = s.readTexts(ctx, "e.id <= ? ORDER BY e.id DESC", p.below, limit); err != nil {
			return nil, err
		}
	}
	return &textWork{p: p, older: older, texts: texts}, nil
}

// textCommit stores w's texts and progress in one transaction, unless a
// purge changed what w read (-1), and returns how long it held the write
// lock.
func (s *Store) textCommit(ctx context.Context, w *textWork) (int, time.Duration, error) {
	p, older, texts := w.p, w.older, w.texts
	n := len(texts)
	held, err := s.writeText(ctx, w.queued, func(tx *sql.Tx) error {
		now, err := readProgress(ctx, tx)
		if err != nil {
			return err
		}
		// What was read must still be there as it was: only Purge
		// deletes entries, and new ones get ids above every id read
		// unless a purge of the highest ids let them reuse some — hence
		// the purge count, and the count of the range as the cheap check.
		lo, hi, next := p.above+1, int64(0), now
		if older {
			lo, hi = 0, p.below
			if n > 0 {
				lo = texts[n-1].id
			}
			next.below = lo - 1
			if n == 0 {
				next.below = 0
			}
		} else {
			hi = texts[n-1].id
			next.above = hi
		}
		var have int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM entries WHERE id BETWEEN ? AND ?", lo, hi).Scan(&have); err != nil {
			return err
		}
		if now != p || have != n {
			n = -1
			return nil
		}
		ins, err := tx.PrepareContext(ctx, insertTextSQL)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, t := range texts {
			if _, err := ins.ExecContext(ctx, t.text.args(t.id)...); err != nil {
				return fmt.Errorf("entry %d: %w", t.id, err)
			}
		}
		_, err = tx.ExecContext(ctx, "UPDATE text_progress SET above = ?, below = ? WHERE id = 1", next.above, next.below)
		return err
	})
	if err != nil {
		return 0, held, fmt.Errorf("index text: %w", err)
	}
	if older && n == 0 {
		s.textPending.Store(false)
	}
	if n != -1 {
		s.textAdvanced()
	}
	return n, held, nil
}

// textQueueMax bounds the bytes of text queued for the text indexer (some
// 60,000 realistic dead letters, whose text is mostly their payload): past
// it the indexer is far behind, the queue takes nothing more, and the
// indexer reads what it lacks back from the database once it has taken the
// queue's head.
const textQueueMax = 128 << 20

// queuedSize is what a queued entry counts against textQueueMax.
func queuedSize(q *queuedText) int { return q.text.size() + 32 }

// queuedText is the text of a new entry as capture computed it (textFor),
// for the text indexer.
type queuedText struct {
	id     int64
	text   entryText
	queued time.Time
}

// textQueue is what capture committed and the text indexer has not taken
// yet, in commit order: ascending ids. It spares the indexer reading and
// decoding the entries it indexes, which cost more than indexing them, and
// holds their text, not the dead letters, so that it holds more of them;
// it is only a shortcut — whatever it lacks (a restart, an overflow, a
// purge) the indexer reads from the database, and textCommit checks
// either way that the batch is exactly the entries of its id range.
type textQueue struct {
	mu    sync.Mutex
	items []queuedText
	bytes int
}

// queueText queues the new entries of a committed capture and wakes the
// text indexer. It runs under the write lock (writeThen), in commit order.
func (s *Store) queueText(fresh []queuedText) {
	if len(fresh) == 0 {
		return
	}
	q := &s.textQueue
	n, now := 0, time.Now()
	for i := range fresh {
		n += queuedSize(&fresh[i])
		fresh[i].queued = now
	}
	q.mu.Lock()
	// Full: keep the head, which the indexer takes next; what is not
	// queued it reads from the database.
	if q.bytes+n <= textQueueMax {
		q.items = append(q.items, fresh...)
		q.bytes += n
	}
	q.mu.Unlock()
	s.pokeText()
}

// clearTextQueue drops the queue: a purge may have freed ids that new
// entries then reuse, so the queue's ids need not ascend any more.
func (s *Store) clearTextQueue() {
	q := &s.textQueue
	q.mu.Lock()
	q.items, q.bytes = nil, 0
	q.mu.Unlock()
}

// dequeueText takes up to limit queued entries that follow above without
// a gap and returns their texts and when the first was queued, or nothing
// when the queue does not start right after above.
func (s *Store) dequeueText(above int64, limit int) ([]storedText, time.Time) {
	q := &s.textQueue
	q.mu.Lock()
	drop := 0
	for drop < len(q.items) && q.items[drop].id <= above {
		drop++
	}
	n := 0
	for n < limit && drop+n < len(q.items) && q.items[drop+n].id == above+1+int64(n) {
		n++
	}
	taken := q.items[drop : drop+n]
	for i := range q.items[:drop+n] {
		q.bytes -= queuedSize(&q.items[i])
	}
	q.items = q.items[drop+n:]
	if len(q.items) == 0 {
		q.items = nil // let the array go
	}
	q.mu.Unlock()
	if len(taken) == 0 {
		return nil, time.Time{}
	}
	out := make([]storedText, len(taken))
	for i := range taken {
		out[i] = storedText{taken[i].id, taken[i].text.withID(taken[i].id)}
	}
	return out, taken[0].queued
}

// storedText is the text of one entry, ready to insert.
type storedText struct {
	id   int64
	text entryText
}

// readTexts reads up to limit entries whose id satisfies cond (a condition
// on e.id with one argument, and its ORDER BY) with their bodies, and
// computes their text.
func (s *Store) readTexts(ctx context.Context, cond string, arg int64, limit int) ([]storedText, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT e.id, e.tenant, e.event_type, e.error_code, e.broker, e.cluster, e.destination, e.resource,
	coalesce(e.message_id, ''), coalesce(b.codec, 0), b.payload, b.headers, b.record
FROM entries e LEFT JOIN entry_bodies b ON b.id = e.id
WHERE `+cond+` LIMIT ?`, arg, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedText
	for rows.Next() {
		var id int64
		var f entryFilters
		var mid string
		var codec int
		var payload, headers, record []byte
		if err := rows.Scan(&id, &f.tenant, &f.eventType, &f.errorCode, &f.broker, &f.cluster, &f.destination, &f.resource,
			&mid, &codec, &payload, &headers, &record); err != nil {
			return nil, err
		}
		it := IndexItem{MessageID: mid}
		// The envelope's inner payload is not searched (the payload is):
		// no need to parse it again.
		d, err := s.dictOf(ctx, codec)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", id, err)
		}
		if dl, err := decodeBody(d, codec, record, payload, headers, true); err == nil {
			it.DL = dl
		}
		out = append(out, storedText{id, textOf(id, &it, f)})
	}
	return out, rows.Err()
}

// textAdvanced wakes every WaitText.
func (s *Store) textAdvanced() {
	s.textMu.Lock()
	close(s.textMoved)
	s.textMoved = make(chan struct{})
	s.textMu.Unlock()
}

// checkText notes whether entries stored before the full-text index had
// its present columns are missing from it.
func (s *Store) checkText(ctx context.Context) error {
	_, older, err := s.textLag(ctx)
	if err != nil {
		return fmt.Errorf("check the search index: %w", err)
	}
	s.textPending.Store(older)
	return nil
}

// RebuildText returns once every entry stored before the full-text index
// had its present columns (migration 9 created it anew, empty) is in it —
// at once when none is missing — or ctx's error. The text indexer does the
// work, the most recently indexed entries first, in transactions that let
// indexing, jobs and searches go on; until it has finished, a text search
// may miss older entries, and Page says so (TextPending). cmd/console runs
// it in the background at start, to log when the index is whole.
func (s *Store) RebuildText(ctx context.Context) error {
	if !s.textPending.Load() {
		return nil
	}
	start := time.Now()
	var missing int
	p, err := readProgress(ctx, s.db)
	if err != nil {
		return fmt.Errorf("rebuild the search index: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM entries WHERE id <= ?", p.below).Scan(&missing); err != nil {
		return fmt.Errorf("rebuild the search index: %w", err)
	}
	s.logger.Info("dlqstore: rebuilding the search index for older entries; until it is done a search may miss them", "entries", missing)
	if err := s.waitText(ctx, func(p textProgress, _ int64) bool { return !s.textPending.Load() }); err != nil {
		return err
	}
	s.logger.Info("dlqstore: search index rebuilt", "entries", missing, "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// textLag says how far the full-text index is behind the entries: behind is
// how long ago the oldest entry stored after the index's newest text was
// captured (0 when the index holds every new entry), and older whether
// entries stored before the index had its present columns are still
// missing (RebuildText). Filters and counts never lag; only text does.
func (s *Store) textLag(ctx context.Context) (behind time.Duration, older bool, err error) {
	p, err := readProgress(ctx, s.db)
	if err != nil {
		return 0, false, err
	}
	var at sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT (SELECT indexed_at FROM entries WHERE id > ? ORDER BY id LIMIT 1),
	EXISTS (SELECT 1 FROM entries WHERE id <= ?)`, p.above, p.below).Scan(&at, &older)
	if err != nil {
		return 0, false, fmt.Errorf("text lag: %w", err)
	}
	if at.Valid {
		behind = max(s.now().Sub(fromNano(at.Int64)), time.Nanosecond)
	}
	return behind, older, nil
}

// WaitText returns once the full-text index holds every entry committed
// before the call, or ctx's error.
func (s *Store) WaitText(ctx context.Context) error {
	var target int64
	if err := s.db.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM entries").Scan(&target); err != nil {
		return fmt.Errorf("wait for the search index: %w", err)
	}
	return s.waitText(ctx, func(p textProgress, maxID int64) bool {
		// A purge may have lowered the highest id below the target.
		return p.above >= min(target, maxID) && !s.textPending.Load()
	})
}

// waitTextUpTo waits, up to Tuning.TextWait, for the full-text index to
// hold every entry captured up to id, so that a selection by text frozen
// up to id misses none of them. Past the wait it is ECONFLICT, saying how
// far behind the index is.
func (s *Store) waitTextUpTo(ctx context.Context, id int64) error {
	wctx, cancel := context.WithTimeout(ctx, s.tuning.TextWait)
	defer cancel()
	err := s.waitText(wctx, func(p textProgress, maxID int64) bool {
		// A purge may have lowered the highest id below id.
		return p.above >= min(id, maxID)
	})
	if err == nil || ctx.Err() != nil || wctx.Err() == nil {
		return err
	}
	behind, _, lerr := s.textLag(ctx)
	if lerr != nil {
		return fmt.Errorf("create job: %w", lerr)
	}
	return delivery.Errorf(delivery.ECONFLICT, "text search covers entries up to %s ago and did not catch up within %s: a selection by text would miss the newest entries; try again in a moment, or select without text",
		max(behind.Round(time.Second), time.Second), s.tuning.TextWait)
}

// waitText pokes the text indexer until done holds for its progress and
// the highest entry id, or ctx ends.
func (s *Store) waitText(ctx context.Context, done func(p textProgress, maxID int64) bool) error {
	for {
		s.textMu.Lock()
		moved := s.textMoved
		s.textMu.Unlock()
		p, err := readProgress(ctx, s.db)
		if err != nil {
			return err
		}
		var maxID int64
		if err := s.db.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM entries").Scan(&maxID); err != nil {
			return fmt.Errorf("wait for the search index: %w", err)
		}
		if done(p, maxID) {
			return nil
		}
		s.pokeText()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-moved:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeText runs fn in one write transaction of the text indexer, after
// every write of this process that waits for the lock, and — for texts
// queued less than textYieldMax ago (queued) — after the captures under
// way: capture first. It returns how long it held the lock.
func (s *Store) writeText(ctx context.Context, queued time.Time, fn func(tx *sql.Tx) error) (time.Duration, error) {
	yield := func() bool {
		return s.writersWaiting.Load() > 0 ||
			(s.capturing.Load() > 0 && !queued.IsZero() && time.Since(queued) < textYieldMax)
	}
	for yield() {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	start := time.Now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := fn(tx); err != nil {
		return time.Since(start), err
	}
	err = tx.Commit()
	return time.Since(start), err
}
