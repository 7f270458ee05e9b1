package delivery_test

import (
	"errors"
	"strings"
	"testing"

	"switchyard/delivery"
)

func TestLintTopic(t *testing.T) {
	for _, name := range []string{
		"orders.order.created.v1",
		"workflow.instance.started.v1",
		"orders.order_line.added.v12",
		"billing.invoice-run.completed.v3",
		"orders.order.created.v1.dlq",
		"orders.order.created.v1.quarantine",
	} {
		if err := delivery.LintTopic(name); err != nil {
			t.Errorf("LintTopic(%q) = %v, want nil", name, err)
		}
	}
	bad := []struct{ name, problem string }{
		{"", "is empty"},
		{".dlq", "is empty"},
		{"Orders.Order.Created.v1", "lower-case"},
		{"orders.created.v1", "has 3 dot-separated segments, want 4"},
		{"orders.order.created.v1.extra", "has 5 dot-separated segments"},
		{"orders.order.created.1", `last segment "1" must be a version like v1`},
		{"orders.order.created.v0", "must be a version"},
		{"orders.1order.created.v1", `segment 2 (entity) "1order"`},
		{"orders..created.v1", "segment 2 (entity)"},
		{"orders.order.created!.v1", "segment 3 (event)"},
		{"_orders.order.created.v1", "segment 1 (domain)"},
	}
	for _, tt := range bad {
		err := delivery.LintTopic(tt.name)
		var ne *delivery.NamingError
		if !errors.As(err, &ne) {
			t.Errorf("LintTopic(%q) = %v, want a *NamingError", tt.name, err)
			continue
		}
		if ne.Kind != "topic" || !strings.Contains(err.Error(), tt.problem) || !strings.Contains(err.Error(), "orders.order.created.v1") {
			t.Errorf("LintTopic(%q) = %q, want it to say %q and show an example", tt.name, err, tt.problem)
		}
	}
}

func TestLintQueue(t *testing.T) {
	for _, name := range []string{"notify.email.high", "billing.invoice.bulk", "search.reindex.low", "notify.email.high.dlq", "notify.push_ios.critical"} {
		if err := delivery.LintQueue(name); err != nil {
			t.Errorf("LintQueue(%q) = %v, want nil", name, err)
		}
	}
	bad := []struct{ name, problem string }{
		{"", "is empty"},
		{"Notify.Email.High", "lower-case"},
		{"notify.email", "has 2 dot-separated segments, want 3"},
		{"notify.email.high.extra", "has 4 dot-separated segments"},
		{"notify.email.urgent", `priority "urgent" must be one of critical, high, normal, low, bulk`},
		{"notify.2email.high", `segment 2 (action) "2email"`},
		{"1notify.email.high", "segment 1 (service)"},
	}
	for _, tt := range bad {
		err := delivery.LintQueue(tt.name)
		var ne *delivery.NamingError
		if !errors.As(err, &ne) {
			t.Errorf("LintQueue(%q) = %v, want a *NamingError", tt.name, err)
			continue
		}
		if ne.Kind != "queue" || !strings.Contains(err.Error(), tt.problem) || !strings.Contains(err.Error(), "notify.email.high") {
			t.Errorf("LintQueue(%q) = %q, want it to say %q and show an example", tt.name, err, tt.problem)
		}
	}
}

func TestDerivedNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{delivery.DLQTopic("orders.order.created.v1"), "orders.order.created.v1.dlq"},
		{delivery.DLQQueue("notify.email.high"), "notify.email.high.dlq"},
		{delivery.QuarantineName("orders.order.created.v1"), "orders.order.created.v1.quarantine"},
		{delivery.QuarantineName("orders.order.created.v1.dlq"), "orders.order.created.v1.quarantine"},
		{delivery.QuarantineName("notify.email.high.quarantine"), "notify.email.high.quarantine"},
		{delivery.BaseName("notify.email.high.dlq"), "notify.email.high"},
		{delivery.BaseName("notify.email.high"), "notify.email.high"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
	for name, want := range map[string]bool{
		"orders.order.created.v1.dlq":        true,
		"notify.email.high.dlq":              true,
		"orders.order.created.v1":            false,
		"orders.order.created.v1.quarantine": false,
		"orders.dlq.created.v1":              false,
		"notify.email.high_error":            false,
	} {
		if got := delivery.IsDLQName(name); got != want {
			t.Errorf("IsDLQName(%q) = %v, want %v", name, got, want)
		}
	}
}
