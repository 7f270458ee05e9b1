package access_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/sqldb"
)

func sessionCreds(tok string) access.Credentials {
	return access.Credentials{SessionToken: tok, PeerAddr: "192.0.2.10:5555"}
}

func TestSessionLifecycle(t *testing.T) {
	s, c, db := mustStore(t)
	ctx := context.Background()
	if err := s.AddUser(ctx, "olga", "operator password", access.RoleOperator); err != nil {
		t.Fatal(err)
	}
	a := mustLogin(t, s, "olga", "operator password")
	if len(a.Token) != 43 || len(a.CSRFToken) != 43 || a.ID == "" {
		t.Errorf("session = %+v: want 32-byte base64url token and CSRF token", a)
	}
	if !a.ExpiresAt.Equal(c.Now().Add(12 * time.Hour)) {
		t.Errorf("ExpiresAt = %v, want the absolute expiry", a.ExpiresAt)
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM sessions WHERE token_hash = ? OR id = ?`, a.Token, a.Token).Scan(&n)
	if n != 0 {
		t.Fatal("the cookie value is stored in the database")
	}
	p, err := s.Authenticate(ctx, sessionCreds(a.Token))
	if err != nil {
		t.Fatal(err)
	}
	if p.User != "olga" || p.Method != access.MethodSession || p.SessionID != a.ID || p.CSRFToken != a.CSRFToken || len(p.Grants) != 1 {
		t.Errorf("principal = %+v", p)
	}

	// Rotation: a second login is a new session; the first still works until logout.
	b := mustLogin(t, s, "olga", "operator password")
	if b.Token == a.Token || b.ID == a.ID || b.CSRFToken == a.CSRFToken {
		t.Fatal("second login reused the session")
	}
	if _, err := s.Authenticate(ctx, sessionCreds(a.Token)); err != nil {
		t.Errorf("first session stopped working after a second login: %v", err)
	}
	if err := s.Logout(ctx, a.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, sessionCreds(a.Token)); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Errorf("session after logout: %v, want EUNAUTHORIZED", err)
	}
	if _, err := s.Authenticate(ctx, sessionCreds(b.Token)); err != nil {
		t.Errorf("the other session died with the logout: %v", err)
	}
	if err := s.Logout(ctx, a.Token); err != nil {
		t.Errorf("second logout: %v", err)
	}

	// SetPassword ends every session of the user.
	c2 := mustLogin(t, s, "olga", "operator password")
	if err := s.AddUser(ctx, "root", "a long root password", access.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	admin, _ := s.PrincipalFor(ctx, "root")
	if err := s.SetPassword(ctx, admin, "olga", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{b.Token, c2.Token} {
		if _, err := s.Authenticate(ctx, sessionCreds(tok)); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
			t.Errorf("session survived a password change: %v", err)
		}
	}
	if _, err := s.Login(ctx, "olga", "operator password", "192.0.2.10", ""); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Errorf("old password after change: %v", err)
	}
	d := mustLogin(t, s, "olga", "a brand new password")

	// Disabling ends sessions and refuses logins with the right password.
	if err := s.SetDisabled(ctx, admin, "olga", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, sessionCreds(d.Token)); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Errorf("session survived disabling: %v", err)
	}
	if _, err := s.Login(ctx, "olga", "a brand new password", "192.0.2.10", ""); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Errorf("disabled user logged in: %v", err)
	}
	if err := s.SetDisabled(ctx, admin, "root", true); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("admin disabled themselves: %v", err)
	}
	if err := s.SetDisabled(ctx, admin, "olga", false); err != nil {
		t.Fatal(err)
	}
	mustLogin(t, s, "olga", "a brand new password")
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 2 || users[0].Name != "olga" || users[0].LastLogin == nil || users[0].Disabled {
		t.Errorf("ListUsers = %+v, %v", users, err)
	}
}

func TestSessionExpiry(t *testing.T) {
	db := mustDB(t)
	c := newClock()
	s := mustStoreOpts(t, db, access.Options{Now: c.Now, SessionIdle: 30 * time.Minute, SessionAbsolute: 2 * time.Hour})
	ctx := context.Background()
	if err := s.AddUser(ctx, "vera", "viewer password", access.RoleViewer); err != nil {
		t.Fatal(err)
	}

	idle := mustLogin(t, s, "vera", "viewer password")
	c.Advance(29 * time.Minute)
	if _, err := s.Authenticate(ctx, sessionCreds(idle.Token)); err != nil {
		t.Fatalf("session within idle time: %v", err)
	}
	// That use moved the idle expiry: 29 more minutes are fine.
	c.Advance(29 * time.Minute)
	if _, err := s.Authenticate(ctx, sessionCreds(idle.Token)); err != nil {
		t.Fatalf("session used within the extended idle time: %v", err)
	}
	c.Advance(30 * time.Minute)
	if _, err := s.Authenticate(ctx, sessionCreds(idle.Token)); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Fatalf("idle session still valid: %v", err)
	}

	// Absolute expiry: used every 20 minutes, it still ends after 2 hours.
	abs := mustLogin(t, s, "vera", "viewer password")
	for i := 0; i < 5; i++ {
		c.Advance(20 * time.Minute)
		if _, err := s.Authenticate(ctx, sessionCreds(abs.Token)); err != nil {
			t.Fatalf("active session refused after %d min: %v", (i+1)*20, err)
		}
	}
	c.Advance(20 * time.Minute) // 120 minutes
	if _, err := s.Authenticate(ctx, sessionCreds(abs.Token)); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Fatalf("session past its absolute expiry: %v", err)
	}
}

func TestSessionIdleWriteAtMostOncePerMinute(t *testing.T) {
	s, c, db := mustStore(t)
	ctx := context.Background()
	s.AddUser(ctx, "vera", "viewer password", access.RoleViewer)
	sess := mustLogin(t, s, "vera", "viewer password")
	read := func() string {
		var v string
		db.QueryRow(`SELECT last_seen_at FROM sessions`).Scan(&v)
		return v
	}
	first := read()
	c.Advance(30 * time.Second)
	s.Authenticate(ctx, sessionCreds(sess.Token))
	if read() != first {
		t.Error("session written again within a minute")
	}
	c.Advance(31 * time.Second)
	s.Authenticate(ctx, sessionCreds(sess.Token))
	if got := read(); got != sqldb.FormatTime(c.Now()) {
		t.Errorf("last_seen_at = %s after a minute, want %s", got, sqldb.FormatTime(c.Now()))
	}
}

func TestTokens(t *testing.T) {
	s, c, db := mustStore(t)
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
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM api_tokens WHERE token_hash LIKE '%' || ? || '%'`, tok).Scan(&n)
	if n != 0 {
		t.Fatal("plaintext token stored in the database")
	}
	p, err := s.Authenticate(ctx, access.Credentials{Authorization: "Bearer " + tok})
	if err != nil || p.User != "ci" || p.Method != access.MethodToken || len(p.Grants) != 1 {
		t.Fatalf("valid token: %+v, %v", p, err)
	}
	var last string
	db.QueryRow(`SELECT last_used_at FROM api_tokens WHERE name = 'deploy'`).Scan(&last)
	if last != sqldb.FormatTime(c.Now()) {
		t.Errorf("last_used_at = %q, want %q", last, sqldb.FormatTime(c.Now()))
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

func TestAuthenticateWithoutCredentials(t *testing.T) {
	s, _, _ := mustStore(t)
	_, err := s.Authenticate(context.Background(), access.Credentials{PeerAddr: "192.0.2.1:1"})
	if delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Errorf("no credentials: %v", err)
	}
	_, err = s.Authenticate(context.Background(), access.Credentials{SessionToken: "made-up"})
	if delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Errorf("made-up session: %v", err)
	}
}

func TestProxyTrust(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	proxied := mustStoreOpts(t, db, access.Options{Proxy: access.ProxyOptions{
		Enabled: true, TrustedCIDRs: []string{"10.0.0.0/8", "::1/128"}}})
	plain := mustStoreOpts(t, db, access.Options{}) // proxy mode off
	if err := plain.AddUser(ctx, "dora", "disabled password", access.RoleViewer); err != nil {
		t.Fatal(err)
	}
	root := "root"
	plain.AddUser(ctx, root, "a long root password", access.RoleAdmin)
	admin, _ := plain.PrincipalFor(ctx, root)
	plain.SetDisabled(ctx, admin, "dora", true)

	tests := []struct {
		name  string
		store *access.Store
		creds access.Credentials
		want  string
	}{
		{"trusted v4", proxied, access.Credentials{PeerAddr: "10.0.0.7:43210", ProxyUser: "sso.bob", ProxyGroups: "ops"}, ""},
		{"trusted v6", proxied, access.Credentials{PeerAddr: "[::1]:43210", ProxyUser: "sso.bob"}, ""},
		{"untrusted peer", proxied, access.Credentials{PeerAddr: "192.0.2.44:43210", ProxyUser: "root", ProxyGroups: "admins"}, delivery.EUNAUTHORIZED},
		{"no peer", proxied, access.Credentials{ProxyUser: "root"}, delivery.EUNAUTHORIZED},
		{"garbage peer", proxied, access.Credentials{PeerAddr: "10.0.0.7x", ProxyUser: "root"}, delivery.EUNAUTHORIZED},
		{"proxy mode off", plain, access.Credentials{PeerAddr: "10.0.0.7:1", ProxyUser: "root"}, delivery.EUNAUTHORIZED},
		{"trusted but no user", proxied, access.Credentials{PeerAddr: "10.0.0.7:1", ProxyGroups: "admins"}, delivery.EUNAUTHORIZED},
		{"trusted, bad user name", proxied, access.Credentials{PeerAddr: "10.0.0.7:1", ProxyUser: "a b"}, delivery.EUNAUTHORIZED},
		{"trusted, disabled local user", proxied, access.Credentials{PeerAddr: "10.0.0.7:1", ProxyUser: "dora"}, delivery.EUNAUTHORIZED},
		{"untrusted with stale cookie", proxied, access.Credentials{PeerAddr: "192.0.2.44:1", SessionToken: "stale", ProxyUser: "root"}, delivery.EUNAUTHORIZED},
		{"trusted with stale cookie", proxied, access.Credentials{PeerAddr: "10.0.0.7:1", SessionToken: "stale", ProxyUser: "sso.bob"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.store.Authenticate(ctx, tt.creds)
			if got := delivery.ErrorCode(err); got != tt.want {
				t.Fatalf("Authenticate = %+v, %v; want code %q", p, err, tt.want)
			}
			if tt.want == "" && (p.Method != access.MethodProxy || p.User != tt.creds.ProxyUser) {
				t.Errorf("principal = %+v", p)
			}
		})
	}
	p, _ := proxied.Authenticate(ctx, access.Credentials{PeerAddr: "10.9.9.9", ProxyUser: "sso.bob", ProxyGroups: "ops,billing"})
	if p == nil || strings.Join(p.Groups, ",") != "ops,billing" {
		t.Errorf("groups = %+v", p)
	}
}

func retryAfter(t *testing.T, err error) int {
	t.Helper()
	var de *delivery.Error
	if !errors.As(err, &de) {
		t.Fatalf("%v is not a *delivery.Error", err)
	}
	n, ok := de.Details["retry_after_seconds"].(int)
	if !ok {
		t.Fatalf("details = %+v: no retry_after_seconds", de.Details)
	}
	return n
}

func TestLoginThrottling(t *testing.T) {
	s, c, _ := mustStore(t)
	ctx := context.Background()
	if err := s.AddUser(ctx, "olga", "operator password", access.RoleOperator); err != nil {
		t.Fatal(err)
	}
	login := func(pw, peer string) error {
		_, err := s.Login(ctx, "olga", pw, peer, "ua")
		return err
	}
	const peer = "198.51.100.7:1234"
	for i := 1; i <= 5; i++ {
		if err := login("wrong password!", peer); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
			t.Fatalf("failure %d: %v, want EUNAUTHORIZED", i, err)
		}
		c.Advance(time.Minute)
	}
	err := login("operator password", peer)
	if delivery.ErrorCode(err) != delivery.ETOOMANY {
		t.Fatalf("6th attempt with the right password: %v, want ETOOMANY", err)
	}
	if ra := retryAfter(t, err); ra != 14*60 { // locked at the 5th failure (minute 4) for 15 min; now minute 5
		t.Errorf("retry_after_seconds = %d, want %d", ra, 14*60)
	}
	// Another address is not locked out.
	if err := login("operator password", "198.51.100.8:1"); err != nil {
		t.Errorf("other peer: %v", err)
	}
	c.Advance(14 * time.Minute)
	if err := login("operator password", peer); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}

	// Success reset the count: 4 failures don't lock.
	for i := 0; i < 4; i++ {
		login("wrong password!", peer)
	}
	if err := login("operator password", peer); err != nil {
		t.Fatalf("4 failures after a success locked the user: %v", err)
	}
	// Repeat lockouts grow: 15m, then 30m.
	for i := 0; i < 5; i++ {
		login("wrong password!", peer)
	}
	first := retryAfter(t, login("operator password", peer))
	c.Advance(time.Duration(first) * time.Second)
	for i := 0; i < 5; i++ {
		login("wrong password!", peer)
	}
	second := retryAfter(t, login("operator password", peer))
	if first != 15*60 || second != 30*60 {
		t.Errorf("lockouts = %ds then %ds, want 900 then 1800", first, second)
	}
	// Unknown users are throttled the same way (no hint that they don't exist).
	for i := 0; i < 5; i++ {
		if _, err := s.Login(ctx, "ghost", "whatever password", peer, ""); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
			t.Fatalf("unknown user: %v", err)
		}
	}
	if _, err := s.Login(ctx, "ghost", "whatever password", peer, ""); delivery.ErrorCode(err) != delivery.ETOOMANY {
		t.Errorf("unknown user not throttled: %v", err)
	}
}

func TestThrottleSurvivesRestart(t *testing.T) {
	db := mustDB(t)
	c := newClock()
	s := mustStoreOpts(t, db, access.Options{Now: c.Now})
	ctx := context.Background()
	s.AddUser(ctx, "olga", "operator password", access.RoleOperator)
	for i := 0; i < 5; i++ {
		s.Login(ctx, "olga", "wrong password!", "198.51.100.7", "")
	}
	s2 := mustStoreOpts(t, db, access.Options{Now: c.Now})
	if _, err := s2.Login(ctx, "olga", "operator password", "198.51.100.7", ""); delivery.ErrorCode(err) != delivery.ETOOMANY {
		t.Errorf("after restart: %v, want ETOOMANY", err)
	}
}

// Forty wrong passwords at once, through two stores on two connection
// pools of the same file (as two console processes would be): the lock is
// checked and the attempt counted in one transaction, so at most
// MaxFailures attempts reach the password check, the rest are refused
// unchecked, and the right password right after is refused too.
func TestLoginThrottleHoldsUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "console.db")
	var stores []*access.Store
	for range 2 {
		db, err := sqldb.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		stores = append(stores, mustStoreOpts(t, db, access.Options{}))
	}
	if err := stores[0].AddUser(ctx, "olga", "operator password", access.RoleOperator); err != nil {
		t.Fatal(err)
	}
	const attempts = 40
	start := make(chan struct{})
	codes := make(chan string, attempts)
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := stores[i%2].Login(ctx, "olga", "wrong password!", "198.51.100.7:1234", "ua")
			codes <- delivery.ErrorCode(err)
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	count := map[string]int{}
	for c := range codes {
		count[c]++
	}
	if count[delivery.EUNAUTHORIZED] != 5 || count[delivery.ETOOMANY] != attempts-5 {
		t.Errorf("40 parallel wrong passwords: %v; want 5 checked (EUNAUTHORIZED) and 35 ETOOMANY", count)
	}
	if _, err := stores[0].Login(ctx, "olga", "operator password", "198.51.100.7:1234", "ua"); delivery.ErrorCode(err) != delivery.ETOOMANY {
		t.Errorf("right password after the burst: %v, want ETOOMANY", err)
	}
	recs, _, err := stores[0].Audit().List(ctx, access.AuditFilter{Action: "login", Outcome: access.OutcomeFailure, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range recs {
		if r.Reason == "wrong password" {
			checked++
		}
	}
	if checked != 5 {
		t.Errorf("%d \"wrong password\" audit records, want 5 (one per checked attempt)", checked)
	}
}
