package delivery

import "unicode/utf8"

// MatchGlob reports whether the glob pattern matches name as a whole. It is
// the console's one glob syntax, for dead-letter patterns and the access
// policy's resource patterns alike: "*" matches any run of characters, "/"
// included (RabbitMQ queue names and resource names hold it), and "?"
// exactly one character (not one byte). Every other character matches
// itself: there are no classes or escapes, so "[" is just a bracket.
// Matching is case-sensitive, as broker names are.
func MatchGlob(pattern, name string) bool {
	p, n := 0, 0
	starP, starN := -1, 0
	for n < len(name) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starN = p, n
				p++
				continue
			case '?':
				_, w := utf8.DecodeRuneInString(name[n:])
				p++
				n += w
				continue
			default:
				if c == name[n] {
					p++
					n++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Backtrack: let the last star swallow one more character.
		_, w := utf8.DecodeRuneInString(name[starN:])
		starN += w
		p, n = starP+1, starN
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
