package dlqstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// During a flood this process's writers (captures, the text indexer) hold
// the write lock back to back, one waiting while another commits, for
// longer than SQLite's busy timeout. An operator's triage and cancel, the
// job runner's updates and the planner's statistics get their turn among
// them instead of failing with "database is locked". The flood here is two
// writers whose transactions last 50 ms each, so that the lock is never
// free for more than the moment between them.
func TestWritesGetTheirTurnDuringAFlood(t *testing.T) {
	ctx := context.Background()
	s := openText(t, filepath.Join(t.TempDir(), "dlq.db"), nil)
	capture(t, s, 0, 10)
	var g int64
	if err := s.db.QueryRow("SELECT min(id) FROM groups").Scan(&g); err != nil {
		t.Fatal(err)
	}

	const floods = 2
	done := make(chan struct{})
	started := make(chan struct{}, floods)
	errs := make(chan error, floods)
	var wg sync.WaitGroup
	for range floods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Long enough for every write below to wait out the busy
			// timeout (5 s) had it to rely on it.
			until := time.Now().Add(30 * time.Second)
			for first := true; time.Now().Before(until); first = false {
				select {
				case <-done:
					return
				default:
				}
				err := s.write(ctx, func(tx *sql.Tx, now int64) error {
					_, err := tx.ExecContext(ctx, "UPDATE kafka_offsets SET updated_at = ?", now)
					time.Sleep(50 * time.Millisecond)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				if first {
					started <- struct{}{}
				}
			}
		}()
	}
	for range floods {
		<-started
	}

	writes := []struct {
		name string
		do   func() error
	}{
		{"triage", func() error {
			grp, err := s.SetTriage(ctx, g, Triage{State: TriageAcknowledged, Owner: "sre", UpdatedBy: "alice"})
			if err == nil && grp.Triage.State != TriageAcknowledged {
				t.Errorf("group %d after triage: %+v", g, grp.Triage)
			}
			return err
		}},
		{"cancel", func() error {
			_, err := s.CancelJob(ctx, 999, "alice", "stop")
			return err
		}},
		{"canary", func() error { return s.SetCanaryUntil(ctx, 999, time.Now()) }},
		{"planner statistics", func() error { return s.analyze(ctx) }},
	}
	for _, w := range writes {
		if err := w.do(); err != nil {
			t.Errorf("%s during the flood: %v", w.name, err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("flood: %v", err)
	}
}
