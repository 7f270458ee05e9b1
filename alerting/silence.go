package alerting

import (
	"cmp"
	"slices"
	"time"

	"switchyard/delivery"
	"switchyard/tsdb"
)

// Silencer answers which silences mute an alert: those active at the time
// it was built whose matchers all hold for the alert's labels. It is built
// once per evaluation (or page) from the stored silences, with every
// matcher compiled once, and is safe for concurrent use.
type Silencer struct {
	active []compiledSilence
}

type compiledSilence struct {
	id  int64
	set tsdb.MatcherSet
}

// NewSilencer returns a Silencer of the silences of ss that are active at
// now. A silence CheckMatchers refuses (the store never holds one) is left
// out rather than applied: with no matcher, or only matchers that hold for
// a missing label, it would mute every alert.
func NewSilencer(ss []Silence, now time.Time) *Silencer {
	s := &Silencer{}
	for i := range ss {
		if !ss[i].Active(now) {
			continue
		}
		set, err := compileSilence(ss[i].Matchers)
		if err != nil {
			continue
		}
		s.active = append(s.active, compiledSilence{id: ss[i].ID, set: set})
	}
	slices.SortFunc(s.active, func(a, b compiledSilence) int { return cmp.Compare(a.id, b.id) })
	return s
}

// Match returns the ids of the active silences whose matchers all hold for
// labels, in increasing order; nil when none does. A label the alert lacks
// reads as "", and regular expressions match whole values, as in
// Alertmanager.
func (s *Silencer) Match(labels map[string]string) []int64 {
	if len(s.active) == 0 {
		return nil
	}
	ls := tsdb.FromMap(labels)
	var ids []int64
	for _, c := range s.active {
		if c.set.Matches(ls) {
			ids = append(ids, c.id)
		}
	}
	return ids
}

// CheckMatchers validates a silence's matchers: at least one, each a valid
// label name with a regular expression that compiles, and at least one
// that does not hold for the empty string — Alertmanager's rule, since a
// silence of only such matchers would mute every alert. Errors: EINVALID,
// with the reason under Details["fields"]["matchers"].
func CheckMatchers(ms []tsdb.Matcher) error {
	_, err := compileSilence(ms)
	return err
}

// compileSilence is CheckMatchers returning the compiled set.
func compileSilence(ms []tsdb.Matcher) (tsdb.MatcherSet, error) {
	fe := FieldErrors{}
	if len(ms) == 0 {
		fe.Add("matchers", "at least one matcher is required")
		return tsdb.MatcherSet{}, fe.Err("silence")
	}
	set, err := tsdb.CompileMatchers(ms...)
	if err != nil {
		// tsdb's message names the matcher and what is wrong with it.
		fe.Add("matchers", "%s", delivery.ErrorMessage(err))
		return tsdb.MatcherSet{}, fe.Err("silence")
	}
	if !slices.ContainsFunc(ms, func(m tsdb.Matcher) bool { return !matchesEmpty(m) }) {
		fe.Add("matchers", "at least one matcher must not match the empty string, or the silence would mute every alert")
		return tsdb.MatcherSet{}, fe.Err("silence")
	}
	return set, nil
}
