package dlqstore

import (
	"slices"
	"strings"

	"switchyard/delivery"
)

// The full-text index (entries_fts) has a column per kind of text, so that
// a query can name one ("code:timeout") and a search kept off the message
// itself can leave those columns out. What each holds is computed once, by
// textOf (text.go), for new entries and for the rebuild alike:
//   - message: the error message;
//   - exception: the exception type, also split at dots and camel case;
//   - ids: entry, envelope, correlation, trace and message ids;
//   - code: the error code;
//   - destination: the DLQ topic or queue and the origin topic or queue;
//   - service: the origin service and consumer group;
//   - event_type: the event type;
//   - payload: the payload text, and key: the record key — the message
//     itself, searched only by a reader who may probe payloads
//     (Filter.NoPayloadText, MaySearchPayloads).
//
// The tokenizer splits at '_', '.' and '-', so UPSTREAM_TIMEOUT is the
// words upstream and timeout: "UPSTREAM_TIMEOUT" (a phrase of both),
// "upstream timeout" and "timeout" all find it.
const (
	openColumns  = "message exception ids code destination service event_type"
	probeColumns = "payload key"
)

// SearchColumns are the columns of the full-text index a search reads: all
// of them, or without payload text (Filter.NoPayloadText) all but payload
// and key. Each is also a column filter of the query syntax ("code:").
func SearchColumns(noPayloadText bool) []string {
	cols := strings.Fields(openColumns)
	if !noPayloadText {
		cols = append(cols, strings.Fields(probeColumns)...)
	}
	return cols
}

// ftsQuery turns what an operator types into an FTS5 query, or an EINVALID
// error that says what is wrong. The syntax is FTS5's own subset: words
// (implicitly ANDed), "quoted phrases", a trailing * for a prefix, AND, OR,
// NOT (binary: "a NOT b"), parentheses and column filters (SearchColumns:
// message:, exception:, code:, …). Every word is quoted before it reaches
// FTS5, so that an id with '-', '.', ':' or '/' in it is a phrase of its
// parts rather than an FTS5 syntax error, and lower-case and/or/not are
// words.
//
// With noPayload (Filter.NoPayloadText) the whole query is kept to the
// columns that do not hold the message itself (openColumns) and a payload:
// or key: filter is refused: the query is parsed before it is wrapped, so
// no parenthesis can close the wrapping early.
func ftsQuery(q string, noPayload bool) (string, error) {
	match, _, err := parseSearch(q, noPayload)
	return match, err
}

// SearchTerms are the words and phrases a search looks for, lower-case,
// each once: without operators, column filters, quotes, a prefix's * and
// whatever follows a NOT. They are what an empty result suggests filters
// for (package dlq). An invalid search has none.
func SearchTerms(q string) []string {
	_, terms, err := parseSearch(q, false)
	if err != nil {
		return nil
	}
	return terms
}

// parseSearch is ftsQuery, also returning SearchTerms.
func parseSearch(q string, noPayload bool) (string, []string, error) {
	var out, terms []string
	prev := "start" // kind of the previous item: start, term, op, open, close, col
	depth := 0
	// A NOT excludes its right operand, a term or a parenthesized group:
	// negNext marks the next operand, negDepth the depth a negated group
	// opened at (-1: none).
	negNext, negDepth := false, -1
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
	term := func(text string) {
		if negNext || negDepth >= 0 {
			negNext = false
			return
		}
		if t := strings.ToLower(strings.TrimSpace(text)); !slices.Contains(terms, t) {
			terms = append(terms, t)
		}
	}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '(':
			emit("(", "open")
			if negNext && negDepth < 0 {
				negDepth = depth
			}
			negNext = false
			depth++
			i++
			continue
		case c == ')':
			if depth == 0 {
				return "", nil, bad("search: unbalanced parenthesis in %q")
			}
			if prev == "open" {
				return "", nil, bad("search: empty parentheses in %q")
			}
			if prev == "op" || prev == "col" {
				return "", nil, bad("search: an operator needs a term on each side in %q")
			}
			out = append(out, ")")
			depth--
			if depth == negDepth {
				negDepth = -1
			}
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
				return "", nil, bad("search: unbalanced quote in %q")
			}
			phrase := b.String()
			if strings.TrimSpace(phrase) == "" {
				return "", nil, bad("search: empty phrase in %q")
			}
			item := quote(phrase)
			if j < len(q) && q[j] == '*' {
				item += "*"
				j++
			}
			emit(item, "term")
			term(phrase)
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
					return "", nil, bad("search: NOT needs a term before it (write: error NOT timeout) in %q")
				}
				return "", nil, bad("search: " + word + " needs a term on each side in %q")
			}
			out = append(out, word)
			negNext = word == "NOT"
			prev = "op"
			continue
		}
		col, rest, ok := strings.Cut(word, ":")
		if ok && noPayload && slices.Contains(strings.Fields(probeColumns), strings.ToLower(col)) {
			// In any case: FTS5 reads column names so.
			if strings.EqualFold(col, "payload") {
				return "", nil, bad("search: you may not search payload text (payload:) in %q")
			}
			return "", nil, bad("search: you may not search message keys (" + strings.ToLower(col) + ":) in %q")
		}
		if ok && slices.Contains(SearchColumns(false), col) {
			if prev == "col" {
				return "", nil, bad("search: two column filters in a row in %q")
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
			return "", nil, bad("search: a lone * is not a search term in %q")
		}
		item := quote(word)
		if prefix {
			item += "*"
		}
		emit(item, "term")
		term(word)
	}
	if depth != 0 {
		return "", nil, bad("search: unbalanced parenthesis in %q")
	}
	if prev == "op" || prev == "col" {
		return "", nil, bad("search: an operator or column filter needs a term after it in %q")
	}
	// The query is kept to the searchable columns — never the filters
	// column, which holds tokens no one types (filterToken) — and, without
	// payload text, to the columns that do not hold the message itself.
	match := "{" + strings.Join(SearchColumns(noPayload), " ") + "} : (" + strings.Join(out, " ") + ")"
	return match, terms, nil
}

// withFilterTokens narrows the full-text query match (ftsQuery's) to the
// entries whose filter values the filter names, so that a filter and a text
// are one intersection inside the full-text index: for each of the
// filter's broker, cluster, destination, event type, error code and
// tenant, and for the caller's tenant list (tenants, as scopeTenants gives
// it, nil = any) and resource scope when that is a list of exact names, it
// ANDs "filters : (token OR token …)" (filterToken). The tokens only
// narrow: the SQL conditions of the filter and the scope stay, and decide
// (a hash collision lets a token match another value, never miss its
// own). Status, the group and the time range are not tokens: status
// changes, and the others are cheap in SQL.
func withFilterTokens(match string, f Filter, tenants []string) string {
	var parts []string
	add := func(kind byte, vs ...string) {
		toks := make([]string, 0, len(vs))
		for _, v := range vs {
			toks = append(toks, filterToken(kind, v))
		}
		slices.Sort(toks)
		parts = append(parts, "filters : ("+strings.Join(slices.Compact(toks), " OR ")+")")
	}
	for _, one := range []struct {
		kind byte
		v    string
	}{
		{tokBroker, f.Broker}, {tokCluster, f.Cluster}, {tokDestination, f.Destination},
		{tokEventType, f.EventType}, {tokErrorCode, f.ErrorCode}, {tokTenant, f.Tenant},
	} {
		if one.v != "" {
			add(one.kind, one.v)
		}
	}
	if len(tenants) > 0 {
		add(tokTenant, tenants...)
	}
	if rs := exactResources(f.Tenants); len(rs) > 0 {
		add(tokResource, rs...)
	}
	if len(parts) == 0 {
		return match
	}
	return "(" + match + ") AND " + strings.Join(parts, " AND ")
}

// exactResources are the resources a scope's rules allow when every rule
// that names resources names exact ones (no '*' or '?', which access.GlobSQL
// keeps as wildcards): the finite list an entry's resource must be one of.
// Nil when the scope has no rules or a rule is a pattern.
func exactResources(sc *TenantScope) []string {
	if !sc.HasRules() {
		return nil
	}
	var out []string
	for _, r := range sc.Rules {
		for _, pat := range r.Resources {
			if strings.ContainsAny(pat, "*?") {
				return nil
			}
			out = append(out, pat)
		}
	}
	return out
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
