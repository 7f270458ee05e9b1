package dlqstore

import (
	"bytes"
	"encoding/json"
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
