package delivery

import (
	"errors"
	"fmt"
	"slices"
)

// Which topics and queues hold dead letters. The platform's own convention
// is <name>.dlq (DLQTopic, DLQQueue, IsDLQName); clusters that predate it
// use others, so the console finds dead-letter sources with DLQMatcher over
// glob patterns, the defaults being the conventions found in the wild. The
// collector (which marks DLQ topics and queues on the dashboards), the
// indexer (which indexes them) and config validation all use DLQMatcher,
// so that a pattern means the same to each.

// defaultDLQPatterns: the platform's <name>.dlq, Spring's .DLT, dlq.<name>,
// -dlq and MassTransit's _error. Read only; DefaultDLQPatterns hands out
// copies.
var defaultDLQPatterns = [...]string{"*.dlq", "*.DLT", "dlq.*", "*-dlq", "*_error"}

// DefaultDLQPatterns returns the patterns a DLQMatcher uses when it is
// given none: *.dlq, *.DLT, dlq.*, *-dlq, *_error.
func DefaultDLQPatterns() []string { return slices.Clone(defaultDLQPatterns[:]) }

// DLQMatcher decides which topics or queues are dead-letter sources: a name
// that matches one of its glob patterns (MatchGlob) or is one of its
// explicit names. The zero value matches DefaultDLQPatterns.
type DLQMatcher struct {
	patterns []string
	names    []string
	// custom: patterns were given (maybe none), so the defaults do not apply.
	custom bool
}

// NewDLQMatcher returns a matcher for patterns (DefaultDLQPatterns when
// nil; an empty, non-nil slice matches the explicit names only) and names.
// An empty pattern is an error: it matches no topic or queue, so it can
// only be a mistake in the configuration.
func NewDLQMatcher(patterns, names []string) (DLQMatcher, error) {
	var errs []error
	for _, p := range patterns {
		if p == "" {
			errs = append(errs, errors.New(`pattern "" matches no topic or queue name`))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return DLQMatcher{}, fmt.Errorf("dead-letter patterns: %w", err)
	}
	return DLQMatcher{patterns: slices.Clone(patterns), names: slices.Clone(names), custom: patterns != nil}, nil
}

// Match reports whether name is a dead-letter source.
func (m DLQMatcher) Match(name string) bool {
	if slices.Contains(m.names, name) {
		return true
	}
	patterns := m.patterns
	if !m.custom {
		patterns = defaultDLQPatterns[:]
	}
	for _, p := range patterns {
		if MatchGlob(p, name) {
			return true
		}
	}
	return false
}
