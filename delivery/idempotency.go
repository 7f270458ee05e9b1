package delivery

import (
	"context"
	"sync"
	"time"
)

// IdempotencyKeyStore guards side effects with keys derived from the
// message id (platform-standard.md, "Idempotency"). Put with a ttl ≤ 0 keeps
// the key until the store is closed.
type IdempotencyKeyStore interface {
	Has(ctx context.Context, key string) (bool, error)
	Put(ctx context.Context, key string, ttl time.Duration) error
}

var _ IdempotencyKeyStore = (*MemoryKeyStore)(nil)

// MemoryKeyStore is an in-process IdempotencyKeyStore. Expired keys are
// swept lazily on Put.
//
// Unbounded (MaxKeys 0), it holds every key until its ttl passes, which at
// a steady rate and a long ttl is memory that only grows: 50 ids a second
// for 24 h are four million keys. A process that must run for days in
// bounded memory sets MaxKeys, trading the ttl's promise for a window of
// the most recent keys.
type MemoryKeyStore struct {
	// Now defaults to time.Now.
	Now func() time.Time
	// MaxKeys, when positive, is the most keys the store holds: a Put
	// beyond it forgets the keys put longest ago (first in, first out),
	// which with one ttl for every key are the ones that would expire
	// first anyway. A duplicate is then detected only while its key is
	// among the last MaxKeys put, so size it to the window a duplicate
	// can arrive in (a redelivery after a rebalance, a redrive). Set it
	// before the first Put.
	MaxKeys int

	mu   sync.Mutex
	keys map[string]keyState
	puts int
	seq  uint64
	// order holds the keys in the order they were put, from head on,
	// when MaxKeys bounds the store. An entry whose key was put again
	// since, or swept, is stale: its seq no longer matches the key's.
	order []keyPut
	head  int
}

// keyState is a held key's expiry (zero: never) and the seq of its latest
// Put.
type keyState struct {
	exp time.Time
	seq uint64
}

// keyPut is one Put in MemoryKeyStore.order.
type keyPut struct {
	key string
	seq uint64
}

// NewMemoryKeyStore returns an empty, unbounded store.
func NewMemoryKeyStore() *MemoryKeyStore { return &MemoryKeyStore{keys: map[string]keyState{}} }

// NewBoundedMemoryKeyStore returns an empty store that holds at most
// maxKeys keys (see MemoryKeyStore.MaxKeys).
func NewBoundedMemoryKeyStore(maxKeys int) *MemoryKeyStore {
	return &MemoryKeyStore{keys: map[string]keyState{}, MaxKeys: maxKeys}
}

func (s *MemoryKeyStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Len reports how many keys the store holds, expired ones not yet swept
// included.
func (s *MemoryKeyStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// Has reports whether key was put and has not expired (nor, in a bounded
// store, been evicted).
func (s *MemoryKeyStore) Has(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.keys[key]
	if !ok {
		return false, nil
	}
	if !st.exp.IsZero() && !s.now().Before(st.exp) {
		delete(s.keys, key)
		return false, nil
	}
	return true, nil
}

// Put records key for ttl.
func (s *MemoryKeyStore) Put(_ context.Context, key string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]keyState{}
	}
	now := s.now()
	var exp time.Time
	if ttl > 0 {
		exp = now.Add(ttl)
	}
	s.seq++
	s.keys[key] = keyState{exp: exp, seq: s.seq}
	s.puts++
	if s.puts%1024 == 0 {
		for k, st := range s.keys {
			if !st.exp.IsZero() && !now.Before(st.exp) {
				delete(s.keys, k)
			}
		}
	}
	if s.MaxKeys > 0 {
		s.order = append(s.order, keyPut{key: key, seq: s.seq})
		s.evict()
	}
	return nil
}

// evict forgets the oldest keys until at most MaxKeys remain, and keeps
// order from outgrowing the keys it tracks: stale entries (keys put again
// or swept) are dropped once they are as many as the live ones.
func (s *MemoryKeyStore) evict() {
	for len(s.keys) > s.MaxKeys && s.head < len(s.order) {
		p := s.order[s.head]
		s.order[s.head] = keyPut{} // let the key's string go
		s.head++
		if st, ok := s.keys[p.key]; ok && st.seq == p.seq {
			delete(s.keys, p.key)
		}
	}
	if live := len(s.order) - s.head; live > 2*len(s.keys)+1024 {
		kept := make([]keyPut, 0, len(s.keys)+len(s.keys)/4)
		for _, p := range s.order[s.head:] {
			if st, ok := s.keys[p.key]; ok && st.seq == p.seq {
				kept = append(kept, p)
			}
		}
		s.order, s.head = kept, 0
	} else if s.head > 1024 && s.head >= len(s.order)/2 {
		s.order, s.head = append(s.order[:0:0], s.order[s.head:]...), 0
	}
}
