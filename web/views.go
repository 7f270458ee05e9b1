package web

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
	"time"

	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/web/templates"
)

// This file turns collector views into the templates' view models. It is
// pure: no I/O, the clock and the charts passed in.

func topicHref(cluster, topic string) string {
	return "/topics/" + url.PathEscape(cluster) + "/" + url.PathEscape(topic)
}

func groupHref(cluster, group string) string {
	return "/consumers/" + url.PathEscape(cluster) + "/" + url.PathEscape(group)
}

func queueHref(cluster, vhost, queue string) string {
	return "/queues/" + url.PathEscape(cluster) + "/" + url.PathEscape(vhost) + "/" + url.PathEscape(queue)
}

func rateOf(m map[string]float64, name string) templates.Rate {
	v, ok := m[name]
	return templates.Rate{PerSec: v, Known: ok}
}

// freshness is what clusterStatusOf needs to tell live data from stale.
type freshness struct {
	now      time.Time
	interval time.Duration // the collectors' poll interval
}

// stale: the data shown is older than three poll intervals, whether the
// broker is down or the collector is stuck.
func (f freshness) stale(hasData bool, takenAt time.Time) bool {
	return hasData && f.now.Sub(takenAt) > 3*f.interval
}

func statusOf3(name, kind string, polled, reachable bool, errText string, since time.Time, hasData bool, takenAt time.Time, f freshness) templates.ClusterStatus {
	s := templates.ClusterStatus{Name: name, Kind: kind, HasData: hasData}
	switch {
	case !polled:
		s.State = "connecting"
	case reachable:
		s.State = "ok"
	default:
		s.State = "unreachable"
		s.Error = errText
		s.Since = templates.Ago(f.now, since)
	}
	if hasData {
		s.UpdatedAgo = templates.Ago(f.now, takenAt)
		s.Stale = f.stale(true, takenAt)
	}
	return s
}

func clusterStatusOf(v collector.ClusterView, f freshness) templates.ClusterStatus {
	return statusOf3(v.Name, "kafka", v.Polled, v.Reachable, v.Error, v.UnreachableSince, v.HasSnapshot, v.Snapshot.TakenAt, f)
}

func rabbitStatusOf(v collector.RabbitView, f freshness) templates.ClusterStatus {
	return statusOf3(v.Name, "rabbitmq", v.Polled, v.Reachable, v.Error, v.UnreachableSince, v.HasSnapshot, v.Snapshot.TakenAt, f)
}

// verdict is the status to show: none while no evaluator has judged.
func verdict(s collector.Status, reason string) string {
	if s == collector.StatusOK && reason == "" {
		return ""
	}
	return s.String()
}

func groupRow(v collector.ClusterView, g collector.Group, tr timeRange, stale bool) templates.GroupRow {
	return templates.GroupRow{
		Cluster: v.Name, Name: g.Name, Href: tr.with(groupHref(v.Name, g.Name)),
		State: g.State, Members: g.Members, TotalLag: g.TotalLag,
		Rate: rateOf(v.GroupRates, g.Name), Error: g.Error,
		Status: verdict(g.Status, g.Reason), Reason: g.Reason,
		LagSeconds: g.MaxLagSeconds, LagSecondsKnown: g.MaxLagTopic != "",
		Stale: stale,
	}
}

// severity ranks a group row's status for "worst first".
func severity(status string) int {
	switch status {
	case "WARN":
		return 1
	case "ERR", "STOP":
		return 2
	case "STALL":
		return 3
	case "REWIND":
		return 4
	}
	return 0
}

// byWorst: status severity, then lag in seconds, then lag, then name.
func byWorst(a, b templates.GroupRow) int {
	if c := cmp.Compare(severity(b.Status), severity(a.Status)); c != 0 {
		return c
	}
	return byLagSeconds(a, b)
}

// byLag sorts groups by lag, largest first, then by name.
func byLag(a, b templates.GroupRow) int {
	if c := cmp.Compare(b.TotalLag, a.TotalLag); c != 0 {
		return c
	}
	return byName(a, b)
}

func byName(a, b templates.GroupRow) int {
	return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Cluster, b.Cluster))
}

func byLagSeconds(a, b templates.GroupRow) int {
	la, lb := -1.0, -1.0
	if a.LagSecondsKnown {
		la = a.LagSeconds
	}
	if b.LagSecondsKnown {
		lb = b.LagSeconds
	}
	if c := cmp.Compare(lb, la); c != 0 {
		return c
	}
	return byLag(a, b)
}

// matches is the filter of long tables: every word of q, case-insensitive,
// somewhere in one of the fields.
func matches(q string, fields ...string) bool {
	if q == "" {
		return true
	}
	hay := strings.ToLower(strings.Join(fields, "\x00"))
	for _, w := range strings.Fields(strings.ToLower(q)) {
		if !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}

// page cuts rows to the table's page and fills its Pages and Total; a page
// past the end shows the last one.
func paginate[T any](rows []T, t *templates.Table, per int) []T {
	t.Total = len(rows)
	t.Pages = max(1, (len(rows)+per-1)/per)
	t.Page = min(max(t.Page, 1), t.Pages)
	lo := (t.Page - 1) * per
	return rows[lo:min(lo+per, len(rows))]
}

const (
	perPage    = 100
	worstShown = 10
)

// overviewCharts are a cluster card's charts, read by the handler.
type overviewCharts struct {
	throughput, dlq templates.Chart
}

func clusterCardOf(v collector.ClusterView, tr timeRange, tbl templates.Table, f freshness, ch overviewCharts) templates.ClusterCard {
	card := templates.ClusterCard{Status: clusterStatusOf(v, f), Throughput: ch.throughput, DLQChart: ch.dlq}
	snap := v.Snapshot
	card.Brokers, card.TopicCount, card.GroupCount = len(snap.Brokers), len(snap.Topics), len(snap.Groups)
	card.ConsumersRef = tr.with("/consumers?q=" + url.QueryEscape(v.Name))
	var total, dlq float64
	dlqKnown := false
	rows := make([]templates.TopicRow, 0, len(snap.Topics))
	for _, t := range snap.Topics {
		r := rateOf(v.TopicRates, t.Name)
		if r.Known {
			total += r.PerSec
			if t.IsDLQ {
				dlq += r.PerSec
				dlqKnown = true
			}
		}
		card.Messages += t.Messages
		if !matches(tbl.Q, t.Name) {
			continue
		}
		rows = append(rows, templates.TopicRow{
			Cluster: v.Name, Name: t.Name, Href: tr.with(topicHref(v.Name, t.Name)),
			Partitions: len(t.Partitions), Messages: t.Messages, Rate: r,
			IsDLQ: t.IsDLQ, Error: t.Error,
		})
	}
	card.Rate = templates.Rate{PerSec: total, Known: v.TopicRates != nil}
	card.DLQRate = templates.Rate{PerSec: dlq, Known: v.TopicRates != nil && (dlqKnown || !hasDLQ(snap))}
	switch tbl.Sort {
	case "messages":
		slices.SortStableFunc(rows, func(a, b templates.TopicRow) int { return cmp.Compare(b.Messages, a.Messages) })
	case "rate":
		slices.SortStableFunc(rows, func(a, b templates.TopicRow) int { return cmp.Compare(b.Rate.PerSec, a.Rate.PerSec) })
	}
	card.Topics = paginate(rows, &tbl, perPage)
	card.TopicTable = tbl
	stale := card.Status.Stale
	groups := make([]templates.GroupRow, 0, len(snap.Groups))
	for _, g := range snap.Groups {
		groups = append(groups, groupRow(v, g, tr, stale))
	}
	slices.SortFunc(groups, byWorst)
	card.Groups = groups[:min(worstShown, len(groups))]
	return card
}

func hasDLQ(s collector.ClusterSnapshot) bool {
	return slices.ContainsFunc(s.Topics, func(t collector.Topic) bool { return t.IsDLQ })
}

func rabbitCardOf(v collector.RabbitView, tr timeRange, f freshness, chart, dlqChart templates.Chart) templates.RabbitCard {
	card := templates.RabbitCard{Status: rabbitStatusOf(v, f), Chart: chart, DLQChart: dlqChart, QueuesRef: tr.with("/queues?q=" + url.QueryEscape(v.Name))}
	var pub, dlq float64
	for _, q := range v.Snapshot.Queues {
		card.Queues++
		card.Messages += q.Total
		pub += q.PublishRate
		if q.IsDLQ {
			dlq += q.PublishRate
		}
	}
	card.Publish = templates.Rate{PerSec: pub, Known: v.HasSnapshot}
	card.DLQRate = templates.Rate{PerSec: dlq, Known: v.HasSnapshot}
	card.Alarms = alarmsOf(v)
	return card
}

func alarmsOf(v collector.RabbitView) []string {
	var out []string
	for _, n := range v.Snapshot.Nodes {
		switch {
		case !n.Running:
			out = append(out, n.Name+": node down")
		case n.MemAlarm && n.DiskAlarm:
			out = append(out, n.Name+": memory and disk alarms — publishers are blocked")
		case n.MemAlarm:
			out = append(out, n.Name+": memory alarm — publishers are blocked")
		case n.DiskAlarm:
			out = append(out, n.Name+": disk alarm — publishers are blocked")
		}
	}
	return out
}

func findCluster(views []collector.ClusterView, name string) (collector.ClusterView, error) {
	for _, v := range views {
		if v.Name == name {
			return v, nil
		}
	}
	return collector.ClusterView{}, delivery.Errorf(delivery.ENOTFOUND, "cluster %q is not configured", name)
}

func topicOf(views []collector.ClusterView, cluster, topic string, tr timeRange, f freshness) (templates.TopicDetail, error) {
	v, err := findCluster(views, cluster)
	if err != nil {
		return templates.TopicDetail{}, err
	}
	t, ok := v.Snapshot.Topic(topic)
	if !ok {
		return templates.TopicDetail{}, delivery.Errorf(delivery.ENOTFOUND, "topic %q not found on cluster %q", topic, cluster)
	}
	d := templates.TopicDetail{
		Status: clusterStatusOf(v, f), Name: t.Name, IsDLQ: t.IsDLQ, Messages: t.Messages,
		Rate: rateOf(v.TopicRates, t.Name), Error: t.Error,
	}
	for _, p := range t.Partitions {
		d.Partitions = append(d.Partitions, templates.PartitionRow{
			Partition: p.Partition, Leader: p.Leader, Low: p.Low, High: p.High,
			Messages: max(0, p.High-p.Low), Rate: templates.Rate{PerSec: p.Rate, Known: p.Rate >= 0}, Error: p.Error,
		})
	}
	for _, g := range v.Snapshot.Groups {
		row := templates.TopicGroupRow{Name: g.Name, Href: tr.with(groupHref(v.Name, g.Name)), State: g.State}
		reads := false
		var worst collector.Status
		for _, p := range g.Partitions {
			if p.Topic != topic {
				continue
			}
			reads = true
			row.Lag += max(0, p.Lag)
			if p.LagSecondsKnown && (!row.LagSecondsKnown || p.LagSeconds > row.LagSeconds) {
				row.LagSeconds, row.LagSecondsKnown = p.LagSeconds, true
			}
			if p.Reason != "" && (row.Reason == "" || p.Status.Severity() > worst.Severity()) {
				worst, row.Reason = p.Status, p.Reason
				row.Status = p.Status.String()
			}
		}
		if reads {
			d.Groups = append(d.Groups, row)
		}
	}
	slices.SortFunc(d.Groups, func(a, b templates.TopicGroupRow) int {
		return cmp.Or(cmp.Compare(severity(b.Status), severity(a.Status)), cmp.Compare(b.Lag, a.Lag), cmp.Compare(a.Name, b.Name))
	})
	return d, nil
}

// consumerSorts are the orders of /consumers; the first is the default.
var consumerSorts = []string{"lag", "name", "lag-seconds", "status"}

func consumersOf(views []collector.ClusterView, tbl templates.Table, tr timeRange, f freshness) templates.Consumers {
	c := templates.Consumers{Sort: tbl.Sort}
	var rows []templates.GroupRow
	for _, v := range views {
		st := clusterStatusOf(v, f)
		c.Clusters = append(c.Clusters, st)
		for _, g := range v.Snapshot.Groups {
			if matches(tbl.Q, g.Name, v.Name) {
				rows = append(rows, groupRow(v, g, tr, st.Stale))
			}
		}
	}
	switch tbl.Sort {
	case "name":
		slices.SortFunc(rows, byName)
	case "lag-seconds":
		slices.SortFunc(rows, byLagSeconds)
	case "status":
		slices.SortFunc(rows, byWorst)
	default:
		slices.SortFunc(rows, byLag)
	}
	c.Groups = paginate(rows, &tbl, perPage)
	c.Table = tbl
	return c
}

func groupOf(views []collector.ClusterView, cluster, group string, tr timeRange, f freshness) (templates.GroupDetail, error) {
	v, err := findCluster(views, cluster)
	if err != nil {
		return templates.GroupDetail{}, err
	}
	g, ok := v.Snapshot.Group(group)
	if !ok {
		return templates.GroupDetail{}, delivery.Errorf(delivery.ENOTFOUND, "consumer group %q not found on cluster %q", group, cluster)
	}
	d := templates.GroupDetail{
		Status: clusterStatusOf(v, f), Name: g.Name, State: g.State, Protocol: g.Protocol,
		Members: g.Members, TotalLag: g.TotalLag, Rate: rateOf(v.GroupRates, g.Name), Error: g.Error,
		Verdict: verdict(g.Status, g.Reason), Reason: g.Reason, Complete: g.Complete,
		MaxLagSeconds: g.MaxLagSeconds, MaxLagSecondsKnown: g.MaxLagTopic != "",
	}
	if g.Reason == "" {
		d.Complete = -1 // not evaluated
	}
	if d.MaxLagSecondsKnown {
		d.MaxLagWhere = g.MaxLagTopic + "/" + itoa32(g.MaxLagPartition)
	}
	for _, p := range g.Partitions {
		d.Partitions = append(d.Partitions, templates.GroupPartitionRow{
			Topic: p.Topic, TopicHref: tr.with(topicHref(v.Name, p.Topic)), Partition: p.Partition,
			Committed: p.Committed, High: p.High, Lag: p.Lag, Member: p.Member, Error: p.Error,
			LagSeconds: p.LagSeconds, LagSecondsKnown: p.LagSecondsKnown,
			Status: verdict(p.Status, p.Reason), Reason: p.Reason,
		})
	}
	return d, nil
}

// queueSorts are the orders of /queues; the first is the default.
var queueSorts = []string{"name", "messages", "ready", "unacked", "publish", "consumers"}

func queueRowOf(v collector.RabbitView, q collector.Queue, tr timeRange, stale bool) templates.QueueRow {
	return templates.QueueRow{
		Cluster: v.Name, VHost: q.VHost, Name: q.Name, Href: tr.with(queueHref(v.Name, q.VHost, q.Name)),
		Type: q.Type, State: q.State, Ready: q.Ready, Unacked: q.Unacked, Total: q.Total,
		Consumers: q.Consumers, Utilisation: q.Utilisation,
		Publish: known(q.PublishRate), Deliver: known(q.DeliverRate), Ack: known(q.AckRate), Redeliver: known(q.RedeliverRate),
		IsDLQ: q.IsDLQ, DLQOf: q.DLQOf, Stale: stale,
	}
}

func known(v float64) templates.Rate { return templates.Rate{PerSec: v, Known: true} }

func queuesOf(views []collector.RabbitView, tbl templates.Table, tr timeRange, f freshness) templates.Queues {
	out := templates.Queues{}
	var rows []templates.QueueRow
	for _, v := range views {
		st := rabbitStatusOf(v, f)
		out.Clusters = append(out.Clusters, st)
		out.Alarms = append(out.Alarms, alarmsOf(v)...)
		for _, q := range v.Snapshot.Queues {
			if matches(tbl.Q, q.Name, q.VHost, v.Name) {
				rows = append(rows, queueRowOf(v, q, tr, st.Stale))
			}
		}
	}
	desc := func(f func(templates.QueueRow) float64) func(a, b templates.QueueRow) int {
		return func(a, b templates.QueueRow) int { return cmp.Compare(f(b), f(a)) }
	}
	switch tbl.Sort {
	case "messages":
		slices.SortStableFunc(rows, desc(func(r templates.QueueRow) float64 { return float64(r.Total) }))
	case "ready":
		slices.SortStableFunc(rows, desc(func(r templates.QueueRow) float64 { return float64(r.Ready) }))
	case "unacked":
		slices.SortStableFunc(rows, desc(func(r templates.QueueRow) float64 { return float64(r.Unacked) }))
	case "publish":
		slices.SortStableFunc(rows, desc(func(r templates.QueueRow) float64 { return r.Publish.PerSec }))
	case "consumers":
		slices.SortStableFunc(rows, desc(func(r templates.QueueRow) float64 { return float64(r.Consumers) }))
	default:
		slices.SortStableFunc(rows, func(a, b templates.QueueRow) int {
			return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.VHost, b.VHost), cmp.Compare(a.Cluster, b.Cluster))
		})
	}
	out.Rows = paginate(rows, &tbl, perPage)
	out.Table = tbl
	return out
}

func findQueue(views []collector.RabbitView, cluster, vhost, queue string) (collector.RabbitView, collector.Queue, error) {
	for _, v := range views {
		if v.Name != cluster {
			continue
		}
		for _, q := range v.Snapshot.Queues {
			if q.VHost == vhost && q.Name == queue {
				return v, q, nil
			}
		}
		return v, collector.Queue{}, delivery.Errorf(delivery.ENOTFOUND, "queue %q not found in vhost %q of %q", queue, vhost, cluster)
	}
	return collector.RabbitView{}, collector.Queue{}, delivery.Errorf(delivery.ENOTFOUND, "RabbitMQ cluster %q is not configured", cluster)
}
