package dlqstore

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// FieldMatch is a value of one of a filter's fields whose name holds a
// word someone searched for: what an empty text search suggests filtering
// by instead (package dlq).
type FieldMatch struct {
	Field string // the filter's query-string name: error_code, event_type or destination
	Value string
	Count int // entries of the filter with this value
}

// FieldMatches lists the error codes, event types and DLQ topics or queues
// of f's entries — every condition of f but its text and time range, in
// f.Tenants' scope — whose names hold one of terms, ignoring case and
// reading '_', '.' and '-' as spaces (so "upstream time" finds
// UPSTREAM_TIMEOUT), most entries first, at most limit of each field. It
// reads the per-group totals (group_stats), never the entries. Errors:
// EINVALID for a bad filter.
func (s *Store) FieldMatches(ctx context.Context, f Filter, terms []string, limit int) ([]FieldMatch, error) {
	f.Q, f.From, f.To, f.Cursor, f.Limit = "", time.Time{}, time.Time{}, "", 0
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var words []any
	for _, t := range terms {
		if w := strings.TrimSpace(nameWords(t)); w != "" {
			words = append(words, w)
		}
	}
	tenants, visible := scopeTenants(f.Tenants)
	if len(words) == 0 || limit <= 0 || !visible {
		return nil, nil
	}
	cs, args, _, _ := where{f: f, tenants: tenants}.statsConds() // no text, no time range: always answerable
	var out []FieldMatch
	for _, m := range []struct{ field, col string }{
		{"error_code", "g.error_code"}, {"event_type", "s.event_type"}, {"destination", "s.destination"},
	} {
		norm := "replace(replace(replace(lower(" + m.col + "), '_', ' '), '.', ' '), '-', ' ')"
		ors := make([]string, len(words))
		for i := range words {
			ors[i] = "instr(" + norm + ", ?) > 0"
		}
		conds := append([]string{m.col + " != ''", "(" + strings.Join(ors, " OR ") + ")"}, cs...)
		q := "SELECT " + m.col + ", SUM(s.n) FROM group_stats s JOIN groups g ON g.id = s.group_id WHERE " +
			strings.Join(conds, " AND ") + " GROUP BY 1 HAVING SUM(s.n) > 0 ORDER BY 2 DESC, 1 LIMIT ?"
		rows, err := s.db.QueryContext(ctx, q, append(append(append([]any{}, words...), args...), limit)...)
		if err != nil {
			return nil, fmt.Errorf("field matches: %w", err)
		}
		for rows.Next() {
			fm := FieldMatch{Field: m.field}
			if err := rows.Scan(&fm.Value, &fm.Count); err != nil {
				rows.Close()
				return nil, fmt.Errorf("field matches: %w", err)
			}
			out = append(out, fm)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("field matches: %w", err)
		}
	}
	return out, nil
}

// nameWords is a name or search term as FieldMatches compares them:
// ASCII lower case (as SQLite's lower()), '_', '.' and '-' as spaces.
func nameWords(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '_' || c == '.' || c == '-':
			b[i] = ' '
		}
	}
	return string(b)
}
