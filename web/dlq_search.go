package web

import (
	"net/url"
	"strings"

	"switchyard/dlqstore"
	"switchyard/web/templates"
)

// searchedColumns names the columns of the full-text index
// (dlqstore.SearchColumns) as the entries page calls what they hold.
var searchedColumns = map[string]string{
	"message": "error messages", "exception": "exception types", "ids": "ids", "code": "error codes",
	"destination": "topics and queues", "service": "services and consumer groups", "event_type": "event types",
	"payload": "payloads", "key": "keys",
}

// suggestionFields names the filter fields a search suggests
// (dlqstore.FieldMatch.Field).
var suggestionFields = map[string]string{
	"error_code": "error code", "event_type": "event type", "destination": "DLQ topic or queue",
}

// searchedText says what a search looked in: "error messages, exception
// types, … and keys".
func searchedText(cols []string) string {
	names := make([]string, 0, len(cols))
	for _, c := range cols {
		if n := searchedColumns[c]; n != "" {
			names = append(names, n)
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// searchSuggestions turns the filters an empty search suggests into links
// to the entries page: the query as it was, with the text and the time
// range left out (a suggestion counts entries of any time) and the field
// set.
func searchSuggestions(q url.Values, ms []dlqstore.FieldMatch) []templates.SearchSuggestion {
	var out []templates.SearchSuggestion
	for _, m := range ms {
		nq := cloneValues(q)
		for _, k := range []string{"q", "cursor", "range", "from", "to"} {
			nq.Del(k)
		}
		nq.Set(m.Field, m.Value)
		out = append(out, templates.SearchSuggestion{
			Field: suggestionFields[m.Field], Value: m.Value, Count: templates.Exact(int64(m.Count)),
			Href: withQuery("/dead-letters/entries", nq),
		})
	}
	return out
}
