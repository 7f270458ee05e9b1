package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/delivery/rabbitmq"
	"switchyard/demo"
	"switchyard/dlqstore"
	"switchyard/indexer"
)

// maxCustodyLines is how many custody queues the banner lists; the log
// names every one ("taking custody of dlq queue").
const maxCustodyLines = 20

// rabbitCustody is what the banner says about the RabbitMQ queues the
// dead-letter index consumes. Indexing a RabbitMQ DLQ takes its messages
// out of the queue, so a console must say which queues it took.
type rabbitCustody struct {
	url     string // redacted
	vhosts  string // as the banner names them
	note    string // why no queue is consumed, when no indexer runs
	indexer *indexer.RabbitIndexer
	pending bool // the first discovery had not ended by the banner
}

// startRabbitIndexer sets up the RabbitMQ dead-letter indexer in the vhosts
// of rabbitmq.vhosts (default: the URL's vhost alone).
//
// In demo mode without a RabbitMQ the user configured, the broker is
// whatever answers on 127.0.0.1, maybe shared with other work: the indexer
// then takes the demo's own dead-letter queue and the queues named in
// dlq.queues, by name, and nothing a pattern or a dead-letter binding
// would find there.
func (m *Main) startRabbitIndexer(ctx, runCtx context.Context, rabbitURL string, rabbitSources []*collector.RabbitSource, store dlqstore.IndexStore, metrics *indexer.Metrics) error {
	c := m.Config
	vhosts, all := c.RabbitMQ.vhosts(rabbitURL)
	m.rabbit = rabbitCustody{url: redactURL(rabbitURL), vhosts: "vhost " + strings.Join(vhosts, ", ")}
	if all {
		vhosts = []string{"*"}
		m.rabbit.vhosts = "every vhost"
	}
	opts := indexer.RabbitOptions{
		Cluster: "rabbitmq", URL: rabbitURL, VHosts: vhosts, Queues: c.DLQ.Queues, Patterns: c.DLQ.Patterns,
		Store: store, PayloadCap: c.DLQ.RabbitPayloadCap, Metrics: metrics, Logger: m.logger.With("component", "indexer"), // the indexer adds broker and cluster
	}
	if len(rabbitSources) > 0 {
		opts.Management = rabbitSources[0]
	}
	if m.DemoMode && c.RabbitMQ.URL == "" {
		if err := rabbitmq.Ping(ctx, rabbitURL, 3*time.Second); err != nil {
			m.rabbit.note = "none: RabbitMQ does not answer, so the demo's notification service is off"
			return nil
		}
		opts.Queues = append([]string{delivery.DLQQueue(demo.QueueNotify)}, c.DLQ.Queues...)
		opts.QueuesOnly = true
	}
	if opts.Management == nil && len(opts.Queues) == 0 {
		m.rabbit.note = "none: DLQ queues are found through the management API (rabbitmq.management_url) or named in dlq.queues"
		return nil
	}
	ri, err := indexer.NewRabbitIndexer(opts)
	if err != nil {
		return err
	}
	m.rabbit.indexer = ri
	m.indexers = append(m.indexers, ri)
	m.goRun(runCtx, "indexer rabbitmq", ri.Run)
	return nil
}

// awaitCustody waits, at most the startup timeout, for the RabbitMQ
// indexer's first discovery, so that the banner can name the queues.
func (m *Main) awaitCustody(ctx context.Context) {
	if m.rabbit.indexer == nil {
		return
	}
	t := time.NewTimer(time.Duration(m.Config.StartupTimeout))
	defer t.Stop()
	select {
	case <-m.rabbit.indexer.Discovered():
	case <-t.C:
		m.rabbit.pending = true
	case <-ctx.Done():
		m.rabbit.pending = true
	}
}

// print writes the banner's RabbitMQ lines.
func (r rabbitCustody) print(w io.Writer) {
	if r.url == "" {
		return
	}
	fmt.Fprintf(w, "  RabbitMQ:  %s (%s)\n", r.url, r.vhosts)
	const indent = "             "
	switch {
	case r.note != "":
		fmt.Fprintf(w, "  Custody:   %s\n", r.note)
		return
	case r.pending:
		fmt.Fprintln(w, "  Custody:   DLQ queue discovery is still running; the log names each queue as the index takes custody of it (consumes it)")
		return
	}
	qs, err := r.indexer.Custody()
	if err != nil {
		fmt.Fprintf(w, "  Custody:   DLQ queue discovery failed (%v); retrying\n", err)
	}
	if len(qs) == 0 {
		fmt.Fprintln(w, "  Custody:   no DLQ queue found yet; one that appears is taken into custody (consumed) then")
		return
	}
	fmt.Fprintln(w, "  Custody:   the dead-letter index consumes these queues (their messages move into the index):")
	for i, q := range qs {
		if i == maxCustodyLines {
			fmt.Fprintf(w, "%s… and %d more (the log names each)\n", indent, len(qs)-i)
			break
		}
		fmt.Fprintf(w, "%s%s\n", indent, q)
	}
}
