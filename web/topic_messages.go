package web

import (
	"bufio"
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
	"switchyard/web/templates"
)

// readMessages parses the browser query, scopes it to the tenants the
// principal may read payloads of, reveals PII (payload fields, keys,
// envelope metadata) only for tenants they may read PII of — the browser
// masks before its text search — reads, and audits the read when
// configured. Every payload view (page, API, export) goes through here.
func (s *Server) readMessages(c *fiber.Ctx) (cluster, topic string, q browse.Query, res browse.Result, err error) {
	cluster, topic = param(c, "cluster"), param(c, "topic")
	if s.browser == nil {
		return cluster, topic, q, res, delivery.Errorf(delivery.ENOTFOUND, "the message browser is not configured")
	}
	q = browse.Query{Partition: -1, Text: strings.TrimSpace(strings.Clone(c.Query("q")))}
	if v := c.Query("partition"); v != "" {
		n, perr := strconv.ParseInt(v, 10, 32)
		if perr != nil || n < -1 {
			return cluster, topic, q, res, delivery.Errorf(delivery.EINVALID, "partition must be a partition number or -1 for all")
		}
		q.Partition = int32(n)
	}
	if v := c.Query("limit"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > browse.MaxLimit {
			return cluster, topic, q, res, delivery.Errorf(delivery.EINVALID, "limit must be 1 to %d", browse.MaxLimit)
		}
		q.Limit = n
	}
	p := principal(c)
	r := access.KafkaTopic(cluster, topic)
	scope := s.policy.Scope(p, access.ActionReadPayload, r.Name)
	q.Tenants = scope.Allows
	q.RevealPII = func(tenant string) bool {
		return s.policy.Can(p, access.ActionReadPII, access.Resource{Name: r.Name, Tenant: tenant})
	}
	res, err = s.browser.Recent(c.UserContext(), cluster, topic, q)
	if err != nil {
		return cluster, topic, q, res, err
	}
	if s.auditReads && s.audit != nil {
		ev := s.auditEvent(c, p, "payload.read", r.Name, "success")
		ev.Details = map[string]any{"route": routeOf(c), "messages": len(res.Messages), "partition": q.Partition, "search": q.Text != ""}
		if aerr := s.audit.Append(c.UserContext(), ev); aerr != nil {
			return cluster, topic, q, res, aerr
		}
	}
	return cluster, topic, q, res, nil
}

func (s *Server) handleTopicMessages(c *fiber.Ctx) error {
	cluster, topic, q, res, err := s.readMessages(c)
	if err != nil {
		return s.fail(c, err)
	}
	vm := templates.Messages{
		Cluster: cluster, Topic: topic, TopicHref: topicHref(cluster, topic),
		Text: q.Text, Partition: q.Partition, Limit: q.Limit, Partial: res.Partial,
		ExportHref: topicHref(cluster, topic) + "/messages/export?" + c.Context().QueryArgs().String(),
	}
	if vm.Limit == 0 {
		vm.Limit = browse.DefaultLimit
	}
	for _, v := range s.clusters.Latest() {
		if t, ok := v.Snapshot.Topic(topic); ok && v.Name == cluster {
			for _, p := range t.Partitions {
				vm.Partitions = append(vm.Partitions, p.Partition)
			}
		}
	}
	now := s.now()
	for _, m := range res.Messages {
		row := templates.MessageRow{
			Partition: m.Partition, Offset: m.Offset, Key: printable(m.Key),
			Time:   m.Timestamp.UTC().Format(time.RFC3339Nano) + " (" + templates.Ago(now, m.Timestamp) + ")",
			Tenant: m.Tenant, EventType: m.EventType, Valid: m.Valid, Masked: m.Masked,
		}
		row.Value, row.ValueKind = browse.Pretty(m.Value)
		for _, h := range m.Headers {
			row.Headers = append(row.Headers, templates.HeaderRow{Key: h.Key, Value: printable(h.Value)})
		}
		vm.Rows = append(vm.Rows, row)
	}
	return s.render(c, templates.Page{Title: "Messages · " + topic, Area: templates.AreaOverview}, templates.MessagesView(vm))
}

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
}

func (s *Server) handleAPITopicMessages(c *fiber.Ctx) error {
	cluster, topic, _, res, err := s.readMessages(c)
	if err != nil {
		return s.fail(c, err)
	}
	out := messagesResponse{Cluster: cluster, Topic: topic, Partial: res.Partial, Messages: []apiMessage{}}
	for _, m := range res.Messages {
		out.Messages = append(out.Messages, toAPIMessage(m))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// handleTopicMessagesExport downloads the same messages as JSON lines.
func (s *Server) handleTopicMessagesExport(c *fiber.Ctx) error {
	cluster, topic, _, res, err := s.readMessages(c)
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
