package access

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// PIIMask replaces every masked value, whatever its JSON type.
const PIIMask = "***"

// PIIRules classify payload fields as PII: event type → JSON paths. A path
// is dotted object keys; a key followed by "[]" means "every element of
// this array" ("items[].card"); "[]" may repeat for nested arrays and may
// stand alone for a payload that is itself an array ("[].email"). There are
// no wildcards ("*" is not a path) and keys containing '.', '[' or ']'
// cannot be addressed. The event type "*" applies its paths to every type.
type PIIRules map[string][]string

// pathStep is one key of a path and how many array levels to descend after it.
type pathStep struct {
	key    string // "" only for a leading bare "[]"
	arrays int
}

// Masker hides PII fields from those without read_pii. Immutable after
// NewMasker and safe for concurrent use.
type Masker struct {
	rules map[string][][]pathStep
}

// NewMasker compiles rules. Errors: EINVALID naming the malformed path.
func NewMasker(rules PIIRules) (*Masker, error) {
	m := &Masker{rules: map[string][][]pathStep{}}
	for typ, paths := range rules {
		for _, p := range paths {
			steps, ok := parsePIIPath(p)
			if !ok {
				return nil, Errorf(EINVALID, "PII path %q of %q is malformed: want dotted keys with optional [] (e.g. customer.email, items[].card)", p, typ)
			}
			m.rules[typ] = append(m.rules[typ], steps)
		}
	}
	return m, nil
}

func parsePIIPath(p string) ([]pathStep, bool) {
	if p == "" || !utf8.ValidString(p) {
		return nil, false
	}
	var steps []pathStep
	for i, seg := range strings.Split(p, ".") {
		st := pathStep{}
		for strings.HasSuffix(seg, "[]") {
			seg = strings.TrimSuffix(seg, "[]")
			st.arrays++
		}
		st.key = seg
		if strings.ContainsAny(seg, "[]*") || (seg == "" && (i > 0 || st.arrays == 0)) {
			return nil, false
		}
		steps = append(steps, st)
	}
	return steps, true
}

// MaskPayload masks the PII fields of a payload of eventType. It returns
// the masked JSON and how many values were masked. Paths that are missing
// (or where the shape differs: an object where "[]" expects an array) are
// left alone. When nothing is masked — including non-JSON payloads — the
// input is returned unchanged, byte for byte; otherwise the JSON is
// re-encoded (object keys sorted, numbers kept exact).
func (m *Masker) MaskPayload(eventType string, payload []byte) ([]byte, int) {
	if m == nil {
		return payload, 0
	}
	paths := slices.Concat(m.rules[eventType], m.rules["*"]) // never append into the shared rules
	if len(paths) == 0 {
		return payload, 0
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return payload, 0
	}
	if _, err := dec.Token(); err != io.EOF {
		return payload, 0 // trailing data: not one JSON value
	}
	n := 0
	for _, p := range paths {
		v = maskAt(v, p, &n)
	}
	if n == 0 {
		return payload, 0
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return payload, 0
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), n
}

// maskAt masks path in v and returns the (possibly replaced) value.
func maskAt(v any, path []pathStep, n *int) any {
	if len(path) == 0 {
		*n++
		return PIIMask
	}
	st := path[0]
	if st.key == "" {
		return maskArrays(v, st.arrays, path[1:], n)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return v
	}
	child, ok := obj[st.key]
	if !ok {
		return v
	}
	obj[st.key] = maskArrays(child, st.arrays, path[1:], n)
	return v
}

// maskArrays descends levels of arrays, then masks rest in each element.
func maskArrays(v any, levels int, rest []pathStep, n *int) any {
	if levels == 0 {
		return maskAt(v, rest, n)
	}
	arr, ok := v.([]any)
	if !ok {
		return v
	}
	for i := range arr {
		arr[i] = maskArrays(arr[i], levels-1, rest, n)
	}
	return v
}

// MaskEnvelope masks the payload of a platform envelope by its "type". The
// rest of the envelope is kept byte for byte (only the payload value is
// spliced). raw comes back unchanged when it is not a JSON object with a
// string "type" and a "payload", or when nothing was masked.
func (m *Masker) MaskEnvelope(raw []byte) ([]byte, int) {
	typ, start, end, ok := envelopeFields(raw)
	if !ok {
		return raw, 0
	}
	masked, n := m.MaskPayload(typ, raw[start:end])
	if n == 0 {
		return raw, 0
	}
	out := make([]byte, 0, len(raw)-(end-start)+len(masked))
	out = append(out, raw[:start]...)
	out = append(out, masked...)
	return append(out, raw[end:]...), n
}

// envelopeFields finds the top-level "type" string and the byte range of
// the top-level "payload" value.
func envelopeFields(raw []byte) (typ string, start, end int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", 0, 0, false
	}
	haveType, havePayload := false, false
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return "", 0, 0, false
		}
		key, _ := kt.(string)
		before := int(dec.InputOffset())
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return "", 0, 0, false
		}
		after := int(dec.InputOffset())
		switch key {
		case "type":
			if json.Unmarshal(val, &typ) != nil {
				return "", 0, 0, false
			}
			haveType = true
		case "payload":
			// raw[before:after] is ": <value>" with any whitespace; the value
			// itself is the last len(val) bytes, as Decode reads no further.
			start, end = after-len(val), after
			if start < before || !bytes.Equal(raw[start:end], val) {
				return "", 0, 0, false
			}
			havePayload = true
		}
	}
	return typ, start, end, haveType && havePayload
}
