package tsdb

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/delivery/deliverytest"
)

const crashHelperEnv = "TSDB_CRASH_HELPER_DIR"

// TestKillDuringAppends kills a real process that is appending (and
// sealing windows) as fast as it can, then opens what it left behind:
// every batch whose Append had returned must be there, and the store must
// open and keep working.
func TestKillDuringAppends(t *testing.T) {
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		crashHelper(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringAppends$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	committed := 0
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(60 * time.Second)
	// Past 400 batches the first window (360 batches) has been sealed.
	for committed < 450 && time.Now().Before(deadline) && sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
			committed, _ = strconv.Atoi(n)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() //nolint:errcheck // killed on purpose
	if committed < 450 {
		t.Fatalf("helper committed only %d batches before the deadline", committed)
	}

	now := t0.Add(time.Duration(committed+100) * 10 * time.Second)
	s := mustOpen(t, Options{Dir: dir, Now: func() time.Time { return now }})
	got := mustQuery(t, s, Q{Name: "switchyard_consumer_group_lag", Matchers: []Matcher{{"group", MatchEqual, "g7"}}, From: t0, To: now, Step: 10 * time.Second})
	if len(got) != 1 {
		t.Fatalf("after kill: %d series, want 1", len(got))
	}
	pts := got[0].Points
	if len(pts) < committed {
		t.Fatalf("after kill: %d points, want at least the %d batches whose Append returned", len(pts), committed)
	}
	for i, p := range pts {
		if p.V != float64(i) || !p.T.Equal(t0.Add(time.Duration(i)*10*time.Second)) {
			t.Fatalf("point %d = %v %v, want %v %d", i, p.T, p.V, t0.Add(time.Duration(i)*10*time.Second), i)
		}
	}
	if s.SeriesCount() != 20 {
		t.Errorf("series = %d, want 20", s.SeriesCount())
	}
	if err := s.Append(context.Background(), []Sample{{Series: lag("g7"), T: now, V: 1}}); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
}

func crashHelper(dir string) {
	c := deliverytest.NewClock(t0)
	s, err := Open(context.Background(), Options{Dir: dir, Now: c.Now, Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper open:", err)
		os.Exit(2)
	}
	var series []Labels
	for i := range 20 {
		series = append(series, lag(fmt.Sprintf("g%d", i)))
	}
	for cycle := 0; ; cycle++ {
		ts := t0.Add(time.Duration(cycle) * 10 * time.Second)
		c.Set(ts)
		batch := make([]Sample, len(series))
		for i, ls := range series {
			batch[i] = Sample{Series: ls, T: ts, V: float64(cycle)}
		}
		if err := s.Append(context.Background(), batch); err != nil {
			fmt.Fprintln(os.Stderr, "helper append:", err)
			os.Exit(2)
		}
		fmt.Printf("committed %d\n", cycle+1)
	}
}

const compactHelperEnv = "TSDB_COMPACT_HELPER_DIR"

// TestKillDuringCompaction kills a real process in the middle of
// compacting 1-minute rollups to 5-minute ones: the store it leaves reads
// the same at 5 minutes, and the next Maintain finishes the work.
func TestKillDuringCompaction(t *testing.T) {
	if dir := os.Getenv(compactHelperEnv); dir != "" {
		compactHelper(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	dir := t.TempDir()
	c := deliverytest.NewClock(t0)
	s := mustOpen(t, Options{Dir: dir, Now: c.Now})
	end := t0.Add(4 * 24 * time.Hour)
	fillMinutes(t, s, c, coarseSeries(), t0, end)
	from, to := t0, end.Add(-time.Minute)
	var want [][]Series
	for _, q := range coarseQueries(from, to) {
		want = append(want, mustQuery(t, s, q))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringCompaction$", "-test.count=1")
	cmd.Env = append(os.Environ(), compactHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	batches := 0
	for batches < 2 && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "compacted ") {
			batches++
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() //nolint:errcheck // killed on purpose
	if batches < 2 {
		t.Fatalf("helper compacted %d batches before it ended", batches)
	}

	s = mustOpen(t, Options{Dir: dir, Now: c.Now})
	cut := s.coarseCut(c.Now().UnixMilli())
	coarse := countRows(t, s, `SELECT COUNT(DISTINCT series_id) FROM coarse_chunks`)
	left := countRows(t, s, `SELECT COUNT(DISTINCT series_id) FROM rollup_chunks WHERE start < ?`, cut)
	if coarse == 0 || left == 0 {
		t.Fatalf("after the kill %d series are compacted and %d not; want a compaction cut short", coarse, left)
	}
	check := func(when string) {
		for i, q := range coarseQueries(from, to) {
			if err := closePoints(mustQuery(t, s, q), want[i], coarseTol(q)); err != nil {
				t.Errorf("%s, step %s agg %s: %v", when, q.Step, q.Agg, err)
			}
		}
	}
	check("after the kill")
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, `SELECT COUNT(*) FROM rollup_chunks WHERE start < ?`, cut); n != 0 {
		t.Errorf("%d rollup chunks left to compact after Maintain", n)
	}
	check("after Maintain")
}

// compactHelper compacts the store in dir one series per transaction,
// saying so after each, slowly enough to be killed half way.
func compactHelper(dir string) {
	now := t0.Add(4 * 24 * time.Hour)
	s, err := Open(context.Background(), Options{Dir: dir, Now: func() time.Time { return now }, Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper open:", err)
		os.Exit(2)
	}
	s.compactBatch = 1
	done := 0
	s.compacted = func(n int) {
		done += n
		fmt.Printf("compacted %d\n", done)
		time.Sleep(500 * time.Millisecond) // the parent kills during this
	}
	if err := s.Maintain(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "helper maintain:", err)
		os.Exit(2)
	}
	os.Exit(0)
}
