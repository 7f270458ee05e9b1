package tracing

import "time"

// TraceView is one message's story as the trace page draws it: the asked
// trace and every trace joined to it by span links (a consumer's own trace
// linked to the producer's, a redrive linked to the dead-lettered
// message's), on one time axis. Spans the caller may not view are in Rows
// with FlagRedacted and only their timing. Service.Trace builds it.
type TraceView struct {
	TraceID    TraceID
	Start, End time.Time  // the shared axis
	Rows       []Row      // depth-first, children by start time
	Traces     []TraceRef // Traces[0] is the asked trace
	Services   []string   // sorted, of the visible spans
	Spans      int        // rows, redacted ones included
	Errors     int        // visible spans with StatusError
	// Critical is the total of the critical path (the rows with Critical).
	Critical time.Duration
	// Truncated says that the story had more than MaxSpans spans: the
	// rows stop there, by start time.
	Truncated bool
	// Warnings say what assembly corrected or could not place, one line
	// each: clock skew corrected (by how much, between which services),
	// spans whose parent is missing, duplicate span ids, non-positive
	// durations, future timestamps, cut attributes.
	Warnings []string
}

// TraceRef is one trace of a story.
type TraceRef struct {
	TraceID TraceID
	// Role says how it joined: "asked", "linked from" (a span of it links
	// to the asked story) or "links to" (the story links to it).
	Role        string
	RootService string
	RootName    string
	Start       time.Time
	Spans       int
}

// Row is one span of the waterfall.
type Row struct {
	Span   Span // a redacted span keeps only ids, times and Flags
	Depth  int
	Parent int // index into Rows; -1 for a root
	// Descendants counts the rows below it, so a page can collapse them.
	Descendants int
	// Offset and Length place the bar on the axis (from TraceView.Start).
	Offset, Length time.Duration
	// ViaLink: placed under Parent by a span link, not a parent id (the
	// hop into another trace).
	ViaLink bool
	// Trace is the index into TraceView.Traces of the trace it belongs to.
	Trace int
	// Critical marks the spans on the critical path.
	Critical bool
	// BrokerWait is, for a consumer span under a producer span, the time
	// between the publish and the consumer's start: time in the broker.
	BrokerWait time.Duration
	// Backoff is, for a consumer attempt after the first, the wait since
	// the previous attempt ended: the retry backoff.
	Backoff time.Duration
	// Error is the failure in one line: the status message, else the
	// first exception's type and message.
	Error string
}

// SearchQuery selects spans. Empty fields do not restrict. Every field is
// matched in the store's query (indexed), never after paging.
type SearchQuery struct {
	TraceID       TraceID
	CorrelationID string
	Service       string
	Operation     string
	EventType     string
	EventID       string
	Tenant        string
	Destination   string // messaging.destination.name
	Group         string // consumer group
	Cluster       string // the Kafka cluster or RabbitMQ vhost (delivery.AttrCluster)
	Step          string // delivery.AttrStep
	Status        string // "", "ok", "error", "unset"
	MinDuration   time.Duration
	MaxDuration   time.Duration // 0: no maximum
	From, To      time.Time     // span start in [From, To); zero: open
	// Roots limits the results to one row per trace: the earliest
	// matching span of each trace.
	Roots bool
	Limit int    // default 50, at most 500
	After string // the cursor of the previous page's last result
}

// SearchResult is one page of matching spans, newest first.
type SearchResult struct {
	Spans []Span
	// Next is the cursor of the next page; "" on the last.
	Next string
}
