package tsdb

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
)

// This file holds the on-disk encodings: Gorilla-style raw chunks
// (delta-of-delta millisecond timestamps, XOR-compressed float64 values,
// after Pelkonen et al., "Gorilla", VLDB 2015, as Prometheus does it) and
// the bit streams and summaries that rollup chunks (rollup.go) are made of.

var errShortChunk = errors.New("chunk ends early")

// bstream is an append-only bit stream. count is how many low bits of the
// last byte are still free.
type bstream struct {
	b     []byte
	count uint8
}

func (s *bstream) writeBit(one bool) {
	if s.count == 0 {
		s.b = append(s.b, 0)
		s.count = 8
	}
	if one {
		s.b[len(s.b)-1] |= 1 << (s.count - 1)
	}
	s.count--
}

func (s *bstream) writeByte(c byte) {
	if s.count == 0 {
		s.b = append(s.b, c)
		return
	}
	s.b[len(s.b)-1] |= c >> (8 - s.count)
	s.b = append(s.b, c<<s.count)
}

// writeBits writes the n low bits of u, most significant first.
func (s *bstream) writeBits(u uint64, n int) {
	u <<= 64 - uint(n)
	for n >= 8 {
		s.writeByte(byte(u >> 56))
		u <<= 8
		n -= 8
	}
	for n > 0 {
		s.writeBit(u>>63 == 1)
		u <<= 1
		n--
	}
}

// breader reads a bit stream written by bstream.
type breader struct {
	b   []byte
	pos int // in bits
}

func (r *breader) readBit() (bool, error) {
	if r.pos >= len(r.b)*8 {
		return false, errShortChunk
	}
	bit := r.b[r.pos>>3]&(0x80>>(r.pos&7)) != 0
	r.pos++
	return bit, nil
}

func (r *breader) readBits(n int) (uint64, error) {
	if r.pos+n > len(r.b)*8 {
		return 0, errShortChunk
	}
	var v uint64
	for n > 0 {
		off := r.pos & 7
		avail := 8 - off
		take := min(avail, n)
		cur := (r.b[r.pos>>3] >> (avail - take)) & byte(1<<take-1)
		v = v<<take | uint64(cur)
		n -= take
		r.pos += take
	}
	return v, nil
}

// xorEncoder appends float64 values XOR-ed with their predecessor.
type xorEncoder struct {
	n                 int
	prev              float64
	leading, trailing uint8
}

func (e *xorEncoder) append(s *bstream, v float64) {
	if e.n == 0 {
		s.writeBits(math.Float64bits(v), 64)
		e.prev, e.leading, e.n = v, 0xff, 1
		return
	}
	e.n++
	delta := math.Float64bits(v) ^ math.Float64bits(e.prev)
	e.prev = v
	if delta == 0 {
		s.writeBit(false)
		return
	}
	s.writeBit(true)
	lead := uint8(bits.LeadingZeros64(delta))
	trail := uint8(bits.TrailingZeros64(delta))
	if lead >= 32 {
		lead = 31 // five bits
	}
	if e.leading != 0xff && lead >= e.leading && trail >= e.trailing {
		s.writeBit(false)
		s.writeBits(delta>>e.trailing, 64-int(e.leading)-int(e.trailing))
		return
	}
	e.leading, e.trailing = lead, trail
	s.writeBit(true)
	s.writeBits(uint64(lead), 5)
	sig := 64 - lead - trail
	s.writeBits(uint64(sig), 6) // 64 wraps to 0, read back as 64
	s.writeBits(delta>>trail, int(sig))
}

type xorDecoder struct {
	n                 int
	prev              uint64
	leading, trailing uint8
}

func (d *xorDecoder) next(r *breader) (float64, error) {
	if d.n == 0 {
		u, err := r.readBits(64)
		if err != nil {
			return 0, err
		}
		d.prev, d.n = u, 1
		return math.Float64frombits(u), nil
	}
	d.n++
	changed, err := r.readBit()
	if err != nil || !changed {
		return math.Float64frombits(d.prev), err
	}
	fresh, err := r.readBit()
	if err != nil {
		return 0, err
	}
	if fresh {
		l, err := r.readBits(5)
		if err != nil {
			return 0, err
		}
		sig, err := r.readBits(6)
		if err != nil {
			return 0, err
		}
		if sig == 0 {
			sig = 64
		}
		if int(l)+int(sig) > 64 {
			return 0, errors.New("corrupt value encoding")
		}
		d.leading, d.trailing = uint8(l), uint8(64-l-sig)
	}
	sig := 64 - int(d.leading) - int(d.trailing)
	u, err := r.readBits(sig)
	if err != nil {
		return 0, err
	}
	d.prev ^= u << d.trailing
	return math.Float64frombits(d.prev), nil
}

// rawChunk is the open, in-memory chunk of one series and one window. The
// sealed form is rawChunk.bytes(): uvarint sample count, then the stream.
type rawChunk struct {
	s      bstream
	n      int
	t      int64 // last timestamp, ms
	delta  int64 // last timestamp delta
	values xorEncoder
}

func (c *rawChunk) append(t int64, v float64) {
	switch c.n {
	case 0:
		c.s.writeBits(uint64(t), 64)
	default:
		d := t - c.t
		writeDoD(&c.s, d-c.delta)
		c.delta = d
	}
	c.t = t
	c.n++
	c.values.append(&c.s, v)
}

// bytes returns a copy of the chunk in its sealed form, safe to keep after
// further appends.
func (c *rawChunk) bytes() []byte {
	out := binary.AppendUvarint(make([]byte, 0, len(c.s.b)+3), uint64(c.n))
	return append(out, c.s.b...)
}

// size is the memory the chunk holds, for accounting.
func (c *rawChunk) size() int { return cap(c.s.b) }

// writeDoD writes a delta-of-delta in the smallest of four widths.
func writeDoD(s *bstream, dod int64) {
	switch {
	case dod == 0:
		s.writeBit(false)
	case fits(dod, 14):
		s.writeBits(0b10, 2)
		s.writeBits(uint64(dod), 14)
	case fits(dod, 17):
		s.writeBits(0b110, 3)
		s.writeBits(uint64(dod), 17)
	case fits(dod, 20):
		s.writeBits(0b1110, 4)
		s.writeBits(uint64(dod), 20)
	default:
		s.writeBits(0b1111, 4)
		s.writeBits(uint64(dod), 64)
	}
}

// fits reports whether x is representable in n bits two's complement.
func fits(x int64, n uint) bool {
	return x >= -(1<<(n-1)) && x < 1<<(n-1)
}

func readDoD(r *breader) (int64, error) {
	width := 0
	for prefix := 0; prefix < 4; prefix++ {
		bit, err := r.readBit()
		if err != nil {
			return 0, err
		}
		if !bit {
			width = []int{0, 14, 17, 20}[prefix]
			break
		}
		if prefix == 3 {
			width = 64
		}
	}
	if width == 0 {
		return 0, nil
	}
	u, err := r.readBits(width)
	if err != nil {
		return 0, err
	}
	if width < 64 && u >= 1<<(width-1) {
		return int64(u) - 1<<width, nil // sign-extend
	}
	return int64(u), nil
}

// rawIter walks a sealed raw chunk.
type rawIter struct {
	r      breader
	left   int
	i      int
	t      int64
	delta  int64
	values xorDecoder
	T      int64
	V      float64
	err    error
}

func newRawIter(b []byte) *rawIter {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return &rawIter{err: errShortChunk}
	}
	return &rawIter{r: breader{b: b[k:]}, left: int(n)}
}

func (it *rawIter) next() bool {
	if it.err != nil || it.i >= it.left {
		return false
	}
	if it.i == 0 {
		u, err := it.r.readBits(64)
		if err != nil {
			it.err = err
			return false
		}
		it.t = int64(u)
	} else {
		dod, err := readDoD(&it.r)
		if err != nil {
			it.err = err
			return false
		}
		it.delta += dod
		it.t += it.delta
	}
	v, err := it.values.next(&it.r)
	if err != nil {
		it.err = err
		return false
	}
	it.i++
	it.T, it.V = it.t, v
	return true
}

// agg is the five-number summary kept per rollup step and computed per
// query bucket.
type agg struct {
	min, max, sum, count, last float64
}

func (a *agg) addPoint(v float64) {
	if a.count == 0 {
		*a = agg{min: v, max: v, sum: v, count: 1, last: v}
		return
	}
	a.min = math.Min(a.min, v)
	a.max = math.Max(a.max, v)
	a.sum += v
	a.count++
	a.last = v
}

func (a *agg) addAgg(b agg) {
	if a.count == 0 {
		*a = b
		return
	}
	a.min = math.Min(a.min, b.min)
	a.max = math.Max(a.max, b.max)
	a.sum += b.sum
	a.count += b.count
	a.last = b.last
}

// Rollup chunk columns, in the order they are stored.
const (
	colMin = iota
	colMax
	colSum
	colCount
	colLast
	numCols
)

func (a agg) col(c int) float64 {
	switch c {
	case colMin:
		return a.min
	case colMax:
		return a.max
	case colSum:
		return a.sum
	case colCount:
		return a.count
	}
	return a.last
}

func (a *agg) setCol(c int, v float64) {
	switch c {
	case colMin:
		a.min = v
	case colMax:
		a.max = v
	case colSum:
		a.sum = v
	case colCount:
		a.count = v
	default:
		a.last = v
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
