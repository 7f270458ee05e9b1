package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/internal/testenv"
)

// dlqQueue declares a durable queue at amqpURL holding one message with id,
// deleted when the test ends.
func dlqQueue(t *testing.T, amqpURL, queue, id string) {
	t.Helper()
	ch := testenv.RabbitChannel(t, amqpURL)
	testenv.DeclareQueue(t, ch, amqpURL, queue, nil)
	testenv.Publish(t, ch, queue, amqp.Publishing{MessageId: id, Body: []byte(`{"not":"an envelope"}`)})
}

// peekQueue returns the ids of the messages in a queue right now, through
// the management API's get (requeued at once). A message some consumer
// holds unacked, or took, is not there: unlike the queue's message count,
// which the management plugin refreshes every few seconds.
func peekQueue(t *testing.T, vhost, queue string) []string {
	t.Helper()
	path := "/api/queues/" + url.PathEscape(vhost) + "/" + url.PathEscape(queue) + "/get"
	resp, err := http.Post(testenv.RabbitManagementURL(t)+path, "application/json",
		strings.NewReader(`{"count":100,"ackmode":"ack_requeue_true","encoding":"auto"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
	var msgs []struct {
		Properties struct {
			MessageID string `json:"message_id"`
		} `json:"properties"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.Properties.MessageID)
	}
	return ids
}

type apiEntry struct {
	VHost       string `json:"vhost"`
	Destination string `json:"destination"`
	MessageID   string `json:"message_id"`
}

type entriesResponse struct {
	Entries []apiEntry `json:"entries"`
}

// adminToken makes an API token for admin offline, as an operator would
// (`console token create` while the console runs: SQLite in WAL mode).
func adminToken(t *testing.T, dataDir string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "create", "--user", "admin", "--data-dir", dataDir}, nil, &out, io.Discard, envMap()); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

// waitEntry polls the dead-letter API until an entry with message id shows.
func waitEntry(t *testing.T, base, auth, id string) {
	t.Helper()
	testenv.WaitWithin(t, 60*time.Second, fmt.Sprintf("dead letter %q indexed", id), func() bool {
		var r entriesResponse
		if code := getJSON(t, base+"/api/v1/dlq/entries?broker=rabbitmq&limit=500", auth, &r); code != http.StatusOK {
			t.Fatalf("GET /api/v1/dlq/entries: %d", code)
		}
		return slices.ContainsFunc(r.Entries, func(e apiEntry) bool { return e.MessageID == id })
	})
}

// TestConsoleTakesCustodyOnlyInItsVHost: a shared broker has a DLQ-named
// queue with a message in two vhosts. A console whose RABBITMQ_URL names
// vhost A indexes (consumes) A's and never touches B's, whose message is
// still there once A's was indexed; its dashboards show A only; its banner
// names the queue it took. Listing both in RABBITMQ_VHOSTS takes B too.
func TestConsoleTakesCustodyOnlyInItsVHost(t *testing.T) {
	mgmt := testenv.RabbitManagementURL(t)
	vhA, urlA := testenv.RabbitVHost(t)
	vhB, urlB := testenv.RabbitVHost(t)
	const queue = "payments.refund.high.dlq"
	dlqQueue(t, urlA, queue, "in-a")
	dlqQueue(t, urlB, queue, "in-b")

	dir := t.TempDir()
	start := func(extra ...string) (*Main, string) {
		t.Helper()
		var banner bytes.Buffer
		m := NewMain(&banner, io.Discard, envMap(append([]string{
			"CONSOLE_ADDR", "127.0.0.1:0", "CONSOLE_DATA_DIR", dir, "CONSOLE_ADMIN_PASSWORD", "correct-horse-battery",
			"CONSOLE_POLL_INTERVAL", "1s", "RABBITMQ_URL", urlA, "RABBITMQ_MANAGEMENT_URL", mgmt,
		}, extra...)...))
		if err := m.ParseFlags(nil); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return m, banner.String()
	}

	m, banner := start()
	defer m.Close()
	auth := "Bearer " + adminToken(t, dir)
	waitEntry(t, m.URL, auth, "in-a")
	if got := peekQueue(t, vhB, queue); !slices.Equal(got, []string{"in-b"}) {
		t.Fatalf("vhost %s's %s holds %v once vhost A's dead letter was indexed, want [in-b]: the console drained another vhost", vhB, queue, got)
	}
	if want := queue + " (vhost " + vhA + ")"; !strings.Contains(banner, want) || strings.Contains(banner, vhB) {
		t.Errorf("banner should name %q as taken into custody, and nothing of %s:\n%s", want, vhB, banner)
	}
	// The dashboards watch the same vhost as the indexer.
	var vhosts []string
	testenv.WaitWithin(t, 30*time.Second, "the queue dashboards to show vhost "+vhA, func() bool {
		var qs struct {
			Queues []struct {
				VHost string `json:"vhost"`
			} `json:"queues"`
		}
		getJSON(t, m.URL+"/api/v1/queues", auth, &qs)
		vhosts = vhosts[:0]
		for _, q := range qs.Queues {
			vhosts = append(vhosts, q.VHost)
		}
		return slices.Contains(vhosts, vhA)
	})
	if slices.ContainsFunc(vhosts, func(v string) bool { return v != vhA }) {
		t.Errorf("queue dashboards show vhosts %v, want only %s", vhosts, vhA)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2, banner2 := start("RABBITMQ_VHOSTS", vhA+","+vhB)
	defer m2.Close()
	waitEntry(t, m2.URL, auth, "in-b")
	if want := queue + " (vhost " + vhB + ")"; !strings.Contains(banner2, want) {
		t.Errorf("with vhost B listed, the banner should name %q:\n%s", want, banner2)
	}
}

// TestDemoTakesOnlyItsOwnQueue: `console demo` with no RabbitMQ configured
// uses whatever RabbitMQ answers on 127.0.0.1, which may be shared. It
// takes custody of the demo's own notify.email.high.dlq, and leaves an
// unrelated DLQ-named queue in the same vhost alone; the banner says which
// queue it took.
func TestDemoTakesOnlyItsOwnQueue(t *testing.T) {
	testenv.RabbitURL(t)
	testenv.RabbitManagementURL(t) // before the fix, the management API is what found every queue
	b := make([]byte, 4)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails
	other := "other-" + hex.EncodeToString(b) + ".dlq"
	dlqQueue(t, defaultRabbitURL, other, "not-the-demos")

	var banner bytes.Buffer
	dir := t.TempDir()
	m := startDemo(t, dir, &banner)
	defer m.Close()
	auth := "Bearer " + adminToken(t, dir)
	// A demo dead letter indexed from RabbitMQ: the indexer has consumed
	// for a while, long enough to have taken the other queue too.
	testenv.WaitWithin(t, 90*time.Second, "a dead letter of notify.email.high.dlq indexed", func() bool {
		var r entriesResponse
		getJSON(t, m.URL+"/api/v1/dlq/entries?broker=rabbitmq&limit=500", auth, &r)
		return slices.ContainsFunc(r.Entries, func(e apiEntry) bool { return e.Destination == "notify.email.high.dlq" })
	})
	if got := peekQueue(t, "/", other); !slices.Equal(got, []string{"not-the-demos"}) {
		t.Errorf("%s holds %v, want its message: the demo took custody of a queue that is not its own", other, got)
	}
	if !strings.Contains(banner.String(), "notify.email.high.dlq (vhost /)") || strings.Contains(banner.String(), other) {
		t.Errorf("banner should name notify.email.high.dlq as the only queue taken:\n%s", banner.String())
	}
}

// TestRabbitVHostsConfig: the vhosts the console watches and consumes DLQ
// queues in default to the AMQP URL's vhost alone, come from
// RABBITMQ_VHOSTS or the file's rabbitmq.vhosts when listed, and "*" alone
// opts in to every vhost.
func TestRabbitVHostsConfig(t *testing.T) {
	cases := []struct {
		name     string
		env      []string
		wantV    []string
		wantAll  bool
		wantFail string
	}{
		{"the URL's vhost", []string{"RABBITMQ_URL", "amqp://guest:guest@broker:5672/staging"}, []string{"staging"}, false, ""},
		{"an escaped vhost", []string{"RABBITMQ_URL", "amqp://broker/team%2Fa"}, []string{"team/a"}, false, ""},
		{"the default vhost", []string{"RABBITMQ_URL", "amqp://broker:5672/"}, []string{"/"}, false, ""},
		{"no path", []string{"RABBITMQ_URL", "amqp://broker"}, []string{"/"}, false, ""},
		{"listed", []string{"RABBITMQ_URL", "amqp://broker/staging", "RABBITMQ_VHOSTS", "staging, qa"}, []string{"staging", "qa"}, false, ""},
		{"every vhost, asked for", []string{"RABBITMQ_URL", "amqp://broker/staging", "RABBITMQ_VHOSTS", "*"}, nil, true, ""},
		{"star among names", []string{"RABBITMQ_URL", "amqp://broker/", "RABBITMQ_VHOSTS", "*,prod"}, nil, false, "rabbitmq vhosts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMain(io.Discard, io.Discard, envMap(tc.env...))
			err := m.ParseFlags(nil)
			if tc.wantFail != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantFail) {
					t.Fatalf("ParseFlags = %v, want an error about %q", err, tc.wantFail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v, all := m.Config.RabbitMQ.vhosts(m.Config.RabbitMQ.URL)
			if !slices.Equal(v, tc.wantV) || all != tc.wantAll {
				t.Errorf("vhosts = %q, all %v; want %q, all %v", v, all, tc.wantV, tc.wantAll)
			}
		})
	}
	// The demo's implicit broker is its vhost "/".
	if v, all := defaultConfig().RabbitMQ.vhosts(defaultRabbitURL); !slices.Equal(v, []string{"/"}) || all {
		t.Errorf("demo default vhosts = %q, %v", v, all)
	}
}
