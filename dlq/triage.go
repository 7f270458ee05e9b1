package dlq

import (
	"context"
	"strconv"
	"strings"
	"time"

	"switchyard/access"
	"switchyard/dlqstore"
)

// triageResource is what triage is checked on: it changes shared state of
// a cause that may span tenants and destinations, so it is redrive on the
// dead-letter area as a whole (operators and admins bound to it).
func triageResource() access.Resource { return access.Res(access.ConsoleDLQ) }

// MayTriage reports whether the caller may change triage state, for the
// pages to offer it.
func (s *Service) MayTriage(c Caller) bool {
	return s.policy.Can(c.P, access.ActionRedrive, triageResource())
}

// SetTriage changes the triage state of a group the caller can see,
// records the change — made or refused by the store — as dlq.triage in the
// audit log, and returns the group as the caller sees it. Errors:
// EUNAUTHORIZED, EFORBIDDEN (see MayTriage), ENOTFOUND (also for a group
// the caller cannot see), EINVALID.
func (s *Service) SetTriage(ctx context.Context, c Caller, id int64, t dlqstore.Triage) (dlqstore.Group, error) {
	if err := s.policy.Authorize(c.P, access.ActionRedrive, triageResource()); err != nil {
		return dlqstore.Group{}, err
	}
	scope := s.scope(c)
	if _, err := s.store.Group(ctx, id, scope); err != nil {
		return dlqstore.Group{}, err
	}
	t.UpdatedBy = c.P.User
	_, err := s.store.SetTriage(ctx, id, t)
	s.cache.Invalidate() // the landing page shows the change at once
	if s.audit != nil {
		outcome := access.OutcomeSuccess
		if err != nil {
			outcome = access.OutcomeFailure
		}
		ev := s.event(c, "dlq.triage", triageResource().Name, outcome)
		ev.AffectedIDs = []string{strconv.FormatInt(id, 10)}
		ev.Reason = strings.TrimSpace(t.Note)
		ev.Details = map[string]any{"group": id, "state": t.State, "owner": strings.TrimSpace(t.Owner)}
		if !t.SnoozedUntil.IsZero() {
			ev.Details["snoozed_until"] = t.SnoozedUntil.UTC().Format(time.RFC3339)
		}
		if aerr := s.audit.Append(ctx, ev); aerr != nil && err == nil {
			err = aerr
		}
	}
	if err != nil {
		return dlqstore.Group{}, err
	}
	return s.store.Group(ctx, id, scope)
}
