package redrive

import (
	"switchyard/access"
	"switchyard/dlqstore"
)

// Action is what a job does to its entries.
type Action string

// Job actions.
const (
	ActionRedrive     Action = "redrive"      // publish again, to the origin or Request.Target
	ActionQuarantine  Action = "quarantine"   // out of the way, kept, restorable
	ActionDiscard     Action = "discard"      // dropped with a reason; restorable until retention purges it
	ActionRestore     Action = "restore"      // quarantined or discarded back to dead
	ActionEditRedrive Action = "edit_redrive" // one entry, payload/headers edited, new message id (config: dlq.edit_redrive)
)

// actionRule is what an action does to an entry, the one home of these
// rules: the access action each entry is checked for, the statuses the
// action applies to, the status an entry holds while in the job ("" =
// unchanged) and the status once it is done.
type actionRule struct {
	access   access.Action
	eligible []dlqstore.Status
	hold     dlqstore.Status
	done     dlqstore.Status
}

// ruleOf returns the rule of a, false for an unknown action. A quarantine
// that also publishes holds its entries too (validate).
func ruleOf(a Action) (actionRule, bool) {
	dead, quarantined := dlqstore.StatusDead, dlqstore.StatusQuarantined
	switch a {
	case ActionRedrive:
		return actionRule{access.ActionRedrive, []dlqstore.Status{dead, quarantined}, dlqstore.StatusRedriving, dlqstore.StatusRedriven}, true
	case ActionEditRedrive:
		return actionRule{access.ActionEdit, []dlqstore.Status{dead, quarantined}, dlqstore.StatusRedriving, dlqstore.StatusRedriven}, true
	case ActionQuarantine:
		return actionRule{access.ActionQuarantine, []dlqstore.Status{dead}, "", quarantined}, true
	case ActionDiscard:
		return actionRule{access.ActionDiscard, []dlqstore.Status{dead, quarantined}, "", dlqstore.StatusDiscarded}, true
	case ActionRestore:
		return actionRule{access.ActionDiscard, []dlqstore.Status{quarantined, dlqstore.StatusDiscarded}, "", dead}, true
	}
	return actionRule{}, false
}

// Valid reports whether a is one of the job actions.
func (a Action) Valid() bool {
	_, ok := ruleOf(a)
	return ok
}

// Republishes reports whether a publishes every entry again (redrive,
// edit and redrive): a rate, a canary and a target apply to it.
func (a Action) Republishes() bool { return a == ActionRedrive || a == ActionEditRedrive }

// Access is the access action a job of a checks on each of its entries
// (restore undoes a discard or a quarantine: discard); "" for an unknown
// action. Edit and redrive also needs redrive.
func (a Action) Access() access.Action {
	r, _ := ruleOf(a)
	return r.access
}

// Eligible returns the statuses of the entries an action applies to (nil
// for an unknown action). A job freezes only such entries, and a page
// offers an action on an entry only in one of them.
func Eligible(a Action) []dlqstore.Status {
	r, _ := ruleOf(a)
	return r.eligible
}

func verb(a Action) string {
	if a == ActionEditRedrive {
		return "edit and redrive"
	}
	return string(a)
}
