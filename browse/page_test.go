package browse

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/internal/testenv"
)

// pagedTopic has three partitions holding records n = 0…29, n in
// partition n%3 at offset n/3, produced a second apart from base: key
// "key-NN", value {"n":N,"note":…} ("refund" for every fifth), headers
// tenant_id (t1 for even n, t2 for odd) and kind (even/odd).
const pagedTopic = "paged.records.v1"

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func pagedSetup(t *testing.T) *Browser {
	t.Helper()
	c := testenv.Kafka(t, kfake.SeedTopics(3, pagedTopic))
	cl := testenv.KafkaClient(t, c.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for n := range 30 {
		note, tenant, kind := "plain", "t1", "even"
		if n%5 == 0 {
			note = "Refund asked"
		}
		if n%2 == 1 {
			tenant, kind = "t2", "odd"
		}
		recs = append(recs, &kgo.Record{
			Topic: pagedTopic, Partition: int32(n % 3), Timestamp: base.Add(time.Duration(n) * time.Second),
			Key:   fmt.Appendf(nil, "key-%02d", n),
			Value: fmt.Appendf(nil, `{"n":%d,"note":%q}`, n, note),
			Headers: []kgo.RecordHeader{
				{Key: delivery.HeaderTenantID, Value: []byte(tenant)},
				{Key: "kind", Value: []byte(kind)},
			},
		})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Clients: map[string]*kgo.Client{"demo": cl}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ns are the record numbers of a page, in its order.
func ns(t *testing.T, p Page) []int {
	t.Helper()
	var out []int
	for _, m := range p.Messages {
		var v struct{ N int }
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Fatalf("value %s: %v", m.Value, err)
		}
		if want := int64(v.N / 3); m.Partition != int32(v.N%3) || m.Offset != want {
			t.Fatalf("record %d at %d:%d, want %d:%d", v.N, m.Partition, m.Offset, v.N%3, want)
		}
		out = append(out, v.N)
	}
	return out
}

func seq(from, to int) []int { // from…to inclusive, either way
	var out []int
	for n := from; ; {
		out = append(out, n)
		if n == to {
			return out
		}
		if to > from {
			n++
		} else {
			n--
		}
	}
}

func read(t *testing.T, b *Browser, q Query) Page {
	t.Helper()
	p, err := b.Read(context.Background(), "demo", pagedTopic, q)
	if err != nil {
		t.Fatalf("read %+v: %v", q, err)
	}
	if p.Partial {
		t.Fatalf("read %+v: partial", q)
	}
	return p
}

// TestPaging: the newest page, then older pages back to the first record
// and newer ones up again, each page exactly where the last one stopped,
// across the partitions in timestamp order.
func TestPaging(t *testing.T) {
	b := pagedSetup(t)
	p := read(t, b, Query{Partition: -1, Limit: 7})
	if got := ns(t, p); !slices.Equal(got, seq(29, 23)) || p.Forward || p.Newer != "" || p.Older == "" {
		t.Fatalf("newest page: %v forward %v newer %q older %q", got, p.Forward, p.Newer, p.Older)
	}
	var back []int
	pages := []Page{p}
	for p.Older != "" {
		back = append(back, ns(t, p)...)
		p = read(t, b, Query{Partition: -1, Limit: 7, Cursor: p.Older})
		pages = append(pages, p)
	}
	back = append(back, ns(t, p)...)
	if !slices.Equal(back, seq(29, 0)) {
		t.Fatalf("paging back: %v", back)
	}
	if last := ns(t, p); !slices.Equal(last, seq(1, 0)) || p.Newer == "" {
		t.Fatalf("oldest page %v, newer %q", last, p.Newer)
	}
	// Newer from the oldest page reads forwards, oldest first, and meets
	// the pages on the way up.
	var up []int
	for p.Newer != "" {
		p = read(t, b, Query{Partition: -1, Limit: 7, Cursor: p.Newer})
		if !p.Forward {
			t.Fatalf("a newer page reads backwards")
		}
		up = append(up, ns(t, p)...)
	}
	if !slices.Equal(up, seq(2, 29)) {
		t.Fatalf("paging forward: %v", up)
	}
	// Back and forth: older, then newer again, is the page we were on.
	second := read(t, b, Query{Partition: -1, Limit: 7, Cursor: pages[0].Older})
	again := read(t, b, Query{Partition: -1, Limit: 7, Cursor: second.Newer})
	if got := ns(t, again); !slices.Equal(got, seq(23, 29)) {
		t.Errorf("older then newer: %v, want the newest page oldest first", got)
	}
	// One partition pages through its own offsets.
	p = read(t, b, Query{Partition: 2, Limit: 4})
	p = read(t, b, Query{Partition: 2, Limit: 4, Cursor: p.Older})
	if got := ns(t, p); !slices.Equal(got, []int{17, 14, 11, 8}) {
		t.Errorf("partition 2, second page: %v", got)
	}
	if !strings.HasPrefix(p.Older, "before:2@") || strings.Contains(p.Older, ",") {
		t.Errorf("partition 2 cursor %q names other partitions", p.Older)
	}
}

// TestSeek: oldest, by offset (one partition or all), by timestamp; and
// the page before a seek.
func TestSeek(t *testing.T) {
	b := pagedSetup(t)
	for name, tc := range map[string]struct {
		q    Query
		want []int
	}{
		"oldest":                 {Query{Partition: -1, Seek: SeekOldest, Limit: 5}, seq(0, 4)},
		"offset in a partition":  {Query{Partition: 1, Offset: 3, HasOffset: true, Limit: 3}, []int{10, 13, 16}},
		"offset everywhere":      {Query{Partition: -1, Seek: SeekOffset, Offset: 8, HasOffset: true}, seq(24, 29)},
		"offset 0 is the oldest": {Query{Partition: 0, Offset: 0, HasOffset: true, Limit: 2}, []int{0, 3}},
		"offset at the end":      {Query{Partition: 0, Offset: 10, HasOffset: true}, nil},
		"timestamp":              {Query{Partition: -1, Timestamp: base.Add(17500 * time.Millisecond), Limit: 5}, seq(18, 22)},
		"timestamp exact":        {Query{Partition: -1, Seek: SeekTimestamp, Timestamp: base.Add(18 * time.Second), Limit: 2}, []int{18, 19}},
		"timestamp in partition": {Query{Partition: 2, Timestamp: base.Add(3 * time.Second), Limit: 3}, []int{5, 8, 11}},
		"timestamp before all":   {Query{Partition: -1, Timestamp: base.Add(-time.Hour), Limit: 3}, seq(0, 2)},
		"timestamp after all":    {Query{Partition: -1, Timestamp: base.Add(time.Hour)}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			p := read(t, b, tc.q)
			if got := ns(t, p); !slices.Equal(got, tc.want) || len(tc.want) > 0 && !p.Forward {
				t.Errorf("got %v (forward %v), want %v oldest first", got, p.Forward, tc.want)
			}
		})
	}
	// The page before a timestamp: the records just older, newest first.
	p := read(t, b, Query{Partition: -1, Timestamp: base.Add(17500 * time.Millisecond), Limit: 5})
	if got := ns(t, read(t, b, Query{Partition: -1, Limit: 5, Cursor: p.Older})); !slices.Equal(got, seq(17, 13)) {
		t.Errorf("before the timestamp: %v", got)
	}
	if p := read(t, b, Query{Partition: -1, Seek: SeekOldest, Limit: 5}); p.Older != "" {
		t.Errorf("the oldest page has an older cursor %q", p.Older)
	}
}

// TestFilters: key, value, header and text filters, alone and with paging
// (a page fills up with matches, and the next goes on after them).
func TestFilters(t *testing.T) {
	b := pagedSetup(t)
	for name, tc := range map[string]struct {
		q    Query
		want []int
	}{
		"key":             {Query{Key: "KEY-2"}, seq(29, 20)},
		"value":           {Query{Value: "refund"}, []int{25, 20, 15, 10, 5, 0}},
		"header value":    {Query{Header: "kind=ODD", Limit: 4}, []int{29, 27, 25, 23}},
		"header name":     {Query{Header: "Kind", Limit: 2}, []int{29, 28}},
		"no such header":  {Query{Header: "trace"}, nil},
		"any header":      {Query{Header: "=t2", Limit: 2}, []int{29, 27}},
		"text":            {Query{Text: "key-0"}, seq(9, 0)},
		"all together":    {Query{Key: "key-1", Value: "refund", Header: "kind=odd"}, []int{15}},
		"text in headers": {Query{Text: "odd", Limit: 1}, []int{29}},
		"tenant":          {Query{Tenants: func(t string) bool { return t == "t1" }, Limit: 3}, []int{28, 26, 24}},
	} {
		t.Run(name, func(t *testing.T) {
			tc.q.Partition = -1
			if got := ns(t, read(t, b, tc.q)); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// Paging a filtered list: the second page starts after the last match
	// of the first.
	q := Query{Partition: -1, Header: "kind=odd", Limit: 4}
	p := read(t, b, q)
	q.Cursor = p.Older
	if got := ns(t, read(t, b, q)); !slices.Equal(got, []int{21, 19, 17, 15}) {
		t.Errorf("second odd page: %v", got)
	}
	q = Query{Partition: -1, Tenants: func(t string) bool { return t == "t2" }, Seek: SeekOldest, Limit: 3}
	p = read(t, b, q)
	if got := ns(t, p); !slices.Equal(got, []int{1, 3, 5}) || p.Hidden != 3 {
		t.Errorf("t2 oldest: %v hidden %d; want 1 3 5, 3 hidden", got, p.Hidden)
	}
	q.Seek, q.Cursor = "", p.Newer
	if got := ns(t, read(t, b, q)); !slices.Equal(got, []int{7, 9, 11}) {
		t.Errorf("t2 next: %v", got)
	}
}

// TestFiltersSeeMaskedValues: every filter reads the message as the
// caller is shown it, so a masked key or metadata field cannot be found
// by the key, value or header filters; revealed, it can.
func TestFiltersSeeMaskedValues(t *testing.T) {
	b := maskedBrowser(t)
	all := func(string) bool { return true }
	for _, q := range []Query{{Key: "cust-0042"}, {Key: "0042"}, {Value: "cust-0042"}, {Value: `"partition_key":"cust`}} {
		q.Partition = -1
		res, err := b.Read(context.Background(), "demo", topic, q)
		if err != nil || len(res.Messages) != 0 {
			t.Errorf("masked %+v: %d messages, %v; want none", q, len(res.Messages), err)
		}
		q.RevealPII = all
		res, err = b.Read(context.Background(), "demo", topic, q)
		if err != nil || len(res.Messages) != 1 {
			t.Errorf("revealed %+v: %d messages, %v; want 1", q, len(res.Messages), err)
		}
	}
	res, err := b.Read(context.Background(), "demo", topic, Query{Partition: -1, Key: "***"})
	if err != nil || len(res.Messages) != 3 {
		t.Fatalf("the mask itself is what the key filter sees: %+v %v", res.Messages, err)
	}
	for _, m := range res.Messages {
		if string(m.Key) != access.PIIMask {
			t.Errorf("key %q, want the mask", m.Key)
		}
	}
}

// TestQueryErrors: what a request may not ask is EINVALID naming it; a
// partition that does not exist is ENOTFOUND.
func TestQueryErrors(t *testing.T) {
	b := pagedSetup(t)
	for name, tc := range map[string]struct {
		q    Query
		code string
		text string
	}{
		"unknown seek":          {Query{Partition: -1, Seek: "sideways"}, delivery.EINVALID, "seek"},
		"offset without value":  {Query{Partition: -1, Seek: SeekOffset}, delivery.EINVALID, "offset"},
		"negative offset":       {Query{Partition: 0, Offset: -1, HasOffset: true}, delivery.EINVALID, "offset"},
		"offset past the end":   {Query{Partition: 0, Offset: 11, HasOffset: true}, delivery.EINVALID, "offset 11 is past the end of partition 0 (its next offset is 10)"},
		"timestamp missing":     {Query{Partition: -1, Seek: SeekTimestamp}, delivery.EINVALID, "timestamp"},
		"timestamp far future":  {Query{Partition: -1, Timestamp: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, delivery.EINVALID, "timestamp"},
		"offset and timestamp":  {Query{Partition: -1, Offset: 1, HasOffset: true, Timestamp: base}, delivery.EINVALID, "not both"},
		"newest with an offset": {Query{Partition: -1, Seek: SeekNewest, Offset: 1, HasOffset: true}, delivery.EINVALID, "newest"},
		"cursor and seek":       {Query{Partition: -1, Seek: SeekOldest, Cursor: "before:0@3"}, delivery.EINVALID, "cursor"},
		"cursor garbage":        {Query{Partition: -1, Cursor: "abc"}, delivery.EINVALID, "cursor"},
		"cursor empty":          {Query{Partition: -1, Cursor: "before:"}, delivery.EINVALID, "cursor"},
		"cursor negative":       {Query{Partition: -1, Cursor: "from:0@-3"}, delivery.EINVALID, "cursor"},
		"cursor twice":          {Query{Partition: -1, Cursor: "from:0@3,0@4"}, delivery.EINVALID, "cursor"},
		"cursor of partitions":  {Query{Partition: 1, Cursor: "from:0@3"}, delivery.EINVALID, "cursor"},
		"filter too long":       {Query{Partition: -1, Value: strings.Repeat("x", MaxFilterLen+1)}, delivery.EINVALID, "value"},
		"control character":     {Query{Partition: -1, Key: "a\x00b"}, delivery.EINVALID, "key"},
		"no such partition":     {Query{Partition: 9, Seek: SeekOldest}, delivery.ENOTFOUND, "partition 9"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := b.Read(context.Background(), "demo", pagedTopic, tc.q)
			if got := delivery.ErrorCode(err); got != tc.code || !strings.Contains(delivery.ErrorMessage(err), tc.text) {
				t.Errorf("error %q %v, want %s naming %q", got, err, tc.code, tc.text)
			}
		})
	}
	// A cursor whose offsets retention has passed (or that points past the
	// end) is read within what the partition holds.
	p := read(t, b, Query{Partition: 0, Cursor: "before:0@999", Limit: 2})
	if got := ns(t, p); !slices.Equal(got, []int{27, 24}) {
		t.Errorf("cursor past the end: %v", got)
	}
}

func TestCursorCodec(t *testing.T) {
	for _, s := range []string{"before:0@0", "from:0@12,1@0,7@99"} {
		c, err := parseCursor(s)
		if err != nil || c.String() != s {
			t.Errorf("parseCursor(%q) = %v %v, String %q", s, c, err, c.String())
		}
	}
}

func TestPreview(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"{\n  \"a\": 1,\n  \"b\": [1, 2]\n}", 40, `{"a":1,"b":[1,2]}`},
		{"two\nlines  here", 40, "two lines here"},
		{`{"note":"a long value"}`, 10, `{"note":"a…`},
		{"\xff\x00", 10, "ff 00"},
		{"", 10, ""},
	} {
		if got := Preview([]byte(tc.in), tc.n); got != tc.want {
			t.Errorf("Preview(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
