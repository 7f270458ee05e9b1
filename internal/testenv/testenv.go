// Package testenv finds the real services the tests run against (RabbitMQ,
// its management API, Chromium). Where one is missing a test skips on a
// developer machine and fails in CI (CI=true), so that CI never passes by
// skipping.
package testenv

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips t, or fails it in CI, because a service is not available.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required in CI and is not available", what)
	}
	t.Skipf("%s not available; skipping (CI=true makes this a failure)", what)
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// RabbitURL returns the AMQP URL of the real RabbitMQ (RABBITMQ_URL, default
// amqp://guest:guest@127.0.0.1:5672/) after checking that it answers.
func RabbitURL(t testing.TB) string {
	t.Helper()
	u := env("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
	c, err := net.DialTimeout("tcp", env("RABBITMQ_ADDR", "127.0.0.1:5672"), 2*time.Second)
	if err != nil {
		Missing(t, "RabbitMQ on 127.0.0.1:5672")
	} else {
		c.Close()
	}
	return u
}

// RabbitManagementURL returns the management API base URL
// (RABBITMQ_MANAGEMENT_URL, default http://guest:guest@127.0.0.1:15672)
// after checking that it answers.
func RabbitManagementURL(t testing.TB) string {
	t.Helper()
	u := env("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")
	cl := http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get(u + "/api/overview")
	if err != nil || resp.StatusCode != http.StatusOK {
		Missing(t, "RabbitMQ management API on :15672")
	}
	if resp != nil {
		resp.Body.Close()
	}
	return u
}

// Chromium returns the path of the Chromium binary (CHROMIUM_PATH, else
// chromium or chromium-browser on PATH).
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Missing(t, "Chromium")
	return ""
}
