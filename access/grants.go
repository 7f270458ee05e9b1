package access

import (
	"context"
	"strings"

	"switchyard/delivery"
)

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
