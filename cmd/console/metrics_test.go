package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestMetricsAuthConfiguration(t *testing.T) {
	if got := defaultConfig().Metrics.Auth; got != MetricsAuthToken {
		t.Errorf("default metrics.auth = %q, want %q", got, MetricsAuthToken)
	}
	c := defaultConfig()
	if err := c.loadEnv(envMap("CONSOLE_METRICS_AUTH", "none")); err != nil || c.Metrics.Auth != MetricsAuthNone {
		t.Errorf("CONSOLE_METRICS_AUTH=none gives %q, %v", c.Metrics.Auth, err)
	}
	c.Metrics.Auth = "open"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `metrics.auth "open"`) {
		t.Errorf("metrics.auth open: %v, want an error naming it", err)
	}
}

// scrape GETs /metrics and returns the status and body.
func scrape(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The README's way to a scrape token works: a user of the scraper role
// and a token, both made offline; the console's /metrics then answers that
// token and nobody anonymous, and the token opens nothing else. With
// metrics.auth "none" /metrics is open again.
func TestScrapeTokenFromTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	m := startDemo(t, dir, io.Discard)
	defer m.Close()
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"user", "add", "prometheus", "--role", "scraper", "--data-dir", dir}, strings.NewReader(""), &out, io.Discard, envMap("CONSOLE_USER_PASSWORD", "prometheus-password")); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"token", "create", "--user", "prometheus", "--name", "prometheus", "--data-dir", dir}, nil, &out, io.Discard, envMap()); err != nil {
		t.Fatal(err)
	}
	token := "Bearer " + strings.TrimSpace(out.String())

	if code, body := scrape(t, m.URL, ""); code != http.StatusUnauthorized || !strings.Contains(body, `"EUNAUTHORIZED"`) {
		t.Errorf("anonymous /metrics = %d %.200s, want 401 in the error contract", code, body)
	}
	if code, body := scrape(t, m.URL, token); code != http.StatusOK || !strings.Contains(body, "switchyard_kafka_up") {
		t.Errorf("/metrics with the scrape token = %d %.200s, want the metrics", code, body)
	}
	if code := getJSON(t, m.URL+"/api/v1/clusters", token, nil); code != http.StatusForbidden {
		t.Errorf("scrape token on /api/v1/clusters = %d, want 403", code)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	open := NewMain(io.Discard, io.Discard, envMap(
		"CONSOLE_ADDR", "127.0.0.1:0", "DEMO_KAFKA_ADDR", "127.0.0.1:0", "CONSOLE_DATA_DIR", dir,
		"CONSOLE_METRICS_AUTH", "none",
	))
	open.DemoMode = true
	if err := open.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if err := open.Run(ctx); err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if code, body := scrape(t, open.URL, ""); code != http.StatusOK || !strings.Contains(body, "switchyard_kafka_up") {
		t.Errorf("anonymous /metrics with metrics.auth none = %d %.200s, want the metrics", code, body)
	}
}
