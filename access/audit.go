package access

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"switchyard/delivery"
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
	// Scheme says how Hash was computed: SchemeSHA256, or
	// "hmac-sha256:<key id>" for a row written with an audit key.
	Scheme string `json:"hash_scheme"`
}

// AuditFilter selects records. Zero fields do not filter. Until is
// exclusive. Before is the keyset cursor of List: only ids below it.
type AuditFilter struct {
	Actor, Action, Outcome, Resource string
	Since, Until                     time.Time
	Before                           int64
	Limit                            int // List: default 100, at most 1000; ExportJSONL: 0 = all
}

// Hash schemes of audit rows (the hash_scheme column).
const (
	// SchemeSHA256 is the plain chain: rows written without an audit key
	// (every row before one was configured). It proves order, not
	// authorship: whoever can write the database can recompute it.
	SchemeSHA256 = "sha256"
	// schemeHMAC, followed by the key id, is a row hashed with the audit
	// key: without the key nobody can produce its hash.
	schemeHMAC = "hmac-sha256:"
	// MinAuditKeyLen is the shortest audit key accepted, in bytes.
	MinAuditKeyLen = 32
)

// Audit is the append-only audit log with a hash chain: each row stores
// the hash of the previous one and its own
//
//	hash = hex(HMAC-SHA256(key, prev_hash + "\n" + canonical JSON))   with an audit key
//	hash = hex(SHA-256(prev_hash + "\n" + canonical JSON))            without one
//
// where the canonical JSON is an object of id, time (RFC 3339, UTC, nine
// fractional digits), actor, method, source_ip, user_agent, action,
// resource, tenant, reason, affected_ids, outcome, details — in that order,
// details with sorted keys exactly as stored. The first row's prev_hash is
// "", and hash_scheme records which formula made each row.
//
// Triggers refuse UPDATE and DELETE. Verify detects an edited, removed or
// reordered row even after the triggers were dropped — against someone
// who can also recompute the hashes only when the rows are keyed (the key
// lives outside the data dir) or when an Anchor of the chain head, kept
// outside the database, is checked (which also catches rows cut off the
// end).
type Audit struct {
	db  *sql.DB
	now func() time.Time
	// key is the HMAC key (nil: plain SHA-256); scheme is what rows
	// written by this Audit record in hash_scheme.
	key    []byte
	keyID  string
	scheme string
	// mu serializes appends in this process; the IMMEDIATE transaction
	// (sqldb's DSN) serializes them against other processes, so that two
	// rows never claim the same predecessor.
	mu sync.Mutex
}

// AuditOptions configure an Audit. The zero value writes the plain
// SHA-256 chain with time.Now.
type AuditOptions struct {
	Now func() time.Time
	// Key, at least MinAuditKeyLen bytes, makes every appended row's hash
	// an HMAC-SHA256 and lets Verify check rows written with it. Keep it
	// outside the data dir: whoever has both can rewrite the chain.
	Key []byte
}

// NewAudit returns the unkeyed audit log over a database opened by
// sqldb.Open; now may be nil for time.Now. It is NewAuditWith without a
// key.
func NewAudit(db *sql.DB, now func() time.Time) (*Audit, error) {
	return NewAuditWith(db, AuditOptions{Now: now})
}

// NewAuditWith returns the audit log over a database opened by
// sqldb.Open. Errors: delivery.EINVALID (no database, a key shorter than
// MinAuditKeyLen).
func NewAuditWith(db *sql.DB, o AuditOptions) (*Audit, error) {
	if db == nil {
		return nil, delivery.Errorf(delivery.EINVALID, "audit: no database")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Audit{db: db, now: o.Now, scheme: SchemeSHA256}
	if o.Key != nil {
		if len(o.Key) < MinAuditKeyLen {
			return nil, delivery.Errorf(delivery.EINVALID, "audit key must be at least %d bytes, is %d", MinAuditKeyLen, len(o.Key))
		}
		a.key = bytes.Clone(o.Key)
		a.keyID = AuditKeyID(a.key)
		a.scheme = schemeHMAC + a.keyID
	}
	return a, nil
}

// AuditKeyID names an audit key without revealing it: the first 8 bytes of
// an HMAC of a fixed text, in hex. Rows record it, so that Verify can say
// which key they need.
func AuditKeyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("switchyard audit key id"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// KeyID returns the id of this Audit's key, "" when it has none.
func (a *Audit) KeyID() string { return a.keyID }

// mayFollow refuses to extend a chain whose newest row is keyed unless
// this Audit has the same key: an unkeyed row after keyed ones is what a
// rewrite looks like to Verify, and a chain continued with another key
// could be verified with neither.
func (a *Audit) mayFollow(headScheme string) error {
	id, keyed := strings.CutPrefix(headScheme, schemeHMAC)
	switch {
	case !keyed:
		return nil
	case a.key == nil:
		return delivery.Errorf(delivery.EINVALID, "the audit log is keyed (key id %s) and no audit key is configured: set CONSOLE_AUDIT_KEY or auth.audit_key_file to that key", id)
	case id != a.keyID:
		return delivery.Errorf(delivery.EINVALID, "the audit log is keyed with key id %s, the configured audit key has id %s: configure the same key", id, a.keyID)
	}
	return nil
}

// CheckKey says whether this Audit may append to the log as it stands
// (see mayFollow), so that a console started with the wrong key, or none
// after one was used, stops at start instead of failing every audited
// request. Errors: delivery.EINVALID naming the key ids, or an internal error.
func (a *Audit) CheckKey(ctx context.Context) error {
	var scheme string
	err := a.db.QueryRowContext(ctx, `SELECT hash_scheme FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&scheme)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return internal("audit: read chain head", err)
	}
	return a.mayFollow(scheme)
}

// Head returns the newest row's id and hash: what an Anchor records. The
// zero Anchor means an empty log.
func (a *Audit) Head(ctx context.Context) (Anchor, error) {
	var h Anchor
	err := a.db.QueryRowContext(ctx, `SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Anchor{}, nil
	}
	if err != nil {
		return Anchor{}, internal("audit: read chain head", err)
	}
	return h, nil
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

// chainHash hashes a row: HMAC-SHA256 with key, plain SHA-256 when key is
// nil.
func chainHash(prev string, c canonicalEvent, key []byte) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if key != nil {
		h = hmac.New(sha256.New, key)
	}
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Append records e, filling Time from the clock when zero. Errors: delivery.EINVALID
// (no action or an outcome other than success, failure, denied), or an
// internal error.
func (a *Audit) Append(ctx context.Context, e AuditEvent) error {
	if strings.TrimSpace(e.Action) == "" {
		return delivery.Errorf(delivery.EINVALID, "audit event without an action")
	}
	switch e.Outcome {
	case OutcomeSuccess, OutcomeFailure, OutcomeDenied:
	default:
		return delivery.Errorf(delivery.EINVALID, "audit outcome must be success, failure or denied")
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
	var prev, prevScheme string
	err = tx.QueryRowContext(ctx, `SELECT id, hash, hash_scheme FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&lastID, &prev, &prevScheme)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return internal("audit: read chain head", err)
	}
	if err := a.mayFollow(prevScheme); err != nil {
		return internal("audit: append", err)
	}
	c := canonicalEvent{
		ID: lastID + 1, Time: ts, Actor: e.Actor, Method: e.Method, SourceIP: e.SourceIP,
		UserAgent: e.UserAgent, Action: e.Action, Resource: e.Resource, Tenant: e.Tenant,
		Reason: e.Reason, AffectedIDs: e.AffectedIDs, Outcome: e.Outcome, Details: details,
	}
	hash, err := chainHash(prev, c, a.key)
	if err != nil {
		return internal("audit: hash", err)
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO audit_log (id, time, actor, method, source_ip, user_agent, action, resource, tenant,
	reason, affected_ids, outcome, details, prev_hash, hash, hash_scheme)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, ts, c.Actor, c.Method, c.SourceIP, c.UserAgent, c.Action, c.Resource, c.Tenant,
		c.Reason, string(ids), c.Outcome, string(details), prev, hash, a.scheme); err != nil {
		return internal("audit: insert", err)
	}
	if err := tx.Commit(); err != nil {
		return internal("audit: commit", err)
	}
	return nil
}

const auditColumns = `id, time, actor, method, source_ip, user_agent, action, resource, tenant,
	reason, affected_ids, outcome, details, prev_hash, hash, hash_scheme`

// rawAudit is a row as stored, before decoding, so that Verify hashes the
// exact stored text.
type rawAudit struct {
	c                      canonicalEvent
	ids, details           string
	prevHash, hash, scheme string
}

func scanAudit(rows *sql.Rows) (rawAudit, error) {
	var r rawAudit
	err := rows.Scan(&r.c.ID, &r.c.Time, &r.c.Actor, &r.c.Method, &r.c.SourceIP, &r.c.UserAgent,
		&r.c.Action, &r.c.Resource, &r.c.Tenant, &r.c.Reason, &r.ids, &r.c.Outcome, &r.details,
		&r.prevHash, &r.hash, &r.scheme)
	return r, err
}

func (r rawAudit) record() (AuditRecord, error) {
	rec := AuditRecord{ID: r.c.ID, PrevHash: r.prevHash, Hash: r.hash, Scheme: r.scheme}
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
// row that does not fit the chain or an anchor (0 when none).
type VerifyResult struct {
	Rows     int    `json:"rows"`
	OK       bool   `json:"ok"`
	BrokenAt int64  `json:"broken_at,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// Unkeyed rows (SchemeSHA256, written before an audit key was
	// configured) were checked as a plain chain: they prove order, not
	// authorship. They are rows 1 to Unkeyed: a keyed chain never goes back.
	Unkeyed int `json:"unkeyed"`
	// Keyed rows had their HMAC checked with the key (KeyID).
	Keyed int    `json:"keyed"`
	KeyID string `json:"key_id,omitempty"`
	// Unverified keyed rows could not be checked: Verify had no key or
	// another one (Problem says which is needed). OK is false then.
	Unverified int `json:"unverified"`
	// Anchors is how many anchors matched their row.
	Anchors int `json:"anchors"`
	// Head is the newest row: an anchor to keep for the next Verify.
	Head Anchor `json:"head"`
}

// Verify walks the whole chain from the first row and recomputes every
// hash — keyed rows with this Audit's key — and checks each anchor against
// its row. It reports the first row that was edited (its hash no longer
// fits), that follows a deleted row (an id gap or a prev_hash that is not
// its predecessor's hash), that was moved (its id is part of the hash),
// that is unkeyed or keyed with another key after keyed rows (a rewrite
// by someone without the key), or whose hash differs from an anchor's (a
// rewrite of the whole chain); and an anchor whose row is gone (rows cut
// off the end, or the file replaced by an older copy). Keyed rows it has
// no key for are counted in Unverified and leave OK false.
//
// What it cannot see: rows cut off the end after the newest anchor
// checked, and anything done by someone who holds the key.
func (a *Audit) Verify(ctx context.Context, anchors ...Anchor) (VerifyResult, error) {
	want := map[int64][]string{}
	for _, an := range anchors {
		want[an.Seq] = append(want[an.Seq], an.Hash)
	}
	rows, err := a.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY id ASC`)
	if err != nil {
		return VerifyResult{}, internal("audit: verify", err)
	}
	defer rows.Close()
	var res VerifyResult
	var prevID int64
	var prevHash, keyedWith string
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return VerifyResult{}, internal("audit: scan", err)
		}
		res.Rows++
		problem, err := a.checkRow(r, prevID, prevHash, keyedWith, &res)
		if err != nil {
			return VerifyResult{}, err
		}
		if problem == "" {
			for _, h := range want[r.c.ID] {
				if h != r.hash {
					problem = fmt.Sprintf("row %d does not match the anchor %d:%s: the chain was rewritten", r.c.ID, r.c.ID, h)
					break
				}
				res.Anchors++
			}
		}
		if problem != "" {
			res.BrokenAt, res.Problem = r.c.ID, problem
			return res, nil
		}
		if id, ok := strings.CutPrefix(r.scheme, schemeHMAC); ok {
			keyedWith = id
		}
		prevID, prevHash = r.c.ID, r.hash
		res.Head = Anchor{Seq: r.c.ID, Hash: r.hash}
	}
	if err := rows.Err(); err != nil {
		return VerifyResult{}, internal("audit: verify", err)
	}
	// An anchor beyond the newest row: rows were cut off the end.
	var missing []int64
	for seq := range want {
		if seq > prevID {
			missing = append(missing, seq)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		seq := missing[len(missing)-1]
		res.BrokenAt = prevID + 1
		res.Problem = fmt.Sprintf("the anchor %d:%s names row %d, but the log ends at row %d: newer rows were removed, or the database was replaced by an older copy",
			seq, want[seq][0], seq, prevID)
		return res, nil
	}
	if res.Unverified > 0 {
		res.Problem = fmt.Sprintf("%d keyed rows cannot be verified without the audit key with id %s (CONSOLE_AUDIT_KEY or auth.audit_key_file)", res.Unverified, res.KeyID)
		return res, nil
	}
	res.OK = true
	return res, nil
}

// checkRow checks one row against its predecessor and counts it in res;
// it returns the problem, "" when the row fits. keyedWith is the key id of
// the keyed rows before it ("" while there were none).
func (a *Audit) checkRow(r rawAudit, prevID int64, prevHash, keyedWith string, res *VerifyResult) (string, error) {
	switch {
	case r.c.ID != prevID+1:
		return fmt.Sprintf("row %d follows row %d: rows are missing", r.c.ID, prevID), nil
	case r.prevHash != prevHash:
		return fmt.Sprintf("row %d does not link to row %d (deleted or reordered rows)", r.c.ID, prevID), nil
	}
	if json.Unmarshal([]byte(r.ids), &r.c.AffectedIDs) != nil || !json.Valid([]byte(r.details)) {
		return fmt.Sprintf("row %d has malformed JSON fields", r.c.ID), nil
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, []byte(r.details))
	r.c.Details = compact.Bytes()
	var key []byte
	keyID, keyed := strings.CutPrefix(r.scheme, schemeHMAC)
	switch {
	case r.scheme == SchemeSHA256 && keyedWith != "":
		return fmt.Sprintf("row %d is hashed without the audit key after rows hashed with it: the rows from here on were rewritten", r.c.ID), nil
	case r.scheme == SchemeSHA256:
		res.Unkeyed++
	case !keyed:
		return fmt.Sprintf("row %d has an unknown hash scheme %q", r.c.ID, r.scheme), nil
	case keyedWith != "" && keyID != keyedWith:
		return fmt.Sprintf("row %d is hashed with key id %s after rows hashed with key id %s: the rows from here on were rewritten", r.c.ID, keyID, keyedWith), nil
	case a.key == nil || keyID != a.keyID:
		// Without the key the row can only be linked, not checked.
		res.Unverified++
		res.KeyID = keyID
		return "", nil
	default:
		res.Keyed++
		res.KeyID = keyID
		key = a.key
	}
	h, err := chainHash(r.prevHash, r.c, key)
	if err != nil {
		return "", internal("audit: hash", err)
	}
	if h != r.hash {
		return fmt.Sprintf("row %d was modified: its hash does not match its contents", r.c.ID), nil
	}
	return "", nil
}
