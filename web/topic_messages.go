package web

import (
	"bufio"
	"cmp"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/browse"
	"switchyard/delivery"
	"switchyard/sqldb"
	"switchyard/web/templates"
)

// messagesQuery reads the browser's parameters (partition, limit, seek,
// offset, timestamp, cursor, q, key, value, header) into a query, and the
// form as typed to show back. Errors: EINVALID naming the parameter; the
// form is filled in as far as it could be read.
func messagesQuery(args url.Values) (browse.Query, templates.MessagesForm, error) {
	get := func(k string) string { return strings.TrimSpace(args.Get(k)) }
	q := browse.Query{Partition: -1, Seek: browse.Seek(get("seek")), Cursor: get("cursor"),
		Text: get("q"), Key: get("key"), Value: get("value"), Header: get("header")}
	form := templates.MessagesForm{Partition: -1, Limit: browse.DefaultLimit, Offset: get("offset"), Timestamp: get("timestamp"),
		Text: q.Text, Key: q.Key, Value: q.Value, Header: q.Header}
	if v := get("partition"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < -1 {
			return q, form, delivery.Errorf(delivery.EINVALID, "partition must be a partition number or -1 for all")
		}
		q.Partition, form.Partition = int32(n), int32(n)
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > browse.MaxLimit {
			return q, form, delivery.Errorf(delivery.EINVALID, "limit must be 1 to %d", browse.MaxLimit)
		}
		q.Limit, form.Limit = n, n
	}
	if v := form.Offset; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return q, form, delivery.Errorf(delivery.EINVALID, "offset must be a whole number, 0 or more")
		}
		q.Offset, q.HasOffset = n, true
	}
	if v := form.Timestamp; v != "" {
		t, err := sqldb.ParseFormTime("timestamp", v)
		if err != nil {
			return q, form, err
		}
		q.Timestamp = t
		form.Timestamp = t.UTC().Format("2006-01-02T15:04:05")
	}
	return q, form, nil
}

// readMessages parses the browser query, scopes it to the tenants the
// principal may read payloads of, reveals PII (payload fields, keys,
// envelope metadata) only for tenants they may read PII of — the browser
// masks before any filter looks — reads, and audits the read when
// configured. Every payload view (page, API, export) goes through here.
func (s *Server) readMessages(c *fiber.Ctx) (q browse.Query, form templates.MessagesForm, page browse.Page, err error) {
	cluster, topic := param(c, "cluster"), param(c, "topic")
	q, form, err = messagesQuery(queryOf(c))
	if err != nil {
		return q, form, page, err
	}
	if s.browser == nil {
		return q, form, page, delivery.Errorf(delivery.ENOTFOUND, "the message browser is not configured")
	}
	p := principal(c)
	r := access.KafkaTopic(cluster, topic)
	if scope := s.policy.Scope(p, access.ActionReadPayload, r.Name); !scope.All {
		q.Tenants = scope.Allows
	}
	q.RevealPII = func(tenant string) bool {
		return s.policy.Can(p, access.ActionReadPII, access.Resource{Name: r.Name, Tenant: tenant})
	}
	page, err = s.browser.Read(c.UserContext(), cluster, topic, q)
	if err != nil {
		return q, form, page, err
	}
	if s.auditReads && s.audit != nil {
		ev := s.auditEvent(c, p, "payload.read", r.Name, "success")
		ev.Details = map[string]any{"route": routeOf(c), "messages": len(page.Messages), "partition": q.Partition,
			"search": q.Text != "", "filters": filtersOf(q), "seek": seekOf(q)}
		if aerr := s.audit.Append(c.UserContext(), ev); aerr != nil {
			return q, form, page, aerr
		}
	}
	return q, form, page, nil
}

// filtersOf names the filters of a read, for its audit record (not their
// text, which may be what the reader looks for).
func filtersOf(q browse.Query) []string {
	out := []string{}
	for _, f := range []struct{ name, v string }{{"q", q.Text}, {"key", q.Key}, {"value", q.Value}, {"header", q.Header}} {
		if f.v != "" {
			out = append(out, f.name)
		}
	}
	return out
}

// seekOf says where a read started, for its audit record.
func seekOf(q browse.Query) string {
	switch {
	case q.Cursor != "":
		return q.Cursor
	case q.HasOffset:
		return "offset " + strconv.FormatInt(q.Offset, 10)
	case !q.Timestamp.IsZero():
		return "timestamp " + q.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return string(cmp.Or(q.Seek, browse.SeekNewest))
}

func (s *Server) handleTopicMessages(c *fiber.Ctx) error {
	cluster, topic := param(c, "cluster"), param(c, "topic")
	_, form, page, err := s.readMessages(c)
	if err != nil && delivery.ErrorCode(err) != delivery.EINVALID {
		return s.fail(c, err)
	}
	args := queryOf(c)
	vm := templates.Messages{
		Cluster: cluster, Topic: topic, TopicHref: topicHref(cluster, topic), Form: form,
		Partial: page.Partial, Forward: page.Forward,
		ExportHref: topicHref(cluster, topic) + "/messages/export?" + args.Encode(),
	}
	if err != nil {
		c.Status(fiber.StatusBadRequest)
		vm.Error = delivery.ErrorMessage(err)
	}
	for _, v := range s.clusters.Latest() {
		if t, ok := v.Snapshot.Topic(topic); ok && v.Name == cluster {
			for _, p := range t.Partitions {
				vm.Partitions = append(vm.Partitions, p.Partition)
			}
		}
	}
	// The links keep the partition, page size and filters, and replace
	// where to start.
	here := topicHref(cluster, topic) + "/messages"
	link := func(k, v string) string {
		next := url.Values{}
		for key, vs := range args {
			switch key {
			case "seek", "offset", "timestamp", "cursor":
			default:
				next[key] = vs
			}
		}
		if k != "" {
			next.Set(k, v)
		}
		if len(next) == 0 {
			return here
		}
		return here + "?" + next.Encode()
	}
	vm.NewestHref, vm.OldestHref = link("", ""), link("seek", string(browse.SeekOldest))
	if page.Older != "" {
		vm.OlderHref = link("cursor", page.Older)
	}
	if page.Newer != "" {
		vm.NewerHref = link("cursor", page.Newer)
	}
	now := s.now()
	for _, m := range page.Messages {
		ts := m.Timestamp.UTC()
		row := templates.MessageRow{
			Partition: m.Partition, Offset: m.Offset, Key: printable(m.Key),
			Time:      ts.Format("2006-01-02 15:04:05.000") + " · " + templates.Ago(now, m.Timestamp),
			TimeExact: ts.Format(time.RFC3339Nano),
			Tenant:    m.Tenant, EventType: m.EventType, Valid: m.Valid, Masked: m.Masked,
			Preview: browse.Preview(m.Value, previewRunes),
		}
		row.Value, row.ValueKind = browse.Pretty(m.Value)
		for _, h := range m.Headers {
			row.Headers = append(row.Headers, templates.HeaderRow{Key: h.Key, Value: printable(h.Value)})
		}
		vm.Rows = append(vm.Rows, row)
	}
	return s.render(c, templates.Page{Title: "Messages · " + topic, Area: templates.AreaOverview}, templates.MessagesView(vm))
}

// previewRunes is how much of a value a row of the browser shows closed.
const previewRunes = 120

// printable shows UTF-8 as is and anything else as hex.
func printable(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	text, _ := browse.Pretty(b)
	return text
}

// apiMessage is a message in the JSON API and the export. Key, header
// values and the value are strings when they are UTF-8, else base64 in the
// *_base64 field; a JSON value is embedded as JSON.
type apiMessage struct {
	Partition   int32           `json:"partition"`
	Offset      int64           `json:"offset"`
	Timestamp   time.Time       `json:"timestamp"`
	Key         string          `json:"key,omitempty"`
	KeyBase64   []byte          `json:"key_base64,omitempty"`
	Headers     []apiHeader     `json:"headers"`
	Tenant      string          `json:"tenant,omitempty"`
	EventType   string          `json:"event_type,omitempty"`
	Valid       bool            `json:"valid"`
	Masked      int             `json:"masked_fields"`
	JSON        json.RawMessage `json:"value,omitempty"`
	Text        *string         `json:"value_text,omitempty"`
	ValueBase64 []byte          `json:"value_base64,omitempty"`
}

type apiHeader struct {
	Key         string `json:"key"`
	Value       string `json:"value,omitempty"`
	ValueBase64 []byte `json:"value_base64,omitempty"`
}

func toAPIMessage(m browse.Message) apiMessage {
	out := apiMessage{
		Partition: m.Partition, Offset: m.Offset, Timestamp: m.Timestamp,
		Tenant: m.Tenant, EventType: m.EventType, Valid: m.Valid, Masked: m.Masked,
		Headers: []apiHeader{},
	}
	if utf8.Valid(m.Key) {
		out.Key = string(m.Key)
	} else {
		out.KeyBase64 = m.Key
	}
	for _, h := range m.Headers {
		if utf8.Valid(h.Value) {
			out.Headers = append(out.Headers, apiHeader{Key: h.Key, Value: string(h.Value)})
		} else {
			out.Headers = append(out.Headers, apiHeader{Key: h.Key, ValueBase64: h.Value})
		}
	}
	switch {
	case len(m.Value) > 0 && json.Valid(m.Value):
		out.JSON = m.Value
	case utf8.Valid(m.Value):
		t := string(m.Value)
		out.Text = &t
	default:
		out.ValueBase64 = m.Value
	}
	return out
}

type messagesResponse struct {
	Cluster  string       `json:"cluster"`
	Topic    string       `json:"topic"`
	Partial  bool         `json:"partial"`
	Messages []apiMessage `json:"messages"`
	// Order is "newest_first" (the newest page, an older page) or
	// "oldest_first" (a seek, a newer page).
	Order string `json:"order"`
	// OlderCursor and NewerCursor continue with the page before and after
	// this one (?cursor=); absent at that end of the topic.
	OlderCursor string `json:"older_cursor,omitempty"`
	NewerCursor string `json:"newer_cursor,omitempty"`
}

func (s *Server) handleAPITopicMessages(c *fiber.Ctx) error {
	cluster, topic := param(c, "cluster"), param(c, "topic")
	_, _, res, err := s.readMessages(c)
	if err != nil {
		return s.fail(c, err)
	}
	out := messagesResponse{Cluster: cluster, Topic: topic, Partial: res.Partial, Messages: []apiMessage{},
		Order: "newest_first", OlderCursor: res.Older, NewerCursor: res.Newer}
	if res.Forward {
		out.Order = "oldest_first"
	}
	for _, m := range res.Messages {
		out.Messages = append(out.Messages, toAPIMessage(m))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// handleTopicMessagesExport downloads the same messages as JSON lines.
func (s *Server) handleTopicMessagesExport(c *fiber.Ctx) error {
	cluster, topic := param(c, "cluster"), param(c, "topic")
	_, _, res, err := s.readMessages(c)
	if err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderContentType, "application/x-ndjson; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+url.PathEscape(cluster+"_"+topic)+`.jsonl"`)
	w := bufio.NewWriter(c.Response().BodyWriter())
	enc := json.NewEncoder(w)
	for _, m := range res.Messages {
		if err := enc.Encode(toAPIMessage(m)); err != nil {
			return s.fail(c, err)
		}
	}
	if err := w.Flush(); err != nil {
		return s.fail(c, err)
	}
	return nil
}
