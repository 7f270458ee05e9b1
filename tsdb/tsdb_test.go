package tsdb

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustOpen(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustAppend(t testing.TB, s *Store, samples []Sample) {
	t.Helper()
	if err := s.Append(context.Background(), samples); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func mustQuery(t testing.TB, s *Store, q Q) []Series {
	t.Helper()
	got, err := s.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("Query(%+v): %v", q, err)
	}
	return got
}

func lag(group string) Labels {
	return L(MetricName, "switchyard_consumer_group_lag", "cluster", "demo", "group", group)
}

// fill appends one sample per series every 10 s over [from, to), value
// f(series index, cycle), advancing the clock to each cycle's time.
func fill(t testing.TB, s *Store, c *deliverytest.Clock, series []Labels, from, to time.Time, f func(i, cycle int) float64) {
	t.Helper()
	cycle := 0
	for ts := from; ts.Before(to); ts = ts.Add(10 * time.Second) {
		c.Set(ts)
		batch := make([]Sample, len(series))
		for i, ls := range series {
			batch[i] = Sample{Series: ls, T: ts, V: f(i, cycle)}
		}
		mustAppend(t, s, batch)
		cycle++
	}
}

func groupsOf(ss []Series) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Labels.Get("group"))
	}
	return out
}

func TestAppendQueryMatchers(t *testing.T) {
	c := deliverytest.NewClock(t0)
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now})
	series := []Labels{lag("billing"), lag("billing-retry"), lag("shipping"), L(MetricName, "switchyard_consumer_group_lag", "cluster", "prod", "group", "billing")}
	fill(t, s, c, series, t0, t0.Add(time.Minute), func(i, cycle int) float64 { return float64(i*100 + cycle) })

	cases := []struct {
		name     string
		matchers []Matcher
		want     []string
	}{
		{"no matcher", nil, []string{"billing", "billing-retry", "shipping", "billing"}},
		{"equal", []Matcher{{"cluster", MatchEqual, "demo"}, {"group", MatchEqual, "billing"}}, []string{"billing"}},
		{"not equal", []Matcher{{"cluster", MatchEqual, "demo"}, {"group", MatchNotEqual, "billing"}}, []string{"billing-retry", "shipping"}},
		{"regexp is anchored", []Matcher{{"cluster", MatchEqual, "demo"}, {"group", MatchRegexp, "bill.*"}}, []string{"billing", "billing-retry"}},
		{"regexp anchored at end", []Matcher{{"group", MatchRegexp, "billing"}}, []string{"billing", "billing"}},
		{"not regexp", []Matcher{{"group", MatchNotRegexp, "bill.*"}}, []string{"shipping"}},
		{"missing label equals empty", []Matcher{{"topic", MatchEqual, ""}, {"cluster", MatchEqual, "prod"}}, []string{"billing"}},
		{"no match", []Matcher{{"cluster", MatchEqual, "nope"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := mustQuery(t, s, Q{Name: "switchyard_consumer_group_lag", Matchers: tc.matchers, From: t0, To: t0.Add(time.Minute), Step: 10 * time.Second})
			if g := groupsOf(got); !slices.Equal(g, tc.want) && !(len(g) == 0 && len(tc.want) == 0) {
				t.Fatalf("groups = %v, want %v", g, tc.want)
			}
			if got == nil {
				t.Fatal("no match gave nil, want an empty slice")
			}
		})
	}

	got := mustQuery(t, s, Q{Name: "switchyard_consumer_group_lag", Matchers: []Matcher{{"cluster", MatchEqual, "demo"}, {"group", MatchEqual, "shipping"}}, From: t0, To: t0.Add(time.Minute), Step: 10 * time.Second})
	if len(got) != 1 || len(got[0].Points) != 6 {
		t.Fatalf("got %+v, want one series with 6 points", got)
	}
	for i, p := range got[0].Points {
		if want := t0.Add(time.Duration(i) * 10 * time.Second); !p.T.Equal(want) || p.V != float64(200+i) {
			t.Errorf("point %d = %v %v, want %v %v", i, p.T, p.V, want, 200+i)
		}
	}
	if got[0].Rollup {
		t.Error("a 10s step within raw retention was served from rollups")
	}
	if got := mustQuery(t, s, Q{Name: "no_such_metric", From: t0, To: t0.Add(time.Minute), Step: time.Second}); len(got) != 0 {
		t.Errorf("unknown metric gave %d series", len(got))
	}
}

func TestStepAggregations(t *testing.T) {
	c := deliverytest.NewClock(t0)
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now})
	ls := lag("billing")
	// Minute 0: 1..6; minute 1: 10, 20, 30, 40, 50, 60 (then now = 1m50s).
	vals := []float64{1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60}
	fill(t, s, c, []Labels{ls}, t0, t0.Add(2*time.Minute), func(_, cycle int) float64 { return vals[cycle] })
	// The series is sealed into a chunk and rollup after its window, so
	// the same aggregations are checked from the head and from disk.
	for _, phase := range []string{"head", "sealed"} {
		if phase == "sealed" {
			c.Set(t0.Add(2 * time.Hour))
			if err := s.Maintain(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Sealed != 1 || st.HeadBytes != 0 {
				t.Fatalf("after Maintain: %+v, want one sealed chunk and no head", st)
			}
		}
		for _, tc := range []struct {
			agg        Agg
			step       time.Duration
			want       []float64
			wantRollup bool
		}{
			{"", time.Minute, []float64{6, 60}, true},
			{AggLast, time.Minute, []float64{6, 60}, true},
			{AggAvg, time.Minute, []float64{3.5, 35}, true},
			{AggMin, time.Minute, []float64{1, 10}, true},
			{AggMax, time.Minute, []float64{6, 60}, true},
			{AggAvg, 2 * time.Minute, []float64{(21 + 210) / 12.0}, true},
			{AggLast, 30 * time.Second, []float64{3, 6, 30, 60}, false},
			{AggAvg, 30 * time.Second, []float64{2, 5, 20, 50}, false},
			{AggMin, 30 * time.Second, []float64{1, 4, 10, 40}, false},
			{AggMax, 30 * time.Second, []float64{3, 6, 30, 60}, false},
		} {
			t.Run(fmt.Sprintf("%s/%s/%s", phase, tc.agg, tc.step), func(t *testing.T) {
				got := mustQuery(t, s, Q{Name: ls.Name(), From: t0, To: t0.Add(2*time.Minute - time.Millisecond), Step: tc.step, Agg: tc.agg})
				if len(got) != 1 {
					t.Fatalf("got %d series, want 1", len(got))
				}
				var vs []float64
				for i, p := range got[0].Points {
					vs = append(vs, p.V)
					if want := t0.Add(time.Duration(i) * tc.step); !p.T.Equal(want) {
						t.Errorf("bucket %d starts %v, want %v", i, p.T, want)
					}
				}
				if !slices.Equal(vs, tc.want) {
					t.Errorf("values = %v, want %v", vs, tc.want)
				}
				if got[0].Rollup != tc.wantRollup {
					t.Errorf("Rollup = %v, want %v", got[0].Rollup, tc.wantRollup)
				}
			})
		}
	}
}

func TestRawVersusRollupAndRetention(t *testing.T) {
	c := deliverytest.NewClock(t0)
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir, Now: c.Now, RawRetention: 3 * time.Hour, RollupRetention: 6 * time.Hour})
	ls := lag("billing")
	fill(t, s, c, []Labels{ls}, t0, t0.Add(time.Hour), func(_, cycle int) float64 { return float64(cycle) })
	q := Q{Name: ls.Name(), From: t0, To: t0.Add(time.Hour), Step: 10 * time.Second}

	count := func(table string) int {
		t.Helper()
		var n int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Within raw retention: a 10 s step gets raw points.
	c.Set(t0.Add(2 * time.Hour))
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := mustQuery(t, s, q)
	if len(got) != 1 || got[0].Rollup || len(got[0].Points) != 360 {
		t.Fatalf("within raw retention: %d series, rollup %v, %d points; want raw 360", len(got), got[0].Rollup, len(got[0].Points))
	}
	if count("raw_chunks") != 1 || count("rollup_chunks") != 1 || count("head_log") != 0 {
		t.Fatalf("chunks raw=%d rollup=%d log=%d, want 1 1 0", count("raw_chunks"), count("rollup_chunks"), count("head_log"))
	}

	// Past raw retention: raw chunk deleted, the same query is answered
	// from rollups, one point per minute.
	c.Set(t0.Add(4*time.Hour + time.Minute))
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count("raw_chunks"); n != 0 {
		t.Fatalf("raw chunks after raw retention = %d, want 0", n)
	}
	got = mustQuery(t, s, q)
	if len(got) != 1 || !got[0].Rollup || len(got[0].Points) != 60 {
		t.Fatalf("past raw retention: %+v, want 60 rollup points", got)
	}
	if p := got[0].Points[59]; !p.T.Equal(t0.Add(59*time.Minute)) || p.V != 359 {
		t.Errorf("last rollup point = %v %v, want %v 359", p.T, p.V, t0.Add(59*time.Minute))
	}
	if s.SeriesCount() != 1 {
		t.Errorf("series count = %d, want 1 while rollups remain", s.SeriesCount())
	}

	// Past rollup retention: everything is gone, including the series.
	c.Set(t0.Add(7*time.Hour + time.Minute))
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, s, q); len(got) != 0 {
		t.Fatalf("past rollup retention: %d series, want none", len(got))
	}
	if count("rollup_chunks") != 0 || count("series") != 0 || s.SeriesCount() != 0 {
		t.Fatalf("rollups=%d series rows=%d SeriesCount=%d, want all 0", count("rollup_chunks"), count("series"), s.SeriesCount())
	}
}

func TestRollupMatchesRaw(t *testing.T) {
	// Served from rollups or raw points, a 1m-aligned query must agree.
	c := deliverytest.NewClock(t0)
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now})
	ls := lag("billing")
	fill(t, s, c, []Labels{ls}, t0, t0.Add(90*time.Minute), func(_, cycle int) float64 { return float64((cycle * 7919) % 1000) })
	for _, ag := range []Agg{AggLast, AggAvg, AggMin, AggMax} {
		roll := mustQuery(t, s, Q{Name: ls.Name(), From: t0, To: t0.Add(90 * time.Minute), Step: time.Minute, Agg: ag})
		// 59s is not a multiple of the rollup step: raw, bucketed by hand.
		raw := mustQuery(t, s, Q{Name: ls.Name(), From: t0, To: t0.Add(90 * time.Minute), Step: 10 * time.Second, Agg: AggLast})
		if !roll[0].Rollup || raw[0].Rollup {
			t.Fatalf("rollup flags %v %v", roll[0].Rollup, raw[0].Rollup)
		}
		var want []Point
		for i := 0; i < len(raw[0].Points); i += 6 {
			var a agg
			for _, p := range raw[0].Points[i : i+6] {
				a.addPoint(p.V)
			}
			v := map[Agg]float64{AggLast: a.last, AggAvg: a.sum / a.count, AggMin: a.min, AggMax: a.max}[ag]
			want = append(want, Point{T: raw[0].Points[i].T, V: v})
		}
		if !slices.Equal(roll[0].Points, want) {
			t.Errorf("%s: rollup points differ from raw: got %d points, want %d", ag, len(roll[0].Points), len(want))
		}
	}
}

func TestRestartKeepsPoints(t *testing.T) {
	c := deliverytest.NewClock(t0)
	dir := t.TempDir()
	opts := Options{Dir: dir, Now: c.Now, Logger: quietLogger()}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	series := []Labels{lag("a"), lag("b")}
	// 90 minutes: one sealed window and one open head.
	fill(t, s, c, series, t0, t0.Add(90*time.Minute), func(i, cycle int) float64 { return float64(i*1000 + cycle) })
	q := Q{Name: "switchyard_consumer_group_lag", From: t0, To: t0.Add(90 * time.Minute), Step: 10 * time.Second}
	before := mustQuery(t, s, q)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, opts)
	after := mustQuery(t, s2, q)
	if len(after) != 2 || len(after[0].Points) != 540 || !seriesEqual(before, after) {
		t.Fatalf("after reopen: %d series (%d points), want the 2 × 540 from before", len(after), len(after[0].Points))
	}
	// Appends continue where they stopped; the head window is not lost.
	c.Set(t0.Add(90 * time.Minute))
	mustAppend(t, s2, []Sample{{Series: lag("a"), T: c.Now(), V: -1}})
	got := mustQuery(t, s2, Q{Name: "switchyard_consumer_group_lag", Matchers: []Matcher{{"group", MatchEqual, "a"}}, From: t0, To: c.Now(), Step: 10 * time.Second})
	if n := len(got[0].Points); n != 541 || got[0].Points[n-1].V != -1 {
		t.Fatalf("after append on reopened store: %d points, last %v; want 541, -1", n, got[0].Points[n-1].V)
	}
}

func seriesEqual(a, b []Series) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Labels.String() != b[i].Labels.String() || !slices.Equal(a[i].Points, b[i].Points) {
			return false
		}
	}
	return true
}

// copyDir copies the store's files as they are on disk right now, as a
// crash would leave them: the database, its WAL and shared-memory index.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func TestCrashWithoutCloseLosesNothingAppended(t *testing.T) {
	c := deliverytest.NewClock(t0)
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir, Now: c.Now})
	fill(t, s, c, []Labels{lag("a"), lag("b")}, t0, t0.Add(70*time.Minute), func(i, cycle int) float64 { return float64(cycle) })
	q := Q{Name: "switchyard_consumer_group_lag", From: t0, To: t0.Add(70 * time.Minute), Step: 10 * time.Second}
	want := mustQuery(t, s, q)

	// The first store stays open (never closed cleanly) while a second
	// opens a copy of its files.
	crashed := copyDir(t, dir)
	if _, err := os.Stat(filepath.Join(crashed, FileName+"-wal")); err != nil {
		t.Fatalf("expected an un-checkpointed WAL in the copy: %v", err)
	}
	s2 := mustOpen(t, Options{Dir: crashed, Now: c.Now})
	got := mustQuery(t, s2, q)
	if !seriesEqual(got, want) {
		t.Fatalf("after crash: %d series, want %d with the same points", len(got), len(want))
	}
}

func TestTornWALWriteIsIgnored(t *testing.T) {
	c := deliverytest.NewClock(t0)
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir, Now: c.Now})
	fill(t, s, c, []Labels{lag("a")}, t0, t0.Add(10*time.Minute), func(_, cycle int) float64 { return float64(cycle) })
	crashed := copyDir(t, dir)
	wal := filepath.Join(crashed, FileName+"-wal")
	fi, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of writing the last frame.
	if err := os.Truncate(wal, fi.Size()-100); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(crashed, FileName+"-shm"))
	s2 := mustOpen(t, Options{Dir: crashed, Now: c.Now})
	got := mustQuery(t, s2, Q{Name: "switchyard_consumer_group_lag", From: t0, To: t0.Add(10 * time.Minute), Step: 10 * time.Second})
	if len(got) != 1 || len(got[0].Points) < 55 || len(got[0].Points) > 60 {
		t.Fatalf("after torn write: %+v; want the series with at most the last batch missing", got)
	}
	mustAppend(t, s2, []Sample{{Series: lag("a"), T: t0.Add(10 * time.Minute), V: 1}})
}

func TestCardinalityCap(t *testing.T) {
	c := deliverytest.NewClock(t0)
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now, MaxSeries: 3})
	var batch []Sample
	for _, g := range []string{"a", "b", "c", "d", "e"} {
		batch = append(batch, Sample{Series: lag(g), T: t0, V: 1})
	}
	mustAppend(t, s, batch)
	if s.SeriesCount() != 3 || s.Dropped() != 2 {
		t.Fatalf("series %d dropped %d, want 3 and 2", s.SeriesCount(), s.Dropped())
	}
	// Known series keep being stored; new ones keep being refused.
	c.Set(t0.Add(10 * time.Second))
	mustAppend(t, s, []Sample{{Series: lag("a"), T: c.Now(), V: 2}, {Series: lag("z"), T: c.Now(), V: 2}})
	got := mustQuery(t, s, Q{Name: lag("a").Name(), Matchers: []Matcher{{"group", MatchEqual, "a"}}, From: t0, To: c.Now(), Step: 10 * time.Second})
	if len(got) != 1 || len(got[0].Points) != 2 || s.Dropped() != 3 {
		t.Fatalf("got %+v dropped %d, want 2 points of a and 3 dropped", got, s.Dropped())
	}
}

func TestRefusedSamples(t *testing.T) {
	c := deliverytest.NewClock(t0.Add(time.Hour))
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now, RawRetention: 30 * time.Minute, RollupRetention: time.Hour})
	now := c.Now()
	mustAppend(t, s, []Sample{
		{Series: lag("a"), T: now, V: 1},
		{Series: lag("a"), T: now, V: 2},                               // duplicate time
		{Series: lag("a"), T: now.Add(-time.Second), V: 3},             // out of order
		{Series: lag("a"), T: now.Add(-time.Hour), V: 4},               // older than raw retention
		{Series: lag("b"), T: now.Add(time.Hour), V: 5},                // far future
		{Series: L("group", "nameless"), T: now, V: 6},                 // no metric name
		{Series: L(MetricName, "m", "a", "x", "a", "y"), T: now, V: 7}, // duplicate label
	})
	if st := s.Stats(); st.Rejected != 6 {
		t.Errorf("rejected = %d, want 6", st.Rejected)
	}
	got := mustQuery(t, s, Q{Name: lag("a").Name(), From: now.Add(-time.Hour), To: now.Add(time.Hour), Step: time.Second})
	if len(got) != 1 || len(got[0].Points) != 1 || got[0].Points[0].V != 1 {
		t.Fatalf("got %+v, want only the first sample of a", got)
	}
}

func TestBadQueries(t *testing.T) {
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: func() time.Time { return t0 }})
	ok := Q{Name: "m", From: t0.Add(-time.Hour), To: t0, Step: time.Minute}
	with := func(f func(q *Q)) Q { q := ok; f(&q); return q }
	cases := []struct {
		name string
		q    Q
		want string
	}{
		{"bad regexp", with(func(q *Q) { q.Matchers = []Matcher{{"group", MatchRegexp, "bill(ing"}} }), "bad regular expression"},
		{"unknown operator", with(func(q *Q) { q.Matchers = []Matcher{{"group", "==", "x"}} }), "unknown operator"},
		{"from after to", with(func(q *Q) { q.From = t0.Add(time.Hour) }), "after"},
		{"zero step", with(func(q *Q) { q.Step = 0 }), "step"},
		{"negative step", with(func(q *Q) { q.Step = -time.Second }), "step"},
		{"too many points", with(func(q *Q) { q.From = t0.Add(-14 * 24 * time.Hour); q.Step = 10 * time.Second }), "more than the limit of 11000"},
		{"unknown aggregation", with(func(q *Q) { q.Agg = "p99" }), "aggregation"},
		{"no name", with(func(q *Q) { q.Name = "" }), "metric name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Query(context.Background(), tc.q)
			if err == nil {
				t.Fatal("no error")
			}
			if delivery.ErrorCode(err) != delivery.EINVALID || !strings.Contains(delivery.ErrorMessage(err), tc.want) {
				t.Fatalf("error = %v (code %s), want EINVALID mentioning %q", err, delivery.ErrorCode(err), tc.want)
			}
		})
	}
	if _, err := s.LabelValues(context.Background(), "group", Matcher{"group", MatchNotRegexp, "("}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("LabelValues with a bad regexp: %v, want EINVALID", err)
	}
	// The exact cap is allowed.
	if _, err := s.Query(context.Background(), with(func(q *Q) { q.From = t0.Add(-10999 * time.Second); q.Step = time.Second })); err != nil {
		t.Errorf("11,000 points refused: %v", err)
	}
}

func TestParseMatcher(t *testing.T) {
	cases := []struct {
		in      string
		want    Matcher
		wantErr bool
	}{
		{`cluster="demo"`, Matcher{"cluster", MatchEqual, "demo"}, false},
		{`group != "a b"`, Matcher{"group", MatchNotEqual, "a b"}, false},
		{`group=~"bill.*"`, Matcher{"group", MatchRegexp, "bill.*"}, false},
		{`group!~bill.*`, Matcher{"group", MatchNotRegexp, "bill.*"}, false},
		{`group=~"("`, Matcher{}, true},
		{`="x"`, Matcher{}, true},
		{`group`, Matcher{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMatcher(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseMatcher(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestLabelsCanonicalForm(t *testing.T) {
	ls := L("zone", `a"b\c`, MetricName, "m", "cluster", "x,y={}")
	if got, want := ls.String(), `{__name__="m",cluster="x,y={}",zone="a\"b\\c"}`; got != want {
		t.Fatalf("String = %s, want %s", got, want)
	}
	back, err := parseLabels(ls.String())
	if err != nil || !slices.Equal(back, ls) {
		t.Fatalf("parseLabels = %v, %v; want %v", back, err, ls)
	}
}

func TestLabelValues(t *testing.T) {
	c := deliverytest.NewClock(t0)
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now})
	mustAppend(t, s, []Sample{
		{Series: lag("b"), T: t0, V: 1},
		{Series: lag("a"), T: t0, V: 1},
		{Series: L(MetricName, "switchyard_queue_messages_ready", "vhost", "/", "queue", "q1"), T: t0, V: 1},
	})
	ctx := context.Background()
	names, _ := s.LabelValues(ctx, MetricName)
	groups, _ := s.LabelValues(ctx, "group", Matcher{MetricName, MatchEqual, "switchyard_consumer_group_lag"})
	none, _ := s.LabelValues(ctx, "group", Matcher{"cluster", MatchEqual, "other"})
	if !slices.Equal(names, []string{"switchyard_consumer_group_lag", "switchyard_queue_messages_ready"}) ||
		!slices.Equal(groups, []string{"a", "b"}) || len(none) != 0 {
		t.Fatalf("names %v groups %v none %v", names, groups, none)
	}
}

func TestIdleSeriesIsSealedAndLogTrimmed(t *testing.T) {
	c := deliverytest.NewClock(t0)
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now})
	fill(t, s, c, []Labels{lag("quiet")}, t0, t0.Add(10*time.Minute), func(_, cycle int) float64 { return float64(cycle) })
	if st := s.Stats(); st.LogRows != 60 {
		t.Fatalf("log rows = %d, want 60", st.LogRows)
	}
	// Another series keeps reporting past the quiet one's window.
	fill(t, s, c, []Labels{lag("busy")}, t0.Add(time.Hour), t0.Add(time.Hour+10*time.Minute), func(_, cycle int) float64 { return 1 })
	st := s.Stats()
	if st.Sealed != 1 || st.LogRows != 60 {
		t.Fatalf("stats %+v: want the quiet series sealed inline and only busy's 60 batches logged", st)
	}
	got := mustQuery(t, s, Q{Name: lag("x").Name(), Matchers: []Matcher{{"group", MatchEqual, "quiet"}}, From: t0, To: c.Now(), Step: 10 * time.Second})
	if len(got) != 1 || len(got[0].Points) != 60 {
		t.Fatalf("quiet series after sealing: %+v", got)
	}
}

func TestConcurrentQueriesDuringAppends(t *testing.T) {
	c := deliverytest.NewClock(t0)
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now, ChunkWindow: 10 * time.Minute})
	var series []Labels
	for i := range 50 {
		series = append(series, lag(fmt.Sprintf("g%02d", i)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				q := Q{Name: "switchyard_consumer_group_lag", From: t0, To: t0.Add(time.Hour), Step: []time.Duration{10 * time.Second, time.Minute}[w%2], Agg: AggMax}
				got, err := s.Query(ctx, q)
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
				// Points only ever grow; values are the cycle number.
				for _, sr := range got {
					for i := 1; i < len(sr.Points); i++ {
						if sr.Points[i].V < sr.Points[i-1].V || !sr.Points[i].T.After(sr.Points[i-1].T) {
							errs <- fmt.Errorf("series %s not increasing at %d", sr.Labels, i)
							return
						}
					}
				}
				if _, err := s.LabelValues(ctx, "group"); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		})
	}
	fill(t, s, c, series, t0, t0.Add(time.Hour), func(_, cycle int) float64 { return float64(cycle) })
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := mustQuery(t, s, Q{Name: "switchyard_consumer_group_lag", From: t0, To: t0.Add(time.Hour), Step: 10 * time.Second})
	if len(got) != 50 || len(got[49].Points) != 360 || got[49].Points[359].V != 359 {
		t.Fatalf("after concurrent run: %d series, want 50 with 360 points", len(got))
	}
	if math.IsNaN(got[0].Points[0].V) {
		t.Fatal("NaN point")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Options{}); err == nil || !strings.Contains(err.Error(), "Dir is required") {
		t.Errorf("Open without Dir: %v", err)
	}
	if _, err := Open(ctx, Options{Dir: t.TempDir(), RollupStep: 7 * time.Minute}); err == nil || !strings.Contains(err.Error(), "divide") {
		t.Errorf("Open with a RollupStep not dividing the window: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(strings.Repeat("not a database ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Options{Dir: dir, Logger: quietLogger()}); err == nil || !strings.Contains(err.Error(), FileName) {
		t.Errorf("Open on a foreign file: %v, want an error naming %s", err, FileName)
	}
}

// Retention gives the space of what it deleted back to the file system,
// keeping a tenth of the file free for new chunks, not one page per run.
func TestMaintainReturnsFreedPages(t *testing.T) {
	c := deliverytest.NewClock(t0)
	s := mustOpen(t, Options{Dir: t.TempDir(), Now: c.Now, RawRetention: time.Hour, RollupRetention: time.Hour})
	var series []Labels
	for i := range 300 {
		series = append(series, lag(fmt.Sprintf("group-%03d", i)))
	}
	fill(t, s, c, series, t0, t0.Add(time.Hour), func(i, cycle int) float64 { return float64(i*cycle%977) + 0.5 })
	c.Set(t0.Add(time.Hour + 2*time.Minute))
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	pagesBefore := pragmaInt(t, s, "page_count")
	c.Set(t0.Add(4 * time.Hour))
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// What is kept free is a tenth of the file as it was when the
	// vacuum ran (deleted pages included), so the file ends well below
	// its size before: it held 300 series' chunks, it now holds none.
	free, pages := pragmaInt(t, s, "freelist_count"), pragmaInt(t, s, "page_count")
	if pages >= pagesBefore/2 {
		t.Errorf("after retention emptied the store: %d pages (%d before), %d of them free; want the file shrunk", pages, pagesBefore, free)
	}
}

func pragmaInt(t *testing.T, s *Store, name string) int64 {
	t.Helper()
	var n int64
	if err := s.db.QueryRow("PRAGMA " + name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
