// Package web is the console's HTTP face: a fiber app with server-rendered
// templ pages, a JSON API under /api/v1, and the health, readiness and
// metrics endpoints. Server is the type that matters; routes.go lists every
// route with the access.Action it needs, and authz.go is the one place that
// authenticates and authorizes requests. Handlers stay thin: parse, one
// call, build a view model, render. The rules that protect dead letters
// are not here but in the dead-letter service (package dlq, the
// DeadLetters interface), which the dead-letter pages and API call.
package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"switchyard/access"
	"switchyard/browse"
	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/tracing"
	"switchyard/tsdb"
	"switchyard/web/static"
)

// Authenticator turns request credentials into a principal and manages
// login sessions. *access.Store implements it.
type Authenticator interface {
	// Authenticate errors: EUNAUTHORIZED for missing, wrong or expired
	// credentials; anything else is internal.
	Authenticate(ctx context.Context, cred access.Credentials) (*access.Principal, error)
	// Login errors: EUNAUTHORIZED (wrong user or password, one answer for
	// both), ETOOMANY (throttled; Details["retry_after_seconds"]), EINVALID.
	Login(ctx context.Context, user, password, peerAddr, userAgent string) (access.Session, error)
	// Logout ends the session of the cookie value; unknown ones are fine.
	Logout(ctx context.Context, sessionToken string) error
}

// Authorizer is the policy: the one function deciding every request, and
// the filters of lists. access.Policy implements it.
type Authorizer interface {
	// Authorize errors: EUNAUTHORIZED (no principal), EFORBIDDEN.
	Authorize(p *access.Principal, a access.Action, r access.Resource) error
	Can(p *access.Principal, a access.Action, r access.Resource) bool
	Scope(p *access.Principal, a access.Action, resourceName string) access.Scope
	Explain(p *access.Principal, r access.Resource) []access.Decision
	Rules(p *access.Principal, a access.Action) []access.Rule
}

// AdminStore is what the admin pages change. Every mutation takes the
// acting principal, which the store records in the audit log. Errors:
// EINVALID, ENOTFOUND, ECONFLICT. *access.Store implements it.
type AdminStore interface {
	ListUsers(ctx context.Context) ([]access.User, error)
	CreateUser(ctx context.Context, by *access.Principal, name, password string) error
	SetPassword(ctx context.Context, by *access.Principal, name, password string) error
	SetDisabled(ctx context.Context, by *access.Principal, name string, disabled bool) error
	IssueToken(ctx context.Context, by *access.Principal, user, name string, ttl time.Duration) (string, error)
	ListTokens(ctx context.Context, user string) ([]access.Token, error)
	RevokeTokenID(ctx context.Context, by *access.Principal, id int64) error
	ListRoles(ctx context.Context) ([]access.Role, error)
	SaveRole(ctx context.Context, by *access.Principal, r access.Role) error
	DeleteRole(ctx context.Context, by *access.Principal, name string) error
	ListBindings(ctx context.Context) ([]access.Binding, error)
	AddBinding(ctx context.Context, by *access.Principal, b access.Binding) (int64, error)
	// BindingNote is what an admin should know about an accepted binding
	// ("" when nothing), e.g. an SSO group while the proxy mode is off.
	BindingNote(b access.Binding) string
	DeleteBinding(ctx context.Context, by *access.Principal, id int64) error
	PrincipalFor(ctx context.Context, user string) (*access.Principal, error)
}

// AuditLog is the append-only audit log. *access.Audit implements it.
type AuditLog interface {
	Append(ctx context.Context, e access.AuditEvent) error
	List(ctx context.Context, f access.AuditFilter) ([]access.AuditRecord, int64, error)
	ExportJSONL(ctx context.Context, w io.Writer, f access.AuditFilter) error
}

// Browser reads a page of a topic's messages, filtered by tenant and
// masked. *browse.Browser implements it. Errors: ENOTFOUND, EINVALID.
type Browser interface {
	Read(ctx context.Context, cluster, topic string, q browse.Query) (browse.Page, error)
}

// Clusters provides the latest broker views. *collector.Poller implements it.
type Clusters interface {
	Latest() []collector.ClusterView
	RabbitLatest() []collector.RabbitView
}

// SeriesStore answers range queries over the collected history.
// *tsdb.Store implements it. Errors: EINVALID for a bad query.
type SeriesStore interface {
	Query(ctx context.Context, q tsdb.Q) ([]tsdb.Series, error)
	// LabelValues lists a label's values among the series matching the
	// matchers; the principal's scope (collector.SeriesScope) names
	// clusters and vhosts with it.
	LabelValues(ctx context.Context, label string, matchers ...tsdb.Matcher) ([]string, error)
}

// MetricsReceiver takes OTLP/HTTP metric exports (protobuf, or JSON when
// isJSON). *collector.ServiceMetrics implements it. A malformed body is an
// error wrapping collector.ErrBadOTLP.
type MetricsReceiver interface {
	Ingest(body []byte, isJSON bool) (collector.IngestResult, error)
}

// ReadyCheck is one readiness dependency. A failing Critical check makes
// /readyz answer 503; a failing non-critical one only "degraded".
type ReadyCheck struct {
	Name     string
	Check    func(ctx context.Context) error
	Critical bool
}

// Options configures a Server. The zero value serves every page with an
// empty cluster list and refuses all non-public routes (no Auth); admin
// pages and the message browser answer "not configured" without their
// Store, Audit or Browser.
type Options struct {
	Logger *slog.Logger
	// Gatherer is exposed on /metrics (the console's registry).
	Gatherer prometheus.Gatherer
	// MetricsPublic serves /metrics without credentials (metrics.auth
	// "none"). By default it needs a principal who may scrape: the series
	// there count every tenant.
	MetricsPublic bool
	// Registerer receives the web's own HTTP metrics.
	Registerer prometheus.Registerer
	// Auth authenticates requests and runs login and logout.
	Auth Authenticator
	// Policy decides every request; default access.Policy{}.
	Policy   Authorizer
	Clusters Clusters
	// Series is the time-series store the dashboards chart and
	// /api/v1/series reads; nil draws every chart empty.
	Series SeriesStore
	// OTLP receives the services' metrics on POST /v1/metrics; nil
	// answers that route 404.
	OTLP MetricsReceiver
	// TraceReceiver receives the services' spans on POST /v1/traces; nil
	// answers that route 404. *tracing.Receiver.
	TraceReceiver TraceReceiver
	// PollInterval is the collectors' interval; data older than three of
	// them is marked stale. Default collector.DefaultPollInterval.
	PollInterval time.Duration
	// MaxOTLPBody caps an OTLP request body after decompression; default
	// 8 MiB. Larger bodies get 413.
	MaxOTLPBody int
	// MaxBody caps every other request body (forms, JSON) after
	// decompression; default 4 MiB.
	MaxBody int
	// Store backs the admin pages; nil answers them with an error.
	Store AdminStore
	// Audit backs the audit page and records token mutations and payload
	// reads; nil records nothing.
	Audit AuditLog
	// Browser backs the message browser; nil says it is not configured.
	// PII masking happens inside it (browse.Options.Masker), before the
	// text search, so that a search cannot probe masked fields.
	Browser Browser
	// AuditPayloadReads records every message-browser read as
	// "payload.read" (the dead-letter service audits its own).
	AuditPayloadReads bool
	// DLQ is the dead-letter service behind /dead-letters and
	// /api/v1/dlq, its jobs included (without an engine it answers those
	// "not configured" and offers no buttons); nil answers every
	// dead-letter route "not configured". *dlq.Service.
	DLQ DeadLetters
	// Demo is the demo platform's "deploy the fix" switch (console demo
	// only); nil answers /api/v1/demo/fixes 404. *demo.Fixes.
	Demo DemoFixes
	// Traces is the tracing service behind /traces, /correlations and
	// /api/v1/traces; nil shows the trace pages "not configured" and the
	// search box falls back to dead letters. *tracing.Service.
	Traces Traces
	// Alerts is the alerting service behind /alerts and /api/v1/alerts;
	// nil turns alerting off: the pages say so and the API answers 404.
	// *alerting.Service.
	Alerts AlertService
	// SecureCookies marks cookies Secure even on plain HTTP requests (the
	// console behind a TLS-terminating proxy).
	SecureCookies bool
	// ProxyUserHeader and ProxyGroupsHeader are read and handed to Auth,
	// which believes them only from trusted proxy addresses; defaults
	// X-Forwarded-User and X-Forwarded-Groups.
	ProxyUserHeader, ProxyGroupsHeader string
	Ready                              []ReadyCheck
	Version                            string
	// TracerProvider, when set, gives every request a server span.
	TracerProvider trace.TracerProvider
	// ExternalURL is the console's address as its users reach it
	// (alerting.external_url), for the exported scrape job and dashboard
	// links; "" takes each request's own scheme and host.
	ExternalURL string
	// Now is the clock for relative times on pages; default time.Now.
	Now func() time.Time
	// ReadyTimeout bounds each readiness check; default 3s.
	ReadyTimeout time.Duration
}

// Server is the console's web server.
type Server struct {
	app            *fiber.App
	listener       atomic.Pointer[quietListener] // what Serve serves, for Shutdown
	log            *slog.Logger
	auth           Authenticator
	policy         Authorizer
	clusters       Clusters
	series         SeriesStore
	otlp           MetricsReceiver
	traceRecv      TraceReceiver
	pollInterval   time.Duration
	maxOTLPBody    int
	metricsPublic  bool
	maxBody        int
	store          AdminStore
	audit          AuditLog
	browser        Browser
	dlq            DeadLetters
	demo           DemoFixes
	traces         Traces
	alerts         AlertService
	auditReads     bool
	secureCookies  bool
	proxyUser      string
	proxyGroups    string
	ready          []ReadyCheck
	readyTimeout   time.Duration
	gatherer       prometheus.Gatherer
	metricsHandler fiber.Handler
	metrics        *metrics
	tracer         trace.Tracer // nil without a TracerProvider
	version        string
	assetVersion   string
	externalURL    string
	now            func() time.Time
}

// New validates opts and builds the server with all routes registered.
func New(opts Options) (*Server, error) {
	s := &Server{
		log:           opts.Logger,
		auth:          opts.Auth,
		policy:        opts.Policy,
		clusters:      opts.Clusters,
		series:        opts.Series,
		otlp:          opts.OTLP,
		traceRecv:     opts.TraceReceiver,
		pollInterval:  opts.PollInterval,
		maxOTLPBody:   opts.MaxOTLPBody,
		metricsPublic: opts.MetricsPublic,
		maxBody:       opts.MaxBody,
		store:         opts.Store,
		audit:         opts.Audit,
		browser:       opts.Browser,
		dlq:           opts.DLQ,
		demo:          opts.Demo,
		traces:        opts.Traces,
		alerts:        opts.Alerts,
		auditReads:    opts.AuditPayloadReads,
		secureCookies: opts.SecureCookies,
		proxyUser:     cmp.Or(opts.ProxyUserHeader, "X-Forwarded-User"),
		proxyGroups:   cmp.Or(opts.ProxyGroupsHeader, "X-Forwarded-Groups"),
		ready:         opts.Ready,
		readyTimeout:  opts.ReadyTimeout,
		gatherer:      opts.Gatherer,
		version:       opts.Version,
		assetVersion:  static.Version(),
		externalURL:   strings.TrimRight(opts.ExternalURL, "/"),
		now:           opts.Now,
	}
	if s.log == nil {
		s.log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if s.auth == nil {
		s.auth = denyAll{}
	}
	if s.policy == nil {
		s.policy = access.Policy{}
	}
	if s.clusters == nil {
		s.clusters = noClusters{}
	}
	if s.series != nil {
		s.series = newSeriesCache(s.series, func() time.Time { return s.now() })
	}
	if s.pollInterval <= 0 {
		s.pollInterval = collector.DefaultPollInterval
	}
	if s.maxOTLPBody <= 0 {
		s.maxOTLPBody = 8 << 20
	}
	if s.maxBody <= 0 {
		s.maxBody = defaultMaxBody
	}
	if s.readyTimeout <= 0 {
		s.readyTimeout = 3 * time.Second
	}
	if s.version == "" {
		s.version = "dev"
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.externalURL != "" {
		if why := checkHTTPURL(s.externalURL); why != "" {
			return nil, fmt.Errorf("web: external URL %q: %s", s.externalURL, why)
		}
	}
	for i, rc := range s.ready {
		if rc.Name == "" || rc.Check == nil {
			return nil, fmt.Errorf("web: ready check %d needs a name and a func", i)
		}
	}
	reg := opts.Registerer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg = r
		if s.gatherer == nil {
			s.gatherer = r
		}
	}
	if s.gatherer == nil {
		s.gatherer = prometheus.NewRegistry() // nothing to expose
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s.metrics = m
	s.metricsHandler = newMetricsHandler(s.gatherer)
	if opts.TracerProvider != nil {
		s.tracer = opts.TracerProvider.Tracer("switchyard/web")
	}

	s.app = fiber.New(fiber.Config{
		AppName:               "switchyard",
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		// Room for the largest body any route takes plus one byte, so that
		// limitBody answers 413 in the error contract with the route's own
		// limit; fasthttp's refusal of anything larger goes through
		// handleError too.
		BodyLimit: max(s.maxOTLPBody, s.maxBody) + 1,
		// Request line and headers: room for long filters and cursors
		// (fasthttp's default is 4 KiB); beyond it, a 431 in the error
		// contract.
		ReadBufferSize: 16 << 10,
		// Timeouts so that idle keep-alive connections do not hold up a
		// graceful shutdown forever.
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 60 * time.Second,
		IdleTimeout:  2 * time.Minute,
	})
	s.app.Use(s.requestID, s.traceRequest, s.observe, s.securityHeaders, s.recoverPanic, s.checkQuery, s.limitBody)
	if err := s.register(); err != nil {
		return nil, err
	}
	return s, nil
}

// App returns the fiber app, for app.Test in tests.
func (s *Server) App() *fiber.App { return s.app }

// Serve serves HTTP on ln until Shutdown. It returns nil after a graceful
// shutdown.
func (s *Server) Serve(ln net.Listener) error {
	ql := newQuietListener(ln)
	s.listener.Store(ql)
	if err := s.app.Listener(ql); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("web: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx is done. Connections on which no request has begun are closed
// (quietListener); idle keep-alive ones fasthttp closes itself.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.app.ShutdownWithContext(ctx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("web: shutdown: %w", err)
			}
			return nil
		case <-tick.C:
			// Again on every tick: a connection accepted just before
			// the listener closed is closed on the next one.
			if ql := s.listener.Load(); ql != nil {
				ql.closeQuiet()
			}
		}
	}
}

type denyAll struct{}

func (denyAll) Authenticate(context.Context, access.Credentials) (*access.Principal, error) {
	return nil, delivery.Errorf(delivery.EUNAUTHORIZED, "authentication is not configured")
}

func (denyAll) Login(context.Context, string, string, string, string) (access.Session, error) {
	return access.Session{}, delivery.Errorf(delivery.EUNAUTHORIZED, "authentication is not configured")
}

func (denyAll) Logout(context.Context, string) error { return nil }

type noClusters struct{}

func (noClusters) Latest() []collector.ClusterView { return nil }

func (noClusters) RabbitLatest() []collector.RabbitView { return nil }

// The real implementations satisfy the interfaces above.
var (
	_ Authenticator   = (*access.Store)(nil)
	_ AdminStore      = (*access.Store)(nil)
	_ Authorizer      = access.Policy{}
	_ AuditLog        = (*access.Audit)(nil)
	_ Browser         = (*browse.Browser)(nil)
	_ Clusters        = (*collector.Poller)(nil)
	_ SeriesStore     = (*tsdb.Store)(nil)
	_ MetricsReceiver = (*collector.ServiceMetrics)(nil)
	_ TraceReceiver   = (*tracing.Receiver)(nil)
	_ browse.Masker   = (*access.Masker)(nil)
)
