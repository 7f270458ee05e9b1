// Package testenv is what the tests of every package share. It finds the
// real services they run against (RabbitMQ, its management API, Chromium,
// a small filesystem to fill; this file): where one is missing a test skips
// on a developer machine and fails in CI (CI=true), so that CI never passes
// by skipping. It opens RabbitMQ channels and test queues (rabbit.go),
// starts in-process Kafka clusters and clients (kafka.go), waits by
// polling — WaitFor for a condition, Settled for "nothing more arrives" as
// a positive end state that then holds, never a fixed sleep (wait.go) —
// and offers a SyncBuffer for logs (logbuf.go). The manual clock tests
// share is delivery/deliverytest.Clock.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
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

// TmpFS mounts a tmpfs of size bytes on a new directory and unmounts it
// when the test ends, so that a test can fill a filesystem for real without
// touching the machine's disks. Mounting needs root (as in CI); elsewhere
// the test is skipped.
func TmpFS(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root (to mount a small tmpfs)")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "switchyard-test", dir).CombinedOutput()
	if err != nil {
		Missing(t, "mount -t tmpfs ("+strings.TrimSpace(string(out))+")")
	}
	t.Cleanup(func() {
		// Lazy, so that a file a failed test left open does not keep the
		// mount (and its memory) alive.
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// FillFS writes a filler file in dir until its filesystem is full and
// returns a function that removes it again.
func FillFS(t testing.TB, dir string) (free func()) {
	t.Helper()
	f, err := os.CreateTemp(dir, "filler-*")
	if err != nil {
		t.Fatalf("create filler: %v", err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		os.Remove(f.Name())
		t.Fatalf("filling %s ended with %v, want ENOSPC", dir, err)
	}
	name := f.Name()
	return func() {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove filler: %v", err)
		}
	}
}

// RabbitVHost creates a vhost of its own on the real RabbitMQ through the
// management API, gives guest every permission on it, and deletes it (with
// its queues) when the test ends. It returns the vhost's name and AMQP URL.
// A test that consumes queues by discovery works in a vhost like this, so
// it never takes another test's (or anybody's) messages.
func RabbitVHost(t testing.TB) (vhost, amqpURL string) {
	t.Helper()
	base := RabbitURL(t)
	mgmt := RabbitManagementURL(t)
	b := make([]byte, 4)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails
	vhost = "switchyard-test-" + hex.EncodeToString(b)
	do := func(method, path, body string) error {
		req, err := http.NewRequest(method, mgmt+path, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		return nil
	}
	esc := url.PathEscape(vhost)
	if err := do(http.MethodPut, "/api/vhosts/"+esc, `{}`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := do(http.MethodDelete, "/api/vhosts/"+esc, ""); err != nil {
			t.Errorf("delete test vhost: %v", err)
		}
	})
	if err := do(http.MethodPut, "/api/permissions/"+esc+"/guest", `{"configure":".*","write":".*","read":".*"}`); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("RABBITMQ_URL: %v", err)
	}
	u.Path, u.RawPath = "/"+vhost, "/"+esc
	return vhost, u.String()
}
