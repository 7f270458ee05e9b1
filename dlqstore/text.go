package dlqstore

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"switchyard/delivery"
)

// entryText is what the full-text index holds of one entry, a field per
// column (fts.go says what each is for).
type entryText struct {
	message, exception, ids, code, destination, service, eventType, payload, key string
	// filters is not text anyone reads or types: the entry's filter values
	// as tokens (filterTokens), so that a filter and a text search are one
	// full-text query.
	filters string
}

// insertTextSQL stores an entryText under the entry's id (entryText.args).
const insertTextSQL = `INSERT INTO entries_fts (rowid, message, exception, ids, code, destination, service, event_type, payload, key, filters)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (t entryText) args(id int64) []any {
	return []any{id, t.message, t.exception, t.ids, t.code, t.destination, t.service, t.eventType, t.payload, t.key, t.filters}
}

// textOf is the text of entry id, stored from it with the entry's filter
// columns f (as stored in entries, its DLQ topic or queue among them): the
// one place that decides what a search finds, for new
// entries (insert) and for the rebuild of older ones (RebuildText) alike.
// Names — exception type, code, topics, queues, services, event type — are
// also given split at camel case (nameText), since the tokenizer splits
// them only at punctuation.
func textOf(id int64, it *IndexItem, f entryFilters) entryText {
	return textFor(it, f).withID(id)
}

// textFor is textOf before the entry has an id: capture computes it while
// it prepares its rows, on every core, and queues it for the text indexer
// once the entry is stored (withID).
func textFor(it *IndexItem, f entryFilters) entryText {
	dl := &it.DL
	o := dl.Origin
	dlq := f.destination
	return entryText{
		filters:     filterTokens(f),
		message:     dl.Error.Message,
		exception:   nameText(dl.Error.ExceptionType),
		ids:         idsText(it),
		code:        nameText(dl.Error.Code),
		destination: namesText(dlq, o.Topic, o.Queue),
		service:     namesText(o.Service, o.ConsumerGroup),
		eventType:   nameText(eventType(*dl)),
		payload:     payloadText(dl.Payload),
		key:         payloadText(dl.Key),
	}
}

// entryFilters are the values of an entry that a filter can name and that
// never change once it is stored (status does, so it stays in SQL only).
type entryFilters struct {
	tenant, eventType, errorCode, broker, cluster, destination, resource string
}

// Kinds of filter token: the first letters after "zf".
const (
	tokTenant      = 't'
	tokEventType   = 'e'
	tokErrorCode   = 'c'
	tokBroker      = 'b'
	tokCluster     = 'k'
	tokDestination = 'd'
	tokResource    = 'r'
)

// filterToken is the full-text token of one filter value: "zf", the kind,
// and 16 hex digits of the value's 64-bit FNV-1a hash — letters and digits
// only, so the tokenizer keeps it whole, and one token whatever the value
// holds. Two values can share a token only by a hash collision, so the
// token narrows a search and the SQL condition on the column still
// decides (and enforces scope).
func filterToken(kind byte, value string) string {
	h := fnv.New64a()
	h.Write([]byte(value))
	return fmt.Sprintf("zf%c%016x", kind, h.Sum64())
}

// filterTokens is the filters column of an entry.
func filterTokens(f entryFilters) string {
	return strings.Join([]string{
		filterToken(tokTenant, f.tenant), filterToken(tokEventType, f.eventType), filterToken(tokErrorCode, f.errorCode),
		filterToken(tokBroker, f.broker), filterToken(tokCluster, f.cluster), filterToken(tokDestination, f.destination),
		filterToken(tokResource, f.resource),
	}, " ")
}

// namesText is nameText of each distinct non-empty name.
func namesText(names ...string) string {
	var out []string
	for i, n := range names {
		if n != "" && !slices.Contains(names[:i], n) {
			out = append(out, nameText(n))
		}
	}
	return strings.Join(out, " ")
}

// nameText is a name followed by its camel-case words when it has any:
// java.net.SocketTimeoutException becomes "java.net.SocketTimeoutException
// Socket Timeout Exception", so that exception:timeout and
// exception:Timeout* find it while the whole name, or any dotted part of
// it, still matches as a phrase.
func nameText(name string) string {
	var words []string
	split := false
	for part := range strings.FieldsFuncSeq(name, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		ws := camelWords(part)
		split = split || len(ws) > 1
		words = append(words, ws...)
	}
	if !split {
		return name
	}
	return name + " " + strings.Join(words, " ")
}

// camelWords splits a run of letters and digits where a lower-case letter
// or digit meets an upper-case one (SocketTimeout) and where an acronym
// ends (HTTPServer: HTTP Server).
func camelWords(s string) []string {
	rs := []rune(s)
	var out []string
	start := 0
	for i := 1; i < len(rs); i++ {
		prev, cur := rs[i-1], rs[i]
		next := rune(0)
		if i+1 < len(rs) {
			next = rs[i+1]
		}
		if unicode.IsUpper(cur) && (unicode.IsLower(prev) || unicode.IsDigit(prev) ||
			unicode.IsUpper(prev) && unicode.IsLower(next)) {
			out = append(out, string(rs[start:i]))
			start = i
		}
	}
	return append(out, string(rs[start:]))
}

// maxFTSText caps the payload text put into the full-text index: the
// first 64 KiB of a body hold whatever an operator searches for, and a 5 MB
// body would otherwise cost megabytes of index.
const maxFTSText = 64 << 10

// withID completes t with the entry's id, the first of its ids.
func (t entryText) withID(id int64) entryText {
	t.ids = strconv.FormatInt(id, 10) + t.ids
	return t
}

// size is about what t holds in memory.
func (t *entryText) size() int {
	return len(t.message) + len(t.exception) + len(t.ids) + len(t.code) + len(t.destination) + len(t.service) +
		len(t.eventType) + len(t.payload) + len(t.key) + len(t.filters) + 10*16
}

// idsText is the ids column of the full-text index but the entry id (which
// withID puts first): envelope id, correlation id (envelope or header),
// trace id and message id, each after a space.
func idsText(it *IndexItem) string {
	var b strings.Builder
	add := func(v string) {
		if v != "" {
			b.WriteByte(' ')
			b.WriteString(v)
		}
	}
	dl := &it.DL
	if dl.Envelope != nil {
		add(dl.Envelope.ID)
		add(dl.Envelope.CorrelationID)
		add(dl.Envelope.TraceID)
	}
	if c := dl.Headers.String(delivery.HeaderCorrelationID); dl.Envelope == nil || c != dl.Envelope.CorrelationID {
		add(c)
	}
	if dl.Envelope == nil {
		add(dl.Headers.String(delivery.HeaderEventID))
		add(traceIDOf(dl.Headers.String(delivery.HeaderTraceparent)))
	}
	add(it.MessageID)
	return b.String()
}

// traceIDOf returns the trace id of a W3C traceparent header.
func traceIDOf(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) == 4 && len(parts[1]) == 32 {
		return parts[1]
	}
	return ""
}

// payloadText is the searchable text of a payload (or key): the bytes
// themselves when they are UTF-8 (cut at a rune boundary to maxFTSText),
// nothing otherwise.
func payloadText(p []byte) string {
	if len(p) > maxFTSText {
		p = p[:maxFTSText]
		for len(p) > 0 && !utf8.RuneStart(p[len(p)-1]) {
			p = p[:len(p)-1]
		}
		if len(p) > 0 {
			p = p[:len(p)-1] // the last rune may be cut: drop it
		}
	}
	if !utf8.Valid(p) {
		return ""
	}
	return string(p)
}
