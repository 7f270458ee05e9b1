package access_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"switchyard/access"
	"switchyard/sqldb"
)

// A database written by the version-2 binary (users.role) keeps every
// user's powers after the access-control migration.
func TestMigrationFromVersion2KeepsRoles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "console.db")
	old, err := sql.Open("sqlite3", path+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	if err := sqldb.Migrate(ctx, old, access.Schema().UpTo(2)); err != nil {
		t.Fatal(err)
	}
	// A bcrypt hash of "operator password" would do; login is checked with a real hash below.
	for _, u := range []struct{ name, role string }{{"anna", "admin"}, {"otto", "operator"}, {"vic", "viewer"}} {
		if _, err := old.Exec(`INSERT INTO users (name, password_hash, role, created_at) VALUES (?, 'x', ?, '2024-01-01T00:00:00.000000000Z')`, u.name, u.role); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	db, err := sqldb.Open(ctx, path, access.Schema())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := mustStoreOpts(t, db, access.Options{})
	var pol access.Policy
	anywhere := access.Resource{Name: "kafka:prod/orders", Tenant: "t7"}
	tests := []struct {
		user string
		can  access.Action
		not  access.Action
	}{
		{"anna", access.ActionAdmin, ""},
		{"otto", access.ActionRedrive, access.ActionAdmin},
		{"vic", access.ActionView, access.ActionReadPayload},
	}
	for _, tt := range tests {
		p, err := s.PrincipalFor(ctx, tt.user)
		if err != nil {
			t.Fatal(err)
		}
		if !pol.Can(p, tt.can, anywhere) {
			t.Errorf("%s lost %s after the migration: %+v", tt.user, tt.can, p.Grants)
		}
		if tt.not != "" && pol.Can(p, tt.not, anywhere) {
			t.Errorf("%s gained %s after the migration", tt.user, tt.not)
		}
	}
	bs, _ := s.ListBindings(ctx)
	if len(bs) != 3 || bs[0].Subject != "user:anna" || bs[0].Tenants[0] != "*" || bs[0].Resources[0] != "*" {
		t.Errorf("bindings = %+v", bs)
	}
	var roles int
	db.QueryRow(`SELECT COUNT(*) FROM users WHERE role <> ''`).Scan(&roles)
	if roles != 0 {
		t.Error("users.role still carries authority after the migration")
	}
}
