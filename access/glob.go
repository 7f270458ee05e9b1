package access

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// GlobRegexp turns a resource pattern into a regular expression (RE2
// syntax, unanchored: the caller anchors it, as PromQL matchers and tsdb do)
// that matches exactly the names MatchResource(pattern, name) accepts. It
// lets a store that filters by label regular expressions (the time-series
// store, a Prometheus) apply the same rules as the policy.
func GlobRegexp(pattern string) string {
	var b strings.Builder
	for i := 0; i < len(pattern); {
		switch c := pattern[i]; c {
		case '*':
			b.WriteString(`(?s:.*)`)
			i++
			continue
		case '?':
			b.WriteString(`(?s:.)`)
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(pattern[i:])
		if r == utf8.RuneError && w == 1 {
			// A regular expression cannot hold an invalid byte; the
			// matcher reads one in a name as U+FFFD.
			b.WriteString(`\x{FFFD}`)
		} else {
			b.WriteString(regexp.QuoteMeta(pattern[i : i+w]))
		}
		i += w
	}
	return b.String()
}

// PatternsUnder says what a resource pattern requires of the rest of names
// that begin with prefix: the patterns r such that pattern matches
// prefix+rest exactly when one of them matches rest. None means no name
// under prefix matches; a pattern of only stars means every one does.
//
//	PatternsUnder("kafka:prod/orders.*", "kafka:prod/") = ["orders.*"]
//	PatternsUnder("kafka:prod/orders.*", "kafka:dev/")  = []
//	PatternsUnder("kafka:*/orders", "kafka:prod/")      = ["*/orders", "orders"]
//
// Callers that filter by separate labels (a series' cluster and topic)
// build the prefix with KafkaTopic(cluster, "").Name and the like, so that
// resource names are still spelled only here.
func PatternsUnder(pattern, prefix string) []string {
	// The positions of pattern that can have consumed the prefix so far,
	// as in a glob's NFA: a star stays put while it swallows a character
	// (and may also have matched nothing); anything else moves on.
	states := starClosure(pattern, []int{0})
	for n := 0; n < len(prefix) && len(states) > 0; {
		_, w := utf8.DecodeRuneInString(prefix[n:])
		var next []int
		for _, p := range states {
			if p >= len(pattern) {
				continue
			}
			switch pattern[p] {
			case '*':
				next = append(next, p)
			case '?':
				next = append(next, p+1)
			default:
				// Literals compare byte for byte, as in MatchResource.
				if pattern[p] == prefix[n] {
					if w > 1 && !strings.HasPrefix(pattern[p:], prefix[n:n+w]) {
						continue
					}
					next = append(next, p+w)
				}
			}
		}
		states = starClosure(pattern, next)
		n += w
	}
	var out []string
	for _, p := range states {
		if p > 0 && pattern[p-1] == '*' && slices.Contains(states, p-1) {
			continue // "*x" already covers "x"
		}
		out = append(out, pattern[p:])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// starClosure adds, for every position at a star, the position after it
// (the star may match nothing), and drops duplicates.
func starClosure(pattern string, states []int) []int {
	var out []int
	seen := map[int]bool{}
	for i := 0; i < len(states); i++ {
		p := states[i]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		if p < len(pattern) && pattern[p] == '*' {
			states = append(states, p+1)
		}
	}
	return out
}

// MatchesAll reports whether a pattern matches every name (it is only
// stars).
func MatchesAll(pattern string) bool {
	return pattern != "" && strings.Trim(pattern, "*") == ""
}
