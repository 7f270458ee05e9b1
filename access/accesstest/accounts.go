package accesstest

import (
	"context"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// The Directory cases on accounts: options, users, the first admin, tokens.

func options(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	open := newBackend(t)
	tests := []struct {
		name string
		opts access.Options
		want string
	}{
		{"zero value", access.Options{}, ""},
		{"proxy without cidrs", access.Options{Proxy: access.ProxyOptions{Enabled: true}}, delivery.EINVALID},
		{"proxy bad cidr", access.Options{Proxy: access.ProxyOptions{Enabled: true, TrustedCIDRs: []string{"10.0.0.0/33"}}}, delivery.EINVALID},
		{"proxy ok", access.Options{Proxy: access.ProxyOptions{Enabled: true, TrustedCIDRs: []string{"10.0.0.0/8", "::1/128"}}}, ""},
		{"negative idle", access.Options{SessionIdle: -time.Second}, delivery.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := open(t, tt.opts)
			if got := delivery.ErrorCode(err); got != tt.want {
				t.Errorf("NewStore = %v, want code %q", err, tt.want)
			}
		})
	}
	s := mustDirectory(t, open, access.Options{})
	if p := s.ProxyOptions(); p.UserHeader != "X-Forwarded-User" || p.GroupsHeader != "X-Forwarded-Groups" {
		t.Errorf("default proxy headers = %+v", p)
	}
	if idle, abs := s.SessionOptions(); idle != 30*time.Minute || abs != 12*time.Hour {
		t.Errorf("default session lifetimes = %v, %v", idle, abs)
	}
}

func addUserValidation(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	s, _ := fresh(t, newBackend)
	ctx := context.Background()
	tests := []struct {
		name, user, pw, role, want string
	}{
		{"ok", "alice", "correct horse battery", access.RoleViewer, ""},
		{"duplicate", "alice", "correct horse battery", access.RoleViewer, delivery.ECONFLICT},
		{"duplicate other case", "ALICE", "correct horse battery", access.RoleViewer, delivery.ECONFLICT},
		{"empty name", "", "correct horse battery", access.RoleViewer, delivery.EINVALID},
		{"colon in name", "a:b", "correct horse battery", access.RoleViewer, delivery.EINVALID},
		{"long name", strings.Repeat("a", 65), "correct horse battery", access.RoleViewer, delivery.EINVALID},
		{"short password", "bob", "short", access.RoleViewer, delivery.EINVALID},
		{"password over 72 bytes", "bob", strings.Repeat("x", 73), access.RoleViewer, delivery.EINVALID},
		{"unknown role", "bob", "correct horse battery", "root", delivery.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.AddUser(ctx, tt.user, tt.pw, tt.role)
			if got := delivery.ErrorCode(err); got != tt.want {
				t.Errorf("AddUser = %v, want code %q", err, tt.want)
			}
		})
	}
	// AddUser binds the role on everything.
	bs, err := s.ListBindings(ctx)
	if err != nil || len(bs) != 1 {
		t.Fatalf("bindings = %+v, %v", bs, err)
	}
	if b := bs[0]; b.Subject != "user:alice" || b.Role != access.RoleViewer ||
		strings.Join(b.Resources, ",") != "*" || strings.Join(b.Tenants, ",") != "*" {
		t.Errorf("binding = %+v", b)
	}
}

func ensureAdmin(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	s, _ := fresh(t, newBackend)
	ctx := context.Background()
	pw, created, err := s.EnsureAdmin(ctx, "")
	if err != nil || !created {
		t.Fatalf("first EnsureAdmin = %q, %v, %v", pw, created, err)
	}
	if len(pw) != 20 {
		t.Errorf("generated password %q has %d characters, want 20", pw, len(pw))
	}
	sess := MustLogin(t, s, "admin", pw)
	p, err := s.Authenticate(ctx, access.Credentials{SessionToken: sess.Token})
	if err != nil || (access.Policy{}).Authorize(p, access.ActionAdmin, access.Res(access.ConsoleAdmin)) != nil {
		t.Fatalf("admin after login: %+v, %v", p, err)
	}
	// Idempotent: a second start neither creates nor resets the password.
	pw2, created, err := s.EnsureAdmin(ctx, "another password!")
	if err != nil || created || pw2 != "" {
		t.Errorf("second EnsureAdmin = %q, %v, %v; want \"\", false, nil", pw2, created, err)
	}
	MustLogin(t, s, "admin", pw)

	s2, _ := fresh(t, newBackend)
	pw, created, err = s2.EnsureAdmin(ctx, "given admin password")
	if err != nil || !created || pw != "" {
		t.Errorf("EnsureAdmin with a password = %q, %v, %v; want nothing generated", pw, created, err)
	}
	MustLogin(t, s2, "admin", "given admin password")
}

func tokens(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	s, c := fresh(t, newBackend)
	ctx := context.Background()
	if err := s.AddUser(ctx, "ci", "a long ci password", access.RoleOperator); err != nil {
		t.Fatal(err)
	}
	tok, err := s.CreateToken(ctx, "ci", "deploy", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "sy_") || len(tok) != 3+43 {
		t.Errorf("token %q: want sy_ prefix and 32 random bytes", tok)
	}
	p, err := s.Authenticate(ctx, access.Credentials{Authorization: "Bearer " + tok})
	if err != nil || p.User != "ci" || p.Method != access.MethodToken || len(p.Grants) != 1 {
		t.Fatalf("valid token: %+v, %v", p, err)
	}
	if used, err := s.ListTokens(ctx, "ci"); err != nil || len(used) != 1 || used[0].LastUsedAt == nil || !used[0].LastUsedAt.Equal(c.Now()) {
		t.Errorf("last used = %+v, %v; want %v", used, err, c.Now())
	}

	if _, err := s.CreateToken(ctx, "nobody", "x", 0); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("token for unknown user: %v, want ENOTFOUND", err)
	}
	if _, err := s.CreateToken(ctx, "ci", "", 0); delivery.ErrorCode(err) != delivery.EINVALID {
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
	byID, _ := s.CreateToken(ctx, "ci", "by id", 0)

	s.AddUser(ctx, "root", "a long root password", access.RoleAdmin)
	admin, _ := s.PrincipalFor(ctx, "root")
	toks, err := s.ListTokens(ctx, "ci")
	if err != nil || len(toks) != 4 {
		t.Fatalf("ListTokens = %+v, %v", toks, err)
	}
	if toks[0].Name != "by id" || toks[3].ExpiresAt == nil || toks[3].LastUsedAt == nil || toks[1].RevokedAt == nil {
		t.Errorf("ListTokens = %+v", toks)
	}
	if err := s.RevokeTokenID(ctx, admin, toks[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeTokenID(ctx, admin, toks[0].ID); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("revoking twice: %v", err)
	}

	c.Advance(time.Hour) // the first token's expiry instant
	tests := []struct {
		name, header, want string
	}{
		{"expired", "Bearer " + tok, delivery.EUNAUTHORIZED},
		{"revoked", "Bearer " + revoked, delivery.EUNAUTHORIZED},
		{"revoked by id", "Bearer " + byID, delivery.EUNAUTHORIZED},
		{"wrong", "Bearer sy_" + strings.Repeat("A", 43), delivery.EUNAUTHORIZED},
		{"no prefix", "Bearer " + strings.TrimPrefix(forever, "sy_"), delivery.EUNAUTHORIZED},
		{"basic no longer accepted", "Basic Y2k6YSBsb25nIGNpIHBhc3N3b3Jk", delivery.EUNAUTHORIZED},
		{"no expiry", "Bearer " + forever, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Authenticate(ctx, access.Credentials{Authorization: tt.header})
			if got := delivery.ErrorCode(err); got != tt.want {
				t.Errorf("Authenticate = %v, want code %q", err, tt.want)
			}
		})
	}

	// A token of a disabled user fails, and works again once re-enabled.
	if err := s.SetDisabled(ctx, admin, "ci", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, access.Credentials{Authorization: "Bearer " + forever}); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Errorf("token of a disabled user: %v", err)
	}
	s.SetDisabled(ctx, admin, "ci", false)
	if _, err := s.Authenticate(ctx, access.Credentials{Authorization: "Bearer " + forever}); err != nil {
		t.Errorf("token after re-enabling: %v", err)
	}

	// Users issue tokens for themselves; not for others unless admin.
	ci, _ := s.PrincipalFor(ctx, "ci")
	ci.Method = access.MethodSession
	if _, err := s.IssueToken(ctx, ci, "ci", "mine", 0); err != nil {
		t.Errorf("self-issued token: %v", err)
	}
	if _, err := s.IssueToken(ctx, ci, "root", "theirs", 0); delivery.ErrorCode(err) != delivery.EFORBIDDEN {
		t.Errorf("operator issued a token for root: %v", err)
	}
	if _, err := s.IssueToken(ctx, admin, "ci", "from admin", time.Hour); err != nil {
		t.Errorf("admin-issued token: %v", err)
	}
}
