package dlqstore

import (
	"encoding/base64"
	"strconv"
	"strings"

	"switchyard/delivery"
)

// cursor is a keyset position: the (last_failure_at, id) of the last entry
// shown.
type cursor struct {
	t, id int64
}

func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.t, 10) + "." + strconv.FormatInt(c.id, 10)))
}

func parseCursor(s string) (cursor, error) {
	bad := delivery.Errorf(delivery.EINVALID, "invalid cursor %q: use the next cursor of the previous page", truncate(s, 40))
	if len(s) > 64 {
		return cursor{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	ts, ids, ok := strings.Cut(string(b), ".")
	if !ok {
		return cursor{}, bad
	}
	t, err1 := strconv.ParseInt(ts, 10, 64)
	id, err2 := strconv.ParseInt(ids, 10, 64)
	if err1 != nil || err2 != nil {
		return cursor{}, bad
	}
	return cursor{t: t, id: id}, nil
}
