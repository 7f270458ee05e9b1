// Package accesstest holds the conformance suites of access's contracts,
// which every implementation runs from its own tests: TestDirectory for
// access.Directory and TestAuditLog for access.AuditLog. The SQLite store
// (access.Store, access.Audit) runs them in access's tests; a PostgreSQL
// store would run the same. They check behaviour a user would notice —
// who can log in, for how long, with what; what a binding grants; what the
// audit log records and proves — through the contracts only. What an
// implementation keeps in its tables (hashes instead of secrets, how often
// a session is written) its own tests check.
//
// The helpers (NewClock, MustLogin, SessionCreds, RetryAfter, AppendN,
// TestKey) are exported for those tests too.
package accesstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
)

// OpenDirectory returns a Directory with opts over the data of one
// backend. The suite calls its factory once per case for a fresh, empty
// backend, then OpenDirectory as often as the case needs: a second call is
// another console process on the same data, or the same one restarted.
// With opts.Audit nil the Directory records to an AuditLog over the same
// data. Errors: EINVALID for bad opts.
type OpenDirectory func(t *testing.T, opts access.Options) (access.Directory, error)

// OpenAudit is OpenDirectory for an AuditLog. Errors: EINVALID for bad
// opts (a key shorter than access.MinAuditKeyLen).
type OpenAudit func(t *testing.T, opts access.AuditOptions) (access.AuditLog, error)

// TestDirectory runs the Directory contract. newBackend is called once per
// case and must return an OpenDirectory over an empty backend.
func TestDirectory(t *testing.T, newBackend func(t *testing.T) OpenDirectory) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, newBackend func(t *testing.T) OpenDirectory)
	}{
		{"options", options},
		{"add user validation", addUserValidation},
		{"ensure admin", ensureAdmin},
		{"session lifecycle", sessionLifecycle},
		{"session expiry", sessionExpiry},
		{"tokens", tokens},
		{"without credentials", withoutCredentials},
		{"proxy trust", proxyTrust},
		{"group bindings via proxy", groupBindingsViaProxy},
		{"bindings refuse accidental grants", bindingsRefuseAccidentalGrants},
		{"login throttling", loginThrottling},
		{"throttle survives restart", throttleSurvivesRestart},
		{"throttle under concurrency", throttleUnderConcurrency},
		{"audits logins and admin changes", auditsLoginsAndAdminChanges},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newBackend) })
	}
}

// TestAuditLog runs the AuditLog contract. newBackend is called once per
// case and must return an OpenAudit over an empty backend.
func TestAuditLog(t *testing.T, newBackend func(t *testing.T) OpenAudit) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, newBackend func(t *testing.T) OpenAudit)
	}{
		{"append, list, export", appendListExport},
		{"concurrent appends keep one chain", concurrentAppends},
		{"refuses to continue a keyed chain without its key", refusesAnotherKey},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newBackend) })
	}
}

// NewClock returns a manual clock stopped at 2025-01-01 12:00 UTC.
func NewClock() *deliverytest.Clock {
	return deliverytest.NewClock(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC))
}

func mustDirectory(t *testing.T, open OpenDirectory, opts access.Options) access.Directory {
	t.Helper()
	d, err := open(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustAudit(t *testing.T, open OpenAudit, opts access.AuditOptions) access.AuditLog {
	t.Helper()
	a, err := open(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fresh returns a Directory on an empty backend with a controllable clock.
func fresh(t *testing.T, newBackend func(t *testing.T) OpenDirectory) (access.Directory, *deliverytest.Clock) {
	t.Helper()
	c := NewClock()
	return mustDirectory(t, newBackend(t), access.Options{Now: c.Now}), c
}

// MustLogin logs user in from 192.0.2.10 or fails the test.
func MustLogin(t *testing.T, s access.Authenticator, user, pw string) access.Session {
	t.Helper()
	sess, err := s.Login(context.Background(), user, pw, "192.0.2.10:5555", "test-agent")
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return sess
}

// SessionCreds are the credentials of a request with the session cookie tok.
func SessionCreds(tok string) access.Credentials {
	return access.Credentials{SessionToken: tok, PeerAddr: "192.0.2.10:5555"}
}

// RetryAfter is the retry_after_seconds of an ETOOMANY error.
func RetryAfter(t *testing.T, err error) int {
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

// TestKey is a 32-byte audit key.
var TestKey = []byte("0123456789abcdef0123456789abcdef")

// AppendN appends n successful "redrive" events by alice.
func AppendN(t *testing.T, a access.AuditLog, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := a.Append(context.Background(), access.AuditEvent{Actor: "alice", Action: "redrive", Outcome: access.OutcomeSuccess,
			Details: map[string]any{"count": i}}); err != nil {
			t.Fatal(err)
		}
	}
}
