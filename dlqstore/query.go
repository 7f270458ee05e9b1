package dlqstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-sqlite3"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/sqldb"
)

// Entry is one stored dead letter.
type Entry struct {
	ID                           int64
	Status                       Status
	Broker, Cluster, VHost       string
	Destination                  string // the DLQ topic or queue
	Partition                    int32  // Kafka; -1 for RabbitMQ
	Offset                       int64  // Kafka; -1 for RabbitMQ
	MessageID                    string // RabbitMQ
	DeathCount                   int    // RabbitMQ
	Tenant, EventType, ErrorCode string
	Fingerprint                  string
	GroupID                      int64
	DL                           delivery.DeadLetter // full record: envelope, origin, error, attempts, times, headers, payload (capped)
	Flags                        []string
	PayloadSize                  int
	PayloadHash                  string
	Truncated                    bool
	IndexedAt, UpdatedAt         time.Time
	// Resource is what the access policy checks the entry against: the
	// origin topic or queue (kafka:<cluster>/<topic>,
	// rabbitmq:<vhost>/<queue>) when the dead letter names it, else the
	// DLQ itself.
	Resource string
	// RedriveCount is how often the message had been redriven before this
	// failure, RedriveJob the job that last redrove it (0 = none).
	RedriveCount int
	RedriveJob   int64
	// StatusReason says why the entry has its status when something other
	// than its failure put it there (a discard reason, loop protection).
	StatusReason string
}

// TenantScope is the set of tenants a caller may see (access.Scope): All,
// or only Tenants. As in access.Scope.Allows, entries without a tenant are
// visible to any non-empty scope.
//
// Rules, when not nil, further limit what is visible to the rows that one
// of them allows (access.Policy.Rules): a principal bound to
// kafka:prod/orders.* sees entries, groups, counts and totals of those
// topics only, computed in the query. All/Tenants must then be the union of
// the rules' tenants, which the list queries split on. An empty non-nil
// Rules shows nothing.
type TenantScope struct {
	All     bool
	Tenants []string
	Rules   []access.Rule
}

// Filter selects entries. Every field is optional and they combine with AND.
type Filter struct {
	Status                                                     []Status
	Broker, Cluster, Destination, EventType, ErrorCode, Tenant string
	Tenants                                                    *TenantScope // nil = all; else only these tenants — the access policy's scope
	From, To                                                   time.Time    // on last failure time: From inclusive, To exclusive
	GroupID                                                    int64
	Q                                                          string // full-text query, see ftsQuery
	Limit                                                      int    // default 50, max 500
	Cursor                                                     string // Page.Next of the previous page
}

// MaxQueryLen bounds a full-text query (bytes).
const MaxQueryLen = 500

// Validate checks f the way every reader of a filter needs it checked:
// known statuses, times the store can hold (a year-9999 bound would wrap
// around in Unix nanoseconds and match everything), a To after From,
// text without control characters (SQLite would cut a string at NUL), a
// bounded query and a well-formed cursor. Errors: EINVALID naming the
// field.
func (f Filter) Validate() error {
	for _, st := range f.Status {
		if !st.Valid() {
			return delivery.Errorf(delivery.EINVALID, "status %q: want dead, redriving, redriven, quarantined, discarded or resolved", truncate(string(st), 40))
		}
	}
	for _, t := range []struct {
		name string
		v    time.Time
	}{{"from", f.From}, {"to", f.To}} {
		if !t.v.IsZero() && !sqldb.TimeInRange(t.v) {
			return delivery.Errorf(delivery.EINVALID, "%s must be a time %s", t.name, sqldb.TimeRangeText)
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

// Page is one page of entries, newest failure first.
type Page struct {
	Entries []Entry
	Next    string // cursor of the next page, "" on the last one
	// Total counts every entry of the filter (not just this page). It is
	// exact unless TotalCapped, which makes it a lower bound ("10,000+"):
	// counting stops at TotalCap, and a text with a filter that matches
	// more than ftsDriveMax entries is counted among its newest
	// countScanMax matches only (unless the filter is small enough to
	// count exactly).
	Total       int
	TotalCapped bool
}

// TotalCap bounds the work of Page.Total.
const TotalCap = 10000

// How a search with text runs depends on how many entries the text
// matches (counted up to ftsMemberMax, which costs a few milliseconds):
//   - up to ftsDriveMax: start from the full-text matches, look each entry
//     up and sort by time;
//   - more, with no filter or a broad one: walk the time-ordered filter
//     index in chunks and ask the full-text index which ids of each
//     chunk's id range match (chunkedPage);
//   - up to ftsMemberMax with a narrow filter: put the matches in a
//     temporary table of the connection once, then walk the filter index
//     and test each entry's id against it by key, for the page and for the
//     count;
//   - more with a narrow filter: walk the filter index and probe the
//     full-text index per entry.
var (
	ftsDriveMax  = 20000
	ftsMemberMax = 300000
	// exactCountMax: a text search with a filter counts exactly when the
	// filter alone selects at most this many entries.
	exactCountMax = 10000
) // variables so that a test can run every mode over a small index

// querier is a *sql.DB or a *sql.Conn.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// loadHits fills the connection's temporary table of full-text matches and
// returns how many there are.
func loadHits(ctx context.Context, conn *sql.Conn, match string) (int, error) {
	if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE IF NOT EXISTS fts_hits (id INTEGER PRIMARY KEY); DELETE FROM temp.fts_hits"); err != nil {
		return 0, err
	}
	res, err := conn.ExecContext(ctx, "INSERT INTO temp.fts_hits SELECT rowid FROM entries_fts WHERE entries_fts MATCH ?", match)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// ftsMode is how a search uses the full-text index, see ftsDriveMax.
type ftsMode int

const (
	ftsNone ftsMode = iota
	ftsDrive
	ftsMember
	ftsProbe
	// ftsSet tests membership in the match set SQLite builds for the
	// statement: for a job's selection, which runs once.
	ftsSet
)

// maxExpand bounds how many (status, tenant) combinations a list query is
// split into, see where.
const maxExpand = 32

const entryColumns = `e.id, e.status, e.broker, e.cluster, e.vhost, e.destination, e.kpartition, e.koffset,
	e.message_id, e.death_count, e.tenant, e.event_type, e.error_code, e.fingerprint, e.group_id,
	e.indexed_at, e.updated_at, e.flags, e.payload_size, e.payload_hash, e.truncated, e.resource,
	e.redrive_count, e.redrive_job, e.status_reason`

// FindEntries returns a page of entries matching f, newest last failure
// first (ties by id), with keyset pagination: a page is stable when new
// entries arrive meanwhile. Errors: EINVALID for a bad cursor, limit or
// full-text query (the message says what is wrong with the query).
func (s *Store) FindEntries(ctx context.Context, f Filter) (Page, error) {
	if err := f.Validate(); err != nil {
		return Page{}, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = 50
	}
	f.Status = slices.Compact(slices.Sorted(slices.Values(f.Status)))
	var match string
	if strings.TrimSpace(f.Q) != "" {
		var err error
		if match, err = ftsQuery(f.Q); err != nil {
			return Page{}, err
		}
	}
	var cur *cursor
	if f.Cursor != "" {
		c, err := parseCursor(f.Cursor)
		if err != nil {
			return Page{}, err
		}
		cur = &c
	}
	tenants, visible := scopeTenants(f.Tenants)
	if !visible {
		return Page{}, nil
	}
	if len(tenants) > 1 {
		// Each tenant of a scope is a branch of the page query; drop the
		// tenants without entries (often "", or most of a long scope).
		var err error
		if tenants, err = s.tenantsWithEntries(ctx, tenants); err != nil {
			return Page{}, fmt.Errorf("find entries: %w", err)
		}
		if len(tenants) == 0 {
			return Page{}, nil
		}
	}

	// Where the search starts: a rare full-text match is cheapest from the
	// full-text index, everything else from the time-ordered indexes.
	mode := ftsNone
	n := 0 // text matches, counted up to ftsMemberMax+1
	if match != "" {
		err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? LIMIT ?)", match, ftsMemberMax+1).Scan(&n)
		if err != nil {
			return Page{}, searchError(f.Q, err)
		}
		switch {
		case n == 0:
			return Page{}, nil
		case n <= ftsDriveMax:
			mode = ftsDrive
		case n <= ftsMemberMax:
			mode = ftsMember
		default:
			mode = ftsProbe
		}
	}
	w := where{f: f, tenants: tenants, match: match, ftsDrive: mode == ftsDrive, mode: mode}
	var db querier = s.db
	plain := where{f: f, tenants: tenants}
	plainConds, _ := plain.conds(false)
	textOnly := len(plainConds) == 0
	// filterN is how many entries the filter alone selects, from
	// group_stats (-1 when it cannot say: a time range, for one).
	filterN := -1
	if mode == ftsMember || mode == ftsProbe {
		if q, a, ok := plain.statsCountQuery(); ok && !textOnly {
			if err := s.db.QueryRowContext(ctx, q, a...).Scan(&filterN); err != nil {
				return Page{}, fmt.Errorf("find entries: %w", err)
			}
		}
	}
	// Walking the filter's index in chunks pays when each chunk's id range
	// holds few text matches (about chunkFirst × matches / filterN rowids
	// to read); otherwise building the match set once is cheaper
	// (measured over 1,000,000 entries).
	chunks := (mode == ftsMember || mode == ftsProbe) &&
		(textOnly || filterN > 0 && float64(chunkFirst)*float64(n)/float64(filterN) <= chunkRangeMax)
	if mode == ftsMember && !chunks {
		// With a filter, the matches go into a temporary table of this
		// connection once; the page walks the filter's index testing
		// membership by key, and so does an exact count.
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return Page{}, fmt.Errorf("find entries: %w", err)
		}
		defer conn.Close()
		if _, err = loadHits(ctx, conn, match); err != nil {
			return Page{}, searchError(f.Q, fmt.Errorf("find entries: %w", err))
		}
		db = conn
	}

	// The page.
	var page Page
	var lasts []int64
	if chunks {
		var err error
		if page.Entries, lasts, err = s.chunkedPage(ctx, w, cur, limit+1); err != nil {
			return Page{}, searchError(f.Q, fmt.Errorf("find entries: %w", err))
		}
	} else {
		query, args := w.pageQuery(cur, limit+1)
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return Page{}, searchError(f.Q, fmt.Errorf("find entries: %w", err))
		}
		for rows.Next() {
			e, last, err := scanEntry(rows)
			if err != nil {
				rows.Close()
				return Page{}, fmt.Errorf("find entries: %w", err)
			}
			page.Entries = append(page.Entries, e)
			lasts = append(lasts, last)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return Page{}, searchError(f.Q, fmt.Errorf("find entries: %w", err))
		}
	}
	if len(page.Entries) > limit {
		page.Entries = page.Entries[:limit]
		page.Next = cursor{t: lasts[limit-1], id: page.Entries[limit-1].ID}.String()
	}
	if err := s.fillBodies(ctx, page.Entries); err != nil {
		return Page{}, fmt.Errorf("find entries: %w", err)
	}

	// The total, bounded.
	if cur == nil && page.Next == "" {
		page.Total = len(page.Entries) // the whole result is on this page
		return page, nil
	}
	if query, args, ok := w.statsCountQuery(); ok {
		// Exact and cheap: no cap.
		if err := s.db.QueryRowContext(ctx, query, args...).Scan(&page.Total); err != nil {
			return Page{}, fmt.Errorf("count entries: %w", err)
		}
		return page, nil
	}
	if w.match != "" && !w.ftsDrive {
		if cs, _ := plain.conds(false); len(cs) == 0 {
			// Text alone: the match count is the total (a lower bound
			// when probing: the count stopped past ftsMemberMax).
			page.Total, page.TotalCapped = min(n, TotalCap), n > TotalCap || mode == ftsProbe
			return page, nil
		}
	}
	// Counting over the filter's own entries is exact and cheap when the
	// filter alone selects few of them and the matches are in the
	// connection's temporary table.
	exact := mode == ftsMember && !chunks && filterN >= 0 && filterN <= exactCountMax
	if mode == ftsMember && chunks {
		w.mode = ftsSet // no temporary table: the bounded count reads the newest matches itself
	}
	query, args, bounded := w.countQuery(TotalCap+1, exact)
	if err := db.QueryRowContext(ctx, query, args...).Scan(&page.Total); err != nil {
		return Page{}, searchError(f.Q, fmt.Errorf("count entries: %w", err))
	}
	page.TotalCapped = bounded
	if page.Total > TotalCap {
		page.Total, page.TotalCapped = TotalCap, true
	}
	if bounded && page.Next != "" && page.Total <= limit {
		// Counted among the newest matches only, and fewer than this page
		// shows there are: at least one page and one more.
		page.Total = limit + 1
	}
	return page, nil
}

// tenantsWithEntries returns the tenants of ts that have entries, from
// group_stats (which has no row for an empty combination).
func (s *Store) tenantsWithEntries(ctx context.Context, ts []string) ([]string, error) {
	args := make([]any, len(ts))
	for i, t := range ts {
		args[i] = t
	}
	rows, err := s.db.QueryContext(ctx, "SELECT DISTINCT tenant FROM group_stats WHERE tenant IN ("+placeholders(len(ts))+")", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// scopeTenants returns the tenant values a scope may see (nil = all), and
// false when it may see nothing.
func scopeTenants(sc *TenantScope) ([]string, bool) {
	if sc != nil && sc.Rules != nil && len(sc.Rules) == 0 {
		return nil, false
	}
	if sc == nil || sc.All {
		return nil, true
	}
	if len(sc.Tenants) == 0 {
		return nil, false
	}
	// Entries without a tenant are visible to any non-empty scope
	// (access.Scope.Allows). Duplicates would repeat entries in the
	// per-tenant branches of a page.
	ts := append([]string{""}, sc.Tenants...)
	slices.Sort(ts)
	return slices.Compact(ts), true
}

// searchError turns FTS5's complaint about a query into EINVALID; any
// other error passes through.
func searchError(q string, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && (strings.Contains(se.Error(), "fts5") || strings.Contains(se.Error(), "no such column")) {
		return delivery.Errorf(delivery.EINVALID, "search: cannot understand %q (%s)", q, strings.TrimPrefix(se.Error(), "fts5: "))
	}
	return err
}

// where builds the SQL of a filter.
type where struct {
	f        Filter
	tenants  []string // nil = any
	match    string   // FTS5 query, "" = none
	ftsDrive bool
	mode     ftsMode
	narrow   bool // pageQuery selects only e.id and e.last_failure_at
}

// conds returns the conditions and arguments on alias e, without the
// status and tenant lists when split is set (the caller adds one value of
// each per branch).
func (w where) conds(split bool) ([]string, []any) {
	var cs []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			cs = append(cs, "e."+col+" = ?")
			args = append(args, v)
		}
	}
	in := func(col string, vs []string) {
		cs = append(cs, "e."+col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vs)), ",")+")")
		for _, v := range vs {
			args = append(args, v)
		}
	}
	f := w.f
	eq("broker", f.Broker)
	eq("cluster", f.Cluster)
	eq("destination", f.Destination)
	eq("event_type", f.EventType)
	eq("error_code", f.ErrorCode)
	eq("tenant", f.Tenant)
	if !split {
		if len(f.Status) > 0 {
			in("status", statusStrings(f.Status))
		}
		if w.tenants != nil {
			in("tenant", w.tenants)
		}
	}
	if c, a := f.Tenants.ruleCond("e.resource", "e.tenant"); c != "" {
		cs = append(cs, c)
		args = append(args, a...)
	}
	if f.GroupID != 0 {
		cs = append(cs, "e.group_id = ?")
		args = append(args, f.GroupID)
	}
	if !f.From.IsZero() {
		cs = append(cs, "e.last_failure_at >= ?")
		args = append(args, f.From.UnixNano())
	}
	if !f.To.IsZero() {
		cs = append(cs, "e.last_failure_at < ?")
		args = append(args, f.To.UnixNano())
	}
	switch {
	case w.match == "" || w.ftsDrive:
	case w.mode == ftsMember:
		cs = append(cs, "EXISTS (SELECT 1 FROM temp.fts_hits h WHERE h.id = e.id)")
	case w.mode == ftsSet:
		cs = append(cs, "+e.id IN (SELECT rowid FROM entries_fts WHERE entries_fts MATCH ?)")
		args = append(args, w.match)
	default:
		cs = append(cs, "EXISTS (SELECT 1 FROM entries_fts WHERE entries_fts MATCH ? AND entries_fts.rowid = e.id)")
		args = append(args, w.match)
	}
	return cs, args
}

func (w where) from() (string, []any) {
	if w.ftsDrive {
		// CROSS JOIN keeps the full-text index as the outer loop.
		return "entries_fts CROSS JOIN entries e ON e.id = entries_fts.rowid", nil
	}
	return "entries e", nil
}

func (w where) ftsCond() ([]string, []any) {
	if w.ftsDrive {
		return []string{"entries_fts MATCH ?"}, []any{w.match}
	}
	return nil, nil
}

func statusStrings(ss []Status) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// pageQuery returns the page query. SQLite walks an index in order and
// stops at LIMIT only when every column before last_failure_at in the index
// is pinned to one value; an IN list (several statuses, a tenant scope)
// would make it collect and sort every match. So with lists the query is a
// UNION ALL of one ordered, limited branch per (status, tenant) pair, and
// only the few branch heads are sorted.
func (w where) pageQuery(cur *cursor, n int) (string, []any) {
	from, _ := w.from()
	statuses := statusStrings(w.f.Status)
	tenants := w.tenants
	combos := max(len(statuses), 1) * max(len(tenants), 1)
	split := !w.ftsDrive && (len(statuses) > 1 || len(tenants) > 1) && combos <= maxExpand
	base, baseArgs := w.conds(split)
	fc, fa := w.ftsCond()
	base = append(fc, base...)
	baseArgs = append(fa, baseArgs...)
	if cur != nil {
		base = append(base, "(e.last_failure_at, e.id) < (?, ?)")
		baseArgs = append(baseArgs, cur.t, cur.id)
	}
	branch := func(extra []string, extraArgs []any) (string, []any) {
		cs := append(append([]string{}, base...), extra...)
		cols := entryColumns
		if w.narrow {
			cols = "e.id"
		}
		q := "SELECT " + cols + ", e.last_failure_at FROM " + from
		if len(cs) > 0 {
			q += " WHERE " + strings.Join(cs, " AND ")
		}
		q += " ORDER BY e.last_failure_at DESC, e.id DESC LIMIT " + strconv.Itoa(n)
		return q, append(append([]any{}, baseArgs...), extraArgs...)
	}
	if !split {
		return branch(nil, nil)
	}
	if len(statuses) == 0 {
		statuses = []string{""}
	}
	if len(tenants) == 0 {
		tenants = []string{""}
	}
	var parts []string
	var args []any
	for _, st := range statuses {
		for _, tn := range tenants {
			var extra []string
			var extraArgs []any
			if len(w.f.Status) > 0 {
				extra = append(extra, "e.status = ?")
				extraArgs = append(extraArgs, st)
			}
			if w.tenants != nil {
				extra = append(extra, "e.tenant = ?")
				extraArgs = append(extraArgs, tn)
			}
			q, a := branch(extra, extraArgs)
			parts = append(parts, "SELECT * FROM ("+q+")")
			args = append(args, a...)
		}
	}
	// The outer sort uses the last column (last_failure_at) and the first (id).
	last := "26"
	if w.narrow {
		last = "2"
	}
	return strings.Join(parts, " UNION ALL ") + " ORDER BY " + last + " DESC, 1 DESC LIMIT " + strconv.Itoa(n), args
}

// countQuery counts up to n entries of the filter. When many entries
// match the text (the page walks the time index and probes the full-text
// index), probing for the count could take seconds; it counts among the
// newest countScanMax text matches instead, a lower bound (bounded is true),
// unless exact: the filter alone selects few entries, and the matches are
// in the connection's temporary table (ftsMember).
func (w where) countQuery(n int, exact bool) (q string, args []any, bounded bool) {
	if w.match != "" && !w.ftsDrive && !exact {
		x := w
		x.match = ""
		cs, a := x.conds(false)
		newest := "SELECT rowid AS id FROM entries_fts WHERE entries_fts MATCH ? ORDER BY rowid DESC"
		var margs []any
		if w.mode == ftsMember {
			newest = "SELECT id FROM temp.fts_hits ORDER BY id DESC"
		} else {
			margs = []any{w.match}
		}
		q = "SELECT 1 FROM (" + newest + " LIMIT " + strconv.Itoa(countScanMax) + ") m CROSS JOIN entries e ON e.id = m.id"
		if len(cs) > 0 {
			q += " WHERE " + strings.Join(cs, " AND ")
		}
		return "SELECT count(*) FROM (" + q + " LIMIT " + strconv.Itoa(n) + ")", append(margs, a...), true
	}
	from, _ := w.from()
	cs, args := w.conds(false)
	fc, fa := w.ftsCond()
	cs = append(fc, cs...)
	args = append(fa, args...)
	q = "SELECT 1 FROM " + from
	if len(cs) > 0 {
		q += " WHERE " + strings.Join(cs, " AND ")
	}
	return "SELECT count(*) FROM (" + q + " LIMIT " + strconv.Itoa(n) + ")", args, false
}

// statsCountQuery counts the filter from group_stats when every condition
// is one of its columns (the error code is the group's: it is part of the
// fingerprint), so that the total of a common list costs a few hundred rows
// of the small table instead of a walk of the entries.
func (w where) statsCountQuery() (string, []any, bool) {
	f := w.f
	if w.match != "" || !f.From.IsZero() || !f.To.IsZero() {
		return "", nil, false
	}
	var cs []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			cs = append(cs, col+" = ?")
			args = append(args, v)
		}
	}
	in := func(col string, vs []string) {
		cs = append(cs, col+" IN ("+placeholders(len(vs))+")")
		for _, v := range vs {
			args = append(args, v)
		}
	}
	eq("s.broker", f.Broker)
	eq("s.cluster", f.Cluster)
	eq("s.destination", f.Destination)
	eq("s.event_type", f.EventType)
	eq("s.tenant", f.Tenant)
	eq("g.error_code", f.ErrorCode)
	if len(f.Status) > 0 {
		in("s.status", statusStrings(f.Status))
	}
	if w.tenants != nil {
		in("s.tenant", w.tenants)
	}
	if c, a := f.Tenants.ruleCond("s.resource", "s.tenant"); c != "" {
		cs = append(cs, c)
		args = append(args, a...)
	}
	if f.GroupID != 0 {
		cs = append(cs, "s.group_id = ?")
		args = append(args, f.GroupID)
	}
	q := "SELECT COALESCE(SUM(s.n), 0) FROM group_stats s"
	if f.ErrorCode != "" {
		q += " JOIN groups g ON g.id = s.group_id"
	}
	if len(cs) > 0 {
		q += " WHERE " + strings.Join(cs, " AND ")
	}
	return q, args, true
}

// Entry returns one entry with its full record. Errors: ENOTFOUND.
func (s *Store) Entry(ctx context.Context, id int64) (Entry, error) {
	row := s.db.QueryRowContext(ctx, "SELECT "+entryColumns+", e.last_failure_at FROM entries e WHERE e.id = ?", id)
	e, _, err := scanEntry(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, delivery.Errorf(delivery.ENOTFOUND, "dead letter %d not found", id)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("entry %d: %w", id, err)
	}
	es := []Entry{e}
	if err := s.fillBodies(ctx, es); err != nil {
		return Entry{}, fmt.Errorf("entry %d: %w", id, err)
	}
	return es[0], nil
}

// entriesByID reads the entries of ids (without bodies) in one query; an
// id without an entry is absent from the map.
func (s *Store) entriesByID(ctx context.Context, ids []int64) (map[int64]Entry, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+entryColumns+", e.last_failure_at FROM entries e WHERE e.id IN ("+placeholders(len(ids))+")", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byID := make(map[int64]Entry, len(ids))
	for rows.Next() {
		e, _, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		byID[e.ID] = e
	}
	return byID, rows.Err()
}

// fillBodies reads the payload, headers and record of es in one query.
func (s *Store) fillBodies(ctx context.Context, es []Entry) error {
	return s.fillBodiesWith(ctx, es, true)
}

// fillBodiesWith is fillBodies; inner=false skips re-parsing the payload
// for the envelope's inner payload (DL.Envelope.Payload stays empty), which
// a redrive — sending DL.Payload as it is — does not need.
func (s *Store) fillBodiesWith(ctx context.Context, es []Entry, inner bool) error {
	if len(es) == 0 {
		return nil
	}
	byID := make(map[int64]*Entry, len(es))
	args := make([]any, len(es))
	for i := range es {
		byID[es[i].ID] = &es[i]
		args[i] = es[i].ID
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, payload, headers, record FROM entry_bodies WHERE id IN ("+placeholders(len(es))+")", args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var payload, headers, record []byte
		if err := rows.Scan(&id, &payload, &headers, &record); err != nil {
			return err
		}
		e := byID[id]
		dl, err := decodeRecord(record, payload, headers, e.Truncated || !inner)
		if err != nil {
			return fmt.Errorf("entry %d: %w", id, err)
		}
		e.DL = dl
	}
	return rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

// scanEntry reads the columns of entryColumns plus last_failure_at; the
// body (DL) comes from fillBodies.
func scanEntry(r scanner) (Entry, int64, error) {
	var e Entry
	var part, off, dc sql.NullInt64
	var mid sql.NullString
	var indexed, updated, last int64
	var flags string
	var truncated int
	if err := r.Scan(&e.ID, &e.Status, &e.Broker, &e.Cluster, &e.VHost, &e.Destination, &part, &off,
		&mid, &dc, &e.Tenant, &e.EventType, &e.ErrorCode, &e.Fingerprint, &e.GroupID,
		&indexed, &updated, &flags, &e.PayloadSize, &e.PayloadHash, &truncated, &e.Resource,
		&e.RedriveCount, &e.RedriveJob, &e.StatusReason, &last); err != nil {
		return Entry{}, 0, err
	}
	e.Partition, e.Offset = -1, -1
	if part.Valid {
		e.Partition, e.Offset = int32(part.Int64), off.Int64
	}
	e.MessageID, e.DeathCount = mid.String, int(dc.Int64)
	e.IndexedAt, e.UpdatedAt = fromNano(indexed), fromNano(updated)
	if flags != "" {
		e.Flags = strings.Split(flags, ",")
	}
	e.Truncated = truncated != 0
	return e, last, nil
}

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

// chunkedPage is the page of a text search that matches many entries: it
// walks the filter's time-ordered index in chunks, newest first, and asks
// the full-text index which ids of each chunk's id range match — one
// range query per chunk, which FTS5 answers from its rowid-ordered lists —
// keeping chunk entries in index order until n are found. The order and
// the keyset cursor are exactly those of the plain page query. A text that
// matches only old entries makes the walk long; past chunkScanMax entries
// the rest of the page comes from membership in the match set instead.
func (s *Store) chunkedPage(ctx context.Context, w where, cur *cursor, n int) ([]Entry, []int64, error) {
	base := where{f: w.f, tenants: w.tenants, narrow: true}
	type hit struct{ id, last int64 }
	var kept []hit
	scanned, size := 0, chunkFirst
	c := cur
	for len(kept) < n {
		if scanned >= chunkScanMax {
			// Finish with the statement's own match set.
			rest := where{f: w.f, tenants: w.tenants, match: w.match, mode: ftsSet, narrow: true}
			q, args := rest.pageQuery(c, n-len(kept))
			ids, lasts, err := s.idsAndLasts(ctx, q, args)
			if err != nil {
				return nil, nil, err
			}
			for i := range ids {
				kept = append(kept, hit{ids[i], lasts[i]})
			}
			break
		}
		q, args := base.pageQuery(c, size)
		ids, lasts, err := s.idsAndLasts(ctx, q, args)
		if err != nil {
			return nil, nil, err
		}
		if len(ids) == 0 {
			break
		}
		lo, hi := ids[0], ids[0]
		for _, id := range ids {
			lo, hi = min(lo, id), max(hi, id)
		}
		rows, err := s.db.QueryContext(ctx, "SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? AND rowid >= ? AND rowid <= ?", w.match, lo, hi)
		if err != nil {
			return nil, nil, err
		}
		match := map[int64]bool{}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, nil, err
			}
			match[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
		for i, id := range ids {
			if match[id] && len(kept) < n {
				kept = append(kept, hit{id, lasts[i]})
			}
		}
		scanned += len(ids)
		if len(ids) < size {
			break
		}
		c = &cursor{t: lasts[len(lasts)-1], id: ids[len(ids)-1]}
		size = min(size*2, 8192)
	}
	if len(kept) == 0 {
		return nil, nil, nil
	}
	ids := make([]int64, len(kept))
	for i, h := range kept {
		ids[i] = h.id
	}
	byID, err := s.entriesByID(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	es := make([]Entry, 0, len(kept))
	lasts := make([]int64, 0, len(kept))
	for _, h := range kept {
		if e, ok := byID[h.id]; ok {
			es = append(es, e)
			lasts = append(lasts, h.last)
		}
	}
	return es, lasts, nil
}

// chunkFirst is chunkedPage's first chunk (it doubles up to 8192), and
// chunkScanMax bounds the entries it walks before it falls back to the
// match set.
var chunkFirst, chunkScanMax = 512, 50000

// chunkRangeMax is the most full-text rowids chunkedPage should expect to
// read per chunk, and countScanMax how many of the newest matches a bounded
// count looks at.
var chunkRangeMax, countScanMax = 3000.0, 5000

// idsAndLasts runs a narrow page query.
func (s *Store) idsAndLasts(ctx context.Context, q string, args []any) ([]int64, []int64, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var ids, lasts []int64
	for rows.Next() {
		var id, last int64
		if err := rows.Scan(&id, &last); err != nil {
			return nil, nil, err
		}
		ids = append(ids, id)
		lasts = append(lasts, last)
	}
	return ids, lasts, rows.Err()
}
