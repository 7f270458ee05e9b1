package access_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/access/accesstest"
	"switchyard/delivery"
	"switchyard/internal/testenv"
)

func TestAuditTamperDetection(t *testing.T) {
	db := mustDB(t)
	c := accesstest.NewClock()
	a, _ := access.NewAudit(db, c.Now)
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		if err := a.Append(ctx, access.AuditEvent{Actor: "alice", Action: "redrive", Outcome: access.OutcomeSuccess,
			Details: map[string]any{"count": i}}); err != nil {
			t.Fatal(err)
		}
	}
	// The triggers refuse edits and deletions.
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'mallory' WHERE id = 3`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("UPDATE allowed: %v", err)
	}
	if _, err := db.Exec(`DELETE FROM audit_log WHERE id = 3`); err == nil {
		t.Fatal("DELETE allowed")
	}

	// Someone with write access drops the triggers first.
	if _, err := db.Exec(`DROP TRIGGER audit_log_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET details = '{"count":99}' WHERE id = 4`); err != nil {
		t.Fatal(err)
	}
	res, err := a.Verify(ctx)
	if err != nil || res.OK || res.BrokenAt != 4 || !strings.Contains(res.Problem, "modified") {
		t.Errorf("after editing row 4: %+v, %v", res, err)
	}
	db.Exec(`UPDATE audit_log SET details = '{"count":3}' WHERE id = 4`) // restore
	if res, _ := a.Verify(ctx); !res.OK {
		t.Fatalf("restored chain does not verify: %+v", res)
	}

	// Swapping two rows' contents (reordering) breaks the chain.
	db.Exec(`UPDATE audit_log SET actor = 'bob' WHERE id = 2`)
	if res, _ := a.Verify(ctx); res.OK || res.BrokenAt != 2 {
		t.Errorf("after editing the actor of row 2: %+v", res)
	}
	db.Exec(`UPDATE audit_log SET actor = 'alice' WHERE id = 2`)

	if _, err := db.Exec(`DROP TRIGGER audit_log_no_delete`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM audit_log WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	res, err = a.Verify(ctx)
	if err != nil || res.OK || res.BrokenAt != 4 || res.Rows != 3 {
		t.Errorf("after deleting row 3: %+v, %v", res, err)
	}
	// Renumbering to hide the gap still breaks the prev_hash link.
	db.Exec(`UPDATE audit_log SET id = id - 1 WHERE id > 3`)
	if res, _ := a.Verify(ctx); res.OK || res.BrokenAt != 3 {
		t.Errorf("after renumbering: %+v", res)
	}
}

// rewriteFrom does what someone with write access to console.db and the
// documented hash format, but without the audit key, would do after
// editing a row: recompute the plain SHA-256 chain from row `from` to the
// end (relinking every prev_hash). With markUnkeyed the rows also claim
// the plain scheme. The update trigger must be gone already.
func rewriteFrom(t *testing.T, db *sql.DB, from int64, markUnkeyed bool) {
	t.Helper()
	var prev string
	if err := db.QueryRow(`SELECT hash FROM audit_log WHERE id = ?`, from-1).Scan(&prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	type canon struct {
		ID          int64           `json:"id"`
		Time        string          `json:"time"`
		Actor       string          `json:"actor"`
		Method      string          `json:"method"`
		SourceIP    string          `json:"source_ip"`
		UserAgent   string          `json:"user_agent"`
		Action      string          `json:"action"`
		Resource    string          `json:"resource"`
		Tenant      string          `json:"tenant"`
		Reason      string          `json:"reason"`
		AffectedIDs json.RawMessage `json:"affected_ids"`
		Outcome     string          `json:"outcome"`
		Details     json.RawMessage `json:"details"`
	}
	rows, err := db.Query(`SELECT id, time, actor, method, source_ip, user_agent, action, resource, tenant,
	reason, affected_ids, outcome, details FROM audit_log WHERE id >= ? ORDER BY id`, from)
	if err != nil {
		t.Fatal(err)
	}
	var all []canon
	for rows.Next() {
		var c canon
		var ids, details string
		if err := rows.Scan(&c.ID, &c.Time, &c.Actor, &c.Method, &c.SourceIP, &c.UserAgent, &c.Action, &c.Resource,
			&c.Tenant, &c.Reason, &ids, &c.Outcome, &details); err != nil {
			t.Fatal(err)
		}
		c.AffectedIDs, c.Details = json.RawMessage(ids), json.RawMessage(details)
		all = append(all, c)
	}
	rows.Close()
	for _, c := range all {
		b, _ := json.Marshal(c)
		sum := sha256.Sum256([]byte(prev + "\n" + string(b)))
		h := hex.EncodeToString(sum[:])
		q := `UPDATE audit_log SET prev_hash = ?, hash = ? WHERE id = ?`
		if markUnkeyed {
			q = `UPDATE audit_log SET prev_hash = ?, hash = ?, hash_scheme = 'sha256' WHERE id = ?`
		}
		if _, err := db.Exec(q, prev, h, c.ID); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
}

// With an audit key, someone who can write the database but has no key
// cannot make an edit fit: after dropping the trigger, editing row 3 and
// recomputing every later hash, Verify with the key names row 3 — whether
// or not the rewritten rows pretend to be unkeyed. Without the key, Verify
// refuses to call the keyed rows intact.
func TestAuditKeyedChainDetectsRecomputedHashes(t *testing.T) {
	ctx := context.Background()
	for _, markUnkeyed := range []bool{false, true} {
		t.Run(fmt.Sprintf("marked unkeyed %v", markUnkeyed), func(t *testing.T) {
			db := mustDB(t)
			// Two rows from before the key existed, then six keyed ones.
			plain, _ := access.NewAudit(db, nil)
			accesstest.AppendN(t, plain, 2)
			keyed, err := access.NewAuditWith(db, access.AuditOptions{Key: accesstest.TestKey})
			if err != nil {
				t.Fatal(err)
			}
			accesstest.AppendN(t, keyed, 6)
			res, err := keyed.Verify(ctx)
			if err != nil || !res.OK || res.Unkeyed != 2 || res.Keyed != 6 || res.KeyID != keyed.KeyID() || res.Head.Seq != 8 {
				t.Fatalf("intact chain: %+v, %v; want OK with 2 unkeyed and 6 keyed rows", res, err)
			}
			if _, err := db.Exec(`DROP TRIGGER audit_log_no_update`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`UPDATE audit_log SET details = '{"count":99}' WHERE id = 5`); err != nil {
				t.Fatal(err)
			}
			rewriteFrom(t, db, 5, markUnkeyed)
			res, err = keyed.Verify(ctx)
			if err != nil || res.OK || res.BrokenAt != 5 {
				t.Errorf("after the rewrite, with the key: %+v, %v; want broken at row 5", res, err)
			}
			// Without the key (the plain Audit), the keyed rows are not
			// declared intact either.
			res, err = plain.Verify(ctx)
			if err != nil || res.OK {
				t.Errorf("after the rewrite, without the key: %+v, %v; want not OK", res, err)
			}
		})
	}
}

// Without a key in play, a rewrite of the whole chain is consistent and
// Verify alone cannot see it; an anchor taken before it can. Rows cut off
// the end (or an older copy of the file) fail against a newer anchor.
func TestAuditAnchorsCatchAConsistentRewrite(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	a, _ := access.NewAudit(db, nil)
	accesstest.AppendN(t, a, 5)
	anchor, err := a.Head(ctx)
	if err != nil || anchor.Seq != 5 {
		t.Fatalf("head = %+v, %v", anchor, err)
	}
	accesstest.AppendN(t, a, 3)
	if _, err := db.Exec(`DROP TRIGGER audit_log_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'mallory' WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	rewriteFrom(t, db, 2, false)
	if res, _ := a.Verify(ctx); !res.OK {
		t.Fatalf("the rewrite is not consistent (the test's attacker is wrong): %+v", res)
	}
	res, err := a.Verify(ctx, anchor)
	if err != nil || res.OK || res.BrokenAt != 5 || !strings.Contains(res.Problem, "anchor 5:"+anchor.Hash) {
		t.Errorf("rewritten chain against the anchor %s: %+v, %v; want broken at row 5", anchor, res, err)
	}

	// Cutting the newest rows off: an anchor of row 8 names a row that is gone.
	db2 := mustDB(t)
	b, _ := access.NewAudit(db2, nil)
	accesstest.AppendN(t, b, 8)
	newest, _ := b.Head(ctx)
	if _, err := db2.Exec(`DROP TRIGGER audit_log_no_delete`); err != nil {
		t.Fatal(err)
	}
	if _, err := db2.Exec(`DELETE FROM audit_log WHERE id > 6`); err != nil {
		t.Fatal(err)
	}
	if res, _ := b.Verify(ctx); !res.OK {
		t.Fatalf("truncation is invisible to the chain alone, yet: %+v", res)
	}
	res, err = b.Verify(ctx, newest)
	if err != nil || res.OK || res.BrokenAt != 7 || !strings.Contains(res.Problem, "ends at row 6") {
		t.Errorf("truncated chain against the anchor %s: %+v, %v; want broken at row 7", newest, res, err)
	}
}

// An intact keyed chain verifies with the key and every anchor the
// Anchorer wrote, read back from its file and from its log lines; the
// Anchorer writes only when the head moved (or when asked to).
func TestAuditAnchorerAndIntactChain(t *testing.T) {
	ctx := context.Background()
	db := mustDB(t)
	a, _ := access.NewAuditWith(db, access.AuditOptions{Key: accesstest.TestKey})
	var logs bytes.Buffer
	file := filepath.Join(t.TempDir(), "anchors.jsonl")
	x, err := access.NewAnchorer(access.AnchorOptions{Audit: a, File: file, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := x.Anchor(ctx, false); err != nil || h.Seq != 0 || logs.Len() != 0 {
		t.Fatalf("empty log anchored: %+v, %v, %q", h, err, logs.String())
	}
	for range 3 {
		accesstest.AppendN(t, a, 4)
		if _, err := x.Anchor(ctx, false); err != nil {
			t.Fatal(err)
		}
		if _, err := x.Anchor(ctx, false); err != nil { // unchanged: not written again
			t.Fatal(err)
		}
	}
	if _, err := x.Anchor(ctx, true); err != nil { // shutdown: written in any case
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fromFile, err := access.ReadAnchors(f)
	if err != nil {
		t.Fatal(err)
	}
	fromLog, err := access.ReadAnchors(strings.NewReader("not an anchor\n" + `{"msg":"something else","seq":3}` + "\n" + logs.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(fromFile) != 4 || !slices.Equal(fromFile, fromLog) || fromFile[2].Seq != 12 || fromFile[3] != fromFile[2] {
		t.Fatalf("anchors: file %v, log %v; want 4, 8, 12, 12 in both", fromFile, fromLog)
	}
	res, err := a.Verify(ctx, fromFile...)
	if err != nil || !res.OK || res.Keyed != 12 || res.Unkeyed != 0 || res.Anchors != 4 {
		t.Errorf("intact chain with key and anchors: %+v, %v", res, err)
	}
	if _, err := access.ParseAnchor("12:nothex"); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("bad anchor accepted: %v", err)
	}
	if _, err := access.ReadAnchors(strings.NewReader(`{"msg":"audit chain anchor","seq":1,"hash":"x"}`)); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("malformed anchor line accepted: %v", err)
	}
}

// Run anchors the head every interval while it moves.
func TestAnchorerRunAnchorsWhileTheChainMoves(t *testing.T) {
	db := mustDB(t)
	a, _ := access.NewAudit(db, nil)
	file := filepath.Join(t.TempDir(), "anchors.jsonl")
	x, err := access.NewAnchorer(access.AnchorOptions{Audit: a, File: file, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	for want := int64(1); want <= 3; want++ {
		accesstest.AppendN(t, a, 1)
		testenv.WaitWithin(t, 10*time.Second, fmt.Sprintf("head %d anchored in %s", want, file), func() bool {
			b, _ := os.ReadFile(file)
			return strings.Contains(string(b), fmt.Sprintf(`"seq":%d,`, want))
		})
	}
}
