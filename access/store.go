// Package access decides who may do what in the console. Store keeps users
// and API tokens in SQLite and turns an Authorization header into a
// Principal; Policy is the one function that authorizes every request.
// Sessions, resource scopes, CSRF and the audit log build on these two.
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
	"regexp"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
	"golang.org/x/crypto/bcrypt"

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
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Store keeps users and API tokens. Now is the clock; tests replace it.
type Store struct {
	Now func() time.Time

	db *sql.DB
	// dummyHash is compared against when a user does not exist, so that
	// a wrong user name costs as long as a wrong password and timing does
	// not reveal which accounts exist.
	dummyHash []byte
}

// NewStore returns a Store over a database opened by sqldb.Open.
func NewStore(db *sql.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("access: nil database")
	}
	h, err := bcrypt.GenerateFromPassword([]byte("not-a-real-password"), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	return &Store{Now: time.Now, db: db, dummyHash: h}, nil
}

func validateName(name string) error {
	if !nameRE.MatchString(name) {
		return Errorf(EINVALID, "user name must be 1-64 characters of letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
	}
	return nil
}

func validatePassword(pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return Errorf(EINVALID, "password must be %d to %d bytes long", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// AddUser creates a user with a bcrypt-hashed password. Errors: EINVALID
// (name, password length or role), ECONFLICT (the name exists).
func (s *Store) AddUser(ctx context.Context, name, password, role string) error {
	if err := validateName(name); err != nil {
		return err
	}
	if err := validatePassword(password); err != nil {
		return err
	}
	if !validRole(role) {
		return Errorf(EINVALID, "role must be one of %s", strings.Join(Roles(), ", "))
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO users (name, password_hash, role, created_at) VALUES (?, ?, ?, ?)`,
		name, string(hash), role, sqldb.FormatTime(s.Now()))
	if isUniqueViolation(err) {
		return Errorf(ECONFLICT, "user %q already exists", name)
	}
	if err != nil {
		return fmt.Errorf("add user %s: %w", name, err)
	}
	return nil
}

// EnsureAdmin creates the "admin" user on first start and does nothing once
// it exists (an existing password is never reset). An empty password makes
// it generate a random one, returned so that main can print it once; it is
// stored only as a hash.
func (s *Store) EnsureAdmin(ctx context.Context, password string) (generated string, created bool, err error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE name = ?`, AdminUser).Scan(&n); err != nil {
		return "", false, fmt.Errorf("look up admin: %w", err)
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
	if ErrorCode(err) == ECONFLICT {
		return "", false, nil // another instance won the race
	}
	if err != nil {
		return "", false, err
	}
	return generated, true, nil
}

// CreateToken issues an API token for user. The plaintext ("sy_…") is
// returned once; only its SHA-256 is stored. ttl 0 means no expiry.
// Errors: EINVALID (name, ttl), ENOTFOUND (no such enabled user).
func (s *Store) CreateToken(ctx context.Context, user, name string, ttl time.Duration) (plaintext string, err error) {
	if name = strings.TrimSpace(name); name == "" || len(name) > 64 {
		return "", Errorf(EINVALID, "token name must be 1-64 characters")
	}
	if ttl < 0 {
		return "", Errorf(EINVALID, "token lifetime must not be negative")
	}
	var userID int64
	err = s.db.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ? AND disabled = 0`, user).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", Errorf(ENOTFOUND, "user %q not found", user)
	}
	if err != nil {
		return "", fmt.Errorf("look up user %s: %w", user, err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	plaintext = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	now := s.Now()
	var expires any // NULL: no expiry
	if ttl > 0 {
		expires = sqldb.FormatTime(now.Add(ttl))
	}
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		userID, name, hashToken(plaintext), sqldb.FormatTime(now), expires); err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	return plaintext, nil
}

// RevokeToken revokes the token with the given plaintext. Errors: ENOTFOUND.
func (s *Store) RevokeToken(ctx context.Context, plaintext string) error {
	res, err := s.db.ExecContext(ctx,
		`UPDATE api_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL`,
		sqldb.FormatTime(s.Now()), hashToken(plaintext))
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Errorf(ENOTFOUND, "token not found")
	}
	return nil
}

// Authenticate turns an Authorization header into a Principal. It accepts
// "Basic <user:password>" and "Bearer <API token>"; a token must be neither
// expired nor revoked, and its last_used_at is updated. Errors:
// EUNAUTHORIZED (missing, malformed or wrong credentials, deliberately
// without saying which), or an internal error when the store fails.
func (s *Store) Authenticate(ctx context.Context, header string) (*Principal, error) {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case header == "":
		return nil, Errorf(EUNAUTHORIZED, "authentication required")
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return nil, Errorf(EUNAUTHORIZED, "malformed basic credentials")
		}
		user, pw, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, Errorf(EUNAUTHORIZED, "malformed basic credentials")
		}
		return s.checkPassword(ctx, user, pw)
	case strings.EqualFold(scheme, "Bearer"):
		return s.checkToken(ctx, cred)
	}
	return nil, Errorf(EUNAUTHORIZED, "unsupported authorization scheme")
}

// badCredentials is the one answer to any wrong user, password or token.
func badCredentials() error { return Errorf(EUNAUTHORIZED, "invalid credentials") }

func (s *Store) checkPassword(ctx context.Context, user, pw string) (*Principal, error) {
	var hash, role, name string
	var disabled bool
	err := s.db.QueryRowContext(ctx,
		`SELECT name, password_hash, role, disabled FROM users WHERE name = ?`, user).
		Scan(&name, &hash, &role, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(pw))
		return nil, badCredentials()
	}
	if err != nil {
		return nil, fmt.Errorf("look up user: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) != nil || disabled {
		return nil, badCredentials()
	}
	return &Principal{User: name, Role: role, Method: MethodBasic}, nil
}

func (s *Store) checkToken(ctx context.Context, token string) (*Principal, error) {
	if !strings.HasPrefix(token, TokenPrefix) {
		return nil, badCredentials()
	}
	h := hashToken(token)
	var (
		id               int64
		stored, name     string
		role             string
		expires, revoked sql.NullString
		disabled         bool
	)
	err := s.db.QueryRowContext(ctx, `
SELECT t.id, t.token_hash, t.expires_at, t.revoked_at, u.name, u.role, u.disabled
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = ?`, h).Scan(&id, &stored, &expires, &revoked, &name, &role, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, badCredentials()
	}
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	// The lookup went through an index; compare again in constant time so
	// the decision itself does not depend on early-exit string compares.
	if subtle.ConstantTimeCompare([]byte(stored), []byte(h)) != 1 || revoked.Valid || disabled {
		return nil, badCredentials()
	}
	now := s.Now()
	if expires.Valid {
		exp, err := sqldb.ParseTime(expires.String)
		if err != nil {
			return nil, fmt.Errorf("token %d: bad expires_at: %w", id, err)
		}
		if !now.Before(exp) {
			return nil, Errorf(EUNAUTHORIZED, "token expired")
		}
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`,
		sqldb.FormatTime(now), id); err != nil {
		return nil, fmt.Errorf("record token use: %w", err)
	}
	return &Principal{User: name, Role: role, Method: MethodToken}, nil
}

func hashToken(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// randomPassword returns n characters from an alphabet without look-alikes
// (no 0/O, 1/l/I), drawn without modulo bias.
func randomPassword(n int) (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	out := make([]byte, 0, n)
	buf := make([]byte, 1)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate password: %w", err)
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
