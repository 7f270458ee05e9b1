package dlqstore

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// entry_bodies.codec says how each blob of a row is stored: a bit per
// column, set when that column holds one zstd frame of the bytes, clear when
// it holds them as they are (every row written before migration 9, and any
// blob that compressing did not make smaller). A payload can itself look
// like a zstd frame, so the bit, not the bytes, decides.
const (
	codecPayload = 1 << iota
	codecHeaders
	codecRecord
)

// One encoder and decoder for the process: EncodeAll and DecodeAll are safe
// for concurrent use, and building either costs far more than a blob.
var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithZeroFrames(true))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
)

// packBlob returns b as it should be stored and whether that is compressed:
// a zstd frame when that saves at least an eighth, else b itself (short
// blobs and already-compressed payloads gain nothing).
func packBlob(b []byte) ([]byte, bool) {
	if len(b) < 64 {
		return b, false
	}
	z := zenc.EncodeAll(b, make([]byte, 0, len(b)/2))
	if len(z) > len(b)-len(b)/8 {
		return b, false
	}
	return z, true
}

// unpackBlob returns the bytes of a stored blob of the column whose codec
// bit is bit, given the row's codec.
func unpackBlob(codec, bit int, b []byte) ([]byte, error) {
	if codec&bit == 0 || b == nil {
		return b, nil
	}
	out, err := zdec.DecodeAll(b, nil)
	if err != nil {
		return nil, fmt.Errorf("stored blob: %w", err)
	}
	return out, nil
}
