package dlq

import (
	"context"
	"time"

	"switchyard/dlqstore"
)

// DefaultRedriveWatch is how long a redriven message is watched for a
// re-failure before its entry says "not seen again" (Options.RedriveWatch,
// the console's dlq.redrive_watch).
const DefaultRedriveWatch = time.Hour

// Outcome is what became of a redriven entry's message for the pages and
// the API: failed again (as RefailedAs), still watched, or not seen again
// once the watch window has passed since it was sent.
func (s *Service) Outcome(e dlqstore.Entry) dlqstore.RedriveOutcome {
	return e.Outcome(s.now(), s.watch)
}

// RedriveWatch is how long a redriven message is watched for a re-failure.
func (s *Service) RedriveWatch() time.Duration { return s.watch }

// Refailures lists the re-failures of a job's messages the caller may
// view, for a job they may see (the engine decides), oldest first, up to
// limit, and how many there are. Errors: ENOTFOUND (no engine, or a job
// they may not see).
func (s *Service) Refailures(ctx context.Context, c Caller, jobID int64, limit int) ([]dlqstore.Refailure, int, error) {
	e, err := s.engine()
	if err != nil {
		return nil, 0, err
	}
	return e.Refailures(ctx, c.Actor, jobID, limit)
}
