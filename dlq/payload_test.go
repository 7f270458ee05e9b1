package dlq_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"switchyard/access"
	"switchyard/dlq"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// An entry's message as each caller may see it: withheld without
// read_payload, masked without read_pii (the payload's customer and
// partition key, the key), whole with both; the envelope never carries the
// payload a second time, unmasked.
func TestEntryMasksPayloadKeyAndMetadata(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	id := w.ids[0] // orders of t1
	stored, err := w.store.Entry(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	e, err := w.svc.Entry(ctx, vera, id)
	if err != nil {
		t.Fatal(err)
	}
	if e.PayloadAllowed || e.DL.Payload != nil || e.DL.Key != nil || e.DL.Envelope.Metadata.PartitionKey != "" ||
		e.DL.Envelope.Metadata.TenantID != "t1" || e.DL.Envelope.Payload != nil ||
		!slices.Equal(e.Withheld, []string{dlq.WithheldPayload, dlq.WithheldKey, dlq.WithheldHeaders, dlq.WithheldPartitionKey}) {
		t.Errorf("vera's entry = allowed %v payload %q key %q envelope %+v withheld %v", e.PayloadAllowed, e.DL.Payload, e.DL.Key, e.DL.Envelope, e.Withheld)
	}
	if e.PayloadKept != len(stored.DL.Payload) {
		t.Errorf("vera's entry keeps %d payload bytes, want %d", e.PayloadKept, len(stored.DL.Payload))
	}

	e, err = w.svc.Entry(ctx, olga, id)
	if err != nil {
		t.Fatal(err)
	}
	if !e.PayloadAllowed || e.Masked != 3 || e.Withheld != nil || string(e.DL.Key) != access.PIIMask ||
		e.DL.Envelope.Metadata.PartitionKey != access.PIIMask || e.DL.Envelope.Payload != nil ||
		bytes.Contains(e.DL.Payload, []byte(customer)) || bytes.Contains(e.DL.Payload, []byte(partKey)) ||
		!bytes.Contains(e.DL.Payload, []byte("ord-1")) {
		t.Errorf("olga's entry = masked %d key %q envelope %+v payload %s", e.Masked, e.DL.Key, e.DL.Envelope, e.DL.Payload)
	}
	if e.PayloadKept != len(stored.DL.Payload) {
		t.Errorf("olga's entry keeps %d payload bytes, want %d", e.PayloadKept, len(stored.DL.Payload))
	}

	e, err = w.svc.Entry(ctx, pia, id)
	if err != nil {
		t.Fatal(err)
	}
	if !e.PayloadAllowed || e.Masked != 0 || !bytes.Equal(e.DL.Payload, stored.DL.Payload) || string(e.DL.Key) != partKey ||
		e.DL.Envelope.Metadata.PartitionKey != partKey {
		t.Errorf("pia's entry = masked %d key %q envelope %+v", e.Masked, e.DL.Key, e.DL.Envelope)
	}
}

// Every payload shown is audited as payload.read with who, where from, the
// entry and how much was masked; a view without the payload is not a read,
// and a console that does not audit reads records none.
func TestPayloadReadsAreAudited(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	id := w.ids[0]
	if _, err := w.svc.Entry(ctx, vera, id); err != nil {
		t.Fatal(err)
	}
	if recs := w.records(t, "payload.read"); len(recs) != 0 {
		t.Fatalf("vera's view without the payload recorded %+v", recs)
	}
	if _, err := w.svc.Entry(ctx, olga, id); err != nil {
		t.Fatal(err)
	}
	recs := w.records(t, "payload.read")
	if len(recs) != 1 {
		t.Fatalf("payload.read records = %+v, want olga's", recs)
	}
	r := recs[0]
	if r.Actor != "olga" || r.Method != access.MethodSession || r.SourceIP != "192.0.2.7" || r.UserAgent != "dlq-test" ||
		r.Resource != "kafka:main/orders" || r.Tenant != "t1" || r.Outcome != access.OutcomeSuccess ||
		!slices.Equal(r.AffectedIDs, []string{itoa(id)}) || r.Details["route"] != "test.route" ||
		fmt.Sprint(r.Details["masked_fields"]) != "3" || fmt.Sprint(r.Details["dead_letter"]) != itoa(id) {
		t.Errorf("olga's payload.read = %+v", r)
	}

	o := w.opts
	o.AuditReads = false
	if _, err := w.service(t, o).Entry(ctx, pia, id); err != nil {
		t.Fatal(err)
	}
	if recs := w.records(t, "payload.read"); len(recs) != 1 {
		t.Errorf("a read without AuditReads was recorded: %+v", recs)
	}
}
