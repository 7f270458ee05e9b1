package indexer

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/dlqstore"
)

const (
	crashDirEnv     = "INDEXER_CRASH_DIR"
	crashBrokersEnv = "INDEXER_CRASH_BROKERS"
)

// TestKafkaKilledMidStream runs the indexer in a child process (this test
// binary re-executed), SIGKILLs it in the middle of a 20,000-record
// backlog, and restarts indexing in this process on the same database:
// every record must be indexed exactly once, and every batch the child
// had committed must have survived the kill.
func TestKafkaKilledMidStream(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir, strings.Split(os.Getenv(crashBrokersEnv), ","))
		return
	}
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	t.Parallel()
	c := newCluster(t)
	cl := newClient(t, c)
	topic := "orders.killed-" + uniq() + ".dlq"
	createTopic(t, cl, topic, 4, nil)
	counts := produceDeadLetters(t, cl, topic, 4, 20000)
	dir := t.TempDir()

	cmd := exec.Command(os.Args[0], "-test.run=^TestKafkaKilledMidStream$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashBrokersEnv+"="+strings.Join(c.ListenAddrs(), ","))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAt := int64(2000 + rand.IntN(12000))
	var reported int64
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(90 * time.Second)
	for reported < killAt && time.Now().Before(deadline) && sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "indexed "); ok {
			reported, _ = strconv.ParseInt(n, 10, 64)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() //nolint:errcheck // killed on purpose
	if reported < killAt {
		t.Fatalf("child reported only %d indexed before the deadline", reported)
	}
	t.Logf("killed the child after it reported %d of 20000 indexed", reported)

	store := openStore(t, filepath.Join(dir, "dlq.db"))
	survived := len(entries(t, store, dlqstore.Filter{Destination: topic}))
	if int64(survived) < reported {
		t.Fatalf("%d entries survived the kill, but the child had committed %d", survived, reported)
	}
	x, r := startKafka(t, KafkaOptions{Cluster: "local", Client: newClient(t, c), Store: store, BatchSize: 250})
	settled(t, "the rest indexed after the restart, up to the end of the topic", x, topic, int64(20000-survived))
	r.stop(t)
	if d := statusOf(x.Status(), topic).Duplicates; d != 0 {
		t.Errorf("restart saw %d duplicates; it should resume exactly at the stored offsets", d)
	}
	checkExactlyOnce(t, entries(t, store, dlqstore.Filter{Destination: topic}), counts)
}

// crashChild indexes until killed, printing how many entries are committed.
func crashChild(dir string, brokers []string) {
	ctx := context.Background()
	store, err := dlqstore.Open(ctx, filepath.Join(dir, "dlq.db"), dlqstore.Options{Logger: quiet()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	x, err := NewKafkaIndexer(KafkaOptions{Cluster: "local", Brokers: brokers, Store: store, BatchSize: 100, Logger: quiet()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child indexer:", err)
		os.Exit(2)
	}
	go x.Run(ctx) //nolint:errcheck // runs until the parent kills this process
	var last int64
	for {
		var n int64
		for _, s := range x.Status() {
			n += s.Indexed
		}
		if n != last {
			fmt.Printf("indexed %d\n", n)
			last = n
		}
		time.Sleep(2 * time.Millisecond)
	}
}
