package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/alerting"
	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/tsdb"
	"switchyard/web/templates"
)

func (s *Server) handleQueues(c *fiber.Ctx) error {
	tr, err := s.dashRange(c)
	if err != nil {
		return s.fail(c, err)
	}
	tbl, err := tableOf(c, "/queues", queueSorts, tr)
	if err != nil {
		return s.fail(c, err)
	}
	vm := queuesOf(s.visibleRabbit(c), tbl, tr, s.fresh())
	vm.Range = tr.picker("/queues", queryOf(c))
	for i := range vm.Rows {
		// Offered where the problem shows: messages wait and nobody reads.
		if r := &vm.Rows[i]; r.Ready > 0 && r.Consumers == 0 {
			r.AlertOn = s.alertOn(c, "Alert on this", alerting.TemplateQueueNoConsumers, "cluster", r.Cluster, "vhost", r.VHost, "queue", r.Name)
		}
	}
	return s.render(c, dashPage("Queues", templates.AreaQueues, tr), templates.QueuesView(vm))
}

func (s *Server) handleQueueShow(c *fiber.Ctx) error {
	tr, err := s.dashRange(c)
	if err != nil {
		return s.fail(c, err)
	}
	cluster, vhost, queue := param(c, "cluster"), param(c, "vhost"), param(c, "queue")
	v, q, err := findQueue(s.clusters.RabbitLatest(), cluster, vhost, queue)
	if err != nil {
		return s.fail(c, err)
	}
	f := s.fresh()
	st := rabbitStatusOf(v, f)
	vm := templates.QueueDetail{
		Range: tr.picker(queueHref(cluster, vhost, queue), queryOf(c)), Status: st,
		Alarms: alarmsOf(v), Queue: queueRowOf(v, q, tr, st.Stale),
		DeadLetterExchange: q.DeadLetterExchange, DeadLetterRoutingKey: q.DeadLetterRoutingKey,
	}
	vm.Queue.AlertOn = s.alertOn(c, "Alert when it has no consumers", alerting.TemplateQueueNoConsumers, "cluster", cluster, "vhost", vhost, "queue", queue)
	for _, dlq := range q.DeadLetterQueues {
		vm.DeadLetterQueues = append(vm.DeadLetterQueues, templates.QueueLink{Name: dlq, Href: tr.with(queueHref(cluster, vhost, dlq))})
	}
	if q.IsDLQ {
		if vm.DeadLetters, err = s.dlqHere(c, delivery.BrokerRabbitMQ, cluster, vhost, queue); err != nil {
			return s.fail(c, err)
		}
	}
	ctx := c.UserContext()
	qm := []tsdb.Matcher{eq("cluster", cluster), eq("vhost", vhost), eq("queue", queue)}
	backlog := newChart("queue-backlog", "Ready and unacknowledged messages", templates.UnitMessages, tr)
	rateC := newChart("queue-rates", "Publish, deliver, ack and redeliver per second", templates.UnitRate, tr)
	for _, m := range []struct {
		chart      *templates.Chart
		name, line string
	}{
		{&backlog, collector.MQueueReady, "ready"},
		{&backlog, collector.MQueueUnacked, "unacked"},
		{&rateC, collector.MQueuePublishRate, "publish"},
		{&rateC, collector.MQueueDeliverRate, "deliver"},
		{&rateC, collector.MQueueAckRate, "ack"},
		{&rateC, collector.MQueueRedeliverRate, "redeliver"},
	} {
		series, err := s.history(ctx, m.name, tr, nil, qm...)
		if err != nil {
			s.chartFailed(ctx, m.chart, err)
			continue
		}
		addLine(m.chart, m.line, tsdb.Combine(series, tsdb.OpSum))
	}
	vm.Charts = []templates.Chart{backlog, rateC}
	return s.render(c, dashPage(queue, templates.AreaQueues, tr), templates.QueueView(vm))
}
