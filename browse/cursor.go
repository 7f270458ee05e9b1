package browse

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"switchyard/delivery"
)

// A cursor is where the next page starts in every partition read, and in
// which direction it reads: "before:0@120,1@98" reads backwards from just
// below offset 120 of partition 0 and 98 of partition 1 (older records,
// newest first); "from:0@120,1@98" reads forwards from those offsets
// (newer records, oldest first). Every partition of a page is named, also
// one the page took nothing from, so a page of many partitions goes on
// from where each of them stood.
type cursor struct {
	forward bool
	pos     map[int32]int64
}

const (
	cursorBefore = "before:"
	cursorFrom   = "from:"
	// maxCursorPartitions bounds a cursor a client may send.
	maxCursorPartitions = 10000
)

// String encodes c, partitions in order.
func (c cursor) String() string {
	var sb strings.Builder
	if c.forward {
		sb.WriteString(cursorFrom)
	} else {
		sb.WriteString(cursorBefore)
	}
	for i, p := range slices.Sorted(maps.Keys(c.pos)) {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatInt(int64(p), 10))
		sb.WriteByte('@')
		sb.WriteString(strconv.FormatInt(c.pos[p], 10))
	}
	return sb.String()
}

// parseCursor reads what String wrote. Errors: EINVALID.
func parseCursor(s string) (cursor, error) {
	bad := delivery.Errorf(delivery.EINVALID, "cursor: not a cursor of this browser (want before:P@OFFSET,… or from:P@OFFSET,… as a page's older or newer link gives it)")
	var c cursor
	rest, ok := strings.CutPrefix(s, cursorBefore)
	if !ok {
		if rest, ok = strings.CutPrefix(s, cursorFrom); !ok {
			return c, bad
		}
		c.forward = true
	}
	parts := strings.Split(rest, ",")
	if rest == "" || len(parts) > maxCursorPartitions {
		return c, bad
	}
	c.pos = make(map[int32]int64, len(parts))
	for _, part := range parts {
		ps, os, ok := strings.Cut(part, "@")
		p, perr := strconv.ParseInt(ps, 10, 32)
		o, oerr := strconv.ParseInt(os, 10, 64)
		if !ok || perr != nil || oerr != nil || p < 0 || o < 0 {
			return c, bad
		}
		if _, dup := c.pos[int32(p)]; dup {
			return c, bad
		}
		c.pos[int32(p)] = o
	}
	return c, nil
}

// beyond reports whether some partition has records past c in its
// direction, by the bounds a page was read with.
func (c cursor) beyond(bounds map[int32]span) bool {
	for p, o := range c.pos {
		b, ok := bounds[p]
		if ok && (c.forward && o < b.to || !c.forward && o > b.from) {
			return true
		}
	}
	return false
}
