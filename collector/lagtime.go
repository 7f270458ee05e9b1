package collector

import "time"

// DefaultLagPoints is how many (offset, time) points a LagTable keeps
// unless told otherwise: at a 10 s collection interval, the last ten
// minutes of a busy partition, and much longer for a quiet one because
// flat runs collapse to two points.
const DefaultLagPoints = 60

// lagPoint is one observation of a partition's high watermark. The time is
// kept as Unix nanoseconds: half the size of a time.Time, no monotonic
// reading or location to carry, and plain integer arithmetic below.
type lagPoint struct {
	offset int64
	at     int64
}

// LagTable estimates lag in seconds for one partition by kafka-lag-exporter's
// method: it remembers when the log reached which offset (the high watermark
// seen at each collection) and, for a committed offset, interpolates when
// the log was at that offset. The consumer is as far behind in time as that
// moment is in the past.
//
// The zero value is ready to use and keeps DefaultLagPoints points. A
// LagTable is not safe for concurrent use; the collector owns one per
// partition and calls it from its cycle.
type LagTable struct {
	// MaxPoints caps the table; <= 0 means DefaultLagPoints, and values
	// below 2 are raised to 2, the fewest that can interpolate.
	MaxPoints int

	points []lagPoint // offsets non-decreasing, times strictly increasing
}

func (l *LagTable) max() int {
	switch {
	case l.MaxPoints <= 0:
		return DefaultLagPoints
	case l.MaxPoints < 2:
		return 2
	}
	return l.MaxPoints
}

// Len is the number of points the table holds.
func (l *LagTable) Len() int { return len(l.points) }

// Reset empties the table. The caller resets a partition whose high
// watermark went backwards for good (a topic deleted and recreated), since
// Add ignores decreasing offsets and would otherwise never recover.
func (l *LagTable) Reset() { l.points = l.points[:0] }

// Add records that the partition's log end was at offset at time t.
//
// A point not later than the newest one is out of order and dropped, and so
// is one with a lower offset (a stale answer from a lagging replica must not
// bend the curve). A run of equal offsets keeps only its first and latest
// point: the first says when the log reached that offset, which is what
// interpolation needs, the latest that it was still there; the points in
// between carry nothing and would push useful history out of the table.
func (l *LagTable) Add(offset int64, t time.Time) {
	at := t.UnixNano()
	n := len(l.points)
	if n > 0 {
		last := l.points[n-1]
		if at <= last.at || offset < last.offset {
			return
		}
		if n >= 2 && offset == last.offset && l.points[n-2].offset == offset {
			l.points[n-1].at = at
			return
		}
	}
	if l.points == nil {
		// One allocation for the table's lifetime.
		l.points = make([]lagPoint, 0, l.max())
	}
	if n >= l.max() {
		// Shifting 60 16-byte points is a ~1 KB memmove; a ring buffer
		// would save that but make the bracketing search below harder to
		// read.
		copy(l.points, l.points[n-l.max()+1:])
		l.points = l.points[:l.max()-1]
	}
	l.points = append(l.points, lagPoint{offset: offset, at: at})
}

// LagSeconds estimates how far behind, in seconds at now, a consumer that
// committed offset committed is. known is false when the table cannot say:
// it is empty, holds fewer than two points, or is flat (no produced message
// to date a position by) while the consumer is behind it.
//
// A consumer at or past the newest offset is 0 seconds behind, even with a
// single point: it has read everything the log held. A committed offset
// between two points is dated by linear interpolation between the adjacent
// pair that brackets it; one older than the oldest point is dated by
// extrapolating the average rate between the oldest and newest points
// backwards. A date in the future (clock skew) gives 0.
func (l *LagTable) LagSeconds(committed int64, now time.Time) (seconds float64, known bool) {
	n := len(l.points)
	if n == 0 {
		return 0, false
	}
	newest := l.points[n-1]
	if committed >= newest.offset {
		return 0, true
	}
	if n < 2 {
		return 0, false
	}
	oldest := l.points[0]
	if oldest.offset == newest.offset {
		return 0, false // flat table: nothing to interpolate with
	}

	var at float64 // Unix nanoseconds when the log was at committed
	if committed < oldest.offset {
		rate := float64(newest.offset-oldest.offset) / float64(newest.at-oldest.at) // offsets per ns, > 0
		at = float64(oldest.at) - float64(oldest.offset-committed)/rate
	} else {
		// Find the last point with offset <= committed; then
		// points[i].offset <= committed < points[i+1].offset, and the
		// strict inequality guarantees a non-zero denominator. "Last"
		// matters after a flat run: the log sat at that offset until the
		// run's latest point, so the messages after it were written between
		// that point and the next, not since the run began (an hour-idle
		// topic must not make a consumer one message behind an hour late).
		lo, hi := 0, n-1 // invariant: points[lo].offset <= committed < points[hi].offset
		for hi-lo > 1 {
			mid := int(uint(lo+hi) >> 1)
			if l.points[mid].offset <= committed {
				lo = mid
			} else {
				hi = mid
			}
		}
		a, b := l.points[lo], l.points[hi]
		frac := float64(committed-a.offset) / float64(b.offset-a.offset)
		at = float64(a.at) + frac*float64(b.at-a.at)
	}
	lag := (float64(now.UnixNano()) - at) / float64(time.Second)
	if lag < 0 {
		return 0, true
	}
	return lag, true
}
