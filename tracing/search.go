package tracing

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// Search page sizes.
const (
	DefaultSearchLimit = 50
	MaxSearchLimit     = 500
)

// Search returns the spans that match q, newest first (start time, then
// insertion order), one page at a time: SearchResult.Next is the searchCursor
// of the next page. Every field of q and the caller's scope are
// conditions of the one SQL query (sc.Cond on the tenant and resource
// columns), so a page is never short because rows were dropped after
// paging. A nil sc is unrestricted, for internal callers only.
//
// With q.Roots each trace appears once, as its earliest matching span: a
// matching span is kept when no other matching span of its trace starts
// before it (ties by row). That row is fixed for a trace, so keyset paging
// stays exact; each candidate costs one probe into spans_trace that stops
// at the trace's first matching span, so the work is bounded by the size
// of the traces on the page, not by the number of matches.
//
// It returns an EINVALID delivery.Error for a bad searchCursor, status, limit,
// duration or time range.
func (s *Store) Search(ctx context.Context, q SearchQuery, sc *access.TenantScope) (SearchResult, error) {
	limit, err := q.limit()
	if err != nil {
		return SearchResult{}, err
	}
	var after *searchCursor
	if q.After != "" {
		c, err := parseSearchCursor(q.After)
		if err != nil {
			return SearchResult{}, err
		}
		after = &c
	}
	query, args, ok, err := q.sql(sc, after, limit)
	if err != nil || !ok {
		return SearchResult{}, err
	}

	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return SearchResult{}, fmt.Errorf("search spans: %w", err)
	}
	defer rows.Close()
	var res SearchResult
	var last searchCursor
	var scan spanScanner
	for rows.Next() {
		sp, id, err := scan.scan(rows)
		if err != nil {
			return SearchResult{}, fmt.Errorf("search spans: %w", err)
		}
		if len(res.Spans) == limit {
			res.Next = last.String()
			break
		}
		res.Spans = append(res.Spans, sp)
		last = searchCursor{t: unixNano(sp.Start), id: id}
	}
	if err := rows.Err(); err != nil {
		return SearchResult{}, fmt.Errorf("search spans: %w", err)
	}
	return res, nil
}

func (q SearchQuery) limit() (int, error) {
	switch {
	case q.Limit < 0:
		return 0, delivery.Errorf(delivery.EINVALID, "limit %d: want 1 to %d", q.Limit, MaxSearchLimit)
	case q.Limit == 0:
		return DefaultSearchLimit, nil
	case q.Limit > MaxSearchLimit:
		return MaxSearchLimit, nil
	}
	return q.Limit, nil
}

// ParseStatus reads a search's status filter: "", "unset", "ok" or
// "error"; ok is false for anything else.
func ParseStatus(s string) (Status, bool) {
	for _, st := range []Status{StatusUnset, StatusOK, StatusError} {
		if s == st.String() {
			return st, true
		}
	}
	return 0, false
}

// sql is the one query Search runs for q, the caller's scope and the
// cursor: ok is false when the scope allows nothing.
func (q SearchQuery) sql(sc *access.TenantScope, after *searchCursor, limit int) (query string, args []any, ok bool, err error) {
	// The arms of the query: one, or one per tenant of the caller's
	// scope (perTenant).
	type arm struct {
		where []string
		args  []any
	}
	var arms []arm
	for _, pinned := range q.perTenant(sc) {
		where, wargs, ok, err := q.where("s", pinned.sc)
		if err != nil {
			return "", nil, false, err
		}
		if !ok {
			continue
		}
		if pinned.pin {
			where = append(where, "s.tenant = ?")
			wargs = append(wargs, pinned.tenant)
		}
		if after != nil {
			where = append(where, "s.start_ns <= ? AND (s.start_ns < ? OR s.id < ?)")
			wargs = append(wargs, after.t, after.t, after.id)
		}
		if q.Roots {
			// Earlier matching spans of the trace in any tenant of the
			// scope: a trace is one row, whichever arm finds it.
			w2, a2, _, _ := q.where("s2", sc)
			w2 = append(w2, "s2.trace_id = s.trace_id", "s2.start_ns <= s.start_ns", "(s2.start_ns < s.start_ns OR s2.id < s.id)")
			where = append(where, "NOT EXISTS (SELECT 1 FROM spans s2 INDEXED BY spans_trace WHERE "+strings.Join(w2, " AND ")+")")
			wargs = append(wargs, a2...)
		}
		arms = append(arms, arm{where, wargs})
	}
	if len(arms) == 0 {
		return "", nil, false, nil
	}
	for i, a := range arms {
		if i > 0 {
			query += ` UNION ALL `
		}
		query += `SELECT ` + spanColumns + spanFrom
		if len(a.where) > 0 {
			query += ` WHERE ` + strings.Join(a.where, " AND ")
		}
		args = append(args, a.args...)
	}
	if len(arms) == 1 {
		query += ` ORDER BY s.start_ns DESC, s.id DESC LIMIT ?`
	} else {
		// A compound orders by its result columns (spanColumns: start_ns
		// is the 5th, the row id the 1st); SQLite merges the arms, each
		// read newest first from spans_tenant, and stops at the LIMIT.
		query += ` ORDER BY 5 DESC, 1 DESC LIMIT ?`
	}
	args = append(args, limit+1)
	return query, args, true, nil
}

// pinnedQuery is one arm of a search: the scope it applies, and the
// tenant it reads when it is one tenant's.
type pinnedQuery struct {
	sc     *access.TenantScope
	pin    bool   // the arm reads one tenant's spans:
	tenant string // this one ("" for spans without a tenant)
}

// maxTenantArms caps the per-tenant arms of a search; a scope of more
// tenants is one query over spans_start.
const maxTenantArms = 16

// perTenant splits a search that only the time orders (no indexed field
// narrows it) into one arm per tenant of a caller's tenant list, each
// read newest first from spans_tenant. One query over spans_start with
// "tenant IN (…)" would walk every newer span of other tenants to fill
// a page: the whole store, for a tenant with few spans or none. A search
// with a selective field, or an unrestricted caller, is one arm.
func (q SearchQuery) perTenant(sc *access.TenantScope) []pinnedQuery {
	one := []pinnedQuery{{sc: sc}}
	tenants, ok := sc.Values()
	if !ok || tenants == nil || len(tenants) > maxTenantArms || q.selective() {
		return one
	}
	arms := make([]pinnedQuery, 0, len(tenants))
	for _, t := range tenants {
		// The tenant is pinned by the arm; the rules still apply.
		arms = append(arms, pinnedQuery{sc: &access.TenantScope{All: true, Rules: sc.Rules}, pin: true, tenant: t})
	}
	return arms
}

// selective reports whether q has a field one of the store's indexes
// serves better than a tenant's: it is then one query.
func (q SearchQuery) selective() bool {
	return !q.TraceID.IsZero() || q.CorrelationID != "" || q.EventID != "" || q.Service != "" || q.Tenant != "" ||
		q.Destination != "" || q.Group != "" || q.Status == StatusError.String()
}

// where is q and the scope as SQL conditions on the spans table under
// alias a. ok is false when the scope allows nothing (no query needed).
func (q SearchQuery) where(a string, sc *access.TenantScope) (conds []string, args []any, ok bool, err error) {
	eq := func(col string, v any) {
		conds = append(conds, a+"."+col+" = ?")
		args = append(args, v)
	}
	if !q.TraceID.IsZero() {
		eq("trace_id", q.TraceID[:])
	}
	for _, f := range []struct{ col, v string }{
		{"correlation_id", q.CorrelationID},
		{"event_id", q.EventID},
		{"service", q.Service},
		{"name", q.Operation},
		{"event_type", q.EventType},
		{"tenant", q.Tenant},
		{"destination", q.Destination},
		{"grp", q.Group},
		{"cluster", q.Cluster},
		{"step", q.Step},
	} {
		if f.v != "" {
			eq(f.col, f.v)
		}
	}
	if q.Status != "" {
		st, ok := ParseStatus(q.Status)
		if !ok {
			return nil, nil, false, delivery.Errorf(delivery.EINVALID, "status %q: want ok, error or unset", shorten(q.Status, 20))
		}
		// A literal, not a parameter: the planner only uses the partial
		// index spans_errors for a term it can see is status = 2.
		conds = append(conds, a+".status = "+strconv.Itoa(int(st)))
	}
	if q.MinDuration < 0 || q.MaxDuration < 0 {
		return nil, nil, false, delivery.Errorf(delivery.EINVALID, "a duration bound cannot be negative")
	}
	if q.MaxDuration > 0 && q.MinDuration > q.MaxDuration {
		return nil, nil, false, delivery.Errorf(delivery.EINVALID, "minimum duration %s is above the maximum %s", q.MinDuration, q.MaxDuration)
	}
	if q.MinDuration > 0 {
		conds = append(conds, a+".dur_ns >= ?")
		args = append(args, int64(q.MinDuration))
	}
	if q.MaxDuration > 0 {
		conds = append(conds, a+".dur_ns <= ?")
		args = append(args, int64(q.MaxDuration))
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return nil, nil, false, delivery.Errorf(delivery.EINVALID, "time range: from %s is not before to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if !q.From.IsZero() {
		conds = append(conds, a+".start_ns >= ?")
		args = append(args, q.From.UnixNano())
	}
	if !q.To.IsZero() {
		conds = append(conds, a+".start_ns < ?")
		args = append(args, q.To.UnixNano())
	}
	tenants, ok := sc.Values()
	if !ok {
		return nil, nil, false, nil
	}
	// The unary + keeps the planner off spans_tenant for the scope's
	// "tenant IN (…)": a range per tenant would come back out of time
	// order and every match be sorted, where the scan of the index that
	// serves the rest of the query stops at the page's LIMIT.
	if c, ca := (&access.TenantScope{All: true}).Cond(tenants, "+"+a+".tenant", a+".resource"); c != "" {
		conds = append(conds, c)
		args = append(args, ca...)
	}
	// The resource rules apply to spans that name a destination; a span
	// that names none (an HTTP handler, a database call) is the tenant's
	// alone, as Service.Trace decides for one trace.
	if sc.HasRules() {
		rules := &access.TenantScope{All: true, Rules: sc.Rules}
		if c, ca := rules.Cond(nil, "+"+a+".tenant", a+".resource"); c != "" {
			conds = append(conds, "("+a+".resource = '' OR "+c+")")
			args = append(args, ca...)
		}
	}
	return conds, args, true, nil
}

// searchCursor is a keyset position: the (start_ns, id) of the last span shown.
type searchCursor struct {
	t, id int64
}

func (c searchCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.t, 10) + "." + strconv.FormatInt(c.id, 10)))
}

func parseSearchCursor(s string) (searchCursor, error) {
	bad := delivery.Errorf(delivery.EINVALID, "invalid searchCursor %q: use the next searchCursor of the previous page", shorten(s, 40))
	if len(s) > 64 {
		return searchCursor{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return searchCursor{}, bad
	}
	ts, ids, ok := strings.Cut(string(b), ".")
	if !ok {
		return searchCursor{}, bad
	}
	t, err1 := strconv.ParseInt(ts, 10, 64)
	id, err2 := strconv.ParseInt(ids, 10, 64)
	if err1 != nil || err2 != nil {
		return searchCursor{}, bad
	}
	return searchCursor{t: t, id: id}, nil
}

// shorten shortens s for an error message.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	var c cuts
	return capString(s, n, &c)
}
