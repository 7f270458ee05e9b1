package demo

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"switchyard/delivery"
)

// fault is billingFault as the consumer sees it: a panic is a
// HANDLER_PANIC error.
func fault(id string, attempt int, age time.Duration, fixes *Fixes) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = delivery.Errorf(delivery.CodeHandlerPanic, "handler panicked: %v", p)
		}
	}()
	return billingFault(id, 1, attempt, age, time.Minute, fixes)
}

// orderWith finds an order id whose bucket meets the fault code, and for
// UPSTREAM_TIMEOUT whether it is a blip a retry gets past.
func orderWith(t *testing.T, code string, blip bool) string {
	t.Helper()
	for i := range 100000 {
		id := fmt.Sprintf("order-%d", i)
		if delivery.ErrorCode(fault(id, 1, 0, nil)) != code {
			continue
		}
		if code == CodeUpstreamTimeout && (fault(id, 2, 0, nil) == nil) != blip {
			continue
		}
		return id
	}
	t.Fatalf("no order id meets %s", code)
	return ""
}

// TestBillingFaults: which orders fail is the id's business, whether they
// still fail is time's and the fixes': a gateway timeout outlasts the
// retries and heals after the outage, a declined card fails every redrive
// until its fix is deployed.
func TestBillingFaults(t *testing.T) {
	fixes, err := OpenFixes(filepath.Join(t.TempDir(), "fixes.json"))
	if err != nil {
		t.Fatal(err)
	}
	const outage = time.Minute // as fault's
	timeout, blip := orderWith(t, CodeUpstreamTimeout, false), orderWith(t, CodeUpstreamTimeout, true)
	declined, currency := orderWith(t, CodePaymentDeclined, false), orderWith(t, CodeCurrencyUnsupported, false)
	tests := []struct {
		name    string
		id      string
		attempt int
		age     time.Duration
		fixed   []string
		want    string // error code, "" for success
	}{
		{"timeout on the first attempt", timeout, 1, 0, nil, CodeUpstreamTimeout},
		{"timeout outlasts the retries", timeout, 3, 2 * time.Second, nil, CodeUpstreamTimeout},
		{"timeout just before the outage ends", timeout, 1, outage - time.Millisecond, nil, CodeUpstreamTimeout},
		{"timeout redriven after the outage", timeout, 1, outage, nil, ""},
		{"a blip fails the first attempt", blip, 1, 0, nil, CodeUpstreamTimeout},
		{"a blip passes on the retry", blip, 2, 0, nil, ""},
		{"timeout with the gateway fixed", timeout, 1, 0, []string{CodeUpstreamTimeout}, ""},
		{"declined", declined, 1, 0, nil, CodePaymentDeclined},
		{"declined redriven an hour later", declined, 1, time.Hour, nil, CodePaymentDeclined},
		{"declined with another code's fix", declined, 1, time.Hour, []string{CodeUpstreamTimeout, CodeCurrencyUnsupported}, CodePaymentDeclined},
		{"declined after its fix", declined, 1, time.Hour, []string{CodePaymentDeclined}, ""},
		{"currency redriven later", currency, 1, time.Hour, nil, CodeCurrencyUnsupported},
		{"currency after its fix", currency, 1, time.Hour, []string{CodeCurrencyUnsupported}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range fixes.Codes() {
				if err := fixes.Fix(c, slices.Contains(tt.fixed, c)); err != nil {
					t.Fatal(err)
				}
			}
			err := fault(tt.id, tt.attempt, tt.age, fixes)
			if got := delivery.ErrorCode(err); (err == nil) != (tt.want == "") || (err != nil && got != tt.want) {
				t.Errorf("billingFault = %v, want %q", err, tt.want)
			}
			if err != nil && delivery.IsPermanent(err) != (tt.want != CodeUpstreamTimeout) {
				t.Errorf("%s permanent = %v: a timeout must be retried, the others not", tt.want, delivery.IsPermanent(err))
			}
		})
	}
}

// The panic of billing's bug is a real one, and its fix stops it.
func TestBillingBugAndItsFix(t *testing.T) {
	fixes, err := OpenFixes(filepath.Join(t.TempDir(), "fixes.json"))
	if err != nil {
		t.Fatal(err)
	}
	id := orderWith(t, delivery.CodeHandlerPanic, false)
	if err := fault(id, 1, time.Hour, fixes); delivery.ErrorCode(err) != delivery.CodeHandlerPanic {
		t.Errorf("order %s redriven an hour later: %v, want the panic again", id, err)
	}
	if err := fixes.Fix("handler_panic", true); err != nil {
		t.Fatal(err)
	}
	if err := fault(id, 1, 0, fixes); err != nil {
		t.Errorf("order %s after the bug's fix: %v", id, err)
	}
}

// Fixes keep across a restart; a code without a fix is EINVALID and
// changes nothing.
func TestFixesPersistAndRefuseUnknownCodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo", "fixes.json")
	f, err := OpenFixes(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Fixed(); len(got) != 0 {
		t.Fatalf("a fresh demo has fixes %v", got)
	}
	for _, c := range []string{"upstream_timeout", CodePaymentDeclined, CodeSMTPRejected} {
		if err := f.Fix(c, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Fix(CodeSMTPRejected, false); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"NO_SUCH_CODE", delivery.CodeValidationFailed, ""} {
		if err := f.Fix(c, true); delivery.ErrorCode(err) != delivery.EINVALID {
			t.Errorf("Fix(%q) = %v, want EINVALID", c, err)
		}
	}
	again, err := OpenFixes(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{CodePaymentDeclined, CodeUpstreamTimeout}
	if got := again.Fixed(); !slices.Equal(got, want) {
		t.Errorf("fixes after a restart = %v, want %v", got, want)
	}
	if !again.IsFixed(CodePaymentDeclined) || again.IsFixed(CodeSMTPRejected) {
		t.Errorf("IsFixed after a restart disagrees with Fixed %v", again.Fixed())
	}
}
