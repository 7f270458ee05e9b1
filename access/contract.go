package access

import (
	"context"
	"io"
	"time"
)

// The contracts of the stores behind access. The rest of the console —
// web's middleware and admin pages, cmd/console's wiring and offline
// commands, the redrive engine's audit — uses them, never a store's type,
// so that a PostgreSQL store can be added beside the SQLite one (Store,
// Audit) without touching a caller. accesstest.TestDirectory and
// accesstest.TestAuditLog are the conformance suites every implementation
// runs. Every method that changes something and takes the acting
// principal (by) authorizes it as admin (or as the user acting on their
// own tokens) and records it, allowed or not, in the AuditLog; the
// methods without one are the offline and start-up paths, audited as the
// system. Errors are *delivery.Error codes; an internal failure is
// EINTERNAL with a generic message.

// Authenticator turns a request's credentials into a principal and runs
// the login sessions, with the login throttle.
type Authenticator interface {
	// Authenticate checks, in order, a bearer token (final when present),
	// a session cookie (idle and absolute expiry), and the trusted proxy's
	// headers (only from a trusted peer). Errors: EUNAUTHORIZED, never
	// saying what was wrong.
	Authenticate(ctx context.Context, c Credentials) (*Principal, error)
	// Login checks a password and opens a fresh session; every attempt is
	// counted per (user, peer IP) before the password is checked.
	// Errors: EUNAUTHORIZED (one answer for a wrong user, password or a
	// disabled user), ETOOMANY (Details["retry_after_seconds"]).
	Login(ctx context.Context, user, password, peerAddr, userAgent string) (Session, error)
	// Logout ends the session of a cookie value; an unknown one is fine.
	Logout(ctx context.Context, sessionToken string) error
}

// UserStore keeps the local accounts and what their principals hold.
type UserStore interface {
	// AddUser creates a user bound to role on every resource and tenant
	// (offline). Errors: EINVALID, ECONFLICT.
	AddUser(ctx context.Context, name, password, role string) error
	// EnsureAdmin creates AdminUser on first start (generating a password
	// when none is given) and never touches an existing one.
	EnsureAdmin(ctx context.Context, password string) (generated string, created bool, err error)
	ListUsers(ctx context.Context) ([]User, error)
	// CreateUser creates a user without any binding. Errors:
	// EUNAUTHORIZED, EFORBIDDEN, EINVALID, ECONFLICT.
	CreateUser(ctx context.Context, by *Principal, name, password string) error
	// SetPassword replaces a password and ends the user's sessions.
	// Errors: EUNAUTHORIZED, EFORBIDDEN, EINVALID, ENOTFOUND.
	SetPassword(ctx context.Context, by *Principal, name, password string) error
	// SetDisabled disables (ending the sessions, stopping the tokens) or
	// re-enables a user; nobody disables themselves. Errors:
	// EUNAUTHORIZED, EFORBIDDEN, EINVALID, ENOTFOUND.
	SetDisabled(ctx context.Context, by *Principal, name string, disabled bool) error
	// PrincipalFor is a local or binding-only user's principal with its
	// grants. Errors: ENOTFOUND.
	PrincipalFor(ctx context.Context, user string) (*Principal, error)
	// PrincipalWith is the principal a proxy user with these groups would
	// get. Errors: EINVALID.
	PrincipalWith(ctx context.Context, user string, groups []string) (*Principal, error)
}

// TokenStore keeps the API tokens, as hashes only.
type TokenStore interface {
	// CreateToken issues a token offline; ttl 0 never expires. Errors:
	// EINVALID, ENOTFOUND (no such enabled user).
	CreateToken(ctx context.Context, user, name string, ttl time.Duration) (string, error)
	// IssueToken issues a token for user on behalf of by (an admin, or
	// the user for themselves). Errors: EUNAUTHORIZED, EFORBIDDEN,
	// EINVALID, ENOTFOUND.
	IssueToken(ctx context.Context, by *Principal, user, name string, ttl time.Duration) (string, error)
	// RevokeToken revokes by plaintext (offline). Errors: ENOTFOUND.
	RevokeToken(ctx context.Context, plaintext string) error
	// RevokeTokenID revokes by id (an admin any, a user their own).
	// Errors: EUNAUTHORIZED, EFORBIDDEN, ENOTFOUND (also for another's).
	RevokeTokenID(ctx context.Context, by *Principal, id int64) error
	// ListTokens lists user's tokens ("" = everyone's), newest first.
	ListTokens(ctx context.Context, user string) ([]Token, error)
}

// RoleStore keeps the custom roles admins define, beside the built-in ones.
type RoleStore interface {
	// ListRoles returns the built-in roles, then the custom ones by name.
	ListRoles(ctx context.Context) ([]Role, error)
	// SaveRole creates or replaces a custom role. Errors: EUNAUTHORIZED,
	// EFORBIDDEN, EINVALID.
	SaveRole(ctx context.Context, by *Principal, r Role) error
	// DeleteRole deletes an unbound custom role. Errors: EUNAUTHORIZED,
	// EFORBIDDEN, EINVALID, ENOTFOUND, ECONFLICT.
	DeleteRole(ctx context.Context, by *Principal, name string) error
}

// BindingStore keeps the role bindings: a role for a user or a proxy
// group on resources and tenants.
type BindingStore interface {
	// ListBindings returns every binding in creation order.
	ListBindings(ctx context.Context) ([]Binding, error)
	// AddBinding adds a binding: resources and tenants must be typed ("*"
	// for all), and a subject the console cannot find must be marked as an
	// SSO identity. Errors: EUNAUTHORIZED, EFORBIDDEN, EINVALID.
	AddBinding(ctx context.Context, by *Principal, b Binding) (int64, error)
	// BindingNote is what an admin should know about an accepted binding.
	BindingNote(b Binding) string
	// DeleteBinding deletes a binding. Errors: EUNAUTHORIZED, EFORBIDDEN,
	// ENOTFOUND.
	DeleteBinding(ctx context.Context, by *Principal, id int64) error
}

// Directory is everything about accounts and their authority: the one
// store cmd/console builds and hands, as the narrower interfaces above, to
// whoever needs a part. *Store (SQLite) implements it.
type Directory interface {
	Authenticator
	UserStore
	TokenStore
	RoleStore
	BindingStore
	// ProxyOptions are the effective proxy options (defaults filled in).
	ProxyOptions() ProxyOptions
	// SessionOptions are the effective idle and absolute session lifetimes.
	SessionOptions() (idle, absolute time.Duration)
	// Audit is the log the directory records to.
	Audit() AuditLog
}

// AuditLog is the append-only, hash-chained audit log. *Audit (SQLite)
// implements it.
type AuditLog interface {
	// Append records e (Time from the clock when zero). Errors: EINVALID
	// (no action, an unknown outcome; a keyed chain and another key).
	Append(ctx context.Context, e AuditEvent) error
	// List pages the records matching f, newest first; the int64 is the
	// next f.Before (0 on the last page).
	List(ctx context.Context, f AuditFilter) ([]AuditRecord, int64, error)
	// ExportJSONL writes the records matching f, oldest first, one JSON
	// AuditRecord a line.
	ExportJSONL(ctx context.Context, w io.Writer, f AuditFilter) error
	// Verify recomputes the chain and checks the anchors.
	Verify(ctx context.Context, anchors ...Anchor) (VerifyResult, error)
	// Head is the newest record's anchor; the zero Anchor for an empty log.
	Head(ctx context.Context) (Anchor, error)
	// CheckKey says whether this log may append with its key as the chain
	// stands. Errors: EINVALID naming the key ids.
	CheckKey(ctx context.Context) error
	// KeyID names the audit key, "" when there is none.
	KeyID() string
}

var (
	_ Directory = (*Store)(nil)
	_ AuditLog  = (*Audit)(nil)
)
