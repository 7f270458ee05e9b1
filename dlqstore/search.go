package dlqstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"switchyard/delivery"
)

// Page is one page of entries, newest failure first.
type Page struct {
	Entries []Entry
	Next    string // cursor of the next page, "" on the last one
	// Total counts every entry of the filter (not just this page). It is
	// exact unless TotalCapped, which makes it a lower bound ("10,000+"):
	// counting stops at TotalCap, and a text with a filter that matches
	// more than Tuning.FTSDriveMax entries is counted among its newest
	// Tuning.CountScanMax matches only (unless the filter is small enough to
	// count exactly).
	Total       int
	TotalCapped bool
	// Searched: the filter has text, and these are the columns of the
	// full-text index it was looked for in (SearchColumns), for an empty
	// result to say what was searched.
	Searched []string
	// TextPending: the filter has text and the full-text index is still
	// being rebuilt for older entries (RebuildText), which the page may
	// lack.
	TextPending bool
	// TextBehind: the filter has text and the full-text index follows
	// capture this far behind (textLag): entries captured more recently
	// may be missing from the page, while filters and counts without text
	// are current. 0 when the index holds every new entry.
	TextBehind time.Duration
	// Suggestions: on an empty first page of a text search, the filter
	// values whose names hold its words (FieldMatches). The store leaves
	// it empty; package dlq fills it, in the caller's scope.
	Suggestions []FieldMatch
}

// TotalCap bounds the work of Page.Total.
const TotalCap = 10000

// querier is a *sql.DB or a *sql.Conn.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// loadHits puts the full-text matches with a rowid above after (0: all),
// at most limit of them (-1: no limit), into the connection's temporary
// table of matches, and returns how many it put there. They go in rowid
// order, so that a load stopped at its limit can be continued past the
// largest rowid it holds.
func loadHits(ctx context.Context, conn *sql.Conn, match string, after int64, limit int) (int, error) {
	if after == 0 {
		if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE IF NOT EXISTS fts_hits (id INTEGER PRIMARY KEY); DELETE FROM temp.fts_hits"); err != nil {
			return 0, err
		}
	}
	res, err := conn.ExecContext(ctx, "INSERT INTO temp.fts_hits SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? AND rowid > ? ORDER BY rowid LIMIT ?", match, after, limit)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// lastHit returns the largest id in the connection's temporary table of
// matches.
func lastHit(ctx context.Context, conn *sql.Conn) (int64, error) {
	var last int64
	err := conn.QueryRowContext(ctx, "SELECT COALESCE(max(id), 0) FROM temp.fts_hits").Scan(&last)
	return last, err
}

// loadMatches counts the matches of a search with a filter by loading them
// into conn's temporary table, up to ExactSetMax, and counting the rest, up
// to FTSMemberMax+1 in all; all says every match is loaded. A driven page,
// the page of a narrow filter and an exact count then read the matches
// there instead of asking the full-text index again: a common word with a
// small tenant's filter (5,000–20,000 matches) is the slowest of searches,
// and building its match set twice was a third of it. Loading only as
// many as a driven page takes, and the rest when the filter is small
// enough to count exactly (its size from group_stats), was slower: the
// statements to continue the load cost more than the load they save.
func (s *Store) loadMatches(ctx context.Context, conn *sql.Conn, match string) (n int, all bool, err error) {
	if n, err = loadHits(ctx, conn, match, 0, s.tuning.ExactSetMax+1); err != nil || n <= s.tuning.ExactSetMax {
		return n, err == nil, err
	}
	last, err := lastHit(ctx, conn)
	if err != nil {
		return 0, false, err
	}
	var rest int
	err = conn.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? AND rowid > ? LIMIT ?)", match, last, max(s.tuning.FTSMemberMax+1-n, 0)).Scan(&rest)
	if err != nil {
		return 0, false, err
	}
	return n + rest, false, nil
}

// ftsMode is how a search uses the full-text index, see Tuning.
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

// FindEntries returns a page of entries matching f, newest last failure
// first (ties by id), with keyset pagination: a page is stable when new
// entries arrive meanwhile. Errors: EINVALID for a bad cursor, limit or
// full-text query (the message says what is wrong with the query).
func (s *Store) FindEntries(ctx context.Context, f Filter) (Page, error) {
	page, err := s.findEntries(ctx, f)
	if err == nil {
		// After findEntries, which may have held a connection for its
		// matches: a search never waits for a connection while it holds
		// one, or as many searches as the pool has connections would
		// each wait for another for good.
		if err := s.fillBodies(ctx, page.Entries); err != nil {
			return Page{}, fmt.Errorf("find entries: %w", err)
		}
	}
	if err == nil && strings.TrimSpace(f.Q) != "" {
		page.Searched = SearchColumns(f.NoPayloadText)
		behind, older, err := s.textLag(ctx)
		if err != nil {
			return Page{}, fmt.Errorf("find entries: %w", err)
		}
		page.TextBehind, page.TextPending = behind, older
	}
	return page, err
}

// findEntries is FindEntries without the entries' bodies (fillBodies).
func (s *Store) findEntries(ctx context.Context, f Filter) (Page, error) {
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
		if match, err = ftsQuery(f.Q, f.NoPayloadText); err != nil {
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

	if match != "" && !s.tuning.NoFilterTokens {
		// Filter and text as one intersection: its count picks the mode,
		// so a common word with a narrow filter is a small match set.
		match = withFilterTokens(match, f, tenants)
	}

	plain := where{f: f, tenants: tenants}
	plainConds, _ := plain.conds(false)
	textOnly := len(plainConds) == 0

	// Where the search starts: a rare full-text match is cheapest from the
	// full-text index, everything else from the time-ordered indexes.
	mode := ftsNone
	n := 0 // text matches, counted up to FTSMemberMax+1
	var db querier = s.db
	// hits: every text match is in the temporary table of db, a
	// connection this search holds. Until it lets go (the deferred
	// Close), everything the search reads goes through db: it never waits
	// for a connection while it holds one, or as many searches as the
	// pool has connections would each wait for another for good.
	hits := false
	var conn *sql.Conn // db, when the search holds one
	if match != "" && textOnly {
		err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? LIMIT ?)", match, s.tuning.FTSMemberMax+1).Scan(&n)
		if err != nil {
			return Page{}, searchError(f.Q, err)
		}
	} else if match != "" {
		var err error
		if conn, err = s.db.Conn(ctx); err != nil {
			return Page{}, fmt.Errorf("find entries: %w", err)
		}
		defer conn.Close()
		db = conn
		if n, hits, err = s.loadMatches(ctx, conn, match); err != nil {
			return Page{}, searchError(f.Q, fmt.Errorf("find entries: %w", err))
		}
	}
	if match != "" {
		switch {
		case n == 0:
			return Page{}, nil
		case n <= s.tuning.FTSDriveMax:
			mode = ftsDrive
		case n <= s.tuning.FTSMemberMax:
			mode = ftsMember
		default:
			mode = ftsProbe
		}
	}
	w := where{f: f, tenants: tenants, match: match, ftsDrive: mode == ftsDrive, mode: mode, hits: hits}
	// filterN is how many entries the filter alone selects, from
	// group_stats (-1 when it cannot say: a time range, for one).
	filterN := -1
	if mode == ftsMember || mode == ftsProbe {
		if q, a, ok := plain.statsCountQuery(); ok && !textOnly {
			if err := db.QueryRowContext(ctx, q, a...).Scan(&filterN); err != nil {
				return Page{}, fmt.Errorf("find entries: %w", err)
			}
		}
	}
	// Walking the filter's index in chunks pays when each chunk's id range
	// holds few text matches (about Tuning.ChunkFirst × matches / filterN rowids
	// to read); otherwise testing each entry's membership in the match set
	// is cheaper (measured over 1,000,000 entries).
	chunks := (mode == ftsMember || mode == ftsProbe) &&
		(textOnly || filterN > 0 && float64(s.tuning.ChunkFirst)*float64(n)/float64(filterN) <= s.tuning.ChunkRangeMax)
	if mode == ftsMember && !chunks && !hits && conn != nil {
		// The page walks the filter's index testing membership by key,
		// and so does an exact count: load the rest of the matches.
		last, err := lastHit(ctx, conn)
		if err != nil {
			return Page{}, fmt.Errorf("find entries: %w", err)
		}
		if _, err := loadHits(ctx, conn, match, last, -1); err != nil {
			return Page{}, searchError(f.Q, fmt.Errorf("find entries: %w", err))
		}
		w.hits = true
	}

	if mode == ftsDrive {
		return s.drivenPage(ctx, db, w, cur, limit)
	}

	// The page.
	var page Page
	var lasts []int64
	if chunks {
		var err error
		if page.Entries, lasts, err = s.chunkedPage(ctx, db, w, cur, limit+1); err != nil {
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

	// The total, bounded; on db, which holds the matches when the page
	// took them into a temporary table.
	if cur == nil && page.Next == "" {
		page.Total = len(page.Entries) // the whole result is on this page
		return page, nil
	}
	if query, args, ok := w.statsCountQuery(); ok {
		// Exact and cheap: no cap.
		if err := db.QueryRowContext(ctx, query, args...).Scan(&page.Total); err != nil {
			return Page{}, fmt.Errorf("count entries: %w", err)
		}
		return page, nil
	}
	if w.match != "" && !w.ftsDrive {
		if cs, _ := plain.conds(false); len(cs) == 0 {
			// Text alone: the match count is the total (a lower bound
			// when probing: the count stopped past FTSMemberMax).
			page.Total, page.TotalCapped = min(n, TotalCap), n > TotalCap || mode == ftsProbe
			return page, nil
		}
	}
	// Counting over the filter's own entries is exact and cheap when the
	// filter alone selects few of them and the matches are at hand: in
	// the connection's temporary table (a common word with a small
	// tenant: 11,000 matches, 10,000 entries, counted exactly in 12 ms
	// where looking up the newest matches took 25 ms for a lower bound).
	exact := mode == ftsMember && filterN >= 0 && filterN <= s.tuning.ExactCountMax && w.hits
	if mode == ftsMember && !w.hits {
		w.mode = ftsSet // the temporary table holds only some: the bounded count reads the newest matches itself
	}
	query, args, bounded := w.countQuery(TotalCap+1, s.tuning.CountScanMax, exact)
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

// searchError turns FTS5's complaint about a query into EINVALID; any
// other error passes through.
func searchError(q string, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && (strings.Contains(se.Error(), "fts5") || strings.Contains(se.Error(), "no such column")) {
		return delivery.Errorf(delivery.EINVALID, "search: cannot understand %q (%s)", q, strings.TrimPrefix(se.Error(), "fts5: "))
	}
	return err
}

// chunkedPage is the page of a text search that matches many entries: it
// walks the filter's time-ordered index in chunks, newest first, and asks
// the full-text index which ids of each chunk's id range match — one
// range query per chunk, which FTS5 answers from its rowid-ordered lists —
// keeping chunk entries in index order until n are found. The order and
// the keyset cursor are exactly those of the plain page query. A text that
// matches only old entries makes the walk long; past Tuning.ChunkScanMax entries
// the rest of the page comes from membership in the match set instead.
func (s *Store) chunkedPage(ctx context.Context, db querier, w where, cur *cursor, n int) ([]Entry, []int64, error) {
	base := where{f: w.f, tenants: w.tenants, narrow: true}
	// Which ids of a chunk's range match: from the temporary table when
	// it holds every match, else from the full-text index.
	inRange, inArgs := "SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? AND rowid >= ? AND rowid <= ?", []any{w.match}
	finish := ftsSet
	if w.hits {
		inRange, inArgs, finish = "SELECT id FROM temp.fts_hits WHERE id >= ? AND id <= ?", nil, ftsMember
	}
	type hit struct{ id, last int64 }
	var kept []hit
	scanned, size := 0, s.tuning.ChunkFirst
	c := cur
	for len(kept) < n {
		if scanned >= s.tuning.ChunkScanMax {
			// Finish with the statement's own match set.
			rest := where{f: w.f, tenants: w.tenants, match: w.match, mode: finish, narrow: true}
			q, args := rest.pageQuery(c, n-len(kept))
			ids, lasts, err := idsAndLasts(ctx, db, q, args)
			if err != nil {
				return nil, nil, err
			}
			for i := range ids {
				kept = append(kept, hit{ids[i], lasts[i]})
			}
			break
		}
		q, args := base.pageQuery(c, size)
		ids, lasts, err := idsAndLasts(ctx, db, q, args)
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
		rows, err := db.QueryContext(ctx, inRange, append(inArgs, lo, hi)...)
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
	byID, err := entriesByID(ctx, db, ids)
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

// drivenPage is the page of a text search that matches few entries
// (ftsDrive; with the filter tokens, a common word with a narrow filter is
// one too): one pass over the full-text matches reads the id and last
// failure time of each that the filter's SQL keeps, which is both the
// total and, sorted, the keyset page — the page and a count query would
// each look up every match. Only the page's entries are then read whole
// (by FindEntries).
// The page, its cursor and its total are those of the page and count
// queries of the other modes.
func (s *Store) drivenPage(ctx context.Context, db querier, w where, cur *cursor, limit int) (Page, error) {
	cs, args := w.conds(false)
	fc, fa := w.ftsCond()
	from, _ := w.from()
	q := "SELECT e.id, e.last_failure_at FROM " + from + " WHERE " + strings.Join(append(fc, cs...), " AND ")
	ids, lasts, err := idsAndLasts(ctx, db, q, append(fa, args...))
	if err != nil {
		return Page{}, searchError(w.f.Q, fmt.Errorf("find entries: %w", err))
	}
	type hit struct{ id, last int64 }
	total := len(ids)
	hits := make([]hit, 0, len(ids))
	for i, id := range ids {
		if cur == nil || lasts[i] < cur.t || lasts[i] == cur.t && id < cur.id {
			hits = append(hits, hit{id, lasts[i]})
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if a.last != b.last {
			return cmp.Compare(b.last, a.last)
		}
		return cmp.Compare(b.id, a.id)
	})
	var page Page
	if len(hits) > limit {
		hits = hits[:limit]
		page.Next = cursor{t: hits[limit-1].last, id: hits[limit-1].id}.String()
	}
	if len(hits) > 0 {
		pageIDs := make([]int64, len(hits))
		for i, h := range hits {
			pageIDs[i] = h.id
		}
		byID, err := entriesByID(ctx, db, pageIDs)
		if err != nil {
			return Page{}, fmt.Errorf("find entries: %w", err)
		}
		for _, h := range hits {
			if e, ok := byID[h.id]; ok {
				page.Entries = append(page.Entries, e)
			}
		}
	}
	page.Total, page.TotalCapped = min(total, TotalCap), total > TotalCap
	return page, nil
}

// idsAndLasts runs a narrow page query.
func idsAndLasts(ctx context.Context, db querier, q string, args []any) ([]int64, []int64, error) {
	rows, err := db.QueryContext(ctx, q, args...)
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
