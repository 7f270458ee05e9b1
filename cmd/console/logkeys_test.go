package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testenv"
)

// Every log line of the running console names each key once: a line the
// indexer wrote carried "cluster" twice (the console's logger and the
// indexer's both added it), which log pipelines resolve to either value.
func TestLogLinesNameEachKeyOnce(t *testing.T) {
	var logs testenv.SyncBuffer
	m := NewMain(io.Discard, &logs, envMap(
		"CONSOLE_ADDR", "127.0.0.1:0", "DEMO_KAFKA_ADDR", "127.0.0.1:0", "CONSOLE_DATA_DIR", t.TempDir(),
		"CONSOLE_ADMIN_PASSWORD", "correct-horse-battery", "CONSOLE_POLL_INTERVAL", "1s",
	))
	m.DemoMode = true
	if err := m.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	testenv.WaitWithin(t, 60*time.Second, "the indexer's log line for a DLQ topic", func() bool {
		return strings.Contains(logs.String(), `"msg":"indexing dlq topic"`)
	})
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for line := range strings.Lines(logs.String()) {
		if dup := repeatedKey(line); dup != "" {
			t.Errorf("key %q twice in %s", dup, line)
		}
	}
}

// repeatedKey returns a top-level key that a JSON log line has twice, or "".
func repeatedKey(line string) string {
	dec := json.NewDecoder(bytes.NewReader([]byte(line)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}
