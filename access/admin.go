package access

import (
	"context"
	"database/sql"
	"time"

	"switchyard/delivery"
	"switchyard/sqldb"
)

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// adminResource is the resource every user, token, role and binding change
// is authorized on.
var adminResource = Res(ConsoleAdmin)

// adminOp authorizes by for the admin action (or allows it when self is
// true: a user acting on their own tokens), runs fn, and audits the result:
// denied, failure (with the safe message as reason) or success. A success
// whose audit record cannot be written returns the audit error.
func (s *Store) adminOp(ctx context.Context, by *Principal, self bool, ev *AuditEvent, fn func() error) error {
	if by == nil {
		return delivery.Errorf(delivery.EUNAUTHORIZED, "authentication required")
	}
	if !self {
		if err := (Policy{}).Authorize(by, ActionAdmin, adminResource); err != nil {
			ev.Outcome, ev.Reason = OutcomeDenied, delivery.ErrorMessage(err)
			if aerr := s.record(ctx, by, *ev); aerr != nil {
				return aerr
			}
			return err
		}
	}
	err := fn()
	if err != nil {
		ev.Outcome, ev.Reason = OutcomeFailure, delivery.ErrorMessage(err)
	} else {
		ev.Outcome = OutcomeSuccess
	}
	if aerr := s.record(ctx, by, *ev); aerr != nil && err == nil {
		return aerr
	}
	return err
}

func parseNullTime(ns sql.NullString) (*time.Time, error) {
	if !ns.Valid {
		return nil, nil
	}
	t, err := sqldb.ParseTime(ns.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}
