package dlqstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/dict"
	"github.com/klauspost/compress/s2"
)

// Body dictionaries. The dead letters of one platform are alike — the same
// envelope keys, header names, error codes, exception classes and stack
// frames — but each body is compressed alone, and a blob of a few hundred
// bytes to 1.5 KB has no history in which to find them. A dictionary
// trained on the store's own recent bodies is that history: on the
// benchmark's realistic dead letters the three blobs of an entry take
// about 1,000 bytes with S2 and a dictionary per column instead of 2,069
// with S2 alone, at the same ~13 µs an entry (zstd with the same
// dictionaries: ~790 bytes at 80–100 µs, more than capture can spend).
//
// The store trains a set — one dictionary per column, from dictSamples
// bodies, ~150 ms — when a batch of at least dictSamples reaches a store
// without one (a flood is packed with it from its first batch on), or in
// the background from the newest bodies once dictTrainAfter entries have
// come in smaller batches; then again in the background after every
// dictRetrainAfter entries, so that the set follows what fails. A set is
// committed to body_dicts before any body is packed with it, and a body
// names its set in its codec (codecDictIDShift), so every body can be read
// for as long as it is kept, by this process or any other that opens the
// file. Sets are never deleted: one is about 20 KB.
const (
	dictTrainAfter   = 1000
	dictRetrainAfter = 250_000
	// 250 samples build dictionaries as good as 500 or 2,000 on the
	// benchmark's dead letters (1,004 bytes an entry against 1,003 and
	// 991) in a third of the time of 500.
	dictSamples = 250
	// dictSampleBytes bounds what a column's dictionary is built from:
	// building takes time in proportion, most with bytes that have little
	// in common (250 random payloads of 8 KB: 7 s for three columns).
	dictSampleBytes = 128 << 10
)

// codecDictShift moves a column's zstd bit to its bit for "one S2 block
// compressed with the dictionary of the row's set"; codecDictIDShift is
// where the set's id (body_dicts.id) starts in the codec.
const (
	codecDictShift   = 6
	codecDictIDShift = 9
)

// dictSet is one trained set: a dictionary per column (payload, headers,
// record), nil where its samples were too few to build one.
type dictSet struct {
	id  int64
	col [3]*s2.Dict
}

// forColumn is the dictionary of the column whose zstd bit is bit, or nil.
func (d *dictSet) forColumn(bit int) *s2.Dict {
	if d == nil {
		return nil
	}
	return d.col[bits.TrailingZeros(uint(bit))]
}

// bodyDicts holds the sets this process knows and the one capture packs
// with.
type bodyDicts struct {
	mu   sync.RWMutex
	byID map[int64]*dictSet
	// current packs new bodies; nil until the first set is trained.
	current atomic.Pointer[dictSet]
	// since counts the entries captured since the last training ended
	// (or since Open); training is set while a set is being trained, and
	// tried once this process has tried to train one.
	since    atomic.Int64
	training atomic.Bool
	tried    atomic.Bool
	stop     context.CancelFunc
	ctx      context.Context
	wg       sync.WaitGroup
}

// loadDicts reads every set in the file, the newest becoming current.
func (s *Store) loadDicts(ctx context.Context) error {
	s.dicts.byID = map[int64]*dictSet{}
	s.dicts.ctx, s.dicts.stop = context.WithCancel(context.Background())
	rows, err := s.db.QueryContext(ctx, "SELECT id, payload, headers, record FROM body_dicts ORDER BY id")
	if err != nil {
		return fmt.Errorf("body dictionaries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDictSet(rows)
		if err != nil {
			return err
		}
		s.dicts.byID[d.id] = d
		s.dicts.current.Store(d)
	}
	return rows.Err()
}

func scanDictSet(row scanner) (*dictSet, error) {
	var id int64
	var raw [3][]byte
	if err := row.Scan(&id, &raw[0], &raw[1], &raw[2]); err != nil {
		return nil, fmt.Errorf("body dictionaries: %w", err)
	}
	d := newDictSet(id, raw)
	for i, b := range raw {
		if b != nil && d.col[i] == nil {
			return nil, fmt.Errorf("body dictionary set %d: column %d is not an S2 dictionary", id, i)
		}
	}
	return d, nil
}

// dictOf returns the set a body with this codec was packed with, nil when
// it was packed with none. A set this process has not seen (another
// process trained it) is read from the file.
func (s *Store) dictOf(ctx context.Context, codec int) (*dictSet, error) {
	if codec&(codecAll<<codecDictShift) == 0 {
		return nil, nil
	}
	id := int64(codec >> codecDictIDShift)
	s.dicts.mu.RLock()
	d := s.dicts.byID[id]
	s.dicts.mu.RUnlock()
	if d != nil {
		return d, nil
	}
	d, err := scanDictSet(s.db.QueryRowContext(ctx, "SELECT id, payload, headers, record FROM body_dicts WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("stored body: its dictionary set %d is missing", id)
	}
	if err != nil {
		return nil, err
	}
	s.dicts.mu.Lock()
	s.dicts.byID[id] = d
	s.dicts.mu.Unlock()
	return d, nil
}

// captured notes n new entries and starts training a set when one is due.
func (s *Store) captured(n int) {
	if n == 0 {
		return
	}
	due := int64(dictTrainAfter)
	if s.dicts.current.Load() != nil || s.dicts.tried.Load() {
		due = dictRetrainAfter
	}
	if s.dicts.since.Add(int64(n)) < due || !s.dicts.training.CompareAndSwap(false, true) {
		return
	}
	s.dicts.tried.Store(true)
	s.dicts.wg.Go(func() {
		defer s.dicts.training.Store(false)
		defer s.dicts.since.Store(0)
		if err := s.trainDicts(s.dicts.ctx); err != nil && s.dicts.ctx.Err() == nil {
			s.logger.Warn("dlqstore: training body dictionaries failed; bodies are compressed without them", "err", err)
		}
	})
}

// dictFor returns the set to pack a batch of items with: the current one,
// or, when the store has none yet and the batch is big enough to train one
// on (a flood reaching a new store), one trained on the batch first —
// once: what had too little in common for a set waits dictRetrainAfter
// entries for the next try, in the background.
func (s *Store) dictFor(ctx context.Context, items []IndexItem) *dictSet {
	d := s.dicts.current.Load()
	if d != nil || len(items) < dictSamples || s.dicts.tried.Load() || !s.dicts.training.CompareAndSwap(false, true) {
		return d
	}
	s.dicts.tried.Store(true)
	defer s.dicts.training.Store(false)
	defer s.dicts.since.Store(0)
	var samples [3][][]byte
	var enc encoder
	for i := range dictSamples {
		it := &items[i]
		r := rowOf(it, &enc)
		samples[0] = append(samples[0], it.DL.Payload)
		samples[1] = append(samples[1], bytes.Clone(r.headers))
		samples[2] = append(samples[2], bytes.Clone(r.record))
	}
	d, err := s.storeDicts(ctx, samples)
	if err != nil {
		s.logger.Warn("dlqstore: training body dictionaries failed; bodies are compressed without them", "err", err)
	}
	return d
}

// trainDicts trains a set from the newest dictSamples bodies, stores it
// and makes it current.
func (s *Store) trainDicts(ctx context.Context) error {
	samples, err := s.newestBodies(ctx, dictSamples)
	if err != nil {
		return err
	}
	_, err = s.storeDicts(ctx, samples)
	return err
}

// newestBodies returns the blobs of the newest n bodies as they are, by
// column (payload, headers, record); a blob that cannot be unpacked is
// left out.
func (s *Store) newestBodies(ctx context.Context, n int) ([3][][]byte, error) {
	var samples [3][][]byte
	rows, err := s.db.QueryContext(ctx, "SELECT codec, payload, headers, record FROM entry_bodies ORDER BY id DESC LIMIT ?", n)
	if err != nil {
		return samples, err
	}
	defer rows.Close()
	for rows.Next() {
		var codec int
		var blobs [3][]byte
		if err := rows.Scan(&codec, &blobs[0], &blobs[1], &blobs[2]); err != nil {
			return samples, err
		}
		d, err := s.dictOf(ctx, codec)
		if err != nil {
			return samples, err
		}
		for i, bit := range [3]int{codecPayload, codecHeaders, codecRecord} {
			if b, err := unpackBlob(d, codec, bit, blobs[i]); err == nil {
				samples[i] = append(samples[i], b)
			}
		}
	}
	return samples, rows.Err()
}

// storeDicts builds a set from samples (each column's blobs as they are)
// and, when it built any dictionary, stores it and makes it current.
func (s *Store) storeDicts(ctx context.Context, samples [3][][]byte) (*dictSet, error) {
	raw, built := buildDicts(samples)
	if !built {
		return nil, nil
	}
	var id int64
	if err := s.write(ctx, func(tx *sql.Tx, now int64) error {
		res, err := tx.ExecContext(ctx, "INSERT INTO body_dicts (payload, headers, record, samples, trained_at) VALUES (?, ?, ?, ?, ?)",
			raw[0], raw[1], raw[2], max(len(samples[0]), len(samples[1]), len(samples[2])), now)
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	}); err != nil {
		return nil, err
	}
	d := newDictSet(id, raw)
	s.dicts.mu.Lock()
	s.dicts.byID[id] = d
	s.dicts.mu.Unlock()
	s.dicts.current.Store(d)
	return d, nil
}

// buildDicts builds a dictionary per column from its samples (blobs as
// they are; only those of the sizes packBlob gives a dictionary count, up
// to dictSampleBytes), and reports whether it built any: a column with few
// samples, or too little in common among them, gets none.
func buildDicts(samples [3][][]byte) (raw [3][]byte, built bool) {
	for i, all := range samples {
		var ss [][]byte
		total := 0
		for _, b := range all {
			if len(b) >= packMin && len(b) < zstdMin && total < dictSampleBytes {
				ss = append(ss, b)
				total += len(b)
			}
		}
		if len(ss) < dictSamples/10 {
			continue
		}
		b, err := dict.BuildS2Dict(ss, dict.Options{MaxDictSize: s2.MaxDictSize, HashBytes: 6})
		if err != nil {
			continue
		}
		// Kept only where it packs its own samples an eighth smaller than
		// S2 alone: a dictionary of what has nothing in common would
		// only cost its room.
		d := s2.NewDict(b)
		if d == nil {
			continue
		}
		with, alone := 0, 0
		for _, x := range ss {
			with += len(d.Encode(nil, x))
			alone += len(s2.Encode(nil, x))
		}
		if with > alone-alone/8 {
			continue
		}
		raw[i], built = b, true
	}
	return raw, built
}

// newDictSet is the set id of the dictionaries buildDicts built.
func newDictSet(id int64, raw [3][]byte) *dictSet {
	d := &dictSet{id: id}
	for i, b := range raw {
		if b != nil {
			d.col[i] = s2.NewDict(b)
		}
	}
	return d
}

// stopDicts stops a training under way, for Close.
func (s *Store) stopDicts() {
	if s.dicts.stop != nil {
		s.dicts.stop()
	}
	s.dicts.wg.Wait()
}
