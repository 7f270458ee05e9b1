package dlqstore

import (
	"strings"

	"switchyard/delivery"
)

// ftsColumns are the column names a query may filter on ("message:timeout").
var ftsColumns = map[string]bool{"message": true, "exception": true, "ids": true, "payload": true}

// textColumns are the columns a search without payload text keeps to
// (Filter.NoPayloadText), as an FTS5 column set: a column filter nested
// inside it can only narrow it further.
const textColumns = "{message exception ids}"

// ftsQuery turns what an operator types into an FTS5 query, or an EINVALID
// error that says what is wrong. The syntax is FTS5's own subset: words
// (implicitly ANDed), "quoted phrases", a trailing * for a prefix, AND, OR,
// NOT (binary: "a NOT b"), parentheses and column filters (message:,
// exception:, ids:, payload:). Every word is quoted before it reaches FTS5,
// so that an id with '-', '.', ':' or '/' in it is a phrase of its parts
// rather than an FTS5 syntax error, and lower-case and/or/not are words.
//
// With noPayload (Filter.NoPayloadText) the whole query is kept to
// textColumns and a payload: filter is refused: the query is parsed
// before it is wrapped, so no parenthesis can close the wrapping early.
func ftsQuery(q string, noPayload bool) (string, error) {
	var out []string
	prev := "start" // kind of the previous item: start, term, op, open, close, col
	depth := 0
	bad := func(format string) error {
		return delivery.Errorf(delivery.EINVALID, format, q)
	}
	// emit adds an operand, ANDed to a preceding one and glued to a
	// preceding column filter.
	emit := func(item, kind string) {
		if prev == "term" || prev == "close" {
			out = append(out, "AND")
		}
		if prev == "col" {
			out[len(out)-1] += item
		} else {
			out = append(out, item)
		}
		prev = kind
	}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '(':
			emit("(", "open")
			depth++
			i++
			continue
		case c == ')':
			if depth == 0 {
				return "", bad("search: unbalanced parenthesis in %q")
			}
			if prev == "open" {
				return "", bad("search: empty parentheses in %q")
			}
			if prev == "op" || prev == "col" {
				return "", bad("search: an operator needs a term on each side in %q")
			}
			out = append(out, ")")
			depth--
			prev = "close"
			i++
			continue
		case c == '"':
			j := i + 1
			var b strings.Builder
			closed := false
			for j < len(q) {
				if q[j] == '"' {
					if j+1 < len(q) && q[j+1] == '"' { // "" is a literal quote
						b.WriteByte('"')
						j += 2
						continue
					}
					closed = true
					j++
					break
				}
				b.WriteByte(q[j])
				j++
			}
			if !closed {
				return "", bad("search: unbalanced quote in %q")
			}
			phrase := b.String()
			if strings.TrimSpace(phrase) == "" {
				return "", bad("search: empty phrase in %q")
			}
			term := quote(phrase)
			if j < len(q) && q[j] == '*' {
				term += "*"
				j++
			}
			emit(term, "term")
			i = j
			continue
		}
		// A bare word runs to the next space, quote or parenthesis.
		j := i
		for j < len(q) && !strings.ContainsRune(" \t\n\r\"()", rune(q[j])) {
			j++
		}
		word := q[i:j]
		i = j
		switch word {
		case "AND", "OR", "NOT":
			if prev == "start" || prev == "op" || prev == "open" || prev == "col" {
				if word == "NOT" && (prev == "start" || prev == "open") {
					return "", bad("search: NOT needs a term before it (write: error NOT timeout) in %q")
				}
				return "", bad("search: " + word + " needs a term on each side in %q")
			}
			out = append(out, word)
			prev = "op"
			continue
		}
		col, rest, ok := strings.Cut(word, ":")
		if ok && noPayload && strings.EqualFold(col, "payload") {
			// In any case: FTS5 reads column names so.
			return "", bad("search: you may not search payload text (payload:) in %q")
		}
		if ok && ftsColumns[col] {
			if prev == "col" {
				return "", bad("search: two column filters in a row in %q")
			}
			emit(col+":", "col")
			if rest == "" {
				continue // message: "a phrase" or message: (a OR b)
			}
			word = rest
		}
		prefix := false
		if strings.HasSuffix(word, "*") {
			word = strings.TrimRight(word, "*")
			prefix = true
		}
		if word == "" {
			return "", bad("search: a lone * is not a search term in %q")
		}
		term := quote(word)
		if prefix {
			term += "*"
		}
		emit(term, "term")
	}
	if depth != 0 {
		return "", bad("search: unbalanced parenthesis in %q")
	}
	if prev == "op" || prev == "col" {
		return "", bad("search: an operator or column filter needs a term after it in %q")
	}
	match := strings.Join(out, " ")
	if noPayload {
		match = textColumns + " : (" + match + ")"
	}
	return match, nil
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
