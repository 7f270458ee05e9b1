package access

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"switchyard/delivery"
	"switchyard/sqldb"
)

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
		ok := p == "*" || ResourcePrefixed(p)
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
