package collector_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/collector"
	"switchyard/collector/windowtest"
	"switchyard/sqldb"
)

func mustOpenDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustWindowStore(t *testing.T, db *sql.DB) *collector.SQLiteWindowStore {
	t.Helper()
	s, err := collector.NewSQLiteWindowStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// countingStore records how the evaluator batches its writes; the writes
// themselves go to the real SQLite store.
type countingStore struct {
	collector.WindowStore
	saves   int
	windows int
}

func (c *countingStore) Save(ctx context.Context, w map[collector.PartitionKey]collector.PartitionWindow) error {
	c.saves++
	c.windows += len(w)
	return c.WindowStore.Save(ctx, w)
}

func TestWindowsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "console.db")
	db := mustOpenDB(t, path)
	store := &countingStore{WindowStore: mustWindowStore(t, db)}
	clock := func() time.Time { return minute(11.5) }
	e := mustEvaluator(t, collector.EvaluatorOptions{Store: store, Now: clock})
	if err := e.Restore(ctx); err != nil {
		t.Fatalf("Restore of an empty store: %v", err)
	}

	keys := []collector.PartitionKey{
		{Cluster: "main", Group: "billing", Topic: "orders.v1", Partition: 0},
		{Cluster: "main", Group: "billing", Topic: "orders.v1", Partition: 1},
		{Cluster: "eu", Group: "shipping", Topic: "parcels.v1", Partition: 7},
	}
	for i := range 12 {
		at := minute(float64(i))
		e.Observe(keys[0], 1842, int64(4000+100*i), at)         // STALL
		e.Observe(keys[1], int64(100+5*i), int64(200+20*i), at) // WARN
		if i < 4 {
			e.Observe(keys[2], int64(10*i), int64(10*i+3), at) // incomplete
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// One Save per cycle with the windows that changed: 3 for 4 cycles, 2
	// after that.
	if store.saves != 12 || store.windows != 4*3+8*2 {
		t.Errorf("saves, windows = %d, %d; want 12 saves of 28 windows in all", store.saves, store.windows)
	}
	if err := e.Flush(ctx); err != nil || store.saves != 12 {
		t.Errorf("flush without changes: %v, saves %d; want no write", err, store.saves)
	}

	now := minute(11.5)
	var before []collector.PartitionStatus
	for _, k := range keys {
		before = append(before, e.Evaluate(k, now))
	}
	if before[0].Status != collector.StatusStall || before[1].Status != collector.StatusWarn || before[2].Complete {
		t.Fatalf("before restart: %+v", before)
	}
	db.Close()

	db2 := mustOpenDB(t, path)
	e2 := mustEvaluator(t, collector.EvaluatorOptions{Store: mustWindowStore(t, db2), Now: clock})
	if err := e2.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if got := e2.Evaluate(k, now); got != before[i] {
			t.Errorf("after restart %v:\n got %+v\nwant %+v", k, got, before[i])
		}
	}
	if got := e2.EvaluateGroup("main", "billing", nil, now); got.Status != collector.StatusErr {
		t.Errorf("group after restart = %s %q, want ERR", got.Status, got.Reason)
	}
}

func TestRestoreTrimsToWindowAndKeepsReadableRows(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t, filepath.Join(t.TempDir(), "console.db"))
	store := mustWindowStore(t, db)
	if _, err := collector.NewSQLiteWindowStore(ctx, db); err != nil {
		t.Fatalf("second NewSQLiteWindowStore on the same db: %v", err)
	}
	good := collector.PartitionKey{Cluster: "main", Group: "g", Topic: "t", Partition: 0}
	bad := collector.PartitionKey{Cluster: "main", Group: "g", Topic: "t", Partition: 1}
	var w []collector.Commit
	for i := range 12 {
		w = append(w, collector.Commit{Offset: int64(i), Lag: 5, Time: minute(float64(i))})
	}
	pw := collector.PartitionWindow{Commits: w, Watermarks: []int64{20, 21, 22, 23, 24, 25, 26}}
	if err := store.Save(ctx, map[collector.PartitionKey]collector.PartitionWindow{good: pw, bad: pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE lag_windows SET window_json = '[{' WHERE "partition" = 1`); err != nil {
		t.Fatal(err)
	}

	e := mustEvaluator(t, collector.EvaluatorOptions{Window: 5, Store: store})
	err := e.Restore(ctx)
	if err == nil || !strings.Contains(err.Error(), "main/g/t/1") {
		t.Errorf("Restore = %v, want an error naming main/g/t/1", err)
	}
	got := e.Window(good)
	if len(got) != 5 || got[0].Offset != 7 || !got[4].Time.Equal(minute(11)) {
		t.Errorf("restored window = %v, want the last 5 commits", got)
	}
	if e.Window(bad) != nil {
		t.Errorf("unreadable row restored as %v", e.Window(bad))
	}
}

func TestForgottenWindowsLeaveTheStore(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t, filepath.Join(t.TempDir(), "console.db"))
	now := evalT0
	e := mustEvaluator(t, collector.EvaluatorOptions{Store: mustWindowStore(t, db), ForgetAfter: time.Hour, Now: func() time.Time { return now }})
	for p := range int32(3) {
		e.Observe(collector.PartitionKey{Cluster: "main", Group: "old", Topic: "t", Partition: p}, 1, 2, evalT0)
	}
	e.Observe(key, 1, 2, evalT0)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows := func() (n int) {
		t.Helper()
		if err := db.QueryRow(`SELECT COUNT(*) FROM lag_windows`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := rows(); n != 4 {
		t.Fatalf("rows after first flush = %d, want 4", n)
	}
	now = evalT0.Add(2 * time.Hour)
	e.Observe(key, 2, 3, now)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var left string
	if err := db.QueryRow(`SELECT grp FROM lag_windows`).Scan(&left); err != nil || rows() != 1 || left != key.Group {
		t.Errorf("rows after forgetting = %d (%q, %v), want only %s", rows(), left, err, key.Group)
	}
}

// A console.db whose lag_windows is at version 1 (before watermarks) opens
// with its windows intact and no watermarks, which judge as before: the
// recent-lag-zero rule simply has nothing to go on until the next polls.
func TestWindowStoreUpgradeKeepsWindows(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t, filepath.Join(t.TempDir(), "console.db"))
	v1 := collector.WindowSchema()
	v1.Migrations = v1.Migrations[:1]
	if err := sqldb.Migrate(ctx, db, v1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO lag_windows VALUES ('demo', 'billing', 'orders.v1', 3,
	'[{"offset":41,"lag":2,"time":"2025-04-21T10:00:00Z"},{"offset":44,"lag":0,"time":"2025-04-21T10:01:00Z"}]',
	'2025-04-21T10:01:00.000000000Z')`); err != nil {
		t.Fatal(err)
	}
	got, err := mustWindowStore(t, db).Load(ctx)
	k := collector.PartitionKey{Cluster: "demo", Group: "billing", Topic: "orders.v1", Partition: 3}
	if err != nil || len(got) != 1 || len(got[k].Commits) != 2 || got[k].Commits[1].Offset != 44 || len(got[k].Watermarks) != 0 {
		t.Errorf("Load after the upgrade = %+v, %v; want the two commits and no watermarks", got, err)
	}
}

// The SQLite store keeps the WindowStore contract; each Open is a new
// connection pool over the same file, as a restarted console's would be.
func TestSQLiteWindowStoreContract(t *testing.T) {
	windowtest.TestWindowStore(t, func(t *testing.T) windowtest.Open {
		path := filepath.Join(t.TempDir(), "console.db")
		return func(t *testing.T) collector.WindowStore { return mustWindowStore(t, mustOpenDB(t, path)) }
	})
}

// BenchmarkWindowFlush saves one cycle of 2,000 changed windows.
func BenchmarkWindowFlush(b *testing.B) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(b.TempDir(), "console.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	store, err := collector.NewSQLiteWindowStore(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	e := mustEvaluator(b, collector.EvaluatorOptions{Store: store, Now: func() time.Time { return evalT0 }})
	keys := benchKeys(200, 10)
	cycle := 0
	for b.Loop() {
		at := minute(float64(cycle))
		for i, k := range keys {
			e.Observe(k, int64(cycle*10+i), int64(cycle*12+i), at)
		}
		if err := e.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		cycle++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/partition")
}

func benchKeys(groups, partitionsPerGroup int) []collector.PartitionKey {
	keys := make([]collector.PartitionKey, 0, groups*partitionsPerGroup)
	for g := range groups {
		for p := range partitionsPerGroup {
			keys = append(keys, collector.PartitionKey{
				Cluster: "main", Group: fmt.Sprintf("group-%03d", g),
				Topic: fmt.Sprintf("topic-%03d", g), Partition: int32(p),
			})
		}
	}
	return keys
}
