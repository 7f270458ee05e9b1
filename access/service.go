package access

import (
	"context"
	"time"

	"switchyard/delivery"
)

// systemPrincipal acts for the console itself (in-process services, start-up
// wiring); its operations are audited with actor "system".
func systemPrincipal() *Principal {
	return &Principal{User: ActorSystem, Method: MethodCLI, Grants: []Grant{{
		Subject: "user:" + ActorSystem, Role: RoleAdmin, Actions: Actions(), Resources: []string{"*"}, Tenants: []string{"*"},
	}}}
}

// EnsureServiceAccount makes sure d has a local account for an in-process
// service (the demo's services exporting metrics), holding a custom role of
// the same name with exactly these actions on every resource, and issues a
// fresh API token for it with the given lifetime. The account's password is
// random and never shown: it signs in only with tokens. It is written over
// the Directory contract, so every implementation gets it as it is.
func EnsureServiceAccount(ctx context.Context, s Directory, name string, actions []Action, ttl time.Duration) (string, error) {
	sys := systemPrincipal()
	pw, err := GeneratePassword()
	if err != nil {
		return "", err
	}
	if err := s.CreateUser(ctx, sys, name, pw); err != nil && delivery.ErrorCode(err) != delivery.ECONFLICT {
		return "", err
	}
	if err := s.SaveRole(ctx, sys, Role{Name: name, Actions: actions}); err != nil {
		return "", err
	}
	bindings, err := s.ListBindings(ctx)
	if err != nil {
		return "", err
	}
	bound := false
	for _, b := range bindings {
		if b.Subject == "user:"+name && b.Role == name {
			bound = true
		}
	}
	if !bound {
		if _, err := s.AddBinding(ctx, sys, Binding{Subject: "user:" + name, Role: name, Resources: []string{"*"}, Tenants: []string{"*"}}); err != nil {
			return "", err
		}
	}
	return s.IssueToken(ctx, sys, name, "in-process service", ttl)
}
