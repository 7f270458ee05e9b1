package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-sqlite3"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// Store keeps rules, alert state, transitions, silences and the notifiers'
// state in console.db (Schema). It checks what keeps its rows consistent —
// unique names, versions, that a silence can match — and leaves the rest
// of a rule's validation and every scope check to the Service.
type Store struct {
	db  *sql.DB
	now func() time.Time
}

// NewStore returns a Store over db, a console.db opened with Schema. now
// is the clock of CreatedAt, UpdatedAt and the silences' states; nil is
// time.Now.
func NewStore(db *sql.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

// clock is now in UTC, which also drops the monotonic reading, so that a
// time the store returns equals the one it reads back.
func (s *Store) clock() time.Time { return s.now().UTC() }

// Page sizes of Transitions.
const (
	DefaultTransitionsLimit = 50
	MaxTransitionsLimit     = 500
)

// maxExpiredSilences caps the expired silences ListSilences returns: the
// newest are the ones anybody looks for, and PruneSilences drops the rest
// in time.
const maxExpiredSilences = 500

// execQueryer is what *sql.DB and *sql.Tx share, so that reads run inside a
// write's transaction or alone.
type execQueryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in one write transaction, committed when fn returns nil.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// ---- Rules

// ruleSpec is what a rule stores as JSON: everything but the columns
// (name, severity, enabled) and what the store sets.
type ruleSpec struct {
	Expr          Selector          `json:"expr"`
	DivideBy      *Selector         `json:"divide_by,omitempty"`
	Op            CmpOp             `json:"op"`
	Threshold     float64           `json:"threshold"`
	And           *Condition        `json:"and,omitempty"`
	For           Duration          `json:"for,omitempty"`
	KeepFiringFor Duration          `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	GroupBy       []string          `json:"group_by,omitempty"`
}

func encodeSpec(r *Rule) (string, error) {
	b, err := json.Marshal(ruleSpec{
		Expr: r.Expr, DivideBy: r.DivideBy, Op: r.Op, Threshold: r.Threshold, And: r.And,
		For: r.For, KeepFiringFor: r.KeepFiringFor,
		Labels: r.Labels, Annotations: r.Annotations, GroupBy: r.GroupBy,
	})
	if err != nil {
		return "", fmt.Errorf("encode rule %q: %w", r.Name, err)
	}
	return string(b), nil
}

// nameKey is the form in which rule names are unique: folded by Go, so
// that "Lag" and "LAG" clash beyond ASCII too.
func nameKey(name string) string { return strings.ToLower(name) }

func nameTaken(name string) error {
	e := delivery.Errorf(delivery.ECONFLICT, "a rule named %q exists", name)
	e.Details = map[string]any{"fields": map[string]string{"name": "a rule with this name exists"}}
	return e
}

const ruleCols = `id, name, severity, enabled, spec, created_by, updated_by, created_at, updated_at, version`

type scanner interface{ Scan(dest ...any) error }

func scanRule(sc scanner) (Rule, error) {
	var r Rule
	var spec, created, updated string
	if err := sc.Scan(&r.ID, &r.Name, &r.Severity, &r.Enabled, &spec, &r.CreatedBy, &r.UpdatedBy, &created, &updated, &r.Version); err != nil {
		return Rule{}, err
	}
	var sp ruleSpec
	if err := json.Unmarshal([]byte(spec), &sp); err != nil {
		return Rule{}, fmt.Errorf("rule %d: decode: %w", r.ID, err)
	}
	r.Expr, r.DivideBy, r.Op, r.Threshold, r.And = sp.Expr, sp.DivideBy, sp.Op, sp.Threshold, sp.And
	r.For, r.KeepFiringFor = sp.For, sp.KeepFiringFor
	r.Labels, r.Annotations, r.GroupBy = sp.Labels, sp.Annotations, sp.GroupBy
	var err error
	if r.CreatedAt, err = sqldb.ParseTime(created); err != nil {
		return Rule{}, fmt.Errorf("rule %d: created_at: %w", r.ID, err)
	}
	if r.UpdatedAt, err = sqldb.ParseTime(updated); err != nil {
		return Rule{}, fmt.Errorf("rule %d: updated_at: %w", r.ID, err)
	}
	return r, nil
}

func getRule(ctx context.Context, q execQueryer, id int64) (Rule, error) {
	r, err := scanRule(q.QueryRowContext(ctx, `SELECT `+ruleCols+` FROM alert_rules WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Rule{}, delivery.Errorf(delivery.ENOTFOUND, "alert rule %d not found", id)
	}
	if err != nil {
		return Rule{}, fmt.Errorf("get alert rule %d: %w", id, err)
	}
	return r, nil
}

// CreateRule stores a new rule: it sets ID, Version 1 and CreatedAt =
// UpdatedAt = now, keeps CreatedBy and UpdatedBy as given, and returns the
// rule as stored. Errors: ECONFLICT when another rule has the name in any
// case.
func (s *Store) CreateRule(ctx context.Context, r Rule) (Rule, error) {
	spec, err := encodeSpec(&r)
	if err != nil {
		return Rule{}, err
	}
	now := sqldb.FormatTime(s.clock())
	var out Rule
	err = s.inTx(ctx, "create alert rule", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO alert_rules
	(name, name_key, severity, enabled, spec, created_by, updated_by, created_at, updated_at, version)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
			r.Name, nameKey(r.Name), r.Severity, r.Enabled, spec, r.CreatedBy, r.UpdatedBy, now, now)
		if isUniqueViolation(err) {
			return nameTaken(r.Name)
		}
		if err != nil {
			return fmt.Errorf("create alert rule %q: %w", r.Name, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("create alert rule %q: %w", r.Name, err)
		}
		out, err = getRule(ctx, tx, id)
		return err
	})
	if err != nil {
		return Rule{}, err
	}
	return out, nil
}

// UpdateRule replaces the rule r.ID with r, provided r.Version is the
// stored version: it sets Version+1, UpdatedAt = now and UpdatedBy as
// given, keeps CreatedBy and CreatedAt, and returns the rule as stored.
// Errors: ENOTFOUND; ECONFLICT when the rule changed since r.Version (the
// message says who changed it when) or another rule has the name.
func (s *Store) UpdateRule(ctx context.Context, r Rule) (Rule, error) {
	spec, err := encodeSpec(&r)
	if err != nil {
		return Rule{}, err
	}
	var out Rule
	err = s.inTx(ctx, "update alert rule", func(tx *sql.Tx) error {
		cur, err := getRule(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if cur.Version != r.Version {
			return changedMeanwhile(cur)
		}
		_, err = tx.ExecContext(ctx, `UPDATE alert_rules SET
	name = ?, name_key = ?, severity = ?, enabled = ?, spec = ?, updated_by = ?, updated_at = ?, version = version + 1
	WHERE id = ?`,
			r.Name, nameKey(r.Name), r.Severity, r.Enabled, spec, r.UpdatedBy, sqldb.FormatTime(s.clock()), r.ID)
		if isUniqueViolation(err) {
			return nameTaken(r.Name)
		}
		if err != nil {
			return fmt.Errorf("update alert rule %d: %w", r.ID, err)
		}
		out, err = getRule(ctx, tx, r.ID)
		return err
	})
	if err != nil {
		return Rule{}, err
	}
	return out, nil
}

// changedMeanwhile is the ECONFLICT of an update from an old version: it
// names who changed the rule and when, so that the editor knows what to
// reload and whom to ask.
func changedMeanwhile(cur Rule) error {
	at := cur.UpdatedAt.Format(time.RFC3339)
	if cur.UpdatedBy == "" {
		return delivery.Errorf(delivery.ECONFLICT, "rule %q was changed at %s; reload", cur.Name, at)
	}
	return delivery.Errorf(delivery.ECONFLICT, "rule %q was changed by %s at %s; reload", cur.Name, cur.UpdatedBy, at)
}

// DeleteRule deletes a rule with its alerts, status and transitions, in
// one transaction, and returns the rule as it was. Errors: ENOTFOUND.
func (s *Store) DeleteRule(ctx context.Context, id int64) (Rule, error) {
	var out Rule
	err := s.inTx(ctx, "delete alert rule", func(tx *sql.Tx) error {
		var err error
		if out, err = getRule(ctx, tx, id); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM alert_sets WHERE rule_id = ?`,
			`DELETE FROM alert_rule_status WHERE rule_id = ?`,
			`DELETE FROM alert_transitions WHERE rule_id = ?`,
			`DELETE FROM alert_rules WHERE id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("delete alert rule %d: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return Rule{}, err
	}
	return out, nil
}

// GetRule returns one rule. Errors: ENOTFOUND.
func (s *Store) GetRule(ctx context.Context, id int64) (Rule, error) {
	return getRule(ctx, s.db, id)
}

// ListRules returns every rule, by id.
func (s *Store) ListRules(ctx context.Context) ([]Rule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+ruleCols+` FROM alert_rules ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list alert rules: %w", err)
	}
	defer rows.Close()
	var out []Rule
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, fmt.Errorf("list alert rules: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alert rules: %w", err)
	}
	return out, nil
}

// ---- Evaluation state

// RuleChange is what one evaluation changed of one rule, for SaveCycle.
type RuleChange struct {
	RuleID int64
	// Alerts is the rule's full set of alerts, replacing the stored one;
	// nil leaves them unchanged, empty non-nil leaves none.
	Alerts []Alert
	// Transitions are appended to the rule's history.
	Transitions []Transition
	// Status replaces the rule's status; nil leaves it unchanged.
	Status *RuleStatus
}

// SaveCycle writes an evaluation's changes in one transaction, so that a
// restart finds the state of one cycle, never half of two, and one commit
// serves every rule. The evaluator passes only the rules whose alerts or
// status changed; every statement is prepared once for the whole cycle,
// and a rule's alerts are one row (alert_sets). A rule deleted since it
// was evaluated is skipped: its rows would outlive it. Alert.Silenced is
// not stored (it is recomputed on read), nor Alert.RuleID (the change's
// RuleID is). Errors: internal only, also for two alerts of one rule with
// the same fingerprint (an evaluator's bug); nothing of the cycle is saved
// then.
func (s *Store) SaveCycle(ctx context.Context, changes []RuleChange) error {
	if len(changes) == 0 {
		return nil
	}
	return s.inTx(ctx, "save alert state", func(tx *sql.Tx) error {
		live, err := liveRules(ctx, tx, changes)
		if err != nil {
			return fmt.Errorf("save alert state: %w", err)
		}
		st, err := prepareCycle(ctx, tx)
		if err != nil {
			return fmt.Errorf("save alert state: %w", err)
		}
		defer st.close()
		for i := range changes {
			if _, ok := live[changes[i].RuleID]; !ok {
				continue
			}
			if err := st.save(ctx, &changes[i]); err != nil {
				return fmt.Errorf("save alert state of rule %d: %w", changes[i].RuleID, err)
			}
		}
		return nil
	})
}

// liveRules returns which of the changes' rules exist, in one query
// rather than one per rule.
func liveRules(ctx context.Context, tx *sql.Tx, changes []RuleChange) (map[int64]struct{}, error) {
	ids := make([]int64, len(changes))
	for i := range changes {
		ids[i] = changes[i].RuleID
	}
	js, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM alert_rules WHERE id IN (SELECT value FROM json_each(?))`, string(js))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	live := make(map[int64]struct{}, len(changes))
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		live[id] = struct{}{}
	}
	return live, rows.Err()
}

// cycleStmts are SaveCycle's statements, prepared in its transaction, and
// the encoder's buffers, reused from rule to rule.
type cycleStmts struct {
	putAlerts, delAlerts, insTransition, putStatus *sql.Stmt
	enc                                            alertEncoder
}

func prepareCycle(ctx context.Context, tx *sql.Tx) (*cycleStmts, error) {
	st := &cycleStmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&st.putAlerts, `INSERT INTO alert_sets (rule_id, alerts) VALUES (?, ?)
	ON CONFLICT (rule_id) DO UPDATE SET alerts = excluded.alerts`},
		{&st.delAlerts, `DELETE FROM alert_sets WHERE rule_id = ?`},
		{&st.insTransition, `INSERT INTO alert_transitions
	(rule_id, fingerprint, labels, from_state, to_state, at, value) VALUES (?, ?, ?, ?, ?, ?, ?)`},
		{&st.putStatus, `INSERT INTO alert_rule_status
	(rule_id, last_eval, eval_duration_ns, error, series, firing, pending, no_data, no_data_since)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (rule_id) DO UPDATE SET
	last_eval = excluded.last_eval, eval_duration_ns = excluded.eval_duration_ns, error = excluded.error,
	series = excluded.series, firing = excluded.firing, pending = excluded.pending,
	no_data = excluded.no_data, no_data_since = excluded.no_data_since`},
	} {
		stmt, err := tx.PrepareContext(ctx, p.q)
		if err != nil {
			st.close()
			return nil, err
		}
		*p.dst = stmt
	}
	return st, nil
}

func (st *cycleStmts) close() {
	for _, s := range []*sql.Stmt{st.putAlerts, st.delAlerts, st.insTransition, st.putStatus} {
		if s != nil {
			s.Close()
		}
	}
}

func (st *cycleStmts) save(ctx context.Context, c *RuleChange) error {
	switch {
	case c.Alerts == nil:
	case len(c.Alerts) == 0:
		if _, err := st.delAlerts.ExecContext(ctx, c.RuleID); err != nil {
			return err
		}
	default:
		js, err := st.enc.encode(c.Alerts)
		if err != nil {
			return err
		}
		if _, err := st.putAlerts.ExecContext(ctx, c.RuleID, js); err != nil {
			return err
		}
	}
	for i := range c.Transitions {
		t := &c.Transitions[i]
		labels, err := json.Marshal(t.Labels)
		if err != nil {
			return fmt.Errorf("encode transition of %s: %w", t.Fingerprint, err)
		}
		if _, err := st.insTransition.ExecContext(ctx, c.RuleID, t.Fingerprint, string(labels), string(t.From), string(t.To),
			sqldb.FormatTime(t.At), nullFloat(t.Value)); err != nil {
			return fmt.Errorf("transition of %s: %w", t.Fingerprint, err)
		}
	}
	if rs := c.Status; rs != nil {
		if _, err := st.putStatus.ExecContext(ctx, c.RuleID, nullTime(rs.LastEval), int64(rs.EvalDuration), rs.Error,
			rs.Series, rs.Firing, rs.Pending, rs.NoData, nullTime(rs.NoDataSince)); err != nil {
			return fmt.Errorf("status: %w", err)
		}
	}
	return nil
}

// LoadState returns the stored alerts by rule (each rule's in the order
// SaveCycle got them) and the rules' statuses, for the evaluator's start.
func (s *Store) LoadState(ctx context.Context) (map[int64][]Alert, map[int64]RuleStatus, error) {
	alerts := make(map[int64][]Alert)
	rows, err := s.db.QueryContext(ctx, `SELECT rule_id, alerts FROM alert_sets`)
	if err != nil {
		return nil, nil, fmt.Errorf("load alerts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var js string
		if err := rows.Scan(&id, &js); err != nil {
			return nil, nil, fmt.Errorf("load alerts: %w", err)
		}
		var stored []storedAlert
		if err := json.Unmarshal([]byte(js), &stored); err != nil {
			return nil, nil, fmt.Errorf("load alerts of rule %d: %w", id, err)
		}
		as := make([]Alert, len(stored))
		for i, sa := range stored {
			as[i] = Alert{
				RuleID: id, Fingerprint: sa.Fingerprint, Labels: sa.Labels, Annotations: sa.Annotations,
				State: sa.State, Value: float64(sa.Value),
				ActiveAt: sa.ActiveAt, FiredAt: sa.FiredAt, ResolvedAt: sa.ResolvedAt,
				KeepFiringSince: sa.KeepFiringSince, LastSentAt: sa.LastSentAt, ValidUntil: sa.ValidUntil,
			}
		}
		alerts[id] = as
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load alerts: %w", err)
	}

	statuses := make(map[int64]RuleStatus)
	srows, err := s.db.QueryContext(ctx, `SELECT rule_id, last_eval, eval_duration_ns, error, series, firing, pending, no_data, no_data_since
	FROM alert_rule_status`)
	if err != nil {
		return nil, nil, fmt.Errorf("load alert rule status: %w", err)
	}
	defer srows.Close()
	for srows.Next() {
		var rs RuleStatus
		var last, since sql.NullString
		var dur int64
		if err := srows.Scan(&rs.RuleID, &last, &dur, &rs.Error, &rs.Series, &rs.Firing, &rs.Pending, &rs.NoData, &since); err != nil {
			return nil, nil, fmt.Errorf("load alert rule status: %w", err)
		}
		rs.EvalDuration = time.Duration(dur)
		var err1, err2 error
		rs.LastEval, err1 = timeOf(last)
		rs.NoDataSince, err2 = timeOf(since)
		if err := errors.Join(err1, err2); err != nil {
			return nil, nil, fmt.Errorf("load status of rule %d: %w", rs.RuleID, err)
		}
		statuses[rs.RuleID] = rs
	}
	if err := srows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load alert rule status: %w", err)
	}
	return alerts, statuses, nil
}

// Transitions pages a rule's transitions newest first: those with an id
// below before (0: from the newest), at most limit (0: 50; at most 500).
// next is the before of the following page, 0 after the last. A rule
// without transitions, or that does not exist, has none. Errors: EINVALID
// for a negative before or limit.
func (s *Store) Transitions(ctx context.Context, ruleID, before int64, limit int) (ts []Transition, next int64, err error) {
	if before < 0 || limit < 0 {
		return nil, 0, delivery.Errorf(delivery.EINVALID, "before and limit must not be negative")
	}
	if limit == 0 {
		limit = DefaultTransitionsLimit
	}
	limit = min(limit, MaxTransitionsLimit)
	if before == 0 {
		before = math.MaxInt64
	}
	// One row more than the page says whether another page follows.
	rows, err := s.db.QueryContext(ctx, `SELECT id, fingerprint, labels, from_state, to_state, at, value
	FROM alert_transitions WHERE rule_id = ? AND id < ? ORDER BY id DESC LIMIT ?`, ruleID, before, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("list transitions of rule %d: %w", ruleID, err)
	}
	defer rows.Close()
	for rows.Next() {
		t := Transition{RuleID: ruleID}
		var labels, at string
		var value sql.NullFloat64
		if err := rows.Scan(&t.ID, &t.Fingerprint, &labels, &t.From, &t.To, &at, &value); err != nil {
			return nil, 0, fmt.Errorf("list transitions of rule %d: %w", ruleID, err)
		}
		t.Value = floatOf(value)
		var terr error
		t.At, terr = sqldb.ParseTime(at)
		if err := errors.Join(json.Unmarshal([]byte(labels), &t.Labels), terr); err != nil {
			return nil, 0, fmt.Errorf("transition %d of rule %d: %w", t.ID, ruleID, err)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list transitions of rule %d: %w", ruleID, err)
	}
	if len(ts) > limit {
		ts = ts[:limit]
		next = ts[limit-1].ID
	}
	return ts, next, nil
}

// PruneTransitions deletes the transitions older than olderThan, except the
// newest keep of each rule, so that a rule that rarely changes keeps its
// last changes however old. It returns how many it deleted.
func (s *Store) PruneTransitions(ctx context.Context, olderThan time.Time, keep int) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM alert_transitions WHERE id IN (
	SELECT id FROM (
		SELECT id, at, ROW_NUMBER() OVER (PARTITION BY rule_id ORDER BY id DESC) AS nth FROM alert_transitions
	) WHERE nth > ? AND at < ?)`, max(keep, 0), sqldb.FormatTime(olderThan))
	if err != nil {
		return 0, fmt.Errorf("prune transitions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune transitions: %w", err)
	}
	return n, nil
}

// ---- Silences

const silenceCols = `id, matchers, created_by, comment, starts_at, ends_at, created_at, expired_by`

func scanSilence(sc scanner) (Silence, error) {
	var sil Silence
	var matchers, starts, ends, created string
	if err := sc.Scan(&sil.ID, &matchers, &sil.CreatedBy, &sil.Comment, &starts, &ends, &created, &sil.ExpiredBy); err != nil {
		return Silence{}, err
	}
	var errs [4]error
	errs[0] = json.Unmarshal([]byte(matchers), &sil.Matchers)
	sil.StartsAt, errs[1] = sqldb.ParseTime(starts)
	sil.EndsAt, errs[2] = sqldb.ParseTime(ends)
	sil.CreatedAt, errs[3] = sqldb.ParseTime(created)
	if err := errors.Join(errs[:]...); err != nil {
		return Silence{}, fmt.Errorf("silence %d: %w", sil.ID, err)
	}
	return sil, nil
}

func getSilence(ctx context.Context, q execQueryer, id int64) (Silence, error) {
	sil, err := scanSilence(q.QueryRowContext(ctx, `SELECT `+silenceCols+` FROM alert_silences WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Silence{}, delivery.Errorf(delivery.ENOTFOUND, "silence %d not found", id)
	}
	if err != nil {
		return Silence{}, fmt.Errorf("get silence %d: %w", id, err)
	}
	return sil, nil
}

// CreateSilence stores a silence, setting ID and CreatedAt = now, and
// returns it as stored. Errors: EINVALID for matchers that CheckMatchers
// refuses (a stored silence must be one the Silencer can apply).
func (s *Store) CreateSilence(ctx context.Context, sil Silence) (Silence, error) {
	if err := CheckMatchers(sil.Matchers); err != nil {
		return Silence{}, err
	}
	matchers, err := json.Marshal(sil.Matchers)
	if err != nil {
		return Silence{}, fmt.Errorf("encode silence: %w", err)
	}
	var out Silence
	err = s.inTx(ctx, "create silence", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO alert_silences
	(matchers, created_by, comment, starts_at, ends_at, created_at, expired_by) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			string(matchers), sil.CreatedBy, sil.Comment, sqldb.FormatTime(sil.StartsAt), sqldb.FormatTime(sil.EndsAt),
			sqldb.FormatTime(s.clock()), sil.ExpiredBy)
		if err != nil {
			return fmt.Errorf("create silence: %w", err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("create silence: %w", err)
		}
		out, err = getSilence(ctx, tx, id)
		return err
	})
	if err != nil {
		return Silence{}, err
	}
	return out, nil
}

// GetSilence returns one silence. Errors: ENOTFOUND.
func (s *Store) GetSilence(ctx context.Context, id int64) (Silence, error) {
	return getSilence(ctx, s.db, id)
}

// ExpireSilence ends a silence now: EndsAt = now, StartsAt = now too when
// it had not started, ExpiredBy = by. Errors: ENOTFOUND; ECONFLICT when it
// has already expired.
func (s *Store) ExpireSilence(ctx context.Context, id int64, by string) (Silence, error) {
	var out Silence
	err := s.inTx(ctx, "expire silence", func(tx *sql.Tx) error {
		sil, err := getSilence(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.clock()
		if sil.State(now) == "expired" {
			return delivery.Errorf(delivery.ECONFLICT, "silence %d expired at %s", id, sil.EndsAt.Format(time.RFC3339))
		}
		if now.Before(sil.StartsAt) {
			sil.StartsAt = now
		}
		if _, err := tx.ExecContext(ctx, `UPDATE alert_silences SET starts_at = ?, ends_at = ?, expired_by = ? WHERE id = ?`,
			sqldb.FormatTime(sil.StartsAt), sqldb.FormatTime(now), by, id); err != nil {
			return fmt.Errorf("expire silence %d: %w", id, err)
		}
		out, err = getSilence(ctx, tx, id)
		return err
	})
	if err != nil {
		return Silence{}, err
	}
	return out, nil
}

// ListSilences lists the silences in f.State at now: active and pending
// ones by EndsAt, expired ones newest first and only the last 500. The
// zero filter lists all three, active first, then pending, then expired.
// Errors: EINVALID for an unknown state.
func (s *Store) ListSilences(ctx context.Context, f SilenceFilter) ([]Silence, error) {
	now := sqldb.FormatTime(s.clock())
	// The conditions are Silence.State's, in SQL.
	queries := map[string]struct {
		where, order string
		args         []any
	}{
		"active":  {`starts_at <= ? AND ends_at > ?`, `ends_at, id`, []any{now, now}},
		"pending": {`starts_at > ? AND ends_at > ?`, `ends_at, id`, []any{now, now}},
		"expired": {`ends_at <= ?`, fmt.Sprintf(`ends_at DESC, id DESC LIMIT %d`, maxExpiredSilences), []any{now}},
	}
	states := []string{f.State}
	switch f.State {
	case "":
		states = []string{"active", "pending", "expired"}
	case "active", "pending", "expired":
	default:
		e := delivery.Errorf(delivery.EINVALID, "silence state %q: want active, pending or expired", f.State)
		e.Details = map[string]any{"fields": map[string]string{"state": "want active, pending or expired"}}
		return nil, e
	}
	var out []Silence
	for _, st := range states {
		q := queries[st]
		rows, err := s.db.QueryContext(ctx, `SELECT `+silenceCols+` FROM alert_silences WHERE `+q.where+` ORDER BY `+q.order, q.args...)
		if err != nil {
			return nil, fmt.Errorf("list silences: %w", err)
		}
		for rows.Next() {
			sil, err := scanSilence(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("list silences: %w", err)
			}
			out = append(out, sil)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("list silences: %w", err)
		}
	}
	return out, nil
}

// PruneSilences deletes the silences that ended before endedBefore and
// returns how many. Their remote copies' records stay: the notifier
// expires those at the Alertmanager and then deletes the record, also for
// a silence that no longer exists.
func (s *Store) PruneSilences(ctx context.Context, endedBefore time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM alert_silences WHERE ends_at < ?`, sqldb.FormatTime(endedBefore))
	if err != nil {
		return 0, fmt.Errorf("prune silences: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune silences: %w", err)
	}
	return n, nil
}

// ---- Notifier state

// GroupState is what a notifier last sent for one group of one target, so
// that a restart does not re-notify.
type GroupState struct {
	Target       string // target name
	Key          string // group key (rule id + group-by label values)
	Hash         string // hash of the alert set last notified (firing + resolved fingerprints)
	LastNotified time.Time
}

// LoadGroups returns every group's state, by target and key.
func (s *Store) LoadGroups(ctx context.Context) ([]GroupState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT target, key, hash, last_notified FROM alert_groups ORDER BY target, key`)
	if err != nil {
		return nil, fmt.Errorf("load notification groups: %w", err)
	}
	defer rows.Close()
	var out []GroupState
	for rows.Next() {
		var g GroupState
		var last sql.NullString
		if err := rows.Scan(&g.Target, &g.Key, &g.Hash, &last); err != nil {
			return nil, fmt.Errorf("load notification groups: %w", err)
		}
		if g.LastNotified, err = timeOf(last); err != nil {
			return nil, fmt.Errorf("load notification group %s/%s: %w", g.Target, g.Key, err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load notification groups: %w", err)
	}
	return out, nil
}

// SaveGroup stores a group's state, replacing the one of the same target
// and key.
func (s *Store) SaveGroup(ctx context.Context, g GroupState) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO alert_groups (target, key, hash, last_notified) VALUES (?, ?, ?, ?)
	ON CONFLICT (target, key) DO UPDATE SET hash = excluded.hash, last_notified = excluded.last_notified`,
		g.Target, g.Key, g.Hash, nullTime(g.LastNotified)); err != nil {
		return fmt.Errorf("save notification group %s/%s: %w", g.Target, g.Key, err)
	}
	return nil
}

// DeleteGroup deletes a group's state; an unknown one is not an error.
func (s *Store) DeleteGroup(ctx context.Context, target, key string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM alert_groups WHERE target = ? AND key = ?`, target, key); err != nil {
		return fmt.Errorf("delete notification group %s/%s: %w", target, key, err)
	}
	return nil
}

// RemoteSilence records that a silence was copied to an Alertmanager, under
// the id that Alertmanager gave it, so that it can be expired there.
type RemoteSilence struct {
	Target    string // Alertmanager target name
	SilenceID int64
	RemoteID  string // the Alertmanager's silence id
}

// RemoteSilences returns every record, by target and silence id.
func (s *Store) RemoteSilences(ctx context.Context) ([]RemoteSilence, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT target, silence_id, remote_id FROM alert_remote_silences ORDER BY target, silence_id`)
	if err != nil {
		return nil, fmt.Errorf("load remote silences: %w", err)
	}
	defer rows.Close()
	var out []RemoteSilence
	for rows.Next() {
		var r RemoteSilence
		if err := rows.Scan(&r.Target, &r.SilenceID, &r.RemoteID); err != nil {
			return nil, fmt.Errorf("load remote silences: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load remote silences: %w", err)
	}
	return out, nil
}

// SetRemoteSilence stores a record, replacing the one of the same target
// and silence.
func (s *Store) SetRemoteSilence(ctx context.Context, r RemoteSilence) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO alert_remote_silences (target, silence_id, remote_id) VALUES (?, ?, ?)
	ON CONFLICT (target, silence_id) DO UPDATE SET remote_id = excluded.remote_id`,
		r.Target, r.SilenceID, r.RemoteID); err != nil {
		return fmt.Errorf("save remote silence %s/%d: %w", r.Target, r.SilenceID, err)
	}
	return nil
}

// DeleteRemoteSilence deletes a record; an unknown one is not an error.
func (s *Store) DeleteRemoteSilence(ctx context.Context, target string, silenceID int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM alert_remote_silences WHERE target = ? AND silence_id = ?`, target, silenceID); err != nil {
		return fmt.Errorf("delete remote silence %s/%d: %w", target, silenceID, err)
	}
	return nil
}

// ---- Values

// nullTime is t as stored: NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return sqldb.FormatTime(t)
}

// timeOf reads a time written by nullTime.
func timeOf(ns sql.NullString) (time.Time, error) {
	if !ns.Valid {
		return time.Time{}, nil
	}
	return sqldb.ParseTime(ns.String)
}

// nullFloat is v as stored: SQLite turns a NaN REAL into NULL anyway, and
// floatOf reads NULL back as NaN, so a NaN value survives the round trip
// instead of failing the scan.
func nullFloat(v float64) any {
	if math.IsNaN(v) {
		return nil
	}
	return v
}

func floatOf(v sql.NullFloat64) float64 {
	if !v.Valid {
		return math.NaN()
	}
	return v.Float64
}

// storedAlert is an Alert as alert_sets holds it, in a JSON array per
// rule: without RuleID (the row's) and Silenced (not stored), with times in
// UTC and left out when zero, and the value as jsonFloat, so that NaN and
// infinities (a vanished series, a division by zero) survive. alertEncoder
// writes this form and encoding/json reads it.
type storedAlert struct {
	Fingerprint     string            `json:"fingerprint"`
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	State           State             `json:"state"`
	Value           jsonFloat         `json:"value"`
	ActiveAt        time.Time         `json:"active_at,omitzero"`
	FiredAt         time.Time         `json:"fired_at,omitzero"`
	ResolvedAt      time.Time         `json:"resolved_at,omitzero"`
	KeepFiringSince time.Time         `json:"keep_firing_since,omitzero"`
	LastSentAt      time.Time         `json:"last_sent_at,omitzero"`
	ValidUntil      time.Time         `json:"valid_until,omitzero"`
}

// jsonFloat is a float64 that JSON carries as a number, or as "NaN",
// "+Inf" and "-Inf" (Prometheus's spelling), which JSON numbers cannot be.
type jsonFloat float64

// UnmarshalJSON reads what appendFloat writes.
func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) > 0 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseFloat(s, 64) // takes NaN, +Inf and -Inf
	if err != nil {
		return fmt.Errorf("value %q: %w", s, err)
	}
	*f = jsonFloat(v)
	return nil
}

// alertEncoder writes a rule's alerts as a JSON array of storedAlert. It
// is written by hand because encoding/json, with its reflection and a sort
// per map, was most of SaveCycle's time for 10,000 alerts; its buffers are
// reused across the rules of a cycle. The round trip through
// encoding/json is what the store's tests check.
type alertEncoder struct {
	buf  []byte
	keys []string
	seen map[string]struct{}
}

// encode returns alerts as JSON. Errors: two alerts with one fingerprint.
func (e *alertEncoder) encode(alerts []Alert) (string, error) {
	if e.seen == nil {
		e.seen = make(map[string]struct{}, len(alerts))
	}
	clear(e.seen)
	b := append(e.buf[:0], '[')
	for i := range alerts {
		a := &alerts[i]
		if _, dup := e.seen[a.Fingerprint]; dup {
			return "", fmt.Errorf("two alerts with fingerprint %s", a.Fingerprint)
		}
		e.seen[a.Fingerprint] = struct{}{}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"fingerprint":`...)
		b = appendString(b, a.Fingerprint)
		b = append(b, `,"labels":`...)
		b = e.appendMap(b, a.Labels)
		b = append(b, `,"annotations":`...)
		b = e.appendMap(b, a.Annotations)
		b = append(b, `,"state":`...)
		b = appendString(b, string(a.State))
		b = append(b, `,"value":`...)
		b = appendFloat(b, a.Value)
		for _, t := range [...]struct {
			key string
			t   time.Time
		}{
			{`,"active_at":"`, a.ActiveAt}, {`,"fired_at":"`, a.FiredAt}, {`,"resolved_at":"`, a.ResolvedAt},
			{`,"keep_firing_since":"`, a.KeepFiringSince}, {`,"last_sent_at":"`, a.LastSentAt}, {`,"valid_until":"`, a.ValidUntil},
		} {
			if !t.t.IsZero() {
				b = append(b, t.key...)
				b = t.t.UTC().AppendFormat(b, time.RFC3339Nano)
				b = append(b, '"')
			}
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	e.buf = b
	return string(b), nil
}

// appendMap appends m as a JSON object with its keys sorted, null for nil.
func (e *alertEncoder) appendMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	e.keys = e.keys[:0]
	for k := range m {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys)
	b = append(b, '{')
	for i, k := range e.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, the rest as is. Invalid UTF-8 goes through
// encoding/json, which turns it into U+FFFD as it would on any path.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		q, _ := json.Marshal(s) // a string always marshals
		return append(b, q...)
	}
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFloat appends v as jsonFloat reads it.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}
