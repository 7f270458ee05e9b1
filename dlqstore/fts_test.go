package dlqstore

import (
	"slices"
	"testing"
)

func TestFTSQueryTranslation(t *testing.T) {
	tests := []struct{ in, want string }{
		{"foo", `"foo"`},
		{"foo bar", `"foo" AND "bar"`},
		{"a-b.c", `"a-b.c"`},
		{"foo*", `"foo"*`},
		{`"a b"* x`, `"a b"* AND "x"`},
		{"a OR b NOT c", `"a" OR "b" NOT "c"`},
		{"message:(a OR b) c", `message:( "a" OR "b" ) AND "c"`},
		{`ids:"x y"`, `ids:"x y"`},
		{"http://x", `"http://x"`},
		{`"a ""quoted"" word"`, `"a ""quoted"" word"`},
		{"and or not", `"and" AND "or" AND "not"`},
	}
	// Every query is kept to the searchable columns, never the filters
	// column.
	const all = "{message exception ids code destination service event_type payload key} : ("
	for _, tt := range tests {
		got, err := ftsQuery(tt.in, false)
		if err != nil || got != all+tt.want+")" {
			t.Errorf("ftsQuery(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// Without payload text the parsed query is wrapped in the column set —
// parsed first, so that no parenthesis can close the wrapping early — and
// a payload: filter, in any case, is refused before anything reaches
// FTS5. (The cases of the web's former withoutPayloadColumn rewrite.)
func TestFTSQueryWithoutPayloadText(t *testing.T) {
	for _, tc := range []struct {
		q, want string
		ok      bool
	}{
		{"timeout", `{message exception ids code destination service event_type} : ("timeout")`, true},
		{`"a (b"`, `{message exception ids code destination service event_type} : ("a (b")`, true},
		{"a OR b", `{message exception ids code destination service event_type} : ("a" OR "b")`, true},
		{"message:(a) b", `{message exception ids code destination service event_type} : (message:( "a" ) AND "b")`, true},
		{`"payload:x"`, `{message exception ids code destination service event_type} : ("payload:x")`, true}, // a phrase, not a column
		{"a) OR (b", "", false},
		{"(a", "", false},
		{`"a`, "", false},
		{"payload:x", "", false},
		{"PAYLOAD:x", "", false},
		{"a OR payload:(b)", "", false},
		// The key is the message's too ($key rules mask it).
		{"key:cust-1", "", false},
		{"KEY:x", "", false},
		{"a OR key:(b)", "", false},
		{"code:timeout", `{message exception ids code destination service event_type} : (code:"timeout")`, true},
	} {
		got, err := ftsQuery(tc.q, true)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ftsQuery(%q, true) = %q, %v", tc.q, got, err)
		}
	}
}

// The terms of a search are what an empty result suggests filters for:
// words and phrases, without syntax, and nothing a NOT excludes.
func TestSearchTerms(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"timeout", []string{"timeout"}},
		{"UPSTREAM_TIMEOUT Timeout", []string{"upstream_timeout", "timeout"}},
		{`"order 42" exception:Timeout* code:(a OR b)`, []string{"order 42", "timeout", "a", "b"}},
		{"error NOT timeout", []string{"error"}},
		{"a NOT (b OR c) d", []string{"a", "d"}},
		{"a NOT code:b c", []string{"a", "c"}},
		{`a NOT "b c"`, []string{"a"}},
		{`"unbalanced`, nil},
	} {
		if got := SearchTerms(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("SearchTerms(%q) = %q, want %q", tc.q, got, tc.want)
		}
	}
}
