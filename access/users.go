package access

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"switchyard/delivery"
	"switchyard/sqldb"
)

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

// CreateUser creates a user without any binding (they can log in and do
// nothing until an admin binds a role). Errors: delivery.EUNAUTHORIZED, delivery.EFORBIDDEN,
// delivery.EINVALID, delivery.ECONFLICT.
func (s *Store) CreateUser(ctx context.Context, by *Principal, name, password string) error {
	ev := AuditEvent{Action: "user.create", Resource: "user:" + name, AffectedIDs: []string{name}}
	return s.adminOp(ctx, by, false, &ev, func() error {
		if err := validateUser(name, password); err != nil {
			return err
		}
		return s.inTx(ctx, "create user", func(tx *sql.Tx) error {
			_, err := insertUser(ctx, tx, name, password, s.now())
			return err
		})
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
		return s.inTx(ctx, "set password", func(tx *sql.Tx) error {
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
			return nil
		})
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
		return s.inTx(ctx, "disable user", func(tx *sql.Tx) error {
			id, _, err := userID(ctx, tx, name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE users SET disabled = ? WHERE id = ?`, disabled, id); err != nil {
				return internal("disable user", err)
			}
			if disabled {
				_, err = endSessions(ctx, tx, id)
			}
			return err
		})
	})
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
	if err := validateUser(name, password); err != nil {
		return err
	}
	var canonRole string
	err := s.inTx(ctx, "add user", func(tx *sql.Tx) error {
		var err error
		if canonRole, err = roleExists(ctx, tx, role); err != nil {
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
		return nil
	})
	if err != nil {
		return err
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
