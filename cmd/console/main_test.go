package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/demo"
	"switchyard/internal/testenv"
	"switchyard/sqldb"
)

// TestMain lets a test re-run this binary as the real console (exit codes,
// stderr), without building it separately.
func TestMain(m *testing.M) {
	if os.Getenv("SWITCHYARD_AS_CONSOLE") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// envMap returns a getenv over a fixed map: tests never read the real
// environment. The OTLP/gRPC receiver listens on a port of its own unless
// a test says otherwise: never the default :4317, which `make run` (or
// another test) may hold.
func envMap(kv ...string) func(string) string {
	m := map[string]string{"CONSOLE_TRACING_GRPC_ADDR": "127.0.0.1:0"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := defaultConfig()
	c.Addr = "nonsense"
	c.LogLevel = "loud"
	c.Kafka = []KafkaCluster{{Name: "a", Brokers: []string{"b1:9092"}}, {Name: "a", Brokers: []string{"no-port"}}}
	c.RabbitMQ.URL = "http://wrong"
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{`addr "nonsense"`, `log_level "loud"`, `duplicate cluster name "a"`, `broker "no-port"`, "amqp://"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := defaultConfig().Validate(); err != nil {
		t.Errorf("default config invalid: %v", err)
	}
}

func TestParseFlagsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "console.json")
	os.WriteFile(file, []byte(`{"addr":":7000","data_dir":"/from/file","log_level":"warn","kafka":[{"name":"prod","brokers":["k1:9092"]}]}`), 0o600)

	m := NewMain(io.Discard, io.Discard, envMap("CONSOLE_DATA_DIR", "/from/env", "CONSOLE_ADMIN_PASSWORD", "s3cret-password"))
	if err := m.ParseFlags([]string{"--config", file, "--addr", ":7001"}); err != nil {
		t.Fatal(err)
	}
	c := m.Config
	if c.Addr != ":7001" || c.DataDir != "/from/env" || c.LogLevel != "warn" {
		t.Errorf("precedence wrong: addr %q (want flag :7001), data dir %q (want env), log level %q (want file)", c.Addr, c.DataDir, c.LogLevel)
	}
	if len(c.Kafka) != 1 || c.Kafka[0].Name != "prod" {
		t.Errorf("kafka clusters from file lost: %+v", c.Kafka)
	}
	if c.AdminPassword != "s3cret-password" {
		t.Error("admin password not read from CONSOLE_ADMIN_PASSWORD")
	}

	os.WriteFile(file, []byte(`{"adr":":7000"}`), 0o600)
	err := NewMain(io.Discard, io.Discard, envMap()).ParseFlags([]string{"--config", file, "--kafka-brokers", "k:1"})
	if err == nil || !strings.Contains(err.Error(), `unknown field "adr"`) {
		t.Errorf("a typo in the config file must be an error naming the field, got %v", err)
	}
	err = NewMain(io.Discard, io.Discard, envMap()).ParseFlags(nil)
	if err == nil || !strings.Contains(err.Error(), "no broker configured") {
		t.Errorf("serve without brokers: got %v", err)
	}
}

// runConsole runs this test binary as the console and returns its exit code,
// stdout and stderr.
func runConsole(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	// A port of its own for the gRPC receiver (see envMap); env may override.
	cmd.Env = append([]string{"SWITCHYARD_AS_CONSOLE=1", "PATH=" + os.Getenv("PATH"), "CONSOLE_TRACING_GRPC_ADDR=127.0.0.1:0"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// TestBadStartsEndWithOneClearLine: invalid config, a port in use, a corrupt
// data dir and an unreachable broker each end the process, in serve and
// demo mode, with exit 1 and a single error line on stderr: nothing logged
// on the way (a component stopped by the abandoned start), never a panic
// trace. A corrupt dlq.db fails late, after the collectors and the demo
// services were set up.
func TestBadStartsEndWithOneClearLine(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests
	corruptDir := func(file string) string {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, file), bytes.Repeat([]byte("not a database "), 500), 0o600)
		return d
	}
	kafka := testenv.Kafka(t)
	up := "KAFKA_BROKERS=" + strings.Join(kafka.ListenAddrs(), ",")
	free, demoKafka := "CONSOLE_ADDR=127.0.0.1:0", "DEMO_KAFKA_ADDR=127.0.0.1:0"

	cases := []struct {
		name, cmd string
		env       []string
		want      string
	}{
		{"invalid config", "serve", []string{"CONSOLE_ADDR=nope", "KAFKA_BROKERS=127.0.0.1:1"}, `addr "nope"`},
		{"port in use", "serve", []string{"CONSOLE_ADDR=" + busy.Addr().String(), "KAFKA_BROKERS=127.0.0.1:1", "CONSOLE_DATA_DIR=" + t.TempDir()}, "address already in use"},
		{"corrupt data dir", "serve", []string{free, "KAFKA_BROKERS=127.0.0.1:1", "CONSOLE_DATA_DIR=" + corruptDir("console.db")}, "not a SQLite database"},
		{"corrupt dlq.db", "serve", []string{free, up, "CONSOLE_DATA_DIR=" + corruptDir("dlq.db")}, "dlq.db: file is not a SQLite database"},
		{"unreachable broker", "serve", []string{free, "KAFKA_BROKERS=127.0.0.1:1", "CONSOLE_DATA_DIR=" + t.TempDir()}, `kafka cluster "default" (127.0.0.1:1) unreachable`},
		{"unreachable rabbitmq", "serve", []string{free, "RABBITMQ_URL=amqp://guest:guest@127.0.0.1:1/", "CONSOLE_DATA_DIR=" + t.TempDir()}, "rabbitmq (amqp://guest:xxxxx@127.0.0.1:1/) unreachable"},
		{"demo port in use", "demo", []string{"CONSOLE_ADDR=" + busy.Addr().String(), demoKafka, "CONSOLE_DATA_DIR=" + t.TempDir()}, "address already in use"},
		{"demo kafka port in use", "demo", []string{free, "DEMO_KAFKA_ADDR=" + busy.Addr().String(), "CONSOLE_DATA_DIR=" + t.TempDir()}, "address already in use"},
		{"demo corrupt data dir", "demo", []string{free, demoKafka, "CONSOLE_DATA_DIR=" + corruptDir("console.db")}, "not a SQLite database"},
		{"demo corrupt dlq.db", "demo", []string{free, demoKafka, "CONSOLE_DATA_DIR=" + corruptDir("dlq.db")}, "dlq.db: file is not a SQLite database"},
		{"demo unreachable broker", "demo", []string{free, demoKafka, "KAFKA_BROKERS=127.0.0.1:1", "CONSOLE_DATA_DIR=" + t.TempDir()}, `kafka cluster "default" (127.0.0.1:1) unreachable`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runConsole(t, tc.env, tc.cmd)
			if code != 1 {
				t.Errorf("exit code %d, want 1; stderr:\n%s", code, stderr)
			}
			if line, rest, _ := strings.Cut(stderr, "\n"); rest != "" || !strings.HasPrefix(line, "console: ") || !strings.Contains(line, tc.want) {
				t.Errorf("stderr should be one error line mentioning %q, got:\n%s", tc.want, stderr)
			}
		})
	}
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	code, _, stderr := runConsole(t, nil, "frobnicate")
	if code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, out, _ := runConsole(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "switchyard console ") {
		t.Errorf("version: exit %d, out %q", code, out)
	}
	// The demo's control: a missing code, an unknown subcommand or no
	// token is a usage error before anything is called.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "fix"}, "usage: console demo fix CODE"},
		{[]string{"demo", "deploy", "X"}, `unknown demo command "deploy"`},
		{[]string{"demo", "fixes"}, "an API token is required"},
	} {
		if code, _, stderr := runConsole(t, nil, tc.args...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// getJSON fetches url with admin or bearer auth and decodes the body.
func getJSON(t *testing.T, url, auth string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if v != nil {
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, v); err != nil && resp.StatusCode == 200 {
			t.Fatalf("GET %s: %v in %s", url, err, b)
		}
	}
	return resp.StatusCode
}

type clustersResponse struct {
	Clusters []struct {
		Name      string `json:"name"`
		Reachable bool   `json:"reachable"`
		Snapshot  struct {
			Topics []struct {
				Name     string `json:"name"`
				Messages int64  `json:"messages"`
				IsDLQ    bool   `json:"is_dlq"`
			} `json:"topics"`
			Groups []struct {
				Name string `json:"name"`
			} `json:"groups"`
		} `json:"snapshot"`
	} `json:"clusters"`
}

// startDemo runs Main in demo mode on free ports and a given data dir.
func startDemo(t *testing.T, dataDir string, out io.Writer) *Main {
	t.Helper()
	m := NewMain(out, io.Discard, envMap(
		"CONSOLE_ADDR", "127.0.0.1:0", "DEMO_KAFKA_ADDR", "127.0.0.1:0", "CONSOLE_DATA_DIR", dataDir,
		"CONSOLE_ADMIN_PASSWORD", "correct-horse-battery", "CONSOLE_POLL_INTERVAL", "1s",
	))
	m.DemoMode = true
	if err := m.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	m.Config.Demo.Rate = 200
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDemoEndToEnd is what `make run` promises: the console comes up with the
// embedded platform, shows its topics, groups and dead letters through the
// API, accepts a token made offline with `token create`, reports ready, and
// resumes from the data dir after a restart.
func TestDemoEndToEnd(t *testing.T) {
	dir := t.TempDir()
	var banner bytes.Buffer
	m := startDemo(t, dir, &banner)
	// A token made offline while the console runs (SQLite in WAL mode).
	tok := adminToken(t, dir)
	admin := "Bearer " + tok

	if !strings.Contains(banner.String(), m.URL) || !strings.Contains(banner.String(), "Login:     admin") {
		t.Errorf("banner lacks the URL or the login:\n%s", banner.String())
	}
	if code := getJSON(t, m.URL+"/api/v1/clusters", "", nil); code != http.StatusUnauthorized {
		t.Errorf("API without credentials: status %d, want 401", code)
	}

	var dlqMessages int64
	testenv.WaitWithin(t, 60*time.Second, "the demo's topics, groups and dead letters on the console", func() bool {
		var cr clustersResponse
		if code := getJSON(t, m.URL+"/api/v1/clusters", admin, &cr); code != http.StatusOK {
			t.Fatalf("GET /api/v1/clusters: %d", code)
		}
		topics, groups := map[string]int64{}, map[string]bool{}
		for _, c := range cr.Clusters {
			for _, tp := range c.Snapshot.Topics {
				topics[tp.Name] = tp.Messages
			}
			for _, g := range c.Snapshot.Groups {
				groups[g.Name] = true
			}
		}
		dlqMessages = topics["orders.order.created.v1.dlq"]
		return topics["orders.order.created.v1"] > 0 && groups["billing"] && groups["analytics"] && dlqMessages > 0
	})

	// The indexer picks the dead letters up from the DLQ topic.
	var entries struct {
		Total   int `json:"total"`
		Entries []struct {
			Destination string `json:"destination"`
		} `json:"entries"`
	}
	testenv.WaitWithin(t, 60*time.Second, "a dead letter indexed", func() bool {
		if code := getJSON(t, m.URL+"/api/v1/dlq/entries?broker=kafka", admin, &entries); code != http.StatusOK {
			t.Fatalf("GET /api/v1/dlq/entries: %d", code)
		}
		return entries.Total > 0
	})
	if entries.Entries[0].Destination != "orders.order.created.v1.dlq" {
		t.Errorf("indexed entry destination = %q", entries.Entries[0].Destination)
	}

	var ready struct {
		Status string `json:"status"`
	}
	if code := getJSON(t, m.URL+"/readyz", "", &ready); code != http.StatusOK || ready.Status == "unready" {
		t.Errorf("/readyz: %d %q", code, ready.Status)
	}

	// `console demo fix CODE` deploys a fix in the running demo through
	// the API, as admin; `console demo fixes` lists them.
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"demo"}, args...), nil, &out, io.Discard,
			envMap("CONSOLE_URL", m.URL, "CONSOLE_TOKEN", strings.TrimPrefix(admin, "Bearer ")))
		return out.String(), err
	}
	if out, err := cli("fix", "PAYMENT_DECLINED"); err != nil || !strings.Contains(out, "fix deployed for PAYMENT_DECLINED") {
		t.Errorf("demo fix PAYMENT_DECLINED: %v\n%s", err, out)
	}
	if !m.platform.Fixes().IsFixed("PAYMENT_DECLINED") {
		t.Error("the running demo has no fix for PAYMENT_DECLINED after `console demo fix`")
	}
	if out, err := cli("fixes"); err != nil || !regexp.MustCompile(`PAYMENT_DECLINED +deployed`).MatchString(out) ||
		!regexp.MustCompile(`UPSTREAM_TIMEOUT +not deployed`).MatchString(out) {
		t.Errorf("demo fixes: %v\n%s", err, out)
	}
	if _, err := cli("fix", "NO_SUCH_CODE"); err == nil || !strings.Contains(err.Error(), "EINVALID: no fix to deploy for \"NO_SUCH_CODE\"") {
		t.Errorf("demo fix NO_SUCH_CODE: %v, want the console's EINVALID", err)
	}
	if out, err := cli("unfix", "PAYMENT_DECLINED"); err != nil || !regexp.MustCompile(`PAYMENT_DECLINED +not deployed`).MatchString(out) {
		t.Errorf("demo unfix PAYMENT_DECLINED: %v\n%s", err, out)
	}

	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// The demo services export their event metrics over OTLP to the
	// console's own receiver (the last batch is flushed on Close), each
	// under its own service.name.
	processed := 0.0
	// RabbitMQ consumers are named by their service; the orders service
	// consumes declined payments to cancel the order (the saga's
	// compensation).
	wantService := map[string]string{"billing": "billing-service", "analytics": "analytics-service", "notify-service": "notify-service",
		demo.GroupOrders: "orders-service"}
	services := map[string]bool{}
	for _, p := range m.service.Points() {
		if p.Name != "event_processed_total" {
			continue
		}
		processed += p.Value
		services[p.Labels["service"]] = true
		if want := wantService[p.Labels["consumer"]]; p.Labels["service"] != want {
			t.Errorf("event_processed_total of consumer %q reported by service %q, want %q", p.Labels["consumer"], p.Labels["service"], want)
		}
	}
	if processed == 0 || !services["billing-service"] || !services["analytics-service"] {
		t.Errorf("event_processed_total from services %v, want billing-service and analytics-service", services)
	}

	// Offline: a user and a token made against the data dir while the console is down.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"user", "add", "ops", "--role", "operator", "--data-dir", dir}, strings.NewReader(""), &out, io.Discard, envMap("CONSOLE_USER_PASSWORD", "ops-password-long")); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"token", "create", "--user", "ops", "--data-dir", dir}, nil, &out, io.Discard, envMap()); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out.String())
	if !strings.HasPrefix(token, "sy_") || strings.Contains(token, "\n") {
		t.Fatalf("token create printed %q, want one token", out.String())
	}

	m2 := startDemo(t, dir, io.Discard)
	defer m2.Close()
	var cr clustersResponse
	if code := getJSON(t, m2.URL+"/api/v1/clusters", "Bearer "+token, &cr); code != http.StatusOK {
		t.Fatalf("API with the offline token: status %d", code)
	}
	var after int64
	testenv.WaitWithin(t, 30*time.Second, fmt.Sprintf("the DLQ topic to show its %d messages again after a restart (the embedded Kafka resumes)", dlqMessages), func() bool {
		getJSON(t, m2.URL+"/api/v1/clusters", "Bearer "+token, &cr)
		for _, c := range cr.Clusters {
			for _, tp := range c.Snapshot.Topics {
				if tp.Name == "orders.order.created.v1.dlq" {
					after = tp.Messages
				}
			}
		}
		return after >= dlqMessages
	})
}

// `console audit verify` says the chain is intact, and names the row after
// someone edits the log behind the console's back.
func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"user", "add", "alice", "--role", "viewer", "--data-dir", dir}, nil, &out, io.Discard, envMap("CONSOLE_USER_PASSWORD", "alice-password-long")); err != nil {
		t.Fatal(err)
	}
	db, err := sqldb.Open(ctx, filepath.Join(dir, "console.db"))
	if err != nil {
		t.Fatal(err)
	}
	audit, err := access.NewAudit(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"alice", "bob", "carol"} {
		if err := audit.Append(ctx, access.AuditEvent{Actor: who, Action: "login", Outcome: access.OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	if err := run(ctx, []string{"audit", "verify", "--data-dir", dir}, nil, &out, io.Discard, envMap()); err != nil {
		t.Fatalf("verify of an untouched log: %v", err)
	}
	if !strings.Contains(out.String(), "intact") {
		t.Errorf("verify printed %q", out.String())
	}
	// Tamper as an attacker with file access would: drop the guard, edit a row.
	var id int64
	db.QueryRow(`SELECT id FROM audit_log WHERE actor = 'bob'`).Scan(&id)
	if _, err := db.Exec(`DROP TRIGGER IF EXISTS audit_log_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'mallory' WHERE id = ?`, id); err != nil {
		t.Fatalf("could not tamper (trigger name changed?): %v", err)
	}
	db.Close()
	err = run(ctx, []string{"audit", "verify", "--data-dir", dir}, nil, &out, io.Discard, envMap())
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("broken at row %d", id)) {
		t.Errorf("verify after an edit: %v, want a break at row %d", err, id)
	}
}
