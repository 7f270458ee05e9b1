package collector_test

import (
	"math"
	"testing"
	"time"

	"switchyard/collector"
)

var lagT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func secs(s float64) time.Time { return lagT0.Add(time.Duration(s * float64(time.Second))) }

type lagPt struct {
	offset int64
	at     float64 // seconds after lagT0
}

func TestLagSeconds(t *testing.T) {
	busy := []lagPt{{100, 0}, {200, 10}, {400, 20}}
	tests := []struct {
		name      string
		maxPoints int
		points    []lagPt
		committed int64
		now       float64
		want      float64
		known     bool
		wantLen   int
	}{
		{name: "empty table is unknown", committed: 5, now: 30, known: false},
		{name: "one point, behind, is unknown", points: []lagPt{{100, 0}}, committed: 50, now: 30, known: false, wantLen: 1},
		{name: "one point, caught up, is zero", points: []lagPt{{100, 0}}, committed: 100, now: 30, want: 0, known: true, wantLen: 1},
		{name: "exactly the newest offset is zero", points: busy, committed: 400, now: 30, want: 0, known: true, wantLen: 3},
		{name: "past the newest offset is zero", points: busy, committed: 450, now: 30, want: 0, known: true, wantLen: 3},
		{name: "interpolated in the first pair", points: busy, committed: 150, now: 30, want: 25, known: true, wantLen: 3},
		{name: "interpolated in the second pair", points: busy, committed: 300, now: 30, want: 15, known: true, wantLen: 3},
		{name: "exactly a middle point", points: busy, committed: 200, now: 30, want: 20, known: true, wantLen: 3},
		{name: "exactly the oldest point", points: busy, committed: 100, now: 30, want: 30, known: true, wantLen: 3},
		// 300 offsets in 20 s is 15/s; 50 offsets before the oldest is 3.33 s before it.
		{name: "extrapolated before the oldest point", points: busy, committed: 50, now: 30, want: 30 + 50.0/15, known: true, wantLen: 3},
		{name: "flat table, behind, is unknown", points: []lagPt{{100, 0}, {100, 10}, {100, 20}}, committed: 50, now: 30, known: false, wantLen: 2},
		{name: "flat table, caught up, is zero", points: []lagPt{{100, 0}, {100, 10}}, committed: 100, now: 30, want: 0, known: true, wantLen: 2},
		{
			// The run 200@10..200@30 keeps its first and latest point. The
			// log sat at 200 until 30 s, so offset 250 was written between
			// 30 and 40 s, not between 10 and 40.
			name:   "flat run collapses and dates from its latest point",
			points: []lagPt{{100, 0}, {200, 10}, {200, 20}, {200, 30}, {300, 40}}, committed: 250, now: 60,
			want: 25, known: true, wantLen: 4,
		},
		{
			name:   "point out of time order is dropped",
			points: []lagPt{{100, 0}, {200, 10}, {150, 5}, {300, 10}}, committed: 150, now: 30,
			want: 25, known: true, wantLen: 2,
		},
		{
			name:   "decreasing offset is dropped",
			points: []lagPt{{100, 0}, {200, 10}, {150, 20}}, committed: 150, now: 30,
			want: 25, known: true, wantLen: 2,
		},
		{
			// Only (20,2) (30,3) (40,4) remain: offset 25 is at 2.5 s, and
			// offset 0 extrapolates at 10/s to 0 s.
			name: "max points keeps the newest", maxPoints: 3,
			points:    []lagPt{{0, 0}, {10, 1}, {20, 2}, {30, 3}, {40, 4}},
			committed: 25, now: 10, want: 7.5, known: true, wantLen: 3,
		},
		{
			name: "max points extrapolates from the kept points", maxPoints: 3,
			points:    []lagPt{{0, 0}, {5, 1}, {20, 2}, {30, 3}, {40, 4}},
			committed: 0, now: 10, want: 10, known: true, wantLen: 3,
		},
		{name: "clock behind the table gives zero, not negative", points: busy, committed: 300, now: 5, want: 0, known: true, wantLen: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := collector.LagTable{MaxPoints: tt.maxPoints}
			for _, p := range tt.points {
				l.Add(p.offset, secs(p.at))
			}
			if l.Len() != tt.wantLen {
				t.Errorf("Len = %d, want %d", l.Len(), tt.wantLen)
			}
			got, known := l.LagSeconds(tt.committed, secs(tt.now))
			if known != tt.known || math.Abs(got-tt.want) > 1e-6 {
				t.Errorf("LagSeconds(%d) = %v, %v; want %v, %v", tt.committed, got, known, tt.want, tt.known)
			}
		})
	}
}

func TestLagTableDefaultsTo60Points(t *testing.T) {
	var l collector.LagTable
	for i := range 100 {
		l.Add(int64(i*10), secs(float64(i)))
	}
	if l.Len() != collector.DefaultLagPoints {
		t.Fatalf("Len = %d, want %d", l.Len(), collector.DefaultLagPoints)
	}
	// The oldest kept point is offset 400 at 40 s; offset 450 is at 45 s.
	if got, ok := l.LagSeconds(450, secs(100)); !ok || math.Abs(got-55) > 1e-6 {
		t.Errorf("LagSeconds(450) = %v, %v; want 55, true", got, ok)
	}
	l.Reset()
	if _, ok := l.LagSeconds(450, secs(100)); ok || l.Len() != 0 {
		t.Errorf("after Reset: Len %d, known %v; want an empty, unknowing table", l.Len(), ok)
	}
}

func TestLagTableIdleTopicStaysCurrent(t *testing.T) {
	// A topic idle for an hour then written to: a consumer one message
	// behind is seconds late, not an hour.
	var l collector.LagTable
	l.Add(1000, secs(0))
	for s := 10; s <= 3600; s += 10 {
		l.Add(1000, secs(float64(s)))
	}
	l.Add(1010, secs(3610))
	if l.Len() != 3 {
		t.Errorf("Len = %d, want 3 (idle hour collapsed)", l.Len())
	}
	got, ok := l.LagSeconds(1009, secs(3615))
	if !ok || got > 15 {
		t.Errorf("LagSeconds(1009) = %v, %v; want known and under 15 s", got, ok)
	}
}

func BenchmarkLagSeconds(b *testing.B) {
	var l collector.LagTable
	for i := range collector.DefaultLagPoints {
		l.Add(int64(i*100), secs(float64(i*10)))
	}
	now := secs(700)
	b.ReportAllocs()
	var sink float64
	for i := 0; b.Loop(); i++ {
		s, _ := l.LagSeconds(int64(i%6000), now)
		sink += s
	}
	_ = sink
}

func BenchmarkLagTableAdd(b *testing.B) {
	var l collector.LagTable
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Add(int64(i), secs(float64(i)))
	}
}
