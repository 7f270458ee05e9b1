package browse

import (
	"bytes"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
)

// Header is one record header.
type Header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Message is one record as the browser shows it.
type Message struct {
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Key       []byte    `json:"key"`
	Headers   []Header  `json:"headers"`
	Value     []byte    `json:"value"`
	// Tenant is metadata.tenant_id of the envelope, else the tenant_id
	// header, else "".
	Tenant string `json:"tenant"`
	// EventType is the type of the envelope, else the event_type header,
	// else "".
	EventType string `json:"event_type"`
	// Valid is true when the value is a platform envelope.
	Valid bool `json:"valid"`
	// Masked is how many PII values were replaced, the key included.
	Masked int `json:"masked"`
}

// message turns a record into a Message: tenant and type from the
// envelope (else its headers), value and key masked unless the query
// reveals PII for the tenant.
func (b *Browser) message(r *kgo.Record, q *Query) Message {
	m := Message{
		Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
		Key: r.Key, Value: r.Value,
	}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, Header{Key: h.Key, Value: h.Value})
		switch {
		case h.Key == delivery.HeaderTenantID && m.Tenant == "":
			m.Tenant = string(h.Value)
		case h.Key == delivery.HeaderEventType && m.EventType == "":
			m.EventType = string(h.Value)
		}
	}
	if env, err := delivery.ParseEnvelope(r.Value); err == nil && env.Type != "" {
		m.Valid = true
		m.EventType = env.Type
		if env.Metadata.TenantID != "" {
			m.Tenant = env.Metadata.TenantID
		}
	}
	if b.opts.Masker != nil && (q.RevealPII == nil || !q.RevealPII(m.Tenant)) {
		m.Value, m.Masked = b.opts.Masker.MaskMessage(m.EventType, r.Value)
		var masked bool
		if m.Key, masked = b.opts.Masker.MaskKey(m.EventType, r.Key); masked {
			m.Masked++
		}
	}
	return m
}

// matcher is a query's filters, lower-cased once per page.
type matcher struct {
	text, key, value   string
	header, headerText string
	hasHeader          bool
}

func newMatcher(q *Query) matcher {
	m := matcher{text: strings.ToLower(q.Text), key: strings.ToLower(q.Key), value: strings.ToLower(q.Value)}
	m.header, m.headerText, m.hasHeader = headerFilter(q.Header)
	return m
}

// matches reports whether the message, as shown (masked), passes every
// filter.
func (f matcher) matches(m Message) bool {
	if f.text != "" && !containsFold(m.Key, f.text) && !containsFold(m.Value, f.text) &&
		!hasHeader(m.Headers, "", f.text) {
		return false
	}
	if f.key != "" && !containsFold(m.Key, f.key) {
		return false
	}
	if f.value != "" && !containsFold(m.Value, f.value) {
		return false
	}
	return !f.hasHeader || hasHeader(m.Headers, f.header, f.headerText)
}

// hasHeader reports whether a header named name (any name when "") has a
// value containing lowerText.
func hasHeader(hs []Header, name, lowerText string) bool {
	for _, h := range hs {
		if (name == "" || strings.EqualFold(h.Key, name)) && containsFold(h.Value, lowerText) {
			return true
		}
	}
	return false
}

func containsFold(b []byte, lowerText string) bool {
	if lowerText == "" {
		return true
	}
	if utf8.Valid(b) {
		return strings.Contains(strings.ToLower(string(b)), lowerText)
	}
	return bytes.Contains(bytes.ToLower(b), []byte(lowerText))
}
