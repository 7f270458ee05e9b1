package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testenv"
)

type readyzResponse struct {
	Status string `json:"status"`
	Checks map[string]struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"checks"`
}

// readyz fetches /readyz.
func readyz(t *testing.T, base string) (int, readyzResponse) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	var r readyzResponse
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("GET /readyz: %v in %s", err, b)
	}
	return resp.StatusCode, r
}

// TestReadyzReflectsAFullDisk runs the console with its data dir on a small
// filesystem and fills it for real. Writes (logins, sessions, the audit
// log) fail then, so /readyz must say 503 with the store check's error,
// although the database still answers queries; once space is freed the
// console is ready again.
func TestReadyzReflectsAFullDisk(t *testing.T) {
	mnt := testenv.TmpFS(t, 64<<20)
	kafka := testenv.Kafka(t)
	m := NewMain(io.Discard, io.Discard, envMap(
		"CONSOLE_ADDR", "127.0.0.1:0", "CONSOLE_DATA_DIR", filepath.Join(mnt, "data"),
		"KAFKA_BROKERS", strings.Join(kafka.ListenAddrs(), ","), "CONSOLE_ADMIN_PASSWORD", "correct-horse-battery",
	))
	if err := m.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if code, r := readyz(t, m.URL); code != http.StatusOK || r.Status != "ready" {
		t.Fatalf("/readyz with free space: %d %+v", code, r)
	}

	free := testenv.FillFS(t, mnt)
	defer free()
	r := waitReady(t, m.URL, http.StatusServiceUnavailable)
	store := r.Checks["store"]
	// SQLite says "database or disk is full" when the commit needs a new
	// WAL block; when it reuses old ones, the probe file says the rest.
	full := strings.Contains(store.Error, "disk is full") || strings.Contains(store.Error, "no space left on device")
	if r.Status != "unready" || store.OK || !full {
		t.Errorf("/readyz on a full disk: %+v, want unready with the store's error saying the disk is full", r)
	}
	if strings.Contains(store.Error, mnt) {
		t.Errorf("the store check's error %q shows the data dir's path to anyone", store.Error)
	}
	if !r.Checks["kafka:default"].OK {
		t.Errorf("the broker check failed too: %+v", r.Checks)
	}

	free()
	if r := waitReady(t, m.URL, http.StatusOK); r.Status != "ready" {
		t.Errorf("/readyz after freeing space: %+v", r)
	}
}

// waitReady polls /readyz until it answers code, for up to 15 s.
func waitReady(t *testing.T, base string, code int) readyzResponse {
	t.Helper()
	var r readyzResponse
	testenv.WaitWithin(t, 15*time.Second, fmt.Sprintf("/readyz to answer %d", code), func() bool {
		var got int
		got, r = readyz(t, base)
		return got == code
	})
	return r
}
