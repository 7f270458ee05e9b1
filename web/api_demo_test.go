package web

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/access"
)

// TestAPIDemoFixes: an admin's token deploys the fix for a code and takes
// it back, the list says which fixes are deployed, a code without a fix or
// a body with unknown fields is a 400 that changes nothing, each change is
// audited, and a console without a demo answers 404.
func TestAPIDemoFixes(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok, err := e.store.CreateToken(context.Background(), "admin", "demo script", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	list := func() map[string]bool {
		t.Helper()
		r := e.bearer(t, tok, http.MethodGet, "/api/v1/demo/fixes", nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET /api/v1/demo/fixes = %d: %s", r.status, r.body)
		}
		out := map[string]bool{}
		for _, f := range decodeJSON[demoFixesResponse](t, r).Fixes {
			out[f.Code] = f.Fixed
		}
		return out
	}
	got := list()
	if fixed, ok := got["PAYMENT_DECLINED"]; !ok || fixed || !slices.Contains(e.srv.demo.Codes(), "UPSTREAM_TIMEOUT") {
		t.Fatalf("fixes of a fresh demo = %v, want PAYMENT_DECLINED and the others not deployed", got)
	}

	r := e.bearer(t, tok, http.MethodPost, "/api/v1/demo/fixes", map[string]any{"code": "payment_declined"})
	if r.status != http.StatusOK || !strings.Contains(r.body, `{"code":"PAYMENT_DECLINED","fixed":true}`) {
		t.Fatalf("deploy = %d: %s", r.status, r.body)
	}
	if got := list(); !got["PAYMENT_DECLINED"] || got["UPSTREAM_TIMEOUT"] {
		t.Errorf("after the deploy: %v, want PAYMENT_DECLINED alone deployed", got)
	}
	for _, body := range []any{
		map[string]any{"code": "NO_SUCH_CODE"},
		map[string]any{"code": "VALIDATION_FAILED"}, // a poison pill: no deploy mends the record
		map[string]any{"code": "UPSTREAM_TIMEOUT", "service": "billing"},
		map[string]any{},
	} {
		r := e.bearer(t, tok, http.MethodPost, "/api/v1/demo/fixes", body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `"code":"EINVALID"`) {
			t.Errorf("deploy %v = %d %s, want 400 EINVALID", body, r.status, r.body)
		}
	}
	if got := e.srv.demo.Fixed(); !slices.Equal(got, []string{"PAYMENT_DECLINED"}) {
		t.Errorf("fixes after refused requests = %v", got)
	}

	if r := e.bearer(t, tok, http.MethodDelete, "/api/v1/demo/fixes/PAYMENT_DECLINED", nil); r.status != http.StatusNoContent {
		t.Errorf("rollback = %d: %s", r.status, r.body)
	}
	if got := list(); got["PAYMENT_DECLINED"] {
		t.Errorf("after the rollback: %v", got)
	}
	recs, _, err := e.audit.List(context.Background(), access.AuditFilter{Action: "api.mutation"})
	n := 0
	for _, rec := range recs {
		if rec.Actor == "admin" && rec.Outcome == "success" {
			n++
		}
	}
	if err != nil || n != 2 {
		t.Errorf("api.mutation audit = %+v, %v; want the deploy and the rollback", recs, err)
	}

	e.srv.demo = nil // `console serve`
	if r := e.bearer(t, tok, http.MethodGet, "/api/v1/demo/fixes", nil); r.status != http.StatusNotFound || !strings.Contains(r.body, "no demo is running here") {
		t.Errorf("without a demo: %d %s, want 404 saying so", r.status, r.body)
	}
}
