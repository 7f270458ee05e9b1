package web

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
)

// DemoFixes is the demo platform's "deploy the fix" switch: once the fix
// for an error code is deployed, the demo's services stop failing with
// it, so a redrive of its dead letters succeeds. *demo.Fixes.
type DemoFixes interface {
	// Codes lists every code a fix can be deployed for.
	Codes() []string
	// Fixed lists the codes whose fix is deployed.
	Fixed() []string
	// Fix deploys (fixed) or takes back the fix for code. EINVALID: a
	// code no fix exists for.
	Fix(code string, fixed bool) error
}

type demoFix struct {
	Code  string `json:"code"`
	Fixed bool   `json:"fixed"`
}

type demoFixesResponse struct {
	Fixes []demoFix `json:"fixes"`
}

type demoFixRequest struct {
	Code string `json:"code"`
}

func (s *Server) demoFixes() (DemoFixes, error) {
	if s.demo == nil {
		return nil, delivery.Errorf(delivery.ENOTFOUND, "no demo is running here: fixes are deployed on `console demo` only")
	}
	return s.demo, nil
}

// renderDemoFixes answers with every fixable code and whether its fix is
// deployed.
func (s *Server) renderDemoFixes(c *fiber.Ctx, d DemoFixes) error {
	fixed := d.Fixed()
	out := demoFixesResponse{Fixes: []demoFix{}}
	for _, code := range d.Codes() {
		out.Fixes = append(out.Fixes, demoFix{Code: code, Fixed: slices.Contains(fixed, code)})
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

func (s *Server) handleAPIDemoFixes(c *fiber.Ctx) error {
	d, err := s.demoFixes()
	if err != nil {
		return s.fail(c, err)
	}
	return s.renderDemoFixes(c, d)
}

// handleAPIDemoFixDeploy deploys the fix for {"code": "…"} and answers
// the fixes as they now are.
func (s *Server) handleAPIDemoFixDeploy(c *fiber.Ctx) error {
	d, err := s.demoFixes()
	if err != nil {
		return s.fail(c, err)
	}
	var req demoFixRequest
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Code == "" {
		return s.fail(c, delivery.Errorf(delivery.EINVALID, `body must be JSON: {"code": "PAYMENT_DECLINED"}`))
	}
	if err := d.Fix(req.Code, true); err != nil {
		return s.fail(c, err)
	}
	return s.renderDemoFixes(c, d)
}

// handleAPIDemoFixRollback takes the fix for :code back (a code whose fix
// is not deployed is no error).
func (s *Server) handleAPIDemoFixRollback(c *fiber.Ctx) error {
	d, err := s.demoFixes()
	if err != nil {
		return s.fail(c, err)
	}
	if err := d.Fix(param(c, "code"), false); err != nil {
		return s.fail(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}
