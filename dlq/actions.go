package dlq

import (
	"encoding/json"
	"slices"

	"switchyard/access"
	"switchyard/redrive"
)

// Actions are the job actions a page offers its caller: those their grants
// allow (each job action's access action, redrive.Action.Access) and, on
// one entry, those that apply to its status (redrive.Eligible). The engine
// judges every entry again when a job starts; these only spare the caller
// a refusal.
type Actions struct {
	Enabled                               bool // jobs are configured
	Redrive, Quarantine, Discard, Restore bool
	// Edit offers edit and redrive: enabled, offered on the entry's redrive
	// and edit, and only on a JSON payload the caller reads in full — a
	// masked payload sent back would overwrite the real values. EditNote
	// says why not when only the payload stands in the way.
	Edit     bool
	EditNote string
}

// Actions are the job actions offered to the caller on e, or on lists
// (any entry their grants reach) when e is nil.
func (s *Service) Actions(c Caller, e *Entry) Actions {
	if s.jobs == nil {
		return Actions{}
	}
	r := access.Res("*")
	if e != nil {
		r = resourceOf(e.Entry)
	}
	offer := func(a redrive.Action) bool {
		return s.policy.Can(c.P, a.Access(), r) && (e == nil || slices.Contains(redrive.Eligible(a), e.Status))
	}
	out := Actions{Enabled: true, Redrive: offer(redrive.ActionRedrive), Quarantine: offer(redrive.ActionQuarantine),
		Discard: offer(redrive.ActionDiscard), Restore: offer(redrive.ActionRestore)}
	if e == nil || !s.jobs.EditEnabled() || !out.Redrive || !offer(redrive.ActionEditRedrive) {
		return out
	}
	switch {
	case !e.PayloadAllowed:
		out.EditNote = "Edit and redrive needs read access to the payload."
	case e.Masked > 0:
		out.EditNote = "Edit and redrive needs the unmasked payload (read_pii): masked values would be sent."
	case !json.Valid(e.DL.Payload):
		out.EditNote = "Edit and redrive works on JSON payloads only."
	default:
		out.Edit = true
	}
	return out
}
