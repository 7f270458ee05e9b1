package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// scrape reads /metrics as Prometheus does: with the Bearer token of a user
// of the scraper role.
func (e *env) scrape(t *testing.T) response {
	t.Helper()
	return e.get(t, "/metrics", "Bearer "+e.scraperToken(t))
}

// scraperToken is a new token of the user "prometheus" (role scraper),
// made as the README says: a user with the role, then a token.
func (e *env) scraperToken(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	err := e.store.AddUser(ctx, "prometheus", "scraper password for tests", access.RoleScraper)
	if err != nil && delivery.ErrorCode(err) != delivery.ECONFLICT {
		t.Fatal(err)
	}
	tok, err := e.store.CreateToken(ctx, "prometheus", "scrape", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// /metrics carries every tenant's totals: without metrics.auth "none" it
// answers only a principal who may scrape, and a scrape token reads
// nothing else.
func TestMetricsNeedAScrapeToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	const sample = `switchyard_kafka_up{cluster="demo"} 1`

	r := e.get(t, "/metrics", "")
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `"code":"EUNAUTHORIZED"`) || strings.Contains(r.body, sample) {
		t.Errorf("anonymous /metrics = %d %.300s, want 401 in the error contract", r.status, r.body)
	}
	vtok, err := e.store.CreateToken(ctx, "vera", "viewer script", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.get(t, "/metrics", "Bearer "+vtok); r.status != http.StatusForbidden || !strings.Contains(r.body, `"code":"EFORBIDDEN"`) {
		t.Errorf("viewer /metrics = %d %.300s, want 403", r.status, r.body)
	}
	if r := e.as(t, "tess").get(t, "/metrics"); r.status != http.StatusForbidden {
		t.Errorf("operator session /metrics = %d, want 403", r.status)
	}
	stok := e.scraperToken(t)
	r = e.get(t, "/metrics", "Bearer "+stok)
	if r.status != http.StatusOK || !strings.Contains(r.body, sample) {
		t.Errorf("scraper /metrics = %d %.300s, want 200 with the metrics", r.status, r.body)
	}
	for _, path := range []string{"/api/v1/clusters", "/api/v1/series?name=switchyard_kafka_up", "/api/v1/dlq/entries"} {
		if r := e.get(t, path, "Bearer "+stok); r.status != http.StatusForbidden {
			t.Errorf("scraper token on %s = %d, want 403: it may only scrape", path, r.status)
		}
	}
	atok, err := e.store.CreateToken(ctx, "admin", "admin script", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.get(t, "/metrics", "Bearer "+atok); r.status != http.StatusOK {
		t.Errorf("admin /metrics = %d, want 200", r.status)
	}

	// metrics.auth "none": open to anyone who can reach it, as before.
	open := newEnv(t, envOptions{metricsPublic: true})
	if r := open.get(t, "/metrics", ""); r.status != http.StatusOK || !strings.Contains(r.body, sample) {
		t.Errorf("anonymous /metrics with metrics.auth none = %d %.300s, want 200", r.status, r.body)
	}
}
