package delivery_test

import (
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
)

func TestMemoryKeyStore(t *testing.T) {
	deliverytest.TestIdempotencyKeyStore(t, func(t *testing.T, now func() time.Time) delivery.IdempotencyKeyStore {
		s := delivery.NewMemoryKeyStore()
		s.Now = now
		return s
	})
}

// The zero MemoryKeyStore is usable too (its map is made on first Put).
func TestMemoryKeyStoreZeroValue(t *testing.T) {
	deliverytest.TestIdempotencyKeyStore(t, func(t *testing.T, now func() time.Time) delivery.IdempotencyKeyStore {
		return &delivery.MemoryKeyStore{Now: now}
	})
}
