package collector

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/internal/testenv"
)

func findQueue(s RabbitSnapshot, name string) (Queue, bool) {
	for _, q := range s.Queues {
		if q.Name == name {
			return q, true
		}
	}
	return Queue{}, false
}

// TestRabbitSourceReadsBacklogsAndFindsDLQs runs against the real broker's
// management API: backlogs are counted, and a queue is recognised as a
// dead-letter queue by being another queue's x-dead-letter target (default
// exchange or a named DLX), not only by its name.
func TestRabbitSourceReadsBacklogsAndFindsDLQs(t *testing.T) {
	amqpURL := testenv.RabbitURL(t)
	mgmt := testenv.RabbitManagementURL(t)
	ch := testenv.RabbitChannel(t, amqpURL)
	p := fmt.Sprintf("sytest%d", rand.Uint32())
	work, parking, other, graveyard, dlx := p+".work.high", p+"-parking", p+".other.low", p+"-graveyard", p+".dlx"
	t.Cleanup(func() { ch.ExchangeDelete(dlx, false, false) }) //nolint:errcheck // best effort
	mustDeclare := func(name string, args amqp.Table) { testenv.DeclareQueue(t, ch, amqpURL, name, args) }
	mustDeclare(parking, nil)
	mustDeclare(work, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": parking})
	if err := ch.ExchangeDeclare(dlx, "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	mustDeclare(graveyard, nil)
	if err := ch.QueueBind(graveyard, "", dlx, false, nil); err != nil {
		t.Fatal(err)
	}
	mustDeclare(other, amqp.Table{"x-dead-letter-exchange": dlx})
	for i := range 3 {
		testenv.Publish(t, ch, work, amqp.Publishing{Body: []byte(fmt.Sprint(i))})
	}

	src, err := NewRabbitSource("local", mgmt, RabbitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var snap RabbitSnapshot
	// The management API refreshes its counts every few seconds.
	testenv.WaitFor(t, fmt.Sprintf("queue %s to show 3 ready", work), func() bool {
		snap, err = src.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		q, ok := findQueue(snap, work)
		return ok && q.Ready == 3
	})
	q, _ := findQueue(snap, work)
	if q.Total != 3 || q.Unacked != 0 || q.Consumers != 0 || q.IsDLQ {
		t.Errorf("work queue = %+v, want 3 total, 0 unacked, no consumers, not a DLQ", q)
	}
	if q.DeadLetterRoutingKey != parking {
		t.Errorf("work queue's dead-letter routing key = %q, want %q", q.DeadLetterRoutingKey, parking)
	}
	if len(q.DeadLetterQueues) != 1 || q.DeadLetterQueues[0] != parking {
		t.Errorf("work queue dead-letters to %v, want [%s]", q.DeadLetterQueues, parking)
	}
	if oq, ok := findQueue(snap, other); !ok || oq.DeadLetterExchange != dlx || len(oq.DeadLetterQueues) != 1 || oq.DeadLetterQueues[0] != graveyard {
		t.Errorf("other queue = %+v, want exchange %s reaching [%s]", oq, dlx, graveyard)
	}
	if pq, ok := findQueue(snap, parking); !ok || !pq.IsDLQ || len(pq.DLQOf) != 1 || pq.DLQOf[0] != work {
		t.Errorf("parking queue = %+v, want a DLQ of %s (found through x-dead-letter-routing-key)", pq, work)
	}
	if gq, ok := findQueue(snap, graveyard); !ok || !gq.IsDLQ || len(gq.DLQOf) != 1 || gq.DLQOf[0] != other {
		t.Errorf("graveyard queue = %+v, want a DLQ of %s (found through the named DLX %s)", gq, other, dlx)
	}
	if len(snap.Nodes) == 0 || !snap.Nodes[0].Running {
		t.Errorf("nodes = %+v, want at least one running node", snap.Nodes)
	}

	scoped, _ := NewRabbitSource("local", mgmt, RabbitOptions{VHosts: []string{"no-such-vhost"}})
	s2, err := scoped.Snapshot(context.Background())
	if err != nil || len(s2.Queues) != 0 {
		t.Errorf("a vhost filter that matches nothing gave %d queues, err %v", len(s2.Queues), err)
	}
}

func TestRabbitSourceErrorsHideCredentials(t *testing.T) {
	mgmt := testenv.RabbitManagementURL(t)
	u, _ := url.Parse(mgmt)
	u.User = url.UserPassword("guest", "not-the-password-s3cret")
	src, err := NewRabbitSource("local", u.String(), RabbitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Fatalf("wrong password: got %v, want a 401 error", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the password: %v", err)
	}
	dead, _ := NewRabbitSource("dead", "http://guest:guest@127.0.0.1:1", RabbitOptions{})
	if err := dead.Ping(context.Background()); err == nil || strings.Contains(err.Error(), "guest:guest") {
		t.Errorf("unreachable management API: got %v", err)
	}
	if _, err := NewRabbitSource("bad", "amqp://x", RabbitOptions{}); err == nil {
		t.Error("an amqp:// management URL was accepted")
	}
}

// TestRabbitSourceWatchesOnlyItsVHosts: with VHosts, the snapshot holds the
// queues of those vhosts (the default vhost "/" included, which the API
// spells %2F) and nothing of the others.
func TestRabbitSourceWatchesOnlyItsVHosts(t *testing.T) {
	mgmt := testenv.RabbitManagementURL(t)
	vh, vhURL := testenv.RabbitVHost(t)
	declare := func(u, name string) { testenv.DeclareQueue(t, testenv.RabbitChannel(t, u), u, name, nil) }
	inRoot := fmt.Sprintf("sytest%d.root.low", rand.Uint32())
	declare(testenv.RabbitURL(t), inRoot)
	declare(vhURL, "in.own.vhost.low")

	vhostsOf := func(vhosts ...string) map[string][]string {
		t.Helper()
		src, err := NewRabbitSource("local", mgmt, RabbitOptions{VHosts: vhosts})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := src.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, q := range snap.Queues {
			out[q.VHost] = append(out[q.VHost], q.Name)
		}
		return out
	}
	got := vhostsOf("/", vh)
	if !slices.Contains(got["/"], inRoot) || !slices.Equal(got[vh], []string{"in.own.vhost.low"}) {
		t.Errorf("watching / and %s: %v", vh, got)
	}
	got = vhostsOf(vh)
	if len(got) != 1 || !slices.Equal(got[vh], []string{"in.own.vhost.low"}) {
		t.Errorf("watching %s only: %v", vh, got)
	}
}

// TestRabbitSourceDLQPatterns: a source given the configured dlq.patterns
// marks the queues they match as dead-letter queues, and no longer those of
// the default patterns (which the indexer would otherwise take into
// custody although the configuration does not name them).
func TestRabbitSourceDLQPatterns(t *testing.T) {
	mgmt := testenv.RabbitManagementURL(t)
	vh, vhURL := testenv.RabbitVHost(t)
	ch := testenv.RabbitChannel(t, vhURL)
	const parked, classic = "notify.email.high.parked", "notify.email.high.dlq"
	for _, q := range []string{parked, classic} {
		testenv.DeclareQueue(t, ch, vhURL, q, nil)
	}
	src, err := NewRabbitSource("local", mgmt, RabbitOptions{VHosts: []string{vh}, DLQPatterns: []string{"*.parked"}})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if q, ok := findQueue(snap, parked); !ok || !q.IsDLQ || !snap.IsDLQQueue(vh, parked) {
		t.Errorf("%s = %+v, want a DLQ by the configured pattern *.parked", parked, q)
	}
	if q, ok := findQueue(snap, classic); !ok || q.IsDLQ || snap.IsDLQQueue(vh, classic) {
		t.Errorf("%s = %+v, want no DLQ: the configured patterns replace the defaults", classic, q)
	}
	if !snap.IsDLQQueue(vh, "gone.parked") || snap.IsDLQQueue(vh, "gone.dlq") {
		t.Error("IsDLQQueue of a queue the snapshot does not list ignores the configured patterns")
	}
	if _, err := NewRabbitSource("local", mgmt, RabbitOptions{DLQPatterns: []string{""}}); err == nil {
		t.Error(`NewRabbitSource accepted the dead-letter pattern ""`)
	}
}
