package access

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// Token is an API token's metadata; the plaintext is never stored.
type Token struct {
	ID         int64
	User, Name string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// createToken inserts a token for user and returns the plaintext and id.
func (s *Store) createToken(ctx context.Context, user, name string, ttl time.Duration) (string, int64, error) {
	if name = strings.TrimSpace(name); name == "" || len(name) > 64 {
		return "", 0, delivery.Errorf(delivery.EINVALID, "token name must be 1-64 characters")
	}
	if ttl < 0 {
		return "", 0, delivery.Errorf(delivery.EINVALID, "token lifetime must not be negative")
	}
	var uid int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ? AND disabled = 0`, user).Scan(&uid)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, delivery.Errorf(delivery.ENOTFOUND, "user %q not found", user)
	}
	if err != nil {
		return "", 0, internal("look up user", err)
	}
	r, err := randomToken(32)
	if err != nil {
		return "", 0, err
	}
	plaintext := TokenPrefix + r
	now := s.now()
	var expires any // NULL: no expiry
	if ttl > 0 {
		expires = sqldb.FormatTime(now.Add(ttl))
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		uid, name, hashToken(plaintext), sqldb.FormatTime(now), expires)
	if err != nil {
		return "", 0, internal("store token", err)
	}
	id, _ := res.LastInsertId()
	return plaintext, id, nil
}

// CreateToken issues an API token for user from the CLI (audited as the
// system). The plaintext ("sy_…") is returned once; only its SHA-256 is
// stored. ttl 0 means no expiry. Errors: delivery.EINVALID, delivery.ENOTFOUND (no such
// enabled user).
func (s *Store) CreateToken(ctx context.Context, user, name string, ttl time.Duration) (string, error) {
	tok, id, err := s.createToken(ctx, user, name, ttl)
	if err != nil {
		return "", err
	}
	if err := s.record(ctx, nil, AuditEvent{Action: "token.issue", Resource: "user:" + user,
		AffectedIDs: []string{strconv.FormatInt(id, 10)}, Outcome: OutcomeSuccess,
		Details: map[string]any{"name": name, "ttl_seconds": int64(ttl.Seconds())}}); err != nil {
		return "", err
	}
	return tok, nil
}

// IssueToken issues an API token for user on behalf of by: an admin for
// anyone, any user for themselves. Errors: delivery.EUNAUTHORIZED, delivery.EFORBIDDEN,
// delivery.EINVALID, delivery.ENOTFOUND.
func (s *Store) IssueToken(ctx context.Context, by *Principal, user, name string, ttl time.Duration) (string, error) {
	var tok string
	ev := AuditEvent{Action: "token.issue", Resource: "user:" + user,
		Details: map[string]any{"name": name, "ttl_seconds": int64(ttl.Seconds())}}
	self := by != nil && strings.EqualFold(by.User, user) && by.Method != MethodProxy
	err := s.adminOp(ctx, by, self, &ev, func() error {
		t, id, err := s.createToken(ctx, user, name, ttl)
		if err == nil {
			tok = t
			ev.AffectedIDs = []string{strconv.FormatInt(id, 10)}
		}
		return err
	})
	if err != nil {
		return "", err
	}
	return tok, nil
}

// RevokeToken revokes the token with the given plaintext (CLI). Errors:
// delivery.ENOTFOUND.
func (s *Store) RevokeToken(ctx context.Context, plaintext string) error {
	var id int64
	err := s.db.QueryRowContext(ctx,
		`UPDATE api_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL RETURNING id`,
		sqldb.FormatTime(s.now()), hashToken(plaintext)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return delivery.Errorf(delivery.ENOTFOUND, "token not found")
	}
	if err != nil {
		return internal("revoke token", err)
	}
	return s.record(ctx, nil, AuditEvent{Action: "token.revoke", AffectedIDs: []string{strconv.FormatInt(id, 10)},
		Outcome: OutcomeSuccess})
}

// RevokeTokenID revokes a token by id: an admin any token, a user their
// own. Errors: delivery.EUNAUTHORIZED, delivery.EFORBIDDEN, delivery.ENOTFOUND (also for someone
// else's token, so ids of others' tokens are not confirmed).
func (s *Store) RevokeTokenID(ctx context.Context, by *Principal, id int64) error {
	var owner string
	err := s.db.QueryRowContext(ctx,
		`SELECT u.name FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`, id).Scan(&owner)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return internal("look up token", err)
	}
	self := by != nil && owner != "" && strings.EqualFold(by.User, owner) && by.Method != MethodProxy
	ev := AuditEvent{Action: "token.revoke", Resource: "user:" + owner, AffectedIDs: []string{strconv.FormatInt(id, 10)}}
	return s.adminOp(ctx, by, self, &ev, func() error {
		res, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
			sqldb.FormatTime(s.now()), id)
		if err != nil {
			return internal("revoke token", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return delivery.Errorf(delivery.ENOTFOUND, "token %d not found or already revoked", id)
		}
		return nil
	})
}

// ListTokens returns the tokens of user ("" = everyone's), newest first.
func (s *Store) ListTokens(ctx context.Context, user string) ([]Token, error) {
	q := `SELECT t.id, u.name, t.name, t.created_at, t.expires_at, t.last_used_at, t.revoked_at
FROM api_tokens t JOIN users u ON u.id = t.user_id`
	var args []any
	if user != "" {
		q += ` WHERE u.name = ?`
		args = append(args, user)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY t.id DESC`, args...)
	if err != nil {
		return nil, internal("list tokens", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var created string
		var exp, used, rev sql.NullString
		if err := rows.Scan(&t.ID, &t.User, &t.Name, &created, &exp, &used, &rev); err != nil {
			return nil, internal("list tokens", err)
		}
		var e1, e2, e3, e4 error
		t.CreatedAt, e1 = sqldb.ParseTime(created)
		t.ExpiresAt, e2 = parseNullTime(exp)
		t.LastUsedAt, e3 = parseNullTime(used)
		t.RevokedAt, e4 = parseNullTime(rev)
		if err := errors.Join(e1, e2, e3, e4); err != nil {
			return nil, internal("list tokens: timestamps", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("list tokens", err)
	}
	return out, nil
}
