package access_test

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/sqldb"
)

func mustStore(t *testing.T) *access.Store {
	t.Helper()
	db, err := sqldb.Open(context.Background(), filepath.Join(t.TempDir(), "console.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := access.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func TestAuthorize(t *testing.T) {
	var pol access.Policy
	viewer := &access.Principal{User: "v", Role: access.RoleViewer}
	operator := &access.Principal{User: "o", Role: access.RoleOperator}
	admin := &access.Principal{User: "a", Role: access.RoleAdmin}
	stranger := &access.Principal{User: "s", Role: "superuser"}
	tests := []struct {
		p      *access.Principal
		action access.Action
		want   string // "" = allowed, else error code
	}{
		{nil, access.ActionView, access.EUNAUTHORIZED},
		{viewer, access.ActionView, ""},
		{viewer, access.ActionReadPayload, access.EFORBIDDEN},
		{viewer, access.ActionRedrive, access.EFORBIDDEN},
		{viewer, access.ActionExport, access.EFORBIDDEN},
		{viewer, access.ActionAdmin, access.EFORBIDDEN},
		{operator, access.ActionView, ""},
		{operator, access.ActionReadPayload, ""},
		{operator, access.ActionRedrive, ""},
		{operator, access.ActionQuarantine, ""},
		{operator, access.ActionDiscard, ""},
		{operator, access.ActionExport, ""},
		{operator, access.ActionReadPII, access.EFORBIDDEN},
		{operator, access.ActionRedriveElsewhere, access.EFORBIDDEN},
		{operator, access.ActionEdit, access.EFORBIDDEN},
		{operator, access.ActionManageAlerts, access.EFORBIDDEN},
		{operator, access.ActionAdmin, access.EFORBIDDEN},
		{admin, access.ActionAdmin, ""},
		{admin, access.ActionReadPII, ""},
		{admin, access.Action("launch_missiles"), access.EFORBIDDEN},
		{stranger, access.ActionView, access.EFORBIDDEN},
	}
	for _, tt := range tests {
		role := "nil"
		if tt.p != nil {
			role = tt.p.Role
		}
		t.Run(role+"/"+string(tt.action), func(t *testing.T) {
			err := pol.Authorize(tt.p, tt.action, "kafka:main/orders.order.created.v1")
			if got := access.ErrorCode(err); got != tt.want {
				t.Errorf("Authorize = %v (code %q), want code %q", err, got, tt.want)
			}
		})
	}
	// Admin may do every action there is.
	for _, a := range access.Actions() {
		if err := pol.Authorize(admin, a, "*"); err != nil {
			t.Errorf("admin denied %s: %v", a, err)
		}
	}
}

func TestAddUserValidation(t *testing.T) {
	s := mustStore(t)
	ctx := context.Background()
	tests := []struct {
		name, user, pw, role, want string
	}{
		{"ok", "alice", "correct horse battery", access.RoleViewer, ""},
		{"duplicate", "alice", "correct horse battery", access.RoleViewer, access.ECONFLICT},
		{"duplicate other case", "ALICE", "correct horse battery", access.RoleViewer, access.ECONFLICT},
		{"empty name", "", "correct horse battery", access.RoleViewer, access.EINVALID},
		{"colon in name", "a:b", "correct horse battery", access.RoleViewer, access.EINVALID},
		{"long name", strings.Repeat("a", 65), "correct horse battery", access.RoleViewer, access.EINVALID},
		{"short password", "bob", "short", access.RoleViewer, access.EINVALID},
		{"password over 72 bytes", "bob", strings.Repeat("x", 73), access.RoleViewer, access.EINVALID},
		{"unknown role", "bob", "correct horse battery", "root", access.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.AddUser(ctx, tt.user, tt.pw, tt.role)
			if got := access.ErrorCode(err); got != tt.want {
				t.Errorf("AddUser = %v, want code %q", err, tt.want)
			}
		})
	}
}

func TestBasicAuthentication(t *testing.T) {
	s := mustStore(t)
	ctx := context.Background()
	if err := s.AddUser(ctx, "olga", "operator password", access.RoleOperator); err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, basic("olga", "operator password"))
	if err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if *p != (access.Principal{User: "olga", Role: access.RoleOperator, Method: access.MethodBasic}) {
		t.Errorf("principal = %+v", *p)
	}
	for name, h := range map[string]string{
		"empty":          "",
		"wrong password": basic("olga", "operator passwort"),
		"unknown user":   basic("nobody", "operator password"),
		"not base64":     "Basic !!!",
		"no colon":       "Basic " + base64.StdEncoding.EncodeToString([]byte("olga")),
		"other scheme":   "Digest olga",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := s.Authenticate(ctx, h)
			if p != nil || access.ErrorCode(err) != access.EUNAUTHORIZED {
				t.Errorf("Authenticate(%q) = %v, %v; want EUNAUTHORIZED", h, p, err)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	s := mustStore(t)
	ctx := context.Background()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	if err := s.AddUser(ctx, "ci", "a long ci password", access.RoleOperator); err != nil {
		t.Fatal(err)
	}
	tok, err := s.CreateToken(ctx, "ci", "deploy", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "sy_") || len(tok) < 40 {
		t.Errorf("token %q: want sy_ prefix and 32 random bytes", tok)
	}
	p, err := s.Authenticate(ctx, "Bearer "+tok)
	if err != nil || p.User != "ci" || p.Method != access.MethodToken || p.Role != access.RoleOperator {
		t.Fatalf("valid token: %+v, %v", p, err)
	}

	if _, err := s.CreateToken(ctx, "nobody", "x", 0); access.ErrorCode(err) != access.ENOTFOUND {
		t.Errorf("token for unknown user: %v, want ENOTFOUND", err)
	}
	if _, err := s.CreateToken(ctx, "ci", "", 0); access.ErrorCode(err) != access.EINVALID {
		t.Errorf("token without name: %v, want EINVALID", err)
	}

	forever, err := s.CreateToken(ctx, "ci", "forever", 0)
	if err != nil {
		t.Fatal(err)
	}
	revoked, _ := s.CreateToken(ctx, "ci", "revoked", 0)
	if err := s.RevokeToken(ctx, revoked); err != nil {
		t.Fatal(err)
	}

	now = now.Add(time.Hour) // the first token's expiry instant
	tests := []struct {
		name, header, want string
	}{
		{"expired", "Bearer " + tok, access.EUNAUTHORIZED},
		{"revoked", "Bearer " + revoked, access.EUNAUTHORIZED},
		{"wrong", "Bearer sy_" + strings.Repeat("A", 43), access.EUNAUTHORIZED},
		{"no prefix", "Bearer " + strings.TrimPrefix(forever, "sy_"), access.EUNAUTHORIZED},
		{"no expiry", "Bearer " + forever, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Authenticate(ctx, tt.header)
			if got := access.ErrorCode(err); got != tt.want {
				t.Errorf("Authenticate = %v, want code %q", err, tt.want)
			}
		})
	}
}

func TestTokenStoredAsHashAndUseRecorded(t *testing.T) {
	db, err := sqldb.Open(context.Background(), filepath.Join(t.TempDir(), "console.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, _ := access.NewStore(db)
	ctx := context.Background()
	used := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	s.AddUser(ctx, "ci", "a long ci password", access.RoleViewer)
	tok, err := s.CreateToken(ctx, "ci", "deploy", 0)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM api_tokens WHERE token_hash LIKE '%' || ? || '%'`, tok).Scan(&n)
	if n != 0 {
		t.Fatal("plaintext token stored in the database")
	}
	s.Now = func() time.Time { return used }
	if _, err := s.Authenticate(ctx, "Bearer "+tok); err != nil {
		t.Fatal(err)
	}
	var last string
	db.QueryRow(`SELECT last_used_at FROM api_tokens`).Scan(&last)
	if last != sqldb.FormatTime(used) {
		t.Errorf("last_used_at = %q, want %q", last, sqldb.FormatTime(used))
	}
}

func TestEnsureAdmin(t *testing.T) {
	s := mustStore(t)
	ctx := context.Background()
	pw, created, err := s.EnsureAdmin(ctx, "")
	if err != nil || !created {
		t.Fatalf("first EnsureAdmin = %q, %v, %v", pw, created, err)
	}
	if len(pw) != 20 {
		t.Errorf("generated password %q has %d characters, want 20", pw, len(pw))
	}
	p, err := s.Authenticate(ctx, basic("admin", pw))
	if err != nil || p.Role != access.RoleAdmin {
		t.Fatalf("log in with the generated password: %+v, %v", p, err)
	}
	// Idempotent: a second start neither creates nor resets the password.
	pw2, created, err := s.EnsureAdmin(ctx, "another password!")
	if err != nil || created || pw2 != "" {
		t.Errorf("second EnsureAdmin = %q, %v, %v; want \"\", false, nil", pw2, created, err)
	}
	if _, err := s.Authenticate(ctx, basic("admin", pw)); err != nil {
		t.Errorf("original password stopped working: %v", err)
	}

	s2 := mustStore(t)
	pw, created, err = s2.EnsureAdmin(ctx, "given admin password")
	if err != nil || !created || pw != "" {
		t.Errorf("EnsureAdmin with a password = %q, %v, %v; want nothing generated", pw, created, err)
	}
	if _, err := s2.Authenticate(ctx, basic("admin", "given admin password")); err != nil {
		t.Errorf("given password refused: %v", err)
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	internal := context.DeadlineExceeded
	tests := []struct {
		err           error
		code, message string
	}{
		{nil, "", ""},
		{access.Errorf(access.ENOTFOUND, "topic %q not found", "x"), access.ENOTFOUND, `topic "x" not found`},
		{internal, access.EINTERNAL, "internal error"},
	}
	for _, tt := range tests {
		if got := access.ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.code)
		}
		if got := access.ErrorMessage(tt.err); got != tt.message {
			t.Errorf("ErrorMessage(%v) = %q, want %q", tt.err, got, tt.message)
		}
	}
}
