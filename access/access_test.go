package access_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"switchyard/access"
	"switchyard/access/accesstest"
	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/sqldb"
)

func mustDB(t *testing.T) *sql.DB {
	t.Helper()
	return mustDBAt(t, filepath.Join(t.TempDir(), "console.db"))
}

// mustDBAt opens console.db at path with access's schema, as cmd/console
// does; each call is a new connection pool, as another process's would be.
func mustDBAt(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), path, access.Schema())
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
func mustStore(t *testing.T) (*access.Store, *deliverytest.Clock, *sql.DB) {
	t.Helper()
	db := mustDB(t)
	c := accesstest.NewClock()
	return mustStoreOpts(t, db, access.Options{Now: c.Now}), c, db
}

// The SQLite Store keeps the Directory contract and Audit the AuditLog
// contract; every open is a new pool over the case's file.
func TestStoreContract(t *testing.T) {
	accesstest.TestDirectory(t, func(t *testing.T) accesstest.OpenDirectory {
		path := filepath.Join(t.TempDir(), "console.db")
		return func(t *testing.T, opts access.Options) (access.Directory, error) {
			return access.NewStore(mustDBAt(t, path), opts)
		}
	})
}

func TestAuditContract(t *testing.T) {
	accesstest.TestAuditLog(t, func(t *testing.T) accesstest.OpenAudit {
		path := filepath.Join(t.TempDir(), "console.db")
		return func(t *testing.T, opts access.AuditOptions) (access.AuditLog, error) {
			return access.NewAuditWith(mustDBAt(t, path), opts)
		}
	})
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
