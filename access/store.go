// Package access decides who may do what in the console. Store keeps users,
// sessions, API tokens, roles and role bindings in SQLite and turns a
// request's Credentials into a Principal that carries its Grants; Policy is
// the one pure function that authorizes every request against them. Audit
// is the hash-chained audit log; Masker hides PII in payloads.
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
	"golang.org/x/crypto/bcrypt"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// Limits on credentials. bcrypt reads at most 72 bytes, so a longer
// password would be silently truncated; refusing it is more honest.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 72
	TokenPrefix    = "sy_"
	// AdminUser is the account EnsureAdmin creates on first start.
	AdminUser = "admin"
	// ActorSystem is the audit actor of offline (CLI) operations.
	ActorSystem = "system"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Options configure a Store. The zero value is safe: sessions idle out
// after 30 minutes and end after 12 hours, the proxy mode is off, logins
// are throttled with the defaults of ThrottleOptions, and events go to an
// Audit over the same database.
type Options struct {
	SessionIdle     time.Duration // default 30m
	SessionAbsolute time.Duration // default 12h
	Proxy           ProxyOptions
	LoginThrottle   ThrottleOptions
	Audit           *Audit // where Store records logins and admin changes; nil = NewAudit(db, Now)
	Now             func() time.Time
}

// ProxyOptions configure the trusted reverse-proxy mode (SSO in front).
type ProxyOptions struct {
	Enabled      bool
	UserHeader   string   // default "X-Forwarded-User"
	GroupsHeader string   // default "X-Forwarded-Groups" (comma-separated)
	TrustedCIDRs []string // only requests whose peer address is inside are believed; required when Enabled
}

// ThrottleOptions configure login throttling per (user name, peer IP).
// Every attempt is counted before its password is checked; after
// MaxFailures attempts within Window that did not succeed, logins are
// refused for Lockout without checking the password, however many arrive
// at once; each further lockout of the same pair doubles, up to
// MaxLockout. A successful login resets the pair. The state lives in the
// login_attempts table, so a restart does not reset it.
type ThrottleOptions struct {
	MaxFailures int           // default 5
	Window      time.Duration // default 15m
	Lockout     time.Duration // default 15m
	MaxLockout  time.Duration // default 24h
}

// Store keeps users, sessions, tokens, roles and bindings.
type Store struct {
	db    *sql.DB
	now   func() time.Time
	opts  Options
	audit *Audit
	cidrs []netip.Prefix
	// dummyHash is compared against when a user does not exist, so that
	// a wrong user name costs as long as a wrong password and timing does
	// not reveal which accounts exist.
	dummyHash []byte
	// throttleMu serializes the lock check and count of login_attempts in
	// this process (the IMMEDIATE transaction does so across processes),
	// so that parallel logins cannot all pass a stale lock check.
	throttleMu sync.Mutex
}

// NewStore returns a Store over a database opened by sqldb.Open. Errors:
// delivery.EINVALID for a bad Options (proxy mode without trusted CIDRs, a CIDR
// that does not parse, negative durations).
func NewStore(db *sql.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, delivery.Errorf(delivery.EINVALID, "access: no database")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SessionIdle < 0 || opts.SessionAbsolute < 0 || opts.LoginThrottle.Window < 0 ||
		opts.LoginThrottle.Lockout < 0 || opts.LoginThrottle.MaxLockout < 0 || opts.LoginThrottle.MaxFailures < 0 {
		return nil, delivery.Errorf(delivery.EINVALID, "access: durations and limits must not be negative")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.SessionIdle, 30*time.Minute)
	def(&opts.SessionAbsolute, 12*time.Hour)
	def(&opts.LoginThrottle.Window, 15*time.Minute)
	def(&opts.LoginThrottle.Lockout, 15*time.Minute)
	def(&opts.LoginThrottle.MaxLockout, 24*time.Hour)
	if opts.LoginThrottle.MaxFailures == 0 {
		opts.LoginThrottle.MaxFailures = 5
	}
	if opts.Proxy.UserHeader == "" {
		opts.Proxy.UserHeader = "X-Forwarded-User"
	}
	if opts.Proxy.GroupsHeader == "" {
		opts.Proxy.GroupsHeader = "X-Forwarded-Groups"
	}
	s := &Store{db: db, now: opts.Now, opts: opts, audit: opts.Audit}
	if opts.Proxy.Enabled {
		if len(opts.Proxy.TrustedCIDRs) == 0 {
			return nil, delivery.Errorf(delivery.EINVALID, "access: proxy mode needs at least one trusted CIDR")
		}
		for _, c := range opts.Proxy.TrustedCIDRs {
			p, err := netip.ParsePrefix(strings.TrimSpace(c))
			if err != nil {
				return nil, delivery.Errorf(delivery.EINVALID, "access: trusted proxy CIDR %q does not parse", c)
			}
			s.cidrs = append(s.cidrs, p.Masked())
		}
	}
	if s.audit == nil {
		a, err := NewAudit(db, opts.Now)
		if err != nil {
			return nil, err
		}
		s.audit = a
	}
	h, err := bcrypt.GenerateFromPassword([]byte("not-a-real-password"), bcrypt.DefaultCost)
	if err != nil {
		return nil, internal("access: dummy hash", err)
	}
	s.dummyHash = h
	return s, nil
}

// Audit returns the audit log the store writes to.
func (s *Store) Audit() *Audit { return s.audit }

// ProxyOptions returns the effective proxy options (defaults filled in),
// so the web layer reads the same header names the store expects.
func (s *Store) ProxyOptions() ProxyOptions { return s.opts.Proxy }

// SessionOptions returns the effective idle and absolute session lifetimes.
func (s *Store) SessionOptions() (idle, absolute time.Duration) {
	return s.opts.SessionIdle, s.opts.SessionAbsolute
}

func validateName(name string) error {
	if !nameRE.MatchString(name) {
		return delivery.Errorf(delivery.EINVALID, "user name must be 1-64 characters of letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
	}
	return nil
}

func validatePassword(pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return delivery.Errorf(delivery.EINVALID, "password must be %d to %d bytes long", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// record appends an audit event. It returns the append error so that
// callers fail closed: an operation whose record cannot be written reports
// an internal error.
func (s *Store) record(ctx context.Context, by *Principal, e AuditEvent) error {
	if by != nil {
		e.Actor, e.Method = by.User, by.Method
	} else if e.Actor == "" {
		e.Actor, e.Method = ActorSystem, MethodCLI
	}
	return s.audit.Append(ctx, e)
}

// insertUser adds the user row; authority comes from bindings, so the
// legacy users.role column is left empty.
func insertUser(ctx context.Context, tx *sql.Tx, name, password string, now time.Time) (int64, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return 0, internal("hash password", err)
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO users (name, password_hash, role, created_at) VALUES (?, ?, '', ?)`,
		name, string(hash), sqldb.FormatTime(now))
	if isUniqueViolation(err) {
		return 0, delivery.Errorf(delivery.ECONFLICT, "user %q already exists", name)
	}
	if err != nil {
		return 0, internal("add user", err)
	}
	return res.LastInsertId()
}

// AddUser creates a user and binds role to it on every resource and tenant;
// it is the offline path of `console user add` and EnsureAdmin, audited as
// the system. Errors: delivery.EINVALID (name, password length, unknown role),
// delivery.ECONFLICT (the name exists).
func (s *Store) AddUser(ctx context.Context, name, password, role string) error {
	if err := validateName(name); err != nil {
		return err
	}
	if err := validatePassword(password); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return internal("add user", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	canonRole, err := roleExists(ctx, tx, role)
	if err != nil {
		return err
	}
	now := s.now()
	if _, err := insertUser(ctx, tx, name, password, now); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO role_bindings (subject, role, resources, tenants, created_at) VALUES (?, ?, '["*"]', '["*"]', ?)`,
		"user:"+name, canonRole, sqldb.FormatTime(now)); err != nil {
		return internal("bind role", err)
	}
	if err := tx.Commit(); err != nil {
		return internal("add user", err)
	}
	return s.record(ctx, nil, AuditEvent{Action: "user.create", Resource: "user:" + name,
		AffectedIDs: []string{name}, Outcome: OutcomeSuccess, Details: map[string]any{"role": canonRole}})
}

// EnsureAdmin creates the "admin" user on first start and does nothing once
// it exists (an existing password is never reset). An empty password makes
// it generate a random one, returned so that main can print it once; it is
// stored only as a hash.
func (s *Store) EnsureAdmin(ctx context.Context, password string) (generated string, created bool, err error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE name = ?`, AdminUser).Scan(&n); err != nil {
		return "", false, internal("look up admin", err)
	}
	if n > 0 {
		return "", false, nil
	}
	if password == "" {
		if password, err = randomPassword(20); err != nil {
			return "", false, err
		}
		generated = password
	}
	err = s.AddUser(ctx, AdminUser, password, RoleAdmin)
	if delivery.ErrorCode(err) == delivery.ECONFLICT {
		return "", false, nil // another instance won the race
	}
	if err != nil {
		return "", false, err
	}
	return generated, true, nil
}

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

func hashToken(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", internal("generate random token", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// randomPassword returns n characters from an alphabet without look-alikes
// (no 0/O, 1/l/I), drawn without modulo bias.
func randomPassword(n int) (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	out := make([]byte, 0, n)
	buf := make([]byte, 1)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", internal("generate password", err)
		}
		// 256 - 256%57 = 228: reject the tail that would bias the first letters.
		if int(buf[0]) >= 256-256%len(alphabet) {
			continue
		}
		out = append(out, alphabet[int(buf[0])%len(alphabet)])
	}
	return string(out), nil
}

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

// GeneratePassword returns a random 20-character password for a new user.
func GeneratePassword() (string, error) { return randomPassword(20) }
