package dlqstore

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
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

// The generator makes realistic dead letters: platform envelopes of a few
// hundred bytes with ids, Switchyard dead-letter headers (error, stack,
// origin) plus propagation headers, decoded with delivery.Decode exactly as
// the indexer does. Everything derives from (seed, i), so a record can be
// regenerated for the baseline scan.

var (
	benchTenants = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell", "cyberdyne", "soylent",
		"wonka", "oscorp", "aperture", "massive", "vandelay", "duff", "krusty", "gringotts", "monsters", "pied-piper"}
	benchTopics = []string{"orders.dlq", "payments.dlq", "shipping.dlq", "inventory.dlq", "billing.DLT", "notify-dlq",
		"dlq.search", "users.dlq", "audit_error", "ledger.dlq"}
	benchTypes = []string{"order.created", "order.cancelled", "payment.authorized", "payment.failed", "shipment.dispatched",
		"stock.reserved", "invoice.issued", "user.registered", "email.requested", "ledger.posted", "refund.requested", "cart.checked_out"}
	benchErrors = []struct{ code, msg, exc, frame string }{
		{"VALIDATION", "field %q must not be empty", "javax.validation.ConstraintViolationException", "com.acme.orders.OrderValidator.validate"},
		{"NOT_FOUND", "order %d not found", "com.acme.orders.OrderNotFoundException", "com.acme.orders.OrderRepository.load"},
		{"TIMEOUT", "call to payment-gateway timed out after %dms", "java.net.SocketTimeoutException", "com.acme.pay.GatewayClient.authorize"},
		{"DESERIALIZATION", "Unrecognized field %q (class com.acme.Order), not marked as ignorable", "com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException", "com.acme.orders.OrderListener.on"},
		{"CONFLICT", "optimistic lock failed for customer %d", "org.hibernate.StaleObjectStateException", "com.acme.crm.CustomerService.update"},
		{"DOWNSTREAM", "HTTP 503 from inventory-service for sku %d", "com.acme.http.UpstreamException", "com.acme.stock.StockClient.reserve"},
		{"NULL", "Cannot invoke \"String.length()\" because \"%s\" is null", "java.lang.NullPointerException", "com.acme.notify.Templates.render"},
		{"DUPLICATE", "duplicate key value violates unique constraint \"payments_pkey\" (id=%d)", "org.postgresql.util.PSQLException", "com.acme.pay.PaymentDao.insert"},
		{"DEADLOCK", "deadlock detected while posting ledger entry %d", "org.postgresql.util.PSQLException", "com.acme.ledger.Poster.post"},
		{"RATE_LIMIT", "rate limited by email provider, retry after %ds", "com.acme.mail.ThrottledException", "com.acme.mail.Sender.send"},
		{"SCHEMA", "schema id %d not found in registry", "io.confluent.kafka.schemaregistry.client.rest.exceptions.RestClientException", "com.acme.search.Indexer.index"},
		{"AUTH", "token expired for service account svc-%d", "com.acme.security.AuthException", "com.acme.users.Directory.lookup"},
	}
	benchWords = strings.Fields("express standard priority gift wrap fragile returnable discount coupon loyalty premium bundle " +
		"warehouse berlin paris lisbon oslo rome madrid vienna dublin warsaw prague zürich café naïve résumé")
)

const benchEpoch = 1772366400 // 2026-03-01T12:00:00Z

// benchMessage returns record i of a DLQ topic as it sits in Kafka.
func benchMessage(i int) (delivery.Message, string) {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	tenant := benchTenants[min(int(r.ExpFloat64()*4), len(benchTenants)-1)] // skewed, like real tenants
	topic := benchTopics[r.IntN(len(benchTopics))]
	typ := benchTypes[r.IntN(len(benchTypes))]
	e := benchErrors[r.IntN(len(benchErrors))]
	var msg string
	if strings.Contains(e.msg, "%q") || strings.Contains(e.msg, "%s") {
		msg = fmt.Sprintf(e.msg, benchWords[r.IntN(len(benchWords))])
	} else {
		msg = fmt.Sprintf(e.msg, r.IntN(1_000_000))
	}
	id := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Int64N(1<<48))
	// Records reach a DLQ topic in the order they failed: record i failed
	// about i × 2.6 s after the first (1,000,000 records span 30 days),
	// give or take five minutes (consumers fail at slightly different
	// times, and retries delay some).
	at := time.Unix(benchEpoch, 0).Add(-30*24*time.Hour + time.Duration(i)*2592*time.Millisecond +
		time.Duration(r.Int64N(int64(10*time.Minute))) - 5*time.Minute).UTC()
	order := fmt.Sprintf("ord-%07d", r.IntN(10_000_000))
	payload := map[string]any{
		"order_id": order, "customer_id": fmt.Sprintf("cus-%06d", r.IntN(1_000_000)),
		"amount": float64(r.IntN(100000)) / 100, "currency": []string{"EUR", "USD", "GBP"}[r.IntN(3)],
		"items": []map[string]any{{"sku": fmt.Sprintf("SKU-%05d", r.IntN(100000)), "qty": 1 + r.IntN(5)}},
		"note":  benchWords[r.IntN(len(benchWords))] + " " + benchWords[r.IntN(len(benchWords))] + " delivery to " + benchWords[13+r.IntN(10)],
	}
	raw, _ := json.Marshal(payload)
	env := delivery.Envelope{ID: id, Type: typ, OccurredAt: at.Add(-time.Second).Format(time.RFC3339Nano), Source: strings.Split(topic, ".")[0] + "-service",
		CorrelationID: fmt.Sprintf("corr-%012x", r.Int64N(1<<48)), TraceID: fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()),
		Payload: raw, Metadata: delivery.Metadata{PartitionKey: order, TenantID: tenant}}
	body, _ := json.Marshal(env)
	stack := fmt.Sprintf("%s: %s\n\tat %s(%s.java:%d)\n\tat com.acme.common.Handler.dispatch(Handler.java:88)\n\tat org.springframework.kafka.listener.KafkaMessageListenerContainer.doInvoke(KafkaMessageListenerContainer.java:2740)\n\tat java.base/java.lang.Thread.run(Thread.java:1583)",
		e.exc, msg, e.frame, e.frame[strings.LastIndex(e.frame[:strings.LastIndex(e.frame, ".")], ".")+1:strings.LastIndex(e.frame, ".")], 20+r.IntN(200))
	dl := delivery.DeadLetter{
		Error:    delivery.ErrorInfo{Code: e.code, Message: msg, ExceptionType: e.exc, Stack: stack},
		Attempts: 1 + r.IntN(5), FirstFailureAt: at.Add(-time.Duration(r.IntN(600)) * time.Second), LastFailureAt: at,
		Origin: delivery.Location{Broker: delivery.BrokerKafka, Cluster: "prod", Topic: strings.TrimSuffix(topic, ".dlq"), Partition: int32(r.IntN(12)), Offset: r.Int64N(1 << 30),
			ConsumerGroup: strings.Split(topic, ".")[0] + "-consumer"},
		Headers: delivery.Headers{
			{Key: delivery.HeaderTraceparent, Value: []byte("00-" + env.TraceID + "-" + fmt.Sprintf("%016x", r.Uint64()) + "-01")},
			{Key: delivery.HeaderCorrelationID, Value: []byte(env.CorrelationID)},
			{Key: delivery.HeaderEventID, Value: []byte(id)},
			{Key: delivery.HeaderEventType, Value: []byte(typ)},
			{Key: delivery.HeaderTenantID, Value: []byte(tenant)},
		},
	}
	return delivery.Message{
		Location: delivery.Location{Broker: delivery.BrokerKafka, Cluster: "prod", Topic: topic, Partition: 0, Offset: int64(i)},
		Key:      []byte(order), Headers: delivery.EncodeHeaders(dl), Body: body, Timestamp: at,
	}, topic
}

// benchItem decodes record i as the indexer does.
func benchItem(i int) IndexItem {
	m, _ := benchMessage(i)
	dl := delivery.Decode(m)
	return IndexItem{DL: dl, Fingerprint: delivery.Fingerprint(dl), PayloadSize: len(m.Body), PayloadHash: "0", ReceivedAt: m.Timestamp}
}

var benchIndexItems = sync.OnceValue(func() []IndexItem {
	items := make([]IndexItem, 200_000)
	for i := range items {
		items[i] = benchItem(i)
	}
	return items
})

// searchDB is the 1,000,000-entry database, built once per process.
type searchDB struct {
	s       *Store
	dir     string
	n       int
	bytes   int64
	groups  []int64
	samples []int // record numbers whose ids and order ids are searched for
}

const searchEntries = 1_000_000

// DLQSTORE_BENCH_DIR keeps the search database in that directory and
// reuses it on the next run (it takes minutes to build on a small machine).
var benchSearchDB = sync.OnceValues(func() (*searchDB, error) {
	dir, keep := os.Getenv("DLQSTORE_BENCH_DIR"), true
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "dlqstore-bench-"); err != nil {
			return nil, err
		}
		keep = false
	}
	// The file is named after what it holds (benchDBKey): a database
	// seeded by an older schema or an older textOf is never reused, and
	// is removed.
	path := filepath.Join(dir, "dlq-"+benchDBKey()+".db")
	if keep {
		old, _ := filepath.Glob(filepath.Join(dir, "dlq*.db*"))
		for _, f := range old {
			if !strings.HasPrefix(f, path) {
				os.Remove(f)
			}
		}
	}
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		return nil, err
	}
	var have int
	if err := s.db.QueryRow("SELECT count(*) FROM entries").Scan(&have); err != nil {
		return nil, err
	}
	if have == searchEntries {
		return finishSearchDB(s, dir, path, keep)
	}
	if have != 0 {
		// An interrupted build: start again.
		s.Close()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
				return nil, err
			}
		}
		if s, err = Open(context.Background(), path, Options{}); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	// Real settings (WAL, synchronous=NORMAL); batches of 5,000 per
	// topic, generated on the fly so that 1M records never sit in memory.
	const batch = 5000
	next := map[string]int64{}
	byTopic := map[string][]IndexItem{}
	flush := func(topic string) error {
		items := byTopic[topic]
		for k := range items {
			items[k].DL.DLQ.Offset = next[topic] + int64(k)
		}
		next[topic] += int64(len(items))
		_, err := s.IndexKafka(context.Background(), "prod", topic, 0, items, next[topic])
		byTopic[topic] = items[:0]
		return err
	}
	for i := 0; i < searchEntries; i++ {
		it := benchItem(i)
		topic := it.DL.DLQ.Topic
		byTopic[topic] = append(byTopic[topic], it)
		if len(byTopic[topic]) == batch {
			if err := flush(topic); err != nil {
				return nil, err
			}
		}
	}
	for topic := range byTopic {
		if err := flush(topic); err != nil {
			return nil, err
		}
	}
	// Text follows capture asynchronously: the searches measure a
	// complete index.
	if err := s.WaitText(context.Background()); err != nil {
		return nil, err
	}
	// Some history: 10% resolved, 1% quarantined.
	var resolved, quarantined []int64
	for id := int64(1); id <= searchEntries; id++ {
		switch {
		case id%10 == 0:
			resolved = append(resolved, id)
		case id%100 == 1:
			quarantined = append(quarantined, id)
		}
	}
	if _, err := s.SetStatus(context.Background(), resolved, StatusResolved); err != nil {
		return nil, err
	}
	if _, err := s.SetStatus(context.Background(), quarantined, StatusQuarantined); err != nil {
		return nil, err
	}
	// And redrives: ten jobs of 10,000 entries (every tenth entry from 3
	// on), nine done, the last still sending, so that a status shown and
	// filtered consults a ledger of 100,000 items with 10,000 pending.
	for k := range 10 {
		ids := make([]int64, 0, MaxSelectIDs)
		for id := int64(3 + k*100_000); len(ids) < MaxSelectIDs; id += 10 {
			ids = append(ids, id)
		}
		j, err := s.CreateJob(context.Background(), JobRecord{Action: "redrive", Access: access.ActionRedrive, State: JobRunning, Request: []byte("{}")},
			Selection{IDs: ids, Eligible: []Status{StatusDead, StatusQuarantined}}, StatusRedriving)
		if err != nil {
			return nil, err
		}
		if k == 9 {
			break
		}
		outs := make([]Outcome, j.Total)
		for i := range outs {
			outs[i] = Outcome{Seq: i + 1, State: ItemSent}
		}
		if err := s.CompleteItems(context.Background(), j.ID, outs, StatusRedriven, ""); err != nil {
			return nil, err
		}
		if err := s.SetJobState(context.Background(), j.ID, JobCompleted, "", true); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(os.Stderr, "dlqstore bench: built %d entries in %s\n", searchEntries, time.Since(start).Round(time.Second))
	return finishSearchDB(s, dir, path, keep)
})

// benchDBKey names the search database by its content: a hash of the
// schema's migrations and of the full-text row of the first record (what
// textOf stores), so that a change to either seeds a new database.
func benchDBKey() string {
	h := fnv.New64a()
	for _, m := range Migrations() {
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00", m.Version, m.Name, m.SQL)
	}
	it := benchItem(0)
	fmt.Fprintf(h, "jobs\x00%d\x00%q", searchEntries, textOf(1, &it, entryFilters{tenant: it.DL.Envelope.Metadata.TenantID, eventType: it.DL.Envelope.Type,
		errorCode: it.DL.Error.Code, broker: delivery.BrokerKafka, cluster: "prod", destination: it.DL.DLQ.Topic}).args(1))
	return fmt.Sprintf("%016x", h.Sum64())
}

func finishSearchDB(s *Store, dir, path string, keep bool) (*searchDB, error) {
	if err := s.WaitText(context.Background()); err != nil {
		return nil, err
	}
	if _, err := s.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	db := &searchDB{s: s, dir: dir, n: searchEntries, bytes: fi.Size()}
	if !keep {
		benchBuilt.Lock()
		benchBuilt.db = db
		benchBuilt.Unlock()
	}
	gs, _, err := s.Groups(context.Background(), GroupFilter{Limit: 500})
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		db.groups = append(db.groups, g.ID)
	}
	r := rand.New(rand.NewPCG(7, 7))
	for range 1000 {
		db.samples = append(db.samples, r.IntN(searchEntries))
	}
	fmt.Fprintf(os.Stderr, "dlqstore bench: %d entries, %d bytes (%.0f bytes/entry)\n", searchEntries, fi.Size(), float64(fi.Size())/searchEntries)
	return db, nil
}

// benchBuilt records the search database's directory once it exists, so
// that TestMain removes it without building it.
var benchBuilt struct {
	sync.Mutex
	db *searchDB
}

func TestMain(m *testing.M) {
	code := m.Run()
	benchBuilt.Lock()
	if db := benchBuilt.db; db != nil {
		db.s.Close()
		os.RemoveAll(db.dir)
	}
	benchBuilt.Unlock()
	os.Exit(code)
}

// query is one search of the benchmark, as Filter (ours) and as the
// equivalent predicate of a console that scans the topic.
type query struct {
	f    Filter
	scan func(h map[string]string, body string, v map[string]any) bool
}

func scope(ts ...string) *TenantScope { return &TenantScope{Tenants: ts} }

func randomQuery(r *rand.Rand, db *searchDB, kind string) query {
	tenant := benchTenants[r.IntN(len(benchTenants))]
	sample := func() (delivery.Message, IndexItem) {
		i := db.samples[r.IntN(len(db.samples))]
		m, _ := benchMessage(i)
		return m, benchItem(i)
	}
	contains := func(s string) func(map[string]string, string, map[string]any) bool {
		ls := strings.ToLower(s)
		return func(h map[string]string, body string, _ map[string]any) bool {
			if strings.Contains(strings.ToLower(body), ls) {
				return true
			}
			for _, v := range h {
				if strings.Contains(strings.ToLower(v), ls) {
					return true
				}
			}
			return false
		}
	}
	text := func() (string, func(map[string]string, string, map[string]any) bool) {
		switch r.IntN(5) {
		case 0: // an event id someone pasted from a log
			_, it := sample()
			return it.DL.Envelope.ID, contains(it.DL.Envelope.ID)
		case 1: // an order id from the payload
			_, it := sample()
			var p map[string]any
			json.Unmarshal(it.DL.Envelope.Payload, &p) //nolint:errcheck
			o := p["order_id"].(string)
			return o, contains(o)
		case 2: // a word of the error messages
			w := []string{"timed out", "deadlock", "registry", "optimistic lock"}[r.IntN(4)]
			return `"` + w + `"`, contains(w)
		case 3: // an exception class
			e := benchErrors[r.IntN(len(benchErrors))].exc
			short := e[strings.LastIndex(e, ".")+1:]
			return short, contains(short)
		default: // a payload word
			w := benchWords[r.IntN(len(benchWords))]
			return w, contains(w)
		}
	}
	switch kind {
	case "filter-only":
		switch r.IntN(5) {
		case 0:
			return query{f: Filter{Tenants: scope(tenant), Status: []Status{StatusDead}}, scan: func(h map[string]string, _ string, _ map[string]any) bool {
				return h[delivery.HeaderTenantID] == tenant
			}}
		case 1:
			d := benchTopics[r.IntN(len(benchTopics))]
			return query{f: Filter{Destination: d}, scan: func(map[string]string, string, map[string]any) bool { return true }}
		case 2:
			typ, code := benchTypes[r.IntN(len(benchTypes))], benchErrors[r.IntN(len(benchErrors))].code
			return query{f: Filter{EventType: typ, ErrorCode: code}, scan: func(h map[string]string, _ string, _ map[string]any) bool {
				return h[delivery.HeaderEventType] == typ && h[delivery.HeaderErrorCode] == code
			}}
		case 3:
			from := time.Unix(benchEpoch, 0).Add(-time.Duration(r.IntN(29*24)) * time.Hour)
			return query{f: Filter{Tenants: scope(tenant, benchTenants[0]), Status: []Status{StatusDead, StatusQuarantined}, From: from, To: from.Add(24 * time.Hour)},
				scan: func(h map[string]string, _ string, _ map[string]any) bool {
					return h[delivery.HeaderTenantID] == tenant
				}}
		default:
			g := db.groups[r.IntN(len(db.groups))]
			return query{f: Filter{GroupID: g}, scan: func(map[string]string, string, map[string]any) bool { return true }}
		}
	case "full-text":
		q, pred := text()
		return query{f: Filter{Q: q}, scan: pred}
	default: // both
		// The slow shape of issue 16: a common word (65,000 to 1,000,000
		// matches) with a narrow filter — a small tenant (0.3–2% of the
		// entries), or an event type in one DLQ.
		common := func() (string, func(map[string]string, string, map[string]any) bool) {
			w := []string{"delivery", "express", "berlin", "lisbon", `"timed out"`, "PSQLException"}[r.IntN(6)]
			return w, contains(strings.Trim(w, `"`))
		}
		switch r.IntN(4) {
		case 0: // a common word, a small tenant
			q, pred := common()
			small := benchTenants[8+r.IntN(len(benchTenants)-8)]
			return query{f: Filter{Q: q, Tenant: small, Status: []Status{StatusDead}}, scan: func(h map[string]string, body string, v map[string]any) bool {
				return h[delivery.HeaderTenantID] == small && pred(h, body, v)
			}}
		case 1: // a common word, an event type in one DLQ, a tenant's scope
			q, pred := common()
			typ, topic := benchTypes[r.IntN(len(benchTypes))], benchTopics[r.IntN(len(benchTopics))]
			return query{f: Filter{Q: q, EventType: typ, Destination: topic, Tenants: scope(tenant)}, scan: func(h map[string]string, body string, v map[string]any) bool {
				return h[delivery.HeaderTenantID] == tenant && h[delivery.HeaderEventType] == typ &&
					h[delivery.HeaderOriginTopic] == strings.TrimSuffix(topic, ".dlq") && pred(h, body, v)
			}}
		}
		q, pred := text()
		f := Filter{Q: q, Tenants: scope(tenant)}
		if r.IntN(2) == 0 {
			f.Status = []Status{StatusDead}
		} else {
			f.EventType = benchTypes[r.IntN(len(benchTypes))]
		}
		return query{f: f, scan: func(h map[string]string, body string, v map[string]any) bool {
			return h[delivery.HeaderTenantID] == tenant && pred(h, body, v)
		}}
	}
}

// BenchmarkSearch runs random first-page searches (limit 50, with the
// bounded total) over 1,000,000 entries: filter only, full text, and both;
// each beside a linear scan of the same records the way topic-browsing
// consoles search (decode every record's JSON value and headers, match
// substrings). The scan runs over the first 20,000 records and is
// extrapolated linearly to 1,000,000 (its reported ns/op and p50/p99 are
// the extrapolated figures).
func BenchmarkSearch(b *testing.B) {
	db, err := benchSearchDB()
	if err != nil {
		b.Fatal(err)
	}
	// DLQSTORE_BENCH_NO_FILTER_TOKENS measures the plans before the filter
	// tokens (Tuning.NoFilterTokens), over the same database.
	db.s.tuning.NoFilterTokens = os.Getenv("DLQSTORE_BENCH_NO_FILTER_TOKENS") != ""
	for _, kind := range []string{"filter-only", "full-text", "both"} {
		b.Run(kind+"/switchyard", func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, uint64(len(kind))))
			var lat []time.Duration
			for b.Loop() {
				q := randomQuery(r, db, kind)
				start := time.Now()
				if _, err := db.s.FindEntries(context.Background(), q.f); err != nil {
					b.Fatalf("%+v: %v", q.f, err)
				}
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat, 1)
			b.ReportMetric(float64(db.bytes)/float64(db.n), "bytes/entry")
		})
		b.Run(kind+"/bare-scan", func(b *testing.B) {
			const sample = 20_000
			recs := benchScanRecords(sample)
			r := rand.New(rand.NewPCG(1, uint64(len(kind))))
			var lat []time.Duration
			for b.Loop() {
				q := randomQuery(r, db, kind)
				start := time.Now()
				hits := 0
				for _, m := range recs {
					h := make(map[string]string, len(m.Headers))
					for _, x := range m.Headers {
						h[x.Key] = string(x.Value)
					}
					var v map[string]any
					_ = json.Unmarshal(m.Body, &v)
					if q.scan(h, string(m.Body), v) {
						hits++
					}
				}
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat, float64(searchEntries)/sample)
		})
	}
}

var benchScanRecords = func() func(n int) []delivery.Message {
	var once sync.Once
	var recs []delivery.Message
	return func(n int) []delivery.Message {
		once.Do(func() {
			for i := range n {
				m, _ := benchMessage(i)
				recs = append(recs, m)
			}
		})
		return recs
	}
}()

// reportLatency reports p50, p99 and the mean (as ns/op), each times scale.
func reportLatency(b *testing.B, lat []time.Duration, scale float64) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(int(float64(len(lat))*p), len(lat)-1)]) * scale / 1e6
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(sum)*scale/float64(len(lat)), "ns/op")
}
