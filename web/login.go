package web

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/web/templates"
)

// safeNext returns next when it is a local path ("/…" but not "//…" or
// "/\…", which browsers treat as another host), else "/". It keeps the
// login form from being an open redirect.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	return next
}

// loginCSRF returns the pre-session CSRF token, setting its cookie when
// the browser has none (double submit: the form echoes the cookie).
func (s *Server) loginCSRF(c *fiber.Ctx) string {
	if v := c.Cookies(loginCSRFCookie); len(v) >= 32 {
		return strings.Clone(v)
	}
	v := randomToken()
	s.setCookie(c, loginCSRFCookie, v, 0, "Strict")
	return v
}

func (s *Server) renderLogin(c *fiber.Ctx, status int, l templates.Login) error {
	c.Status(status)
	return s.render(c, templates.Page{Title: "Sign in", CSRF: s.loginCSRF(c)}, templates.LoginView(l))
}

func (s *Server) handleLoginForm(c *fiber.Ctx) error {
	return s.renderLogin(c, fiber.StatusOK, templates.Login{Next: safeNext(c.Query("next"))})
}

// handleLogin checks the form's CSRF token against its cookie, then the
// credentials. Wrong user and wrong password get the same message; the
// store audits both outcomes and throttles repeated failures.
func (s *Server) handleLogin(c *fiber.Ctx) error {
	l := templates.Login{
		User: strings.Clone(c.FormValue("username")),
		Next: safeNext(c.FormValue("next")),
	}
	if cookie := c.Cookies(loginCSRFCookie); cookie == "" || !sameToken(c.FormValue(csrfField), cookie) {
		l.Error = "The sign-in form expired. Please try again."
		return s.renderLogin(c, fiber.StatusForbidden, l)
	}
	sess, err := s.auth.Login(c.UserContext(), l.User, c.FormValue("password"),
		c.Context().RemoteIP().String(), c.Get(fiber.HeaderUserAgent))
	switch code := delivery.ErrorCode(err); {
	case err == nil:
	case code == delivery.EUNAUTHORIZED || code == delivery.EINVALID:
		l.Error = "Wrong user name or password."
		return s.renderLogin(c, fiber.StatusUnauthorized, l)
	case code == delivery.ETOOMANY:
		secs := retryAfterSeconds(err)
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
		l.Error = fmt.Sprintf("Too many attempts, try again in %d minutes.", max(1, (secs+59)/60))
		return s.renderLogin(c, fiber.StatusTooManyRequests, l)
	default:
		return s.fail(c, err)
	}
	if old := c.Cookies(sessionCookie); old != "" {
		// A second sign-in in the same browser replaces the session; the
		// old one must not live on unseen.
		if err := s.auth.Logout(c.UserContext(), old); err != nil {
			s.log.Warn("end previous session", "request_id", requestIDOf(c), "err", err)
		}
	}
	s.setCookie(c, sessionCookie, sess.Token, 0, "Lax")
	s.setCookie(c, loginCSRFCookie, "", -1, "Strict")
	return c.Redirect(l.Next, fiber.StatusSeeOther)
}

// retryAfterSeconds reads the throttle's retry-after, at least 1.
func retryAfterSeconds(err error) int {
	var de *delivery.Error
	secs := 0
	if errors.As(err, &de) {
		switch v := de.Details["retry_after_seconds"].(type) {
		case int:
			secs = v
		case int64:
			secs = int(v)
		case float64:
			secs = int(v)
		}
	}
	return max(1, secs)
}

// handleLogout ends the session server-side and clears the cookie. The
// middleware has checked the CSRF token, so a third-party page cannot sign
// the user out.
func (s *Server) handleLogout(c *fiber.Ctx) error {
	if tok := c.Cookies(sessionCookie); tok != "" {
		if err := s.auth.Logout(c.UserContext(), tok); err != nil {
			return s.fail(c, err)
		}
	}
	s.setCookie(c, sessionCookie, "", -1, "Lax")
	return c.Redirect("/login", fiber.StatusSeeOther)
}
