package web

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"switchyard/browse"
	"switchyard/delivery"
	"switchyard/dlq"
	"switchyard/dlqstore"
	"switchyard/indexer"
	"switchyard/redrive"
	"switchyard/web/templates"
)

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// handleDLQEntry is one dead letter as the service shows it to the
// caller: 404 unless they may view its origin destination in its tenant;
// the payload, key, headers and the envelope's partition key only with
// read_payload, PII (in the payload, the key and the metadata) masked
// without read_pii.
func (s *Server) handleDLQEntry(c *fiber.Ctx) error {
	e, err := s.loadEntry(c)
	if err != nil {
		return s.fail(c, err)
	}
	vm := entryViewOf(e, s.dlq.Outcome(e.Entry))
	vm.FailedSpanID = s.failingAttemptSpan(c, e)
	jv, err := s.entryJobs(c, e)
	if err != nil {
		return s.fail(c, err)
	}
	// The job that sent the message: the last redrive of it the caller
	// may see (its history).
	if vm.Outcome.Text != "" {
		for _, h := range slices.Backward(jv.History) {
			if (h.Action == string(redrive.ActionRedrive) || h.Action == string(redrive.ActionEditRedrive)) && h.State == string(dlqstore.ItemSent) {
				vm.OutcomeJobID, vm.OutcomeJobHref = h.JobID, h.JobHref
				break
			}
		}
	}
	return s.render(c, templates.Page{Title: "Dead letter " + itoa64(e.ID), Area: templates.AreaDeadLetters},
		templates.DeadLetterEntryView(vm, jv))
}

func entryViewOf(e dlq.Entry, o dlqstore.RedriveOutcome) templates.DeadLetterEntry {
	dl := e.DL
	vm := templates.DeadLetterEntry{
		ID: e.ID, Status: string(e.Status), StatusClass: statusClassOf(e.Entry, o), Format: string(dl.Format), StatusReason: e.StatusReason,
		Outcome: outcomeOf(e.Entry, o), RefailureOf: e.RefailureOf, RedriveJob: e.RedriveJob,
		Title:     cmpOr(truncateText(dl.Error.Message, 200), "Dead letter "+itoa64(e.ID)),
		GroupHref: "/dead-letters/entries?group=" + itoa64(e.GroupID),
		Error: templates.DLQError{
			Code: dl.Error.Code, Message: dl.Error.Message, ExceptionType: dl.Error.ExceptionType, Stack: dl.Error.Stack,
		},
		Attempts: dl.Attempts, RedriveCount: dl.RedriveCount,
		FirstFailure: fmtTime(dl.FirstFailureAt), LastFailure: fmtTime(dl.LastFailureAt),
		CorrelationID: correlationOf(dl), TraceID: traceOf(dl),
		EnvelopeError: dl.EnvelopeError,
	}
	if e.RefailureOf != 0 {
		vm.RefailureOfHref = entryHref(e.RefailureOf)
	}
	if e.RedriveJob != 0 {
		vm.RedriveJobHref = jobHref(e.RedriveJob)
	}
	if len(dl.Error.Details) > 0 {
		if b, err := json.MarshalIndent(dl.Error.Details, "", "  "); err == nil {
			vm.Error.Details = string(b)
		}
	}
	if env := dl.Envelope; env != nil {
		vm.Envelope = nonEmpty([]templates.KV{
			{Key: "id", Value: env.ID}, {Key: "type", Value: env.Type}, {Key: "source", Value: env.Source},
			{Key: "occurred_at", Value: env.OccurredAt}, {Key: "correlation_id", Value: env.CorrelationID},
			{Key: "trace_id", Value: env.TraceID}, {Key: "tenant_id", Value: env.Metadata.TenantID},
			{Key: "partition_key", Value: env.Metadata.PartitionKey},
		})
		if slices.Contains(e.Withheld, dlq.WithheldPartitionKey) {
			vm.Envelope = append(vm.Envelope, templates.KV{Key: "partition_key", Withheld: true})
		}
	}
	vm.Origin, vm.OriginHref, vm.OriginLabel = originOf(e.Entry)
	vm.DLQ, vm.DLQHref = dlqLocationOf(e.Entry)
	vm.Flags = flagsOf(e)
	if e.PayloadAllowed {
		vm.PayloadAllowed = true
		vm.Payload, vm.PayloadKind = browse.Pretty(dl.Payload)
		vm.Masked = e.Masked
		vm.Key = printable(dl.Key)
		for _, h := range dl.Headers {
			vm.Headers = append(vm.Headers, templates.HeaderRow{Key: h.Key, Value: printable(h.Value)})
		}
	}
	return vm
}

// outcomeOf is the view of what became of a redriven entry's message:
// "failed again" linking its re-failure, "not seen again", "not back so
// far".
func outcomeOf(e dlqstore.Entry, o dlqstore.RedriveOutcome) templates.Outcome {
	out := templates.Outcome{Kind: string(o), Text: outcomeText(o), Class: outcomeTone(o).Badge(),
		FailedAgain: o == dlqstore.OutcomeFailedAgain, Watching: o == dlqstore.OutcomeWatching}
	if o == dlqstore.OutcomeFailedAgain {
		out.RefailedID, out.Href = e.RefailedAs, entryHref(e.RefailedAs)
	}
	return out
}

// statusClassOf is the badge of an entry's status: a redriven entry whose
// message failed again is no success.
func statusClassOf(e dlqstore.Entry, o dlqstore.RedriveOutcome) string {
	if o == dlqstore.OutcomeFailedAgain {
		return templates.ToneNeutral.Badge()
	}
	return statusTone(e.Status).Badge()
}

func nonEmpty(kvs []templates.KV) []templates.KV {
	return slices.DeleteFunc(kvs, func(kv templates.KV) bool { return kv.Value == "" })
}

// originOf describes where the message failed, with a link to its topic or
// queue page.
func originOf(e dlqstore.Entry) (kvs []templates.KV, href, label string) {
	o := e.DL.Origin
	broker := cmpOr(o.Broker, e.Broker)
	kvs = []templates.KV{{Key: "broker", Value: o.Broker}, {Key: "cluster", Value: o.Cluster}}
	switch {
	case o.Topic != "":
		kvs = append(kvs, templates.KV{Key: "topic", Value: o.Topic})
		if o.Partition >= 0 {
			kvs = append(kvs, templates.KV{Key: "partition", Value: itoa32(o.Partition)})
		}
		if o.Offset >= 0 {
			kvs = append(kvs, templates.KV{Key: "offset", Value: itoa64(o.Offset)})
		}
		cluster := cmpOr(o.Cluster, e.Cluster)
		href, label = topicHref(cluster, o.Topic), "kafka "+cluster+" / "+o.Topic
	case o.Queue != "" || o.Exchange != "":
		kvs = append(kvs, templates.KV{Key: "vhost", Value: o.VHost}, templates.KV{Key: "exchange", Value: o.Exchange},
			templates.KV{Key: "routing_key", Value: o.RoutingKey}, templates.KV{Key: "queue", Value: o.Queue})
		if o.Queue != "" && broker == delivery.BrokerRabbitMQ {
			// RabbitMQ dead-letters within one broker, so the origin queue
			// is on the cluster the console indexed the DLQ from, by the
			// console's name for it (the queue pages'); the service's own
			// name for its broker (o.Cluster) is only shown.
			cluster, vhost := e.Cluster, cmpOr(o.VHost, cmpOr(e.VHost, "/"))
			href, label = queueHref(cluster, vhost, o.Queue), "rabbitmq "+cluster+" "+vhost+" / "+o.Queue
		}
	}
	kvs = append(kvs, templates.KV{Key: "consumer_group", Value: o.ConsumerGroup}, templates.KV{Key: "service", Value: o.Service})
	return nonEmpty(kvs), href, label
}

// dlqLocationOf is where the dead-letter record itself is.
func dlqLocationOf(e dlqstore.Entry) ([]templates.KV, string) {
	kvs := []templates.KV{{Key: "broker", Value: e.Broker}, {Key: "cluster", Value: e.Cluster}}
	if e.Broker == delivery.BrokerRabbitMQ {
		vhost := cmpOr(e.VHost, "/")
		kvs = append(kvs, templates.KV{Key: "vhost", Value: vhost}, templates.KV{Key: "queue", Value: e.Destination},
			templates.KV{Key: "message_id", Value: e.MessageID}, templates.KV{Key: "death_count", Value: strconv.Itoa(e.DeathCount)},
			templates.KV{Key: "indexed_at", Value: fmtTime(e.IndexedAt)})
		return nonEmpty(kvs), queueHref(e.Cluster, vhost, e.Destination)
	}
	kvs = append(kvs, templates.KV{Key: "topic", Value: e.Destination}, templates.KV{Key: "partition", Value: itoa32(e.Partition)},
		templates.KV{Key: "offset", Value: itoa64(e.Offset)}, templates.KV{Key: "indexed_at", Value: fmtTime(e.IndexedAt)})
	return nonEmpty(kvs), topicHref(e.Cluster, e.Destination)
}

// flagsOf explains an entry's flags; a cut payload always says its
// original size and hash.
func flagsOf(e dlq.Entry) []templates.DLQFlag {
	var out []templates.DLQFlag
	size := fmt.Sprintf("original size %s bytes, SHA-256 %s", templates.Exact(int64(e.PayloadSize)), e.PayloadHash)
	for _, f := range e.Flags {
		text := ""
		switch f {
		case indexer.FlagUndecodable:
			text = "the record could not be decoded as a dead letter; raw bytes are kept"
		case indexer.FlagNotUTF8:
			text = "the payload is not UTF-8 text; shown as hex"
		case indexer.FlagInvalidEnvelope:
			text = "the payload is not a valid platform envelope"
		case indexer.FlagTooLarge:
			text = fmt.Sprintf("the payload is too large: the first %s bytes are kept; %s",
				templates.Exact(int64(e.PayloadKept)), size)
		case indexer.FlagNoErrorContext:
			text = "the record carries no error context"
		}
		out = append(out, templates.DLQFlag{Name: f, Text: text})
	}
	if e.Truncated && !slices.Contains(e.Flags, indexer.FlagTooLarge) {
		out = append(out, templates.DLQFlag{Name: "truncated", Text: "the payload was cut; " + size})
	}
	return out
}

// entryJobs is the jobs part of an entry's page: the buttons and the
// edit-and-redrive form the service offers the caller on the entry, and
// the jobs they may see that acted on it.
func (s *Server) entryJobs(c *fiber.Ctx, e dlq.Entry) (templates.EntryJobs, error) {
	caller := callerOf(c)
	a := s.dlq.Actions(caller, &e)
	j := templates.EntryJobs{DLQActions: dlqActionsOf(a), ID: e.ID, Edit: a.Edit, EditNote: a.EditNote}
	if a.Edit {
		j.EditPayload, _ = browse.Pretty(e.DL.Payload)
	}
	if !a.Enabled {
		return j, nil
	}
	hist, err := s.dlq.History(c.UserContext(), caller, e.ID)
	if err != nil {
		return j, err
	}
	now := s.now()
	for _, h := range hist {
		j.History = append(j.History, templates.JobHistoryRow{
			JobID: h.JobID, JobHref: jobHref(h.JobID), Action: string(h.Action), Actor: h.Actor, Reason: h.Reason,
			State: string(h.State), StateClass: itemTone(h.State).Badge(), Target: h.Target, Error: h.Error,
			At: templates.Ago(now, h.At), AtExact: fmtTime(h.At),
		})
	}
	return j, nil
}
