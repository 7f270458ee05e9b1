package indexer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/dlqstore"
)

const fixtureDir = "../delivery/testdata/deadletter"

// loadFixture returns the raw message of name.input.json and the decoded
// dead letter its name.golden.json pins.
func loadFixture(t *testing.T, name string) (delivery.Message, delivery.DeadLetter) {
	t.Helper()
	m := deliverytest.LoadMessage(t, filepath.Join(fixtureDir, name+".input.json"))
	graw, err := os.ReadFile(filepath.Join(fixtureDir, name+".golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want delivery.DeadLetter
	if err := json.Unmarshal(graw, &want); err != nil {
		t.Fatalf("%s golden: %v", name, err)
	}
	return m, want
}

// checkEntry compares what an operator reads off an entry with the golden
// dead letter: origin, error, attempts, failure times, tenant, event type,
// fingerprint, and the record's bytes.
func checkEntry(t *testing.T, got dlqstore.Entry, want delivery.DeadLetter, body []byte) {
	t.Helper()
	dl := got.DL
	if dl.Format != want.Format {
		t.Errorf("format = %s, want %s", dl.Format, want.Format)
	}
	if dl.Origin != want.Origin {
		t.Errorf("origin = %+v\n want %+v", dl.Origin, want.Origin)
	}
	if dl.Error.Code != want.Error.Code || dl.Error.Message != want.Error.Message ||
		dl.Error.ExceptionType != want.Error.ExceptionType || dl.Error.Stack != want.Error.Stack {
		t.Errorf("error = %+v\n want %+v", dl.Error, want.Error)
	}
	if !reflect.DeepEqual(dl.Error.Details, want.Error.Details) {
		t.Errorf("error details = %v, want %v", dl.Error.Details, want.Error.Details)
	}
	if got.ErrorCode != want.Error.Code {
		t.Errorf("entry error code = %q, want %q", got.ErrorCode, want.Error.Code)
	}
	if dl.Attempts != want.Attempts {
		t.Errorf("attempts = %d, want %d", dl.Attempts, want.Attempts)
	}
	if !dl.FirstFailureAt.Equal(want.FirstFailureAt) || !dl.LastFailureAt.Equal(want.LastFailureAt) {
		t.Errorf("failures = %v .. %v, want %v .. %v", dl.FirstFailureAt, dl.LastFailureAt, want.FirstFailureAt, want.LastFailureAt)
	}
	var tenant, typ string
	if want.Envelope != nil {
		tenant, typ = want.Envelope.Metadata.TenantID, want.Envelope.Type
	}
	if got.Tenant != tenant || got.EventType != typ {
		t.Errorf("tenant, event type = %q, %q, want %q, %q", got.Tenant, got.EventType, tenant, typ)
	}
	if fp := delivery.Fingerprint(want); got.Fingerprint != fp {
		t.Errorf("fingerprint = %s, want %s", got.Fingerprint, fp)
	}
	if !bytes.Equal(dl.Payload, body) {
		t.Errorf("payload = %q, want the record's %q", dl.Payload, body)
	}
}
