package access

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"switchyard/sqldb"
)

// reserveAttempt counts a login attempt of (user, ip) before its password
// is checked and returns how long the pair is still locked out (0 when the
// attempt may go on). The lock check and the count happen in one
// transaction — IMMEDIATE (sqldb's DSN), so it also holds against other
// processes on the same file, and under throttleMu in this one — so that
// of any number of parallel attempts at most MaxFailures per Window reach
// the password check. The attempt that reaches MaxFailures sets the lock
// (Lockout, doubling on each repeat up to MaxLockout; a pair quiet for
// MaxLockout after its last lockout starts over); a successful login then
// clears the pair with resetThrottle, so a correct password refunds its
// own attempt.
func (s *Store) reserveAttempt(ctx context.Context, user, ip string, now time.Time) (time.Duration, error) {
	t := s.opts.LoginThrottle
	user = strings.ToLower(user)
	s.throttleMu.Lock()
	defer s.throttleMu.Unlock()
	if now.Before(s.throttleNow) {
		now = s.throttleNow
	} else {
		s.throttleNow = now
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, internal("count login attempt", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var (
		failures, lockouts int
		windowStart        string
		lockedUntil        sql.NullString
	)
	err = tx.QueryRowContext(ctx,
		`SELECT failures, window_start, lockouts, locked_until FROM login_attempts WHERE user_name = ? AND peer_ip = ?`,
		user, ip).Scan(&failures, &windowStart, &lockouts, &lockedUntil)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, internal("count login attempt", err)
	}
	fresh := errors.Is(err, sql.ErrNoRows)
	if lockedUntil.Valid {
		lu, perr := sqldb.ParseTime(lockedUntil.String)
		if perr != nil {
			return 0, internal("read login attempts", perr)
		}
		if now.Before(lu) {
			return lu.Sub(now), nil
		}
		if now.Sub(lu) >= t.MaxLockout {
			lockouts = 0
		}
	}
	ws, _ := sqldb.ParseTime(windowStart)
	if fresh || now.Sub(ws) >= t.Window {
		failures, ws = 0, now
	}
	failures++
	var until any = lockedUntil
	if failures >= t.MaxFailures {
		lockouts++
		d := t.Lockout << min(lockouts-1, 20)
		if d <= 0 || d > t.MaxLockout {
			d = t.MaxLockout
		}
		until = sqldb.FormatTime(now.Add(d))
		failures, ws = 0, now
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO login_attempts (user_name, peer_ip, failures, window_start, lockouts, locked_until)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (user_name, peer_ip) DO UPDATE SET failures = excluded.failures,
	window_start = excluded.window_start, lockouts = excluded.lockouts, locked_until = excluded.locked_until`,
		user, ip, failures, sqldb.FormatTime(ws), lockouts, until); err != nil {
		return 0, internal("count login attempt", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, internal("count login attempt", err)
	}
	return 0, nil
}

func (s *Store) resetThrottle(ctx context.Context, user, ip string) error {
	if _, err := s.db.ExecContext(ctx,
		`DELETE FROM login_attempts WHERE user_name = ? AND peer_ip = ?`, strings.ToLower(user), ip); err != nil {
		return internal("reset login attempts", err)
	}
	return nil
}
