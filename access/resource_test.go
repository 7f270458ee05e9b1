package access_test

import (
	"testing"

	"switchyard/access"
	"switchyard/delivery"
)

func TestResourceNames(t *testing.T) {
	tests := []struct {
		name string
		res  access.Resource
		want string
		back access.ResourceName
	}{
		{"topic", access.KafkaTopic("prod", "orders.order.created.v1"), "kafka:prod/orders.order.created.v1",
			access.ResourceName{Kind: access.KindKafkaTopic, Cluster: "prod", Topic: "orders.order.created.v1"}},
		{"group", access.KafkaGroup("prod", "billing"), "kafka:prod/group/billing",
			access.ResourceName{Kind: access.KindKafkaGroup, Cluster: "prod", Group: "billing"}},
		{"group with a slash", access.KafkaGroup("prod", "team/billing"), "kafka:prod/group/team/billing",
			access.ResourceName{Kind: access.KindKafkaGroup, Cluster: "prod", Group: "team/billing"}},
		{"topic named group", access.KafkaTopic("prod", "group"), "kafka:prod/group",
			access.ResourceName{Kind: access.KindKafkaTopic, Cluster: "prod", Topic: "group"}},
		{"queue of the default vhost", access.RabbitQueue("/", "notify.email.high"), "rabbitmq:/notify.email.high",
			access.ResourceName{Kind: access.KindRabbitQueue, VHost: "/", Queue: "notify.email.high"}},
		{"queue of a named vhost", access.RabbitQueue("billing", "invoice.send.low"), "rabbitmq:billing/invoice.send.low",
			access.ResourceName{Kind: access.KindRabbitQueue, VHost: "billing", Queue: "invoice.send.low"}},
		{"queue of a vhost with a slash", access.RabbitQueue("eu/billing", "q"), "rabbitmq:eu/billing/q",
			access.ResourceName{Kind: access.KindRabbitQueue, VHost: "eu/billing", Queue: "q"}},
		{"console", access.Res(access.ConsoleAdmin), "console:admin", access.ResourceName{Kind: access.KindConsole, Area: "admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.res.Name != tt.want || tt.res.Tenant != "" {
				t.Fatalf("built %+v, want name %q", tt.res, tt.want)
			}
			got, err := access.ParseResource(tt.want)
			if err != nil || got != tt.back {
				t.Fatalf("ParseResource(%q) = %+v, %v; want %+v", tt.want, got, err, tt.back)
			}
			if again := got.Resource(); again != tt.res || got.String() != tt.want {
				t.Errorf("%+v builds %+v, want %+v", got, again, tt.res)
			}
		})
	}
	if got := access.AllOfKafkaCluster("prod").Name; got != "kafka:prod/*" {
		t.Errorf("AllOfKafkaCluster = %q", got)
	}
	if got := access.Console("dlq").Name; got != access.ConsoleDLQ {
		t.Errorf("Console(dlq) = %q, want ConsoleDLQ %q", got, access.ConsoleDLQ)
	}
	if got := access.AllRabbitQueues().Name; got != "rabbitmq:*" {
		t.Errorf("AllRabbitQueues = %q", got)
	}
}

func TestParseResourceRefuses(t *testing.T) {
	for _, name := range []string{
		"", "*", "orders", "kafka:", "kafka:prod", "kafka:prod/", "kafka:/orders", "kafka:prod/a/b",
		"kafka:prod/group/", "rabbitmq:", "rabbitmq:q", "rabbitmq:/", "rabbitmq:vh/", "console:", "console:a/b",
		"Kafka:prod/orders",
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := access.ParseResource(name); delivery.ErrorCode(err) != delivery.EINVALID {
				t.Errorf("ParseResource(%q) = %+v, %v; want EINVALID", name, got, err)
			}
		})
	}
	for _, p := range []string{"kafka:*", "rabbitmq:/notify.*", "console:admin"} {
		if !access.ResourcePrefixed(p) {
			t.Errorf("ResourcePrefixed(%q) = false", p)
		}
	}
	for _, p := range []string{"*", "kafka", "topic:x"} {
		if access.ResourcePrefixed(p) {
			t.Errorf("ResourcePrefixed(%q) = true", p)
		}
	}
}
