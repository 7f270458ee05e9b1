package web

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/delivery"
)

// Route is one entry of the route table. Every route the app serves is
// here, with the action and resource the policy checks for it; a route
// without an entry fails TestEveryRouteHasAPolicy, and one without an
// expected status per user fails TestAuthorizationMatrix.
type Route struct {
	Method string
	Path   string
	Name   string // label for logs and metrics
	Action access.Action
	// Resource names what the request touches, for the policy:
	// access.KafkaTopic, access.KafkaGroup, access.Res(access.ConsoleAdmin).
	// Nil means access.Res("*"): a list, filtered row by row.
	Resource func(c *fiber.Ctx) access.Resource
	// Public routes skip authentication: health, readiness, static files
	// and the login form.
	Public bool
	// PublicIf makes a route public when it returns true for the server's
	// configuration: /metrics with metrics.auth "none". Otherwise the
	// route's action and resource are checked as for any other.
	PublicIf func(*Server) bool
	// Self routes need any authenticated principal and no permission:
	// they act on the caller's own session (logout).
	Self bool

	handle func(*Server, *fiber.Ctx) error
}

// Routes returns the route table.
func Routes() []Route {
	var (
		get    = fiber.MethodGet
		post   = fiber.MethodPost
		del    = fiber.MethodDelete
		patch  = fiber.MethodPatch
		put    = fiber.MethodPut
		view   = access.ActionView
		manage = access.ActionManageAlerts
		admin  = access.ActionAdmin
		export = access.ActionExport
		adminR = fixed(access.ConsoleAdmin)
		auditR = fixed(access.ConsoleAudit)
		dlqR   = fixed(dlqResource)
	)
	return []Route{
		// Public: probes carry no credentials; static assets hold no data;
		// the login form is how credentials arrive.
		{Method: get, Path: "/healthz", Name: "healthz", Public: true, handle: (*Server).handleHealthz},
		{Method: get, Path: "/readyz", Name: "readyz", Public: true, handle: (*Server).handleReadyz},
		// /metrics carries every tenant's totals: by default it asks for a
		// Bearer token of a principal who may scrape (role scraper, or
		// admin); metrics.auth "none" opens it to anyone who can reach it.
		{Method: get, Path: "/metrics", Name: "metrics", Action: access.ActionScrape, Resource: fixed(metricsResource), PublicIf: (*Server).metricsOpen, handle: (*Server).handleMetrics},
		{Method: get, Path: "/static/*", Name: "static", Public: true, handle: (*Server).handleStatic},
		{Method: get, Path: "/login", Name: "login.form", Public: true, handle: (*Server).handleLoginForm},
		{Method: post, Path: "/login", Name: "login", Public: true, handle: (*Server).handleLogin},
		{Method: post, Path: "/logout", Name: "logout", Self: true, handle: (*Server).handleLogout},

		// Pages.
		{Method: get, Path: "/", Name: "overview", Action: view, handle: (*Server).handleOverview},
		{Method: get, Path: "/topics/:cluster/:topic", Name: "topic.show", Action: view, Resource: topicResource, handle: (*Server).handleTopicShow},
		{Method: get, Path: "/topics/:cluster/:topic/messages", Name: "topic.messages", Action: access.ActionReadPayload, Resource: topicResource, handle: (*Server).handleTopicMessages},
		{Method: get, Path: "/topics/:cluster/:topic/messages/export", Name: "topic.messages.export", Action: access.ActionExport, Resource: topicResource, handle: (*Server).handleTopicMessagesExport},
		{Method: get, Path: "/consumers", Name: "consumers.list", Action: view, handle: (*Server).handleConsumersList},
		{Method: get, Path: "/consumers/:cluster/:group", Name: "consumer.show", Action: view, Resource: groupResource, handle: (*Server).handleConsumerShow},
		{Method: get, Path: "/queues", Name: "queues", Action: view, handle: (*Server).handleQueues},
		{Method: get, Path: "/queues/:cluster/:vhost/:queue", Name: "queue.show", Action: view, Resource: queueResource, handle: (*Server).handleQueueShow},
		// Dead letters: lists and the entry page ask for view on "*" and
		// are filtered by tenant scope and per entry (its origin
		// destination and tenant; an entry out of reach is a 404). Triage
		// is redrive on console:dlq: it changes shared state of a cause
		// that may span tenants and destinations.
		{Method: get, Path: "/dead-letters", Name: "dead-letters", Action: view, handle: (*Server).handleDeadLetters},
		{Method: get, Path: "/dead-letters/entries", Name: "dlq.entries", Action: view, handle: (*Server).handleDLQEntries},
		{Method: get, Path: "/dead-letters/entries/:id", Name: "dlq.entry", Action: view, handle: (*Server).handleDLQEntry},
		{Method: get, Path: "/dead-letters/groups/:id/sample", Name: "dlq.group.sample", Action: view, handle: (*Server).handleDLQGroupSample},
		{Method: post, Path: "/dead-letters/groups/:id/triage", Name: "dlq.group.triage", Action: access.ActionRedrive, Resource: dlqR, handle: (*Server).handleDLQTriage},
		// Dead-letter jobs ask only for view here: the engine authorizes
		// every entry of a job by the principal's rules for the job's
		// action (redrive, quarantine, discard, edit, redrive_elsewhere)
		// and answers EFORBIDDEN. A job is seen and cancelled only by whoever
		// may act on every entry of it, or an admin: the engine filters
		// lists in the store's query and answers ENOTFOUND (404) otherwise.
		{Method: get, Path: "/dead-letters/jobs", Name: "dlq.jobs", Action: view, handle: (*Server).handleDLQJobs},
		{Method: post, Path: "/dead-letters/jobs/plan", Name: "dlq.job.plan", Action: view, handle: (*Server).handleDLQJobPlan},
		{Method: post, Path: "/dead-letters/jobs", Name: "dlq.job.start", Action: view, handle: (*Server).handleDLQJobStart},
		{Method: get, Path: "/dead-letters/jobs/:id", Name: "dlq.job", Action: view, handle: (*Server).handleDLQJob},
		{Method: post, Path: "/dead-letters/jobs/:id/cancel", Name: "dlq.job.cancel", Action: view, handle: (*Server).handleDLQJobCancel},
		// Traces: every route asks for view on "*"; the tracing service
		// keeps searches to the caller's scope in the store's query and
		// redacts spans out of reach to their timing. A trace with no span
		// the caller may see is a 404.
		{Method: get, Path: "/traces", Name: "traces", Action: view, handle: (*Server).handleTraces},
		{Method: get, Path: "/traces/:id", Name: "trace", Action: view, handle: (*Server).handleTrace},
		{Method: get, Path: "/traces/:id/spans/:span", Name: "trace.span", Action: view, handle: (*Server).handleTraceSpan},
		{Method: get, Path: "/correlations/:id", Name: "correlation", Action: view, handle: (*Server).handleCorrelation},
		{Method: get, Path: "/search", Name: "search", Action: view, handle: (*Server).handleSearch},
		// Alerting: reads ask for view on "*", writes for manage_alerts on
		// "*" (granted somewhere); the alerting service keeps lists to the
		// rules and alerts whose series the caller may view, answers 404
		// for one out of reach, and refuses (403) a rule or silence whose
		// matchers reach beyond what the caller may manage. A preview only
		// reads, what the caller may view. "new" and "preview" come before
		// ":id".
		{Method: get, Path: "/alerts", Name: "alerts", Action: view, handle: (*Server).handleAlerts},
		{Method: get, Path: "/alerts/rules", Name: "alerts.rules", Action: view, handle: (*Server).handleAlertRules},
		{Method: get, Path: "/alerts/rules/new", Name: "alerts.rule.new", Action: view, handle: (*Server).handleAlertRuleNew},
		{Method: post, Path: "/alerts/rules", Name: "alerts.rule.create", Action: manage, handle: (*Server).handleAlertRuleCreate},
		{Method: post, Path: "/alerts/rules/preview", Name: "alerts.rule.preview", Action: view, handle: (*Server).handleAlertRulePreview},
		{Method: get, Path: "/alerts/rules/:id", Name: "alerts.rule", Action: view, handle: (*Server).handleAlertRule},
		{Method: post, Path: "/alerts/rules/:id", Name: "alerts.rule.update", Action: manage, handle: (*Server).handleAlertRuleUpdate},
		{Method: post, Path: "/alerts/rules/:id/enable", Name: "alerts.rule.enable", Action: manage, handle: (*Server).handleAlertRuleEnable},
		{Method: post, Path: "/alerts/rules/:id/disable", Name: "alerts.rule.disable", Action: manage, handle: (*Server).handleAlertRuleDisable},
		{Method: post, Path: "/alerts/rules/:id/delete", Name: "alerts.rule.delete", Action: manage, handle: (*Server).handleAlertRuleDelete},
		{Method: get, Path: "/alerts/silences", Name: "alerts.silences", Action: view, handle: (*Server).handleAlertSilences},
		{Method: post, Path: "/alerts/silences", Name: "alerts.silence.create", Action: manage, handle: (*Server).handleAlertSilenceCreate},
		{Method: post, Path: "/alerts/silences/:id/expire", Name: "alerts.silence.expire", Action: manage, handle: (*Server).handleAlertSilenceExpire},
		// Export: every route needs export on "*" (granted somewhere); the
		// alerting service keeps the rule file to the rules the caller may
		// view. The push form sends the dashboards to the Grafana it names,
		// with a token used for that push only.
		{Method: get, Path: "/export", Name: "export", Action: export, handle: (*Server).handleExport},
		{Method: post, Path: "/export/grafana", Name: "export.grafana", Action: export, handle: (*Server).handleExportGrafana},

		// Admin pages: every one is admin on console:admin, the audit log
		// on console:audit.
		{Method: get, Path: "/admin", Name: "admin", Action: admin, Resource: adminR, handle: (*Server).handleAdmin},
		{Method: get, Path: "/admin/users", Name: "admin.users", Action: admin, Resource: adminR, handle: (*Server).handleAdminUsers},
		{Method: post, Path: "/admin/users", Name: "admin.users.create", Action: admin, Resource: adminR, handle: (*Server).handleAdminUserCreate},
		{Method: post, Path: "/admin/users/:name/disable", Name: "admin.users.disable", Action: admin, Resource: adminR, handle: (*Server).handleAdminUserDisable},
		{Method: post, Path: "/admin/users/:name/enable", Name: "admin.users.enable", Action: admin, Resource: adminR, handle: (*Server).handleAdminUserEnable},
		{Method: post, Path: "/admin/users/:name/password", Name: "admin.users.password", Action: admin, Resource: adminR, handle: (*Server).handleAdminUserPassword},
		{Method: get, Path: "/admin/tokens", Name: "admin.tokens", Action: admin, Resource: adminR, handle: (*Server).handleAdminTokens},
		{Method: post, Path: "/admin/tokens", Name: "admin.tokens.issue", Action: admin, Resource: adminR, handle: (*Server).handleAdminTokenIssue},
		{Method: post, Path: "/admin/tokens/:id/revoke", Name: "admin.tokens.revoke", Action: admin, Resource: adminR, handle: (*Server).handleAdminTokenRevoke},
		{Method: get, Path: "/admin/roles", Name: "admin.roles", Action: admin, Resource: adminR, handle: (*Server).handleAdminRoles},
		{Method: post, Path: "/admin/roles", Name: "admin.roles.save", Action: admin, Resource: adminR, handle: (*Server).handleAdminRoleSave},
		{Method: post, Path: "/admin/roles/:name/delete", Name: "admin.roles.delete", Action: admin, Resource: adminR, handle: (*Server).handleAdminRoleDelete},
		{Method: get, Path: "/admin/bindings", Name: "admin.bindings", Action: admin, Resource: adminR, handle: (*Server).handleAdminBindings},
		{Method: post, Path: "/admin/bindings", Name: "admin.bindings.add", Action: admin, Resource: adminR, handle: (*Server).handleAdminBindingAdd},
		{Method: post, Path: "/admin/bindings/:id/delete", Name: "admin.bindings.delete", Action: admin, Resource: adminR, handle: (*Server).handleAdminBindingDelete},
		{Method: get, Path: "/admin/check", Name: "admin.check", Action: admin, Resource: adminR, handle: (*Server).handleAdminCheck},
		{Method: get, Path: "/admin/audit", Name: "admin.audit", Action: admin, Resource: auditR, handle: (*Server).handleAdminAudit},
		{Method: get, Path: "/admin/audit/export", Name: "admin.audit.export", Action: admin, Resource: auditR, handle: (*Server).handleAdminAuditExport},

		// OTLP/HTTP receiver: services push their event metrics with an API
		// token whose user may ingest (admins, or a custom role).
		{Method: post, Path: "/v1/metrics", Name: "otlp.metrics", Action: access.ActionIngest, Resource: fixed(access.ConsoleIngest), handle: (*Server).handleOTLPMetrics},
		{Method: post, Path: "/v1/traces", Name: "otlp.traces", Action: access.ActionIngest, Resource: fixed(access.ConsoleIngest), handle: (*Server).handleOTLPTraces},

		// JSON API.
		{Method: get, Path: "/api/v1/clusters", Name: "api.clusters", Action: view, handle: (*Server).handleAPIClusters},
		{Method: get, Path: "/api/v1/consumer-groups", Name: "api.consumer-groups", Action: view, handle: (*Server).handleAPIConsumerGroups},
		{Method: get, Path: "/api/v1/consumer-groups/:cluster/:group", Name: "api.consumer-group", Action: view, Resource: groupResource, handle: (*Server).handleAPIConsumerGroup},
		{Method: get, Path: "/api/v1/queues", Name: "api.queues", Action: view, handle: (*Server).handleAPIQueues},
		{Method: get, Path: "/api/v1/series", Name: "api.series", Action: view, handle: (*Server).handleAPISeries},
		{Method: get, Path: "/api/v1/dlq/entries", Name: "api.dlq.entries", Action: view, handle: (*Server).handleAPIDLQEntries},
		{Method: get, Path: "/api/v1/dlq/entries/:id", Name: "api.dlq.entry", Action: view, handle: (*Server).handleAPIDLQEntry},
		{Method: get, Path: "/api/v1/dlq/groups", Name: "api.dlq.groups", Action: view, handle: (*Server).handleAPIDLQGroups},
		{Method: patch, Path: "/api/v1/dlq/groups/:id", Name: "api.dlq.group.triage", Action: access.ActionRedrive, Resource: dlqR, handle: (*Server).handleAPIDLQTriage},
		{Method: get, Path: "/api/v1/dlq/jobs", Name: "api.dlq.jobs", Action: view, handle: (*Server).handleAPIDLQJobs},
		{Method: post, Path: "/api/v1/dlq/jobs", Name: "api.dlq.jobs.create", Action: view, handle: (*Server).handleAPIDLQJobCreate},
		{Method: get, Path: "/api/v1/dlq/jobs/:id", Name: "api.dlq.job", Action: view, handle: (*Server).handleAPIDLQJob},
		{Method: post, Path: "/api/v1/dlq/jobs/:id/cancel", Name: "api.dlq.job.cancel", Action: view, handle: (*Server).handleAPIDLQJobCancel},
		{Method: get, Path: "/api/v1/traces", Name: "api.traces", Action: view, handle: (*Server).handleAPITraces},
		{Method: get, Path: "/api/v1/traces/:id", Name: "api.trace", Action: view, handle: (*Server).handleAPITrace},
		{Method: get, Path: "/api/v1/alerts", Name: "api.alerts", Action: view, handle: (*Server).handleAPIAlerts},
		{Method: get, Path: "/api/v1/alerts/rules", Name: "api.alerts.rules", Action: view, handle: (*Server).handleAPIAlertRules},
		{Method: post, Path: "/api/v1/alerts/rules", Name: "api.alerts.rules.create", Action: manage, handle: (*Server).handleAPIAlertRuleCreate},
		{Method: post, Path: "/api/v1/alerts/rules/preview", Name: "api.alerts.rules.preview", Action: view, handle: (*Server).handleAPIAlertRulePreview},
		{Method: get, Path: "/api/v1/alerts/rules/:id", Name: "api.alerts.rule", Action: view, handle: (*Server).handleAPIAlertRule},
		{Method: put, Path: "/api/v1/alerts/rules/:id", Name: "api.alerts.rule.update", Action: manage, handle: (*Server).handleAPIAlertRuleUpdate},
		{Method: del, Path: "/api/v1/alerts/rules/:id", Name: "api.alerts.rule.delete", Action: manage, handle: (*Server).handleAPIAlertRuleDelete},
		{Method: get, Path: "/api/v1/alerts/rules/:id/history", Name: "api.alerts.rule.history", Action: view, handle: (*Server).handleAPIAlertRuleHistory},
		{Method: get, Path: "/api/v1/alerts/silences", Name: "api.alerts.silences", Action: view, handle: (*Server).handleAPIAlertSilences},
		{Method: post, Path: "/api/v1/alerts/silences", Name: "api.alerts.silences.create", Action: manage, handle: (*Server).handleAPIAlertSilenceCreate},
		{Method: del, Path: "/api/v1/alerts/silences/:id", Name: "api.alerts.silence.expire", Action: manage, handle: (*Server).handleAPIAlertSilenceExpire},
		{Method: get, Path: "/api/v1/alerts/targets", Name: "api.alerts.targets", Action: view, handle: (*Server).handleAPIAlertTargets},
		{Method: get, Path: "/api/v1/alerts/templates/:kind", Name: "api.alerts.template", Action: view, handle: (*Server).handleAPIAlertTemplate},
		// Export; "recommended" and "provisioning" come before their ":".
		{Method: get, Path: "/api/v1/export/prometheus-rules", Name: "api.export.rules", Action: export, handle: (*Server).handleAPIExportRules},
		{Method: get, Path: "/api/v1/export/prometheus-rules/recommended", Name: "api.export.rules.recommended", Action: export, handle: (*Server).handleAPIExportRecommended},
		{Method: get, Path: "/api/v1/export/prometheus-scrape", Name: "api.export.scrape", Action: export, handle: (*Server).handleAPIExportScrape},
		{Method: get, Path: "/api/v1/export/dashboards", Name: "api.export.dashboards", Action: export, handle: (*Server).handleAPIExportDashboards},
		{Method: get, Path: "/api/v1/export/dashboards/provisioning", Name: "api.export.provisioning", Action: export, handle: (*Server).handleAPIExportProvisioning},
		{Method: get, Path: "/api/v1/export/dashboards/:uid", Name: "api.export.dashboard", Action: export, handle: (*Server).handleAPIExportDashboard},
		{Method: post, Path: "/api/v1/export/grafana", Name: "api.export.grafana", Action: export, handle: (*Server).handleAPIExportGrafana},
		{Method: get, Path: "/api/v1/topics/:cluster/:topic/messages", Name: "api.topic.messages", Action: access.ActionReadPayload, Resource: topicResource, handle: (*Server).handleAPITopicMessages},
		{Method: get, Path: "/api/v1/admin/users", Name: "api.admin.users", Action: admin, Resource: adminR, handle: (*Server).handleAPIAdminUsers},
		{Method: get, Path: "/api/v1/admin/bindings", Name: "api.admin.bindings", Action: admin, Resource: adminR, handle: (*Server).handleAPIAdminBindings},
		{Method: post, Path: "/api/v1/admin/bindings", Name: "api.admin.bindings.add", Action: admin, Resource: adminR, handle: (*Server).handleAPIAdminBindingAdd},
		{Method: del, Path: "/api/v1/admin/bindings/:id", Name: "api.admin.bindings.delete", Action: admin, Resource: adminR, handle: (*Server).handleAPIAdminBindingDelete},
		{Method: post, Path: "/api/v1/admin/tokens", Name: "api.admin.tokens.issue", Action: admin, Resource: adminR, handle: (*Server).handleAPIAdminTokenIssue},
		// The demo's "deploy the fix" switch (console demo only): it changes
		// how the platform's services behave, so it is admin's.
		{Method: get, Path: "/api/v1/demo/fixes", Name: "api.demo.fixes", Action: admin, Resource: adminR, handle: (*Server).handleAPIDemoFixes},
		{Method: post, Path: "/api/v1/demo/fixes", Name: "api.demo.fixes.deploy", Action: admin, Resource: adminR, handle: (*Server).handleAPIDemoFixDeploy},
		{Method: del, Path: "/api/v1/demo/fixes/:code", Name: "api.demo.fixes.rollback", Action: admin, Resource: adminR, handle: (*Server).handleAPIDemoFixRollback},
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
		if rt.handle == nil || rt.Name == "" || (!rt.Public && !rt.Self && rt.Action == "") {
			return fmt.Errorf("web: route %s needs a handler, a name and an action", key)
		}
		handlers := []fiber.Handler{markRoute(rt.Name)}
		if !rt.Public && (rt.PublicIf == nil || !rt.PublicIf(s)) {
			handlers = append(handlers, s.authorize(rt))
		}
		if checksQuery(rt) {
			known, ok := apiQueryParams[rt.Name]
			if !ok {
				return fmt.Errorf("web: route %s needs its query parameters in apiQueryParams (query.go)", key)
			}
			handlers = append(handlers, s.allowQuery(known))
		}
		handle := rt.handle
		handlers = append(handlers, func(c *fiber.Ctx) error { return handle(s, c) })
		s.app.Add(rt.Method, rt.Path, handlers...)
	}
	s.app.Use(func(c *fiber.Ctx) error {
		return s.fail(c, delivery.Errorf(delivery.ENOTFOUND, "no such page: %s", c.Path()))
	})
	return nil
}

func fixed(name string) func(*fiber.Ctx) access.Resource {
	return func(*fiber.Ctx) access.Resource { return access.Res(name) }
}

func topicResource(c *fiber.Ctx) access.Resource {
	return access.KafkaTopic(param(c, "cluster"), param(c, "topic"))
}

func queueResource(c *fiber.Ctx) access.Resource {
	return access.RabbitQueue(param(c, "vhost"), param(c, "queue"))
}

func groupResource(c *fiber.Ctx) access.Resource {
	return access.KafkaGroup(param(c, "cluster"), param(c, "group"))
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
