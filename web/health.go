package web

import (
	"context"
	"io/fs"
	"mime"
	"path"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"switchyard/delivery"
	"switchyard/web/static"
)

// handleHealthz says the process is alive and serving; nothing more.
func (s *Server) handleHealthz(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.SendString("ok")
}

type checkResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

type readiness struct {
	Status string                 `json:"status"` // ready, degraded, unready
	Checks map[string]checkResult `json:"checks"`
}

// handleReadyz runs every ready check concurrently, each under its own
// timeout. Only a failing Critical check (the store) answers 503. A dead
// broker makes the console "degraded" but still ready: the console is what
// operators open while brokers are down, so taking it out of the load
// balancer then would hide the very pages that explain the outage.
func (s *Server) handleReadyz(c *fiber.Ctx) error {
	results := make([]checkResult, len(s.ready))
	parent := c.UserContext() // fiber's Ctx is not safe for concurrent use
	var wg sync.WaitGroup
	for i, rc := range s.ready {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(parent, s.readyTimeout)
			defer cancel()
			if err := rc.Check(ctx); err != nil {
				results[i] = checkResult{Error: err.Error()}
				return
			}
			results[i] = checkResult{OK: true}
		})
	}
	wg.Wait()
	out := readiness{Status: "ready", Checks: make(map[string]checkResult, len(s.ready))}
	for i, rc := range s.ready {
		out.Checks[rc.Name] = results[i]
		switch {
		case results[i].OK:
		case rc.Critical:
			out.Status = "unready"
		case out.Status == "ready":
			out.Status = "degraded"
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	if out.Status == "unready" {
		c.Status(fiber.StatusServiceUnavailable)
	}
	return c.JSON(out)
}

// handleMetrics exposes the console's registry in the Prometheus format.
func (s *Server) handleMetrics(c *fiber.Ctx) error {
	return s.metricsHandler(c)
}

func newMetricsHandler(g prometheus.Gatherer) fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}

// handleStatic serves the embedded assets. Pages link them with
// ?v=<content hash>: such URLs never change content and are cached for a
// year; any other URL is revalidated.
func (s *Server) handleStatic(c *fiber.Ctx) error {
	name := path.Clean(c.Params("*"))
	b, err := fs.ReadFile(static.FS(), name)
	if err != nil || name == "static.go" {
		return s.fail(c, delivery.Errorf(delivery.ENOTFOUND, "no such file"))
	}
	if c.Query("v") == s.assetVersion {
		c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	} else {
		c.Set(fiber.HeaderCacheControl, "no-cache")
	}
	c.Set(fiber.HeaderETag, `"`+s.assetVersion+`"`)
	if c.Get(fiber.HeaderIfNoneMatch) == `"`+s.assetVersion+`"` {
		return c.SendStatus(fiber.StatusNotModified)
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = fiber.MIMEOctetStream
	}
	c.Set(fiber.HeaderContentType, ct)
	return c.Send(b)
}
