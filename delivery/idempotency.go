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
type MemoryKeyStore struct {
	// Now defaults to time.Now.
	Now func() time.Time

	mu   sync.Mutex
	keys map[string]time.Time // key → expiry (zero: never)
	puts int
}

// NewMemoryKeyStore returns an empty store.
func NewMemoryKeyStore() *MemoryKeyStore { return &MemoryKeyStore{keys: map[string]time.Time{}} }

func (s *MemoryKeyStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Has reports whether key was put and has not expired.
func (s *MemoryKeyStore) Has(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.keys[key]
	if !ok {
		return false, nil
	}
	if !exp.IsZero() && !s.now().Before(exp) {
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
		s.keys = map[string]time.Time{}
	}
	now := s.now()
	var exp time.Time
	if ttl > 0 {
		exp = now.Add(ttl)
	}
	s.keys[key] = exp
	s.puts++
	if s.puts%1024 == 0 {
		for k, e := range s.keys {
			if !e.IsZero() && !now.Before(e) {
				delete(s.keys, k)
			}
		}
	}
	return nil
}
