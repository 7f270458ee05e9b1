package web

import (
	"cmp"
	"net/url"
	"slices"
	"time"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/web/templates"
)

// This file turns collector views into the templates' view models. It is
// pure: no I/O, the clock passed in.

func topicHref(cluster, topic string) string {
	return "/topics/" + url.PathEscape(cluster) + "/" + url.PathEscape(topic)
}

func groupHref(cluster, group string) string {
	return "/consumers/" + url.PathEscape(cluster) + "/" + url.PathEscape(group)
}

func rateOf(m map[string]float64, name string) templates.Rate {
	v, ok := m[name]
	return templates.Rate{PerSec: v, Known: ok}
}

func clusterStatusOf(v collector.ClusterView, now time.Time) templates.ClusterStatus {
	s := templates.ClusterStatus{Name: v.Name, HasData: v.HasSnapshot}
	switch {
	case !v.Polled:
		s.State = "connecting"
	case v.Reachable:
		s.State = "ok"
	default:
		s.State = "unreachable"
		s.Error = v.Error
		s.Since = templates.Ago(now, v.UnreachableSince)
	}
	if v.HasSnapshot {
		s.UpdatedAgo = templates.Ago(now, v.Snapshot.TakenAt)
	}
	return s
}

func groupRow(v collector.ClusterView, g collector.Group) templates.GroupRow {
	return templates.GroupRow{
		Cluster: v.Name, Name: g.Name, Href: groupHref(v.Name, g.Name),
		State: g.State, Members: g.Members, TotalLag: g.TotalLag,
		Rate: rateOf(v.GroupRates, g.Name), Error: g.Error,
	}
}

// byLag sorts groups by lag, largest first, then by name.
func byLag(a, b templates.GroupRow) int {
	if c := cmp.Compare(b.TotalLag, a.TotalLag); c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Cluster, b.Cluster))
}

func byName(a, b templates.GroupRow) int {
	return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Cluster, b.Cluster))
}

func overviewOf(views []collector.ClusterView, now time.Time) templates.Overview {
	var o templates.Overview
	for _, v := range views {
		card := templates.ClusterCard{Status: clusterStatusOf(v, now)}
		snap := v.Snapshot
		card.Brokers, card.TopicCount = len(snap.Brokers), len(snap.Topics)
		var total float64
		for _, t := range snap.Topics {
			r := rateOf(v.TopicRates, t.Name)
			if r.Known {
				total += r.PerSec
			}
			card.Messages += t.Messages
			card.Topics = append(card.Topics, templates.TopicRow{
				Cluster: v.Name, Name: t.Name, Href: topicHref(v.Name, t.Name),
				Partitions: len(t.Partitions), Messages: t.Messages, Rate: r,
				IsDLQ: t.IsDLQ, Error: t.Error,
			})
		}
		card.Rate = templates.Rate{PerSec: total, Known: v.TopicRates != nil}
		for _, g := range snap.Groups {
			card.Groups = append(card.Groups, groupRow(v, g))
		}
		slices.SortFunc(card.Groups, byLag)
		o.Clusters = append(o.Clusters, card)
	}
	return o
}

func findCluster(views []collector.ClusterView, name string) (collector.ClusterView, error) {
	for _, v := range views {
		if v.Name == name {
			return v, nil
		}
	}
	return collector.ClusterView{}, access.Errorf(access.ENOTFOUND, "cluster %q is not configured", name)
}

func topicOf(views []collector.ClusterView, cluster, topic string, now time.Time) (templates.TopicDetail, error) {
	v, err := findCluster(views, cluster)
	if err != nil {
		return templates.TopicDetail{}, err
	}
	t, ok := v.Snapshot.Topic(topic)
	if !ok {
		return templates.TopicDetail{}, access.Errorf(access.ENOTFOUND, "topic %q not found on cluster %q", topic, cluster)
	}
	d := templates.TopicDetail{
		Status: clusterStatusOf(v, now), Name: t.Name, IsDLQ: t.IsDLQ, Messages: t.Messages,
		Rate: rateOf(v.TopicRates, t.Name), Error: t.Error,
	}
	for _, p := range t.Partitions {
		d.Partitions = append(d.Partitions, templates.PartitionRow{
			Partition: p.Partition, Leader: p.Leader, Low: p.Low, High: p.High,
			Messages: max(0, p.High-p.Low), Error: p.Error,
		})
	}
	for _, g := range v.Snapshot.Groups {
		var lag int64
		reads := false
		for _, p := range g.Partitions {
			if p.Topic == topic {
				reads = true
				lag += max(0, p.Lag)
			}
		}
		if reads {
			d.Groups = append(d.Groups, templates.TopicGroupRow{Name: g.Name, Href: groupHref(v.Name, g.Name), State: g.State, Lag: lag})
		}
	}
	slices.SortFunc(d.Groups, func(a, b templates.TopicGroupRow) int {
		return cmp.Or(cmp.Compare(b.Lag, a.Lag), cmp.Compare(a.Name, b.Name))
	})
	return d, nil
}

func consumersOf(views []collector.ClusterView, sortBy string, now time.Time) templates.Consumers {
	c := templates.Consumers{Sort: sortBy}
	for _, v := range views {
		c.Clusters = append(c.Clusters, clusterStatusOf(v, now))
		for _, g := range v.Snapshot.Groups {
			c.Groups = append(c.Groups, groupRow(v, g))
		}
	}
	if sortBy == "name" {
		slices.SortFunc(c.Groups, byName)
	} else {
		slices.SortFunc(c.Groups, byLag)
	}
	return c
}

func groupOf(views []collector.ClusterView, cluster, group string, now time.Time) (templates.GroupDetail, error) {
	v, err := findCluster(views, cluster)
	if err != nil {
		return templates.GroupDetail{}, err
	}
	g, ok := v.Snapshot.Group(group)
	if !ok {
		return templates.GroupDetail{}, access.Errorf(access.ENOTFOUND, "consumer group %q not found on cluster %q", group, cluster)
	}
	d := templates.GroupDetail{
		Status: clusterStatusOf(v, now), Name: g.Name, State: g.State, Protocol: g.Protocol,
		Members: g.Members, TotalLag: g.TotalLag, Rate: rateOf(v.GroupRates, g.Name), Error: g.Error,
	}
	for _, p := range g.Partitions {
		d.Partitions = append(d.Partitions, templates.GroupPartitionRow{
			Topic: p.Topic, TopicHref: topicHref(v.Name, p.Topic), Partition: p.Partition,
			Committed: p.Committed, High: p.High, Lag: p.Lag, Member: p.Member, Error: p.Error,
		})
	}
	return d, nil
}
