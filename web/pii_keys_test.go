package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The env's PII rules cover the record key and metadata.partition_key of
// testTopic events (as the demo's do): customerOf(i) is both the key and the
// partition key of envTopic's envelopes, and "key-<fixture>" /
// fixtureCustomer(fixture) those of the dead-letter fixtures.

// browsedMessage is a message of the browser's API and export.
type browsedMessage struct {
	Key    string `json:"key"`
	Tenant string `json:"tenant"`
	Masked int    `json:"masked_fields"`
	Value  struct {
		Metadata struct {
			PartitionKey string `json:"partition_key"`
		} `json:"metadata"`
	} `json:"value"`
}

func browsed(t *testing.T, r response) []browsedMessage {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("messages = %d\n%s", r.status, r.body)
	}
	var out struct {
		Messages []browsedMessage `json:"messages"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return out.Messages
}

// customers are every customer value of envTopic.
func customers() []string {
	var out []string
	for i := range envelopes {
		out = append(out, customerOf(i))
	}
	return out
}

// TestMessageBrowserMasksKeysAndMetadata: tess (no read_pii) sees *** for
// the record key and metadata.partition_key in the browser's page, API and
// export, and cannot find a message by searching for its customer; the
// admin sees and finds them; vera (no read_payload) does not get in.
func TestMessageBrowserMasksKeysAndMetadata(t *testing.T) {
	e := newEnv(t, envOptions{})
	base := "/topics/demo/" + envTopic + "/messages"
	api := "/api/v1/topics/demo/" + envTopic + "/messages"
	tess, admin, vera := e.as(t, "tess"), e.as(t, "admin"), e.as(t, "vera")

	r := tess.get(t, base)
	if n := len(messageTenants(r.body)); n != 3 {
		t.Fatalf("tess page shows %d messages, want 3", n)
	}
	if n := strings.Count(r.body, `data-testid="message-key">***<`); n != 3 {
		t.Errorf("tess page: %d masked keys, want 3\n%s", n, r.body)
	}
	mustContain(t, "tess page", r.body, "&#34;partition_key&#34;: &#34;***&#34;", "4 masked")
	mustNotContain(t, "tess page", r.body, customers()...)

	msgs := browsed(t, tess.get(t, api))
	for _, m := range msgs {
		if m.Key != "***" || m.Value.Metadata.PartitionKey != "***" || m.Masked != 4 {
			t.Errorf("tess API message = %+v; want key and partition_key ***, 4 masked", m)
		}
	}
	if len(msgs) != 3 {
		t.Errorf("tess API: %d messages, want 3", len(msgs))
	}
	r = tess.get(t, base+"/export")
	mustNotContain(t, "tess export", r.body, customers()...)
	for _, m := range jsonLines(t, r.body) {
		md, _ := m["value"].(map[string]any)["metadata"].(map[string]any)
		if m["key"] != "***" || md["partition_key"] != "***" {
			t.Errorf("tess export line = %v", m)
		}
	}

	// Masking happens before the search: the customer of a t1 message is
	// not found by its key, its partition key or a part of them.
	for _, q := range []string{customerOf(0), strings.ToUpper(customerOf(2)), "cust-01"} {
		r := tess.get(t, base+"?q="+url.QueryEscape(q))
		if n := len(messageTenants(r.body)); r.status != http.StatusOK || n != 0 {
			t.Errorf("tess page search %q = %d, %d messages; want none", q, r.status, n)
		}
		if n := len(browsed(t, tess.get(t, api+"?q="+url.QueryEscape(q)))); n != 0 {
			t.Errorf("tess API search %q: %d messages; want none", q, n)
		}
	}

	// read_pii: the values themselves, and searchable.
	r = admin.get(t, base)
	mustContain(t, "admin page", r.body, `data-testid="message-key">`+customerOf(0)+`<`,
		"&#34;partition_key&#34;: &#34;"+customerOf(1)+"&#34;")
	for _, m := range browsed(t, admin.get(t, api)) {
		if !slices.Contains(customers(), m.Key) || m.Value.Metadata.PartitionKey != m.Key || m.Masked != 0 {
			t.Errorf("admin API message = %+v", m)
		}
	}
	found := browsed(t, admin.get(t, api+"?q="+customerOf(0)))
	if len(found) != 1 || found[0].Key != customerOf(0) {
		t.Errorf("admin search %s = %+v, want its one message", customerOf(0), found)
	}

	// No read_payload: no browser at all.
	for _, path := range []string{base, api, base + "/export"} {
		if r := vera.get(t, path); r.status != http.StatusForbidden || strings.Contains(r.body, "cust-01") {
			t.Errorf("vera %s = %d", path, r.status)
		}
	}
}

// TestDeadLetterEntryMasksKeysAndMetadata: on the entry page and API, tess
// (read_payload, no read_pii) sees *** for the key and partition_key; the
// admin sees them; vera (no read_payload) sees neither, is told they are
// withheld, and still sees the ids, type, tenant and error. None of them
// can find the entry by searching for its partition key without read_pii.
func TestDeadLetterEntryMasksKeysAndMetadata(t *testing.T) {
	e := newEnv(t, envOptions{})
	tess, admin, vera := e.as(t, "tess"), e.as(t, "admin"), e.as(t, "vera")
	id := strconv.FormatInt(e.dlqIDs["nf1"], 10)
	page, api := "/dead-letters/entries/"+id, "/api/v1/dlq/entries/"+id
	key, customer := "key-nf1", fixtureCustomer("nf1")
	maskedPK := `<th>partition_key</th><td class="mono name">***</td>`

	r := tess.get(t, page)
	mustContain(t, "tess page", r.body, `data-testid="entry-key">***<`, maskedPK,
		"&#34;partition_key&#34;: &#34;***&#34;", `data-testid="payload-masked">4 fields`, "fixture nf1")
	mustNotContain(t, "tess page", r.body, key, customer)
	ar := tess.get(t, api)
	mustNotContain(t, "tess API", ar.body, key, customer)
	d := decodeJSON[apiDLQEntryDetail](t, ar)
	if d.Key != "***" || d.Envelope == nil || d.Envelope.Metadata.PartitionKey != "***" || d.MaskedFields != 4 ||
		d.PayloadText == nil || !strings.Contains(*d.PayloadText, `"partition_key":"***"`) {
		t.Errorf("tess API: key %q envelope %+v masked %d payload %v", d.Key, d.Envelope, d.MaskedFields, d.PayloadText)
	}

	r = admin.get(t, page)
	mustContain(t, "admin page", r.body, `data-testid="entry-key">`+key+`<`,
		`<th>partition_key</th><td class="mono name">`+customer+`</td>`)
	d = decodeJSON[apiDLQEntryDetail](t, admin.get(t, api))
	if d.Key != key || d.Envelope == nil || d.Envelope.Metadata.PartitionKey != customer || d.MaskedFields != 0 {
		t.Errorf("admin API: key %q envelope %+v masked %d", d.Key, d.Envelope, d.MaskedFields)
	}

	r = vera.get(t, page)
	mustContain(t, "vera page", r.body, `<th>partition_key</th><td class="muted" data-testid="withheld">withheld`,
		`data-testid="payload-denied"`, "partition key are withheld",
		`<th>tenant_id</th><td class="mono name">t1</td>`, `<th>type</th><td class="mono name">`+testTopic+`</td>`,
		`data-testid="error-code">ORDER_NOT_FOUND<`, "corr-nf1")
	mustNotContain(t, "vera page", r.body, key, customer, maskedPK, `data-testid="entry-key"`)
	ar = vera.get(t, api)
	mustNotContain(t, "vera API", ar.body, key, customer, `"partition_key"`)
	d = decodeJSON[apiDLQEntryDetail](t, ar)
	if d.Envelope == nil || d.Envelope.Metadata.TenantID != "t1" || d.Envelope.Type != testTopic || d.Envelope.ID == "" ||
		d.Tenant != "t1" || d.ErrorCode != "ORDER_NOT_FOUND" || d.Key != "" || d.KeyBase64 != nil ||
		!slices.Equal(d.Withheld, []string{"payload", "key", "headers", "envelope.metadata.partition_key"}) {
		t.Errorf("vera API = %+v (envelope %+v)", d, d.Envelope)
	}

	// The full-text index holds the record value, partition key included:
	// only read_pii everywhere searches it.
	q := "/dead-letters/entries?q=" + url.QueryEscape(`"`+customer+`"`)
	for _, c := range []*client{tess, vera} {
		if r := c.get(t, q); r.status != http.StatusOK || len(entryIDs(r.body)) != 0 {
			t.Errorf("%s searching a masked partition key = %d, %v", c.user, r.status, entryIDs(r.body))
		}
	}
	if r := admin.get(t, q); !sameIDs(entryIDs(r.body), e.ids("nf1")) {
		t.Errorf("admin searching the partition key = %v", entryIDs(r.body))
	}
}
