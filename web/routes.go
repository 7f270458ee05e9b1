package web

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
)

// Route is one entry of the route table. Every route the app serves is
// here, with the action the policy checks for it; a route without an entry
// fails TestEveryRouteHasAPolicy.
type Route struct {
	Method string
	Path   string
	Name   string // label for logs and metrics
	Action access.Action
	// Resource names what the request touches, for the policy:
	// "kafka:<cluster>/<topic>", "kafka-group:<cluster>/<group>", "admin".
	// Nil means "*" (everything of the action's kind).
	Resource func(c *fiber.Ctx) string
	// Public routes skip authentication: only health, readiness, metrics
	// and static files.
	Public bool

	handle func(*Server, *fiber.Ctx) error
}

// Routes returns the route table.
func Routes() []Route {
	return []Route{
		// Public: probes and scrapers carry no credentials; static assets
		// hold no data.
		{Method: fiber.MethodGet, Path: "/healthz", Name: "healthz", Public: true, handle: (*Server).handleHealthz},
		{Method: fiber.MethodGet, Path: "/readyz", Name: "readyz", Public: true, handle: (*Server).handleReadyz},
		{Method: fiber.MethodGet, Path: "/metrics", Name: "metrics", Public: true, handle: (*Server).handleMetrics},
		{Method: fiber.MethodGet, Path: "/static/*", Name: "static", Public: true, handle: (*Server).handleStatic},

		// Pages.
		{Method: fiber.MethodGet, Path: "/", Name: "overview", Action: access.ActionView, handle: (*Server).handleOverview},
		{Method: fiber.MethodGet, Path: "/topics/:cluster/:topic", Name: "topic.show", Action: access.ActionView, Resource: topicResource, handle: (*Server).handleTopicShow},
		{Method: fiber.MethodGet, Path: "/consumers", Name: "consumers.list", Action: access.ActionView, handle: (*Server).handleConsumersList},
		{Method: fiber.MethodGet, Path: "/consumers/:cluster/:group", Name: "consumer.show", Action: access.ActionView, Resource: groupResource, handle: (*Server).handleConsumerShow},
		{Method: fiber.MethodGet, Path: "/queues", Name: "queues", Action: access.ActionView, handle: (*Server).handleQueues},
		{Method: fiber.MethodGet, Path: "/dead-letters", Name: "dead-letters", Action: access.ActionView, handle: (*Server).handleDeadLetters},
		{Method: fiber.MethodGet, Path: "/traces", Name: "traces", Action: access.ActionView, handle: (*Server).handleTraces},
		{Method: fiber.MethodGet, Path: "/alerts", Name: "alerts", Action: access.ActionView, handle: (*Server).handleAlerts},
		{Method: fiber.MethodGet, Path: "/export", Name: "export", Action: access.ActionExport, handle: (*Server).handleExport},
		{Method: fiber.MethodGet, Path: "/admin", Name: "admin", Action: access.ActionAdmin, Resource: fixed("admin"), handle: (*Server).handleAdmin},

		// JSON API.
		{Method: fiber.MethodGet, Path: "/api/v1/clusters", Name: "api.clusters", Action: access.ActionView, Resource: fixed("kafka:*"), handle: (*Server).handleAPIClusters},
	}
}

// register adds every route of the table to the app, each behind the
// authorization middleware unless public, and a final handler that answers
// 404 for everything else.
func (s *Server) register() error {
	seen := map[string]bool{}
	for _, rt := range Routes() {
		key := rt.Method + " " + rt.Path
		if seen[key] {
			return fmt.Errorf("web: route %s registered twice", key)
		}
		seen[key] = true
		if rt.handle == nil || rt.Name == "" || (!rt.Public && rt.Action == "") {
			return fmt.Errorf("web: route %s needs a handler, a name and an action", key)
		}
		handlers := []fiber.Handler{markRoute(rt.Name)}
		if !rt.Public {
			handlers = append(handlers, s.authorize(rt))
		}
		handle := rt.handle
		handlers = append(handlers, func(c *fiber.Ctx) error { return handle(s, c) })
		s.app.Add(rt.Method, rt.Path, handlers...)
	}
	s.app.Use(func(c *fiber.Ctx) error {
		return s.fail(c, access.Errorf(access.ENOTFOUND, "no such page: %s", c.Path()))
	})
	return nil
}

func fixed(resource string) func(*fiber.Ctx) string {
	return func(*fiber.Ctx) string { return resource }
}

func topicResource(c *fiber.Ctx) string {
	return "kafka:" + param(c, "cluster") + "/" + param(c, "topic")
}

func groupResource(c *fiber.Ctx) string {
	return "kafka-group:" + param(c, "cluster") + "/" + param(c, "group")
}

// param returns a path parameter, unescaped and copied (fiber reuses the
// request buffer once the handler returns). A malformed escape is returned
// as is: it then matches nothing and the handler answers 404.
func param(c *fiber.Ctx, name string) string {
	raw := c.Params(name)
	if v, err := url.PathUnescape(raw); err == nil {
		return strings.Clone(v) // PathUnescape may return raw itself
	}
	return strings.Clone(raw)
}
