package redrive

import (
	"context"
	"testing"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

// The engine keeps a filter's text off payloads for a caller who may not
// read them unmasked, whoever calls it (pages, API, CLI): a plan's count
// must not tell whether a masked value is in some payload. The fixtures'
// partition keys (k0, k1, k2) are in their payloads only: the envelope's
// metadata, PII as a key is.
func TestFilterTextCannotProbePayloads(t *testing.T) {
	r := newRig(t, Options{}, "orders")
	r.deadLetters(t, "orders", "t1", 3, 3, 0)
	r.deadLetters(t, "orders", "t2", 1, 1, 0) // k0 of t2
	ctx := context.Background()
	// Text is indexed after capture: the probes below must meet a text
	// index that holds every entry, or a 0 would prove nothing.
	if err := r.store.WaitText(ctx); err != nil {
		t.Fatal(err)
	}
	grant := func(user string, tenants []string, acts ...access.Action) Actor {
		return Actor{P: &access.Principal{User: user, Grants: []access.Grant{
			{Role: "custom", Actions: acts, Resources: []string{"kafka:main/orders"}, Tenants: tenants}}}}
	}
	full := []access.Action{access.ActionView, access.ActionReadPayload, access.ActionReadPII, access.ActionDiscard}
	// pia may read payloads and PII of t1, but discard in t2 too: her
	// plans reach t2's payloads, which she may not read.
	pia := Actor{P: &access.Principal{User: "pia", Grants: []access.Grant{
		{Role: "custom", Actions: full, Resources: []string{"kafka:main/orders"}, Tenants: []string{"t1"}},
		{Role: "custom", Actions: []access.Action{access.ActionDiscard}, Resources: []string{"kafka:main/orders"}, Tenants: []string{"t2"}}}}}
	plan := func(a Actor, q string) (int, error) {
		p, err := r.engine.Plan(ctx, a, Request{Action: ActionDiscard, Selector: Selector{Filter: &dlqstore.Filter{Q: q}}})
		return p.Count, err
	}
	for _, tc := range []struct {
		name string
		a    Actor
		q    string
		want int
	}{
		{"admin searches payloads", admin, "k1", 1},
		{"read_pii in every tenant", grant("rita", []string{"t1"}, full...), "k1", 1},
		{"no read_pii", grant("tess", []string{"t1"}, access.ActionView, access.ActionReadPayload, access.ActionDiscard), "k1", 0},
		{"no read_payload", grant("vic", []string{"t1"}, access.ActionView, access.ActionReadPII, access.ActionDiscard), "k1", 0},
		{"read_pii short of the action's tenants", pia, "k0", 0},
		{"message text stays searchable", pia, "order", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := plan(tc.a, tc.q); err != nil || got != tc.want {
				t.Errorf("plan of %q = %d (%v), want %d", tc.q, got, err, tc.want)
			}
		})
	}

	tess := grant("tess", []string{"t1"}, access.ActionView, access.ActionReadPayload, access.ActionDiscard)
	if _, err := plan(tess, "payload:k1"); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("tess plan of payload:k1 = %v, want EINVALID", err)
	}
	// Starting is guarded the same way: nothing matches, nothing is
	// discarded.
	_, err := r.engine.Start(ctx, tess, Request{Action: ActionDiscard, Reason: "probe",
		Selector: Selector{Filter: &dlqstore.Filter{Q: "k1"}}})
	if delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("tess start on k1 = %v, want EINVALID (an empty selection)", err)
	}
	if p, _ := r.store.FindEntries(ctx, dlqstore.Filter{Status: []dlqstore.Status{dlqstore.StatusDiscarded}}); p.Total != 0 {
		t.Errorf("%d entries discarded by a payload probe", p.Total)
	}
}
