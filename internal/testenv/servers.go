package testenv

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Alertmanager runs the real Alertmanager (Debian's
// prometheus-alertmanager) on a free loopback port with a temp storage
// dir, no cluster gossip and one null receiver, and returns its base URL.
// It is killed when the test ends (its output logged if the test failed).
// Missing in CI fails the test.
func Alertmanager(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		Missing(t, "prometheus-alertmanager")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte("route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	return Server(t, "alertmanager", bin, addr,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
		"--log.level=warn",
	)
}

// Server runs bin with args as a server that will listen on addr, and
// returns its base URL once GET /-/ready answers 200 (Prometheus's and
// Alertmanager's readiness endpoint). It is killed when the test ends,
// its output logged if the test failed; exiting early fails the test.
func Server(t testing.TB, what, bin, addr string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	logs := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", what, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // killed at cleanup
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // it may have exited
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", what, logs.String())
		}
	})
	base := "http://" + addr
	WaitFor(t, what+" /-/ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("%s exited:\n%s", what, logs.String())
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
