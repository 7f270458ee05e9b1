package dlqstore

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// More searches at once than the store has connections, each answered
// from a temporary table of its matches (ftsMember: a common word with a
// filter the index cannot narrow, here a time range), all finish with the
// right total: none holds one connection while it waits for another,
// which would leave every search, and every capture, waiting for good.
func TestManySearchesAtOnceAllFinish(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "dlq.db"), Options{Tuning: Tuning{FTSDriveMax: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	capture(t, s, 0, 400)
	if err := s.WaitText(ctx); err != nil {
		t.Fatal(err)
	}
	f := Filter{Q: "delivery", Status: []Status{StatusDead}, From: time.Unix(0, 0), Limit: 5}
	want, err := s.FindEntries(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if want.Total < 100 || len(want.Entries) != 5 || len(want.Entries[0].DL.Payload) == 0 {
		t.Fatalf("delivery finds %d entries, a page of %d; the test needs a common word and whole entries", want.Total, len(want.Entries))
	}

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	const searches = 3 * poolSize
	// A round seldom has every connection held at the same moment: many
	// rounds make it sure to happen.
	for round := range 30 {
		start := make(chan struct{})
		var wg sync.WaitGroup
		pages := make([]Page, searches)
		errs := make([]error, searches)
		for i := range searches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				pages[i], errs[i] = s.FindEntries(ctx, f)
			}()
		}
		close(start)
		wg.Wait()
		for i, p := range pages {
			if errs[i] != nil || p.Total != want.Total || len(p.Entries) != 5 || len(p.Entries[0].DL.Payload) == 0 {
				t.Fatalf("round %d, search %d of %d at once: total %d, %d entries, %v; want %d whole entries of %d",
					round+1, i+1, searches, p.Total, len(p.Entries), errs[i], 5, want.Total)
			}
		}
	}
}
