package dlqstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"switchyard/delivery"
)

// pendingSendsSQL reads a batch of a job's pending ledger items joined to
// their entries and bodies in one statement, in seq order: the partial index
// job_items_pending walks the ledger and each item finds its entry and body
// by rowid. The entries are left-joined so that an item whose entry was
// purged meanwhile still comes back (with entry id 0) and fails alone.
var pendingSendsSQL = `SELECT i.seq, i.entry_id, i.destination, i.prev_status,
	coalesce(e.id, 0), coalesce(e.broker, ''), coalesce(e.cluster, ''), coalesce(e.destination, ''),
	coalesce(e.kpartition, -1), coalesce(e.koffset, -1), coalesce(e.message_id, ''),
	coalesce(e.payload_size, 0), coalesce(e.payload_hash, ''), coalesce(e.truncated, 0),
	coalesce(b.codec, 0), b.payload, b.headers, b.record
FROM job_items i LEFT JOIN entries e ON e.id = i.entry_id LEFT JOIN entry_bodies b ON b.id = e.id
WHERE i.job_id = ? AND i.state = ` + lit(ItemPending) + ` AND i.seq > ? ORDER BY i.seq LIMIT ?`

// pendingSends returns up to limit pending items of a job after seq
// afterSeq, in order, each with what sending its entry takes and nothing
// more: the entry's id (0 when it was purged), its DLQ coordinates, message
// id, payload size, hash and truncation (to read a cut payload back), and of
// its body the payload as stored, the headers, and from the record only the
// key, origin, DLQ, redrive count and the envelope's id, correlation id and
// type (sendRecord). Status, tenant, group, times, the error and the rest of
// the record stay unread: decoding the whole record and entry row cost ten
// times what a send does.
func (s *Store) pendingSends(ctx context.Context, jobID int64, afterSeq, limit int) ([]JobItem, []Entry, error) {
	rows, err := s.db.QueryContext(ctx, pendingSendsSQL, jobID, afterSeq, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("pending items of job %d: %w", jobID, err)
	}
	defer rows.Close()
	// Sized for a full batch and filled in place: an Entry is big, and
	// growing the slice copied each one several times.
	items := make([]JobItem, 0, min(limit, 4096))
	entries := make([]Entry, 0, min(limit, 4096))
	for rows.Next() {
		it := JobItem{JobID: jobID, State: ItemPending}
		entries = append(entries, Entry{})
		e := &entries[len(entries)-1]
		var (
			part             int64
			truncated, codec int
			payload, record  sql.RawBytes
			headers          []byte // copied: decodeHeaders may keep slices of it
		)
		if err := rows.Scan(&it.Seq, &it.EntryID, &it.Target, &it.PrevStatus,
			&e.ID, &e.Broker, &e.Cluster, &e.Destination, &part, &e.Offset, &e.MessageID,
			&e.PayloadSize, &e.PayloadHash, &truncated, &codec, &payload, &headers, &record); err != nil {
			return nil, nil, fmt.Errorf("pending items of job %d: %w", jobID, err)
		}
		e.Partition, e.Truncated = int32(part), truncated != 0
		if e.ID != 0 {
			d, err := s.dictOf(ctx, codec)
			if err != nil {
				return nil, nil, fmt.Errorf("pending items of job %d: entry %d: %w", jobID, e.ID, err)
			}
			if e.DL, err = sendBody(d, codec, payload, headers, record); err != nil {
				return nil, nil, fmt.Errorf("pending items of job %d: entry %d: %w", jobID, e.ID, err)
			}
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("pending items of job %d: %w", jobID, err)
	}
	return items, entries, nil
}

// sendRecord is the part of a stored record (storedRecord, whose fields
// are delivery.DeadLetter's) that a send reads: the key, where the message
// came from and where its dead letter sits (RedriveHeaders), its redrive
// count, and the envelope's ids and type (the RabbitMQ properties).
// Unmarshalling into it skips the error, stack and times without building
// them.
type sendRecord struct {
	Envelope *struct {
		ID            string `json:"id"`
		Type          string `json:"type"`
		CorrelationID string `json:"correlation_id"`
	} `json:"envelope"`
	Key          []byte            `json:"key"`
	Origin       delivery.Location `json:"origin"`
	DLQ          delivery.Location `json:"dlq"`
	RedriveCount int               `json:"redrive_count"`
}

// sendBody is the dead letter of one body row as far as a send reads it
// (see sendRecord), each blob unpacked by the row's codec and the set it
// names (d). The raw bytes are the driver's: everything kept is copied.
func sendBody(d *dictSet, codec int, payload, headers, record []byte) (delivery.DeadLetter, error) {
	var dl delivery.DeadLetter
	p, err := unpackBlob(d, codec, codecPayload, payload)
	if err != nil {
		return dl, fmt.Errorf("payload: %w", err)
	}
	if !packed(codec, codecPayload) && p != nil {
		p = append(make([]byte, 0, len(p)), p...)
	}
	dl.Payload = p
	h, err := unpackBlob(d, codec, codecHeaders, headers)
	if err != nil {
		return dl, fmt.Errorf("headers: %w", err)
	}
	if dl.Headers, err = decodeHeaders(h); err != nil {
		return dl, fmt.Errorf("decode headers: %w", err)
	}
	r, err := unpackBlob(d, codec, codecRecord, record)
	if err != nil {
		return dl, fmt.Errorf("record: %w", err)
	}
	if r == nil {
		return dl, nil // no body row: sent as the empty message it would read as
	}
	sr, err := readSendRecord(r)
	if err != nil {
		return dl, fmt.Errorf("decode record: %w", err)
	}
	dl.Key, dl.Origin, dl.DLQ, dl.RedriveCount = sr.Key, sr.Origin, sr.DLQ, sr.RedriveCount
	if env := sr.Envelope; env != nil {
		dl.Envelope = &delivery.Envelope{ID: env.ID, Type: env.Type, CorrelationID: env.CorrelationID}
	}
	return dl, nil
}

// readSendRecord reads a sendRecord from a stored record. It walks the
// record's top level and reads only the values of the fields it needs,
// stepping over the rest — the error with its message, details and stack,
// the times — without building them; the strings and numbers it reads are
// taken as written when they hold no escape. Unmarshalling the same fields
// with encoding/json cost several times the rest of the read. A record it
// cannot walk is unmarshalled as a whole.
func readSendRecord(r []byte) (sendRecord, error) {
	var sr sendRecord
	ok := walkObject(r, func(k, v []byte) bool {
		switch string(k) {
		case "envelope":
			if string(v) == "null" {
				return true
			}
			env := &struct {
				ID            string `json:"id"`
				Type          string `json:"type"`
				CorrelationID string `json:"correlation_id"`
			}{}
			sr.Envelope = env
			return walkObject(v, func(k, v []byte) bool {
				switch string(k) {
				case "id":
					return jsonString(v, &env.ID)
				case "type":
					return jsonString(v, &env.Type)
				case "correlation_id":
					return jsonString(v, &env.CorrelationID)
				}
				return true
			})
		case "key":
			var key string
			if string(v) == "null" || !jsonString(v, &key) {
				return string(v) == "null"
			}
			b, err := base64.StdEncoding.DecodeString(key)
			sr.Key = b
			return err == nil
		case "origin":
			return readLocation(v, &sr.Origin)
		case "dlq":
			return readLocation(v, &sr.DLQ)
		case "redrive_count":
			n, err := strconv.Atoi(string(v))
			sr.RedriveCount = n
			return err == nil
		}
		return true
	})
	if ok {
		return sr, nil
	}
	sr = sendRecord{}
	return sr, json.Unmarshal(r, &sr)
}

// readLocation reads a delivery.Location's JSON (its tags) into l.
func readLocation(b []byte, l *delivery.Location) bool {
	return walkObject(b, func(k, v []byte) bool {
		var dst *string
		switch string(k) {
		case "partition":
			n, err := strconv.ParseInt(string(v), 10, 32)
			l.Partition = int32(n)
			return err == nil
		case "offset":
			n, err := strconv.ParseInt(string(v), 10, 64)
			l.Offset = n
			return err == nil
		case "broker":
			dst = &l.Broker
		case "cluster":
			dst = &l.Cluster
		case "topic":
			dst = &l.Topic
		case "vhost":
			dst = &l.VHost
		case "exchange":
			dst = &l.Exchange
		case "routing_key":
			dst = &l.RoutingKey
		case "queue":
			dst = &l.Queue
		case "consumer_group":
			dst = &l.ConsumerGroup
		case "service":
			dst = &l.Service
		default:
			return true
		}
		return jsonString(v, dst)
	})
}

// jsonString sets *dst to the JSON string v: its bytes as they are when it
// holds no escape, else as encoding/json reads it. It reports whether v
// was a string.
func jsonString(v []byte, dst *string) bool {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false
	}
	if in := v[1 : len(v)-1]; bytes.IndexByte(in, '\\') < 0 {
		*dst = string(in)
		return true
	}
	return json.Unmarshal(v, dst) == nil
}

// walkObject calls f with each key (as written, quotes off; the keys of a
// stored record need no unescaping) and raw value of the JSON object b, in
// order, until f returns false. It reports whether b was an object it
// walked to the end and f took every member. Values are delimited, not
// validated: f's decoding validates the ones it reads.
func walkObject(b []byte, f func(k, v []byte) bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) {
		if b[i] != '"' {
			return false
		}
		end := skipString(b, i)
		if end < 0 {
			return false
		}
		k := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		if vend < 0 || !f(k, b[i:vend]) {
			return false
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the JSON string starting at b[i]
// (a quote), or -1.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value starting at b[i], or
// -1: a string, or anything up to the comma or closing bracket that ends
// it at its depth, strings inside stepped over whole.
func skipValue(b []byte, i int) int {
	if i < len(b) && b[i] == '"' {
		return skipString(b, i)
	}
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			if i = skipString(b, i); i < 0 {
				return -1
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	if depth == 0 {
		return i
	}
	return -1
}
