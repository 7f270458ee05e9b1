package collector

import (
	"strings"
	"testing"
	"time"
)

// burrowCommit is one entry of a Burrow vector: offset, timestamp in
// milliseconds and lag; hasLag false is Burrow's nil lag.
type burrowCommit struct {
	offset, ms, lag int64
	hasLag          bool
}

func bc(offset, ms, lag int64) burrowCommit { return burrowCommit{offset, ms, lag, true} }

// TestJudgeBurrowVectors runs Burrow's own correctness vectors
// (core/internal/evaluator/caching_test.go, tests 0-11: offsets with their
// timestamps and lags, the stored broker offsets, the current lag, the
// time of evaluation in seconds) through judge, with the window as large
// as the vector (Burrow judges only complete windows). Vector 10 is
// Burrow #303, the recent-lag-zero rule: STOP by the timestamps, OK because
// a recent broker offset equals the last commit.
func TestJudgeBurrowVectors(t *testing.T) {
	lagZeroRun := func() []burrowCommit { // vectors 9 and 10: 15 commits a second apart, all caught up
		ms := []int64{1512224618356, 1512224619362, 1512224620366, 1512224621367, 1512224622370, 1512224623373,
			1512224624378, 1512224625379, 1512224626383, 1512224627383, 1512224628383, 1512224629388,
			1512224630391, 1512224631394, 1512224632397}
		out := make([]burrowCommit, len(ms))
		for i, m := range ms {
			out[i] = bc(792748079+int64(i), m, 0)
		}
		return out
	}
	// vectors 0-2: lag zero at the first commit only
	zeroFirst := []burrowCommit{bc(1000, 100000, 0), bc(2000, 200000, 50), bc(3000, 300000, 100), bc(4000, 400000, 150), bc(5000, 500000, 200)}
	tests := []struct {
		name       string
		offsets    []burrowCommit
		broker     []int64
		currentLag int64
		now        int64 // seconds
		want       Status
		reason     string // prefix
	}{
		{name: "0: zero lag somewhere is OK",
			offsets: zeroFirst,
			broker:  []int64{5200}, currentLag: 200, now: 600, want: StatusOK, reason: "OK: lag was 0 at offset 1000"},
		{name: "1: silent exactly as long as the window spans is not STOP",
			offsets: zeroFirst,
			broker:  []int64{5200}, currentLag: 200, now: 900, want: StatusOK, reason: "OK: lag was 0 at offset 1000"},
		{name: "2: silent longer is STOP although lag was zero at the start (#290)",
			offsets: zeroFirst,
			broker:  []int64{5200}, currentLag: 200, now: 1000, want: StatusStop, reason: "STOP: last commit at offset 5000 was 8m20s ago"},
		{name: "3: STOP with lag never zero",
			offsets: []burrowCommit{bc(1000, 100000, 50), bc(2000, 200000, 100), bc(3000, 300000, 150), bc(4000, 400000, 200), bc(5000, 500000, 250)},
			broker:  []int64{5250}, currentLag: 250, now: 1000, want: StatusStop},
		{name: "4: same offset but zero lag at the start is OK",
			offsets: []burrowCommit{bc(1000, 100000, 0), bc(1000, 200000, 50), bc(1000, 300000, 100), bc(1000, 400000, 150), bc(1000, 500000, 200)},
			broker:  []int64{1200}, currentLag: 200, now: 600, want: StatusOK},
		{name: "5: same offset, lag growing is STALL",
			offsets: []burrowCommit{bc(1000, 100000, 100), bc(1000, 200000, 150), bc(1000, 300000, 200), bc(1000, 400000, 250), bc(1000, 500000, 300)},
			broker:  []int64{1300}, currentLag: 300, now: 600, want: StatusStall},
		{name: "6: same offset, lag flat is STALL",
			offsets: []burrowCommit{bc(1000, 100000, 100), bc(1000, 200000, 100), bc(1000, 300000, 100), bc(1000, 400000, 100), bc(1000, 500000, 100)},
			broker:  []int64{1100}, currentLag: 100, now: 600, want: StatusStall},
		{name: "7: offset going back is REWIND even though lag decreases",
			offsets: []burrowCommit{bc(1000, 100000, 100), bc(2000, 200000, 150), bc(3000, 300000, 200), bc(2000, 400000, 1250), bc(4000, 500000, 300)},
			broker:  []int64{4300}, currentLag: 300, now: 600, want: StatusRewind},
		{name: "8: current lag zero is OK although the timestamps say stopped",
			offsets: []burrowCommit{bc(1000, 100000, 50), bc(2000, 200000, 100), bc(3000, 300000, 150), bc(4000, 400000, 200), bc(5000, 500000, 250)},
			broker:  []int64{5250}, currentLag: 0, now: 1000, want: StatusOK, reason: "OK: lag 0"},
		{name: "9: caught up in every commit, but new data and no commit since: STOP (#290)",
			offsets: lagZeroRun(), broker: []int64{792749024, 792749000, 792748800, 792748600, 792748500},
			currentLag: 931, now: 1512224650, want: StatusStop},
		{name: "10: as 9, but a recent broker offset equals the last commit: OK (#303)",
			offsets: lagZeroRun(), broker: []int64{792748094, 792748093, 792748093, 792748093},
			currentLag: 1, now: 1512224650, want: StatusOK,
			reason: "OK: last commit at offset 792748093 was 18s ago, but a recent poll found it caught up (high watermark 792748093); now 1"},
		// Burrow's nil lags are commits seen without a broker offset; Observe
		// never keeps such a commit (an unknown watermark is ignored), so
		// the window holds the other five, which must judge as vector 0.
		{name: "11: as 0 with commits of unknown lag in between",
			offsets: []burrowCommit{bc(1000, 100000, 0), {offset: 1500, ms: 150000}, bc(2000, 200000, 50), {offset: 2500, ms: 250000},
				bc(3000, 300000, 100), {offset: 3500, ms: 350000}, bc(4000, 400000, 150), {offset: 4500, ms: 450000},
				bc(5000, 500000, 200), {offset: 5500, ms: 550000}},
			broker: []int64{5700}, currentLag: 200, now: 600, want: StatusOK, reason: "OK: lag was 0 at offset 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w []Commit
			for _, o := range tt.offsets {
				if o.hasLag {
					w = append(w, Commit{Offset: o.offset, Lag: o.lag, Time: time.UnixMilli(o.ms)})
				}
			}
			// Burrow's ring lists the newest broker offset first; ours
			// is oldest first.
			highs := make([]int64, len(tt.broker))
			for i, b := range tt.broker {
				highs[len(highs)-1-i] = b
			}
			got := judge(w, highs, tt.currentLag, time.Unix(tt.now, 0), len(w), 0)
			if got.Status != tt.want || !strings.HasPrefix(got.Reason, tt.reason) {
				t.Errorf("status = %s %q, want %s %q…", got.Status, got.Reason, tt.want, tt.reason)
			}
			// Without the recent broker offsets only vector 10 changes:
			// that is the rule, and nothing else.
			bare := judge(w, nil, tt.currentLag, time.Unix(tt.now, 0), len(w), 0)
			if wantBare := map[bool]Status{true: StatusStop, false: tt.want}[strings.HasPrefix(tt.name, "10:")]; bare.Status != wantBare {
				t.Errorf("without broker offsets: %s %q, want %s", bare.Status, bare.Reason, wantBare)
			}
		})
	}
}

// TestJudgeRecentLagZeroHonoursAllowedLag: with a transactional producer's
// marker (allowed lag 1), a poll whose watermark was one past the last
// commit also counts as caught up.
func TestJudgeRecentLagZeroHonoursAllowedLag(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var w []Commit
	for i := range 5 {
		w = append(w, Commit{Offset: 100 + int64(i), Lag: 1, Time: t0.Add(time.Duration(i) * time.Second)})
	}
	now := t0.Add(time.Minute)
	if got := judge(w, []int64{106, 107, 108}, 3, now, 5, 1); got.Status != StatusStop {
		t.Errorf("watermarks 106..108 after a last commit at 104 with allowed lag 1: %s %q, want STOP", got.Status, got.Reason)
	}
	if got := judge(w, []int64{105, 105, 107}, 3, now, 5, 1); got.Status != StatusOK || !strings.Contains(got.Reason, "high watermark 105") {
		t.Errorf("a watermark of 105 after a last commit at 104 with allowed lag 1: %s %q, want OK naming it", got.Status, got.Reason)
	}
}
