package delivery_test

import (
	"testing"

	"switchyard/delivery"
)

// TestMatchGlob is the console's one glob syntax, as dead-letter patterns
// and access resource patterns both read it.
func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true},
		{"*", "orders.dlq", true},
		{"*.dlq", "orders.dlq", true},
		{"*.dlq", ".dlq", true},
		{"*.dlq", "orders.dlq.audit", false},
		{"*.dlq", "orders.DLQ", false}, // case-sensitive
		{"dlq.*", "dlq.orders", true},
		{"dlq.*", "my.dlq.orders", false},
		{"dead.*.letters", "dead.orders.letters", true},
		{"dead.*.letters", "dead.letters", false},
		{"*a*b", "xaxxab", true}, // backtracking
		{"*a*b", "xaxxa", false},
		{"vh/*.dlq", "vh/odd/name.dlq", true}, // '*' spans '/'
		{"t?", "t1", true},
		{"t?", "t12", false},
		{"t?", "t", false},
		{"t?", "tä", true},                   // one character, not one byte
		{"orders.[ab]", "orders.[ab]", true}, // no classes: '[' is literal
		{"orders.[ab]", "orders.a", false},
		{`orders\*`, `orders\x`, true}, // no escapes: '\' is literal
		{"orders", "orders", true},
		{"orders", "orders2", false},
		{"", "", true},
		{"", "x", false},
	}
	for _, tt := range tests {
		if got := delivery.MatchGlob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}
