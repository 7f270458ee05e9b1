package templates

import (
	"strconv"
	"strings"
	"time"
)

// DeadLetterGroups is /dead-letters: one row per failure cause.
type DeadLetterGroups struct {
	Range   RangePicker
	Sources []DLQSource
	// SourcesKnown is set when the console runs indexers (the strip then
	// shows "no sources yet" rather than nothing).
	SourcesKnown bool
	SourceErrors int
	Filter       GroupFilterForm
	Rows         []DLQGroupRow
	NextHref     string // "" on the last page
	FirstHref    string // "" on the first page
	CanTriage    bool
	// TriageStates are the states a group may be filtered by and set to.
	TriageStates []string
	Error        string // what is wrong with the filter
	Open         int    // open entries in scope
	EntriesHref  string
}

// GroupFilterForm is the groups filter as typed.
type GroupFilterForm struct {
	State, Broker, Destination, Q, Sort, Range string
}

// DLQSource is one indexed dead-letter topic or queue.
type DLQSource struct {
	Broker, Where, Destination string
	// Entries are those of the source the principal may see, the newest
	// failing LastEntryAgo.
	Entries      int
	LastEntryAgo string
	// AllTenants: the principal sees every tenant of the source, and so
	// the indexer's counters, which span them all; else they are unset.
	AllTenants               bool
	Indexed, Duplicates, Lag int64 // Lag -1: unknown
	LastIndexedAgo           string
	LastError, LastErrorAgo  string
}

// DLQGroupRow is one failure group.
type DLQGroupRow struct {
	ID                                  int64
	Title, ErrorCode, ExceptionType     string
	EventType                           string
	Count, Open                         int
	FailedAgain                         int    // redriven entries whose message failed again (not in Count)
	FirstSeen, LastSeen                 string // "3m ago"
	FirstSeenExact, LastSeenExact       string
	Destinations, Tenants               []string
	State                               string // open, acknowledged, resolved, snoozed
	StateClass                          string // the badge of State
	StateText                           string // "acknowledged by alice"
	Owner, Note, SnoozedUntil, UpdateBy string
	Trend                               Sparkline
	EntriesHref, TriageAction           string
	SampleHref                          string // opens one entry of the group
	AlertOn                             []AlertOn
}

// Sparkline is a small trend line of counts per bucket.
type Sparkline struct {
	Counts []int
	Label  string // "12 in the last 24h"
}

// DeadLetterEntries is /dead-letters/entries.
type DeadLetterEntries struct {
	Filter        EntryFilterForm
	StatusOptions []string
	RangeOptions  []string
	Error         string // what is wrong with the filter or search
	Rows          []DLQEntryRow
	Total         string // "12", "10,000+"
	NextHref      string
	FirstHref     string
	GroupTitle    string
	GroupsHref    string
	// Searched says what a text search looked in ("error codes, …"),
	// for an empty result; Suggestions are the filters that would match
	// instead; TextPending: the search index is still being rebuilt for
	// older entries; TextBehind: how far text search lags capture
	// (dlqstore.Page.TextBehind), said from a second up.
	Searched    string
	Suggestions []SearchSuggestion
	TextPending bool
	TextBehind  time.Duration
}

// SearchSuggestion is a filter an empty search suggests: "error code
// UPSTREAM_TIMEOUT", 60 entries.
type SearchSuggestion struct {
	Field, Value, Href string
	Count              string
}

// TotalNoun is "entry" after a total of one, else "entries".
func (v DeadLetterEntries) TotalNoun() string {
	if v.Total == "1" {
		return "entry"
	}
	return "entries"
}

// Entries is "1 entry", "12 entries".
func Entries(n int) string { return Exact(int64(n)) + " " + entriesNoun(n) }

// entriesNoun is "entry" for one, else "entries".
func entriesNoun(n int) string {
	if n == 1 {
		return "entry"
	}
	return "entries"
}

// EntryFilterForm is the entries filter as typed.
type EntryFilterForm struct {
	Statuses                                   []string
	Broker, Cluster, Destination               string
	EventType, ErrorCode, Tenant               string
	From, To, Range, Group, Q, Limit, Searched string
}

// HasStatus reports whether st is selected.
func (f EntryFilterForm) HasStatus(st string) bool {
	for _, s := range f.Statuses {
		if s == st {
			return true
		}
	}
	return false
}

// DLQEntryRow is one dead letter in the list.
type DLQEntryRow struct {
	ID                        int64
	Href                      string
	Time, TimeExact           string
	Destination, Where        string
	ErrorCode, Message        string
	EventType, Tenant, Status string
	StatusClass               string // the badge of Status
	Attempts                  int
	Outcome                   Outcome // of a redriven entry
}

// Outcome is what became of a redriven entry's message, shown beside its
// status: "redriven → failed again" (linking the re-failure, Href), "not
// seen again", or, within the watch window, "not back so far". Kind is
// dlqstore.RedriveOutcome; "" when the entry was not redriven.
type Outcome struct {
	Kind, Text, Class string
	RefailedID        int64
	Href              string
	// FailedAgain: the message came back (as RefailedID); Watching: the
	// watch window has not passed yet.
	FailedAgain, Watching bool
}

// DeadLetterEntry is /dead-letters/entries/:id.
type DeadLetterEntry struct {
	ID            int64
	Status        string
	StatusClass   string // the badge of Status
	Title         string
	GroupHref     string
	Envelope      []KV
	EnvelopeError string
	Format        string
	// Payload, key and headers (and the envelope's partition key) are
	// shown only with read_payload; Masked counts the masked values of
	// the payload and the key.
	PayloadAllowed bool
	Payload        string
	PayloadKind    string // json, text, hex
	Masked         int
	Key            string
	Headers        []HeaderRow
	Error          DLQError
	Attempts       int
	RedriveCount   int
	FirstFailure   string
	LastFailure    string
	Origin         []KV
	OriginHref     string
	OriginLabel    string
	DLQ            []KV
	DLQHref        string
	CorrelationID  string
	TraceID        string
	// FailedSpanID is the span of the failing consumer attempt in the
	// trace, when the span store has it.
	FailedSpanID string
	Flags        []DLQFlag
	// StatusReason says why the entry has its status when an action or
	// loop protection put it there.
	StatusReason string
	// Outcome is what became of its message when it was redriven, with
	// the job that sent it (OutcomeJob, when the viewer may see it).
	Outcome        Outcome
	OutcomeJobID   int64
	OutcomeJobHref string
	// RefailureOf is, on a re-failure, the entry its message was
	// redriven from, and RedriveJob the job that sent it.
	RefailureOf, RedriveJob         int64
	RefailureOfHref, RedriveJobHref string
}

// DLQError is an entry's error context.
type DLQError struct {
	Code, Message, ExceptionType, Stack, Details string
}

// DLQFlag is one flag of an entry, with its explanation.
type DLQFlag struct{ Name, Text string }

// KV is one labelled value. Withheld says there is a value the viewer
// may not see (shown as such, never as an empty or made-up value).
type KV struct {
	Key, Value string
	Withheld   bool
}

// CorrelationHref links the saga page of the correlation id.
func (e DeadLetterEntry) CorrelationHref() string {
	return "/correlations/" + pathEscape(e.CorrelationID)
}

// TraceHref links the trace, at the failing attempt's span when it is
// known (highlighted, its details open, scrolled to).
func (e DeadLetterEntry) TraceHref() string {
	if e.FailedSpanID != "" {
		return "/traces/" + pathEscape(e.TraceID) + "?span=" + queryEscape(e.FailedSpanID) + "#span-" + e.FailedSpanID
	}
	return "/traces/" + pathEscape(e.TraceID)
}

// sparkPoints lays counts out in a 100×20 box, highest at the top.
func sparkPoints(counts []int) string {
	if len(counts) == 0 {
		return ""
	}
	hi := 1
	for _, n := range counts {
		hi = max(hi, n)
	}
	var b strings.Builder
	for i, n := range counts {
		x := 0.0
		if len(counts) > 1 {
			x = 100 * float64(i) / float64(len(counts)-1)
		}
		y := 19 - 18*float64(n)/float64(hi)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(round1(x), 'f', -1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(round1(y), 'f', -1, 64))
	}
	return b.String()
}

func joinInts(ns []int) string {
	var b strings.Builder
	for i, n := range ns {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
