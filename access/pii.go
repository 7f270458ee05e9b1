package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"switchyard/delivery"
)

// PIIMask replaces every masked value, whatever its JSON type.
const PIIMask = "***"

// The rules that name something outside the payload. A rule that starts
// with "$" is never a payload path.
const (
	// PIIKeyRule names the message's key (the Kafka record key), which
	// producers of the platform set to metadata.partition_key.
	PIIKeyRule = "$key"
	// PIIMetadataPrefix, followed by a field name, names one field of the
	// envelope's "metadata" object: "$metadata.partition_key".
	PIIMetadataPrefix = "$metadata."
)

// metadataPartitionKey and metadataTenantID are the JSON names of
// delivery.Metadata's fields.
const (
	metadataPartitionKey = "partition_key"
	metadataTenantID     = "tenant_id"
)

// PIIRules classify fields as PII: event type → rules. A rule is one of:
//
//   - a payload path: dotted object keys; a key followed by "[]" means
//     "every element of this array" ("items[].card"); "[]" may repeat for
//     nested arrays and may stand alone for a payload that is itself an
//     array ("[].email"). There are no wildcards ("*" is not a path), keys
//     containing '.', '[' or ']' cannot be addressed, and neither can a
//     top-level key starting with '$' (see below);
//   - "$key": the message's key (Kafka record key);
//   - "$metadata.<field>": one field of the envelope's metadata object,
//     e.g. "$metadata.partition_key". tenant_id cannot be masked: access is
//     scoped by it and every page shows it as the tenant.
//
// The event type "*" applies its rules to every type. A key or metadata
// field of a message whose type is unknown (not an envelope with a type,
// no event_type header) is masked when any type's rule names it, since it
// may well be that type's key: failing closed is the safe side for PII.
type PIIRules map[string][]string

// pathStep is one key of a path and how many array levels to descend after it.
type pathStep struct {
	key    string // "" only for a leading bare "[]"
	arrays int
}

// Masker hides PII from those without read_pii: payload fields, message
// keys and envelope metadata fields. Immutable after NewMasker and safe
// for concurrent use.
type Masker struct {
	paths map[string][][]pathStep // event type → payload paths
	keys  map[string]bool         // event types whose key is PII
	meta  map[string][]string     // event type → metadata fields
	// anyKey and anyMeta are the union over every type, for messages
	// whose type is unknown.
	anyKey  bool
	anyMeta []string
	// attrs are the payload paths as span attribute names (AttrMasked):
	// event type → names; anyAttr is their union over every type.
	attrs   map[string]map[string]bool
	anyAttr map[string]bool
}

// NewMasker compiles rules. Errors: delivery.EINVALID naming the malformed rule.
func NewMasker(rules PIIRules) (*Masker, error) {
	m := &Masker{
		paths: map[string][][]pathStep{}, keys: map[string]bool{}, meta: map[string][]string{},
		attrs: map[string]map[string]bool{}, anyAttr: map[string]bool{},
	}
	for typ, list := range rules {
		for _, rule := range list {
			r, err := parsePIIRule(rule)
			if err != nil {
				return nil, delivery.Errorf(delivery.EINVALID, "PII rule %q of %q: %s", rule, typ, err)
			}
			switch {
			case r.key:
				m.keys[typ], m.anyKey = true, true
			case r.field != "":
				if !slices.Contains(m.meta[typ], r.field) {
					m.meta[typ] = append(m.meta[typ], r.field)
				}
				if !slices.Contains(m.anyMeta, r.field) {
					m.anyMeta = append(m.anyMeta, r.field)
				}
			default:
				m.paths[typ] = append(m.paths[typ], r.path)
				name := attrName(r.path)
				if m.attrs[typ] == nil {
					m.attrs[typ] = map[string]bool{}
				}
				m.attrs[typ][name], m.anyAttr[name] = true, true
			}
		}
	}
	return m, nil
}

// ValidPIIRule reports whether rule is a valid rule of PIIRules; the
// error (delivery.EINVALID) says what is wrong with it, for config validation.
func ValidPIIRule(rule string) error {
	if _, err := parsePIIRule(rule); err != nil {
		return delivery.Errorf(delivery.EINVALID, "PII rule %q: %s", rule, err)
	}
	return nil
}

// piiRule is one compiled rule: exactly one of key, field and path is set.
type piiRule struct {
	key   bool
	field string
	path  []pathStep
}

func parsePIIRule(rule string) (piiRule, error) {
	if !utf8.ValidString(rule) {
		return piiRule{}, errors.New("not UTF-8")
	}
	if !strings.HasPrefix(rule, "$") {
		steps, ok := parsePIIPath(rule)
		if !ok {
			return piiRule{}, errors.New("malformed payload path: want dotted keys with optional [] (e.g. customer.email, items[].card), or $key, or $metadata.<field>")
		}
		return piiRule{path: steps}, nil
	}
	if rule == PIIKeyRule {
		return piiRule{key: true}, nil
	}
	field, ok := strings.CutPrefix(rule, PIIMetadataPrefix)
	if !ok {
		return piiRule{}, errors.New(`a rule starting with "$" is "$key" or "$metadata.<field>"`)
	}
	if field == "" || strings.ContainsAny(field, ".[]*$") {
		return piiRule{}, errors.New(`"$metadata.<field>" names one field of the envelope's metadata, e.g. $metadata.partition_key`)
	}
	if field == metadataTenantID {
		return piiRule{}, errors.New("metadata.tenant_id cannot be masked: access is scoped by it and it is shown as the tenant everywhere")
	}
	return piiRule{field: field}, nil
}

func parsePIIPath(p string) ([]pathStep, bool) {
	if p == "" {
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
	return maskJSON(payload, slices.Concat(m.paths[eventType], m.paths["*"])) // never append into the shared rules
}

// MaskKey masks the key of a message of eventType ("" when the type is
// unknown) when a "$key" rule covers it, and says whether it did. An empty
// key has nothing to hide and comes back as is.
func (m *Masker) MaskKey(eventType string, key []byte) ([]byte, bool) {
	if m == nil || len(key) == 0 {
		return key, false
	}
	if (eventType == "" && m.anyKey) || m.keys[eventType] || m.keys["*"] {
		return []byte(PIIMask), true
	}
	return key, false
}

// MaskMetadata masks the fields of an envelope's metadata that
// "$metadata.<field>" rules of eventType ("" when unknown) cover, and
// returns it with how many values were masked. Empty values stay empty.
func (m *Masker) MaskMetadata(eventType string, md delivery.Metadata) (delivery.Metadata, int) {
	if m == nil {
		return md, 0
	}
	n := 0
	for _, f := range m.metadataFields(eventType) {
		if f == metadataPartitionKey && md.PartitionKey != "" {
			md.PartitionKey = PIIMask
			n++
		}
	}
	return md, n
}

// AttrKafkaMessageKey is the span attribute that carries a Kafka record's
// key (delivery.AttrKafkaMessageKey): a "$key" rule masks it. The RabbitMQ
// routing key (messaging.rabbitmq.destination.routing_key) is an address
// chosen by the publisher, not the message's key, and is left alone.
const AttrKafkaMessageKey = delivery.AttrKafkaMessageKey

// Prefixes under which services put payload fields on span attributes
// ("payload.customer.email"); AttrMasked looks through them.
var attrPayloadPrefixes = []string{"event.payload.", "payload."}

// AttrMasked reports whether a span attribute named key, on a span of a
// message of eventType ("" when unknown), holds a value the rules classify
// as PII, so that a trace shows attributes exactly as masked as the
// payload they were copied from:
//   - a payload rule of eventType or "*" names it as a dotted path with
//     "[]" left out: rule "customer.email" masks attribute
//     "customer.email", and also "payload.customer.email" and
//     "event.payload.customer.email"; "items[].card" masks "items.card";
//   - "$key" masks AttrKafkaMessageKey;
//   - "$metadata.<f>" masks "metadata.<f>" and "<f>".
//
// For an unknown type every type's rules apply, failing closed as for
// keys. Masking a value is then the caller's: replace it with PIIMask.
func (m *Masker) AttrMasked(eventType, key string) bool {
	if m == nil || key == "" {
		return false
	}
	if key == AttrKafkaMessageKey {
		return (eventType == "" && m.anyKey) || m.keys[eventType] || m.keys["*"]
	}
	field, _ := strings.CutPrefix(key, "metadata.")
	if eventType == "" && slices.Contains(m.anyMeta, field) ||
		eventType != "" && (slices.Contains(m.meta[eventType], field) || slices.Contains(m.meta["*"], field)) {
		return true
	}
	names, every := m.attrs[eventType], m.attrs["*"]
	if eventType == "" {
		names = m.anyAttr
	}
	if names[key] || every[key] {
		return true
	}
	for _, p := range attrPayloadPrefixes {
		if name, ok := strings.CutPrefix(key, p); ok {
			return names[name] || every[name]
		}
	}
	return false
}

// attrName is a payload path as an attribute name: its keys joined by
// dots, without the "[]".
func attrName(path []pathStep) string {
	keys := make([]string, 0, len(path))
	for _, st := range path {
		if st.key != "" {
			keys = append(keys, st.key)
		}
	}
	return strings.Join(keys, ".")
}

// metadataFields are the metadata fields masked for eventType: the union
// of every type's when the type is unknown.
func (m *Masker) metadataFields(eventType string) []string {
	if eventType == "" {
		return m.anyMeta
	}
	return slices.Concat(m.meta[eventType], m.meta["*"])
}

// maskJSON masks paths in raw, which must be one JSON value; see
// MaskPayload.
func maskJSON(raw []byte, paths [][]pathStep) ([]byte, int) {
	if len(paths) == 0 {
		return raw, 0
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw, 0
	}
	if _, err := dec.Token(); err != io.EOF {
		return raw, 0 // trailing data: not one JSON value
	}
	n := 0
	for _, p := range paths {
		v = maskAt(v, p, &n)
	}
	if n == 0 {
		return raw, 0
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return raw, 0
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

// MaskEnvelope masks a platform envelope: its payload by the envelope's
// "type" and its metadata fields by the "$metadata.<field>" rules (of
// every type when "type" is missing). The rest of the envelope is kept
// byte for byte (only the payload and metadata values are spliced). raw
// comes back unchanged when it is not a JSON object or nothing was masked.
// A key that appears twice (a second "payload" that decoders would take)
// has every occurrence masked, so no copy is shown in the clear.
func (m *Masker) MaskEnvelope(raw []byte) ([]byte, int) {
	if m == nil {
		return raw, 0
	}
	parts, ok := envelopeFields(raw)
	if !ok {
		return raw, 0
	}
	return m.maskEnvelope(raw, parts)
}

// MaskMessage masks a message value whose type, when the value does not
// say it, is eventType (from a header; "" when unknown). A platform
// envelope (a JSON object with a "type" string and a "payload") is masked
// by MaskEnvelope; anything else is a bare payload of eventType, whose
// top-level "metadata", if any, is still masked by eventType's rules (by
// every type's when unknown): it may be an envelope that lacks its type.
func (m *Masker) MaskMessage(eventType string, value []byte) ([]byte, int) {
	if m == nil {
		return value, 0
	}
	parts, ok := envelopeFields(value)
	if ok && len(parts.types) > 0 && len(parts.payloads) > 0 {
		return m.maskEnvelope(value, parts)
	}
	n := 0
	if ok && len(parts.metadata) > 0 {
		md := envelopeParts{metadata: parts.metadata}
		if eventType != "" {
			md.types = []string{eventType}
		}
		value, n = m.maskEnvelope(value, md)
	}
	out, k := m.MaskPayload(eventType, value)
	return out, n + k
}

// maskEnvelope masks the payloads of parts by its types' paths and its
// metadata by its types' fields (every type's when it has none).
func (m *Masker) maskEnvelope(raw []byte, parts envelopeParts) ([]byte, int) {
	var paths [][]pathStep
	var fields []string
	if len(parts.types) == 0 {
		fields = slices.Clone(m.anyMeta) // sorted below: never the shared slice
	}
	for _, t := range parts.types {
		paths = slices.Concat(paths, m.paths[t], m.paths["*"])
		fields = slices.Concat(fields, m.metadataFields(t))
	}
	slices.Sort(fields) // a field named by several types is masked (and counted) once
	fields = slices.Compact(fields)
	metaPaths := make([][]pathStep, 0, len(fields))
	for _, f := range fields {
		metaPaths = append(metaPaths, []pathStep{{key: f}})
	}
	type splice struct {
		span
		with []byte
	}
	var splices []splice
	total := 0
	for _, sp := range parts.payloads {
		if masked, n := maskJSON(raw[sp.start:sp.end], paths); n > 0 {
			splices, total = append(splices, splice{sp, masked}), total+n
		}
	}
	for _, sp := range parts.metadata {
		if masked, n := maskJSON(raw[sp.start:sp.end], metaPaths); n > 0 {
			splices, total = append(splices, splice{sp, masked}), total+n
		}
	}
	if total == 0 {
		return raw, 0
	}
	slices.SortFunc(splices, func(a, b splice) int { return a.start - b.start })
	out := make([]byte, 0, len(raw))
	at := 0
	for _, sp := range splices {
		out = append(out, raw[at:sp.start]...)
		out = append(out, sp.with...)
		at = sp.end
	}
	return append(out, raw[at:]...), total
}

// span is a byte range [start, end) of raw.
type span struct{ start, end int }

// envelopeParts are the top-level fields of an envelope that masking needs.
type envelopeParts struct {
	types    []string // every string "type" value (one, unless duplicated)
	payloads []span   // every "payload" value
	metadata []span   // every "metadata" value
}

// envelopeFields finds the top-level "type" strings and the byte ranges of
// the top-level "payload" and "metadata" values of a JSON object.
func envelopeFields(raw []byte) (envelopeParts, bool) {
	var parts envelopeParts
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return parts, false
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return parts, false
		}
		key, _ := kt.(string)
		before := int(dec.InputOffset())
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return parts, false
		}
		after := int(dec.InputOffset())
		// raw[before:after] is ": <value>" with any whitespace; the value
		// itself is the last len(val) bytes, as Decode reads no further.
		sp := span{after - len(val), after}
		if sp.start < before || !bytes.Equal(raw[sp.start:sp.end], val) {
			return parts, false
		}
		switch key {
		case "type":
			var typ string
			if json.Unmarshal(val, &typ) == nil && typ != "" && !slices.Contains(parts.types, typ) {
				parts.types = append(parts.types, typ)
			}
		case "payload":
			parts.payloads = append(parts.payloads, sp)
		case "metadata":
			parts.metadata = append(parts.metadata, sp)
		}
	}
	return parts, true
}
