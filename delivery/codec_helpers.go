package delivery

import (
	"encoding/binary"
	"strconv"
	"strings"
	"time"
)

// Helpers shared by the foreign dead-letter decoders.

// hasHeaderPrefix reports whether any header key starts with prefix.
func hasHeaderPrefix(h Headers, prefix string) bool {
	for _, x := range h {
		if strings.HasPrefix(x.Key, prefix) {
			return true
		}
	}
	return false
}

// firstString returns the first non-empty value of keys.
func firstString(h Headers, keys ...string) string {
	for _, k := range keys {
		if v := h.String(k); v != "" {
			return v
		}
	}
	return ""
}

// decimalBytes reports whether b is an optionally signed run of ASCII
// digits. Frameworks that write numbers as text (Connect, Streams, and
// Spring when a header mapper stringified them) use this form; a binary
// Java int or long whose bytes all happen to be ASCII digits would be an
// implausibly large partition or offset, so text wins the tie.
func decimalBytes(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// javaInt reads a Java int as Spring writes it (4 bytes, big-endian) or as
// decimal text; def when neither.
func javaInt(b []byte, def int64) int64 {
	switch {
	case decimalBytes(b):
		return parseInt(string(b), def)
	case len(b) == 4:
		return int64(int32(binary.BigEndian.Uint32(b)))
	}
	return def
}

// javaLong reads a Java long (8 bytes, big-endian) or decimal text; def
// when neither.
func javaLong(b []byte, def int64) int64 {
	switch {
	case decimalBytes(b):
		return parseInt(string(b), def)
	case len(b) == 8:
		return int64(binary.BigEndian.Uint64(b))
	}
	return def
}

// partitionOf narrows a decoded partition to int32, -1 when out of range.
func partitionOf(n int64) int32 {
	if n < -1 || n > 1<<31-1 {
		return -1
	}
	return int32(n)
}

// offsetOf keeps -1 for any negative offset.
func offsetOf(n int64) int64 {
	if n < 0 {
		return -1
	}
	return n
}

// simpleTypeName returns the class name without its package or namespace:
// "com.acme.billing.PaymentDeclinedException" → "PaymentDeclinedException",
// "com.acme.Outer$Inner" → "Inner", .NET generic arity ("`1[...]") dropped.
// It is used as the error code of foreign formats that have none: it is
// stable across messages and is what an operator searches for.
func simpleTypeName(fqcn string) string {
	s := strings.TrimSpace(fqcn)
	if i := strings.IndexAny(s, "`[,"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexAny(s, ".$+"); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// javaCauseMessage finds the message of the "Caused by: <fqcn>: message"
// line in a Java stack trace, or "".
func javaCauseMessage(stack, fqcn string) string {
	if fqcn == "" {
		return ""
	}
	for _, line := range strings.Split(stack, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "Caused by: "+fqcn)
		if !ok {
			continue
		}
		if msg, ok := strings.CutPrefix(rest, ": "); ok {
			return strings.TrimSpace(msg)
		}
		if rest == "" {
			return ""
		}
	}
	return ""
}

// parseDotNetTime accepts RFC 3339 and .NET's round-trip format without a
// zone ("2025-03-14T09:26:53.5897532", a DateTime of kind UTC or
// unspecified), which MassTransit writes; else zero. Always UTC.
func parseDotNetTime(s string) time.Time {
	if t := parseTime(s); !t.IsZero() {
		return t
	}
	if t, err := time.Parse("2006-01-02T15:04:05.9999999", s); err == nil {
		return t.UTC()
	}
	return time.Time{}
}

// atoiDefault parses a decimal int, def when it is not one.
func atoiDefault(s string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return n
}
