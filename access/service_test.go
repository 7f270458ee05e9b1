package access_test

import (
	"context"
	"testing"
	"time"

	"switchyard/access"
)

// A service account can do exactly what it was given, and asking again
// issues a new token without duplicating the account, role or binding.
func TestEnsureServiceAccount(t *testing.T) {
	ctx := context.Background()
	s, _, _ := mustStore(t)
	tok, err := access.EnsureServiceAccount(ctx, s, "demo-services", []access.Action{access.ActionView}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, access.Credentials{Authorization: "Bearer " + tok})
	if err != nil {
		t.Fatal(err)
	}
	if err := (access.Policy{}).Authorize(p, access.ActionView, access.Res("*")); err != nil {
		t.Errorf("service account cannot view: %v", err)
	}
	if err := (access.Policy{}).Authorize(p, access.ActionAdmin, access.Res("console:admin")); err == nil {
		t.Error("service account got admin")
	}
	tok2, err := access.EnsureServiceAccount(ctx, s, "demo-services", []access.Action{access.ActionView}, time.Hour)
	if err != nil || tok2 == tok {
		t.Fatalf("second call: token %q err %v, want a new token", tok2, err)
	}
	bs, _ := s.ListBindings(ctx)
	n := 0
	for _, b := range bs {
		if b.Subject == "user:demo-services" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d bindings for the service account, want 1", n)
	}
}
