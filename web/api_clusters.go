package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/collector"
)

type clustersResponse struct {
	Clusters []collector.ClusterView `json:"clusters"`
}

func (s *Server) handleAPIClusters(c *fiber.Ctx) error {
	views := s.visibleClusters(c)
	if views == nil {
		views = []collector.ClusterView{}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(clustersResponse{Clusters: views})
}
