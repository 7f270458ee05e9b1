package dlqstore

import (
	"fmt"

	"switchyard/delivery"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// entry_bodies.codec says how each blob of a row is stored: three bits per
// column, one set when that column holds one zstd frame of the bytes, the
// second (the same bit shifted by codecS2Shift) when it holds one S2 block,
// the third (shifted by codecDictShift) when it holds one S2 block
// compressed with the dictionary of the row's set, whose id the codec
// carries above codecDictIDShift (dict.go); none when it holds the bytes as
// they are (every row written before migration 9, and any blob that
// compressing did not make smaller). A payload can itself look like a zstd
// frame, so the bits, not the bytes, decide.
const (
	codecPayload = 1 << iota
	codecHeaders
	codecRecord

	codecAll = codecPayload | codecHeaders | codecRecord
)

// codecS2Shift moves a column's zstd bit to its S2 bit.
const codecS2Shift = 3

// zstdMin is the smallest blob packed with zstd; smaller ones get S2.
// Measured on the benchmark's realistic dead letters (~2.9 KB of payload,
// headers and record, each a few hundred bytes to 1.5 KB): zstd's fastest
// level builds entropy tables for every frame, which cost 50–90 µs an
// entry against S2's 8 µs, for 1.67 KB stored against 2.07 KB. Capture at
// 30,000 entries a second has about 33 µs an entry for everything, so
// small blobs take S2; a big payload, where zstd's better ratio is worth
// its fixed cost, takes zstd.
const zstdMin = 8 << 10

// One encoder and decoder for the process: EncodeAll and DecodeAll are safe
// for concurrent use, and building either costs far more than a blob.
var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithZeroFrames(true))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
)

// packMin is the smallest blob packBlob compresses.
const packMin = 64

// packBlob returns b as it should be stored in the column whose zstd bit
// is bit, and the codec bits to set for it: compressed — with the column's
// dictionary of d where it has one — when that saves at least an eighth,
// else b itself (short blobs and already-compressed payloads gain
// nothing).
func packBlob(d *dictSet, b []byte, bit int) ([]byte, int) {
	if len(b) < packMin {
		return b, 0
	}
	var z []byte
	switch dd := d.forColumn(bit); {
	case len(b) >= zstdMin:
		z = zenc.EncodeAll(b, make([]byte, 0, len(b)/2))
	case dd != nil:
		z = dd.Encode(nil, b)
		bit <<= codecDictShift
	default:
		z = s2.Encode(nil, b)
		bit <<= codecS2Shift
	}
	if len(z) > len(b)-len(b)/8 {
		return b, 0
	}
	return z, bit
}

// unpackBlob returns the bytes of a stored blob of the column whose zstd
// bit is bit, given the row's codec and the set it names (dictOf).
func unpackBlob(d *dictSet, codec, bit int, b []byte) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	switch {
	case codec&(bit<<codecDictShift) != 0:
		dd := d.forColumn(bit)
		if dd == nil {
			return nil, fmt.Errorf("stored blob: no dictionary for it in set %d", codec>>codecDictIDShift)
		}
		out, err := dd.Decode(nil, b)
		if err != nil {
			return nil, fmt.Errorf("stored blob: %w", err)
		}
		return out, nil
	case codec&bit != 0:
		out, err := zdec.DecodeAll(b, nil)
		if err != nil {
			return nil, fmt.Errorf("stored blob: %w", err)
		}
		return out, nil
	case codec&(bit<<codecS2Shift) != 0:
		out, err := s2.Decode(nil, b)
		if err != nil {
			return nil, fmt.Errorf("stored blob: %w", err)
		}
		return out, nil
	}
	return b, nil
}

// packBody packs the three blobs of an entry_bodies row, with the
// dictionaries of d where it has them (nil: none), and returns the row's
// codec with them.
func packBody(d *dictSet, payload, headers, record []byte) (codec int, p, h, r []byte) {
	var c int
	p, c = packBlob(d, payload, codecPayload)
	codec |= c
	h, c = packBlob(d, headers, codecHeaders)
	codec |= c
	r, c = packBlob(d, record, codecRecord)
	codec |= c
	if codec&(codecAll<<codecDictShift) != 0 {
		codec |= int(d.id) << codecDictIDShift
	}
	return codec, p, h, r
}

// packed reports whether the blob of the column whose zstd bit is bit is
// stored compressed (unpackBlob returns new bytes) rather than as it is.
func packed(codec, bit int) bool {
	return codec&(bit|bit<<codecS2Shift|bit<<codecDictShift) != 0
}

// decodeBody is decodeRecord of a stored entry_bodies row, whatever its
// codec; d is the set the codec names (dictOf).
func decodeBody(d *dictSet, codec int, record, payload, headers []byte, truncated bool) (delivery.DeadLetter, error) {
	var err error
	if payload, err = unpackBlob(d, codec, codecPayload, payload); err != nil {
		return delivery.DeadLetter{}, fmt.Errorf("payload: %w", err)
	}
	if headers, err = unpackBlob(d, codec, codecHeaders, headers); err != nil {
		return delivery.DeadLetter{}, fmt.Errorf("headers: %w", err)
	}
	if record, err = unpackBlob(d, codec, codecRecord, record); err != nil {
		return delivery.DeadLetter{}, fmt.Errorf("record: %w", err)
	}
	return decodeRecord(record, payload, headers, truncated)
}
