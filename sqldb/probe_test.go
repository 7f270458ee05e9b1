package sqldb_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testenv"
	"switchyard/sqldb"
)

// TestCheckWritableOnFullDisk fills the filesystem under a database for
// real. A commit alone still succeeds there (WAL mode rewrites WAL space it
// allocated before), which is why a database-only readiness probe says
// "fine" while logins fail; CheckWritable says the disk is full, without
// the path, and recovers once space is freed.
func TestCheckWritableOnFullDisk(t *testing.T) {
	dir := testenv.TmpFS(t, 8<<20)
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(dir, "console.db"))
	if err := sqldb.CheckWritable(ctx, db); err != nil {
		t.Fatalf("CheckWritable with free space: %v", err)
	}
	// Grow the WAL, then checkpoint it without truncating: the next commit
	// starts over at the beginning of the WAL file, in blocks it already has.
	if _, err := db.Exec(`CREATE TABLE filler (b BLOB)`); err != nil {
		t.Fatal(err)
	}
	for range 64 {
		if _, err := db.Exec(`INSERT INTO filler VALUES (zeroblob(16384))`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(RESTART)`); err != nil {
		t.Fatal(err)
	}

	free := testenv.FillFS(t, dir)
	defer free()
	if _, err := db.Exec(`UPDATE sqldb_probe SET at = 'full disk'`); err != nil {
		t.Fatalf("a one-row commit on the full disk failed (%v): the premise that a database-only probe passes no longer holds; revisit CheckWritable's comment", err)
	}
	err := sqldb.CheckWritable(ctx, db)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("CheckWritable on a full disk = %v, want an error saying no space is left", err)
	}
	if strings.Contains(err.Error(), dir) {
		t.Errorf("error %q names the data dir's path", err)
	}
	free()
	if err := sqldb.CheckWritable(ctx, db); err != nil {
		t.Errorf("CheckWritable after freeing space: %v", err)
	}
}

// A Prober reuses a result for its interval, then checks again.
func TestProberReusesResultForInterval(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "console.db"))
	now := time.Unix(1_700_000_000, 0)
	p := sqldb.NewProber(db, sqldb.ProberOptions{Interval: time.Second, Now: func() time.Time { return now }})
	ctx := context.Background()
	if err := p.Check(ctx); err != nil {
		t.Fatal(err)
	}
	var first string
	db.QueryRow(`SELECT at FROM sqldb_probe`).Scan(&first)
	now = now.Add(500 * time.Millisecond)
	p.Check(ctx)
	var second string
	db.QueryRow(`SELECT at FROM sqldb_probe`).Scan(&second)
	if first == "" || second != first {
		t.Errorf("probe row %q then %q: want one write within the interval", first, second)
	}
	now = now.Add(time.Second)
	time.Sleep(time.Millisecond) // the row holds the wall clock's time
	p.Check(ctx)
	var third string
	db.QueryRow(`SELECT at FROM sqldb_probe`).Scan(&third)
	if third == first {
		t.Error("no new write after the interval")
	}
}
