package access

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// adminResource is the resource every user, token, role and binding change
// is authorized on.
var adminResource = Res("console:admin")

// adminOp authorizes by for the admin action (or allows it when self is
// true: a user acting on their own tokens), runs fn, and audits the result:
// denied, failure (with the safe message as reason) or success. A success
// whose audit record cannot be written returns the audit error.
func (s *Store) adminOp(ctx context.Context, by *Principal, self bool, ev *AuditEvent, fn func() error) error {
	if by == nil {
		return delivery.Errorf(delivery.EUNAUTHORIZED, "authentication required")
	}
	if !self {
		if err := (Policy{}).Authorize(by, ActionAdmin, adminResource); err != nil {
			ev.Outcome, ev.Reason = OutcomeDenied, delivery.ErrorMessage(err)
			if aerr := s.record(ctx, by, *ev); aerr != nil {
				return aerr
			}
			return err
		}
	}
	err := fn()
	if err != nil {
		ev.Outcome, ev.Reason = OutcomeFailure, delivery.ErrorMessage(err)
	} else {
		ev.Outcome = OutcomeSuccess
	}
	if aerr := s.record(ctx, by, *ev); aerr != nil && err == nil {
		return aerr
	}
	return err
}

// User is a local account as the admin pages show it.
type User struct {
	ID        int64
	Name      string
	CreatedAt time.Time
	Disabled  bool
	LastLogin *time.Time
}

// ListUsers returns every local user by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, name, created_at, disabled, last_login_at FROM users ORDER BY name COLLATE NOCASE`)
	if err != nil {
		return nil, internal("list users", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var created string
		var last sql.NullString
		if err := rows.Scan(&u.ID, &u.Name, &created, &u.Disabled, &last); err != nil {
			return nil, internal("list users", err)
		}
		if u.CreatedAt, err = sqldb.ParseTime(created); err != nil {
			return nil, internal("list users: created_at", err)
		}
		if u.LastLogin, err = parseNullTime(last); err != nil {
			return nil, internal("list users: last_login_at", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("list users", err)
	}
	return out, nil
}

func parseNullTime(ns sql.NullString) (*time.Time, error) {
	if !ns.Valid {
		return nil, nil
	}
	t, err := sqldb.ParseTime(ns.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateUser creates a user without any binding (they can log in and do
// nothing until an admin binds a role). Errors: delivery.EUNAUTHORIZED, delivery.EFORBIDDEN,
// delivery.EINVALID, delivery.ECONFLICT.
func (s *Store) CreateUser(ctx context.Context, by *Principal, name, password string) error {
	ev := AuditEvent{Action: "user.create", Resource: "user:" + name, AffectedIDs: []string{name}}
	return s.adminOp(ctx, by, false, &ev, func() error {
		if err := validateName(name); err != nil {
			return err
		}
		if err := validatePassword(password); err != nil {
			return err
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return internal("create user", err)
		}
		defer tx.Rollback() //nolint:errcheck // no-op after Commit
		if _, err := insertUser(ctx, tx, name, password, s.now()); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return internal("create user", err)
		}
		return nil
	})
}

func userID(ctx context.Context, q querier, name string) (int64, string, error) {
	var id int64
	var canon string
	err := q.QueryRowContext(ctx, `SELECT id, name FROM users WHERE name = ?`, name).Scan(&id, &canon)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", delivery.Errorf(delivery.ENOTFOUND, "user %q not found", name)
	}
	if err != nil {
		return 0, "", internal("look up user", err)
	}
	return id, canon, nil
}

// SetPassword replaces a user's password and ends all their sessions.
// Errors: delivery.EUNAUTHORIZED, delivery.EFORBIDDEN, delivery.EINVALID, delivery.ENOTFOUND.
func (s *Store) SetPassword(ctx context.Context, by *Principal, name, password string) error {
	ev := AuditEvent{Action: "user.password", Resource: "user:" + name, AffectedIDs: []string{name}}
	return s.adminOp(ctx, by, false, &ev, func() error {
		if err := validatePassword(password); err != nil {
			return err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err != nil {
			return internal("hash password", err)
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return internal("set password", err)
		}
		defer tx.Rollback() //nolint:errcheck // no-op after Commit
		id, _, err := userID(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, string(hash), id); err != nil {
			return internal("set password", err)
		}
		n, err := endSessions(ctx, tx, id)
		if err != nil {
			return err
		}
		ev.Details = map[string]any{"sessions_ended": n}
		if err := tx.Commit(); err != nil {
			return internal("set password", err)
		}
		return nil
	})
}

// SetDisabled disables or re-enables a user. Disabling ends their sessions;
// their tokens stop working while disabled. An admin cannot disable their
// own account (that is how the last admin locks everyone out). Errors:
// delivery.EUNAUTHORIZED, delivery.EFORBIDDEN, delivery.EINVALID, delivery.ENOTFOUND.
func (s *Store) SetDisabled(ctx context.Context, by *Principal, name string, disabled bool) error {
	action := "user.enable"
	if disabled {
		action = "user.disable"
	}
	ev := AuditEvent{Action: action, Resource: "user:" + name, AffectedIDs: []string{name}}
	return s.adminOp(ctx, by, false, &ev, func() error {
		if disabled && strings.EqualFold(by.User, name) {
			return delivery.Errorf(delivery.EINVALID, "you cannot disable your own account")
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return internal("disable user", err)
		}
		defer tx.Rollback() //nolint:errcheck // no-op after Commit
		id, _, err := userID(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET disabled = ? WHERE id = ?`, disabled, id); err != nil {
			return internal("disable user", err)
		}
		if disabled {
			if _, err := endSessions(ctx, tx, id); err != nil {
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return internal("disable user", err)
		}
		return nil
	})
}

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

// Role is a named set of actions. Built-in roles cannot be changed.
type Role struct {
	Name    string
	Actions []Action
	BuiltIn bool
}

var roleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// roleExists returns the canonical name of a built-in or custom role.
func roleExists(ctx context.Context, q querier, role string) (string, error) {
	if _, ok := BuiltInRole(role); ok {
		return strings.ToLower(role), nil
	}
	var name string
	err := q.QueryRowContext(ctx, `SELECT name FROM roles WHERE name = ?`, role).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", delivery.Errorf(delivery.EINVALID, "unknown role %q", role)
	}
	if err != nil {
		return "", internal("look up role", err)
	}
	return name, nil
}

// customRoles reads every custom role's actions, keyed by lower-case name.
func customRoles(ctx context.Context, q querier) (map[string]Role, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, actions FROM roles`)
	if err != nil {
		return nil, internal("read roles", err)
	}
	defer rows.Close()
	out := map[string]Role{}
	for rows.Next() {
		var r Role
		var acts string
		if err := rows.Scan(&r.Name, &acts); err != nil {
			return nil, internal("read roles", err)
		}
		if err := json.Unmarshal([]byte(acts), &r.Actions); err != nil {
			return nil, internal("role "+r.Name+": actions", err)
		}
		out[strings.ToLower(r.Name)] = r
	}
	if err := rows.Err(); err != nil {
		return nil, internal("read roles", err)
	}
	return out, nil
}

// ListRoles returns the built-in roles, then the custom ones by name.
func (s *Store) ListRoles(ctx context.Context) ([]Role, error) {
	var out []Role
	for _, n := range Roles() {
		acts, _ := BuiltInRole(n)
		out = append(out, Role{Name: n, Actions: acts, BuiltIn: true})
	}
	custom, err := customRoles(ctx, s.db)
	if err != nil {
		return nil, err
	}
	var cs []Role
	for _, r := range custom {
		cs = append(cs, r)
	}
	sort.Slice(cs, func(i, j int) bool { return strings.ToLower(cs[i].Name) < strings.ToLower(cs[j].Name) })
	return append(out, cs...), nil
}

// SaveRole creates or replaces a custom role. Its actions, in the order of
// Actions(), take effect on the next request of everyone bound to it.
// Errors: delivery.EUNAUTHORIZED, delivery.EFORBIDDEN, delivery.EINVALID (built-in name, bad name,
// no or unknown actions).
func (s *Store) SaveRole(ctx context.Context, by *Principal, r Role) error {
	ev := AuditEvent{Action: "role.save", Resource: "role:" + r.Name, AffectedIDs: []string{r.Name}}
	return s.adminOp(ctx, by, false, &ev, func() error {
		if !roleNameRE.MatchString(r.Name) {
			return delivery.Errorf(delivery.EINVALID, "role name must be 1-64 letters, digits, '.', '_' or '-'")
		}
		if _, ok := BuiltInRole(r.Name); ok {
			return delivery.Errorf(delivery.EINVALID, "built-in role %q cannot be changed", r.Name)
		}
		if len(r.Actions) == 0 {
			return delivery.Errorf(delivery.EINVALID, "a role needs at least one action")
		}
		var acts []Action
		for _, a := range Actions() { // canonical order, no duplicates
			if slices.Contains(r.Actions, a) {
				acts = append(acts, a)
			}
		}
		for _, a := range r.Actions {
			if !ValidAction(a) {
				return delivery.Errorf(delivery.EINVALID, "unknown action %q", a)
			}
		}
		b, _ := json.Marshal(acts)
		ev.Details = map[string]any{"actions": acts}
		now := sqldb.FormatTime(s.now())
		if _, err := s.db.ExecContext(ctx, `
INSERT INTO roles (name, actions, created_at, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET actions = excluded.actions, updated_at = excluded.updated_at`,
			r.Name, string(b), now, now); err != nil {
			return internal("save role", err)
		}
		return nil
	})
}

// DeleteRole deletes a custom role. Errors: delivery.EUNAUTHORIZED, delivery.EFORBIDDEN,
// delivery.EINVALID (built-in), delivery.ENOTFOUND, delivery.ECONFLICT (still bound).
func (s *Store) DeleteRole(ctx context.Context, by *Principal, name string) error {
	ev := AuditEvent{Action: "role.delete", Resource: "role:" + name, AffectedIDs: []string{name}}
	return s.adminOp(ctx, by, false, &ev, func() error {
		if _, ok := BuiltInRole(name); ok {
			return delivery.Errorf(delivery.EINVALID, "built-in role %q cannot be deleted", name)
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return internal("delete role", err)
		}
		defer tx.Rollback() //nolint:errcheck // no-op after Commit
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM role_bindings WHERE role = ?`, name).Scan(&n); err != nil {
			return internal("delete role", err)
		}
		if n > 0 {
			return delivery.Errorf(delivery.ECONFLICT, "role %q is used by %d binding(s); delete them first", name, n)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM roles WHERE name = ?`, name)
		if err != nil {
			return internal("delete role", err)
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return delivery.Errorf(delivery.ENOTFOUND, "role %q not found", name)
		}
		if err := tx.Commit(); err != nil {
			return internal("delete role", err)
		}
		return nil
	})
}

// Binding gives a role to a user or a proxy group on resources (glob
// patterns, see MatchResource) and tenants ("*" = all).
type Binding struct {
	ID        int64
	Subject   string // user:NAME | group:NAME
	Role      string
	Resources []string
	Tenants   []string
	CreatedAt time.Time
	// Proxy is what the caller of AddBinding says about a subject the
	// console cannot check: that it is an identity of the trusted reverse
	// proxy (SSO) — a group, or a user without a local account. AddBinding
	// refuses such subjects without it, so that a typo does not silently
	// bind nobody (or, later, somebody). It is not stored.
	Proxy bool `json:"-"`
}

// ListBindings returns every binding in creation order.
func (s *Store) ListBindings(ctx context.Context) ([]Binding, error) {
	return s.bindings(ctx, `SELECT id, subject, role, resources, tenants, created_at FROM role_bindings ORDER BY id`)
}

func (s *Store) bindings(ctx context.Context, q string, args ...any) ([]Binding, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, internal("read bindings", err)
	}
	defer rows.Close()
	var out []Binding
	for rows.Next() {
		var b Binding
		var res, ten, created string
		if err := rows.Scan(&b.ID, &b.Subject, &b.Role, &res, &ten, &created); err != nil {
			return nil, internal("read bindings", err)
		}
		e1 := json.Unmarshal([]byte(res), &b.Resources)
		e2 := json.Unmarshal([]byte(ten), &b.Tenants)
		var e3 error
		b.CreatedAt, e3 = sqldb.ParseTime(created)
		if err := errors.Join(e1, e2, e3); err != nil {
			return nil, internal(fmt.Sprintf("binding %d", b.ID), err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("read bindings", err)
	}
	return out, nil
}

func validGroup(g string) bool {
	return g != "" && len(g) <= 128 && !strings.ContainsAny(g, " \t\r\n,")
}

// validateBinding checks and normalizes b's subject, patterns and tenants.
func validateBinding(b *Binding) error {
	kind, name, _ := strings.Cut(b.Subject, ":")
	switch kind {
	case "user":
		if validateName(name) != nil {
			return delivery.Errorf(delivery.EINVALID, "subject %q: not a valid user name", b.Subject)
		}
	case "group":
		if !validGroup(name) {
			return delivery.Errorf(delivery.EINVALID, "subject %q: not a valid group name", b.Subject)
		}
	default:
		return delivery.Errorf(delivery.EINVALID, "subject must be user:NAME or group:NAME")
	}
	// Empty never means everything: a form left blank must not grant a
	// role on every resource or tenant. "*" has to be typed.
	if len(b.Resources) == 0 {
		return delivery.Errorf(delivery.EINVALID, "resources must not be empty: list resource patterns, or type * to bind the role on every resource")
	}
	var res []string
	for _, p := range b.Resources {
		p = strings.TrimSpace(p)
		ok := p == "*" || strings.HasPrefix(p, "kafka:") || strings.HasPrefix(p, "rabbitmq:") || strings.HasPrefix(p, "console:")
		if !ok || len(p) > 256 || strings.ContainsAny(p, " \t\r\n") {
			return delivery.Errorf(delivery.EINVALID, "resource pattern %q must be \"*\" or start with kafka:, rabbitmq: or console:, without spaces", p)
		}
		if !slices.Contains(res, p) {
			res = append(res, p)
		}
	}
	b.Resources = res
	if len(b.Tenants) == 0 {
		return delivery.Errorf(delivery.EINVALID, "tenants must not be empty: list tenants, or type * to bind the role for every tenant")
	}
	var ten []string
	for _, t := range b.Tenants {
		t = strings.TrimSpace(t)
		if !validGroup(t) {
			return delivery.Errorf(delivery.EINVALID, "tenant %q must be 1-128 characters without spaces or commas", t)
		}
		if t == "*" {
			ten = []string{"*"}
			break
		}
		if !slices.Contains(ten, t) {
			ten = append(ten, t)
		}
	}
	b.Tenants = ten
	return nil
}

// checkSubject refuses a binding whose subject the console cannot find:
// a user:NAME without a local account, or any group:NAME (groups exist
// only in the proxy's header), unless b.Proxy says it is an SSO identity.
func (s *Store) checkSubject(ctx context.Context, b Binding) error {
	kind, name, _ := strings.Cut(b.Subject, ":")
	switch kind {
	case "user":
		_, _, err := userID(ctx, s.db, name)
		if delivery.ErrorCode(err) != delivery.ENOTFOUND {
			return err
		}
		if !b.Proxy {
			return delivery.Errorf(delivery.EINVALID, "there is no user %q: create the user first, or, for a user who signs in only through the SSO proxy, mark the subject as an SSO identity", name)
		}
	case "group":
		if b.Proxy {
			return nil
		}
		if !s.opts.Proxy.Enabled {
			return delivery.Errorf(delivery.EINVALID, "group %q: groups come only from the trusted SSO proxy, and the proxy mode (auth.proxy) is off, so this binding could never match anyone; mark it as an SSO group to keep it for when the proxy is on", name)
		}
		return delivery.Errorf(delivery.EINVALID, "group %q cannot be checked: groups come from the SSO proxy's %s header; mark it as an SSO group to confirm the name", name, s.opts.Proxy.GroupsHeader)
	}
	return nil
}

// BindingNote is what an admin should know about a binding AddBinding
// accepted: "" normally; for an SSO subject while the proxy mode is off,
// that it matches nobody until auth.proxy is enabled.
func (s *Store) BindingNote(b Binding) string {
	if !b.Proxy || s.opts.Proxy.Enabled {
		return ""
	}
	return "The trusted-proxy mode (auth.proxy) is off, so " + b.Subject + " matches nobody until it is enabled."
}

// AddBinding adds a binding and returns its id. Resources and Tenants must
// be given ("*" for all: empty is refused, never taken as everything). A
// user:NAME subject must be a local user and a group:NAME subject is
// refused, unless b.Proxy marks the subject as an SSO identity. Errors:
// delivery.EUNAUTHORIZED, delivery.EFORBIDDEN, delivery.EINVALID (subject, unknown user or unconfirmed
// group, role, patterns, tenants).
func (s *Store) AddBinding(ctx context.Context, by *Principal, b Binding) (int64, error) {
	var id int64
	ev := AuditEvent{Action: "binding.add", Resource: b.Subject}
	err := s.adminOp(ctx, by, false, &ev, func() error {
		if err := validateBinding(&b); err != nil {
			return err
		}
		if err := s.checkSubject(ctx, b); err != nil {
			return err
		}
		role, err := roleExists(ctx, s.db, b.Role)
		if err != nil {
			return err
		}
		res, _ := json.Marshal(b.Resources)
		ten, _ := json.Marshal(b.Tenants)
		r, err := s.db.ExecContext(ctx,
			`INSERT INTO role_bindings (subject, role, resources, tenants, created_at) VALUES (?, ?, ?, ?, ?)`,
			b.Subject, role, string(res), string(ten), sqldb.FormatTime(s.now()))
		if err != nil {
			return internal("add binding", err)
		}
		id, _ = r.LastInsertId()
		ev.AffectedIDs = []string{strconv.FormatInt(id, 10)}
		ev.Details = map[string]any{"role": role, "resources": b.Resources, "tenants": b.Tenants}
		if b.Proxy {
			ev.Details["proxy"] = true
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// DeleteBinding deletes a binding. Errors: delivery.EUNAUTHORIZED, delivery.EFORBIDDEN,
// delivery.ENOTFOUND.
func (s *Store) DeleteBinding(ctx context.Context, by *Principal, id int64) error {
	ev := AuditEvent{Action: "binding.delete", AffectedIDs: []string{strconv.FormatInt(id, 10)}}
	return s.adminOp(ctx, by, false, &ev, func() error {
		var subject, role, res, ten string
		err := s.db.QueryRowContext(ctx,
			`DELETE FROM role_bindings WHERE id = ? RETURNING subject, role, resources, tenants`, id).
			Scan(&subject, &role, &res, &ten)
		if errors.Is(err, sql.ErrNoRows) {
			return delivery.Errorf(delivery.ENOTFOUND, "binding %d not found", id)
		}
		if err != nil {
			return internal("delete binding", err)
		}
		ev.Resource = subject
		ev.Details = map[string]any{"role": role, "resources": json.RawMessage(res), "tenants": json.RawMessage(ten)}
		return nil
	})
}

// grantsFor resolves the bindings of user and groups into grants.
func (s *Store) grantsFor(ctx context.Context, user string, groups []string) ([]Grant, error) {
	subjects := []any{"user:" + user}
	for _, g := range groups {
		subjects = append(subjects, "group:"+g)
	}
	q := `SELECT id, subject, role, resources, tenants, created_at FROM role_bindings WHERE subject IN (?` +
		strings.Repeat(", ?", len(subjects)-1) + `) ORDER BY id`
	bs, err := s.bindings(ctx, q, subjects...)
	if err != nil || len(bs) == 0 {
		return nil, err
	}
	var custom map[string]Role
	grants := make([]Grant, 0, len(bs))
	for _, b := range bs {
		acts, ok := BuiltInRole(b.Role)
		if !ok {
			if custom == nil {
				if custom, err = customRoles(ctx, s.db); err != nil {
					return nil, err
				}
			}
			acts = custom[strings.ToLower(b.Role)].Actions // a vanished role grants nothing
		}
		grants = append(grants, Grant{Binding: b.ID, Subject: b.Subject, Role: b.Role,
			Actions: acts, Resources: b.Resources, Tenants: b.Tenants})
	}
	return grants, nil
}

// PrincipalFor returns the principal of a local user, or of a user known
// only through bindings (a proxy user), with their grants, for the admin
// "what can this user do" check. Errors: delivery.ENOTFOUND.
func (s *Store) PrincipalFor(ctx context.Context, user string) (*Principal, error) {
	_, canon, err := userID(ctx, s.db, user)
	if delivery.ErrorCode(err) == delivery.ENOTFOUND {
		var n int
		if qerr := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM role_bindings WHERE subject = ?`, "user:"+user).Scan(&n); qerr != nil {
			return nil, internal("look up bindings", qerr)
		}
		if n == 0 {
			return nil, err
		}
		canon, err = user, nil
	}
	if err != nil {
		return nil, err
	}
	p := &Principal{User: canon}
	if p.Grants, err = s.grantsFor(ctx, canon, nil); err != nil {
		return nil, err
	}
	return p, nil
}

// PrincipalWith returns the principal a proxy user with these groups would
// get (the user need not exist locally), for the admin check of SSO users.
// Errors: delivery.EINVALID (bad user name).
func (s *Store) PrincipalWith(ctx context.Context, user string, groups []string) (*Principal, error) {
	if err := validateName(user); err != nil {
		return nil, err
	}
	p := &Principal{User: user, Groups: parseGroups(strings.Join(groups, ",")), Method: MethodProxy}
	var err error
	if p.Grants, err = s.grantsFor(ctx, user, p.Groups); err != nil {
		return nil, err
	}
	return p, nil
}
