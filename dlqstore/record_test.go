package dlqstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"switchyard/delivery"
)

// jsonHeaders is the reflection encoder the hand-written one replaced.
func jsonHeaders(h delivery.Headers) []byte {
	out := make([]storedHeader, len(h))
	for i, x := range h {
		out[i].K = x.Key
		switch {
		case x.Value == nil:
		case utf8.Valid(x.Value):
			v := string(x.Value)
			out[i].V = &v
		default:
			out[i].B = x.Value
		}
	}
	b, _ := json.Marshal(out)
	return b
}

// The hand-written header encoder writes what encoding/json reads back as
// the same headers, for any key and value: quotes, backslashes, control
// characters, U+2028, invalid UTF-8 (base64 in a value; U+FFFD in a key,
// as encoding/json would store it), empty and nil values.
func TestHeadersEncodeLikeJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", `"`, `\`, "\n", "\t", "\x00", "\x1f", "\x7f", "é", "\u2028", "😀", "\xff", "\xc3", "<", "&", "/"}
	str := func() string {
		var b bytes.Buffer
		for range r.IntN(12) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	var enc encoder
	for i := range 2000 {
		var h delivery.Headers
		for range 1 + r.IntN(4) {
			x := delivery.Header{Key: str()}
			switch r.IntN(4) {
			case 0: // nil value
			case 1:
				x.Value = []byte{}
			default:
				x.Value = []byte(str())
			}
			h = append(h, x)
		}
		b := enc.headers(h)
		if !json.Valid(b) {
			t.Fatalf("case %d: invalid JSON %q", i, b)
		}
		got, err := decodeHeaders(b)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(got) != len(h) {
			t.Fatalf("case %d: %d headers back, want %d", i, len(got), len(h))
		}
		want, err := decodeHeaders(jsonHeaders(h))
		if err != nil {
			t.Fatal(err)
		}
		for j := range h {
			if got[j].Key != want[j].Key || !bytes.Equal(got[j].Value, want[j].Value) || !bytes.Equal(got[j].Value, h[j].Value) {
				t.Fatalf("case %d header %d: got %q=%q, want %q=%q (JSON %s)", i, j, got[j].Key, got[j].Value, want[j].Key, want[j].Value, b)
			}
		}
	}
}

// parseHeaders reads what both encoders wrote (the hand-written one and
// encoding/json's, of rows stored before it) as encoding/json does — keys,
// values, nil against empty — and declines what it does not know, which
// decodeHeaders then hands to encoding/json.
func TestParseHeadersReadsLikeJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "Z", "0", `"`, `\`, "\n", "\t", "\x00", "\x1f", "\x7f", "é", "\u2028", "😀", "\xff", "\xc3", "<", "&", "/", "\xed\xa0\x80"}
	str := func() string {
		var b bytes.Buffer
		for range r.IntN(12) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	same := func(t *testing.T, name string, b []byte) {
		t.Helper()
		want, werr := decodeHeadersJSON(b)
		got, ok := parseHeaders(b)
		if !ok {
			return // encoding/json decides
		}
		if werr != nil {
			t.Fatalf("%s: parsed %q, which encoding/json rejects: %v", name, b, werr)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d headers, encoding/json %d (%s)", name, len(got), len(want), b)
		}
		for j := range want {
			if got[j].Key != want[j].Key || !bytes.Equal(got[j].Value, want[j].Value) || (got[j].Value == nil) != (want[j].Value == nil) {
				t.Fatalf("%s header %d: %q=%q (nil %v), encoding/json %q=%q (nil %v); JSON %s", name, j,
					got[j].Key, got[j].Value, got[j].Value == nil, want[j].Key, want[j].Value, want[j].Value == nil, b)
			}
		}
	}
	var enc encoder
	parsed := 0
	for i := range 3000 {
		var h delivery.Headers
		for range r.IntN(5) {
			x := delivery.Header{Key: str()}
			switch r.IntN(4) {
			case 0:
			case 1:
				x.Value = []byte{}
			default:
				x.Value = []byte(str())
			}
			h = append(h, x)
		}
		for _, b := range [][]byte{enc.headers(h), jsonHeaders(h)} {
			if b == nil {
				continue
			}
			same(t, fmt.Sprint("case ", i), b)
			if _, ok := parseHeaders(b); ok {
				parsed++
			}
		}
	}
	if parsed < 3000 {
		t.Fatalf("the hand-written reader took only %d of the encoded header lists", parsed)
	}
	for _, b := range []string{`[]`, `[ ]`, `[{"k":"a","v":null}]`, `[{"v":"x","k":"a"}]`, `[{"k":"a"}] `, `[{"k":"a","b":"!!"}]`,
		`[{"k":"a\u00e9\ud83d\ude00","v":"\/"}]`, `[{"k":"a","v":"x"},]`, `[{"k":"a","v":"x"}`, `[{"k":"\"}]`, `[{"k":"a","x":"y"}]`} {
		same(t, b, []byte(b))
		got, gerr := decodeHeaders([]byte(b))
		want, werr := decodeHeadersJSON([]byte(b))
		if (gerr == nil) != (werr == nil) || len(got) != len(want) {
			t.Errorf("%s: decodeHeaders %v (%v), encoding/json %v (%v)", b, got, gerr, want, werr)
		}
	}
}
