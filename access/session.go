package access

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"math"
	"time"

	"golang.org/x/crypto/bcrypt"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// Session is what Login hands to the web layer. Token is the cookie value,
// shown once (only its SHA-256 is stored). ExpiresAt is the absolute
// expiry, the right lifetime for the cookie: the idle expiry is enforced
// on the server and moves with use.
type Session struct {
	ID        string // opaque session id (Principal.SessionID)
	Token     string
	CSRFToken string
	ExpiresAt time.Time
}

// Login checks a user name and password and opens a new session — a fresh
// random one every time, so a session id planted before login is useless.
// Every attempt is audited, success or failure (with the reason, never the
// password). Errors: delivery.EUNAUTHORIZED (wrong name or password, disabled
// user: one answer for all), delivery.ETOOMANY (too many failures from this address
// for this user; Details["retry_after_seconds"]), or an internal error.
func (s *Store) Login(ctx context.Context, user, password, peerAddr, userAgent string) (Session, error) {
	if len(user) > 256 {
		user = user[:256]
	}
	now := s.now()
	ip := peerIP(peerAddr)
	ev := AuditEvent{Actor: user, SourceIP: ip, UserAgent: userAgent, Action: "login", Resource: "user:" + user}
	fail := func(reason string, err error) (Session, error) {
		ev.Outcome, ev.Reason = OutcomeFailure, reason
		ev.Details = map[string]any{"reason": reason}
		if de, ok := asDeliveryError(err); ok && de.Details != nil {
			ev.Details["retry_after_seconds"] = de.Details["retry_after_seconds"]
		}
		if aerr := s.record(ctx, nil, ev); aerr != nil {
			return Session{}, aerr
		}
		return Session{}, err
	}
	// The attempt is counted before its password is checked, in the same
	// transaction that looks at the lock, so that parallel attempts cannot
	// all pass a lock check that none of them has updated yet: at most
	// MaxFailures attempts per window ever reach bcrypt. Success refunds it.
	if wait, err := s.reserveAttempt(ctx, user, ip, now); err != nil {
		return Session{}, err
	} else if wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		return fail("throttled", errorDetails(delivery.ETOOMANY, map[string]any{"retry_after_seconds": secs},
			"too many failed logins; try again in %d seconds", secs))
	}

	var (
		id       int64
		name     string
		hash     string
		disabled bool
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, name, password_hash, disabled FROM users WHERE name = ?`, user).
		Scan(&id, &name, &hash, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		// Same bcrypt cost as a real user, so timing hides which names exist.
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return fail("unknown user", delivery.Errorf(delivery.EUNAUTHORIZED, "invalid user name or password"))
	}
	if err != nil {
		// The reserved attempt stays counted: failing closed is the safe
		// side of an outage.
		return Session{}, internal("look up user", err)
	}
	ev.Actor, ev.Resource = name, "user:"+name
	pwOK := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	if !pwOK || disabled {
		reason := "wrong password"
		if pwOK {
			reason = "user disabled"
		}
		return fail(reason, delivery.Errorf(delivery.EUNAUTHORIZED, "invalid user name or password"))
	}

	if err := s.resetThrottle(ctx, user, ip); err != nil {
		return Session{}, err
	}
	sess, err := s.newSession(ctx, id, now, ip, userAgent)
	if err != nil {
		return Session{}, err
	}
	ev.Method, ev.Outcome = MethodSession, OutcomeSuccess
	ev.Details = map[string]any{"session": sess.ID}
	if err := s.audit.Append(ctx, ev); err != nil {
		return Session{}, err
	}
	return sess, nil
}

func (s *Store) newSession(ctx context.Context, userID int64, now time.Time, ip, userAgent string) (Session, error) {
	tok, err := randomToken(32)
	if err != nil {
		return Session{}, err
	}
	csrf, err := randomToken(32)
	if err != nil {
		return Session{}, err
	}
	idb := make([]byte, 16)
	if _, err := rand.Read(idb); err != nil {
		return Session{}, internal("generate session id", err)
	}
	sess := Session{ID: hex.EncodeToString(idb), Token: tok, CSRFToken: csrf, ExpiresAt: now.Add(s.opts.SessionAbsolute)}
	idle := minTime(now.Add(s.opts.SessionIdle), sess.ExpiresAt)
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	err = s.inTx(ctx, "create session", func(tx *sql.Tx) error {
		// Housekeeping: sessions nobody can use any more.
		nowS := sqldb.FormatTime(now)
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM sessions WHERE absolute_expires_at <= ? OR idle_expires_at <= ?`, nowS, nowS); err != nil {
			return internal("expire sessions", err)
		}
		if _, err := tx.ExecContext(ctx, `
INSERT INTO sessions (id, token_hash, user_id, csrf_token, created_at, last_seen_at, idle_expires_at,
	absolute_expires_at, peer_addr, user_agent)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sess.ID, hashToken(tok), userID, csrf, nowS, nowS, sqldb.FormatTime(idle),
			sqldb.FormatTime(sess.ExpiresAt), ip, userAgent); err != nil {
			return internal("create session", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET last_login_at = ? WHERE id = ?`, nowS, userID); err != nil {
			return internal("record login", err)
		}
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	return sess, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s *Store) checkSession(ctx context.Context, token string) (*Principal, error) {
	h := hashToken(token)
	var (
		id, csrf, name            string
		lastSeen, idleExp, absExp string
		disabled                  bool
		storedHash                string
	)
	err := s.db.QueryRowContext(ctx, `
SELECT s.id, s.token_hash, s.csrf_token, s.last_seen_at, s.idle_expires_at, s.absolute_expires_at, u.name, u.disabled
FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, h).
		Scan(&id, &storedHash, &csrf, &lastSeen, &idleExp, &absExp, &name, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, delivery.Errorf(delivery.EUNAUTHORIZED, "session expired or unknown; log in again")
	}
	if err != nil {
		return nil, internal("look up session", err)
	}
	if disabled || storedHash != h {
		return nil, delivery.Errorf(delivery.EUNAUTHORIZED, "session expired or unknown; log in again")
	}
	now := s.now()
	ls, err1 := sqldb.ParseTime(lastSeen)
	ie, err2 := sqldb.ParseTime(idleExp)
	ae, err3 := sqldb.ParseTime(absExp)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, internal("session "+id+": bad timestamps", err)
	}
	if !now.Before(ie) || !now.Before(ae) {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id); err != nil {
			return nil, internal("expire session", err)
		}
		return nil, delivery.Errorf(delivery.EUNAUTHORIZED, "session expired; log in again")
	}
	// Extending the idle expiry is a write; once a minute is precise enough
	// and keeps page loads from all writing to SQLite.
	if now.Sub(ls) >= time.Minute {
		if _, err := s.db.ExecContext(ctx,
			`UPDATE sessions SET last_seen_at = ?, idle_expires_at = ? WHERE id = ?`,
			sqldb.FormatTime(now), sqldb.FormatTime(minTime(now.Add(s.opts.SessionIdle), ae)), id); err != nil {
			return nil, internal("extend session", err)
		}
	}
	p := &Principal{User: name, Method: MethodSession, SessionID: id, CSRFToken: csrf}
	if p.Grants, err = s.grantsFor(ctx, name, nil); err != nil {
		return nil, err
	}
	return p, nil
}

// Logout ends the session of the cookie value and audits it. Logging out
// of an unknown or expired session succeeds: the outcome is the same.
func (s *Store) Logout(ctx context.Context, sessionToken string) error {
	if sessionToken == "" {
		return nil
	}
	var id, name string
	err := s.db.QueryRowContext(ctx,
		`SELECT s.id, u.name FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`,
		hashToken(sessionToken)).Scan(&id, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return internal("look up session", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id); err != nil {
		return internal("delete session", err)
	}
	return s.audit.Append(ctx, AuditEvent{Actor: name, Method: MethodSession, Action: "logout",
		Resource: "user:" + name, Outcome: OutcomeSuccess, Details: map[string]any{"session": id}})
}

// endSessions deletes every session of a user.
func endSessions(ctx context.Context, tx *sql.Tx, userID int64) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	if err != nil {
		return 0, internal("end sessions", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
