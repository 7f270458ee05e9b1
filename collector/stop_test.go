package collector_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"switchyard/collector"
	"switchyard/internal/testenv"
)

// A poll cut short because the console is stopping says nothing about the
// brokers: neither cluster turns unreachable, and no "unreachable" warning
// reaches the log of a clean stop.
func TestAStopIsNotAnOutage(t *testing.T) {
	c := newCluster(t, 1, "orders.order.created.v1")
	cl := newClient(t, c.ListenAddrs())
	kafka, _ := collector.NewKafkaSource("main", cl, collector.KafkaOptions{})
	rabbit, err := collector.NewRabbitSource("rabbitmq", testenv.RabbitManagementURL(t), collector.RabbitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	p, err := collector.NewPoller(collector.PollerOptions{Sources: []*collector.KafkaSource{kafka}, Rabbit: []*collector.RabbitSource{rabbit},
		Timeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopping, stop := context.WithCancel(context.Background())
	stop()
	if err := p.Refresh(stopping); err == nil {
		t.Error("a refresh after the stop reported success")
	}
	if v := p.Latest()[0]; !v.Reachable || v.Error != "" || !v.UnreachableSince.IsZero() {
		t.Errorf("Kafka after the stop: reachable=%v error=%q since=%v, want reachable", v.Reachable, v.Error, v.UnreachableSince)
	}
	if v := p.RabbitLatest()[0]; !v.Reachable || v.Error != "" || !v.UnreachableSince.IsZero() {
		t.Errorf("RabbitMQ after the stop: reachable=%v error=%q since=%v, want reachable", v.Reachable, v.Error, v.UnreachableSince)
	}
	if strings.Contains(logs.String(), "unreachable") {
		t.Errorf("the stop logged an outage:\n%s", logs.String())
	}
}
