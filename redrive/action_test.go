package redrive

import (
	"slices"
	"testing"

	"switchyard/access"
	"switchyard/dlqstore"
)

// Each action applies to entries in the statuses it names, the one list
// the engine freezes by and the pages offer buttons by.
func TestEligible(t *testing.T) {
	dead, quarantined, discarded := dlqstore.StatusDead, dlqstore.StatusQuarantined, dlqstore.StatusDiscarded
	for _, tc := range []struct {
		a    Action
		want []dlqstore.Status
	}{
		{ActionRedrive, []dlqstore.Status{dead, quarantined}},
		{ActionEditRedrive, []dlqstore.Status{dead, quarantined}},
		{ActionQuarantine, []dlqstore.Status{dead}},
		{ActionDiscard, []dlqstore.Status{dead, quarantined}},
		{ActionRestore, []dlqstore.Status{quarantined, discarded}},
		{"explode", nil},
	} {
		if got := Eligible(tc.a); !slices.Equal(got, tc.want) {
			t.Errorf("Eligible(%s) = %v, want %v", tc.a, got, tc.want)
		}
		if tc.a.Valid() != (tc.want != nil) {
			t.Errorf("%s.Valid() = %v", tc.a, tc.a.Valid())
		}
	}
	for _, st := range []dlqstore.Status{dlqstore.StatusRedriving, dlqstore.StatusRedriven, dlqstore.StatusResolved} {
		for _, a := range []Action{ActionRedrive, ActionQuarantine, ActionDiscard, ActionRestore} {
			if slices.Contains(Eligible(a), st) {
				t.Errorf("%s applies to a %s entry", a, st)
			}
		}
	}
}

// The access action a job checks on its entries, which the pages' buttons
// are offered by too: restore undoes a discard.
func TestAccess(t *testing.T) {
	for a, want := range map[Action]access.Action{
		ActionRedrive: access.ActionRedrive, ActionEditRedrive: access.ActionEdit, ActionQuarantine: access.ActionQuarantine,
		ActionDiscard: access.ActionDiscard, ActionRestore: access.ActionDiscard, "explode": "",
	} {
		if got := a.Access(); got != want {
			t.Errorf("%s.Access() = %q, want %q", a, got, want)
		}
	}
}
