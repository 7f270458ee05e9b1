package access

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
	"golang.org/x/crypto/bcrypt"

	"switchyard/delivery"
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

// Defaults of Options that the console's configuration shares
// (auth.session_idle, auth.session_absolute and the proxy's headers).
const (
	DefaultSessionIdle       = 30 * time.Minute
	DefaultSessionAbsolute   = 12 * time.Hour
	DefaultProxyUserHeader   = "X-Forwarded-User"
	DefaultProxyGroupsHeader = "X-Forwarded-Groups"
)

// Options configure a Store. The zero value is safe: sessions idle out
// after DefaultSessionIdle and end after DefaultSessionAbsolute, the proxy
// mode is off, logins are throttled with the defaults of ThrottleOptions,
// and events go to an Audit over the same database.
type Options struct {
	SessionIdle     time.Duration // default DefaultSessionIdle
	SessionAbsolute time.Duration // default DefaultSessionAbsolute
	Proxy           ProxyOptions
	LoginThrottle   ThrottleOptions
	Audit           AuditLog // where Store records logins and admin changes; nil = NewAudit(db, Now)
	Now             func() time.Time
}

// ProxyOptions configure the trusted reverse-proxy mode (SSO in front).
type ProxyOptions struct {
	Enabled      bool
	UserHeader   string   // default DefaultProxyUserHeader
	GroupsHeader string   // default DefaultProxyGroupsHeader (comma-separated)
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
	audit AuditLog
	cidrs []netip.Prefix
	// dummyHash is compared against when a user does not exist, so that
	// a wrong user name costs as long as a wrong password and timing does
	// not reveal which accounts exist.
	dummyHash []byte
	// throttleMu serializes the lock check and count of login_attempts in
	// this process (the IMMEDIATE transaction does so across processes),
	// so that parallel logins cannot all pass a stale lock check.
	throttleMu sync.Mutex
	// throttleNow is the latest attempt time the throttle has counted,
	// under throttleMu: an attempt whose time was taken before it waited
	// for the lock is judged at that time, not earlier, so that a lockout
	// another attempt has just set is never reported as longer than it is.
	throttleNow time.Time
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
	def(&opts.SessionIdle, DefaultSessionIdle)
	def(&opts.SessionAbsolute, DefaultSessionAbsolute)
	def(&opts.LoginThrottle.Window, 15*time.Minute)
	def(&opts.LoginThrottle.Lockout, 15*time.Minute)
	def(&opts.LoginThrottle.MaxLockout, 24*time.Hour)
	if opts.LoginThrottle.MaxFailures == 0 {
		opts.LoginThrottle.MaxFailures = 5
	}
	if opts.Proxy.UserHeader == "" {
		opts.Proxy.UserHeader = DefaultProxyUserHeader
	}
	if opts.Proxy.GroupsHeader == "" {
		opts.Proxy.GroupsHeader = DefaultProxyGroupsHeader
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
func (s *Store) Audit() AuditLog { return s.audit }

// ProxyOptions returns the effective proxy options (defaults filled in),
// so the web layer reads the same header names the store expects.
func (s *Store) ProxyOptions() ProxyOptions { return s.opts.Proxy }

// SessionOptions returns the effective idle and absolute session lifetimes.
func (s *Store) SessionOptions() (idle, absolute time.Duration) {
	return s.opts.SessionIdle, s.opts.SessionAbsolute
}

// inTx runs fn in one transaction, committed when fn returns nil; what
// names the operation in an internal error.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return internal(what, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return internal(what, err)
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

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}
