package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/delivery"
)

type principalKey struct{}

// Cookie names. The session cookie carries the opaque session token; the
// login cookie is the double-submit CSRF token of the login form (there is
// no session yet to hold one); the proxy cookie is the same for principals
// of the trusted reverse proxy, whose credentials are ambient too.
const (
	sessionCookie   = "sy_session"
	loginCSRFCookie = "sy_login_csrf"
	proxyCSRFCookie = "sy_csrf"
	flashCookie     = "sy_flash"
	csrfField       = "_csrf"
	csrfHeader      = "X-CSRF-Token"
)

// authorize is the one middleware that decides whether a request may run.
// It authenticates (session cookie, Bearer token or trusted-proxy headers),
// checks the CSRF token of state-changing requests that rode on ambient
// credentials, and asks the policy about the route's action and resource.
// Handlers never check permissions; list handlers only filter rows with
// Can and Scope. Mutations made with an API token are audited here, but
// for OTLP ingest, which is counted (countIngest).
func (s *Server) authorize(rt Route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := s.authenticate(c)
		if err != nil {
			if delivery.ErrorCode(err) == delivery.EUNAUTHORIZED && !isAPI(c) && !isFragment(c) {
				return s.toLogin(c)
			}
			return s.fail(c, err)
		}
		c.Locals(principalKey{}, p)
		switch {
		case rt.Action == access.ActionIngest:
			defer s.countIngest(c, p) // counted, not audited: see countIngest
		case p.Method == access.MethodToken && !safeMethod(c.Method()):
			defer s.auditMutation(c, rt, p)
		}
		if err := s.checkCSRF(c, p); err != nil {
			return s.fail(c, err)
		}
		if rt.Self {
			return c.Next()
		}
		r := access.Res("*")
		if rt.Resource != nil {
			r = rt.Resource(c)
		}
		if err := s.policy.Authorize(p, rt.Action, r); err != nil {
			return s.fail(c, err)
		}
		return c.Next()
	}
}

// authenticate collects the request's credentials for Auth. PeerAddr is
// the TCP peer, never X-Forwarded-For: only the peer's address tells
// whether the proxy headers come from the trusted proxy.
func (s *Server) authenticate(c *fiber.Ctx) (*access.Principal, error) {
	cred := access.Credentials{
		Authorization: c.Get(fiber.HeaderAuthorization),
		SessionToken:  c.Cookies(sessionCookie),
		PeerAddr:      c.Context().RemoteIP().String(),
		ProxyUser:     c.Get(s.proxyUser),
		ProxyGroups:   c.Get(s.proxyGroups),
		UserAgent:     c.Get(fiber.HeaderUserAgent),
	}
	if cred.Authorization == "" && cred.SessionToken == "" && cred.ProxyUser == "" {
		return nil, delivery.Errorf(delivery.EUNAUTHORIZED, "sign in to continue")
	}
	return s.auth.Authenticate(c.UserContext(), cred)
}

// toLogin sends a browser without a session to the login form, which
// brings it back to the page afterwards.
func (s *Server) toLogin(c *fiber.Ctx) error {
	target := "/login"
	if safeMethod(c.Method()) {
		// The request line as sent: the parsed URI's path is decoded and
		// its slashes collapsed, which would turn the default vhost's
		// /queues/mq/%2F/q into /queues/mq/q.
		target += "?next=" + url.QueryEscape(string(c.Request().Header.RequestURI()))
	}
	return c.Redirect(target, fiber.StatusSeeOther)
}

func safeMethod(m string) bool { return m == fiber.MethodGet || m == fiber.MethodHead }

// checkCSRF: a state-changing request authenticated by something the
// browser sends on its own (the session cookie, the proxy's SSO cookie)
// must prove it comes from one of our pages by echoing the token those
// pages carry. Token-authenticated requests have no ambient credentials and
// are exempt.
func (s *Server) checkCSRF(c *fiber.Ctx, p *access.Principal) error {
	if safeMethod(c.Method()) || p.Method == access.MethodToken {
		return nil
	}
	want := s.csrfToken(c, p)
	got := c.Get(csrfHeader)
	if got == "" {
		got = c.FormValue(csrfField)
	}
	if want == "" || !sameToken(got, want) {
		return delivery.Errorf(delivery.EFORBIDDEN, "this form has expired or did not come from the console: reload the page and try again")
	}
	return nil
}

// csrfToken returns the token the principal's pages carry: the session's,
// or for proxy principals a double-submit cookie set on first sight.
func (s *Server) csrfToken(c *fiber.Ctx, p *access.Principal) string {
	switch {
	case p == nil:
		return ""
	case p.Method == access.MethodSession:
		return p.CSRFToken
	case p.Method == access.MethodProxy:
		if v := c.Cookies(proxyCSRFCookie); len(v) >= 32 {
			return strings.Clone(v)
		}
		if v, ok := c.Locals(proxyCSRFCookie).(string); ok {
			return v
		}
		v := randomToken()
		c.Locals(proxyCSRFCookie, v)
		s.setCookie(c, proxyCSRFCookie, v, 0, "Strict")
		return v
	}
	return ""
}

func sameToken(got, want string) bool {
	return len(got) > 0 && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read does not fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// setCookie sets an HttpOnly cookie on Path=/, Secure on TLS or when
// configured. maxAge 0 makes a browser-session cookie; < 0 deletes it.
func (s *Server) setCookie(c *fiber.Ctx, name, value string, maxAge time.Duration, sameSite string) {
	ck := &fiber.Cookie{
		Name: name, Value: value, Path: "/", HTTPOnly: true, SameSite: sameSite,
		Secure: s.secureCookies || c.Protocol() == "https",
	}
	switch {
	case maxAge < 0:
		ck.Value = ""
		ck.Expires = time.Unix(1, 0)
		ck.MaxAge = -1
	case maxAge > 0:
		ck.MaxAge = int(maxAge / time.Second)
	}
	c.Cookie(ck)
}

// auditMutation records a token-authenticated mutation with the outcome
// its status says. Runs after the handler, or after a refusal.
func (s *Server) auditMutation(c *fiber.Ctx, rt Route, p *access.Principal) {
	if s.audit == nil {
		return
	}
	status := c.Response().StatusCode()
	outcome := statusOutcome(status)
	resource := "*"
	if rt.Resource != nil {
		resource = rt.Resource(c).Name
	}
	ev := s.auditEvent(c, p, "api.mutation", resource, outcome)
	ev.Details = map[string]any{"route": rt.Name, "method": c.Method(), "path": c.Path(), "status": status}
	if err := s.audit.Append(c.UserContext(), ev); err != nil {
		s.log.Error("audit api mutation", "request_id", requestIDOf(c), "route", rt.Name, "err", err)
	}
}

// statusOutcome is what a request's status says of it, for the audit log and
// the ingest counter: success, denied (401, 403) or failure.
func statusOutcome(status int) string {
	switch {
	case status == fiber.StatusUnauthorized || status == fiber.StatusForbidden:
		return "denied"
	case status >= 400:
		return "failure"
	}
	return "success"
}

// auditEvent fills who, from where, and what.
func (s *Server) auditEvent(c *fiber.Ctx, p *access.Principal, action, resource, outcome string) access.AuditEvent {
	ev := access.AuditEvent{
		Time: s.now(), SourceIP: c.Context().RemoteIP().String(), UserAgent: strings.Clone(c.Get(fiber.HeaderUserAgent)),
		Action: action, Resource: resource, Outcome: outcome,
	}
	if p != nil {
		ev.Actor, ev.Method = p.User, p.Method
	}
	return ev
}

// principal returns the authenticated principal, nil on public routes.
func principal(c *fiber.Ctx) *access.Principal {
	p, _ := c.Locals(principalKey{}).(*access.Principal)
	return p
}
