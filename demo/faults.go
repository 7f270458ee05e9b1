package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"switchyard/delivery"
)

// Error codes the demo's services raise, besides the delivery core's own
// (delivery.CodeHandlerPanic for billing's bug, and the poison pills'
// delivery.CodeUndecodable and delivery.CodeValidationFailed).
const (
	CodePaymentDeclined     = "PAYMENT_DECLINED"
	CodeUpstreamTimeout     = "UPSTREAM_TIMEOUT"
	CodeCurrencyUnsupported = "CURRENCY_UNSUPPORTED"
	CodeSMTPRejected        = "SMTP_REJECTED"
	CodeSMTPTimeout         = "SMTP_TIMEOUT"
)

// fixable are the codes whose fix can be deployed (Fixes.Fix), in the
// order they are listed. A poison pill is not among them: the record
// itself is broken, and no deploy of a consumer mends it.
var fixable = []string{
	CodePaymentDeclined, CodeUpstreamTimeout, CodeCurrencyUnsupported, delivery.CodeHandlerPanic,
	CodeSMTPRejected, CodeSMTPTimeout,
}

// Fixes is the demo's "deploy the fix" switch: the error codes whose fix
// is deployed, which the services then no longer fail with, so that a
// redrive of their dead letters succeeds. It is kept in a file in the data
// dir, so a restarted demo keeps its fixes. Safe for concurrent use.
type Fixes struct {
	path  string
	mu    sync.RWMutex
	fixed map[string]bool
}

// OpenFixes reads the fixes kept at path; a missing file is no fix
// deployed.
func OpenFixes(path string) (*Fixes, error) {
	f := &Fixes{path: path, fixed: map[string]bool{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("demo fixes: %w", err)
	}
	var codes []string
	if err := json.Unmarshal(b, &codes); err != nil {
		return nil, fmt.Errorf("demo fixes %s: %w", path, err)
	}
	for _, c := range codes {
		if slices.Contains(fixable, c) {
			f.fixed[c] = true
		}
	}
	return f, nil
}

// Codes returns every code a fix can be deployed for.
func (f *Fixes) Codes() []string { return slices.Clone(fixable) }

// Fixed returns the codes whose fix is deployed, sorted.
func (f *Fixes) Fixed() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]string, 0, len(f.fixed))
	for c := range f.fixed {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// IsFixed reports whether code's fix is deployed. A nil *Fixes has none.
func (f *Fixes) IsFixed(code string) bool {
	if f == nil {
		return false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.fixed[code]
}

// Fix deploys the fix for code (fixed) or takes it back (!fixed), and
// keeps the result in the file. A code is matched case-insensitively.
// EINVALID: a code no fix exists for.
func (f *Fixes) Fix(code string, fixed bool) error {
	i := slices.IndexFunc(fixable, func(c string) bool { return strings.EqualFold(c, strings.TrimSpace(code)) })
	if i < 0 {
		return delivery.Errorf(delivery.EINVALID, "no fix to deploy for %q: the demo's fixable codes are %s", code, strings.Join(fixable, ", "))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.fixed[fixable[i]]
	if fixed {
		f.fixed[fixable[i]] = true
	} else {
		delete(f.fixed, fixable[i])
	}
	if err := f.saveLocked(); err != nil {
		if was {
			f.fixed[fixable[i]] = true
		} else {
			delete(f.fixed, fixable[i])
		}
		return err
	}
	return nil
}

// saveLocked writes the fixed codes through a temporary file and a
// rename, so a crash leaves the old list or the new one.
func (f *Fixes) saveLocked() error {
	codes := make([]string, 0, len(f.fixed))
	for _, c := range fixable {
		if f.fixed[c] {
			codes = append(codes, c)
		}
	}
	b, _ := json.Marshal(codes)
	if err := os.MkdirAll(filepath.Dir(f.path), 0o750); err != nil {
		return fmt.Errorf("save demo fixes: %w", err)
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save demo fixes: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fmt.Errorf("save demo fixes: %w", err)
	}
	return nil
}
