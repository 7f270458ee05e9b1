package tracing

import (
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
)

// FuzzDecodeJSON feeds arbitrary bodies to the OTLP/JSON path a receiver
// exposes to anyone with an ingest token: decoding may refuse a body, but
// nothing may panic, and every span that comes out has ids a page can
// find it by. Run with: go test -tags sqlite_fts5 -fuzz FuzzDecodeJSON ./tracing/
func FuzzDecodeJSON(f *testing.F) {
	full, err := protojson.Marshal(otlpRequest(consumerSpan()))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(full),
		`{}`,
		`{"resourceSpans":[{"scopeSpans":[{"spans":[{}]}]}]}`,
		`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}}]},"scopeSpans":[{"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"zz","name":"n","kind":9,"startTimeUnixNano":"18446744073709551615","endTimeUnixNano":"1","status":{"code":7},"links":[{"traceId":"00000000000000000000000000000000"}]}]}]}]}`,
		`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"AAAAAAAAAAAAAAAAAAAAAA==","spanId":"AAAAAAAAAAA=","attributes":[{"key":"a","value":{"arrayValue":{"values":[{"kvlistValue":{"values":[{"key":"b","value":{"doubleValue":"NaN"}}]}}]}}}]}]}]}]}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body, true)
		if err != nil {
			return
		}
		for _, sp := range FromOTLP(req, Limits{MaxAttrs: 4, MaxAttrLen: 16, MaxEvents: 2, MaxLinks: 2}, now) {
			if sp.TraceID.IsZero() || sp.SpanID.IsZero() {
				t.Fatalf("span %q without ids", sp.Name)
			}
			if sp.Service == "" {
				t.Fatalf("span %q without a service", sp.Name)
			}
		}
	})
}
