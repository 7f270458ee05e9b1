package web

import (
	"bufio"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/web/templates"
)

// auditLimit is the page size of the audit page.
const auditLimit = 50

// The filter's times come from <input type="datetime-local"> (no zone:
// UTC, as the page shows) or as RFC 3339 from scripts.
var auditTimeLayouts = []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

func parseAuditTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, l := range auditTimeLayouts {
		if t, err := time.ParseInLocation(l, v, time.UTC); err == nil {
			return inRange(name, t)
		}
	}
	return time.Time{}, delivery.Errorf(delivery.EINVALID, "%s must be a date and time like 2026-01-31T14:00", name)
}

// auditFilter reads the filter shared by the page and the export.
func auditFilter(c *fiber.Ctx) (access.AuditFilter, templates.Audit, error) {
	v := templates.Audit{
		Actor: strings.TrimSpace(c.Query("actor")), Action: strings.TrimSpace(c.Query("action")),
		Outcome: strings.TrimSpace(c.Query("outcome")), Resource: strings.TrimSpace(c.Query("resource")),
		Since: strings.TrimSpace(c.Query("since")), Until: strings.TrimSpace(c.Query("until")),
	}
	f := access.AuditFilter{Actor: v.Actor, Action: v.Action, Outcome: v.Outcome, Resource: v.Resource, Limit: auditLimit}
	var err error
	if f.Since, err = parseAuditTime("since", v.Since); err != nil {
		return f, v, err
	}
	if f.Until, err = parseAuditTime("until", v.Until); err != nil {
		return f, v, err
	}
	if b := c.Query("before"); b != "" {
		if f.Before, err = strconv.ParseInt(b, 10, 64); err != nil || f.Before < 0 {
			return f, v, delivery.Errorf(delivery.EINVALID, "before must be a record id")
		}
	}
	return f, v, nil
}

// auditQuery is the filter as a query string, for the export link and the
// "Older" link.
func auditQuery(v templates.Audit) url.Values {
	q := url.Values{}
	for k, x := range map[string]string{"actor": v.Actor, "action": v.Action, "outcome": v.Outcome, "resource": v.Resource, "since": v.Since, "until": v.Until} {
		if x != "" {
			q.Set(k, x)
		}
	}
	return q
}

func (s *Server) auditLog() (AuditLog, error) {
	if s.audit == nil {
		return nil, delivery.Errorf(delivery.ENOTFOUND, "the audit log is not configured")
	}
	return s.audit, nil
}

func (s *Server) handleAdminAudit(c *fiber.Ctx) error {
	log, err := s.auditLog()
	if err != nil {
		return s.fail(c, err)
	}
	f, v, ferr := auditFilter(c)
	q := auditQuery(v)
	v.ExportHref = "/admin/audit/export?" + q.Encode()
	page := templates.Page{Title: "Audit log", Area: templates.AreaAdmin}
	if ferr != nil {
		if msg, ok := formError(ferr); ok {
			v.Error = msg
			c.Status(fiber.StatusBadRequest)
			return s.render(c, page, templates.AuditView(v))
		}
		return s.fail(c, ferr)
	}
	recs, next, err := log.List(c.UserContext(), f)
	if err != nil {
		return s.fail(c, err)
	}
	for _, r := range recs {
		row := templates.AuditRow{
			ID: r.ID, Time: r.Time.UTC().Format("2006-01-02 15:04:05"), Actor: r.Actor, Method: r.Method,
			SourceIP: r.SourceIP, Action: r.Action, Resource: r.Resource, Tenant: r.Tenant,
			Outcome: r.Outcome, Reason: r.Reason,
		}
		var parts []string
		if len(r.AffectedIDs) > 0 {
			parts = append(parts, "ids "+strings.Join(r.AffectedIDs, ","))
		}
		if len(r.Details) > 0 {
			if b, err := json.Marshal(r.Details); err == nil {
				parts = append(parts, string(b))
			}
		}
		row.Detail = strings.Join(parts, " ")
		v.Rows = append(v.Rows, row)
	}
	if next > 0 {
		q.Set("before", strconv.FormatInt(next, 10))
		v.OlderHref = "/admin/audit?" + q.Encode()
	}
	return s.render(c, page, templates.AuditView(v))
}

// handleAdminAuditExport streams every record matching the filter (no
// page limit) as JSON lines.
func (s *Server) handleAdminAuditExport(c *fiber.Ctx) error {
	log, err := s.auditLog()
	if err != nil {
		return s.fail(c, err)
	}
	f, _, err := auditFilter(c)
	if err != nil {
		return s.fail(c, err)
	}
	f.Limit = 0
	c.Set(fiber.HeaderContentType, "application/x-ndjson; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="audit.jsonl"`)
	w := bufio.NewWriter(c.Response().BodyWriter())
	if err := log.ExportJSONL(c.UserContext(), w, f); err != nil {
		c.Response().ResetBody()
		c.Response().Header.Del(fiber.HeaderContentDisposition)
		return s.fail(c, err)
	}
	if err := w.Flush(); err != nil {
		return s.fail(c, err)
	}
	return nil
}
