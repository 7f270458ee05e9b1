package dlqstore

import "testing"

// Names are indexed with their camel-case words, so that a word of a name
// finds it; a name without any is indexed as it is.
func TestNameText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"java.net.SocketTimeoutException", "java.net.SocketTimeoutException java net Socket Timeout Exception"},
		{"System.TimeoutException", "System.TimeoutException System Timeout Exception"},
		{"HTTPServerError", "HTTPServerError HTTP Server Error"},
		{"OAuth2Exception", "OAuth2Exception O Auth2 Exception"},
		{"UPSTREAM_TIMEOUT", "UPSTREAM_TIMEOUT"},
		{"orders.order.created.v1.dlq", "orders.order.created.v1.dlq"},
		{"billing-service", "billing-service"},
		{"ordersCreated.dlq", "ordersCreated.dlq orders Created dlq"},
		{"", ""},
	} {
		if got := nameText(tc.in); got != tc.want {
			t.Errorf("nameText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FilterTokenForTest is filterToken, for the tests of package dlqstore_test
// that type a token into a search.
var FilterTokenForTest = filterToken
