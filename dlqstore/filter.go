package dlqstore

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// Filter selects entries. Every field is optional and they combine with AND.
//
// Filter is also the one codec of a filter as people and programs write
// it: the entries page's and the API's query string (ParseValues, Values),
// the JSON of a job's selector (MarshalJSON, UnmarshalJSON: the API's field
// names status, broker, cluster, destination, event_type, error_code,
// tenant, from, to, group and q) and the CLI's --filter (ParseValues).
// Tenants, NoPayloadText, Limit and Cursor are the reader's, never part of
// the JSON.
type Filter struct {
	Status                                                     []Status
	Broker, Cluster, Destination, EventType, ErrorCode, Tenant string       // Destination: the DLQ topic or queue
	Tenants                                                    *TenantScope // nil = all; else only these tenants — the access policy's scope
	From, To                                                   time.Time    // on last failure time: From inclusive, To exclusive
	GroupID                                                    int64
	Q                                                          string // full-text query, see ftsQuery
	Limit                                                      int    // default 50, max 500
	Cursor                                                     string // Page.Next of the previous page
	// NoPayloadText keeps Q off the payload and key columns of the
	// full-text index, for a reader who may not probe payloads
	// (MaySearchPayloads): Q then matches the other columns only
	// (SearchColumns), and a payload: or key: column filter is refused
	// (EINVALID).
	NoPayloadText bool
}

// MaxQueryLen bounds a full-text query (bytes).
const MaxQueryLen = 500

// Validate checks f the way every reader of a filter needs it checked:
// known statuses and broker, times the store can hold (a year-9999 bound
// would wrap around in Unix nanoseconds and match everything), a To after
// From, text without control characters (SQLite would cut a string at
// NUL), a bounded query and a well-formed cursor. Errors: EINVALID naming
// the field.
func (f Filter) Validate() error {
	for _, st := range f.Status {
		if !st.Valid() {
			return delivery.Errorf(delivery.EINVALID, "status %q: want dead, redriving, redriven, quarantined, discarded or resolved", truncate(string(st), 40))
		}
	}
	switch f.Broker {
	case "", delivery.BrokerKafka, delivery.BrokerRabbitMQ:
	default:
		return delivery.Errorf(delivery.EINVALID, "broker must be kafka or rabbitmq")
	}
	for _, t := range []struct {
		name string
		v    time.Time
	}{{"from", f.From}, {"to", f.To}} {
		if !t.v.IsZero() {
			if _, err := sqldb.CheckTime(t.name, t.v); err != nil {
				return err
			}
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return delivery.Errorf(delivery.EINVALID, "to must be after from")
	}
	for _, t := range []struct{ name, v string }{
		{"broker", f.Broker}, {"cluster", f.Cluster}, {"destination", f.Destination}, {"event_type", f.EventType},
		{"error_code", f.ErrorCode}, {"tenant", f.Tenant}, {"q", f.Q}, {"cursor", f.Cursor},
	} {
		if err := checkText(t.name, t.v); err != nil {
			return err
		}
	}
	if len(f.Q) > MaxQueryLen {
		return delivery.Errorf(delivery.EINVALID, "the search is too long (%d characters at most)", MaxQueryLen)
	}
	if f.GroupID < 0 {
		return delivery.Errorf(delivery.EINVALID, "group must be a failure group id")
	}
	if f.Limit < 0 || f.Limit > 500 {
		return delivery.Errorf(delivery.EINVALID, "limit must be between 1 and 500")
	}
	if f.Cursor != "" {
		if _, err := parseCursor(f.Cursor); err != nil {
			return err
		}
	}
	return nil
}

// FilterField reports whether name is one of a filter's fields in a
// query string and in JSON (limit and cursor, which page a list, are not),
// for the readers that refuse unknown ones: the job API and the CLI.
func FilterField(name string) bool { return slices.Contains(FilterFields(), name) }

// FilterFields are the names FilterField accepts, in the order pages
// show them; the API's list of query parameters includes them.
func FilterFields() []string {
	return []string{"status", "broker", "cluster", "destination", "event_type", "error_code", "tenant", "from", "to", "group", "q"}
}

// ParseValues reads a filter from a query string: status (repeatable or
// comma-separated), broker, cluster, destination, event_type, error_code,
// tenant, from and to (RFC 3339, Unix seconds or a browser's
// datetime-local value in UTC: sqldb.ParseFormTime), group, q, limit and
// cursor, each trimmed; other keys are left to the caller. The result is
// validated (Validate). Errors: EINVALID naming the field; the filter
// returned holds what could be read, to show back in a form.
func ParseValues(v url.Values) (Filter, error) {
	var f Filter
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	for _, raw := range v["status"] {
		for part := range strings.SplitSeq(raw, ",") {
			st := Status(strings.TrimSpace(part))
			if st == "" || slices.Contains(f.Status, st) {
				continue
			}
			if !st.Valid() {
				return f, Filter{Status: []Status{st}}.Validate()
			}
			f.Status = append(f.Status, st)
		}
	}
	f.Broker, f.Cluster, f.Destination = get("broker"), get("cluster"), get("destination")
	f.EventType, f.ErrorCode, f.Tenant = get("event_type"), get("error_code"), get("tenant")
	f.Q, f.Cursor = get("q"), get("cursor")
	var err error
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if s := get(t.name); s != "" {
			if *t.dst, err = sqldb.ParseFormTime(t.name, s); err != nil {
				return f, err
			}
		}
	}
	if s := get("group"); s != "" {
		if f.GroupID, err = strconv.ParseInt(s, 10, 64); err != nil || f.GroupID <= 0 {
			f.GroupID = 0
			return f, delivery.Errorf(delivery.EINVALID, "group must be a failure group id")
		}
	}
	if s := get("limit"); s != "" {
		if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit < 1 || f.Limit > 500 {
			f.Limit = 0
			return f, delivery.Errorf(delivery.EINVALID, "limit must be 1 to 500")
		}
	}
	return f, f.Validate()
}

// Values is the query string of f: what ParseValues reads back as f
// (without Tenants and NoPayloadText). Times are RFC 3339 with nanoseconds.
func (f Filter) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	for _, st := range f.Status {
		v.Add("status", string(st))
	}
	set("broker", f.Broker)
	set("cluster", f.Cluster)
	set("destination", f.Destination)
	set("event_type", f.EventType)
	set("error_code", f.ErrorCode)
	set("tenant", f.Tenant)
	if !f.From.IsZero() {
		v.Set("from", f.From.Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		v.Set("to", f.To.Format(time.RFC3339Nano))
	}
	if f.GroupID != 0 {
		v.Set("group", strconv.FormatInt(f.GroupID, 10))
	}
	set("q", f.Q)
	if f.Limit != 0 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	set("cursor", f.Cursor)
	return v
}

// filterJSON is a filter as JSON has it: a job's selector in the API, the
// CLI's request, and the jobs stored before this type (the same shape).
type filterJSON struct {
	Status      []Status  `json:"status,omitempty"`
	Broker      string    `json:"broker,omitempty"`
	Cluster     string    `json:"cluster,omitempty"`
	Destination string    `json:"destination,omitempty"`
	EventType   string    `json:"event_type,omitempty"`
	ErrorCode   string    `json:"error_code,omitempty"`
	Tenant      string    `json:"tenant,omitempty"`
	From        time.Time `json:"from,omitzero"`
	To          time.Time `json:"to,omitzero"`
	Group       int64     `json:"group,omitempty"`
	Q           string    `json:"q,omitempty"`
}

func (f Filter) wire() filterJSON {
	return filterJSON{Status: f.Status, Broker: f.Broker, Cluster: f.Cluster, Destination: f.Destination, EventType: f.EventType,
		ErrorCode: f.ErrorCode, Tenant: f.Tenant, From: f.From, To: f.To, Group: f.GroupID, Q: f.Q}
}

// MarshalJSON writes the filter's fields (not Tenants, NoPayloadText,
// Limit or Cursor).
func (f Filter) MarshalJSON() ([]byte, error) { return json.Marshal(f.wire()) }

// UnmarshalJSON reads the filter's fields and refuses any other, as the
// job API refuses unknown fields everywhere in its body. It does not
// validate: readers call Validate (a job's selection does).
func (f *Filter) UnmarshalJSON(b []byte) error {
	var w filterJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*f = Filter{Status: w.Status, Broker: w.Broker, Cluster: w.Cluster, Destination: w.Destination, EventType: w.EventType,
		ErrorCode: w.ErrorCode, Tenant: w.Tenant, From: w.From, To: w.To, GroupID: w.Group, Q: w.Q}
	return nil
}

// checkText refuses what no name, id or search holds (sqldb.ValidText).
func checkText(name, v string) error {
	if !sqldb.ValidText(v) {
		return delivery.Errorf(delivery.EINVALID, "%s must be UTF-8 text without control characters", name)
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
