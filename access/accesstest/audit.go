package accesstest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/delivery"
)

// The AuditLog cases.

func appendListExport(t *testing.T, newBackend func(t *testing.T) OpenAudit) {
	c := NewClock()
	a := mustAudit(t, newBackend(t), access.AuditOptions{Now: c.Now})
	ctx := context.Background()
	for i := 0; i < 25; i++ {
		e := access.AuditEvent{Actor: "alice", Method: access.MethodSession, SourceIP: "192.0.2.1", UserAgent: "ua",
			Action: "payload.read", Resource: "kafka:prod/orders", Tenant: "t1", Outcome: access.OutcomeSuccess,
			AffectedIDs: []string{fmt.Sprint(i)}, Details: map[string]any{"n": i, "big": int64(1) << 60}}
		if i%5 == 0 {
			e.Actor, e.Action, e.Outcome, e.Reason = "bob", "redrive", access.OutcomeDenied, "not allowed"
		}
		if err := a.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Second)
	}
	if err := a.Append(ctx, access.AuditEvent{Action: "x", Outcome: "maybe"}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("bad outcome accepted: %v", err)
	}

	// Keyset paging, newest first, covers every row exactly once.
	var ids []int64
	f := access.AuditFilter{Limit: 10}
	for pages := 0; ; pages++ {
		recs, next, err := a.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		if next == 0 {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		f.Before = next
	}
	if len(ids) != 25 || ids[0] != 25 || ids[24] != 1 {
		t.Errorf("paged ids = %v", ids)
	}

	tests := []struct {
		name string
		f    access.AuditFilter
		want int
	}{
		{"actor", access.AuditFilter{Actor: "bob"}, 5},
		{"action", access.AuditFilter{Action: "payload.read"}, 20},
		{"outcome", access.AuditFilter{Outcome: access.OutcomeDenied}, 5},
		{"resource", access.AuditFilter{Resource: "kafka:prod/orders"}, 25},
		{"since/until", access.AuditFilter{Since: NewClock().Now().Add(10 * time.Second), Until: NewClock().Now().Add(15 * time.Second)}, 5},
		{"before", access.AuditFilter{Before: 4}, 3},
		{"none", access.AuditFilter{Actor: "mallory"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, _, err := a.List(ctx, tt.f)
			if err != nil || len(recs) != tt.want {
				t.Errorf("List(%+v) = %d records, %v; want %d", tt.f, len(recs), err, tt.want)
			}
		})
	}
	recs, _, _ := a.List(ctx, access.AuditFilter{Limit: 1})
	r := recs[0]
	if r.Actor != "alice" || r.Tenant != "t1" || r.AffectedIDs[0] != "24" || fmt.Sprint(r.Details["big"]) != "1152921504606846976" || r.Hash == "" || r.PrevHash == "" {
		t.Errorf("record = %+v", r)
	}

	var buf bytes.Buffer
	if err := a.ExportJSONL(ctx, &buf, access.AuditFilter{Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	lines := 0
	for sc.Scan() {
		var rec access.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d does not parse: %v", lines+1, err)
		}
		if rec.Actor != "bob" || rec.ID == 0 || rec.Hash == "" || rec.Time.IsZero() {
			t.Errorf("exported %+v", rec)
		}
		lines++
	}
	if lines != 5 {
		t.Errorf("%d exported lines, want 5", lines)
	}

	res, err := a.Verify(ctx)
	if err != nil || !res.OK || res.Rows != 25 {
		t.Errorf("Verify = %+v, %v", res, err)
	}
}

// Two Audit values (as two processes would have) appending at once never
// fork the chain.
func concurrentAppends(t *testing.T, newBackend func(t *testing.T) OpenAudit) {
	open := newBackend(t)
	a1 := mustAudit(t, open, access.AuditOptions{})
	a2 := mustAudit(t, open, access.AuditOptions{})
	ctx := context.Background()
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		a := a1
		if i%2 == 1 {
			a = a2
		}
		go func() {
			errs <- a.Append(ctx, access.AuditEvent{Actor: "x", Action: "api.mutation", Outcome: access.OutcomeSuccess})
		}()
	}
	for i := 0; i < 40; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if res, err := a1.Verify(ctx); err != nil || !res.OK || res.Rows != 40 {
		t.Errorf("Verify = %+v, %v", res, err)
	}
}

// An unkeyed Audit cannot extend a keyed chain, nor one with another key;
// CheckKey says so at start, naming the key id.
func refusesAnotherKey(t *testing.T, newBackend func(t *testing.T) OpenAudit) {
	ctx := context.Background()
	open := newBackend(t)
	keyed := mustAudit(t, open, access.AuditOptions{Key: TestKey})
	AppendN(t, keyed, 1)
	other := mustAudit(t, open, access.AuditOptions{Key: []byte("another key, also thirty-two bytes")})
	plain := mustAudit(t, open, access.AuditOptions{})
	for name, a := range map[string]access.AuditLog{"no key": plain, "another key": other} {
		if err := a.CheckKey(ctx); delivery.ErrorCode(err) != delivery.EINVALID || !strings.Contains(err.Error(), keyed.KeyID()) {
			t.Errorf("%s: CheckKey = %v, want EINVALID naming key id %s", name, err, keyed.KeyID())
		}
		if err := a.Append(ctx, access.AuditEvent{Action: "login", Outcome: access.OutcomeSuccess}); err == nil {
			t.Errorf("%s: appended to a keyed chain", name)
		}
	}
	if err := keyed.CheckKey(ctx); err != nil {
		t.Errorf("same key: %v", err)
	}
	if res, _ := keyed.Verify(ctx); !res.OK || res.Rows != 1 {
		t.Errorf("chain after refused appends: %+v", res)
	}
	if _, err := open(t, access.AuditOptions{Key: []byte("short")}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("short key accepted: %v", err)
	}
}
