package tsdb

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// MetricName is the label that holds a series' metric name.
const MetricName = "__name__"

// Label is one name/value pair of a series.
type Label struct {
	Name, Value string
}

// Labels identify a series: a set of pairs sorted by name, one of them
// MetricName. Build them with L.
type Labels []Label

// L builds Labels from name, value pairs and sorts them:
//
//	tsdb.L(tsdb.MetricName, "switchyard_consumer_group_lag", "cluster", "demo", "group", "billing")
//
// A trailing name without a value is ignored. Pairs with an empty value are
// dropped when the series is appended (an empty value means "no such
// label", as in Prometheus).
func L(nameValues ...string) Labels {
	ls := make(Labels, 0, len(nameValues)/2)
	for i := 0; i+1 < len(nameValues); i += 2 {
		ls = append(ls, Label{Name: nameValues[i], Value: nameValues[i+1]})
	}
	slices.SortStableFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	return ls
}

// Get returns the value of the label name, "" when it is absent.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Name returns the metric name.
func (ls Labels) Name() string { return ls.Get(MetricName) }

// Map returns the labels as a map.
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// String returns the canonical form `{__name__="x",a="b"}`, which is also
// the series' key in the store.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// MarshalJSON encodes labels as a JSON object, {"__name__":"x","a":"b"}.
func (ls Labels) MarshalJSON() ([]byte, error) { return json.Marshal(ls.Map()) }

// normalize returns a sorted copy of ls without empty values, or an error
// saying why it cannot name a series.
func normalize(ls Labels) (Labels, error) {
	out := make(Labels, 0, len(ls))
	for _, l := range ls {
		if l.Value != "" {
			out = append(out, l)
		}
	}
	slices.SortStableFunc(out, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	for i, l := range out {
		if l.Name == "" || strings.ContainsAny(l.Name, "=,{}\"") {
			return nil, fmt.Errorf("invalid label name %q", l.Name)
		}
		if i > 0 && out[i-1].Name == l.Name {
			return nil, fmt.Errorf("duplicate label %q", l.Name)
		}
	}
	if out.Name() == "" {
		return nil, fmt.Errorf("series %s has no %s label", out, MetricName)
	}
	return out, nil
}

// parseLabels reads the canonical form written by Labels.String.
func parseLabels(s string) (Labels, error) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, fmt.Errorf("bad label set %q", s)
	}
	rest := s[1 : len(s)-1]
	var ls Labels
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("bad label set %q", s)
		}
		name := rest[:eq]
		q, err := strconv.QuotedPrefix(rest[eq+1:])
		if err != nil {
			return nil, fmt.Errorf("bad label set %q: %w", s, err)
		}
		v, _ := strconv.Unquote(q)
		ls = append(ls, Label{Name: name, Value: v})
		rest = strings.TrimPrefix(rest[eq+1+len(q):], ",")
	}
	return ls, nil
}

// MatchOp is how a Matcher compares a label value.
type MatchOp string

// The matcher operators, as in PromQL.
const (
	MatchEqual     MatchOp = "="
	MatchNotEqual  MatchOp = "!="
	MatchRegexp    MatchOp = "=~"
	MatchNotRegexp MatchOp = "!~"
)

// Matcher selects series by one label. A series without the label matches
// as if its value were "", and regular expressions are anchored at both
// ends, as in PromQL: {group=~"bill.*"}.
type Matcher struct {
	Label string
	Op    MatchOp
	Value string
}

// String renders the matcher in PromQL syntax.
func (m Matcher) String() string { return m.Label + string(m.Op) + strconv.Quote(m.Value) }

// MarshalText writes the matcher in PromQL syntax, so that JSON carries
// matchers as the strings users type: "group=~\"orders.*\"".
func (m Matcher) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads a matcher written by MarshalText (ParseMatcher).
func (m *Matcher) UnmarshalText(b []byte) error {
	v, err := ParseMatcher(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// ParseMatcher reads one matcher in PromQL syntax, `cluster="demo"` or
// `group=~"bill.*"` (the value may also be unquoted). It is meant for the
// JSON API's match[] parameters. Errors are EINVALID.
func ParseMatcher(s string) (Matcher, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "=!")
	if i <= 0 {
		return Matcher{}, invalidf("matcher %q: want label=\"value\", label!=\"value\", label=~\"regexp\" or label!~\"regexp\"", s)
	}
	m := Matcher{Label: strings.TrimSpace(s[:i])}
	rest := s[i:]
	for _, op := range []MatchOp{MatchNotRegexp, MatchRegexp, MatchNotEqual, MatchEqual} {
		if strings.HasPrefix(rest, string(op)) {
			m.Op = op
			rest = strings.TrimSpace(rest[len(op):])
			break
		}
	}
	if m.Op == "" {
		return Matcher{}, invalidf("matcher %q: unknown operator", s)
	}
	if strings.HasPrefix(rest, `"`) {
		v, err := strconv.Unquote(rest)
		if err != nil {
			return Matcher{}, invalidf("matcher %q: bad quoted value", s)
		}
		rest = v
	}
	m.Value = rest
	if _, err := compileMatchers([]Matcher{m}); err != nil {
		return Matcher{}, err
	}
	return m, nil
}

type matcher struct {
	Matcher
	re *regexp.Regexp
	// prefix is a literal every value the regular expression matches
	// starts with: most values are refused by it before the regular
	// expression runs (Prometheus's FastRegexMatcher does the same).
	prefix string
}

func compileMatchers(ms []Matcher) ([]matcher, error) {
	out := make([]matcher, 0, len(ms))
	for _, m := range ms {
		if m.Label == "" {
			return nil, invalidf("matcher %s: label name is empty", m)
		}
		cm := matcher{Matcher: m}
		switch m.Op {
		case MatchEqual, MatchNotEqual:
		case MatchRegexp, MatchNotRegexp:
			re, err := regexp.Compile("^(?:" + m.Value + ")$")
			if err != nil {
				return nil, invalidf("matcher %s: bad regular expression: %v", m, err)
			}
			cm.re = re
			if un, err := regexp.Compile(m.Value); err == nil && !strings.HasPrefix(m.Value, "(?") {
				cm.prefix, _ = un.LiteralPrefix()
			}
		default:
			return nil, invalidf("matcher %s: unknown operator %q (want =, !=, =~ or !~)", m, m.Op)
		}
		out = append(out, cm)
	}
	return out, nil
}

func (m matcher) matches(ls Labels) bool {
	v := ls.Get(m.Label)
	switch m.Op {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return strings.HasPrefix(v, m.prefix) && m.re.MatchString(v)
	default:
		return !strings.HasPrefix(v, m.prefix) || !m.re.MatchString(v)
	}
}

func matchAll(ms []matcher, ls Labels) bool {
	for _, m := range ms {
		if !m.matches(ls) {
			return false
		}
	}
	return true
}

// compileOr compiles the alternatives of Q.Or; nil stays nil (no
// restriction), empty stays empty (nothing matches).
func compileOr(alts [][]Matcher) ([][]matcher, error) {
	if alts == nil {
		return nil, nil
	}
	out := make([][]matcher, 0, len(alts))
	for _, alt := range alts {
		ms, err := compileMatchers(alt)
		if err != nil {
			return nil, err
		}
		out = append(out, ms)
	}
	return out, nil
}

// matchAny reports whether ls matches every matcher of one alternative;
// nil alternatives match everything.
func matchAny(alts [][]matcher, ls Labels) bool {
	if alts == nil {
		return true
	}
	for _, ms := range alts {
		if matchAll(ms, ls) {
			return true
		}
	}
	return false
}

// MatcherSet is a list of matchers compiled once, for callers that test
// many label sets against the same matchers (silences, alert scopes).
type MatcherSet struct{ ms []matcher }

// CompileMatchers compiles matchers; errors are EINVALID.
func CompileMatchers(ms ...Matcher) (MatcherSet, error) {
	c, err := compileMatchers(ms)
	return MatcherSet{ms: c}, err
}

// Matches reports whether every matcher holds for ls (a missing label
// reads as "").
func (s MatcherSet) Matches(ls Labels) bool { return matchAll(s.ms, ls) }

// FromMap builds Labels from a map, sorted by name.
func FromMap(m map[string]string) Labels {
	ls := make(Labels, 0, len(m))
	for k, v := range m {
		ls = append(ls, Label{Name: k, Value: v})
	}
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	return ls
}
