package web

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/indexer"
	"switchyard/internal/testenv"
)

// hereSources are the seeded sources plus one more RabbitMQ DLQ queue the
// console's indexer takes custody of.
type hereSources struct{ queue string }

func (h hereSources) Status() []indexer.SourceStatus {
	return append(dlqSources{}.Status(), indexer.SourceStatus{Broker: delivery.BrokerRabbitMQ, Cluster: dlqRabbit, VHost: "/",
		Destination: h.queue, Indexed: 1, Lag: 0, LastIndexedAt: time.Now()})
}

// indexRabbitHere indexes one dead letter of tenant t1 from queue work,
// dead-lettered into parking on the console's RabbitMQ cluster (dlqRabbit),
// whose origin names the broker as the failing service does ("local",
// like the demo's notify service); it returns its entry id.
func indexRabbitHere(t *testing.T, st *dlqstore.Store, work, parking, code string) int64 {
	t.Helper()
	ctx := context.Background()
	o := delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: "local", VHost: "/", Exchange: "", RoutingKey: work, Queue: work, Partition: -1, Offset: -1, Service: "notify-service"}
	d := delivery.Location{Broker: delivery.BrokerRabbitMQ, Cluster: dlqRabbit, VHost: "/", Queue: parking, Partition: -1, Offset: -1}
	item := deadLetterOf(t, dlqFixture{name: "here", tenant: "t1", code: code, msg: "relay refused " + code, age: time.Minute}, o, d, time.Now())
	item.MessageID, item.DeathCount = "msg-"+code, 1
	if res, err := st.IndexRabbit(ctx, []dlqstore.IndexItem{item}); err != nil || res.Inserted != 1 {
		t.Fatalf("index rabbit: %+v %v", res, err)
	}
	page, err := st.FindEntries(ctx, dlqstore.Filter{ErrorCode: code, Limit: 2})
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("find %s: %+v %v", code, page.Entries, err)
	}
	return page.Entries[0].ID
}

// TestBrowserDeadLettersWhereTheOperatorIs walks, in Chromium against the
// real RabbitMQ management API, from a work queue to its dead letters and
// back: the queue page shows its dead-letter arguments and links its DLQ;
// the DLQ's page counts the entries indexed from it, says why it shows
// nothing ready, and links them; the entry's origin link leads back to the
// work queue; a failure group opens an example entry directly. Then, for
// a Kafka DLQ topic, a tenant-scoped operator sees the count of their
// tenant's entries and the list it links to agrees.
func TestBrowserDeadLettersWhereTheOperatorIs(t *testing.T) {
	amqpURL := testenv.RabbitURL(t)
	mgmt := testenv.RabbitManagementURL(t)
	ch := testenv.RabbitChannel(t, amqpURL)
	p := fmt.Sprintf("syhere%d", rand.Uint32())
	work, parking, code := p+".work", p+".parking", strings.ToUpper(p)+"_REFUSED"
	testenv.DeclareQueue(t, ch, amqpURL, parking, nil)
	testenv.DeclareQueue(t, ch, amqpURL, work, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": parking})

	e := newEnv(t, envOptions{rabbitURL: mgmt})
	// The management API lists a new queue within a few seconds.
	testenv.WaitWithin(t, 20*time.Second, "the poller to see "+parking+" as the DLQ of "+work, func() bool {
		if err := e.poller.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, v := range e.poller.RabbitLatest() {
			for _, q := range v.Snapshot.Queues {
				if q.Name == parking && q.IsDLQ {
					return true
				}
			}
		}
		return false
	})
	id := indexRabbitHere(t, e.dlq, work, parking, code)
	o := e.dlqOpts
	o.Indexers = hereSources{queue: parking}
	e.srv.dlq = newDeadLetters(t, o) // before any request of the test
	ctx := newBrowser(t)
	srv := serve(t, e)
	workPath := "/queues/" + dlqRabbit + "/%2F/" + url.PathEscape(work)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	at := func(suffix string) {
		t.Helper()
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, suffix) {
			t.Fatalf("at %s, want …%s", loc, suffix)
		}
	}

	signIn(t, ctx, srv, workPath, "admin", adminPassword)
	// Back on the queue the browser asked for, the default vhost's %2F
	// kept through the login form.
	at(workPath)
	if got := text(`[data-testid="queue-dlx"]`); got != "the default exchange" {
		t.Errorf("dead-letter exchange = %q", got)
	}
	if got := text(`[data-testid="queue-dlx-routing-key"]`); got != parking {
		t.Errorf("dead-letter routing key = %q, want %s", got, parking)
	}
	clickAndLoad(t, ctx, "the work queue's DLQ", `[data-testid="queue-dlq-link"]`)
	if got := text(`[data-testid="queue-name"]`); !strings.HasPrefix(got, parking) {
		t.Fatalf("DLQ link opened %q", got)
	}
	if got := text(`[data-testid="dlq-indexed-count"]`); got != "1" {
		t.Errorf("indexed count on the DLQ's page = %q, want 1", got)
	}
	if got := text(`[data-testid="dlq-custody"]`); !strings.Contains(got, "Ready stays at 0") || !strings.Contains(got, "custody") {
		t.Errorf("custody note = %q", got)
	}
	clickAndLoad(t, ctx, "the DLQ's entries", `[data-testid="dlq-entries-link"]`)
	if got := text(`[data-testid="entries-total"]`); got != "1" {
		t.Errorf("entries of the DLQ = %q, want 1", got)
	}
	clickAndLoad(t, ctx, "the entry", `[data-testid="entry-link"]`)
	at("/dead-letters/entries/" + itoa64(id))
	// The origin names the broker "local", as the service does; the link
	// goes to the queue by the console's name for that broker.
	clickAndLoad(t, ctx, "the origin", `[data-testid="origin-link"]`)
	at(workPath)
	if got := text(`[data-testid="queue-name"]`); got != work {
		t.Errorf("origin link opened %q, want the work queue", got)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="dlq-here"]').length`)); err != nil || n != 0 {
		t.Errorf("a queue that is no DLQ has %d dead-letter panels (%v)", n, err)
	}
	// A failure group opens an example entry in one click.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv+"/dead-letters?q="+url.QueryEscape(code))); err != nil {
		t.Fatal(err)
	}
	clickAndLoad(t, ctx, "the group's example", `[data-testid="group-sample"]`)
	at("/dead-letters/entries/" + itoa64(id))

	// A Kafka DLQ topic, as tess (tenant t1 of kafka:demo/*): three of its
	// five entries are hers, and the list agrees.
	clickAndLoad(t, ctx, "sign out", `[data-testid="logout"]`)
	signIn(t, ctx, srv, topicHref(testCluster, testDLQ), "tess", operatorPassword)
	if got := text(`[data-testid="dlq-indexed-count"]`); got != "3" {
		t.Errorf("tess's count on the DLQ topic = %q, want 3", got)
	}
	clickAndLoad(t, ctx, "the topic's entries", `[data-testid="dlq-entries-link"]`)
	if got := text(`[data-testid="entries-total"]`); got != "3" {
		t.Errorf("tess's entries of the DLQ topic = %q, want 3", got)
	}
	tenants, err := chromedp.Run(ctx, chromedp.AttributesAll(chromedp.CSSAll(`tr[data-testid="entry-row"]`)))
	if err != nil || len(tenants) != 3 {
		t.Fatalf("rows = %v, %v", tenants, err)
	}
	for _, r := range tenants {
		if r["data-tenant"] != "t1" {
			t.Errorf("tess sees an entry of tenant %q", r["data-tenant"])
		}
	}
}

// TestDLQPagesCountInScope: the count on a DLQ topic's page is the
// caller's (admin 5, tess 3: counted over their scope in the store), a
// topic that is no DLQ has no such panel, a Kafka DLQ says nothing of
// custody, and a group's example is an entry the caller may see (otto,
// who sees none of the group, gets 404).
func TestDLQPagesCountInScope(t *testing.T) {
	e := newEnv(t, envOptions{})
	dlqPage := topicHref(testCluster, testDLQ)
	for user, want := range map[string]string{"admin": "5", "vera": "5", "tess": "3"} {
		r := e.as(t, user).get(t, dlqPage)
		mustContain(t, user+" DLQ topic", r.body, `data-testid="dlq-indexed-count">`+want+`<`,
			`href="/dead-letters/entries?broker=kafka&amp;cluster=demo&amp;destination=`+url.QueryEscape(testDLQ)+`" data-testid="dlq-entries-link"`)
		mustNotContain(t, user+" DLQ topic", r.body, `data-testid="dlq-custody"`)
	}
	mustNotContain(t, "a topic", e.admin(t, topicHref(testCluster, testTopic)).body, `data-testid="dlq-here"`)

	group := func(user string) string {
		r := e.as(t, user).get(t, groupSampleHref(mustGroup(t, e.dlq, e.dlqIDs["nf3"])))
		if r.status != http.StatusSeeOther {
			return fmt.Sprint(r.status)
		}
		return r.header.Get("Location")
	}
	if got := group("admin"); got != entryHref(e.dlqIDs["nf1"]) {
		t.Errorf("admin's example = %s, want the newest entry nf1", got)
	}
	if got := group("otto"); got != "404" {
		t.Errorf("otto's example = %s, want 404", got)
	}
	if r := e.admin(t, "/dead-letters/groups/abc/sample"); r.status != http.StatusNotFound {
		t.Errorf("a group id that is no number = %d, want 404", r.status)
	}
	body := e.admin(t, "/dead-letters").body
	mustContain(t, "group card", body, `href="`+groupSampleHref(mustGroup(t, e.dlq, e.dlqIDs["nf1"]))+`" data-testid="group-sample"`)
}

func mustGroup(t *testing.T, st *dlqstore.Store, id int64) int64 {
	t.Helper()
	en, err := st.Entry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return en.GroupID
}

var _ dlq.IndexerStatus = hereSources{}
