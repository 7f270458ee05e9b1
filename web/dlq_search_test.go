package web

import (
	"net/http"
	"slices"
	"testing"
)

// The API's answer to a search says what it searched, and when nothing
// matched, which filters would — counted in the caller's scope: tess sees
// tenant t1 of kafka:demo/* only, so two of the three ORDER_NOT_FOUND
// entries.
func TestAPISearchSaysWhatItSearchedAndSuggests(t *testing.T) {
	e := newEnv(t, envOptions{})
	type answer struct {
		Total    int      `json:"total"`
		Searched []string `json:"searched"`
		// How far text search lags capture: present, 0, once the
		// fixtures' text is indexed.
		Behind      *float64 `json:"text_index_behind_seconds"`
		Suggestions []struct {
			Param, Value string
			Count        int
		} `json:"suggestions"`
	}
	for _, tc := range []struct {
		user, q     string
		total       int
		searched    []string
		suggestions int // ORDER_NOT_FOUND entries suggested, 0: none
	}{
		{"admin", "timeout", 1, []string{"message", "exception", "ids", "code", "destination", "service", "event_type", "payload", "key"}, 0},
		{"vera", "timeout", 1, []string{"message", "exception", "ids", "code", "destination", "service", "event_type"}, 0},
		{"vera", "ORDER_NOT_FOUND", 3, []string{"message", "exception", "ids", "code", "destination", "service", "event_type"}, 0},
		{"admin", "ORDER_NOT_FOU", 0, []string{"message", "exception", "ids", "code", "destination", "service", "event_type", "payload", "key"}, 3},
		{"tess", "ORDER_NOT_FOU", 0, []string{"message", "exception", "ids", "code", "destination", "service", "event_type"}, 2},
	} {
		r := e.as(t, tc.user).get(t, "/api/v1/dlq/entries?q="+tc.q)
		if r.status != http.StatusOK {
			t.Fatalf("%s q=%s: %d %s", tc.user, tc.q, r.status, r.body)
		}
		got := decodeJSON[answer](t, r)
		if got.Total != tc.total || !slices.Equal(got.Searched, tc.searched) {
			t.Errorf("%s q=%s: total %d, searched %v; want %d, %v", tc.user, tc.q, got.Total, got.Searched, tc.total, tc.searched)
		}
		if got.Behind == nil || *got.Behind != 0 {
			t.Errorf("%s q=%s: text_index_behind_seconds %v, want 0 (the text index holds every entry)", tc.user, tc.q, got.Behind)
		}
		switch {
		case tc.suggestions == 0 && len(got.Suggestions) > 0:
			t.Errorf("%s q=%s: suggestions %+v, want none", tc.user, tc.q, got.Suggestions)
		case tc.suggestions > 0 && (len(got.Suggestions) != 1 || got.Suggestions[0].Param != "error_code" ||
			got.Suggestions[0].Value != "ORDER_NOT_FOUND" || got.Suggestions[0].Count != tc.suggestions):
			t.Errorf("%s q=%s: suggestions %+v, want error_code ORDER_NOT_FOUND (%d)", tc.user, tc.q, got.Suggestions, tc.suggestions)
		}
	}
}
