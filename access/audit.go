package access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"switchyard/sqldb"
)

// AuditEvent is one thing worth recording: who did what to which resource,
// from where, and how it ended. Never put a secret (password, token,
// cookie) in any field.
type AuditEvent struct {
	Time        time.Time      `json:"time"`
	Actor       string         `json:"actor"`
	Method      string         `json:"method"` // MethodSession, MethodToken, MethodProxy, MethodCLI, "" for anonymous
	SourceIP    string         `json:"source_ip"`
	UserAgent   string         `json:"user_agent"`
	Action      string         `json:"action"` // "login", "logout", "user.create", "token.issue", "binding.add", "payload.read", "api.mutation", …
	Resource    string         `json:"resource"`
	Tenant      string         `json:"tenant"`
	Reason      string         `json:"reason"`
	AffectedIDs []string       `json:"affected_ids"`
	Outcome     string         `json:"outcome"` // OutcomeSuccess, OutcomeFailure, OutcomeDenied
	Details     map[string]any `json:"details"`
}

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// AuditRecord is a stored event with its place in the hash chain.
type AuditRecord struct {
	ID int64 `json:"id"`
	AuditEvent
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// AuditFilter selects records. Zero fields do not filter. Until is
// exclusive. Before is the keyset cursor of List: only ids below it.
type AuditFilter struct {
	Actor, Action, Outcome, Resource string
	Since, Until                     time.Time
	Before                           int64
	Limit                            int // List: default 100, at most 1000; ExportJSONL: 0 = all
}

// Audit is the append-only audit log with a hash chain: each row stores
// the hash of the previous one and its own
//
//	hash = hex(sha256(prev_hash + "\n" + canonical JSON))
//
// where the canonical JSON is an object of id, time (RFC 3339, UTC, nine
// fractional digits), actor, method, source_ip, user_agent, action,
// resource, tenant, reason, affected_ids, outcome, details — in that order,
// details with sorted keys exactly as stored. The first row's prev_hash is
// "". Triggers refuse UPDATE and DELETE; Verify detects tampering by
// anyone who removed them first, except cutting rows off the end.
type Audit struct {
	db  *sql.DB
	now func() time.Time
	// mu serializes appends in this process; the IMMEDIATE transaction
	// (sqldb's DSN) serializes them against other processes, so that two
	// rows never claim the same predecessor.
	mu sync.Mutex
}

// NewAudit returns the audit log over a database opened by sqldb.Open.
// now may be nil for time.Now.
func NewAudit(db *sql.DB, now func() time.Time) (*Audit, error) {
	if db == nil {
		return nil, Errorf(EINVALID, "audit: no database")
	}
	if now == nil {
		now = time.Now
	}
	return &Audit{db: db, now: now}, nil
}

type canonicalEvent struct {
	ID          int64           `json:"id"`
	Time        string          `json:"time"`
	Actor       string          `json:"actor"`
	Method      string          `json:"method"`
	SourceIP    string          `json:"source_ip"`
	UserAgent   string          `json:"user_agent"`
	Action      string          `json:"action"`
	Resource    string          `json:"resource"`
	Tenant      string          `json:"tenant"`
	Reason      string          `json:"reason"`
	AffectedIDs []string        `json:"affected_ids"`
	Outcome     string          `json:"outcome"`
	Details     json.RawMessage `json:"details"`
}

func chainHash(prev string, c canonicalEvent) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Append records e, filling Time from the clock when zero. Errors: EINVALID
// (no action or an outcome other than success, failure, denied), or an
// internal error.
func (a *Audit) Append(ctx context.Context, e AuditEvent) error {
	if strings.TrimSpace(e.Action) == "" {
		return Errorf(EINVALID, "audit event without an action")
	}
	switch e.Outcome {
	case OutcomeSuccess, OutcomeFailure, OutcomeDenied:
	default:
		return Errorf(EINVALID, "audit outcome must be success, failure or denied")
	}
	if e.Time.IsZero() {
		e.Time = a.now()
	}
	if e.AffectedIDs == nil {
		e.AffectedIDs = []string{}
	}
	details := []byte("{}")
	if len(e.Details) > 0 {
		var err error
		if details, err = json.Marshal(e.Details); err != nil {
			return internal("audit: encode details", err)
		}
	}
	ids, err := json.Marshal(e.AffectedIDs)
	if err != nil {
		return internal("audit: encode affected ids", err)
	}
	ts := sqldb.FormatTime(e.Time)

	a.mu.Lock()
	defer a.mu.Unlock()
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return internal("audit: begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var lastID int64
	var prev string
	err = tx.QueryRowContext(ctx, `SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&lastID, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return internal("audit: read chain head", err)
	}
	c := canonicalEvent{
		ID: lastID + 1, Time: ts, Actor: e.Actor, Method: e.Method, SourceIP: e.SourceIP,
		UserAgent: e.UserAgent, Action: e.Action, Resource: e.Resource, Tenant: e.Tenant,
		Reason: e.Reason, AffectedIDs: e.AffectedIDs, Outcome: e.Outcome, Details: details,
	}
	hash, err := chainHash(prev, c)
	if err != nil {
		return internal("audit: hash", err)
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO audit_log (id, time, actor, method, source_ip, user_agent, action, resource, tenant,
	reason, affected_ids, outcome, details, prev_hash, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, ts, c.Actor, c.Method, c.SourceIP, c.UserAgent, c.Action, c.Resource, c.Tenant,
		c.Reason, string(ids), c.Outcome, string(details), prev, hash); err != nil {
		return internal("audit: insert", err)
	}
	if err := tx.Commit(); err != nil {
		return internal("audit: commit", err)
	}
	return nil
}

const auditColumns = `id, time, actor, method, source_ip, user_agent, action, resource, tenant,
	reason, affected_ids, outcome, details, prev_hash, hash`

// rawAudit is a row as stored, before decoding, so that Verify hashes the
// exact stored text.
type rawAudit struct {
	c              canonicalEvent
	ids, details   string
	prevHash, hash string
}

func scanAudit(rows *sql.Rows) (rawAudit, error) {
	var r rawAudit
	err := rows.Scan(&r.c.ID, &r.c.Time, &r.c.Actor, &r.c.Method, &r.c.SourceIP, &r.c.UserAgent,
		&r.c.Action, &r.c.Resource, &r.c.Tenant, &r.c.Reason, &r.ids, &r.c.Outcome, &r.details,
		&r.prevHash, &r.hash)
	return r, err
}

func (r rawAudit) record() (AuditRecord, error) {
	rec := AuditRecord{ID: r.c.ID, PrevHash: r.prevHash, Hash: r.hash}
	t, err := sqldb.ParseTime(r.c.Time)
	if err != nil {
		return rec, fmt.Errorf("audit row %d: time: %w", r.c.ID, err)
	}
	rec.AuditEvent = AuditEvent{
		Time: t, Actor: r.c.Actor, Method: r.c.Method, SourceIP: r.c.SourceIP, UserAgent: r.c.UserAgent,
		Action: r.c.Action, Resource: r.c.Resource, Tenant: r.c.Tenant, Reason: r.c.Reason, Outcome: r.c.Outcome,
	}
	if err := json.Unmarshal([]byte(r.ids), &rec.AffectedIDs); err != nil {
		return rec, fmt.Errorf("audit row %d: affected_ids: %w", r.c.ID, err)
	}
	dec := json.NewDecoder(strings.NewReader(r.details))
	dec.UseNumber() // keep large integers exact
	if err := dec.Decode(&rec.Details); err != nil {
		return rec, fmt.Errorf("audit row %d: details: %w", r.c.ID, err)
	}
	return rec, nil
}

func (f AuditFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, arg any) { conds = append(conds, cond); args = append(args, arg) }
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Outcome != "" {
		add("outcome = ?", f.Outcome)
	}
	if f.Resource != "" {
		add("resource = ?", f.Resource)
	}
	if !f.Since.IsZero() {
		add("time >= ?", sqldb.FormatTime(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", sqldb.FormatTime(f.Until))
	}
	if f.Before > 0 {
		add("id < ?", f.Before)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// List returns the records matching f, newest first, and the cursor for
// the next page (0 when there is none): pass it as f.Before.
func (a *Audit) List(ctx context.Context, f AuditFilter) (recs []AuditRecord, nextBefore int64, err error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	where, args := f.where()
	rows, err := a.db.QueryContext(ctx,
		`SELECT `+auditColumns+` FROM audit_log`+where+` ORDER BY id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, 0, internal("audit: list", err)
	}
	defer rows.Close()
	for rows.Next() {
		raw, err := scanAudit(rows)
		if err != nil {
			return nil, 0, internal("audit: scan", err)
		}
		rec, err := raw.record()
		if err != nil {
			return nil, 0, internal("audit: decode", err)
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, internal("audit: list", err)
	}
	if len(recs) > limit {
		recs = recs[:limit]
		nextBefore = recs[limit-1].ID
	}
	return recs, nextBefore, nil
}

// ExportJSONL writes the records matching f, oldest first, one JSON object
// (an AuditRecord) per line. f.Limit 0 exports everything.
func (a *Audit) ExportJSONL(ctx context.Context, w io.Writer, f AuditFilter) error {
	where, args := f.where()
	q := `SELECT ` + auditColumns + ` FROM audit_log` + where + ` ORDER BY id ASC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := a.db.QueryContext(ctx, q, args...)
	if err != nil {
		return internal("audit: export", err)
	}
	defer rows.Close()
	enc := json.NewEncoder(w) // Encode ends each object with "\n"
	for rows.Next() {
		raw, err := scanAudit(rows)
		if err != nil {
			return internal("audit: scan", err)
		}
		rec, err := raw.record()
		if err != nil {
			return internal("audit: decode", err)
		}
		if err := enc.Encode(rec); err != nil {
			return internal("audit: write export", err)
		}
	}
	if err := rows.Err(); err != nil {
		return internal("audit: export", err)
	}
	return nil
}

// VerifyResult is the outcome of Verify. BrokenAt is the id of the first
// row that does not fit the chain (0 when OK).
type VerifyResult struct {
	Rows     int    `json:"rows"`
	OK       bool   `json:"ok"`
	BrokenAt int64  `json:"broken_at,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// Verify walks the whole chain from the first row and recomputes every
// hash. It reports the first row that was edited (its hash no longer
// fits), that follows a deleted row (an id gap or a prev_hash that is not
// its predecessor's hash), or that was moved (its id is part of the hash).
// Truncating the newest rows cannot be detected from the chain alone.
func (a *Audit) Verify(ctx context.Context) (VerifyResult, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY id ASC`)
	if err != nil {
		return VerifyResult{}, internal("audit: verify", err)
	}
	defer rows.Close()
	var res VerifyResult
	var prevID int64
	var prevHash string
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return VerifyResult{}, internal("audit: scan", err)
		}
		res.Rows++
		problem := ""
		switch {
		case r.c.ID != prevID+1:
			problem = fmt.Sprintf("row %d follows row %d: rows are missing", r.c.ID, prevID)
		case r.prevHash != prevHash:
			problem = fmt.Sprintf("row %d does not link to row %d (deleted or reordered rows)", r.c.ID, prevID)
		default:
			if json.Unmarshal([]byte(r.ids), &r.c.AffectedIDs) != nil || !json.Valid([]byte(r.details)) {
				problem = fmt.Sprintf("row %d has malformed JSON fields", r.c.ID)
				break
			}
			var compact bytes.Buffer
			_ = json.Compact(&compact, []byte(r.details))
			r.c.Details = compact.Bytes()
			h, err := chainHash(r.prevHash, r.c)
			if err != nil {
				return VerifyResult{}, internal("audit: hash", err)
			}
			if h != r.hash {
				problem = fmt.Sprintf("row %d was modified: its hash does not match its contents", r.c.ID)
			}
		}
		if problem != "" {
			res.BrokenAt, res.Problem = r.c.ID, problem
			return res, nil
		}
		prevID, prevHash = r.c.ID, r.hash
	}
	if err := rows.Err(); err != nil {
		return VerifyResult{}, internal("audit: verify", err)
	}
	res.OK = true
	return res, nil
}
