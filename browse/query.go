package browse

import (
	"strings"
	"time"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// Limits of one browse request.
const (
	// DefaultLimit and MaxLimit bound the messages of a page.
	DefaultLimit = 50
	MaxLimit     = 500
	// MaxScan bounds the records one filtered page looks at, over all
	// partitions: a filter that matches little ends its page short, with
	// a cursor to go on from, instead of reading the whole topic.
	MaxScan = 5000
	// MaxFilterLen bounds each filter's text (bytes).
	MaxFilterLen = 500
)

// Seek says where a page starts when no cursor continues another.
type Seek string

// The ways to start reading. Newest reads backwards (newest first); the
// others read forwards (oldest first).
const (
	// SeekNewest is the last records of every partition read (default).
	SeekNewest Seek = "newest"
	// SeekOldest is the first retained records.
	SeekOldest Seek = "oldest"
	// SeekOffset starts at Query.Offset in every partition read (at its
	// first retained record when the offset is older).
	SeekOffset Seek = "offset"
	// SeekTimestamp starts, in each partition, at its first record whose
	// timestamp is at or after Query.Timestamp.
	SeekTimestamp Seek = "timestamp"
)

// Seeks are the valid seeks, for messages and forms.
func Seeks() []Seek { return []Seek{SeekNewest, SeekOldest, SeekOffset, SeekTimestamp} }

// Query selects the page Read returns.
type Query struct {
	// Limit is the most messages on the page; default 50, at most 500.
	Limit int
	// Partition restricts the read to one partition; -1 reads all. The
	// zero value reads partition 0, so callers set -1 explicitly.
	Partition int32
	// Seek is where to start; "" is SeekNewest, or SeekOffset /
	// SeekTimestamp when Offset / Timestamp is set. Not with Cursor.
	Seek Seek
	// Offset is the start of SeekOffset (HasOffset says it is set).
	Offset    int64
	HasOffset bool
	// Timestamp is the start of SeekTimestamp.
	Timestamp time.Time
	// Cursor continues from a previous page (its Older or Newer): it holds
	// the direction and a position in every partition read.
	Cursor string

	// Filters, each case-insensitive and applied to the message as shown
	// (after masking, so a masked value is never found); all must match.
	// Text is found in the key, the value or any header value; Key in the
	// key; Value in the value; Header is "name" (a header of that name,
	// any case) or "name=text" (that header's value contains text).
	Text, Key, Value, Header string

	// Tenants says which tenants the caller may see; nil means all.
	Tenants func(tenant string) bool
	// RevealPII says for which tenants payloads and keys are shown
	// unmasked; nil means none (everything goes through the Masker).
	RevealPII func(tenant string) bool
}

// filtering reports whether some records may be left off the page.
func (q Query) filtering() bool {
	return q.Tenants != nil || q.Text != "" || q.Key != "" || q.Value != "" || q.Header != ""
}

// validate fills in the defaults and checks q; it returns the cursor to
// continue from, if any. Errors: EINVALID naming the parameter.
func (q *Query) validate() (*cursor, error) {
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return nil, delivery.Errorf(delivery.EINVALID, "limit must be 1 to %d", MaxLimit)
	}
	if q.Partition < -1 {
		return nil, delivery.Errorf(delivery.EINVALID, "partition must be -1 (all) or a partition number")
	}
	for _, f := range []struct{ name, v string }{{"q", q.Text}, {"key", q.Key}, {"value", q.Value}, {"header", q.Header}} {
		if len(f.v) > MaxFilterLen {
			return nil, delivery.Errorf(delivery.EINVALID, "%s is too long (%d bytes at most)", f.name, MaxFilterLen)
		}
		if !sqldb.ValidText(f.v) {
			return nil, delivery.Errorf(delivery.EINVALID, "%s must be text without control characters", f.name)
		}
	}
	if q.HasOffset && q.Offset < 0 {
		return nil, delivery.Errorf(delivery.EINVALID, "offset must be 0 or more")
	}
	if !q.Timestamp.IsZero() {
		if _, err := sqldb.CheckTime("timestamp", q.Timestamp); err != nil {
			return nil, err
		}
	}
	if q.Cursor != "" {
		if q.Seek != "" || q.HasOffset || !q.Timestamp.IsZero() {
			return nil, delivery.Errorf(delivery.EINVALID, "a cursor continues a page: give a cursor or a seek (offset, timestamp), not both")
		}
		c, err := parseCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		if q.Partition >= 0 {
			for p := range c.pos {
				if p != q.Partition {
					return nil, delivery.Errorf(delivery.EINVALID, "cursor: it is of other partitions than partition %d", q.Partition)
				}
			}
		}
		return &c, nil
	}
	if q.HasOffset && !q.Timestamp.IsZero() {
		return nil, delivery.Errorf(delivery.EINVALID, "give an offset or a timestamp, not both")
	}
	if q.Seek == "" {
		switch {
		case q.HasOffset:
			q.Seek = SeekOffset
		case !q.Timestamp.IsZero():
			q.Seek = SeekTimestamp
		default:
			q.Seek = SeekNewest
		}
	}
	switch q.Seek {
	case SeekNewest, SeekOldest:
		if q.HasOffset || !q.Timestamp.IsZero() {
			return nil, delivery.Errorf(delivery.EINVALID, "seek %s takes no offset or timestamp", q.Seek)
		}
	case SeekOffset:
		if !q.HasOffset {
			return nil, delivery.Errorf(delivery.EINVALID, "seek offset needs an offset")
		}
	case SeekTimestamp:
		if q.Timestamp.IsZero() {
			return nil, delivery.Errorf(delivery.EINVALID, "seek timestamp needs a timestamp")
		}
	default:
		return nil, delivery.Errorf(delivery.EINVALID, "seek must be one of newest, oldest, offset or timestamp")
	}
	return nil, nil
}

// headerFilter splits Query.Header into a lower-case name ("" for any)
// and the lower-case text its value must contain.
func headerFilter(h string) (name, text string, ok bool) {
	if h == "" {
		return "", "", false
	}
	name, text, _ = strings.Cut(h, "=")
	return strings.ToLower(strings.TrimSpace(name)), strings.ToLower(text), true
}
