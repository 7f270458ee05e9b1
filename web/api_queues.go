package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
)

type apiQueue struct {
	Cluster       string   `json:"cluster"`
	VHost         string   `json:"vhost"`
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	State         string   `json:"state"`
	Ready         int64    `json:"ready"`
	Unacked       int64    `json:"unacked"`
	Total         int64    `json:"total"`
	Consumers     int      `json:"consumers"`
	Utilisation   *float64 `json:"consumer_utilisation"` // null: unknown
	PublishRate   float64  `json:"publish_rate"`
	DeliverRate   float64  `json:"deliver_rate"`
	AckRate       float64  `json:"ack_rate"`
	RedeliverRate float64  `json:"redeliver_rate"`
	IsDLQ         bool     `json:"is_dlq"`
	DLQOf         []string `json:"dlq_of,omitempty"`
	Stale         bool     `json:"stale"`
}

type queuesResponse struct {
	Clusters []apiCluster `json:"clusters"`
	Alarms   []string     `json:"alarms"`
	Queues   []apiQueue   `json:"queues"`
}

// handleAPIQueues lists every RabbitMQ queue the principal may view.
func (s *Server) handleAPIQueues(c *fiber.Ctx) error {
	f := s.fresh()
	out := queuesResponse{Clusters: []apiCluster{}, Alarms: []string{}, Queues: []apiQueue{}}
	for _, v := range s.visibleRabbit(c) {
		ac := apiCluster{
			Name: v.Name, Kind: "rabbitmq", Reachable: v.Reachable, Error: v.Error, UnreachableSince: v.UnreachableSince,
			UpdatedAt: v.Snapshot.TakenAt, Stale: f.stale(v.HasSnapshot, v.Snapshot.TakenAt),
		}
		out.Clusters = append(out.Clusters, ac)
		out.Alarms = append(out.Alarms, alarmsOf(v)...)
		for _, q := range v.Snapshot.Queues {
			aq := apiQueue{
				Cluster: v.Name, VHost: q.VHost, Name: q.Name, Type: q.Type, State: q.State,
				Ready: q.Ready, Unacked: q.Unacked, Total: q.Total, Consumers: q.Consumers,
				PublishRate: q.PublishRate, DeliverRate: q.DeliverRate, AckRate: q.AckRate, RedeliverRate: q.RedeliverRate,
				IsDLQ: q.IsDLQ, DLQOf: q.DLQOf, Stale: ac.Stale,
			}
			if q.Utilisation >= 0 {
				u := q.Utilisation
				aq.Utilisation = &u
			}
			out.Queues = append(out.Queues, aq)
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

func notFoundGroup(cluster, group string) error {
	return delivery.Errorf(delivery.ENOTFOUND, "consumer group %q not found on cluster %q", group, cluster)
}
