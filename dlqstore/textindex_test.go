package dlqstore

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/sqldb"
)

// openText opens the store at path with the text indexer off (the test
// steps it with textBatch), closed when t ends.
func openText(t *testing.T, path string, now func() time.Time) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, Options{Now: now, noTextIndexer: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// capture stores items i in [from, to) of the benchmark's generator as
// records of one partition.
func capture(t *testing.T, s *Store, from, to int) {
	t.Helper()
	items := make([]IndexItem, 0, to-from)
	for i := from; i < to; i++ {
		items = append(items, benchItem(i))
	}
	if _, err := s.IndexKafka(context.Background(), "prod", "orders.dlq", 0, items, int64(to)); err != nil {
		t.Fatal(err)
	}
}

// textIDs are the rowids the full-text index holds, ascending.
func textIDs(t *testing.T, s *Store) []int64 {
	t.Helper()
	return queryIDs(t, s, "SELECT rowid FROM entries_fts ORDER BY rowid")
}

func queryIDs(t *testing.T, s *Store, q string, args ...any) []int64 {
	t.Helper()
	rows, err := s.db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// searchIDs are the entries a text search for entry id's id finds.
func searchIDs(t *testing.T, s *Store, id int64) []int64 {
	t.Helper()
	p, err := s.FindEntries(context.Background(), Filter{Q: fmt.Sprintf("ids:%d", id)})
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, e := range p.Entries {
		out = append(out, e.ID)
	}
	return out
}

// stepText runs text batches of limit until none is left, and returns
// their sizes.
func stepText(t *testing.T, s *Store, limit int) []int {
	t.Helper()
	var sizes []int
	for {
		n, _, err := s.textBatch(context.Background(), limit)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return sizes
		}
		sizes = append(sizes, n)
	}
}

// Capture does not wait for the full-text index, and the index follows:
// a stored entry is found by text once the indexer has caught up, and a
// search says how far behind the text is until then.
func TestTextFollowsCapture(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "dlq.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	capture(t, s, 0, 300)
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(searchIDs(t, s, 300), []int64{300}) {
		if time.Now().After(deadline) {
			t.Fatal("entry 300 not findable by text 10 s after capture")
		}
		time.Sleep(10 * time.Millisecond)
	}
	capture(t, s, 300, 400)
	if err := s.WaitText(ctx); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s, 400); !slices.Equal(got, []int64{400}) {
		t.Errorf("after WaitText, ids:400 finds %v", got)
	}
	behind, older, err := s.textLag(ctx)
	if err != nil || behind != 0 || older {
		t.Errorf("textLag after WaitText = %v, %v, %v; want 0, false", behind, older, err)
	}
	if got := textIDs(t, s); len(got) != 400 {
		t.Errorf("the index holds %d entries, want 400", len(got))
	}
}

// A crash between capture and text loses nothing: the entries committed
// without their text get it after the next Open, and textLag says how old
// the oldest of them is meanwhile.
func TestTextAfterACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlq.db")
	now := time.Unix(benchEpoch, 0)
	clock := func() time.Time { return now }
	s := openText(t, path, clock)
	capture(t, s, 0, 50)
	stepText(t, s, 20)
	capture(t, s, 50, 80) // the process dies before these get their text
	now = now.Add(3 * time.Second)
	if behind, _, err := s.textLag(context.Background()); err != nil || behind != 3*time.Second {
		t.Errorf("textLag = %v, %v; want 3s", behind, err)
	}
	if got := searchIDs(t, s, 80); len(got) != 0 {
		t.Errorf("ids:80 found %v before its text was indexed", got)
	}
	s.Close()

	s2, err := Open(context.Background(), path, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.WaitText(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{1, 50, 51, 80} {
		if got := searchIDs(t, s2, id); !slices.Equal(got, []int64{id}) {
			t.Errorf("after reopening, ids:%d finds %v", id, got)
		}
	}
	if got := textIDs(t, s2); len(got) != 80 {
		t.Errorf("the index holds %d entries, want 80 (each once)", len(got))
	}
}

// After migration 9 the index is empty and every entry is older: new
// entries get their text first, then the older ones, newest first, and a
// search says TextPending until they are all in.
func TestTextOfOlderEntriesNewestFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlq.db")
	s := openText(t, path, nil)
	capture(t, s, 0, 10)
	// What migration 9 leaves: no text, every entry below.
	if _, err := s.db.Exec("DELETE FROM entries_fts; UPDATE text_progress SET above = 10, below = 10"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openText(t, path, nil)
	if !s.textPending.Load() {
		t.Error("after the upgrade the older entries are not pending")
	}
	capture(t, s, 10, 11)
	ctx := context.Background()
	if n, _, err := s.textBatch(ctx, 3); n != 1 || err != nil {
		t.Fatalf("first batch = %d, %v; want the new entry alone", n, err)
	}
	if n, _, err := s.textBatch(ctx, 3); n != 3 || err != nil {
		t.Fatalf("second batch = %d, %v; want 3 older", n, err)
	}
	if got := textIDs(t, s); !slices.Equal(got, []int64{8, 9, 10, 11}) {
		t.Errorf("index holds %v, want the newest first: [8 9 10 11]", got)
	}
	p, err := s.FindEntries(ctx, Filter{Q: "ids:9"})
	if err != nil || len(p.Entries) != 1 || !p.TextPending {
		t.Errorf("search during the walk: %d entries, pending %v, %v; want 1, pending", len(p.Entries), p.TextPending, err)
	}
	stepText(t, s, 3)
	if s.textPending.Load() {
		t.Error("still pending after the walk")
	}
	if got := textIDs(t, s); len(got) != 11 {
		t.Errorf("index holds %v, want 1..11", got)
	}
	if err := s.RebuildText(ctx); err != nil {
		t.Error(err)
	}
}

// Purging the highest ids lets new entries reuse them: they are still
// indexed (as new), whether the purged ones had their text or not, and no
// id's text is stored twice.
func TestTextAfterPurgeOfTheNewest(t *testing.T) {
	for _, indexedFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("indexed-%v", indexedFirst), func(t *testing.T) {
			now := time.Unix(benchEpoch, 0)
			s := openText(t, filepath.Join(t.TempDir(), "dlq.db"), func() time.Time { return now })
			ctx := context.Background()
			capture(t, s, 0, 10)
			if indexedFirst {
				stepText(t, s, 4)
			} else {
				stepText(t, s, 4)
				capture(t, s, 10, 12)
			}
			top := queryIDs(t, s, "SELECT id FROM entries ORDER BY id DESC LIMIT 3")
			if _, err := s.SetStatus(ctx, top, StatusResolved); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Hour)
			if n, err := s.Purge(ctx, now); err != nil || n != 3 {
				t.Fatalf("Purge = %d, %v; want 3", n, err)
			}
			from := 12
			capture(t, s, from, from+3) // ids reused
			stepText(t, s, 4)
			want := queryIDs(t, s, "SELECT id FROM entries ORDER BY id")
			if got := textIDs(t, s); !slices.Equal(got, want) {
				t.Errorf("index holds %v, want the entries %v", got, want)
			}
			for _, id := range want[len(want)-3:] {
				if got := searchIDs(t, s, id); !slices.Equal(got, []int64{id}) {
					t.Errorf("reused id %d: a search finds %v", id, got)
				}
			}
		})
	}
}

// A batch read before a purge of the highest ids and a capture that reused
// them is not committed (the text would be the purged entries'): it is read
// again, and each id gets the text of the entry that has it now.
func TestTextBatchMeetsAPurge(t *testing.T) {
	now := time.Unix(benchEpoch, 0)
	s := openText(t, filepath.Join(t.TempDir(), "dlq.db"), func() time.Time { return now })
	ctx := context.Background()
	capture(t, s, 0, 10)
	w, err := s.textRead(ctx, 100)
	if err != nil || w == nil || len(w.texts) != 10 {
		t.Fatalf("textRead = %v, %v", w, err)
	}
	if _, err := s.SetStatus(ctx, []int64{9, 10}, StatusResolved); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	if n, err := s.Purge(ctx, now); err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	capture(t, s, 10, 12) // ids 9 and 10 again, other records
	if n, _, err := s.textCommit(ctx, w); err != nil || n != -1 {
		t.Fatalf("textCommit after the purge = %d, %v; want -1 (read again)", n, err)
	}
	stepText(t, s, 100)
	if got := textIDs(t, s); len(got) != 10 {
		t.Errorf("index holds %v, want 1..10", got)
	}
	e, err := s.Entry(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s, 10); !slices.Equal(got, []int64{10}) || e.Offset != 11 {
		t.Errorf("ids:10 finds %v (entry 10 at offset %d)", got, e.Offset)
	}
	// The purged record's envelope id is no longer found; the new one's is.
	if p, err := s.FindEntries(ctx, Filter{Q: `"` + benchItem(9).DL.Envelope.ID + `"`}); err != nil || len(p.Entries) != 0 {
		t.Errorf("the purged entry's envelope id finds %d entries, %v", len(p.Entries), err)
	}
	if p, err := s.FindEntries(ctx, Filter{Q: `"` + benchItem(11).DL.Envelope.ID + `"`}); err != nil || len(p.Entries) != 1 {
		t.Errorf("the new entry's envelope id finds %d entries, %v", len(p.Entries), err)
	}
}

// The watermark never skips an entry: captures, text batches and purges
// of random sizes in random order always leave the index holding exactly
// the entries in (below, above], and every entry once all is done.
func TestTextWatermarkNeverSkips(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 1))
	now := time.Unix(benchEpoch, 0)
	s := openText(t, filepath.Join(t.TempDir(), "dlq.db"), func() time.Time { return now })
	ctx := context.Background()
	next := 0
	check := func(step int) {
		t.Helper()
		p, err := readProgress(ctx, s.db)
		if err != nil {
			t.Fatal(err)
		}
		want := queryIDs(t, s, "SELECT id FROM entries WHERE id > ? AND id <= ? ORDER BY id", p.below, p.above)
		if got := textIDs(t, s); !slices.Equal(got, want) {
			t.Fatalf("step %d: index holds %v, want (%d, %d] = %v", step, got, p.below, p.above, want)
		}
	}
	for step := range 200 {
		switch r.IntN(4) {
		case 0, 1:
			n := 1 + r.IntN(40)
			capture(t, s, next, next+n)
			next += n
		case 2:
			if _, _, err := s.textBatch(ctx, 1+r.IntN(60)); err != nil {
				t.Fatal(err)
			}
		case 3:
			ids := queryIDs(t, s, "SELECT id FROM entries WHERE status = 'dead' ORDER BY id DESC LIMIT ?", r.IntN(10))
			if r.IntN(2) == 0 {
				ids = queryIDs(t, s, "SELECT id FROM entries WHERE status = 'dead' ORDER BY random() LIMIT ?", r.IntN(10))
			}
			if _, err := s.SetStatus(ctx, ids, StatusDiscarded); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Hour)
			if _, err := s.Purge(ctx, now); err != nil {
				t.Fatal(err)
			}
		}
		check(step)
	}
	stepText(t, s, 1+r.IntN(50))
	want := queryIDs(t, s, "SELECT id FROM entries ORDER BY id")
	if got := textIDs(t, s); !slices.Equal(got, want) {
		t.Fatalf("at the end the index holds %v, want every entry %v", got, want)
	}
}

// Bodies are stored compressed where that pays, and read back whole,
// as are bodies stored before migration 9 (codec 0).
func TestBodiesCompressedAndOldRowsRead(t *testing.T) {
	s := openText(t, filepath.Join(t.TempDir(), "dlq.db"), nil)
	ctx := context.Background()
	capture(t, s, 0, 2)
	var codec int
	var stored []byte
	if err := s.db.QueryRow("SELECT codec, record FROM entry_bodies WHERE id = 1").Scan(&codec, &stored); err != nil {
		t.Fatal(err)
	}
	want := benchItem(0)
	if codec&(codecRecord|codecRecord<<codecS2Shift) == 0 {
		t.Errorf("codec = %b, want the record compressed", codec)
	}
	e, err := s.Entry(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e.DL.Error.Stack != want.DL.Error.Stack || string(e.DL.Payload) != string(want.DL.Payload) || len(e.DL.Headers) != len(want.DL.Headers) {
		t.Errorf("entry 1 read back differs: %+v", e.DL.Error)
	}
	// A row as written before migration 9: the same blobs, uncompressed.
	var enc encoder
	r := rowOf(&want, &enc)
	if _, err := s.db.Exec("UPDATE entry_bodies SET codec = 0, payload = ?, headers = ?, record = ? WHERE id = 2",
		want.DL.Payload, r.headers, r.record); err != nil {
		t.Fatal(err)
	}
	e, err = s.Entry(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if e.DL.Error.Stack != want.DL.Error.Stack || string(e.DL.Payload) != string(want.DL.Payload) {
		t.Errorf("an uncompressed row read back differs: %+v", e.DL.Error)
	}
	// A big payload takes zstd, a small blob S2 (blob.go).
	big := benchItem(2)
	big.DL.Payload = []byte(strings.Repeat(`{"sku":"SKU-00042","qty":3,"note":"fragile, keep upright"},`, 400))
	if _, err := s.IndexKafka(ctx, "prod", "orders.dlq", 0, []IndexItem{big}, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRow("SELECT codec FROM entry_bodies WHERE id = 3").Scan(&codec); err != nil {
		t.Fatal(err)
	}
	if codec&codecPayload == 0 || codec&(codecHeaders<<codecS2Shift) == 0 {
		t.Errorf("codec of a 24 KB payload = %b, want zstd payload, S2 headers", codec)
	}
	if e, err := s.Entry(ctx, 3); err != nil || string(e.DL.Payload) != string(big.DL.Payload) {
		t.Errorf("the big payload read back differs (%v)", err)
	}
	var pageSize int
	if err := s.db.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil || pageSize != 16384 {
		t.Errorf("page size = %d, %v; want 16384 for a new file", pageSize, err)
	}
}

// TestQueuedTextIsStoredText: the text capture queues for the indexer is
// the text the indexer computes from the stored entry when the queue lacks
// it (after a restart or an overflow) — or an entry would be found by
// different words depending on how it reached the index. Kafka and
// RabbitMQ entries, with and without an envelope, with a binary payload,
// a key and a traceparent.
func TestQueuedTextIsStoredText(t *testing.T) {
	s := openText(t, filepath.Join(t.TempDir(), "dlq.db"), nil)
	var kafka, rabbit []IndexItem
	for i := range 12 {
		it := benchItem(i)
		switch i % 4 {
		case 1: // no envelope: ids and type come from the headers
			it.DL.Envelope = nil
			it.DL.Headers = append(it.DL.Headers,
				delivery.Header{Key: delivery.HeaderCorrelationID, Value: []byte(fmt.Sprintf("corr-h-%d", i))},
				delivery.Header{Key: delivery.HeaderEventID, Value: []byte(fmt.Sprintf("evt-%d", i))},
				delivery.Header{Key: delivery.HeaderEventType, Value: []byte("stock.reserved")},
				delivery.Header{Key: delivery.HeaderTraceparent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")})
			it.DL.Key = []byte(fmt.Sprintf("sku-%d", i))
		case 2: // a payload that is not UTF-8
			it.DL.Envelope = nil
			it.DL.Payload = []byte{0xff, 0xfe, 0x00, byte(i)}
		}
		if i%3 == 0 {
			it.DL.DLQ = delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: "main", Queue: "orders.dead"}
			it.MessageID, it.DeathCount = fmt.Sprintf("m-%d", i), 1
			rabbit = append(rabbit, it)
			continue
		}
		it.DL.DLQ.Offset = int64(len(kafka))
		kafka = append(kafka, it)
	}
	if _, err := s.IndexKafka(context.Background(), "prod", "orders.dlq", 0, kafka, int64(len(kafka))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IndexRabbit(context.Background(), rabbit); err != nil {
		t.Fatal(err)
	}
	queued, _ := s.dequeueText(0, 100)
	stored, err := s.readTexts(context.Background(), "e.id > ? ORDER BY e.id", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 12 || len(stored) != 12 {
		t.Fatalf("queued %d texts, read %d back; want 12 each", len(queued), len(stored))
	}
	for i := range queued {
		if queued[i] != stored[i] {
			t.Errorf("entry %d: queued text\n%+v\nstored text\n%+v", stored[i].id, queued[i], stored[i])
		}
	}
}

// The planner statistics cover the entries and never the full-text
// index's own tables (whose recorded size made every segment merge a full
// scan). That the refresh is one transaction is not provoked here: it
// would take a write lock held past busy_timeout between its statements.
func TestAnalyzeLeavesOutTheTextIndex(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "dlq.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	items := make([]IndexItem, 300)
	for i := range items {
		items[i] = benchItem(i)
		items[i].DL.DLQ.Offset = int64(i)
	}
	if _, err := s.IndexKafka(ctx, "prod", "orders.dlq", 0, items, int64(len(items))); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitText(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.analyze(ctx); err != nil {
		t.Fatal(err)
	}
	var entries, fts int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE tbl = 'entries'), count(*) FILTER (WHERE tbl LIKE 'entries\_fts\_%' ESCAPE '\') FROM sqlite_stat1`).Scan(&entries, &fts); err != nil {
		t.Fatal(err)
	}
	if entries == 0 || fts != 0 {
		t.Fatalf("sqlite_stat1 after a refresh: %d rows for entries, %d for the full-text tables; want some and none", entries, fts)
	}
}

// A job selected by text takes every entry that matches when it starts,
// not only those the full-text index holds yet: CreateJob waits for the
// index to catch up (Tuning.TextWait), and past the wait refuses with
// ECONFLICT rather than leave the newest entries out. Its preview says
// how far behind the index is.
func TestJobByTextWaitsForTheTextIndex(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "dlq.db"), Options{noTextIndexer: true, Tuning: Tuning{TextWait: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	capture(t, s, 0, 60)
	sel := Selection{Filter: &Filter{Q: "acme"}, Eligible: []Status{StatusDead}}
	plan, err := s.PlanSelection(ctx, sel, 0)
	if err != nil {
		t.Fatal(err)
	}
	if plan.TextBehind <= 0 || plan.Count != 0 {
		t.Errorf("preview before any text is indexed: %d entries, text behind %s; want 0 and a lag", plan.Count, plan.TextBehind)
	}
	job := func() (JobRecord, error) {
		return s.CreateJob(ctx, JobRecord{Action: "redrive", Access: access.ActionRedrive, State: JobRunning, Actor: "ada", Request: []byte("{}")}, sel, StatusRedriving)
	}
	_, err = job()
	if delivery.ErrorCode(err) != delivery.ECONFLICT || !strings.Contains(err.Error(), "text search covers entries up to") {
		t.Fatalf("job by text with the index behind: %v, want ECONFLICT saying how far behind text search is", err)
	}
	// The index runs; the job waits for it instead of taking what it
	// holds at the moment.
	s.tuning.TextWait = time.Minute
	s.startText()
	j, err := job()
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.FindEntries(ctx, Filter{Q: "acme", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total == 0 || j.Total != page.Total {
		t.Errorf("the job froze %d entries; %d match the text", j.Total, page.Total)
	}
}

// The full-text index merges its segments sixteen at a time (migration
// 12), on a new file and on one upgraded from the release before, and a
// search finds every entry among the segments this leaves unmerged: each
// text batch below writes one.
func TestTextIndexMergesSixteenAtATime(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	upgraded := filepath.Join(dir, "upgraded.db")
	old, err := sqldb.Open(ctx, upgraded, Schema().UpTo(11))
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	for _, path := range []string{filepath.Join(dir, "new.db"), upgraded} {
		s := openText(t, path, nil)
		got := map[string]int{}
		rows, err := s.db.Query("SELECT k, v FROM entries_fts_config WHERE k IN ('automerge', 'crisismerge')")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k string
			var v int
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			got[k] = v
		}
		rows.Close()
		if want := map[string]int{"automerge": 16, "crisismerge": 64}; !maps.Equal(got, want) {
			t.Errorf("%s: full-text merge settings %v, want %v", filepath.Base(path), got, want)
		}
	}

	s := openText(t, filepath.Join(dir, "segments.db"), nil)
	for b := range 40 {
		capture(t, s, b*10, b*10+10)
		stepText(t, s, 100)
	}
	if got := textIDs(t, s); len(got) != 400 {
		t.Errorf("the index holds %d entries, want 400", len(got))
	}
	for b := range 40 {
		id := int64(b*10 + 1 + b%10)
		if got := searchIDs(t, s, id); !slices.Equal(got, []int64{id}) {
			t.Errorf("ids:%d finds %v", id, got)
		}
	}
}
