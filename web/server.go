// Package web is the console's HTTP face: a fiber app with server-rendered
// templ pages, a JSON API under /api/v1, and the health, readiness and
// metrics endpoints. Server is the type that matters; routes.go lists every
// route with the access.Action it needs, and authz.go is the one place that
// authenticates and authorizes requests. Handlers stay thin: parse, one
// call, build a view model, render.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/web/static"
)

// Authenticator turns an Authorization header into a principal.
// Errors: EUNAUTHORIZED for missing or wrong credentials; anything else is
// treated as internal. *access.Store implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, header string) (*access.Principal, error)
}

// Authorizer decides whether a principal may do an action on a resource.
// Errors: EUNAUTHORIZED, EFORBIDDEN. access.Policy implements it.
type Authorizer interface {
	Authorize(p *access.Principal, a access.Action, resource string) error
}

// Clusters provides the latest broker views. *collector.Poller implements it.
type Clusters interface {
	Latest() []collector.ClusterView
}

// ReadyCheck is one readiness dependency. A failing Critical check makes
// /readyz answer 503; a failing non-critical one only "degraded".
type ReadyCheck struct {
	Name     string
	Check    func(ctx context.Context) error
	Critical bool
}

// Options configures a Server. The zero value serves every page with an
// empty cluster list and refuses all non-public routes (no Auth).
type Options struct {
	Logger *slog.Logger
	// Gatherer is exposed on /metrics (the console's registry).
	Gatherer prometheus.Gatherer
	// Registerer receives the web's own HTTP metrics.
	Registerer prometheus.Registerer
	Auth       Authenticator
	Policy     Authorizer // default access.Policy{}
	Clusters   Clusters
	Ready      []ReadyCheck
	Version    string
	// TracerProvider, when set, gives every request a server span.
	TracerProvider trace.TracerProvider
	// Now is the clock for relative times on pages; default time.Now.
	Now func() time.Time
	// ReadyTimeout bounds each readiness check; default 3s.
	ReadyTimeout time.Duration
}

// Server is the console's web server.
type Server struct {
	app            *fiber.App
	log            *slog.Logger
	auth           Authenticator
	policy         Authorizer
	clusters       Clusters
	ready          []ReadyCheck
	readyTimeout   time.Duration
	gatherer       prometheus.Gatherer
	metricsHandler fiber.Handler
	metrics        *metrics
	tracer         trace.Tracer // nil without a TracerProvider
	version        string
	assetVersion   string
	now            func() time.Time
}

// New validates opts and builds the server with all routes registered.
func New(opts Options) (*Server, error) {
	s := &Server{
		log:          opts.Logger,
		auth:         opts.Auth,
		policy:       opts.Policy,
		clusters:     opts.Clusters,
		ready:        opts.Ready,
		readyTimeout: opts.ReadyTimeout,
		gatherer:     opts.Gatherer,
		version:      opts.Version,
		assetVersion: static.Version(),
		now:          opts.Now,
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
	if s.readyTimeout <= 0 {
		s.readyTimeout = 3 * time.Second
	}
	if s.version == "" {
		s.version = "dev"
	}
	if s.now == nil {
		s.now = time.Now
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
		ErrorHandler:          func(c *fiber.Ctx, err error) error { return s.fail(c, err) },
		// Timeouts so that idle keep-alive connections do not hold up a
		// graceful shutdown forever.
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 60 * time.Second,
		IdleTimeout:  2 * time.Minute,
	})
	s.app.Use(s.requestID, s.traceRequest, s.observe, s.securityHeaders, s.recoverPanic)
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
	if err := s.app.Listener(ln); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("web: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.app.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("web: shutdown: %w", err)
	}
	return nil
}

type denyAll struct{}

func (denyAll) Authenticate(context.Context, string) (*access.Principal, error) {
	return nil, access.Errorf(access.EUNAUTHORIZED, "authentication is not configured")
}

type noClusters struct{}

func (noClusters) Latest() []collector.ClusterView { return nil }
