package web

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/web/templates"
)

// isFragment reports whether app.js asked for the panel only.
func isFragment(c *fiber.Ctx) bool { return c.Get("HX-Request") == "true" }

// render writes body as a full page in the layout, or as the bare panel
// fragment for an HX-Request. It renders into a buffer first so that a
// template error becomes a clean error page, not half a page.
func (s *Server) render(c *fiber.Ctx, page templates.Page, body templ.Component) error {
	s.framePage(c, &page)
	comp := body
	ctx := templates.WithCSRF(c.UserContext(), page.CSRF)
	if !isFragment(c) {
		ctx = templ.WithChildren(ctx, body)
		comp = templates.Layout(page)
	}
	buf := renderBuffers.Get().(*bytes.Buffer)
	defer putRenderBuffer(buf)
	if err := comp.Render(ctx, buf); err != nil {
		return s.fail(c, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderVary, "HX-Request")
	c.Response().SetBody(buf.Bytes()) // a copy: buf goes back to the pool
	return nil
}

// renderBuffers are the buffers pages render into, reused: a page is tens
// of kilobytes, which a new buffer would grow to (and clear) each time.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putRenderBuffer returns a buffer to renderBuffers, unless an unusually
// large page grew it (it would stay that large).
func putRenderBuffer(buf *bytes.Buffer) {
	if buf.Cap() > 1<<20 {
		return
	}
	buf.Reset()
	renderBuffers.Put(buf)
}

// framePage fills what the layout needs around every page: the user, the
// navigation they may use, the CSRF token for forms and app.js, and the
// flash message of the previous redirect (read once).
func (s *Server) framePage(c *fiber.Ctx, page *templates.Page) {
	page.Version, page.AssetVersion = s.version, s.assetVersion
	p := principal(c)
	if p == nil {
		return
	}
	page.User = p.User
	page.CanLogout = p.Method == access.MethodSession
	page.CSRF = s.csrfToken(c, p)
	for _, n := range templates.NavItems() {
		a, r := areaAccess(n.Area)
		if s.policy.Can(p, a, r) {
			if n.Area == templates.AreaDeadLetters {
				n.Badge = s.dlqBadge(c)
			}
			page.Nav = append(page.Nav, n)
		}
	}
	if f := c.Cookies(flashCookie); f != "" {
		if msg, err := url.QueryUnescape(f); err == nil {
			page.Flash = msg
		}
		s.setCookie(c, flashCookie, "", -1, "Lax")
	}
}

// areaAccess is what a navigation entry's page needs, as in Routes.
func areaAccess(area string) (access.Action, access.Resource) {
	switch area {
	case templates.AreaExport:
		return access.ActionExport, access.Res("*")
	case templates.AreaAdmin:
		return access.ActionAdmin, access.Res(access.ConsoleAdmin)
	}
	return access.ActionView, access.Res("*")
}

// flash sets the message the next page shows once, then redirects there.
func (s *Server) flash(c *fiber.Ctx, to, msg string) error {
	if len(msg) > 300 {
		msg = msg[:300]
	}
	s.setCookie(c, flashCookie, url.QueryEscape(msg), time.Minute, "Lax")
	return c.Redirect(to, fiber.StatusSeeOther)
}

// statusOf maps an error code to its HTTP status.
func statusOf(code string) int {
	switch code {
	case delivery.EINVALID:
		return fiber.StatusBadRequest
	case delivery.EUNAUTHORIZED:
		return fiber.StatusUnauthorized
	case delivery.EFORBIDDEN:
		return fiber.StatusForbidden
	case delivery.ENOTFOUND:
		return fiber.StatusNotFound
	case delivery.ECONFLICT:
		return fiber.StatusConflict
	case delivery.ETOOMANY:
		return fiber.StatusTooManyRequests
	case delivery.ETOOLARGE:
		return fiber.StatusRequestEntityTooLarge
	case delivery.EUNSUPPORTED:
		return fiber.StatusUnsupportedMediaType
	}
	return fiber.StatusInternalServerError
}

// handleError is fiber's error handler: errors of handlers, and requests
// fasthttp refused before any route saw them (a header block over the
// read buffer, a body over BodyLimit, a malformed request line). For
// those the path is unknown, so they answer in the JSON error contract,
// as the API does, rather than with a page for a request we never read.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	if requestIDOf(c) == "" {
		c.Locals(requestIDKey{}, newRequestID())
		c.Locals(unreadRequestKey{}, true)
	}
	return s.fail(c, err)
}

// unreadRequestKey marks a request fasthttp refused before routing.
type unreadRequestKey struct{}

// codeOf maps fiber's own errors (bad requests fasthttp rejects, 404s of
// the static handler) onto the console's codes.
func codeOf(err error) (code, message string) {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch {
		case fe.Code == fiber.StatusUnauthorized:
			return delivery.EUNAUTHORIZED, fe.Message
		case fe.Code == fiber.StatusForbidden:
			return delivery.EFORBIDDEN, fe.Message
		case fe.Code == fiber.StatusNotFound:
			return delivery.ENOTFOUND, fe.Message
		case fe.Code == fiber.StatusConflict:
			return delivery.ECONFLICT, fe.Message
		case fe.Code == fiber.StatusRequestEntityTooLarge:
			return delivery.ETOOLARGE, "the request body is too large"
		case fe.Code >= 400 && fe.Code < 500:
			return delivery.EINVALID, fe.Message
		}
		return delivery.EINTERNAL, ""
	}
	code = delivery.ErrorCode(err)
	if statusOf(code) == fiber.StatusInternalServerError {
		return delivery.EINTERNAL, ""
	}
	return code, delivery.ErrorMessage(err)
}

// fail answers the request with err: the JSON error contract under /api,
// an error page elsewhere. Internal errors are logged here, once, with the
// request ID, and the user sees only "Something went wrong (request id …)".
func (s *Server) fail(c *fiber.Ctx, err error) error {
	code, msg := codeOf(err)
	status := statusOf(code)
	var fe *fiber.Error
	if errors.As(err, &fe) && fe.Code >= 400 && fe.Code < 500 {
		status = fe.Code // 405, 408, 431…: more precise than 400
	}
	rid := requestIDOf(c)
	if code == delivery.EINTERNAL {
		var logged errLogged
		if !errors.As(err, &logged) {
			s.log.Error("request failed", "request_id", rid, "route", routeOf(c),
				"method", c.Method(), "path", c.Path(), "err", err)
		}
		msg = "Something went wrong (request id " + rid + ")"
	}
	if code == delivery.EUNAUTHORIZED && isAPI(c) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="Switchyard"`)
	}
	c.Status(status)
	if unread, _ := c.Locals(unreadRequestKey{}).(bool); unread || isAPI(c) {
		body := delivery.ErrorResponse{Error: delivery.ErrorBody{Code: code, Message: msg, Details: map[string]any{"request_id": rid}}}
		var de *delivery.Error
		if code != delivery.EINTERNAL && errors.As(err, &de) {
			for k, v := range de.Details {
				body.Error.Details[k] = v
			}
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(body)
	}
	view := templates.ErrorView(templates.ErrorPage{Status: status, Title: titleOf(status), Message: msg, RequestID: rid})
	comp := view
	page := templates.Page{Title: titleOf(status)}
	s.framePage(c, &page)
	ctx := templates.WithCSRF(context.WithoutCancel(c.UserContext()), page.CSRF)
	if !isFragment(c) {
		ctx = templ.WithChildren(ctx, view)
		comp = templates.Layout(page)
	}
	var buf bytes.Buffer
	if rerr := comp.Render(ctx, &buf); rerr != nil {
		s.log.Error("render error page", "request_id", rid, "err", rerr)
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		return c.SendString(msg)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}

// isAPI: the JSON API and the OTLP receiver (/v1/metrics) answer in the
// error contract and never redirect to the login form.
func isAPI(c *fiber.Ctx) bool {
	p := c.Path()
	// /metrics is for scrapers: a refusal is the JSON contract, not the
	// login form.
	return p == "/api" || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/v1/") || p == "/metrics"
}

func titleOf(status int) string {
	switch status {
	case fiber.StatusBadRequest:
		return "Bad request"
	case fiber.StatusUnauthorized:
		return "Sign-in required"
	case fiber.StatusForbidden:
		return "Not allowed"
	case fiber.StatusNotFound:
		return "Not found"
	case fiber.StatusConflict:
		return "Conflict"
	case fiber.StatusTooManyRequests:
		return "Too many attempts"
	case fiber.StatusRequestEntityTooLarge:
		return "Too large"
	case fiber.StatusUnsupportedMediaType:
		return "Unsupported encoding"
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return "Request too large"
	}
	return "Something went wrong"
}
