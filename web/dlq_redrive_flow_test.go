package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"

	"switchyard/delivery"
	"switchyard/delivery/kafka"
	"switchyard/dlqstore"
	"switchyard/indexer"
	"switchyard/internal/testenv"
	"switchyard/redrive"
)

// flowRun runs fn until the test ends and reports what it returns.
func flowRun(t *testing.T, what string, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", what, err)
		}
	})
}

// failingBilling is a real consumer of topic on the jobs' Kafka cluster
// whose handler always fails, with the real indexer filing its dead
// letters in the env's store: a redrive of them comes back through the
// broker and the indexer as re-failures, as in production.
func failingBilling(t *testing.T, e *env, je *jobsEnv, topic string, n int) {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	pub, err := kafka.NewPublisher(kafka.PublisherOptions{Brokers: je.brokers, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	dlqTopic := delivery.DLQTopic(topic)
	if _, err := kadm.NewClient(pub.Client()).CreateTopics(ctx, 1, 1, nil, topic, dlqTopic); err != nil {
		t.Fatal(err)
	}
	consumer, err := kafka.NewConsumer(kafka.ConsumerOptions{
		Brokers: je.brokers, Group: "flow-billing", Topics: []string{topic}, Cluster: testCluster, Service: "billing", Logger: quiet,
		Retry: delivery.RetryPolicy{MaxAttempts: 2, Initial: time.Millisecond, MaxDelay: 2 * time.Millisecond},
		Handler: func(_ context.Context, d *kafka.Delivery) error {
			return delivery.Errorf("FLOW_LOOKUP_FAILED", "lookup failed for order %s", d.Envelope.Metadata.PartitionKey)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	flowRun(t, "consumer", consumer.Run)
	x, err := indexer.NewKafkaIndexer(indexer.KafkaOptions{Cluster: testCluster, Brokers: je.brokers, Store: e.dlq,
		Patterns: []string{dlqTopic}, Topics: []string{dlqTopic}, DiscoveryInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	flowRun(t, "indexer", x.Run)
	for i := range n {
		env, err := delivery.NewEnvelope("flow.order.placed.v1", "shop", map[string]any{"n": i},
			delivery.Metadata{TenantID: "t1", PartitionKey: "order-" + strconv.Itoa(1000+i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(ctx, topic, env, nil); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitWithin(t, 30*time.Second, fmt.Sprintf("%d dead letters of %s indexed", n, topic), func() bool {
		return len(flowEntries(t, e, dlqTopic)) == n
	})
}

// flowEntries are the entries of a DLQ, oldest first.
func flowEntries(t *testing.T, e *env, dlqTopic string) []dlqstore.Entry {
	t.Helper()
	page, err := e.dlq.FindEntries(context.Background(), dlqstore.Filter{Destination: dlqTopic, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	out := page.Entries
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// TestBrowserRedriveOutcomeFlow is the operator's flow through the pages
// in Chromium, with real Kafka, the real consumer, indexer and job
// engine: sign in, open the failure group, plan its redrive with a canary
// (reason, rate and canary above the folded sample; the estimate counts
// the canary window), start it, and land on the job page, where the
// canary fails because the consumer still fails: the canaries that came
// back are listed and linked; an original says "redriven → failed again"
// linked to its re-failure and the job; the group counts messages once;
// and "Re-plan the rest" opens the plan of what the job did not get
// through.
func TestBrowserRedriveOutcomeFlow(t *testing.T) {
	const topic, n, canary = "flow.orders", 12, 3
	e := newEnv(t, envOptions{})
	je := e.withJobs(t)
	failingBilling(t, e, je, topic, n)
	dlqTopic := delivery.DLQTopic(topic)
	originals := flowEntries(t, e, dlqTopic)
	groupID := originals[0].GroupID
	g, err := e.dlq.Group(context.Background(), groupID, nil)
	if err != nil || g.Count != n {
		t.Fatalf("group %d = %+v, %v; want %d entries", groupID, g, err, n)
	}
	ctx := newBrowser(t)
	base := serve(t, e)
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	truth := func(js string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	count := func(sel string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return v
	}
	attr := func(sel, name string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		if err != nil || !v.Exists {
			t.Fatalf("%s of %s: %+v %v", name, sel, v, err)
		}
		return v.Value
	}
	setValue := func(sel, v string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(sel), v)); err != nil {
			t.Fatalf("set %s: %v", sel, err)
		}
	}
	open := func(path, sel string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}

	// The failure group, and its redrive.
	signIn(t, ctx, base, "/dead-letters", "tess", operatorPassword)
	card := fmt.Sprintf(`[data-testid="group"][data-group-id="%d"]`, groupID)
	clickAndLoad(t, ctx, "Redrive group", card+` [data-testid="group-redrive"] button`)
	if got, want := text(`[data-testid="plan-selector"]`), "failure group “"+g.Title+"”"; !strings.HasPrefix(got, want) {
		t.Errorf("plan selection = %q, want it to name the group: %q", got, want)
	}
	if got := text(`[data-testid="plan-count"]`); got != strconv.Itoa(n) {
		t.Errorf("plan count = %q, want %d", got, n)
	}
	// What decides the job is above the sample, which is folded away.
	above := truth(`document.querySelector('[data-testid="job-reason"]').getBoundingClientRect().top <
		document.querySelector('[data-testid="plan-sample-details"]').getBoundingClientRect().top`)
	folded := truth(`!document.querySelector('details[data-testid="plan-sample-details"]').open`)
	if !above || !folded {
		t.Errorf("reason above the sample: %v; sample folded: %v", above, folded)
	}
	setValue(`[data-testid="job-canary"]`, strconv.Itoa(canary))
	setValue(`[data-testid="job-canary-window"]`, "60")
	clickAndLoad(t, ctx, "Update the plan", `[data-testid="job-replan"]`)
	if got := text(`[data-testid="plan-estimate"]`); got != "1m 00s" {
		t.Errorf("estimate of %d at 50/s after a 60 s canary = %q, want 1m 00s", n, got)
	}
	if got := text(`[data-testid="plan-canary"]`); got != "3 entries first, then 1m 00s of watching for re-failures" {
		t.Errorf("plan canary = %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`[data-testid="job-reason"]`), "retry after the lookup fix")); err != nil {
		t.Fatal(err)
	}
	clickAndLoad(t, ctx, "Start", `[data-testid="job-start"]`)
	loc := location()
	m := jobPathRE.FindStringSubmatch(strings.TrimPrefix(loc, base))
	if m == nil {
		t.Fatalf("after start at %q, want a job page", loc)
	}
	jobID, _ := strconv.ParseInt(m[1], 10, 64)

	// The consumer still fails: the canaries come back through the
	// indexer and the job stops.
	end := waitJob(t, je, jobID, dlqstore.JobCanaryFailed)
	testenv.WaitWithin(t, 30*time.Second, "the three canaries back", func() bool {
		_, total, err := je.engine.Refailures(context.Background(), overseer(), jobID, 10)
		return err == nil && total == canary
	})
	if end.Done != canary || end.Cancelled != n-canary {
		t.Errorf("job = %+v, want %d sent and %d cancelled", end, canary, n-canary)
	}
	open(jobHref(jobID), `[data-testid="job-state"][data-state="canary_failed"]`)
	if got := text(`[data-testid="job-state"]`); got != "canary failed" {
		t.Errorf("job state = %q, want words", got)
	}
	want := "The canary failed: 3 of the canary's 3 entries dead-lettered again within 1m 00s, so the other 9 were not sent."
	if got := text(`[data-testid="job-sentence"]`); got != want {
		t.Errorf("sentence = %q, want %q", got, want)
	}
	main := text(`main`)
	if k := strings.Count(main, "dead-lettered again"); k != 1 {
		t.Errorf("the failure is said %d times on the job page, want once:\n%s", k, main)
	}
	if got := count(`[data-testid="refailure-row"][data-canary]`); got != canary {
		t.Errorf("%d canary re-failures listed, want %d", got, canary)
	}
	if got := count(`[data-testid="job-progress-segment"][data-kind="done"]`) + count(`[data-testid="job-progress-segment"][data-kind="cancelled"]`); got != 2 ||
		count(`[data-testid="job-progress-segment"][data-kind="failed"]`) != 0 {
		t.Errorf("progress segments: want one sent and one cancelled")
	}
	if done, failed, cancelled := text(`[data-testid="job-done"]`), text(`[data-testid="job-failed"]`), text(`[data-testid="job-cancelled"]`); done != "3" || failed != "0" || cancelled != "9" {
		t.Errorf("done %s, failed %s, cancelled %s; want 3, 0, 9", done, failed, cancelled)
	}
	if !strings.Contains(main, "not sent: the canary failed") {
		t.Errorf("the unsent ledger rows do not say why")
	}
	if got := count(`[data-testid="ledger-refailed"]`); got != canary {
		t.Errorf("%d ledger rows link a re-failure, want %d", got, canary)
	}
	firstRow := `[data-testid="refailure-row"]`
	backID := attr(firstRow, "data-entry-id")
	fromID := attr(firstRow, "data-from-id")

	// The original: redriven → failed again, linked to its re-failure and
	// the job; the re-failure links back.
	clickAndLoad(t, ctx, "the redriven entry", firstRow+` [data-testid="refailure-from"]`)
	if got := attr(`[data-testid="entry-outcome"]`, "data-outcome"); got != string(dlqstore.OutcomeFailedAgain) {
		t.Errorf("original's outcome = %q", got)
	}
	if got := text(`[data-testid="entry-outcome"]`); got != "→ failed again" {
		t.Errorf("original's outcome text = %q", got)
	}
	if got := attr(`[data-testid="entry-refailed-job"]`, "href"); got != jobHref(jobID) {
		t.Errorf("original links job %q, want %q", got, jobHref(jobID))
	}
	clickAndLoad(t, ctx, "its re-failure", `[data-testid="entry-refailed-link"]`)
	if loc = location(); !strings.HasSuffix(loc, "/dead-letters/entries/"+backID) {
		t.Errorf("re-failure link went to %q, want entry %s", loc, backID)
	}
	if got := attr(`[data-testid="entry-refailure-of-link"]`, "href"); got != "/dead-letters/entries/"+fromID {
		t.Errorf("re-failure links back to %q, want entry %s", got, fromID)
	}
	if got := attr(`[data-testid="entry-refailure-job"]`, "href"); got != jobHref(jobID) {
		t.Errorf("re-failure links job %q", got)
	}

	// The lists: the group counts each message once, the entries show
	// the outcome.
	open("/dead-letters", card)
	if c, again := text(card+` [data-testid="group-count"]`), text(card+` [data-testid="group-failed-again"]`); c != strconv.Itoa(n) || again != strconv.Itoa(canary) {
		t.Errorf("group count %s, failed again %s; want %d and %d", c, again, n, canary)
	}
	open(fmt.Sprintf("/dead-letters/entries?group=%d", groupID), `[data-testid="entries"]`)
	if got := count(`[data-testid="entry-outcome"][data-outcome="failed_again"]`); got != canary {
		t.Errorf("%d entries listed as redriven → failed again, want %d", got, canary)
	}

	// Re-plan the rest: the 9 not sent and the 3 that came back, with the
	// job's canary.
	open(jobHref(jobID), `[data-testid="job-rest"]`)
	clickAndLoad(t, ctx, "Re-plan the rest", `[data-testid="job-rest"]`)
	if got := text(`[data-testid="plan-selector"]`); !strings.HasPrefix(got, "the rest of job #"+m[1]) {
		t.Errorf("rest selection = %q", got)
	}
	if got := text(`[data-testid="plan-count"]`); got != strconv.Itoa(n) {
		t.Errorf("the rest = %q entries, want %d (9 not sent, 3 back)", got, n)
	}
	if got := attr(`[data-testid="job-canary"]`, "value"); got != strconv.Itoa(canary) {
		t.Errorf("rest canary = %q, want the job's %d", got, canary)
	}

	// The API says the same.
	tess := e.as(t, "tess")
	r := tess.get(t, "/api/v1/dlq/entries/"+fromID)
	var entry struct {
		Outcome    string `json:"outcome"`
		RefailedAs int64  `json:"refailed_as"`
	}
	if err := json.Unmarshal([]byte(r.body), &entry); err != nil || entry.Outcome != "failed_again" || strconv.FormatInt(entry.RefailedAs, 10) != backID {
		t.Errorf("API entry %s = %d %s, want outcome failed_again, refailed_as %s", fromID, r.status, r.body, backID)
	}
	r = tess.get(t, "/api/v1/dlq/jobs/"+m[1])
	var job struct {
		redrive.Job
		Refailures []struct {
			EntryID     int64 `json:"entry_id"`
			RefailureOf int64 `json:"refailure_of"`
			Canary      bool  `json:"canary"`
		} `json:"refailures"`
	}
	if err := json.Unmarshal([]byte(r.body), &job); err != nil || r.status != http.StatusOK || len(job.Refailures) != canary ||
		!job.Refailures[0].Canary || job.Refailures[0].RefailureOf == 0 || job.CanaryWindowSeconds != 60 {
		t.Errorf("API job = %d %s", r.status, r.body)
	}
}
