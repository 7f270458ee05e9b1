package tsdb

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
)

// This file holds the rollup chunk encoding. A rollup chunk is one
// series' five-number summaries (agg) of one window, one per step bucket.
//
// The first encoding (format 1, still read) wrote every column as an XOR
// float stream: 9.5 bytes per series-minute, because the summaries of a
// growing offset or a wandering lag change in most of their mantissa bits
// every minute. Format 2 stores what the numbers usually are: integers
// (offsets, counts, lags in messages) that move by small amounts, and
// columns that follow one another (a counter's max is its last value, its
// min a little below). Per column it keeps, when the column and the one it
// leans on hold only exact integers, the difference to a reference (last
// for min and max, count×last for sum), differenced zero, one or two times
// (whichever is smallest), zigzagged and bit-packed at one width with
// escapes for outliers such as a counter reset. Any other column (NaN,
// ±Inf, -0, fractions) stays an XOR stream, so every value round-trips
// bit for bit. A series-minute of the benchmark's shapes costs 3-5 bytes,
// and a 5-minute bucket not much more.
//
// Layout of format 2: byte 0 (a format 1 chunk starts with its uvarint
// step, never 0), byte 2 (the format), uvarint step (ms), uvarint bucket
// count, the bucket positions as runs (as in format 1), then per column, in
// decodeOrder, a uvarint header (column kind, difference order, escapes,
// reference), for an integer column a width byte, and a uvarint length
// with that many bytes of bit stream.

const rollupFormat2 = 2

// decodeOrder is the order in which format 2 stores its columns: a
// column's references come before it.
var decodeOrder = [numCols]int{colCount, colLast, colMin, colMax, colSum}

// Column header fields of format 2.
const (
	kindXOR = 0 // XOR float stream
	kindInt = 1 // bit-packed integers

	hdrKindMask  = 1
	hdrOrderShft = 1 // two bits: 0, 1 or 2 differences
	hdrEscape    = 1 << 3
	hdrRef       = 1 << 4 // the stored integer is the value minus its reference
)

// maxExactInt bounds the integers a float64 holds exactly.
const maxExactInt = 1 << 53

// exactInt returns v as an integer when it is one that converts back to
// the same bits: finite, integral, within ±2^53 and not -0.
func exactInt(v float64) (int64, bool) {
	if v != math.Trunc(v) || math.Abs(v) > maxExactInt || (v == 0 && math.Signbit(v)) {
		return 0, false
	}
	return int64(v), true
}

// rollupBuckets summarises a sealed raw chunk starting at window start into
// one bucket per step: the bucket indexes (in steps from start) and their
// summaries, in time order.
func rollupBuckets(raw []byte, start, step int64) ([]int64, []agg, error) {
	var idx []int64
	var buckets []agg
	it := newRawIter(raw)
	for it.next() {
		b := floorDiv(it.T-start, step)
		if len(idx) == 0 || idx[len(idx)-1] != b {
			idx = append(idx, b)
			buckets = append(buckets, agg{})
		}
		buckets[len(buckets)-1].addPoint(it.V)
	}
	return idx, buckets, it.err
}

// encodeRollup summarises a sealed raw chunk starting at window start into
// one bucket per step, in format 2.
func encodeRollup(raw []byte, start, step int64) ([]byte, error) {
	idx, buckets, err := rollupBuckets(raw, start, step)
	if err != nil {
		return nil, err
	}
	return encodeAggs(step, idx, buckets), nil
}

// encodeAggs writes buckets at the given indexes (in steps from the
// chunk's start, ascending) in format 2.
func encodeAggs(step int64, idx []int64, buckets []agg) []byte {
	out := []byte{0, rollupFormat2}
	out = binary.AppendUvarint(out, uint64(step))
	out = appendRuns(out, idx)
	n := len(buckets)
	ints := [numCols][]int64{}
	isInt := [numCols]bool{}
	for col := range numCols {
		vs := make([]int64, n)
		ok := true
		for i, a := range buckets {
			if vs[i], ok = exactInt(a.col(col)); !ok {
				break
			}
		}
		if ok {
			ints[col], isInt[col] = vs, true
		}
	}
	for _, col := range decodeOrder {
		if !isInt[col] {
			var s bstream
			var e xorEncoder
			for _, a := range buckets {
				e.append(&s, a.col(col))
			}
			out = binary.AppendUvarint(out, kindXOR)
			out = binary.AppendUvarint(out, uint64(len(s.b)))
			out = append(out, s.b...)
			continue
		}
		xs, ref := ints[col], false
		if r := refOf(col, ints, isInt); r != nil {
			xs, ref = make([]int64, n), true
			for i := range xs {
				xs[i] = ints[col][i] - r[i]
			}
		}
		hdr, width, stream := packInts(xs)
		if ref {
			hdr |= hdrRef
		}
		out = binary.AppendUvarint(out, uint64(hdr))
		out = append(out, byte(width))
		out = binary.AppendUvarint(out, uint64(len(stream)))
		out = append(out, stream...)
	}
	return out
}

// refOf returns the per-bucket reference a column is stored relative to,
// nil when it has none: min and max lean on last, sum on count×(min+max)/2
// (as long as the product cannot overflow), which a steadily growing
// counter's sum is close to.
func refOf(col int, ints [numCols][]int64, isInt [numCols]bool) []int64 {
	switch col {
	case colMin, colMax:
		if isInt[colLast] {
			return ints[colLast]
		}
	case colSum:
		if !isInt[colMin] || !isInt[colMax] || !isInt[colCount] {
			return nil
		}
		r := make([]int64, len(ints[colCount]))
		for i, c := range ints[colCount] {
			lo, hi := ints[colMin][i], ints[colMax][i]
			if c < 0 || c >= 1<<20 || lo <= -1<<40 || hi >= 1<<40 {
				return nil
			}
			r[i] = floorDiv(c*(lo+hi), 2)
		}
		return r
	}
	return nil
}

// packInts chooses the difference order, width and escapes that store xs
// in the fewest bits, and returns the column header (without hdrRef), the
// width and the bit stream.
func packInts(xs []int64) (hdr, width int, stream []byte) {
	best := math.MaxInt
	var bestOrder, bestW int
	var bestEsc bool
	for order := range 3 {
		var hist [65]int
		for _, z := range zigzagged(xs, order) {
			hist[bits.Len64(z)]++
		}
		wmax := 0
		for w, c := range hist {
			if c > 0 {
				wmax = w
			}
		}
		if c := len(xs) * wmax; c < best {
			best, bestOrder, bestW, bestEsc = c, order, wmax, false
		}
		for w := range wmax {
			c := 0
			for l, k := range hist {
				if l <= w {
					c += k * (1 + w)
				} else {
					c += k * (1 + 7 + l)
				}
			}
			if c < best {
				best, bestOrder, bestW, bestEsc = c, order, w, true
			}
		}
	}
	var s bstream
	for _, z := range zigzagged(xs, bestOrder) {
		l := bits.Len64(z)
		switch {
		case !bestEsc:
			s.writeBits(z, bestW)
		case l <= bestW:
			s.writeBit(false)
			s.writeBits(z, bestW)
		default:
			s.writeBit(true)
			s.writeBits(uint64(l), 7)
			s.writeBits(z, l)
		}
	}
	hdr = kindInt | bestOrder<<hdrOrderShft
	if bestEsc {
		hdr |= hdrEscape
	}
	return hdr, bestW, s.b
}

// zigzagged differences xs order times (the value before the first being
// 0) and maps the results to unsigned integers, small magnitudes first.
func zigzagged(xs []int64, order int) []uint64 {
	d := xs
	for range order {
		next := make([]int64, len(d))
		prev := int64(0)
		for i, v := range d {
			next[i], prev = v-prev, v
		}
		d = next
	}
	out := make([]uint64, len(d))
	for i, v := range d {
		out[i] = uint64(v<<1) ^ uint64(v>>63)
	}
	return out
}

// unpackInts reads n integers written by packInts.
func unpackInts(stream []byte, n, hdr, width int) ([]int64, error) {
	r := breader{b: stream}
	d := make([]int64, n)
	for i := range d {
		w := width
		if hdr&hdrEscape != 0 {
			esc, err := r.readBit()
			if err != nil {
				return nil, err
			}
			if esc {
				l, err := r.readBits(7)
				if err != nil {
					return nil, err
				}
				if l > 64 {
					return nil, errors.New("corrupt integer width")
				}
				w = int(l)
			}
		}
		var z uint64
		if w > 0 {
			var err error
			if z, err = r.readBits(w); err != nil {
				return nil, err
			}
		}
		d[i] = int64(z>>1) ^ -int64(z&1)
	}
	for range hdr >> hdrOrderShft & 3 {
		sum := int64(0)
		for i, v := range d {
			sum += v
			d[i] = sum
		}
	}
	return d, nil
}

// appendRuns writes the bucket count and positions as runs of consecutive
// steps: (gap from the end of the previous run, length). A series
// reporting steadily has one run.
func appendRuns(out []byte, idx []int64) []byte {
	out = binary.AppendUvarint(out, uint64(len(idx)))
	var runs []int64
	next := int64(0)
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && idx[j] == idx[j-1]+1 {
			j++
		}
		runs = append(runs, idx[i]-next, int64(j-i))
		next = idx[j-1] + 1
		i = j
	}
	out = binary.AppendUvarint(out, uint64(len(runs)/2))
	for _, r := range runs {
		out = binary.AppendUvarint(out, uint64(r))
	}
	return out
}

// readRuns reads what appendRuns wrote and returns the bucket start times
// (ms) of a chunk starting at start, and the rest of b.
func readRuns(b []byte, start, step int64) ([]int64, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b))*8+1<<20 {
		return nil, nil, errShortChunk
	}
	b = b[k:]
	ts := make([]int64, 0, min(n, 1<<16))
	nruns, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, errShortChunk
	}
	b = b[k:]
	next := int64(0)
	for range nruns {
		gap, k1 := binary.Uvarint(b)
		if k1 <= 0 {
			return nil, nil, errShortChunk
		}
		length, k2 := binary.Uvarint(b[k1:])
		if k2 <= 0 || uint64(len(ts))+length > n {
			return nil, nil, errShortChunk
		}
		b = b[k1+k2:]
		next += int64(gap)
		for range length {
			ts = append(ts, start+next*step)
			next++
		}
	}
	if uint64(len(ts)) != n {
		return nil, nil, errShortChunk
	}
	return ts, b, nil
}

// decodeRollup returns the bucket start times (ms) and summaries of a
// rollup chunk of either format, filling only the columns in want (and
// what they are stored relative to); count is always filled.
func decodeRollup(b []byte, start int64, want [numCols]bool) ([]int64, []agg, error) {
	if len(b) > 0 && b[0] != 0 {
		return decodeRollup1(b, start, want)
	}
	if len(b) < 2 || b[1] != rollupFormat2 {
		return nil, nil, errors.New("unknown rollup format")
	}
	ts, b, err := readStepRuns(b[2:], start)
	if err != nil {
		return nil, nil, err
	}
	want[colCount] = true
	// What a wanted column may be stored relative to.
	if want[colSum] {
		want[colMin], want[colMax] = true, true
	}
	if want[colMin] || want[colMax] {
		want[colLast] = true
	}
	n := len(ts)
	out := make([]agg, n)
	var ints [numCols][]int64
	for _, col := range decodeOrder {
		hdr, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, nil, errShortChunk
		}
		b = b[k:]
		width := 0
		if hdr&hdrKindMask == kindInt {
			if len(b) == 0 || b[0] > 64 {
				return nil, nil, errShortChunk
			}
			width, b = int(b[0]), b[1:]
		}
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, nil, errShortChunk
		}
		stream := b[k : k+int(l)]
		b = b[k+int(l):]
		if !want[col] {
			continue
		}
		if hdr&hdrKindMask == kindXOR {
			r := breader{b: stream}
			var d xorDecoder
			for i := range out {
				v, err := d.next(&r)
				if err != nil {
					return nil, nil, err
				}
				out[i].setCol(col, v)
			}
			continue
		}
		xs, err := unpackInts(stream, n, int(hdr), width)
		if err != nil {
			return nil, nil, err
		}
		if hdr&hdrRef != 0 {
			var have [numCols]bool
			for c := range numCols {
				have[c] = ints[c] != nil
			}
			r := refOf(col, ints, have)
			if r == nil {
				return nil, nil, errors.New("corrupt rollup: column without its reference")
			}
			for i := range xs {
				xs[i] += r[i]
			}
		}
		ints[col] = xs
		for i, x := range xs {
			out[i].setCol(col, float64(x))
		}
	}
	return ts, out, nil
}

// readStepRuns reads what both rollup formats begin with: the uvarint
// step and the runs of bucket times (readRuns). It returns the times and
// the rest of b.
func readStepRuns(b []byte, start int64) ([]int64, []byte, error) {
	ustep, k := binary.Uvarint(b)
	if k <= 0 || ustep == 0 || ustep > math.MaxInt32 {
		return nil, nil, errShortChunk
	}
	return readRuns(b[k:], start, int64(ustep))
}

// decodeRollup1 reads format 1: uvarint step, the runs, then per column
// (min, max, sum, count, last) a uvarint byte length and an XOR stream.
func decodeRollup1(b []byte, start int64, want [numCols]bool) ([]int64, []agg, error) {
	ts, b, err := readStepRuns(b, start)
	if err != nil {
		return nil, nil, err
	}
	want[colCount] = true
	out := make([]agg, len(ts))
	for col := range numCols {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, nil, errShortChunk
		}
		stream := b[k : k+int(l)]
		b = b[k+int(l):]
		if !want[col] {
			continue
		}
		r := breader{b: stream}
		var d xorDecoder
		for i := range out {
			v, err := d.next(&r)
			if err != nil {
				return nil, nil, err
			}
			out[i].setCol(col, v)
		}
	}
	return ts, out, nil
}
