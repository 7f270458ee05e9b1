package web

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/collector"
	"switchyard/internal/testenv"
)

// The queues page against the real RabbitMQ management API: backlogs, and
// a queue recognised as a DLQ because another queue dead-letters into it.
func TestQueuesPageWithRealRabbitMQ(t *testing.T) {
	amqpURL := testenv.RabbitURL(t)
	mgmt := testenv.RabbitManagementURL(t)
	ch := testenv.RabbitChannel(t, amqpURL)
	p := fmt.Sprintf("syweb%d", rand.Uint32())
	work, parking := p+".work.high", p+".parking"
	testenv.DeclareQueue(t, ch, amqpURL, parking, nil)
	testenv.DeclareQueue(t, ch, amqpURL, work, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": parking})
	for i := range 3 {
		testenv.Publish(t, ch, work, amqp.Publishing{Body: []byte(fmt.Sprint("msg ", i))})
	}

	e := newEnv(t, envOptions{rabbitURL: mgmt})
	list := "/queues?q=" + url.QueryEscape(p)
	// The management API refreshes its counts every few seconds.
	var page response
	testenv.WaitWithin(t, 20*time.Second, "the queues page to show 3 ready", func() bool {
		if err := e.poller.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		page = e.admin(t, list)
		return strings.Contains(page.body, `data-testid="queue-ready"><span title="3">3<`)
	})
	if got := rows(page.body, "queue-row", "data-queue"); strings.Join(got, ",") != parking+","+work {
		t.Fatalf("queues matching %s = %v\n%s", p, got, page.body)
	}
	workRow := page.body[strings.Index(page.body, `data-queue="`+work+`"`):]
	workRow = workRow[:strings.Index(workRow, "</tr>")]
	mustContain(t, "work row", workRow, `data-testid="queue-ready"><span title="3">3<`, `data-testid="queue-total"><span title="3">3<`)
	mustNotContain(t, "work row", workRow, `data-testid="dlq-badge"`)
	parkRow := page.body[strings.Index(page.body, `data-queue="`+parking+`"`):]
	parkRow = parkRow[:strings.Index(parkRow, "</tr>")]
	mustContain(t, "parking row", parkRow, `data-testid="dlq-badge"`, `data-testid="dlq-of">dead-letters of `+work+`<`)
	mustContain(t, "status", page.body, `data-testid="rabbit-status" data-cluster="mq"`, `data-testid="cluster-reachable"`)

	if got := rows(e.admin(t, list+"&sort=ready").body, "queue-row", "data-queue"); len(got) != 2 || got[0] != work {
		t.Errorf("sort=ready = %v", got)
	}
	// The queue page, with charts of what History recorded.
	q := e.admin(t, "/queues/mq/%2F/"+url.PathEscape(work))
	if q.status != http.StatusOK {
		t.Fatalf("queue page = %d\n%s", q.status, q.body)
	}
	mustContain(t, "queue page", q.body, `data-testid="queue-name">`+work, `data-testid="queue-ready"><span title="3">3<`)
	mustContain(t, "backlog chart", chartOf(q.body, "queue-backlog"), `data-testid="chart-line"`, "ready", "unacked")
	mustContain(t, "rates chart", chartOf(q.body, "queue-rates"), `data-testid="chart-line"`, "publish")
	if r := e.admin(t, "/queues/mq/%2F/no.such.queue"); r.status != http.StatusNotFound {
		t.Errorf("unknown queue = %d", r.status)
	}
	// tess may view kafka:demo/* only.
	if r := e.as(t, "tess").get(t, "/queues/mq/%2F/"+url.PathEscape(work)); r.status != http.StatusForbidden {
		t.Errorf("tess on a queue = %d", r.status)
	}
	mustNotContain(t, "tess queues", e.as(t, "tess").get(t, list).body, work)
	// The overview has a card for the RabbitMQ cluster.
	mustContain(t, "overview", e.admin(t, "/").body, `data-testid="rabbit-cluster" data-cluster="mq"`, `data-chart="r-mq-publish"`)

	var api queuesResponse
	if err := json.Unmarshal([]byte(e.admin(t, "/api/v1/queues").body), &api); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, aq := range api.Queues {
		switch aq.Name {
		case work:
			found++
			if aq.Ready != 3 || aq.IsDLQ {
				t.Errorf("API work queue = %+v", aq)
			}
		case parking:
			found++
			if !aq.IsDLQ || len(aq.DLQOf) != 1 || aq.DLQOf[0] != work {
				t.Errorf("API parking queue = %+v", aq)
			}
		}
	}
	if found != 2 {
		t.Errorf("API lists %d of the two queues", found)
	}
}

// Node alarms show as a banner on the queues page.
func TestQueuesAlarmBanner(t *testing.T) {
	e := newEnv(t, envOptions{rabbitViews: []collector.RabbitView{{
		Name: "mq", Polled: true, Reachable: true, HasSnapshot: true,
		Snapshot: collector.RabbitSnapshot{TakenAt: time.Now(),
			Nodes:  []collector.RabbitNode{{Name: "rabbit@n1", Running: true, MemAlarm: true}, {Name: "rabbit@n2", Running: true}},
			Queues: []collector.Queue{{VHost: "/", Name: "notify.email.high", Utilisation: -1}}},
	}}})
	r := e.admin(t, "/queues")
	mustContain(t, "alarms", r.body, `data-testid="node-alarms"`, "rabbit@n1: memory alarm")
	mustNotContain(t, "alarms", r.body, "rabbit@n2:")
}
