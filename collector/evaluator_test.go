package collector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"switchyard/collector"
)

// evalT0 is 12:00:00 UTC; observations below are one minute apart.
var evalT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func minute(m float64) time.Time { return evalT0.Add(time.Duration(m * float64(time.Minute))) }

// obs is one observation: committed offset and high watermark at minute at.
type obs struct {
	committed, high int64
	at              float64
}

// series builds one observation per minute from parallel offset and lag lists.
func series(offsets, lags []int64) []obs {
	out := make([]obs, len(offsets))
	for i := range offsets {
		out[i] = obs{committed: offsets[i], high: offsets[i] + lags[i], at: float64(i)}
	}
	return out
}

func repeat(v int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func ramp(from, step int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = from + int64(i)*step
	}
	return out
}

var key = collector.PartitionKey{Cluster: "main", Group: "billing", Topic: "orders.v1", Partition: 3}

func mustEvaluator(t testing.TB, opts collector.EvaluatorOptions) *collector.Evaluator {
	t.Helper()
	e, err := collector.NewEvaluator(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func feed(e *collector.Evaluator, k collector.PartitionKey, os []obs) {
	for _, o := range os {
		e.Observe(k, o.committed, o.high, minute(o.at))
	}
}

func TestEvaluateStatuses(t *testing.T) {
	tests := []struct {
		name       string
		opts       collector.EvaluatorOptions
		obs        []obs
		now        float64 // minutes
		want       collector.Status
		reason     string // exact, or a prefix when it ends in "..."
		complete   bool
		currentLag int64
	}{
		{
			name: "incomplete window is OK", obs: series(ramp(100, 10, 3), ramp(50, 50, 3)), now: 3,
			want: collector.StatusOK, reason: "OK: window incomplete (3 of 10 commits)", currentLag: 150,
		},
		{
			name: "caught up is OK", obs: series(ramp(100, 10, 10), append(ramp(500, 10, 9), 0)), now: 9.5,
			want: collector.StatusOK, reason: "OK: lag 0", complete: true,
		},
		{
			name: "silent longer than the window spans is STOP",
			obs:  series(ramp(891, 1, 10), ramp(100, 20, 10)), now: 9 + 12,
			want:   collector.StatusStop,
			reason: "STOP: last commit at offset 900 was 12m ago, longer than the window's 9m span; lag 280", complete: true, currentLag: 280,
		},
		{
			name: "silent exactly the window's span is not yet STOP",
			obs:  series(ramp(891, 1, 10), ramp(100, 20, 10)), now: 9 + 9,
			want: collector.StatusWarn, reason: "WARN: lag rose from 100 to 280 over 10 commits in 9m", complete: true, currentLag: 280,
		},
		{
			name: "a zero lag in the window is OK",
			obs:  series(ramp(100, 10, 10), []int64{40, 30, 0, 10, 20, 30, 40, 50, 60, 70}), now: 9.5,
			want: collector.StatusOK, reason: "OK: lag was 0 at offset 120 at 12:02:00, within the window; now 70", complete: true, currentLag: 70,
		},
		{
			name: "offset going backwards is REWIND",
			obs:  series([]int64{5000, 5010, 5020, 5030, 5040, 4200, 4210, 4220, 4230, 4240}, []int64{10, 10, 10, 10, 10, 850, 845, 840, 835, 830}), now: 9.5,
			want: collector.StatusRewind, reason: "REWIND: offset went back from 5040 to 4200 at 12:05:00", complete: true, currentLag: 830,
		},
		{
			name: "same offset committed while lag grows is STALL",
			obs:  series(repeat(1842, 10), ramp(4310, 100, 10)), now: 9.5,
			want:   collector.StatusStall,
			reason: "STALL: offset 1842 unchanged for 10 commits over 9m while lag grew to 5210", complete: true, currentLag: 5210,
		},
		{
			name: "same offset, lag flat, is STALL too",
			obs:  series(repeat(1842, 10), repeat(7, 10)), now: 9.5,
			want: collector.StatusStall, reason: "STALL: offset 1842 unchanged for 10 commits over 9m while lag stayed at 7", complete: true, currentLag: 7,
		},
		{
			name: "lag never decreasing is WARN",
			obs:  series(ramp(100, 5, 10), []int64{120, 200, 200, 310, 400, 500, 620, 700, 850, 980}), now: 9.5,
			want: collector.StatusWarn, reason: "WARN: lag rose from 120 to 980 over 10 commits in 9m", complete: true, currentLag: 980,
		},
		{
			name: "lag constant while offsets move is WARN (Burrow)",
			obs:  series(ramp(100, 5, 10), repeat(50, 10)), now: 9.5,
			want: collector.StatusWarn, reason: "WARN: lag stuck at 50 over 10 commits in 9m while the offset moved from 100 to 145", complete: true, currentLag: 50,
		},
		{
			name: "lag going down at times is OK",
			obs:  series(ramp(100, 50, 10), []int64{900, 950, 700, 800, 850, 600, 700, 750, 800, 820}), now: 9.5,
			want: collector.StatusOK, reason: "OK: lag fell from 850 to 600 at 12:05:00 (offset 350); now 820", complete: true, currentLag: 820,
		},
		{
			name: "window of 3",
			opts: collector.EvaluatorOptions{Window: 3},
			obs:  series(repeat(10, 5), ramp(5, 1, 5)), now: 4.5,
			want: collector.StatusStall, reason: "STALL: offset 10 unchanged for 3 commits over 2m while lag grew to 9", complete: true, currentLag: 9,
		},

		// Known false positives.
		{
			// Nothing produced, nothing to consume: offsets rightly stand still.
			name: "idle slow topic is OK, not STALL",
			obs:  series(repeat(500, 10), repeat(0, 10)), now: 30,
			want: collector.StatusOK, reason: "OK: lag 0", complete: true,
		},
		{
			// A transactional producer's commit marker takes the last offset.
			name: "transaction marker lag 1 is STALL without allowed lag",
			obs:  series(repeat(500, 10), repeat(1, 10)), now: 9.5,
			want: collector.StatusStall, reason: "STALL: offset 500 unchanged for 10 commits over 9m while lag stayed at 1", complete: true, currentLag: 1,
		},
		{
			name: "transaction marker lag 1 is OK with allowed lag 1",
			opts: collector.EvaluatorOptions{AllowedLag: 1},
			obs:  series(repeat(500, 10), repeat(1, 10)), now: 9.5,
			want: collector.StatusOK, reason: "OK: lag 1, within the allowed 1", complete: true, currentLag: 1,
		},
		{
			name: "allowed lag also counts in the window",
			opts: collector.EvaluatorOptions{AllowedLag: 1},
			obs:  series(ramp(100, 10, 10), []int64{9, 1, 5, 6, 7, 8, 9, 10, 11, 12}), now: 9.5,
			want: collector.StatusOK, reason: "OK: lag was 1 at offset 110 at 12:01:00, within the window; now 12", complete: true, currentLag: 12,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEvaluator(t, tt.opts)
			feed(e, key, tt.obs)
			got := e.Evaluate(key, minute(tt.now))
			if got.Status != tt.want || got.Reason != tt.reason {
				t.Errorf("status = %s %q\nwant     %s %q", got.Status, got.Reason, tt.want, tt.reason)
			}
			if got.Complete != tt.complete || got.CurrentLag != tt.currentLag || got.Key != key {
				t.Errorf("complete, lag, key = %v, %d, %+v; want %v, %d, %+v", got.Complete, got.CurrentLag, got.Key, tt.complete, tt.currentLag, key)
			}
		})
	}
}

func TestEvaluateUnknownPartition(t *testing.T) {
	e := mustEvaluator(t, collector.EvaluatorOptions{})
	got := e.Evaluate(key, evalT0)
	if got.Status != collector.StatusOK || got.Complete || got.Reason != "OK: no commits observed yet" {
		t.Errorf("never observed = %+v, want OK, incomplete", got)
	}
}

func TestEvaluateRewindDuringDeployRecovers(t *testing.T) {
	// A deploy resets the group 300 offsets back; the consumer re-reads them
	// quickly. REWIND while the jump is in the window, OK once it has left.
	e := mustEvaluator(t, collector.EvaluatorOptions{})
	var statuses []collector.Status
	offset, high := int64(1000), int64(1100)
	for i := range 25 {
		switch {
		case i == 10:
			offset -= 300
		case i > 10:
			offset += 40 // catching up...
		default:
			offset += 10
		}
		high += 20 // ...while production continues
		e.Observe(key, offset, high, minute(float64(i)))
		statuses = append(statuses, e.Evaluate(key, minute(float64(i)+0.5)).Status)
	}
	for i, s := range statuses {
		want := collector.StatusOK
		switch {
		case i < 9: // window incomplete
		case i == 9: // lag constant at 110 over the first 10 commits
			want = collector.StatusWarn
		case i <= 18: // both sides of the jump (commits 9 and 10) are in the window
			want = collector.StatusRewind
		}
		if s != want {
			t.Errorf("commit %d: status %s, want %s (all: %v)", i, s, want, statuses)
		}
	}
	if got := e.Evaluate(key, minute(24.5)); !strings.HasPrefix(got.Reason, "OK: lag fell") {
		t.Errorf("after recovery: %q, want an OK saying lag fell", got.Reason)
	}
}

func TestObserveWindowRules(t *testing.T) {
	t.Run("min distance replaces the last commit", func(t *testing.T) {
		e := mustEvaluator(t, collector.EvaluatorOptions{MinDistance: 30 * time.Second})
		e.Observe(key, 100, 110, minute(0))
		e.Observe(key, 105, 115, minute(0.25)) // 15 s later: replaces
		e.Observe(key, 107, 120, minute(0.4))  // 9 s after that: replaces
		e.Observe(key, 120, 125, minute(1.4))  // 60 s later: appended
		got := e.Window(key)
		want := []collector.Commit{{Offset: 107, Lag: 13, Time: minute(0.4)}, {Offset: 120, Lag: 5, Time: minute(1.4)}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("window = %v, want %v", got, want)
		}
	})
	t.Run("same offset later counts as a commit", func(t *testing.T) {
		e := mustEvaluator(t, collector.EvaluatorOptions{})
		for i := range 4 {
			e.Observe(key, 100, 150, minute(float64(i)))
		}
		if got := len(e.Window(key)); got != 4 {
			t.Errorf("window holds %d commits, want 4", got)
		}
	})
	t.Run("same time replaces, older is dropped", func(t *testing.T) {
		e := mustEvaluator(t, collector.EvaluatorOptions{})
		e.Observe(key, 100, 150, minute(1))
		e.Observe(key, 101, 150, minute(1))
		e.Observe(key, 90, 150, minute(0.5))
		got := e.Window(key)
		if len(got) != 1 || got[0].Offset != 101 {
			t.Errorf("window = %v, want only offset 101", got)
		}
	})
	t.Run("no commit or unknown watermark is ignored", func(t *testing.T) {
		e := mustEvaluator(t, collector.EvaluatorOptions{})
		e.Observe(key, -1, 150, minute(0))
		e.Observe(key, 10, -1, minute(1))
		if e.Len() != 0 {
			t.Errorf("Len = %d, want 0", e.Len())
		}
	})
	t.Run("window slides", func(t *testing.T) {
		e := mustEvaluator(t, collector.EvaluatorOptions{Window: 3})
		feed(e, key, series(ramp(1, 1, 7), repeat(5, 7)))
		got := e.Window(key)
		if len(got) != 3 || got[0].Offset != 5 || got[2].Offset != 7 {
			t.Errorf("window = %v, want offsets 5..7", got)
		}
	})
}

func TestEvaluatorObserveSnapshotTellsStopFromStall(t *testing.T) {
	// Unchanged offsets: with a live member they are repeated commits
	// (STALL); without one nobody is committing (STOP).
	e := mustEvaluator(t, collector.EvaluatorOptions{})
	snap := func(m float64, member string, committed, high int64) collector.ClusterSnapshot {
		return collector.ClusterSnapshot{Cluster: "main", TakenAt: minute(m), Groups: []collector.Group{
			{Name: "g-" + member, Partitions: []collector.GroupPartition{{Topic: "t", Partition: 0, Committed: committed, High: high, Member: member}}},
		}}
	}
	for i := range 10 {
		e.ObserveSnapshot(snap(float64(i), "live", 50, int64(100+10*i)))
		e.ObserveSnapshot(snap(float64(i), "", int64(min(i, 5)), int64(100+10*i))) // stops committing at 5
	}
	live := collector.PartitionKey{Cluster: "main", Group: "g-live", Topic: "t"}
	gone := collector.PartitionKey{Cluster: "main", Group: "g-", Topic: "t"}
	if got := e.Evaluate(live, minute(9.5)); got.Status != collector.StatusStall {
		t.Errorf("live member, same offset: %s %q, want STALL", got.Status, got.Reason)
	}
	if n := len(e.Window(gone)); n != 6 {
		t.Errorf("memberless window holds %d commits, want 6 (repeats not counted)", n)
	}
	if got := e.Evaluate(gone, minute(9.5)); got.CurrentLag != 185 {
		t.Errorf("memberless current lag = %d, want 185 (the latest watermark)", got.CurrentLag)
	}
}

// TestEvaluatorRecentLagZero is Burrow #303 as the console meets it: a
// memberless consumer (assign-and-commit, committing on checkpoints) on a
// quiet topic is caught up for an hour, so its window's last commit grows
// old; the first message after the idle spell must not make it STOP (its
// group ERR) while the last polls found it caught up — also after a
// restart, from the stored watermarks — and it is STOP once a whole
// window of polls has seen the message unread.
func TestEvaluatorRecentLagZero(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "console.db")
	clock := func() time.Time { return minute(70) } // for Flush's forgetting
	e := mustEvaluator(t, collector.EvaluatorOptions{Store: mustWindowStore(t, mustOpenDB(t, path)), Now: clock})
	k := collector.PartitionKey{Cluster: "main", Group: "checkpoints", Topic: "t"}
	poll := func(e *collector.Evaluator, m float64, committed, high int64) {
		e.ObserveSnapshot(collector.ClusterSnapshot{Cluster: "main", TakenAt: minute(m), Groups: []collector.Group{
			{Name: k.Group, Partitions: []collector.GroupPartition{{Topic: k.Topic, Committed: committed, High: high}}},
		}})
	}
	for i := range 10 { // ten commits, each reading everything there was
		poll(e, float64(i), int64(11+i), int64(11+i))
	}
	for m := 10; m < 70; m++ { // an hour with nothing produced: no commits
		poll(e, float64(m), 20, 20)
	}
	if got := e.Evaluate(k, minute(69.5)); got.Status != collector.StatusOK || got.Reason != "OK: lag 0" {
		t.Fatalf("idle and caught up: %s %q, want OK", got.Status, got.Reason)
	}
	poll(e, 70, 20, 21) // one message arrives
	want := "OK: last commit at offset 20 was 1h1m ago, but a recent poll found it caught up (high watermark 20); now 1"
	if got := e.Evaluate(k, minute(70)); got.Status != collector.StatusOK || got.Reason != want {
		t.Errorf("first message after an idle hour: %s %q\nwant OK %q", got.Status, got.Reason, want)
	}
	if g := e.EvaluateGroup("main", k.Group, nil, minute(70)); g.Status != collector.StatusOK {
		t.Errorf("group: %s %q, want OK", g.Status, g.Reason)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// A restart keeps the recent polls' watermarks with the window.
	e2 := mustEvaluator(t, collector.EvaluatorOptions{Store: mustWindowStore(t, mustOpenDB(t, path)), Now: clock})
	if err := e2.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e2.Evaluate(k, minute(70)); got.Status != collector.StatusOK || got.Reason != want {
		t.Errorf("after a restart: %s %q, want OK %q", got.Status, got.Reason, want)
	}

	// Nobody commits the message: OK while one of the last ten polls
	// saw the consumer caught up, STOP from the tenth poll after it.
	for m := 71; m <= 80; m++ {
		poll(e2, float64(m), 20, 21)
		got := e2.Evaluate(k, minute(float64(m)))
		if wantStop := m >= 79; (got.Status == collector.StatusStop) != wantStop {
			t.Errorf("minute %d: %s %q, want STOP %v", m, got.Status, got.Reason, wantStop)
		}
	}
}

func TestEvaluateGroup(t *testing.T) {
	e := mustEvaluator(t, collector.EvaluatorOptions{})
	k := func(topic string, p int32) collector.PartitionKey {
		return collector.PartitionKey{Cluster: "main", Group: "billing", Topic: topic, Partition: p}
	}
	feed(e, k("orders.v1", 0), series(ramp(100, 50, 10), []int64{900, 950, 700, 800, 850, 600, 700, 750, 800, 820})) // OK
	feed(e, k("orders.v1", 1), series(ramp(100, 5, 10), ramp(100, 10, 10)))                                          // WARN, lag 190
	feed(e, k("orders.v1", 2), series(repeat(1842, 10), ramp(4310, 100, 10)))                                        // STALL
	feed(e, k("refunds.v1", 0), series(ramp(1, 1, 4), repeat(3, 4)))                                                 // incomplete
	feed(e, collector.PartitionKey{Cluster: "main", Group: "other", Topic: "orders.v1"}, series(repeat(1, 10), ramp(5, 5, 10)))

	now := minute(9.5)
	got := e.EvaluateGroup("main", "billing", nil, now)
	if got.Status != collector.StatusErr {
		t.Errorf("group status = %s, want ERR", got.Status)
	}
	if want := "orders.v1/2: STALL: offset 1842 unchanged for 10 commits over 9m while lag grew to 5210"; got.Reason != want {
		t.Errorf("reason = %q\nwant     %q", got.Reason, want)
	}
	if got.TotalLag != 820+190+5210+3 {
		t.Errorf("total lag = %d, want %d", got.TotalLag, 820+190+5210+3)
	}
	if got.MaxLag != (collector.PartitionLag{Key: k("orders.v1", 2), Lag: 5210}) {
		t.Errorf("max lag = %+v", got.MaxLag)
	}
	if got.Complete != 0.75 {
		t.Errorf("complete = %v, want 0.75", got.Complete)
	}
	var order []string
	for _, p := range got.Partitions {
		order = append(order, fmt.Sprintf("%s/%d=%s", p.Key.Topic, p.Key.Partition, p.Status))
	}
	if want := "[orders.v1/0=OK orders.v1/1=WARN orders.v1/2=STALL refunds.v1/0=OK]"; fmt.Sprint(order) != want {
		t.Errorf("partitions = %v, want %s", order, want)
	}

	// The caller's partition list decides membership: without the stalled
	// partition the group is WARN.
	warn := e.EvaluateGroup("main", "billing", []collector.PartitionKey{k("orders.v1", 0), k("orders.v1", 1)}, now)
	if warn.Status != collector.StatusWarn || !strings.HasPrefix(warn.Reason, "orders.v1/1: WARN: lag rose from 100 to 190") {
		t.Errorf("two partitions: %s %q, want WARN from orders.v1/1", warn.Status, warn.Reason)
	}
	if empty := e.EvaluateGroup("main", "nobody", nil, now); empty.Status != collector.StatusOK || empty.Partitions != nil {
		t.Errorf("unknown group = %+v, want OK with no partitions", empty)
	}
}

func TestEvaluatorForgetsUnseenPartitions(t *testing.T) {
	now := evalT0
	e := mustEvaluator(t, collector.EvaluatorOptions{ForgetAfter: time.Hour, Now: func() time.Time { return now }})
	old := collector.PartitionKey{Cluster: "main", Group: "gone", Topic: "t"}
	e.Observe(old, 1, 2, evalT0)
	e.Observe(key, 1, 2, evalT0.Add(90*time.Minute))
	now = evalT0.Add(90 * time.Minute)
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.Len() != 1 || e.Window(old) != nil || e.Window(key) == nil {
		t.Errorf("after flush: Len %d, old window %v; want only the recent partition kept", e.Len(), e.Window(old))
	}
}

func TestNewEvaluatorRejectsBadOptions(t *testing.T) {
	for _, o := range []collector.EvaluatorOptions{
		{Window: 1}, {Window: -3}, {MinDistance: -time.Second}, {AllowedLag: -1}, {ForgetAfter: -time.Hour},
	} {
		if _, err := collector.NewEvaluator(o); err == nil {
			t.Errorf("NewEvaluator(%+v) succeeded, want an error", o)
		}
	}
}

func TestEvaluatorStatusEncodings(t *testing.T) {
	tests := []struct {
		s        collector.Status
		name     string
		severity int
		metric   float64
	}{
		{collector.StatusOK, "OK", 0, 0},
		{collector.StatusWarn, "WARN", 1, 1},
		{collector.StatusStop, "STOP", 2, 3},
		{collector.StatusStall, "STALL", 3, 4},
		{collector.StatusRewind, "REWIND", 4, 5},
		{collector.StatusErr, "ERR", 2, 2},
	}
	for _, tt := range tests {
		if tt.s.String() != tt.name || tt.s.Severity() != tt.severity || tt.s.MetricValue() != tt.metric {
			t.Errorf("%s: severity %d metric %v, want %s %d %v", tt.s, tt.s.Severity(), tt.s.MetricValue(), tt.name, tt.severity, tt.metric)
		}
		js, err := json.Marshal(tt.s)
		if err != nil || string(js) != `"`+tt.name+`"` {
			t.Errorf("json %s = %s, %v", tt.name, js, err)
		}
		var back collector.Status
		if err := json.Unmarshal(js, &back); err != nil || back != tt.s {
			t.Errorf("json round trip of %s = %s, %v", tt.name, back, err)
		}
	}
}

// TestEvaluatorAgainstKafka drives four consumers on kfake through 25
// collection cycles, one injected minute apart, observing each cycle through
// KafkaSource.Snapshot as the poller does.
func TestEvaluatorAgainstKafka(t *testing.T) {
	const (
		okTopic, slowTopic, stopTopic, stuckTopic = "lag.caughtup.v1", "lag.slow.v1", "lag.stopped.v1", "lag.stuck.v1"
		perCycle                                  = 5
	)
	c := newCluster(t, 1, okTopic, slowTopic, stopTopic, stuckTopic)
	cl := newClient(t, c.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The stuck consumer is a real group member: it reads the first batch,
	// commits, and then keeps committing that same offset while production
	// continues.
	produce(t, cl, stuckTopic, 1, perCycle)
	stuck := newClient(t, c.ListenAddrs(), kgo.ConsumerGroup("lag-stuck"), kgo.ConsumeTopics(stuckTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	for got := 0; got < perCycle; {
		fs := stuck.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("stuck consumer read %d of %d: %v", got, perCycle, err)
		}
		got += fs.NumRecords()
	}
	if err := stuck.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	stuckAt := map[string]map[int32]kgo.EpochOffset{stuckTopic: {0: {Epoch: -1, Offset: perCycle}}}

	var mu sync.Mutex
	now := evalT0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := mustEvaluator(t, collector.EvaluatorOptions{Now: clock})
	src, err := collector.NewKafkaSource("main", cl, collector.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	commit := func(group, topic string, offset int64) {
		t.Helper()
		var offs kadm.Offsets
		offs.AddOffset(topic, 0, offset, -1)
		if err := adm.CommitAllOffsets(ctx, group, offs); err != nil {
			t.Fatalf("commit %s: %v", group, err)
		}
	}

	const cycles = 25
	var last collector.ClusterSnapshot
	for i := range cycles {
		produce(t, cl, okTopic, 1, perCycle)
		produce(t, cl, slowTopic, 1, perCycle)
		produce(t, cl, stopTopic, 1, perCycle)
		if i > 0 {
			produce(t, cl, stuckTopic, 1, perCycle)
		}
		high := int64((i + 1) * perCycle)
		commit("lag-caughtup", okTopic, high)     // reads everything
		commit("lag-slow", slowTopic, int64(i+1)) // 1 of every 5
		if i < 12 {
			commit("lag-stopped", stopTopic, int64(3*(i+1))) // then shuts down
		}
		var cerr error
		stuck.CommitOffsetsSync(ctx, stuckAt, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) { cerr = err })
		if cerr != nil {
			t.Fatalf("stuck consumer commit: %v", cerr)
		}

		snap, err := src.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		snap.TakenAt = clock()
		e.ObserveSnapshot(snap)
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		last = snap
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
	}

	if g, _ := last.Group("lag-stuck"); len(g.Partitions) != 1 || g.Partitions[0].Member == "" {
		t.Fatalf("stuck group %+v: want its partition assigned to a live member", g)
	}
	at := clock()
	tests := []struct {
		group, topic    string
		want, groupWant collector.Status
		reason          string
	}{
		{"lag-caughtup", okTopic, collector.StatusOK, collector.StatusOK, "OK: lag 0"},
		{"lag-slow", slowTopic, collector.StatusWarn, collector.StatusWarn, "WARN: lag rose from 64 to 100 over 10 commits in 9m"},
		{"lag-stopped", stopTopic, collector.StatusStop, collector.StatusErr, "STOP: last commit at offset 36 was 14m ago, longer than the window's 9m span; lag 89"},
		{"lag-stuck", stuckTopic, collector.StatusStall, collector.StatusErr, "STALL: offset 5 unchanged for 10 commits over 9m while lag grew to 120"},
	}
	for _, tt := range tests {
		k := collector.PartitionKey{Cluster: "main", Group: tt.group, Topic: tt.topic}
		ps := e.Evaluate(k, at)
		if ps.Status != tt.want || ps.Reason != tt.reason {
			t.Errorf("%s: %s %q\nwant  %s %q", tt.group, ps.Status, ps.Reason, tt.want, tt.reason)
		}
		gs := e.EvaluateGroup("main", tt.group, nil, at)
		if gs.Status != tt.groupWant || gs.Reason != tt.topic+"/0: "+ps.Reason {
			t.Errorf("%s group: %s %q, want %s", tt.group, gs.Status, gs.Reason, tt.groupWant)
		}
	}
}

// BenchmarkEvaluateCycle is one collection cycle's evaluator work at the
// issue's benchmark size, 200 groups each reading its own 10-partition topic
// (2,000 windows), and at ten times that: Observe every partition, then
// EvaluateGroup every group. Windows are full and the partitions spread
// over the statuses, so every rule runs.
func BenchmarkEvaluateCycle(b *testing.B) {
	for _, size := range []struct{ groups, partitions int }{{200, 10}, {200, 100}} {
		b.Run(fmt.Sprintf("%dx%d", size.groups, size.partitions), func(b *testing.B) {
			keys := benchKeys(size.groups, size.partitions)
			byGroup := make([][]collector.PartitionKey, size.groups)
			for g := range byGroup {
				byGroup[g] = keys[g*size.partitions : (g+1)*size.partitions]
			}
			e := mustEvaluator(b, collector.EvaluatorOptions{})
			cycle := 0
			run := func() {
				at := minute(float64(cycle))
				for i, k := range keys {
					var committed, high int64
					switch i % 4 {
					case 0: // caught up
						committed, high = int64(cycle*10), int64(cycle*10)
					case 1: // slow
						committed, high = int64(cycle*5), int64(cycle*10)
					case 2: // stuck
						committed, high = 7, int64(cycle*10)
					default: // lag going up and down
						committed, high = int64(cycle*10), int64(cycle*10+(cycle%3)*4)
					}
					e.Observe(k, committed, high, at)
				}
				now := at.Add(30 * time.Second)
				for g, parts := range byGroup {
					if gs := e.EvaluateGroup("main", keys[g*size.partitions].Group, parts, now); len(gs.Partitions) != len(parts) {
						b.Fatalf("group %d evaluated %d partitions", g, len(gs.Partitions))
					}
				}
				cycle++
			}
			for range collector.DefaultWindow {
				run()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				run()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/partition")
		})
	}
}
