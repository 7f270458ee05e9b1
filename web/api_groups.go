package web

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/collector"
)

// apiCluster is a cluster's freshness in API answers: stale values are
// marked, never dropped.
type apiCluster struct {
	Name             string    `json:"name"`
	Kind             string    `json:"kind"`
	Reachable        bool      `json:"reachable"`
	Error            string    `json:"error,omitempty"`
	UnreachableSince time.Time `json:"unreachable_since,omitzero"`
	UpdatedAt        time.Time `json:"updated_at,omitzero"`
	Stale            bool      `json:"stale"`
}

type apiGroup struct {
	Cluster         string            `json:"cluster"`
	Name            string            `json:"name"`
	State           string            `json:"state"`
	Members         int               `json:"members"`
	TotalLag        int64             `json:"total_lag"`
	MaxLagSeconds   *float64          `json:"max_lag_seconds"` // null: unknown
	MaxLagTopic     string            `json:"max_lag_topic,omitempty"`
	MaxLagPartition *int32            `json:"max_lag_partition,omitempty"`
	Status          string            `json:"status"`
	Reason          string            `json:"reason"`
	Complete        float64           `json:"complete"`
	Error           string            `json:"error,omitempty"`
	Stale           bool              `json:"stale"`
	Partitions      []apiGroupPartion `json:"partitions,omitempty"`
}

type apiGroupPartion struct {
	Topic      string   `json:"topic"`
	Partition  int32    `json:"partition"`
	Committed  int64    `json:"committed"` // -1: nothing committed
	High       int64    `json:"high"`      // -1: unknown
	Lag        int64    `json:"lag"`       // -1: unknown
	LagSeconds *float64 `json:"lag_seconds"`
	Status     string   `json:"status"`
	Reason     string   `json:"reason"`
	Member     string   `json:"member,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func kafkaAPICluster(v collector.ClusterView, f freshness) apiCluster {
	return apiCluster{
		Name: v.Name, Kind: "kafka", Reachable: v.Reachable, Error: v.Error, UnreachableSince: v.UnreachableSince,
		UpdatedAt: v.Snapshot.TakenAt, Stale: f.stale(v.HasSnapshot, v.Snapshot.TakenAt),
	}
}

func apiGroupOf(v collector.ClusterView, g collector.Group, stale, withPartitions bool) apiGroup {
	out := apiGroup{
		Cluster: v.Name, Name: g.Name, State: g.State, Members: g.Members, TotalLag: g.TotalLag,
		Status: g.Status.String(), Reason: g.Reason, Complete: g.Complete, Error: g.Error, Stale: stale,
	}
	if g.MaxLagTopic != "" {
		sec, p := g.MaxLagSeconds, g.MaxLagPartition
		out.MaxLagSeconds, out.MaxLagTopic, out.MaxLagPartition = &sec, g.MaxLagTopic, &p
	}
	if withPartitions {
		out.Partitions = make([]apiGroupPartion, 0, len(g.Partitions))
		for _, p := range g.Partitions {
			ap := apiGroupPartion{
				Topic: p.Topic, Partition: p.Partition, Committed: p.Committed, High: p.High, Lag: p.Lag,
				Status: p.Status.String(), Reason: p.Reason, Member: p.Member, Error: p.Error,
			}
			if p.LagSecondsKnown {
				sec := p.LagSeconds
				ap.LagSeconds = &sec
			}
			out.Partitions = append(out.Partitions, ap)
		}
	}
	return out
}

type groupsResponse struct {
	Clusters       []apiCluster `json:"clusters"`
	ConsumerGroups []apiGroup   `json:"consumer_groups"`
}

// handleAPIConsumerGroups lists every group the principal may view, with
// lag, lag in seconds and Burrow's verdict.
func (s *Server) handleAPIConsumerGroups(c *fiber.Ctx) error {
	f := s.fresh()
	out := groupsResponse{Clusters: []apiCluster{}, ConsumerGroups: []apiGroup{}}
	for _, v := range s.visibleClusters(c) {
		ac := kafkaAPICluster(v, f)
		out.Clusters = append(out.Clusters, ac)
		for _, g := range v.Snapshot.Groups {
			out.ConsumerGroups = append(out.ConsumerGroups, apiGroupOf(v, g, ac.Stale, false))
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

type groupResponse struct {
	Cluster apiCluster `json:"cluster"`
	apiGroup
}

// handleAPIConsumerGroup is one group with its partitions.
func (s *Server) handleAPIConsumerGroup(c *fiber.Ctx) error {
	cluster, group := param(c, "cluster"), param(c, "group")
	v, err := findCluster(s.visibleClusters(c), cluster)
	if err != nil {
		return s.fail(c, err)
	}
	g, ok := v.Snapshot.Group(group)
	if !ok {
		return s.fail(c, notFoundGroup(cluster, group))
	}
	ac := kafkaAPICluster(v, s.fresh())
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(groupResponse{Cluster: ac, apiGroup: apiGroupOf(v, g, ac.Stale, true)})
}
