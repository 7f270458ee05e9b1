package dlqstore

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"switchyard/internal/testenv"
)

// Once a store has captured dictTrainAfter entries it trains a set of
// dictionaries on them, and what it captures next is packed with it and
// takes far less room (a big batch reaching a new store trains one on
// itself first); every entry — from before the set, from the first
// set, from a second — reads back whole for a page, a redrive and the text
// index, in the process that trained the sets, in one that was already
// open (another console on the file) and in one opened afterwards.
func TestBodiesPackedWithTrainedDictionaries(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dlq.db")
	a := openText(t, path, nil)
	other := openText(t, path, nil)
	sets := func() int {
		var n int
		if err := a.db.QueryRow("SELECT count(*) FROM body_dicts").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// In batches smaller than dictSamples, as a trickle comes in.
	for i := 0; i < dictTrainAfter-1; i += dictSamples - 1 {
		capture(t, a, i, min(i+dictSamples-1, dictTrainAfter-1))
	}
	if n := sets(); n != 0 {
		t.Fatalf("%d sets before %d entries, want none", n, dictTrainAfter)
	}
	capture(t, a, dictTrainAfter-1, dictTrainAfter+200)
	testenv.WaitFor(t, "a dictionary set trained", func() bool { return sets() == 1 })
	first, second := dictTrainAfter+200, dictTrainAfter+700
	capture(t, a, first, second)
	// Room: the blobs of these entries against the same blobs with S2 alone.
	var stored, alone int
	var enc encoder
	for i := first; i < second; i++ {
		var codec int
		var p, h, r []byte
		if err := a.db.QueryRow("SELECT codec, payload, headers, record FROM entry_bodies WHERE id = ?", i+1).Scan(&codec, &p, &h, &r); err != nil {
			t.Fatal(err)
		}
		if codec&(codecAll<<codecDictShift) != codecAll<<codecDictShift || codec>>codecDictIDShift != 1 {
			t.Fatalf("entry %d: codec %b, want every column packed with set 1", i+1, codec)
		}
		stored += len(p) + len(h) + len(r)
		it := benchItem(i)
		row := rowOf(&it, &enc)
		_, p, h, r = packBody(nil, it.DL.Payload, row.headers, row.record)
		alone += len(p) + len(h) + len(r)
	}
	if stored*10 > alone*7 {
		t.Errorf("%d entries take %d bytes with their dictionaries, %d with S2 alone: want at least 30%% less", second-first, stored, alone)
	}
	// A second set, trained now from the newest bodies, some of them
	// packed with the first.
	if err := a.trainDicts(ctx); err != nil {
		t.Fatal(err)
	}
	if n := sets(); n != 2 {
		t.Fatalf("%d sets after training again, want 2", n)
	}
	capture(t, a, second, second+100)
	later := openText(t, path, nil)
	for _, s := range []*Store{a, other, later} {
		for i := 0; i < second+100; i += 13 {
			checkBody(t, s, int64(i+1), benchItem(i))
		}
	}
	// A flood reaching a new store is packed with a set from its first
	// batch on, trained on that batch.
	flood := openText(t, filepath.Join(t.TempDir(), "dlq.db"), nil)
	capture(t, flood, 0, dictSamples)
	var without int
	if err := flood.db.QueryRow("SELECT count(*) FROM entry_bodies WHERE codec >> ? != 1", codecDictIDShift).Scan(&without); err != nil {
		t.Fatal(err)
	}
	if without != 0 {
		t.Errorf("%d of the first batch's %d entries packed without the set trained on it", without, dictSamples)
	}
	checkBody(t, flood, dictSamples, benchItem(dictSamples-1))
	// The text indexer reads bodies of every kind back to the text
	// capture queued for them.
	queued, _ := a.dequeueText(0, second+100)
	for _, s := range []*Store{other, later} {
		stored, err := s.readTexts(ctx, "e.id > ? ORDER BY e.id", 0, second+100)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != len(queued) {
			t.Fatalf("read %d texts back, %d were queued", len(stored), len(queued))
		}
		for i := range queued {
			if queued[i] != stored[i] {
				t.Fatalf("entry %d: queued text\n%+v\nstored text\n%+v", stored[i].id, queued[i], stored[i])
			}
		}
	}
}

// checkBody: entry id of s reads back as it was captured from want, for a
// page (Entry) and for a send (sendBody, as a redrive reads it).
func checkBody(t *testing.T, s *Store, id int64, want IndexItem) {
	t.Helper()
	e, err := s.Entry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.DL.Payload, want.DL.Payload) || e.DL.Error.Stack != want.DL.Error.Stack || len(e.DL.Headers) != len(want.DL.Headers) {
		t.Fatalf("entry %d reads back differently: %+v", id, e.DL.Error)
	}
	var codec int
	var p, h, r []byte
	if err := s.db.QueryRow("SELECT codec, payload, headers, record FROM entry_bodies WHERE id = ?", id).Scan(&codec, &p, &h, &r); err != nil {
		t.Fatal(err)
	}
	d, err := s.dictOf(context.Background(), codec)
	if err != nil {
		t.Fatalf("entry %d: %v", id, err)
	}
	dl, err := sendBody(d, codec, p, h, r)
	if err != nil {
		t.Fatalf("entry %d for a send: %v", id, err)
	}
	if !bytes.Equal(dl.Payload, want.DL.Payload) || dl.Origin != want.DL.Origin || dl.Envelope.ID != want.DL.Envelope.ID || len(dl.Headers) != len(want.DL.Headers) {
		t.Fatalf("entry %d reads back differently for a send: %+v", id, dl.Origin)
	}
}

// Payloads with little in common (here random bytes behind the same
// prefix, as encrypted payloads are) get no dictionary: the set trained on
// a flood of them has none for the payload column, which stays as it
// came, and every entry reads back whole.
func TestPayloadsWithLittleInCommonGetNoDictionary(t *testing.T) {
	s := openText(t, filepath.Join(t.TempDir(), "dlq.db"), nil)
	r := rand.New(rand.NewPCG(7, 7))
	items := make([]IndexItem, dictSamples+50)
	for i := range items {
		items[i] = benchItem(i)
		p := make([]byte, 500+r.IntN(3000))
		for j := range p {
			p[j] = byte(r.Uint32())
		}
		items[i].DL.Payload = append([]byte(`{"alg":"A256GCM","kid":"payments-2026","ciphertext":"`), p...)
	}
	if _, err := s.IndexKafka(context.Background(), "prod", "orders.dlq", 0, items, int64(len(items))); err != nil {
		t.Fatal(err)
	}
	var payloadDict, packedPayloads int
	if err := s.db.QueryRow("SELECT count(payload) FROM body_dicts").Scan(&payloadDict); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRow("SELECT count(*) FROM entry_bodies WHERE codec & ? != 0", codecPayload|codecPayload<<codecS2Shift|codecPayload<<codecDictShift).Scan(&packedPayloads); err != nil {
		t.Fatal(err)
	}
	if payloadDict != 0 || packedPayloads != 0 {
		t.Errorf("random payloads: %d payload dictionaries, %d payloads stored packed; want none", payloadDict, packedPayloads)
	}
	for i := 0; i < len(items); i += 11 {
		checkBody(t, s, int64(i+1), items[i])
	}
}
