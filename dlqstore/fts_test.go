package dlqstore

import "testing"

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
	for _, tt := range tests {
		got, err := ftsQuery(tt.in, false)
		if err != nil || got != tt.want {
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
		{"timeout", `{message exception ids} : ("timeout")`, true},
		{`"a (b"`, `{message exception ids} : ("a (b")`, true},
		{"a OR b", `{message exception ids} : ("a" OR "b")`, true},
		{"message:(a) b", `{message exception ids} : (message:( "a" ) AND "b")`, true},
		{`"payload:x"`, `{message exception ids} : ("payload:x")`, true}, // a phrase, not a column
		{"a) OR (b", "", false},
		{"(a", "", false},
		{`"a`, "", false},
		{"payload:x", "", false},
		{"PAYLOAD:x", "", false},
		{"a OR payload:(b)", "", false},
	} {
		got, err := ftsQuery(tc.q, true)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ftsQuery(%q, true) = %q, %v", tc.q, got, err)
		}
	}
}
