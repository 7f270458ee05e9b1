package web

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/delivery"
)

// The admin JSON API, for automation with an API token. The store audits
// each change; the middleware adds an api.mutation record.

type usersResponse struct {
	Users []access.User `json:"users"`
}

func (s *Server) handleAPIAdminUsers(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	users, err := st.ListUsers(c.UserContext())
	if err != nil {
		return s.fail(c, err)
	}
	if users == nil {
		users = []access.User{}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(usersResponse{Users: users})
}

type bindingsResponse struct {
	Bindings []access.Binding `json:"bindings"`
}

func (s *Server) handleAPIAdminBindings(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	bs, err := st.ListBindings(c.UserContext())
	if err != nil {
		return s.fail(c, err)
	}
	if bs == nil {
		bs = []access.Binding{}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(bindingsResponse{Bindings: bs})
}

type bindingRequest struct {
	Subject   string   `json:"subject"`
	Role      string   `json:"role"`
	Resources []string `json:"resources"` // required; ["*"] for every resource
	Tenants   []string `json:"tenants"`   // required; ["*"] for every tenant
	// Proxy confirms that the subject is an SSO identity of the trusted
	// proxy (a group, or a user without a local account).
	Proxy bool `json:"proxy"`
}

type bindingResponse struct {
	ID   int64  `json:"id"`
	Note string `json:"note,omitempty"`
}

func (s *Server) handleAPIAdminBindingAdd(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	var req bindingRequest
	if err := c.BodyParser(&req); err != nil {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "body must be JSON: {subject, role, resources, tenants, proxy}"))
	}
	b := access.Binding{Subject: req.Subject, Role: req.Role, Resources: req.Resources, Tenants: req.Tenants, Proxy: req.Proxy}
	id, err := st.AddBinding(c.UserContext(), principal(c), b)
	if err != nil {
		return s.fail(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(bindingResponse{ID: id, Note: st.BindingNote(b)})
}

func (s *Server) handleAPIAdminBindingDelete(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := strconv.ParseInt(param(c, "id"), 10, 64)
	if err != nil {
		return s.fail(c, delivery.Errorf(delivery.ENOTFOUND, "no such binding"))
	}
	if err := st.DeleteBinding(c.UserContext(), principal(c), id); err != nil {
		return s.fail(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type tokenRequest struct {
	User string `json:"user"`
	Name string `json:"name"`
	// TTL is a duration ("720h", "30d"); empty for no expiry.
	TTL string `json:"ttl"`
}

type tokenResponse struct {
	User      string     `json:"user"`
	Name      string     `json:"name"`
	Token     string     `json:"token"` // the plaintext, returned this once
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (s *Server) handleAPIAdminTokenIssue(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	var req tokenRequest
	if err := c.BodyParser(&req); err != nil {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, "body must be JSON: {user, name, ttl}"))
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		return s.fail(c, err)
	}
	plain, err := st.IssueToken(c.UserContext(), principal(c), req.User, req.Name, ttl)
	if err != nil {
		return s.fail(c, err)
	}
	out := tokenResponse{User: req.User, Name: req.Name, Token: plain}
	if ttl > 0 {
		exp := s.now().Add(ttl).UTC()
		out.ExpiresAt = &exp
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(out)
}
