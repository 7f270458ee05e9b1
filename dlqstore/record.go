package dlqstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"switchyard/delivery"
)

// encoder reuses its buffers across a batch.
type encoder struct{}

// storedHeader is one header in entries.headers: the value as a JSON string
// when it is UTF-8 (most are), base64 only when it is not, so that the
// column stays readable and a third smaller than []byte's base64.
type storedHeader struct {
	K string  `json:"k"`
	V *string `json:"v,omitempty"`
	B []byte  `json:"b,omitempty"`
}

// headers encodes h as the JSON array of storedHeader that decodeHeaders
// (encoding/json) reads, by hand: reflection cost more than the rest of
// an entry's row, for a shape this simple.
func (encoder) headers(h delivery.Headers) []byte {
	if len(h) == 0 {
		return nil
	}
	n := 2
	for _, x := range h {
		n += len(x.Key) + len(x.Value)*4/3 + 16
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, x := range h {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"k":`...)
		b = appendJSONString(b, x.Key)
		if x.Value != nil {
			mark := len(b)
			var utf8OK bool
			if b, utf8OK = appendJSON(append(b, `,"v":`...), x.Value, true); !utf8OK {
				b = append(b[:mark], `,"b":"`...)
				b = base64.StdEncoding.AppendEncode(b, x.Value)
				b = append(b, '"')
			}
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD as
// encoding/json does; everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	b, _ = appendJSON(b, s, false)
	return b
}

// appendJSON appends s as appendJSONString does, or, when strict, stops at
// invalid UTF-8 and reports false (a header value is then stored as
// base64): one pass where checking first and then escaping took two, and a
// value need not be copied into a string. Runs of bytes that need no
// escape (most of a header) are appended whole; a byte at a time took more
// than half of the header encoding's time.
func appendJSON[T string | []byte](b []byte, s T, strict bool) ([]byte, bool) {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	done := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[done:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			done = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			if strict {
				return b, false
			}
			b = append(b, s[done:i]...)
			b = append(b, "\\ufffd"...)
			done = i + 1
		}
		i += size
	}
	b = append(b, s[done:]...)
	return append(b, '"'), true
}

// decodeHeaders reads entries.headers. What encoder.headers (and
// encoding/json before it) writes is read by hand (parseHeaders): a
// redrive decodes every entry's headers, and reflection cost a quarter of
// a Kafka redrive's CPU. Anything else — whitespace, null, another key
// order — goes to encoding/json, which decides.
func decodeHeaders(b []byte) (delivery.Headers, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if h, ok := parseHeaders(b); ok {
		return h, nil
	}
	return decodeHeadersJSON(b)
}

// decodeHeadersJSON is decodeHeaders by encoding/json alone.
func decodeHeadersJSON(b []byte) (delivery.Headers, error) {
	var in []storedHeader
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	out := make(delivery.Headers, len(in))
	for i, x := range in {
		out[i].Key = x.K
		switch {
		case x.V != nil:
			out[i].Value = []byte(*x.V)
		case x.B != nil:
			out[i].Value = x.B
		}
	}
	return out, nil
}

// parseHeaders reads the JSON array of storedHeader exactly as
// encoder.headers writes it — [{"k":"…"},{"k":"…","v":"…"},{"k":"…","b":"…"}]
// with no space — and reports false for anything else.
func parseHeaders(b []byte) (delivery.Headers, bool) {
	p := headerParser{b: b}
	if !p.lit("[") {
		return nil, false
	}
	out := make(delivery.Headers, 0, bytes.Count(b, []byte(`{"k":`)))
	if p.lit("]") {
		return out, p.i == len(b)
	}
	for {
		if !p.lit(`{"k":`) {
			return nil, false
		}
		k, ok := p.str()
		if !ok {
			return nil, false
		}
		h := delivery.Header{Key: k}
		switch {
		case p.lit(`,"v":`):
			v, ok := p.str()
			if !ok {
				return nil, false
			}
			h.Value = []byte(v)
		case p.lit(`,"b":`):
			v, ok := p.str()
			if !ok {
				return nil, false
			}
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return nil, false
			}
			h.Value = raw
		}
		if !p.lit("}") {
			return nil, false
		}
		out = append(out, h)
		if p.lit("]") {
			return out, p.i == len(b)
		}
		if !p.lit(",") {
			return nil, false
		}
	}
}

// headerParser walks the bytes of parseHeaders.
type headerParser struct {
	b []byte
	i int
}

// lit consumes s if the input continues with it.
func (p *headerParser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// str consumes a JSON string: by hand when it has no escape and is valid
// UTF-8 (what headers mostly are), else through encoding/json, which
// decides what its escapes mean.
func (p *headerParser) str() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	start, escaped := p.i+1, false
	j := start
	for ; j < len(p.b); j++ {
		c := p.b[j]
		if c == '"' {
			break
		}
		if c == '\\' {
			escaped = true
			j++ // the escaped byte cannot end the string
		} else if c < 0x20 {
			return "", false
		}
	}
	if j >= len(p.b) {
		return "", false
	}
	p.i = j + 1
	if !escaped {
		if !utf8.Valid(p.b[start:j]) {
			return "", false
		}
		return string(p.b[start:j]), true
	}
	var s string
	if err := json.Unmarshal(p.b[start-1:j+1], &s); err != nil {
		return "", false
	}
	return s, true
}

// storedRecord is entries.record: the dead letter minus what has its own
// column (payload, headers), the envelope's inner payload when the stored
// payload is whole (it is re-read from there), and the stack trace when a
// header carries it verbatim (Spring, Connect and Switchyard's own format
// all do): StackHeader then names that header. Stacks are the biggest part
// of a dead letter, often kilobytes, and would otherwise be stored twice.
type storedRecord struct {
	delivery.DeadLetter
	StackHeader string `json:"stack_header,omitempty"`
}

func (encoder) record(dl *delivery.DeadLetter, truncated bool) []byte {
	r := storedRecord{DeadLetter: *dl}
	c := &r.DeadLetter
	c.Payload, c.Headers = nil, nil
	if c.Envelope != nil {
		env := *c.Envelope
		// A cut payload cannot give the inner payload back; keep it
		// then, unless it alone is bigger than the cap the indexer chose.
		if !truncated || len(env.Payload) > len(dl.Payload) {
			env.Payload = nil
		}
		c.Envelope = &env
	}
	if st := c.Error.Stack; len(st) > 64 {
		for _, h := range dl.Headers {
			if len(h.Value) == len(st) && string(h.Value) == st {
				if v, _ := dl.Headers.Get(h.Key); string(v) == st { // read back with Get: the last of the key
					r.StackHeader, c.Error.Stack = h.Key, ""
					break
				}
			}
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		// Only Error.Details can hold an unmarshalable value (it came
		// from JSON, so in practice it cannot); keep the rest.
		c.Error.Details = nil
		b, _ = json.Marshal(r)
	}
	return b
}

func decodeRecord(b, payload []byte, headers []byte, truncated bool) (delivery.DeadLetter, error) {
	var r storedRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r.DeadLetter, fmt.Errorf("decode record: %w", err)
	}
	dl := r.DeadLetter
	dl.Payload = payload
	h, err := decodeHeaders(headers)
	if err != nil {
		return dl, fmt.Errorf("decode headers: %w", err)
	}
	dl.Headers = h
	if r.StackHeader != "" {
		dl.Error.Stack = h.String(r.StackHeader)
	}
	if dl.Envelope != nil && (dl.Envelope.Payload == nil || string(dl.Envelope.Payload) == "null") && !truncated {
		if env, err := delivery.ParseEnvelope(payload); err == nil {
			dl.Envelope.Payload = env.Payload
		}
	}
	return dl, nil
}
