package delivery_test

import (
	"slices"
	"testing"

	"switchyard/delivery"
)

func TestDLQMatcher(t *testing.T) {
	def, err := delivery.NewDLQMatcher(nil, []string{"payments.failed"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		want bool
	}{
		{"orders.order.created.v1.dlq", true},
		{"orders.order.created.v1.DLT", true},
		{"orders.order.created.v1.dlt", false}, // patterns are case-sensitive
		{"dlq.orders", true},
		{"notify-dlq", true},
		{"notify.email.high_error", true},
		{"payments.failed", true}, // explicit name
		{"payments.failed.v2", false},
		{"orders.order.created.v1", false},
		{"dlq", false},
		{"my.dlq.archive", false},
		{"vhost/odd/name.dlq", true}, // '*' spans '/'
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := def.Match(c.name); got != c.want {
				t.Errorf("Match(%q) = %v, want %v", c.name, got, c.want)
			}
		})
	}
	if none, _ := delivery.NewDLQMatcher([]string{}, nil); none.Match("x.dlq") {
		t.Error("an empty pattern list matched x.dlq; it should match explicit names only")
	}
	if inner, _ := delivery.NewDLQMatcher([]string{"dead.*.letters"}, nil); !inner.Match("dead.orders.letters") {
		t.Error("a pattern with an inner '*' did not match")
	}
}

// TestDLQMatcherZeroValue: a matcher nobody configured (a collector source
// built without options) uses the default patterns, as one built from nil.
func TestDLQMatcherZeroValue(t *testing.T) {
	var zero delivery.DLQMatcher
	fromNil, err := delivery.NewDLQMatcher(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.dlq", "a.DLT", "dlq.a", "a-dlq", "a_error", "a", "a.quarantine"} {
		if zero.Match(name) != fromNil.Match(name) {
			t.Errorf("zero value and NewDLQMatcher(nil) disagree on %q", name)
		}
	}
	if want := []string{"*.dlq", "*.DLT", "dlq.*", "*-dlq", "*_error"}; !slices.Equal(delivery.DefaultDLQPatterns(), want) {
		t.Errorf("DefaultDLQPatterns = %q, want %q", delivery.DefaultDLQPatterns(), want)
	}
	// The defaults are handed out as copies.
	delivery.DefaultDLQPatterns()[0] = "changed"
	if !zero.Match("a.dlq") {
		t.Error("changing a copy of the defaults changed the matcher")
	}
}

func TestNewDLQMatcherRefusesEmptyPattern(t *testing.T) {
	if _, err := delivery.NewDLQMatcher([]string{"*.dlq", ""}, nil); err == nil {
		t.Error(`NewDLQMatcher accepted the pattern ""`)
	}
	// Characters other glob dialects give a meaning are plain here.
	if m, err := delivery.NewDLQMatcher([]string{"dlq[1]", `a\b`}, nil); err != nil || !m.Match("dlq[1]") || !m.Match(`a\b`) || m.Match("dlq1") {
		t.Errorf("brackets and backslashes are not literal: %v", err)
	}
}
