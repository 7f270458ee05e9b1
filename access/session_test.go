package access_test

import (
	"context"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/access/accesstest"
	"switchyard/sqldb"
)

func TestSessionIdleWriteAtMostOncePerMinute(t *testing.T) {
	s, c, db := mustStore(t)
	ctx := context.Background()
	s.AddUser(ctx, "vera", "viewer password", access.RoleViewer)
	sess := accesstest.MustLogin(t, s, "vera", "viewer password")
	read := func() string {
		var v string
		db.QueryRow(`SELECT last_seen_at FROM sessions`).Scan(&v)
		return v
	}
	first := read()
	c.Advance(30 * time.Second)
	s.Authenticate(ctx, accesstest.SessionCreds(sess.Token))
	if read() != first {
		t.Error("session written again within a minute")
	}
	c.Advance(31 * time.Second)
	s.Authenticate(ctx, accesstest.SessionCreds(sess.Token))
	if got := read(); got != sqldb.FormatTime(c.Now()) {
		t.Errorf("last_seen_at = %s after a minute, want %s", got, sqldb.FormatTime(c.Now()))
	}
}

// Only hashes of the session cookie and of an API token reach the
// database; the plaintexts are shown once and never stored.
func TestSecretsAreNotStored(t *testing.T) {
	s, _, db := mustStore(t)
	ctx := context.Background()
	if err := s.AddUser(ctx, "olga", "operator password", access.RoleOperator); err != nil {
		t.Fatal(err)
	}
	a := accesstest.MustLogin(t, s, "olga", "operator password")
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM sessions WHERE token_hash = ? OR id = ?`, a.Token, a.Token).Scan(&n)
	if n != 0 {
		t.Fatal("the cookie value is stored in the database")
	}
	tok, err := s.CreateToken(ctx, "olga", "deploy", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	db.QueryRow(`SELECT COUNT(*) FROM api_tokens WHERE token_hash LIKE '%' || ? || '%'`, tok).Scan(&n)
	if n != 0 {
		t.Fatal("plaintext token stored in the database")
	}
}
