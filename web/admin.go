package web

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/web/templates"
)

// The admin pages: users, tokens, roles, bindings and the access check.
// Every mutation is a POST form (CSRF checked by the middleware) that
// redirects with a flash message, or re-renders its form with the error.
// The store audits each change with the acting principal.

const timeFmt = "2006-01-02 15:04:05 MST"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFmt)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return fmtTime(*t)
}

func (s *Server) adminStore() (AdminStore, error) {
	if s.store == nil {
		return nil, delivery.Errorf(delivery.ENOTFOUND, "user administration is not configured")
	}
	return s.store, nil
}

// formError re-renders a form with the store's message for a user error,
// and fails the request for anything internal.
func formError(err error) (string, bool) {
	switch delivery.ErrorCode(err) {
	case delivery.EINVALID, delivery.ENOTFOUND, delivery.ECONFLICT, delivery.EFORBIDDEN:
		return delivery.ErrorMessage(err), true
	}
	return "", false
}

func (s *Server) handleAdmin(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	ctx := c.UserContext()
	users, err := st.ListUsers(ctx)
	if err != nil {
		return s.fail(c, err)
	}
	tokens, err := st.ListTokens(ctx, "")
	if err != nil {
		return s.fail(c, err)
	}
	roles, err := st.ListRoles(ctx)
	if err != nil {
		return s.fail(c, err)
	}
	bindings, err := st.ListBindings(ctx)
	if err != nil {
		return s.fail(c, err)
	}
	h := templates.AdminHome{Users: len(users), Roles: len(roles), Bindings: len(bindings)}
	for _, t := range tokens {
		if tokenState(t, s.now()) == "active" {
			h.ActiveTokens++
		}
	}
	return s.render(c, templates.Page{Title: "Admin", Area: templates.AreaAdmin}, templates.AdminHomeView(h))
}

// Users.

func (s *Server) usersView(c *fiber.Ctx, u templates.Users) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	users, err := st.ListUsers(c.UserContext())
	if err != nil {
		return s.fail(c, err)
	}
	for _, x := range users {
		u.Rows = append(u.Rows, templates.UserRow{Name: x.Name, Created: fmtTime(x.CreatedAt), LastLogin: fmtTimePtr(x.LastLogin), Disabled: x.Disabled})
	}
	return s.render(c, templates.Page{Title: "Users", Area: templates.AreaAdmin}, templates.UsersView(u))
}

func (s *Server) handleAdminUsers(c *fiber.Ctx) error { return s.usersView(c, templates.Users{}) }

func (s *Server) handleAdminUserCreate(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	name := strings.TrimSpace(c.FormValue("name"))
	if err := st.CreateUser(c.UserContext(), principal(c), name, c.FormValue("password")); err != nil {
		if msg, ok := formError(err); ok {
			c.Status(statusOf(delivery.ErrorCode(err)))
			return s.usersView(c, templates.Users{NewName: name, Error: msg})
		}
		return s.fail(c, err)
	}
	return s.flash(c, "/admin/users", "User "+name+" created. Add a binding to give them a role.")
}

func (s *Server) setDisabled(c *fiber.Ctx, disabled bool) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	name := param(c, "name")
	if err := st.SetDisabled(c.UserContext(), principal(c), name, disabled); err != nil {
		if msg, ok := formError(err); ok {
			return s.flash(c, "/admin/users", msg)
		}
		return s.fail(c, err)
	}
	verb := "enabled"
	if disabled {
		verb = "disabled"
	}
	return s.flash(c, "/admin/users", "User "+name+" "+verb+".")
}

func (s *Server) handleAdminUserDisable(c *fiber.Ctx) error { return s.setDisabled(c, true) }
func (s *Server) handleAdminUserEnable(c *fiber.Ctx) error  { return s.setDisabled(c, false) }

func (s *Server) handleAdminUserPassword(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	name := param(c, "name")
	if err := st.SetPassword(c.UserContext(), principal(c), name, c.FormValue("password")); err != nil {
		if msg, ok := formError(err); ok {
			c.Status(statusOf(delivery.ErrorCode(err)))
			return s.usersView(c, templates.Users{Error: "Password of " + name + ": " + msg})
		}
		return s.fail(c, err)
	}
	return s.flash(c, "/admin/users", "Password of "+name+" reset; their sessions have ended.")
}

// Tokens.

func tokenState(t access.Token, now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return "expired"
	}
	return "active"
}

func (s *Server) tokensView(c *fiber.Ctx, t templates.Tokens) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	ctx := c.UserContext()
	tokens, err := st.ListTokens(ctx, "")
	if err != nil {
		return s.fail(c, err)
	}
	users, err := st.ListUsers(ctx)
	if err != nil {
		return s.fail(c, err)
	}
	now := s.now()
	for _, x := range tokens {
		t.Rows = append(t.Rows, templates.TokenRow{
			ID: x.ID, User: x.User, Name: x.Name, Created: fmtTime(x.CreatedAt),
			Expires: cmpOr(fmtTimePtr(x.ExpiresAt), "never"), LastUsed: cmpOr(fmtTimePtr(x.LastUsedAt), "never"),
			State: tokenState(x, now),
		})
	}
	for _, u := range users {
		if !u.Disabled {
			t.Users = append(t.Users, u.Name)
		}
	}
	return s.render(c, templates.Page{Title: "API tokens", Area: templates.AreaAdmin}, templates.TokensView(t))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Server) handleAdminTokens(c *fiber.Ctx) error { return s.tokensView(c, templates.Tokens{}) }

// parseTTL reads a token lifetime: empty or "0" for none, else a Go
// duration ("720h") or a number of days ("30d").
func parseTTL(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "0" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, delivery.Errorf(delivery.EINVALID, "lifetime must be like 720h or 30d")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	ttl, err := time.ParseDuration(v)
	if err != nil || ttl < 0 {
		return 0, delivery.Errorf(delivery.EINVALID, "lifetime must be like 720h or 30d")
	}
	return ttl, nil
}

// handleAdminTokenIssue shows the plaintext on the response itself: it
// exists only there, so it cannot go through a redirect and a cookie.
func (s *Server) handleAdminTokenIssue(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	form := templates.TokenForm{User: strings.Clone(c.FormValue("user")), Name: strings.Clone(c.FormValue("name")), TTL: strings.Clone(c.FormValue("ttl"))}
	ttl, err := parseTTL(form.TTL)
	var plain string
	if err == nil {
		plain, err = st.IssueToken(c.UserContext(), principal(c), form.User, form.Name, ttl)
	}
	if err != nil {
		if msg, ok := formError(err); ok {
			c.Status(statusOf(delivery.ErrorCode(err)))
			return s.tokensView(c, templates.Tokens{Form: form, Error: msg})
		}
		return s.fail(c, err)
	}
	issued := &templates.IssuedToken{User: form.User, Name: form.Name, Plaintext: plain}
	if ttl > 0 {
		issued.Expires = fmtTime(s.now().Add(ttl))
	}
	return s.tokensView(c, templates.Tokens{Issued: issued})
}

func (s *Server) handleAdminTokenRevoke(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := strconv.ParseInt(param(c, "id"), 10, 64)
	if err != nil {
		return s.fail(c, delivery.Errorf(delivery.ENOTFOUND, "no such token"))
	}
	if err := st.RevokeTokenID(c.UserContext(), principal(c), id); err != nil {
		if msg, ok := formError(err); ok {
			return s.flash(c, "/admin/tokens", msg)
		}
		return s.fail(c, err)
	}
	return s.flash(c, "/admin/tokens", "Token revoked.")
}

// Roles.

func actionNames() []string {
	var out []string
	for _, a := range access.Actions() {
		out = append(out, string(a))
	}
	return out
}

func (s *Server) rolesView(c *fiber.Ctx, r templates.Roles) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	roles, err := st.ListRoles(c.UserContext())
	if err != nil {
		return s.fail(c, err)
	}
	r.Actions = actionNames()
	for _, x := range roles {
		row := templates.RoleRow{Name: x.Name, BuiltIn: x.BuiltIn}
		for _, a := range x.Actions {
			row.Actions = append(row.Actions, string(a))
		}
		r.Rows = append(r.Rows, row)
		if !r.Form.Editing && r.Form.Name == "" && x.Name == c.Query("edit") && !x.BuiltIn {
			r.Form = templates.RoleForm{Name: x.Name, Editing: true, Actions: map[string]bool{}}
			for _, a := range x.Actions {
				r.Form.Actions[string(a)] = true
			}
		}
	}
	return s.render(c, templates.Page{Title: "Roles", Area: templates.AreaAdmin}, templates.RolesView(r))
}

func (s *Server) handleAdminRoles(c *fiber.Ctx) error { return s.rolesView(c, templates.Roles{}) }

func (s *Server) handleAdminRoleSave(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	role := access.Role{Name: strings.TrimSpace(c.FormValue("name"))}
	form := templates.RoleForm{Name: role.Name, Actions: map[string]bool{}}
	args := c.Request().PostArgs()
	for _, v := range args.PeekMulti("actions") {
		role.Actions = append(role.Actions, access.Action(v))
		form.Actions[string(v)] = true
	}
	if mf, err := c.MultipartForm(); err == nil && len(role.Actions) == 0 {
		for _, v := range mf.Value["actions"] {
			role.Actions = append(role.Actions, access.Action(v))
			form.Actions[v] = true
		}
	}
	existing, err := st.ListRoles(c.UserContext())
	if err != nil {
		return s.fail(c, err)
	}
	form.Editing = slices.ContainsFunc(existing, func(r access.Role) bool { return r.Name == role.Name && !r.BuiltIn })
	if err := st.SaveRole(c.UserContext(), principal(c), role); err != nil {
		if msg, ok := formError(err); ok {
			c.Status(statusOf(delivery.ErrorCode(err)))
			return s.rolesView(c, templates.Roles{Form: form, Error: msg})
		}
		return s.fail(c, err)
	}
	return s.flash(c, "/admin/roles", "Role "+role.Name+" saved.")
}

func (s *Server) handleAdminRoleDelete(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	name := param(c, "name")
	if err := st.DeleteRole(c.UserContext(), principal(c), name); err != nil {
		if msg, ok := formError(err); ok {
			return s.flash(c, "/admin/roles", msg)
		}
		return s.fail(c, err)
	}
	return s.flash(c, "/admin/roles", "Role "+name+" deleted.")
}

// Bindings.

func (s *Server) bindingsView(c *fiber.Ctx, b templates.Bindings) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	ctx := c.UserContext()
	bindings, err := st.ListBindings(ctx)
	if err != nil {
		return s.fail(c, err)
	}
	roles, err := st.ListRoles(ctx)
	if err != nil {
		return s.fail(c, err)
	}
	for _, x := range bindings {
		b.Rows = append(b.Rows, templates.BindingRow{ID: x.ID, Subject: x.Subject, Role: x.Role, Resources: x.Resources, Tenants: x.Tenants, Created: fmtTime(x.CreatedAt)})
	}
	for _, r := range roles {
		b.Roles = append(b.Roles, r.Name)
	}
	return s.render(c, templates.Page{Title: "Role bindings", Area: templates.AreaAdmin}, templates.BindingsView(b))
}

func (s *Server) handleAdminBindings(c *fiber.Ctx) error {
	return s.bindingsView(c, templates.Bindings{})
}

// splitList splits on sep (and newlines), trimming and dropping blanks.
func splitList(v string, seps string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (s *Server) handleAdminBindingAdd(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	form := templates.BindingForm{
		Subject: strings.TrimSpace(c.FormValue("subject")), Role: strings.Clone(c.FormValue("role")),
		Resources: strings.Clone(c.FormValue("resources")), Tenants: strings.Clone(c.FormValue("tenants")),
		Proxy: c.FormValue("proxy") != "",
	}
	b := access.Binding{Subject: form.Subject, Role: form.Role, Resources: splitList(form.Resources, "\r\n"),
		Tenants: splitList(form.Tenants, ",\r\n"), Proxy: form.Proxy}
	if _, err := st.AddBinding(c.UserContext(), principal(c), b); err != nil {
		if msg, ok := formError(err); ok {
			c.Status(statusOf(delivery.ErrorCode(err)))
			return s.bindingsView(c, templates.Bindings{Form: form, Error: msg})
		}
		return s.fail(c, err)
	}
	msg := "Bound " + b.Subject + " to role " + b.Role + "."
	if note := st.BindingNote(b); note != "" {
		msg += " " + note
	}
	return s.flash(c, "/admin/bindings", msg)
}

func (s *Server) handleAdminBindingDelete(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	id, err := strconv.ParseInt(param(c, "id"), 10, 64)
	if err != nil {
		return s.fail(c, delivery.Errorf(delivery.ENOTFOUND, "no such binding"))
	}
	if err := st.DeleteBinding(c.UserContext(), principal(c), id); err != nil {
		if msg, ok := formError(err); ok {
			return s.flash(c, "/admin/bindings", msg)
		}
		return s.fail(c, err)
	}
	return s.flash(c, "/admin/bindings", "Binding deleted.")
}

// Access check.

func (s *Server) handleAdminCheck(c *fiber.Ctx) error {
	st, err := s.adminStore()
	if err != nil {
		return s.fail(c, err)
	}
	v := templates.Check{
		User:     strings.TrimSpace(c.Query("user")),
		Resource: strings.TrimSpace(c.Query("resource")),
		Tenant:   strings.TrimSpace(c.Query("tenant")),
	}
	if v.User != "" && v.Resource != "" {
		p, err := st.PrincipalFor(c.UserContext(), v.User)
		if err != nil {
			if msg, ok := formError(err); ok {
				v.Error = msg
				return s.render(c, templates.Page{Title: "Check access", Area: templates.AreaAdmin}, templates.CheckView(v))
			}
			return s.fail(c, err)
		}
		v.Ran = true
		for _, d := range s.policy.Explain(p, access.Resource{Name: v.Resource, Tenant: v.Tenant}) {
			v.Rows = append(v.Rows, templates.DecisionRow{Action: string(d.Action), Allowed: d.Allowed, Because: d.Because})
		}
	}
	return s.render(c, templates.Page{Title: "Check access", Area: templates.AreaAdmin}, templates.CheckView(v))
}
