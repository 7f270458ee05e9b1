package templates

// Messages is /topics/:cluster/:topic/messages: one page of the message
// browser, its form as typed, and the links to the pages around it.
type Messages struct {
	Cluster, Topic, TopicHref string
	Form                      MessagesForm
	Partitions                []int32
	// Error is why the request was refused (the form stays, to fix it).
	Error   string
	Partial bool // the read stopped at its deadline
	// Forward: the page reads oldest first (a seek or a newer page);
	// else newest first.
	Forward bool
	Rows    []MessageRow
	// Links to the pages around this one ("" when there is none), and to
	// the newest and oldest pages of the same filters.
	OlderHref, NewerHref, NewestHref, OldestHref string
	ExportHref                                   string
}

// MessagesForm is the browser's form as the user filled it in.
type MessagesForm struct {
	Partition                int32 // -1: all
	Limit                    int
	Offset, Timestamp        string
	Text, Key, Value, Header string
}

// Filtered reports whether a filter leaves messages out.
func (f MessagesForm) Filtered() bool {
	return f.Text != "" || f.Key != "" || f.Value != "" || f.Header != ""
}

// MessageRow is one message in the browser: a compact line, and the whole
// message when the row is opened.
type MessageRow struct {
	Partition       int32
	Offset          int64
	Time, TimeExact string // "12:00:05.120 · 3m ago", RFC 3339
	Key             string
	Tenant          string
	EventType       string
	Valid           bool
	Masked          int
	Preview         string // the value on one line, cut
	Value           string
	ValueKind       string // json, text, hex
	Headers         []HeaderRow
}
