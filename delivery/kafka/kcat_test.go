package kafka

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"switchyard/delivery"
	"switchyard/internal/testenv"
)

// kcat (librdkafka) is an independent client: what it produces the runner
// handles, and the dead letters the runner writes it reads with the
// Switchyard headers intact.
func TestKcatInterop(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		testenv.Missing(t, "kcat")
	}
	topic := uniqueTopic("kcat")
	_, addrs := newCluster(t, 1, topic)
	adm := newAdmin(t, addrs)
	broker := strings.Join(addrs, ",")
	group := "g-" + topic

	var mu sync.Mutex
	var handled []string
	startConsumer(t, ConsumerOptions{
		Brokers: addrs, Group: group, Topics: []string{topic}, Retry: fastRetry(2), Service: "kcat-test",
		Handler: func(_ context.Context, d *Delivery) error {
			mu.Lock()
			handled = append(handled, d.Envelope.ID)
			mu.Unlock()
			if d.Envelope.Metadata.PartitionKey == "reject" {
				return delivery.Permanent(delivery.Errorf("REJECTED_BY_TEST", "rejected"))
			}
			return nil
		},
	})

	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	good, bad := envelope(t, "accept", 1), envelope(t, "reject", 2)
	run(append(mustJSON(t, good), '\n'), "-P", "-b", broker, "-t", topic, "-k", "accept")
	run(append(mustJSON(t, bad), '\n'), "-P", "-b", broker, "-t", topic, "-k", "reject")
	waitCommitted(t, adm, group, topic, 0, 2)

	mu.Lock()
	if len(handled) != 2 || handled[0] != good.ID || handled[1] != bad.ID {
		t.Errorf("handled %v, want [%s %s]", handled, good.ID, bad.ID)
	}
	mu.Unlock()

	out := run(nil, "-C", "-b", broker, "-t", topic+".dlq", "-e", "-J", "-q")
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("kcat read %d dead letters, want 1:\n%s", len(lines), out)
	}
	var msg struct {
		Key     string   `json:"key"`
		Payload string   `json:"payload"`
		Headers []string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &msg); err != nil {
		t.Fatalf("kcat -J output %q: %v", lines[0], err)
	}
	hs := map[string]string{}
	for i := 0; i+1 < len(msg.Headers); i += 2 {
		hs[msg.Headers[i]] = msg.Headers[i+1]
	}
	if got := hs[delivery.HeaderErrorCode]; got != "REJECTED_BY_TEST" {
		t.Errorf("kcat sees %s = %q, want REJECTED_BY_TEST (headers %v)", delivery.HeaderErrorCode, got, hs)
	}
	if got := hs[delivery.HeaderOriginService]; got != "kcat-test" {
		t.Errorf("kcat sees %s = %q, want kcat-test", delivery.HeaderOriginService, got)
	}
	if msg.Key != "reject" || msg.Payload != string(mustJSON(t, bad)) {
		t.Errorf("kcat sees key %q payload %q, want the original record", msg.Key, msg.Payload)
	}
}
