package access

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// Credentials is everything a request may authenticate with.
type Credentials struct {
	Authorization string // the Authorization header ("Bearer sy_…"); Basic is not accepted
	SessionToken  string // the session cookie's value
	PeerAddr      string // the TCP peer, NOT X-Forwarded-For
	ProxyUser     string // value of ProxyOptions.UserHeader
	ProxyGroups   string // value of ProxyOptions.GroupsHeader
	UserAgent     string
}

// badCredentials is the one answer to any wrong user, password or token.
func badCredentials() error { return delivery.Errorf(delivery.EUNAUTHORIZED, "invalid credentials") }

// Authenticate turns a request's credentials into a Principal with its
// grants. In order: an Authorization header must be a valid "Bearer sy_…"
// token (not expired, not revoked, its user enabled; last_used_at is
// recorded) and is final when present; a session cookie must name a live
// session (idle and absolute expiry enforced, idle expiry extended at most
// once a minute); the proxy headers count only when proxy mode is on and
// PeerAddr is inside a trusted CIDR — from anyone else they are ignored.
// Errors: delivery.EUNAUTHORIZED (deliberately without saying what was wrong), or
// an internal error when the store fails.
func (s *Store) Authenticate(ctx context.Context, c Credentials) (*Principal, error) {
	if h := strings.TrimSpace(c.Authorization); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return nil, delivery.Errorf(delivery.EUNAUTHORIZED, "unsupported authorization scheme")
		}
		return s.checkToken(ctx, strings.TrimSpace(cred))
	}
	if c.SessionToken != "" {
		p, err := s.checkSession(ctx, c.SessionToken)
		if err == nil || delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
			return p, err
		}
		// A stale cookie must not block single sign-on through the proxy.
		if !s.proxyTrusted(c.PeerAddr) || strings.TrimSpace(c.ProxyUser) == "" {
			return nil, err
		}
	}
	if s.proxyTrusted(c.PeerAddr) && strings.TrimSpace(c.ProxyUser) != "" {
		return s.proxyPrincipal(ctx, c.ProxyUser, c.ProxyGroups)
	}
	return nil, delivery.Errorf(delivery.EUNAUTHORIZED, "authentication required")
}

// peerIP extracts the IP of "ip", "ip:port" or "[ip]:port"; "" when it is
// none of these.
func peerIP(addr string) string {
	addr = strings.TrimSpace(addr)
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	ip, err := netip.ParseAddr(strings.Trim(addr, "[]"))
	if err != nil {
		return ""
	}
	return ip.Unmap().WithZone("").String()
}

func (s *Store) proxyTrusted(peer string) bool {
	if !s.opts.Proxy.Enabled {
		return false
	}
	ip, err := netip.ParseAddr(peerIP(peer))
	if err != nil {
		return false
	}
	for _, p := range s.cidrs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseGroups splits the proxy's comma-separated groups, dropping blanks,
// duplicates and anything that is not a plausible group name.
func parseGroups(h string) []string {
	var out []string
	seen := map[string]bool{}
	for _, g := range strings.Split(h, ",") {
		g = strings.TrimSpace(g)
		if g == "" || len(g) > 128 || strings.ContainsAny(g, " \t\r\n") || seen[strings.ToLower(g)] {
			continue
		}
		seen[strings.ToLower(g)] = true
		out = append(out, g)
		if len(out) == 100 {
			break
		}
	}
	return out
}

func (s *Store) proxyPrincipal(ctx context.Context, user, groups string) (*Principal, error) {
	user = strings.TrimSpace(user)
	if validateName(user) != nil {
		return nil, badCredentials()
	}
	// A local account of the same name that an admin disabled stays
	// disabled behind the proxy too.
	var disabled bool
	err := s.db.QueryRowContext(ctx, `SELECT disabled FROM users WHERE name = ?`, user).Scan(&disabled)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, internal("look up proxy user", err)
	}
	if disabled {
		return nil, badCredentials()
	}
	p := &Principal{User: user, Groups: parseGroups(groups), Method: MethodProxy}
	if p.Grants, err = s.grantsFor(ctx, p.User, p.Groups); err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Store) checkToken(ctx context.Context, token string) (*Principal, error) {
	if !strings.HasPrefix(token, TokenPrefix) {
		return nil, badCredentials()
	}
	h := hashToken(token)
	var (
		id               int64
		stored, name     string
		expires, revoked sql.NullString
		disabled         bool
	)
	err := s.db.QueryRowContext(ctx, `
SELECT t.id, t.token_hash, t.expires_at, t.revoked_at, u.name, u.disabled
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = ?`, h).Scan(&id, &stored, &expires, &revoked, &name, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, badCredentials()
	}
	if err != nil {
		return nil, internal("look up token", err)
	}
	// The lookup went through an index; compare again in constant time so
	// the decision itself does not depend on early-exit string compares.
	if subtle.ConstantTimeCompare([]byte(stored), []byte(h)) != 1 || revoked.Valid || disabled {
		return nil, badCredentials()
	}
	now := s.now()
	if expires.Valid {
		exp, err := sqldb.ParseTime(expires.String)
		if err != nil {
			return nil, internal(fmt.Sprintf("token %d: bad expires_at", id), err)
		}
		if !now.Before(exp) {
			return nil, delivery.Errorf(delivery.EUNAUTHORIZED, "token expired")
		}
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`,
		sqldb.FormatTime(now), id); err != nil {
		return nil, internal("record token use", err)
	}
	p := &Principal{User: name, Method: MethodToken}
	if p.Grants, err = s.grantsFor(ctx, name, nil); err != nil {
		return nil, err
	}
	return p, nil
}
