package accesstest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// The Directory cases on signing in: sessions, credentials, the trusted
// proxy and the login throttle.

func sessionLifecycle(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	s, c := fresh(t, newBackend)
	ctx := context.Background()
	if err := s.AddUser(ctx, "olga", "operator password", access.RoleOperator); err != nil {
		t.Fatal(err)
	}
	a := MustLogin(t, s, "olga", "operator password")
	if len(a.Token) != 43 || len(a.CSRFToken) != 43 || a.ID == "" {
		t.Errorf("session = %+v: want 32-byte base64url token and CSRF token", a)
	}
	if !a.ExpiresAt.Equal(c.Now().Add(12 * time.Hour)) {
		t.Errorf("ExpiresAt = %v, want the absolute expiry", a.ExpiresAt)
	}
	p, err := s.Authenticate(ctx, SessionCreds(a.Token))
	if err != nil {
		t.Fatal(err)
	}
	if p.User != "olga" || p.Method != access.MethodSession || p.SessionID != a.ID || p.CSRFToken != a.CSRFToken || len(p.Grants) != 1 {
		t.Errorf("principal = %+v", p)
	}

	// Rotation: a second login is a new session; the first still works until logout.
	b := MustLogin(t, s, "olga", "operator password")
	if b.Token == a.Token || b.ID == a.ID || b.CSRFToken == a.CSRFToken {
		t.Fatal("second login reused the session")
	}
	if _, err := s.Authenticate(ctx, SessionCreds(a.Token)); err != nil {
		t.Errorf("first session stopped working after a second login: %v", err)
	}
	if err := s.Logout(ctx, a.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, SessionCreds(a.Token)); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Errorf("session after logout: %v, want EUNAUTHORIZED", err)
	}
	if _, err := s.Authenticate(ctx, SessionCreds(b.Token)); err != nil {
		t.Errorf("the other session died with the logout: %v", err)
	}
	if err := s.Logout(ctx, a.Token); err != nil {
		t.Errorf("second logout: %v", err)
	}

	// SetPassword ends every session of the user.
	c2 := MustLogin(t, s, "olga", "operator password")
	if err := s.AddUser(ctx, "root", "a long root password", access.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	admin, _ := s.PrincipalFor(ctx, "root")
	if err := s.SetPassword(ctx, admin, "olga", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{b.Token, c2.Token} {
		if _, err := s.Authenticate(ctx, SessionCreds(tok)); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
			t.Errorf("session survived a password change: %v", err)
		}
	}
	if _, err := s.Login(ctx, "olga", "operator password", "192.0.2.10", ""); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Errorf("old password after change: %v", err)
	}
	d := MustLogin(t, s, "olga", "a brand new password")

	// Disabling ends sessions and refuses logins with the right password.
	if err := s.SetDisabled(ctx, admin, "olga", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, SessionCreds(d.Token)); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
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
	MustLogin(t, s, "olga", "a brand new password")
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 2 || users[0].Name != "olga" || users[0].LastLogin == nil || users[0].Disabled {
		t.Errorf("ListUsers = %+v, %v", users, err)
	}
}

func sessionExpiry(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	c := NewClock()
	s := mustDirectory(t, newBackend(t), access.Options{Now: c.Now, SessionIdle: 30 * time.Minute, SessionAbsolute: 2 * time.Hour})
	ctx := context.Background()
	if err := s.AddUser(ctx, "vera", "viewer password", access.RoleViewer); err != nil {
		t.Fatal(err)
	}

	idle := MustLogin(t, s, "vera", "viewer password")
	c.Advance(29 * time.Minute)
	if _, err := s.Authenticate(ctx, SessionCreds(idle.Token)); err != nil {
		t.Fatalf("session within idle time: %v", err)
	}
	// That use moved the idle expiry: 29 more minutes are fine.
	c.Advance(29 * time.Minute)
	if _, err := s.Authenticate(ctx, SessionCreds(idle.Token)); err != nil {
		t.Fatalf("session used within the extended idle time: %v", err)
	}
	c.Advance(30 * time.Minute)
	if _, err := s.Authenticate(ctx, SessionCreds(idle.Token)); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Fatalf("idle session still valid: %v", err)
	}

	// Absolute expiry: used every 20 minutes, it still ends after 2 hours.
	abs := MustLogin(t, s, "vera", "viewer password")
	for i := 0; i < 5; i++ {
		c.Advance(20 * time.Minute)
		if _, err := s.Authenticate(ctx, SessionCreds(abs.Token)); err != nil {
			t.Fatalf("active session refused after %d min: %v", (i+1)*20, err)
		}
	}
	c.Advance(20 * time.Minute) // 120 minutes
	if _, err := s.Authenticate(ctx, SessionCreds(abs.Token)); delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Fatalf("session past its absolute expiry: %v", err)
	}
}

func withoutCredentials(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	s, _ := fresh(t, newBackend)
	_, err := s.Authenticate(context.Background(), access.Credentials{PeerAddr: "192.0.2.1:1"})
	if delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Errorf("no credentials: %v", err)
	}
	_, err = s.Authenticate(context.Background(), access.Credentials{SessionToken: "made-up"})
	if delivery.ErrorCode(err) != delivery.EUNAUTHORIZED {
		t.Errorf("made-up session: %v", err)
	}
}

func proxyTrust(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	ctx := context.Background()
	open := newBackend(t)
	proxied := mustDirectory(t, open, access.Options{Proxy: access.ProxyOptions{
		Enabled: true, TrustedCIDRs: []string{"10.0.0.0/8", "::1/128"}}})
	plain := mustDirectory(t, open, access.Options{}) // proxy mode off
	if err := plain.AddUser(ctx, "dora", "disabled password", access.RoleViewer); err != nil {
		t.Fatal(err)
	}
	root := "root"
	plain.AddUser(ctx, root, "a long root password", access.RoleAdmin)
	admin, _ := plain.PrincipalFor(ctx, root)
	plain.SetDisabled(ctx, admin, "dora", true)

	tests := []struct {
		name  string
		store access.Directory
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

func loginThrottling(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	s, c := fresh(t, newBackend)
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
	if ra := RetryAfter(t, err); ra != 14*60 { // locked at the 5th failure (minute 4) for 15 min; now minute 5
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
	first := RetryAfter(t, login("operator password", peer))
	c.Advance(time.Duration(first) * time.Second)
	for i := 0; i < 5; i++ {
		login("wrong password!", peer)
	}
	second := RetryAfter(t, login("operator password", peer))
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

func throttleSurvivesRestart(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	open := newBackend(t)
	c := NewClock()
	s := mustDirectory(t, open, access.Options{Now: c.Now})
	ctx := context.Background()
	s.AddUser(ctx, "olga", "operator password", access.RoleOperator)
	for i := 0; i < 5; i++ {
		s.Login(ctx, "olga", "wrong password!", "198.51.100.7", "")
	}
	s2 := mustDirectory(t, open, access.Options{Now: c.Now})
	if _, err := s2.Login(ctx, "olga", "operator password", "198.51.100.7", ""); delivery.ErrorCode(err) != delivery.ETOOMANY {
		t.Errorf("after restart: %v, want ETOOMANY", err)
	}
}

// Forty wrong passwords at once, through two stores on two connection
// pools of the same file (as two console processes would be): the lock is
// checked and the attempt counted in one transaction, so at most
// MaxFailures attempts reach the password check, the rest are refused
// unchecked, and the right password right after is refused too.
func throttleUnderConcurrency(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	ctx := context.Background()
	open := newBackend(t)
	var stores []access.Directory
	for range 2 {
		stores = append(stores, mustDirectory(t, open, access.Options{}))
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
