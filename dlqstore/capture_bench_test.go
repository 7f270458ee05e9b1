package dlqstore

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// captureBatch is the batch the indexer stores under backlog
// (indexer.DefaultKafkaMaxBatch): a flood is what the capture figure is
// about.
const captureBatch = 10000

// BenchmarkCapture: 200,000 realistic dead letters (benchItem) through
// IndexKafka in batches of captureBatch, the text indexer running beside
// it as in the console, beside a bare database/sql loop that inserts the
// same rows into the same tables and indexes with no full-text index (the
// issue's baseline). Besides msgs/s, ours reports catchup-ms (from the
// last capture commit until the text index holds every entry). Both
// report bytes/entry (dlq.db and its WAL after a checkpoint) and
// written-bytes/entry: this process's write_bytes from /proc/self/io over
// the run (capture, text and checkpoint: what reached the block layer),
// or, where the file system does not account it (tmpfs, some
// containers), wchar, every byte handed to write(2), which also counts WAL
// frames the checkpoint rewrites. The bare loop's bytes written are what
// the same rows cost in WAL mode, where each page is written to the WAL
// and again by the checkpoint, without the full-text index and the group
// statistics.
func BenchmarkCapture(b *testing.B) {
	items := benchIndexItems()
	b.Run("switchyard", func(b *testing.B) {
		var elapsed, catchup time.Duration
		var disk, written float64
		for b.Loop() {
			b.StopTimer()
			dir := b.TempDir()
			path := filepath.Join(dir, "dlq.db")
			s, err := Open(context.Background(), path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			w0 := writtenBytes(b)
			b.StartTimer()
			start := time.Now()
			for off := 0; off < len(items); off += captureBatch {
				end := min(off+captureBatch, len(items))
				if _, err := s.IndexKafka(context.Background(), "prod", "orders.dlq", 0, items[off:end], int64(end)); err != nil {
					b.Fatal(err)
				}
			}
			elapsed += time.Since(start)
			b.StopTimer()
			t := time.Now()
			if err := s.WaitText(context.Background()); err != nil {
				b.Fatal(err)
			}
			catchup += time.Since(t)
			disk += diskBytes(b, s.db, path)
			written += float64(writtenBytes(b) - w0)
			s.Close()
			b.StartTimer()
		}
		n := float64(len(items) * b.N)
		b.ReportMetric(n/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(float64(catchup.Milliseconds())/float64(b.N), "catchup-ms")
		b.ReportMetric(disk/n, "bytes/entry")
		b.ReportMetric(written/n, "written-bytes/entry")
	})
	b.Run("bare-sqlite", func(b *testing.B) {
		// The rows are encoded outside the timer (JSON, filters), as well
		// as it can be done; compressing the bodies is part of storing
		// the same rows, so it is timed (on both cores, before each
		// transaction, as ours).
		type bareRow struct {
			args                     []any
			payload, headers, record []byte
		}
		rows := make([]bareRow, len(items))
		var enc encoder
		// Each entry names its failure group as ours do: the groups
		// numbered in the order their first entry arrives (144 for these
		// records). One group for all would append every entry at one
		// place in entries_group where ours insert at 144, and write
		// ~300 fewer bytes an entry.
		groups := map[string]int64{}
		for i := range items {
			it := &items[i]
			r := rowOf(it, &enc)
			k := key{broker: delivery.BrokerKafka, cluster: "prod", destination: "orders.dlq"}
			g, ok := groups[it.Fingerprint]
			if !ok {
				g = int64(len(groups) + 1)
				groups[it.Fingerprint] = g
			}
			rows[i] = bareRow{
				args: []any{"kafka", "prod", "", "orders.dlq", 0, it.DL.DLQ.Offset, nil, nil, r.tenant, r.eventType, it.DL.Error.Code, it.Fingerprint, g,
					r.first, r.last, int64(1), int64(1), "", it.PayloadSize, it.PayloadHash, 0, resourceOf(&it.DL, k)},
				payload: nonNil(it.DL.Payload), headers: r.headers, record: r.record,
			}
		}
		// The same rows: packed with a dictionary set trained on the
		// first of them, as ours are from its second batch on.
		var samples [3][][]byte
		for _, r := range rows[:dictSamples] {
			samples[0] = append(samples[0], r.payload)
			samples[1] = append(samples[1], r.headers)
			samples[2] = append(samples[2], r.record)
		}
		raw, _ := buildDicts(samples)
		dicts := newDictSet(1, raw)
		var elapsed time.Duration
		var disk, written float64
		for b.Loop() {
			b.StopTimer()
			path := filepath.Join(b.TempDir(), "dlq.db")
			s, err := Open(context.Background(), path, Options{noTextIndexer: true})
			if err != nil {
				b.Fatal(err)
			}
			w0 := writtenBytes(b)
			b.StartTimer()
			start := time.Now()
			for off := 0; off < len(rows); off += captureBatch {
				end := min(off+captureBatch, len(rows))
				if err := bareCapture(s.db, rows[off:end], int64(end), dicts, func(r bareRow) ([]any, []byte, []byte, []byte) {
					return r.args, r.payload, r.headers, r.record
				}); err != nil {
					b.Fatal(err)
				}
			}
			elapsed += time.Since(start)
			b.StopTimer()
			disk += diskBytes(b, s.db, path)
			written += float64(writtenBytes(b) - w0)
			s.Close()
			b.StartTimer()
		}
		n := float64(len(rows) * b.N)
		b.ReportMetric(n/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(disk/n, "bytes/entry")
		b.ReportMetric(written/n, "written-bytes/entry")
	})
}

// bareCapture inserts one batch of entries and bodies and the partition's
// offset in one transaction with prepared statements.
func bareCapture[R any](db *sql.DB, rows []R, next int64, d *dictSet, get func(R) ([]any, []byte, []byte, []byte)) error {
	// The bodies are packed on every core before the transaction, as
	// the product does (prepareRows).
	type packed struct {
		codec   int
		p, h, r []byte
	}
	bodies := make([]packed, len(rows))
	var wg sync.WaitGroup
	per := (len(rows) + 1) / 2
	for from := 0; from < len(rows); from += per {
		wg.Go(func() {
			for i := from; i < min(from+per, len(rows)); i++ {
				_, p, h, r := get(rows[i])
				c, p, h, r := packBody(d, p, h, r)
				bodies[i] = packed{c, p, h, r}
			}
		})
	}
	wg.Wait()
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	ins, err := tx.Prepare(`INSERT INTO entries (status, broker, cluster, vhost, destination, kpartition, koffset, message_id, death_count,
	tenant, event_type, error_code, fingerprint, group_id, first_failure_at, last_failure_at,
	indexed_at, updated_at, flags, payload_size, payload_hash, truncated, resource)
VALUES ('dead', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	body, err := tx.Prepare("INSERT INTO entry_bodies (id, codec, payload, headers, record) VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	for i, r := range rows {
		args, _, _, _ := get(r)
		res, err := ins.Exec(args...)
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		bd := &bodies[i]
		if _, err := body.Exec(id, bd.codec, bd.p, bd.h, bd.r); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(`INSERT INTO kafka_offsets (cluster, topic, kpartition, next_offset, updated_at) VALUES ('prod', 'orders.dlq', 0, ?, 1)
ON CONFLICT (cluster, topic, kpartition) DO UPDATE SET next_offset = excluded.next_offset`, next); err != nil {
		return err
	}
	return tx.Commit()
}

// diskBytes checkpoints the database and returns the size of its file and
// WAL.
func diskBytes(b *testing.B, db *sql.DB, path string) float64 {
	b.Helper()
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
		}
	}
	return float64(total)
}

// writtenBytes is this process's write_bytes from /proc/self/io, or its
// wchar where write_bytes stays 0 (see BenchmarkCapture).
var writtenBytesField = sync.OnceValue(func() string {
	if readProcIO()["write_bytes"] > 0 {
		return "write_bytes"
	}
	return "wchar"
})

func writtenBytes(b *testing.B) int64 {
	b.Helper()
	return readProcIO()[writtenBytesField()]
}

func readProcIO() map[string]int64 {
	out := map[string]int64{}
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if ok {
			var n int64
			fmt.Sscan(v, &n)
			out[k] = n
		}
	}
	return out
}

// BenchmarkTextCatchup: a flood of 10,000 dead letters a second for 20 s,
// taken as the Kafka indexer takes a backlog: each IndexKafka stores
// everything that has arrived by then, up to captureBatch
// (indexer.DefaultKafkaMaxBatch) records, and waits for the next record
// only when none is waiting. For the last entry of every batch it
// measures the time from its capture commit until a text search for its
// id finds it; p99-ms is the figure (target 5,000). captured/s is the rate
// capture reached (arrived entries over the time until the last was
// committed): below 10,000 the machine could not keep up with the flood,
// and the p99 is of a slower one. It has no baseline: a store that
// indexes text in the capture transaction has no catch-up to measure. A
// single benchmark, not /switchyard, so that scripts/bench.sh prints it as
// standalone.
func BenchmarkTextCatchup(b *testing.B) {
	items := benchIndexItems()
	const (
		rate     = 10000
		duration = 20 * time.Second
		total    = int(rate * duration / time.Second)
	)
	if len(items) < total {
		b.Fatalf("%d bench items, want %d", len(items), total)
	}
	var lat []time.Duration
	var captureTime time.Duration
	for b.Loop() {
		s, err := Open(context.Background(), filepath.Join(b.TempDir(), "dlq.db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		type sample struct {
			id int64
			at time.Time
		}
		samples := make(chan sample, 1024)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sm := range samples {
				for {
					// Other entries can match too (a UUID's digits-only
					// part can equal an id): the entry must be on the page.
					p, err := s.FindEntries(context.Background(), Filter{Q: fmt.Sprintf("ids:%d", sm.id), Limit: 500})
					if err != nil {
						b.Error(err)
						return
					}
					if slices.ContainsFunc(p.Entries, func(e Entry) bool { return e.ID == sm.id }) {
						lat = append(lat, time.Since(sm.at))
						break
					}
					// Every 20 ms: a finer poll would take CPU from the
					// flood it measures.
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
		start := time.Now()
		// arrived is how many records have arrived by t: one every
		// 1/rate seconds from start.
		arrived := func(t time.Time) int { return min(int(t.Sub(start)*rate/time.Second), total) }
		for off := 0; off < total; {
			n := min(arrived(time.Now())-off, captureBatch)
			if n <= 0 {
				time.Sleep(time.Until(start.Add(time.Duration(off+1) * time.Second / rate)))
				continue
			}
			if _, err := s.IndexKafka(context.Background(), "prod", "orders.dlq", 0, items[off:off+n], int64(off+n)); err != nil {
				b.Fatal(err)
			}
			off += n
			samples <- sample{int64(off), time.Now()} // ids are 1.. in offset order
		}
		captureTime += time.Since(start)
		close(samples)
		wg.Wait()
		s.Close()
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	}
	b.ReportMetric(float64(total*b.N)/captureTime.Seconds(), "captured/s")
}

// BenchmarkCaptureRefailures: a redrive whose messages all fail again (the
// downstream is still broken) sends its dead letters straight back. Each
// re-failure is linked to the entry it was redriven from, found among
// its job's ledger, in the capture transaction. 20,000 realistic records
// are captured, a redrive job holds them all, and then the same records
// come back as re-failures carrying its provenance headers. msgs/s is the
// re-failures' capture rate; first-msgs/s, beside it, that of the same
// records as first failures into the same store, in the same run.
func BenchmarkCaptureRefailures(b *testing.B) {
	items := benchIndexItems()[:20000]
	n := len(items)
	back := make([]IndexItem, n)
	for i, it := range items {
		from := it.DL
		from.DLQ = delivery.Location{Broker: delivery.BrokerKafka, Cluster: "prod", Topic: "orders.dlq", Partition: 0, Offset: it.DL.DLQ.Offset}
		back[i] = it
		back[i].DL.DLQ.Offset = int64(n + i)
		back[i].DL.Headers, _, _ = delivery.RedriveHeaders(from, 1)
	}
	var first, again time.Duration
	for b.Loop() {
		b.StopTimer()
		s, err := Open(context.Background(), filepath.Join(b.TempDir(), "dlq.db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		capture := func(items []IndexItem, base int) time.Duration {
			start := time.Now()
			for off := 0; off < len(items); off += captureBatch {
				end := min(off+captureBatch, len(items))
				if _, err := s.IndexKafka(context.Background(), "prod", "orders.dlq", 0, items[off:end], int64(base+end)); err != nil {
					b.Fatal(err)
				}
			}
			return time.Since(start)
		}
		b.StartTimer()
		first += capture(items, 0)
		b.StopTimer()
		j, err := s.CreateJob(context.Background(), JobRecord{Action: "redrive", Access: access.ActionRedrive, State: JobRunning, Actor: "bench", Request: []byte("{}")},
			Selection{Filter: &Filter{Destination: "orders.dlq"}, Eligible: []Status{StatusDead}}, StatusRedriving)
		if err != nil || j.ID != 1 || j.Total != n {
			b.Fatalf("job %d of %d entries: %v", j.ID, j.Total, err)
		}
		if err := s.WaitText(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		again += capture(back, n)
		b.StopTimer()
		var linked int
		if err := s.db.QueryRow("SELECT count(*) FROM entries WHERE refailure_of != 0").Scan(&linked); err != nil || linked != n {
			b.Fatalf("%d of %d re-failures linked: %v", linked, n, err)
		}
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/again.Seconds(), "msgs/s")
	b.ReportMetric(float64(n*b.N)/first.Seconds(), "first-msgs/s")
}
