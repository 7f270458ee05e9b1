// Package access decides who may do what in the console.
//
// The contracts, declared once in contract.go, are what the rest of the
// console uses: Directory (Authenticator, UserStore, TokenStore,
// RoleStore, BindingStore) turns a request's Credentials into a Principal
// that carries its Grants and keeps the accounts, and AuditLog is the
// hash-chained audit log. accesstest runs their conformance suites against
// any implementation. Store and Audit are the SQLite implementations over
// console.db, whose tables Schema (schema.go) owns.
//
// Where each rule lives: Policy (policy.go) is the one pure function that
// authorizes every request against a principal's grants, and resource.go
// builds and parses the resource names it matches; authenticate.go
// decides which credential counts (token, session, trusted proxy);
// session.go opens and expires sessions and throttle.go counts login
// attempts; users.go, tokens.go, roles.go and bindings.go hold the admin
// changes, each authorized and audited by adminOp (admin.go) and written
// in one transaction (Store.inTx); grants.go resolves bindings and roles
// into grants; secrets.go validates names and passwords and makes and
// hashes tokens; audit.go and anchor.go keep and anchor the chain;
// EnsureServiceAccount (service.go) is written over Directory alone;
// Masker (pii.go) hides PII in payloads.
package access
