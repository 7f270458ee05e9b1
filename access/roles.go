package access

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"sort"
	"strings"

	"switchyard/delivery"
	"switchyard/sqldb"
)

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
		return s.inTx(ctx, "delete role", func(tx *sql.Tx) error {
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
			return nil
		})
	})
}
