package dlqstore

import (
	"strconv"
	"strings"
)

// where builds the SQL of a filter.
type where struct {
	f        Filter
	tenants  []string // nil = any
	match    string   // FTS5 query, "" = none
	ftsDrive bool
	mode     ftsMode
	hits     bool // every match is in the connection's temp.fts_hits
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
	f := w.f
	eq("broker", f.Broker)
	eq("cluster", f.Cluster)
	eq("destination", f.Destination)
	eq("event_type", f.EventType)
	eq("error_code", f.ErrorCode)
	eq("tenant", f.Tenant)
	tenants := w.tenants
	if split {
		tenants = nil // pinned per branch
	} else if len(f.Status) > 0 {
		c, a := statusCond("e", statusStrings(f.Status))
		cs = append(cs, c)
		args = append(args, a...)
	}
	if c, a := scopeCond(f.Tenants, tenants, "e.tenant", "e.resource"); c != "" {
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
	if w.ftsDrive && w.hits {
		return "temp.fts_hits h CROSS JOIN entries e ON e.id = h.id", nil
	}
	if w.ftsDrive {
		// CROSS JOIN keeps the full-text index as the outer loop.
		return "entries_fts CROSS JOIN entries e ON e.id = entries_fts.rowid", nil
	}
	return "entries e", nil
}

func (w where) ftsCond() ([]string, []any) {
	if w.ftsDrive && !w.hits {
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
				c, a := statusCond("e", []string{st})
				extra = append(extra, c)
				extraArgs = append(extraArgs, a...)
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
	last := strconv.Itoa(sqlColumns(entryColumns) + 1)
	if w.narrow {
		last = "2"
	}
	return strings.Join(parts, " UNION ALL ") + " ORDER BY " + last + " DESC, 1 DESC LIMIT " + strconv.Itoa(n), args
}

// countQuery counts up to n entries of the filter. When many entries
// match the text (the page walks the time index and probes the full-text
// index), probing for the count could take seconds; it counts among the
// newest scanMax text matches instead, a lower bound (bounded is true),
// unless exact: the filter alone selects few entries, and the matches are
// in the connection's temporary table (ftsMember).
func (w where) countQuery(n, scanMax int, exact bool) (q string, args []any, bounded bool) {
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
		q = "SELECT 1 FROM (" + newest + " LIMIT " + strconv.Itoa(scanMax) + ") m CROSS JOIN entries e ON e.id = m.id"
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
	cs, args, needGroups, ok := w.statsConds()
	if !ok {
		return "", nil, false
	}
	q := "SELECT COALESCE(SUM(s.n), 0) FROM group_stats s"
	if needGroups {
		q += " JOIN groups g ON g.id = s.group_id"
	}
	if len(cs) > 0 {
		q += " WHERE " + strings.Join(cs, " AND ")
	}
	return q, args, true
}

// statsConds are the filter's conditions on group_stats s and — for the
// error code, which needGroups says — on groups g; false when one of them
// is not a column there (text, a time range).
func (w where) statsConds() (cs []string, args []any, needGroups, ok bool) {
	f := w.f
	if w.match != "" || !f.From.IsZero() || !f.To.IsZero() {
		return nil, nil, false, false
	}
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
	if c, a := scopeCond(f.Tenants, w.tenants, "s.tenant", "s.resource"); c != "" {
		cs = append(cs, c)
		args = append(args, a...)
	}
	if f.GroupID != 0 {
		cs = append(cs, "s.group_id = ?")
		args = append(args, f.GroupID)
	}
	return cs, args, f.ErrorCode != "", true
}
