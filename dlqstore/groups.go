package dlqstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"switchyard/delivery"
)

// Group is one failure cause: the entries that share a fingerprint.
type Group struct {
	ID                                  int64
	Fingerprint, Title                  string // Title = delivery.MessageTitle of a representative message
	ErrorCode, EventType, ExceptionType string
	// Count, FirstSeen, LastSeen, Destinations and Tenants are computed
	// over the caller's scope (tenants and resource rules) only. Count is
	// the group's messages in scope: every stored entry but the redriven
	// ones whose message failed again, which count once, as their
	// re-failure (Counts); FailedAgain is those. Open is the messages
	// still dead or quarantined.
	Count               int
	Open                int
	FailedAgain         int
	FirstSeen, LastSeen time.Time
	Destinations        []string
	Tenants             []string
	Triage              Triage
}

// Triage is a group's triage state. A snooze that has run out reads as open.
type Triage struct {
	State        string // open|acknowledged|resolved|snoozed
	Owner, Note  string
	SnoozedUntil time.Time
	UpdatedBy    string
	UpdatedAt    time.Time
}

// GroupFilter selects groups.
type GroupFilter struct {
	Tenants             *TenantScope // nil = all
	State               string       // "" = any
	Broker, Destination string       // only entries on this broker / DLQ count
	Q                   string       // substring of title, error code, exception type, event type or fingerprint
	Limit               int          // default 50, max 500
	Cursor              string
	Sort                string // "count" (default, most first) or "last_seen" (newest first)
}

// Groups returns a page of groups and the cursor of the next page ("" on
// the last). Counts, tenants and destinations are computed over f.Tenants
// only: with the whole scope the stored totals are used, otherwise the
// per-tenant group_stats rows of the scope are summed, so a t1 user never
// sees a t2 number nor a group that has no t1 entry. Groups without
// entries (all purged) are not listed. Errors: EINVALID.
func (s *Store) Groups(ctx context.Context, f GroupFilter) ([]Group, string, error) {
	limit := f.Limit
	switch {
	case limit == 0:
		limit = 50
	case limit < 0 || limit > 500:
		return nil, "", delivery.Errorf(delivery.EINVALID, "limit must be between 1 and 500")
	}
	sortCol := "cnt"
	switch f.Sort {
	case "", "count":
	case "last_seen":
		sortCol = "ls"
	default:
		return nil, "", delivery.Errorf(delivery.EINVALID, "unknown sort %q (want count or last_seen)", f.Sort)
	}
	switch f.State {
	case "", TriageOpen, TriageAcknowledged, TriageResolved, TriageSnoozed:
	default:
		return nil, "", delivery.Errorf(delivery.EINVALID, "unknown triage state %q", f.State)
	}
	var cur *cursor
	if f.Cursor != "" {
		c, err := parseCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		cur = &c
	}
	tenants, visible := scopeTenants(f.Tenants)
	if !visible {
		return nil, "", nil
	}
	now := unixNano(s.now())

	var src string
	var args []any
	if tenants == nil && !f.Tenants.HasRules() && f.Broker == "" && f.Destination == "" {
		src = "SELECT id AS group_id, count AS cnt, first_seen AS fs, last_seen AS ls FROM groups WHERE count > 0"
	} else {
		var cs []string
		if f.Broker != "" {
			cs = append(cs, "broker = ?")
			args = append(args, f.Broker)
		}
		if f.Destination != "" {
			cs = append(cs, "destination = ?")
			args = append(args, f.Destination)
		}
		if c, a := scopeCond(f.Tenants, tenants, "tenant", "resource"); c != "" {
			cs = append(cs, c)
			args = append(args, a...)
		}
		src = "SELECT group_id, SUM(CASE WHEN refailed THEN 0 ELSE n END) AS cnt, MIN(first_seen) AS fs, MAX(last_seen) AS ls FROM group_stats WHERE " +
			strings.Join(cs, " AND ") + " GROUP BY group_id HAVING cnt > 0"
	}
	q := "SELECT " + groupColumns + ", a.cnt, a.fs, a.ls FROM (" + src + ") a JOIN groups g ON g.id = a.group_id WHERE 1"
	if f.State != "" {
		q += " AND " + stateCond
		args = append(args, now, f.State)
	}
	if f.Q != "" {
		q += ` AND (instr(lower(g.title), ?) OR instr(lower(g.error_code), ?) OR instr(lower(g.exception_type), ?)
	OR instr(lower(g.event_type), ?) OR g.fingerprint = ?)`
		l := strings.ToLower(f.Q)
		args = append(args, l, l, l, l, f.Q)
	}
	if cur != nil {
		q += " AND (a." + sortCol + ", g.id) < (?, ?)"
		args = append(args, cur.t, cur.id)
	}
	q += " ORDER BY a." + sortCol + " DESC, g.id DESC LIMIT " + strconv.Itoa(limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("groups: %w", err)
	}
	var out []Group
	for rows.Next() {
		var g Group
		var cnt, fs, ls int64
		if err := scanGroup(rows, &g, now, &cnt, &fs, &ls); err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("groups: %w", err)
		}
		g.Count, g.FirstSeen, g.LastSeen = int(cnt), fromNano(fs), fromNano(ls)
		out = append(out, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("groups: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		v := int64(last.Count)
		if sortCol == "ls" {
			v = unixNano(last.LastSeen)
		}
		next = cursor{t: v, id: last.ID}.String()
	}
	if err := s.fillStats(ctx, out, tenants, f.Tenants); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// stateCond matches a triage state (?) at a time (?, ?): a snooze that has
// run out counts as open.
const stateCond = `(CASE WHEN g.state = 'snoozed' AND g.snoozed_until <= ? THEN 'open' ELSE g.state END) = ?`

const groupColumns = `g.id, g.fingerprint, g.title, g.error_code, g.event_type, g.exception_type,
	g.state, g.owner, g.note, g.snoozed_until, g.updated_by, g.updated_at`

func scanGroup(r scanner, g *Group, now int64, extra ...any) error {
	var snoozed, updated int64
	dest := []any{&g.ID, &g.Fingerprint, &g.Title, &g.ErrorCode, &g.EventType, &g.ExceptionType,
		&g.Triage.State, &g.Triage.Owner, &g.Triage.Note, &snoozed, &g.Triage.UpdatedBy, &updated}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return err
	}
	g.Triage.SnoozedUntil, g.Triage.UpdatedAt = fromNano(snoozed), fromNano(updated)
	if g.Triage.State == TriageSnoozed && snoozed <= now {
		g.Triage.State = TriageOpen
	}
	return nil
}

// fillStats sets Open, Destinations and Tenants of gs from group_stats,
// over the tenants (nil = all) and rules of the scope only.
func (s *Store) fillStats(ctx context.Context, gs []Group, tenants []string, scope *TenantScope) error {
	if len(gs) == 0 {
		return nil
	}
	byID := map[int64]*Group{}
	var args []any
	for i := range gs {
		byID[gs[i].ID] = &gs[i]
		args = append(args, gs[i].ID)
	}
	q := "SELECT group_id, tenant, broker, destination, status, refailed, n FROM group_stats WHERE group_id IN (" + placeholders(len(gs)) + ")"
	if c, a := scopeCond(scope, tenants, "tenant", "resource"); c != "" {
		q += " AND " + c
		args = append(args, a...)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("group stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var tenant, broker, dest string
		var st Status
		var refailed bool
		var n int
		if err := rows.Scan(&id, &tenant, &broker, &dest, &st, &refailed, &n); err != nil {
			return fmt.Errorf("group stats: %w", err)
		}
		g := byID[id]
		switch {
		case refailed:
			g.FailedAgain += n
		case st.Open():
			g.Open += n
		}
		if !slices.Contains(g.Destinations, dest) {
			g.Destinations = append(g.Destinations, dest)
		}
		if tenant != "" && !slices.Contains(g.Tenants, tenant) {
			g.Tenants = append(g.Tenants, tenant)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("group stats: %w", err)
	}
	for i := range gs {
		slices.Sort(gs[i].Destinations)
		slices.Sort(gs[i].Tenants)
	}
	return nil
}

// Group returns one group with its numbers over scope (nil = all).
// Errors: ENOTFOUND, also when the group has no entry in the scope.
func (s *Store) Group(ctx context.Context, id int64, scope *TenantScope) (Group, error) {
	notFound := delivery.Errorf(delivery.ENOTFOUND, "failure group %d not found", id)
	tenants, visible := scopeTenants(scope)
	if !visible {
		return Group{}, notFound
	}
	now := unixNano(s.now())
	args := []any{id}
	cond := ""
	if c, a := scopeCond(scope, tenants, "tenant", "resource"); c != "" {
		cond = " AND " + c
		args = append(args, a...)
	}
	args = append(args, id)
	var g Group
	var cnt, fs, ls int64
	// A group whose every entry in scope failed again elsewhere (in
	// another group) has no message left but is still there to open.
	err := scanGroup(s.db.QueryRowContext(ctx, "SELECT "+groupColumns+`, a.cnt, a.fs, a.ls FROM
	(SELECT SUM(CASE WHEN refailed THEN 0 ELSE n END) AS cnt, SUM(n) AS total, MIN(first_seen) AS fs, MAX(last_seen) AS ls
		FROM group_stats WHERE group_id = ?`+cond+`) a,
	groups g WHERE g.id = ? AND a.total > 0`, args...), &g, now, &cnt, &fs, &ls)
	if errors.Is(err, sql.ErrNoRows) {
		return Group{}, notFound
	}
	if err != nil {
		return Group{}, fmt.Errorf("group %d: %w", id, err)
	}
	g.Count, g.FirstSeen, g.LastSeen = int(cnt), fromNano(fs), fromNano(ls)
	gs := []Group{g}
	if err := s.fillStats(ctx, gs, tenants, scope); err != nil {
		return Group{}, err
	}
	return gs[0], nil
}

// maxNote bounds a triage note.
const maxNote = 4000

// SetTriage sets a group's triage state: acknowledged needs an Owner,
// snoozed a SnoozedUntil in the future; open clears owner, note and snooze.
// t.UpdatedBy names who did it; UpdatedAt is set to now. The returned group
// carries totals over every tenant: a caller with a tenant scope re-reads it
// with Group. Errors: EINVALID, ENOTFOUND.
func (s *Store) SetTriage(ctx context.Context, id int64, t Triage) (Group, error) {
	now := s.now()
	t.Owner, t.Note = strings.TrimSpace(t.Owner), strings.TrimSpace(t.Note)
	switch t.State {
	case TriageOpen:
		t.Owner, t.Note, t.SnoozedUntil = "", "", time.Time{}
	case TriageAcknowledged:
		if t.Owner == "" {
			return Group{}, delivery.Errorf(delivery.EINVALID, "acknowledging a failure group needs an owner")
		}
		t.SnoozedUntil = time.Time{}
	case TriageResolved:
		t.SnoozedUntil = time.Time{}
	case TriageSnoozed:
		if !t.SnoozedUntil.After(now) {
			return Group{}, delivery.Errorf(delivery.EINVALID, "snoozing a failure group needs a time in the future")
		}
	default:
		return Group{}, delivery.Errorf(delivery.EINVALID, "unknown triage state %q (want open, acknowledged, resolved or snoozed)", t.State)
	}
	if len(t.Note) > maxNote || len(t.Owner) > 200 {
		return Group{}, delivery.Errorf(delivery.EINVALID, "triage owner or note too long (at most 200 and %d characters)", maxNote)
	}
	res, err := s.exec(ctx, `UPDATE groups SET state = ?, owner = ?, note = ?, snoozed_until = ?, updated_by = ?, updated_at = ? WHERE id = ?`,
		t.State, t.Owner, t.Note, unixNano(t.SnoozedUntil), t.UpdatedBy, unixNano(now), id)
	if err != nil {
		return Group{}, fmt.Errorf("triage group %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Group{}, delivery.Errorf(delivery.ENOTFOUND, "failure group %d not found", id)
	}
	return s.Group(ctx, id, nil)
}
