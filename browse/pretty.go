package browse

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Pretty returns b indented when it is JSON, as text when it is other
// UTF-8, and as hex otherwise; kind says which ("json", "text", "hex").
func Pretty(b []byte) (text, kind string) {
	if len(b) == 0 {
		return "", "text"
	}
	if json.Valid(b) {
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			return out.String(), "json"
		}
	}
	if utf8.Valid(b) {
		return string(b), "text"
	}
	return hexDump(b), "hex"
}

// Preview is b on one line, at most n runes (an ellipsis marks a cut):
// JSON compacted, other UTF-8 with its line breaks as spaces, anything
// else as hex. It is what a compact table shows of a key or value.
func Preview(b []byte, n int) string {
	var s string
	switch {
	case len(b) == 0:
		return ""
	case json.Valid(b):
		var out bytes.Buffer
		if json.Compact(&out, b) == nil {
			s = out.String()
		}
	case utf8.Valid(b):
		s = strings.Join(strings.Fields(string(b)), " ")
	default:
		s = hexDump(b[:min(len(b), n)])
		s = strings.ReplaceAll(s, "\n", " ")
	}
	if utf8.RuneCountInString(s) > n {
		return string([]rune(s)[:n]) + "…"
	}
	return s
}

func hexDump(b []byte) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			if i%16 == 0 {
				sb.WriteByte('\n')
			} else {
				sb.WriteByte(' ')
			}
		}
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&15])
	}
	return sb.String()
}
