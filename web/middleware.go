package web

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"switchyard/delivery"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

type (
	requestIDKey struct{}
	routeKey     struct{}
)

// A client-supplied request ID is kept only if it is short and plain, so
// that it cannot inject anything into logs or pages.
var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// requestID takes X-Request-ID from the request or makes one, and echoes
// it on the response; logs and error pages quote it.
func (s *Server) requestID(c *fiber.Ctx) error {
	id := c.Get(fiber.HeaderXRequestID)
	if requestIDRE.MatchString(id) {
		id = strings.Clone(id)
	} else {
		id = newRequestID()
	}
	c.Locals(requestIDKey{}, id)
	c.Set(fiber.HeaderXRequestID, id)
	return c.Next()
}

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

func requestIDOf(c *fiber.Ctx) string {
	id, _ := c.Locals(requestIDKey{}).(string)
	return id
}

// markRoute records the matched route's name for logs, metrics and spans.
func markRoute(name string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Locals(routeKey{}, name)
		return c.Next()
	}
}

func routeOf(c *fiber.Ctx) string {
	if r, ok := c.Locals(routeKey{}).(string); ok {
		return r
	}
	return "unmatched"
}

// observe writes the access log line and the HTTP metrics. An error that
// reached it unhandled is rendered here, so the status it records is the
// one the client gets.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		s.fail(c, err) //nolint:errcheck // fail writes the response itself
	}
	d := time.Since(start)
	status := c.Response().StatusCode()
	// The method string views fasthttp's request buffer, which the next
	// request reuses; the metric keeps its labels, so it gets a copy.
	route, method := routeOf(c), strings.Clone(c.Method())
	s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(route, method).Observe(d.Seconds())
	user := ""
	if p := principal(c); p != nil {
		user = p.User
	}
	// Never the Authorization header, cookies or query strings: they may
	// carry credentials.
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn // the cause is logged once, as an error, by fail
	}
	s.log.LogAttrs(c.UserContext(), level, "http request",
		slog.String("method", method),
		slog.String("route", route),
		slog.String("path", c.Path()),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("request_id", requestIDOf(c)),
		slog.String("user", user),
	)
	return nil
}

// securityHeaders are set on every response, error pages included. The CSP
// allows no inline script or style, which is why the pages carry none.
func (s *Server) securityHeaders(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "same-origin")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	return c.Next()
}

// errLogged marks an error whose details are already in the log, so that
// fail does not log it a second time.
type errLogged struct{ error }

func (e errLogged) Unwrap() error { return e.error }

// recoverPanic turns a panic into a 500 page. The stack goes to the log,
// once, with the request ID; never to the browser.
func (s *Server) recoverPanic(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic serving request",
				"request_id", requestIDOf(c), "route", routeOf(c), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = errLogged{delivery.Errorf(delivery.EINTERNAL, "panic: %v", r)}
		}
	}()
	return c.Next()
}

// headerCarrier reads W3C trace context from the request headers.
type headerCarrier struct{ c *fiber.Ctx }

func (h headerCarrier) Get(key string) string { return h.c.Get(key) }
func (h headerCarrier) Set(string, string)    {}
func (h headerCarrier) Keys() []string        { return []string{"traceparent", "tracestate"} }

// traceRequest opens a server span per request when a TracerProvider was
// given, continuing the caller's trace from traceparent.
func (s *Server) traceRequest(c *fiber.Ctx) error {
	if s.tracer == nil {
		return c.Next()
	}
	ctx := propagation.TraceContext{}.Extract(c.UserContext(), headerCarrier{c})
	method := strings.Clone(c.Method())
	ctx, span := s.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", method),
			attribute.String("url.path", strings.Clone(c.Path())),
		))
	defer span.End()
	c.SetUserContext(ctx)
	err := c.Next() // observe, inside, has rendered any error already
	route := routeOf(c)
	status := c.Response().StatusCode()
	span.SetName(method + " " + route)
	span.SetAttributes(
		attribute.String("http.route", route),
		attribute.Int("http.response.status_code", status),
		attribute.String("request.id", requestIDOf(c)),
	)
	if status >= 500 {
		span.SetStatus(codes.Error, strconv.Itoa(status))
	}
	return err
}
