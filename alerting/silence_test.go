package alerting_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"switchyard/alerting"
	"switchyard/delivery"
	"switchyard/tsdb"
)

func matchers(t *testing.T, ss ...string) []tsdb.Matcher {
	t.Helper()
	var out []tsdb.Matcher
	for _, s := range ss {
		out = append(out, mustMatcher(t, s))
	}
	return out
}

func TestSilencerMatch(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	active := func(id int64, ms ...string) alerting.Silence {
		return alerting.Silence{ID: id, Matchers: matchers(t, ms...), StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}
	}
	pending := active(90, `group="billing"`)
	pending.StartsAt = now.Add(time.Minute)
	expired := active(91, `group="billing"`)
	expired.EndsAt = now
	bad := alerting.Silence{ID: 92, Matchers: []tsdb.Matcher{{Label: "group", Op: tsdb.MatchRegexp, Value: "("}}, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}
	empty := alerting.Silence{ID: 93, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}

	sil := alerting.NewSilencer([]alerting.Silence{
		active(5, `group=~"bill.*"`),
		active(3, `group="billing"`, `severity!="critical"`),
		active(1, `alertname="Orders lag"`, `team=""`),         // team missing reads as ""
		active(7, `group=~"ill"`),                              // anchored: not a substring match
		active(8, `group!~"bill.*|ship.*"`, `alertname=~".+"`), // negative regexp
		pending, expired, bad, empty,
	}, now)

	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   []int64
	}{
		{"regexp and equality, sorted by id", map[string]string{"alertname": "Orders lag", "group": "billing", "severity": "warning"}, []int64{1, 3, 5}},
		{"a failing matcher of several", map[string]string{"alertname": "Orders lag", "group": "billing", "severity": "critical"}, []int64{1, 5}},
		{"missing label is the empty string", map[string]string{"alertname": "Orders lag", "group": "billing", "team": "payments"}, []int64{3, 5}},
		{"regexps are anchored", map[string]string{"alertname": "X", "group": "ill"}, []int64{7, 8}},
		{"regexps are anchored at the start too", map[string]string{"alertname": "X", "group": "xbilling"}, []int64{8}},
		{"negative regexp", map[string]string{"alertname": "X", "group": "audit"}, []int64{8}},
		{"nothing", map[string]string{"group": "shipping"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := sil.Match(tt.labels); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Match(%v) = %v, want %v", tt.labels, got, tt.want)
			}
		})
	}

	t.Run("pending and expired silences do not match", func(t *testing.T) {
		only := alerting.NewSilencer([]alerting.Silence{pending, expired}, now)
		if got := only.Match(map[string]string{"group": "billing"}); got != nil {
			t.Errorf("Match = %v, want none", got)
		}
		// The same silences at another time: the pending one has started,
		// the expired one was active.
		if got := alerting.NewSilencer([]alerting.Silence{pending, expired}, now.Add(2*time.Minute)).Match(map[string]string{"group": "billing"}); !reflect.DeepEqual(got, []int64{90}) {
			t.Errorf("two minutes later = %v, want the started one, 90", got)
		}
		if got := alerting.NewSilencer([]alerting.Silence{pending, expired}, now.Add(-time.Second)).Match(map[string]string{"group": "billing"}); !reflect.DeepEqual(got, []int64{91}) {
			t.Errorf("a second earlier = %v, want the not yet expired one, 91", got)
		}
	})

	t.Run("invalid silences mute nothing", func(t *testing.T) {
		only := alerting.NewSilencer([]alerting.Silence{bad, empty}, now)
		if got := only.Match(map[string]string{"group": "("}); got != nil {
			t.Errorf("Match = %v, want none", got)
		}
	})
}

func TestCheckMatchers(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ms     []tsdb.Matcher
		reason string // "" = valid
	}{
		{"one equality", matchers(t, `group="billing"`), ""},
		{"a regexp that needs a value", matchers(t, `group=~"bill.+"`), ""},
		{"empty-matching ones beside one that is not", matchers(t, `team=""`, `group=~".*"`, `alertname!="x"`, `cluster="prod"`), ""},
		{"a negative regexp that excludes the empty string", matchers(t, `group!~"|x"`), ""},
		{"none", nil, "at least one"},
		{"only an empty value", matchers(t, `team=""`), "empty string"},
		{"only match-all regexps", matchers(t, `group=~".*"`, `cluster=~"a|"`), "empty string"},
		{"a not-equal holds for a missing label", matchers(t, `group!="billing"`), "empty string"},
		{"a bad regexp", []tsdb.Matcher{{Label: "group", Op: tsdb.MatchRegexp, Value: "(bill"}}, "regular expression"},
		{"an empty label name", []tsdb.Matcher{{Label: "", Op: tsdb.MatchEqual, Value: "x"}}, "label name"},
		{"an unknown operator", []tsdb.Matcher{{Label: "group", Op: "~=", Value: "x"}}, "operator"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := alerting.CheckMatchers(tt.ms)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("CheckMatchers = %v, want nil", err)
				}
				return
			}
			wantCode(t, err, delivery.EINVALID)
			if got := fieldReason(err, "matchers"); !strings.Contains(got, tt.reason) {
				t.Errorf("reason for matchers = %q, want it to mention %q", got, tt.reason)
			}
		})
	}
}
