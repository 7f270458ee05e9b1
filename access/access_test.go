package access_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/sqldb"
)

// clock is an injectable, advanceable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func mustDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), filepath.Join(t.TempDir(), "console.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustStoreOpts(t *testing.T, db *sql.DB, opts access.Options) *access.Store {
	t.Helper()
	s, err := access.NewStore(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustStore returns a store on a fresh database with a controllable clock.
func mustStore(t *testing.T) (*access.Store, *clock, *sql.DB) {
	t.Helper()
	db := mustDB(t)
	c := newClock()
	return mustStoreOpts(t, db, access.Options{Now: c.Now}), c, db
}

func mustLogin(t *testing.T, s *access.Store, user, pw string) access.Session {
	t.Helper()
	sess, err := s.Login(context.Background(), user, pw, "192.0.2.10:5555", "test-agent")
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return sess
}

func TestAddUserValidation(t *testing.T) {
	s, _, _ := mustStore(t)
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

func TestEnsureAdmin(t *testing.T) {
	s, _, _ := mustStore(t)
	ctx := context.Background()
	pw, created, err := s.EnsureAdmin(ctx, "")
	if err != nil || !created {
		t.Fatalf("first EnsureAdmin = %q, %v, %v", pw, created, err)
	}
	if len(pw) != 20 {
		t.Errorf("generated password %q has %d characters, want 20", pw, len(pw))
	}
	sess := mustLogin(t, s, "admin", pw)
	p, err := s.Authenticate(ctx, access.Credentials{SessionToken: sess.Token})
	if err != nil || (access.Policy{}).Authorize(p, access.ActionAdmin, access.Res("console:admin")) != nil {
		t.Fatalf("admin after login: %+v, %v", p, err)
	}
	// Idempotent: a second start neither creates nor resets the password.
	pw2, created, err := s.EnsureAdmin(ctx, "another password!")
	if err != nil || created || pw2 != "" {
		t.Errorf("second EnsureAdmin = %q, %v, %v; want \"\", false, nil", pw2, created, err)
	}
	mustLogin(t, s, "admin", pw)

	s2, _, _ := mustStore(t)
	pw, created, err = s2.EnsureAdmin(ctx, "given admin password")
	if err != nil || !created || pw != "" {
		t.Errorf("EnsureAdmin with a password = %q, %v, %v; want nothing generated", pw, created, err)
	}
	mustLogin(t, s2, "admin", "given admin password")
}

func TestNewStoreOptions(t *testing.T) {
	db := mustDB(t)
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
			_, err := access.NewStore(db, tt.opts)
			if got := delivery.ErrorCode(err); got != tt.want {
				t.Errorf("NewStore = %v, want code %q", err, tt.want)
			}
		})
	}
	s := mustStoreOpts(t, db, access.Options{})
	if p := s.ProxyOptions(); p.UserHeader != "X-Forwarded-User" || p.GroupsHeader != "X-Forwarded-Groups" {
		t.Errorf("default proxy headers = %+v", p)
	}
	if idle, abs := s.SessionOptions(); idle != 30*time.Minute || abs != 12*time.Hour {
		t.Errorf("default session lifetimes = %v, %v", idle, abs)
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	internal := context.DeadlineExceeded
	tests := []struct {
		err           error
		code, message string
	}{
		{nil, "", ""},
		{delivery.Errorf(delivery.ENOTFOUND, "topic %q not found", "x"), delivery.ENOTFOUND, `topic "x" not found`},
		{internal, delivery.EINTERNAL, "internal error"},
	}
	for _, tt := range tests {
		if got := delivery.ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.code)
		}
		if got := delivery.ErrorMessage(tt.err); got != tt.message {
			t.Errorf("ErrorMessage(%v) = %q, want %q", tt.err, got, tt.message)
		}
	}
}
