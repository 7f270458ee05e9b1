package access_test

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"

	"switchyard/access"
)

func TestPatternsUnder(t *testing.T) {
	tests := []struct {
		pattern, prefix string
		want            []string
	}{
		{"kafka:prod/orders.*", "kafka:prod/", []string{"orders.*"}},
		{"kafka:prod/orders.*", "kafka:dev/", nil},
		{"kafka:*/orders", "kafka:prod/", []string{"*/orders", "orders"}},
		{"*", "kafka:prod/", []string{"*"}},
		{"kafka:pro?/x", "kafka:prod/", []string{"x"}},
		{"kafka:prod", "kafka:prod/", nil},
		{"rabbitmq:/notify.*", "rabbitmq:/", []string{"notify.*"}},
	}
	for _, tt := range tests {
		if got := access.PatternsUnder(tt.pattern, tt.prefix); !slices.Equal(got, tt.want) {
			t.Errorf("PatternsUnder(%q, %q) = %q, want %q", tt.pattern, tt.prefix, got, tt.want)
		}
	}
}

// GlobRegexp and PatternsUnder agree with MatchResource on every name:
// the time-series store filters with them what the policy decides.
func TestGlobsAgreeWithMatchResource(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab/.:*?é\n["
	word := func(n int, glob bool) string {
		rs := []rune(alphabet)
		var out []rune
		for range rng.IntN(n + 1) {
			r := rs[rng.IntN(len(rs))]
			if !glob && (r == '*' || r == '?') {
				r = 'a'
			}
			out = append(out, r)
		}
		return string(out)
	}
	for range 20000 {
		pat, prefix, rest := word(7, true), word(4, false), word(4, false)
		name := prefix + rest
		want := access.MatchResource(pat, name)
		re := regexp.MustCompile("^(?:" + access.GlobRegexp(pat) + ")$")
		if got := re.MatchString(name); got != want {
			t.Fatalf("GlobRegexp(%q) on %q = %v, MatchResource = %v", pat, name, got, want)
		}
		got := false
		for _, r := range access.PatternsUnder(pat, prefix) {
			if access.MatchResource(r, rest) {
				got = true
			}
		}
		if got != want {
			t.Fatalf("PatternsUnder(%q, %q) = %q on %q: %v, MatchResource(%q) = %v",
				pat, prefix, access.PatternsUnder(pat, prefix), rest, got, name, want)
		}
	}
}
