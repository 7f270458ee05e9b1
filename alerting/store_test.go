package alerting_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/delivery"
	"switchyard/sqldb"
	"switchyard/tsdb"
)

// testClock is a settable clock for the store.
type testClock struct{ t time.Time }

func (c *testClock) Now() time.Time          { return c.t }
func (c *testClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

var t0 = time.Date(2026, 3, 2, 9, 30, 0, 123456789, time.UTC)

// mustOpenStore opens a fresh console.db in a temp dir with the alerting
// schema, and a store over it on a clock that starts at t0.
func mustOpenStore(t *testing.T) (*alerting.Store, *testClock, *sql.DB) {
	t.Helper()
	db, err := sqldb.Open(context.Background(), filepath.Join(t.TempDir(), "console.db"), alerting.Schema())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := &testClock{t: t0}
	return alerting.NewStore(db, clock.Now), clock, db
}

func mustMatcher(t testing.TB, s string) tsdb.Matcher {
	t.Helper()
	m, err := tsdb.ParseMatcher(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func lagRule(t testing.TB, name string) alerting.Rule {
	return alerting.Rule{
		Name: name,
		Expr: alerting.Selector{
			Metric:   "switchyard_consumer_group_lag_seconds",
			Matchers: []tsdb.Matcher{mustMatcher(t, `group=~"orders.*"`), mustMatcher(t, `cluster="prod"`)},
			Agg:      alerting.AggMax,
			By:       []string{"cluster", "group"},
		},
		DivideBy:  &alerting.Selector{Metric: "event_processed_total", Func: alerting.FuncRate, Window: alerting.Duration(5 * time.Minute)},
		Op:        alerting.OpGT,
		Threshold: 300,
		And: &alerting.Condition{
			Selector:  alerting.Selector{Metric: "switchyard_consumer_group_members", Func: alerting.FuncQuantile, Quantile: 0.99, Window: alerting.Duration(time.Minute)},
			Op:        alerting.OpEQ,
			Threshold: 0,
		},
		For:           alerting.Duration(5 * time.Minute),
		KeepFiringFor: alerting.Duration(90 * time.Second),
		Severity:      alerting.SeverityCritical,
		Labels:        map[string]string{"team": "payments"},
		Annotations:   map[string]string{"summary": "{{ $labels.group }} lags {{ $value }}s", "runbook_url": "https://runbooks.example/lag"},
		GroupBy:       []string{"cluster"},
		Enabled:       true,
		CreatedBy:     "ada",
		UpdatedBy:     "ada",
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := delivery.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %s", err, got, code)
	}
}

func TestRuleCRUD(t *testing.T) {
	ctx := context.Background()
	s, clock, _ := mustOpenStore(t)

	in := lagRule(t, "Orders lag")
	created, err := s.CreateRule(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == 0 || created.Version != 1 || !created.CreatedAt.Equal(t0) || !created.UpdatedAt.Equal(t0) {
		t.Fatalf("created = id %d version %d at %v/%v; want an id, version 1, both times %v", created.ID, created.Version, created.CreatedAt, created.UpdatedAt, t0)
	}
	want := in
	want.ID, want.Version, want.CreatedAt, want.UpdatedAt = created.ID, 1, t0, t0
	if !reflect.DeepEqual(created, want) {
		t.Errorf("created =\n%+v\nwant\n%+v", created, want)
	}
	got, err := s.GetRule(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GetRule =\n%+v\nwant\n%+v", got, want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt in %v, want UTC", got.CreatedAt.Location())
	}

	t.Run("update keeps the creator and bumps the version", func(t *testing.T) {
		clock.Advance(time.Minute)
		edit := got
		edit.Threshold, edit.Enabled, edit.UpdatedBy = 600, false, "grace"
		edit.CreatedBy, edit.CreatedAt = "mallory", time.Time{} // not the store's to change
		upd, err := s.UpdateRule(ctx, edit)
		if err != nil {
			t.Fatal(err)
		}
		if upd.Version != 2 || upd.Threshold != 600 || upd.Enabled || upd.UpdatedBy != "grace" ||
			upd.CreatedBy != "ada" || !upd.CreatedAt.Equal(t0) || !upd.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("updated = %+v", upd)
		}
		again, _ := s.GetRule(ctx, got.ID)
		if !reflect.DeepEqual(again, upd) {
			t.Errorf("GetRule after update =\n%+v\nwant\n%+v", again, upd)
		}
	})

	t.Run("two updates from the same version: the second conflicts", func(t *testing.T) {
		cur, _ := s.GetRule(ctx, got.ID)
		first, second := cur, cur
		first.Threshold, first.UpdatedBy = 10, "ada"
		second.Threshold, second.UpdatedBy = 20, "grace"
		if _, err := s.UpdateRule(ctx, first); err != nil {
			t.Fatal(err)
		}
		_, err := s.UpdateRule(ctx, second)
		wantCode(t, err, delivery.ECONFLICT)
		if msg := delivery.ErrorMessage(err); !strings.Contains(msg, "changed by ada") || !strings.Contains(msg, "reload") {
			t.Errorf("conflict message %q should say who changed it and to reload", msg)
		}
		after, _ := s.GetRule(ctx, got.ID)
		if after.Threshold != 10 || after.Version != cur.Version+1 {
			t.Errorf("after the conflict: threshold %v version %d; want the first update's 10, version %d", after.Threshold, after.Version, cur.Version+1)
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, err := s.GetRule(ctx, 999)
		wantCode(t, err, delivery.ENOTFOUND)
		r := lagRule(t, "ghost")
		r.ID, r.Version = 999, 1
		_, err = s.UpdateRule(ctx, r)
		wantCode(t, err, delivery.ENOTFOUND)
		_, err = s.DeleteRule(ctx, 999)
		wantCode(t, err, delivery.ENOTFOUND)
	})

	t.Run("list by id", func(t *testing.T) {
		second, err := s.CreateRule(ctx, alerting.Rule{Name: "A minimal rule", Expr: alerting.Selector{Metric: "switchyard_dlq_entries"}, Op: alerting.OpGE, Threshold: 1, Severity: alerting.SeverityInfo})
		if err != nil {
			t.Fatal(err)
		}
		rules, err := s.ListRules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != 2 || rules[0].ID != got.ID || rules[1].ID != second.ID {
			t.Fatalf("ListRules = %v, want the two rules by id", rules)
		}
		if !reflect.DeepEqual(rules[1], second) {
			t.Errorf("listed =\n%+v\nwant\n%+v", rules[1], second)
		}
	})
}

func TestRuleNamesAreUnique(t *testing.T) {
	ctx := context.Background()
	s, _, _ := mustOpenStore(t)
	a, err := s.CreateRule(ctx, lagRule(t, "Ärger lag"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateRule(ctx, lagRule(t, "Other"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Ärger lag", "ärger LAG"} {
		_, err := s.CreateRule(ctx, lagRule(t, name))
		wantCode(t, err, delivery.ECONFLICT)
		if msg := delivery.ErrorMessage(err); !strings.Contains(msg, "a rule named") {
			t.Errorf("message %q", msg)
		}
		if reason := fieldReason(err, "name"); reason == "" {
			t.Errorf("error %v gives no reason for the name field", err)
		}
	}
	// Renaming onto another rule's name conflicts; renaming a rule to its
	// own name in another case does not.
	b.Name = "ÄRGER lag"
	_, err = s.UpdateRule(ctx, b)
	wantCode(t, err, delivery.ECONFLICT)
	a.Name = "ärger Lag"
	if a, err = s.UpdateRule(ctx, a); err != nil || a.Name != "ärger Lag" {
		t.Fatalf("recasing its own name: %v, %q", err, a.Name)
	}
	// Once deleted, the name is free.
	if _, err := s.DeleteRule(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRule(ctx, lagRule(t, "Ärger lag")); err != nil {
		t.Errorf("name of a deleted rule: %v", err)
	}
}

// fieldReason is the reason err gives for field in Details["fields"].
func fieldReason(err error, field string) string {
	var de *delivery.Error
	if !errors.As(err, &de) {
		return ""
	}
	fields, _ := de.Details["fields"].(map[string]string)
	return fields[field]
}

// firing is an alert of rule id for group g.
func firing(id int64, g string, at time.Time) alerting.Alert {
	return alerting.Alert{
		RuleID:      id,
		Fingerprint: "fp-" + g,
		Labels:      map[string]string{"alertname": "Orders lag", "group": g, "severity": "critical"},
		Annotations: map[string]string{"summary": g + " lags"},
		State:       alerting.StateFiring,
		Value:       412.5,
		ActiveAt:    at.Add(-10 * time.Minute),
		FiredAt:     at.Add(-5 * time.Minute),
		LastSentAt:  at,
		ValidUntil:  at.Add(time.Minute),
	}
}

func transition(g string, from, to alerting.State, at time.Time) alerting.Transition {
	return alerting.Transition{Fingerprint: "fp-" + g, Labels: map[string]string{"group": g}, From: from, To: to, At: at, Value: 1}
}

func TestSaveCycleRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _, _ := mustOpenStore(t)
	r1, _ := s.CreateRule(ctx, lagRule(t, "one"))
	r2, _ := s.CreateRule(ctx, lagRule(t, "two"))

	// Times in another zone come back as the same instants in UTC.
	berlin := time.FixedZone("CET", 3600)
	at := t0.In(berlin)
	a1 := firing(r1.ID, "billing", at)
	a2 := firing(r1.ID, "shipping", at)
	a2.State, a2.FiredAt, a2.LastSentAt, a2.ValidUntil = alerting.StatePending, time.Time{}, time.Time{}, time.Time{}
	a2.Annotations = nil
	a2.Silenced = []int64{7} // not stored
	a2.Value = math.Inf(1)
	// Label values are anybody's text: JSON's special characters, control
	// characters, and more than ASCII come back as they were.
	a1.Labels["topic"] = "say \"hi\"\\n\n\t\r\x01\x1f\x7f ü ☃ \u2028 </script>"
	a1.Annotations["empty"] = ""
	resolved := firing(r2.ID, "audit", at)
	resolved.State, resolved.ResolvedAt, resolved.KeepFiringSince = alerting.StateInactive, at, at.Add(-time.Minute)
	resolved.Value = math.NaN() // the series vanished
	status := alerting.RuleStatus{LastEval: at, EvalDuration: 3 * time.Millisecond, Series: 2, Firing: 1, Pending: 1}
	status2 := alerting.RuleStatus{LastEval: at, Error: "history unavailable", NoData: true, NoDataSince: at.Add(-time.Hour)}

	err := s.SaveCycle(ctx, []alerting.RuleChange{
		{RuleID: r1.ID, Alerts: []alerting.Alert{a1, a2}, Status: &status,
			Transitions: []alerting.Transition{transition("billing", alerting.StatePending, alerting.StateFiring, at)}},
		{RuleID: r2.ID, Alerts: []alerting.Alert{resolved}, Status: &status2},
	})
	if err != nil {
		t.Fatal(err)
	}
	alerts, statuses, err := s.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	utc := func(a alerting.Alert) alerting.Alert {
		for _, p := range []*time.Time{&a.ActiveAt, &a.FiredAt, &a.ResolvedAt, &a.KeepFiringSince, &a.LastSentAt, &a.ValidUntil} {
			if !p.IsZero() {
				*p = p.UTC()
			}
		}
		a.Silenced = nil
		return a
	}
	if got, want := alerts[r1.ID], []alerting.Alert{utc(a1), utc(a2)}; !reflect.DeepEqual(got, want) {
		t.Errorf("alerts of rule 1 =\n%+v\nwant\n%+v", got, want)
	}
	t.Run("invalid UTF-8 is stored as U+FFFD", func(t *testing.T) {
		a := firing(r2.ID, "bad", at)
		a.Labels["topic"] = "or\xffders"
		if err := s.SaveCycle(ctx, []alerting.RuleChange{{RuleID: r1.ID, Alerts: []alerting.Alert{a1, a2, a}}}); err != nil {
			t.Fatal(err)
		}
		alerts, _, err := s.LoadState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := alerts[r1.ID][2].Labels["topic"]; got != "or\uFFFDders" {
			t.Errorf("topic = %q", got)
		}
		if err := s.SaveCycle(ctx, []alerting.RuleChange{{RuleID: r1.ID, Alerts: []alerting.Alert{a1, a2}}}); err != nil {
			t.Fatal(err)
		}
	})
	got2 := alerts[r2.ID]
	if len(got2) != 1 || !math.IsNaN(got2[0].Value) {
		t.Fatalf("alerts of rule 2 = %+v, want one with a NaN value", got2)
	}
	got2[0].Value, resolved.Value = 0, 0
	if want := utc(resolved); !reflect.DeepEqual(got2[0], want) {
		t.Errorf("resolved alert =\n%+v\nwant\n%+v", got2[0], want)
	}
	status.RuleID, status.LastEval = r1.ID, t0
	status2.RuleID, status2.LastEval, status2.NoDataSince = r2.ID, t0, t0.Add(-time.Hour)
	if got := statuses[r1.ID]; !reflect.DeepEqual(got, status) {
		t.Errorf("status 1 = %+v, want %+v", got, status)
	}
	if got := statuses[r2.ID]; !reflect.DeepEqual(got, status2) {
		t.Errorf("status 2 = %+v, want %+v", got, status2)
	}
	if got := statuses[r1.ID].LastEval.Location(); got != time.UTC {
		t.Errorf("LastEval in %v, want UTC", got)
	}

	t.Run("nil alerts and status leave them, empty alerts clear them", func(t *testing.T) {
		err := s.SaveCycle(ctx, []alerting.RuleChange{
			{RuleID: r1.ID, Transitions: []alerting.Transition{transition("billing", alerting.StateFiring, alerting.StateInactive, at.Add(time.Minute))}},
			{RuleID: r2.ID, Alerts: []alerting.Alert{}},
		})
		if err != nil {
			t.Fatal(err)
		}
		alerts, statuses, err := s.LoadState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(alerts[r1.ID]) != 2 {
			t.Errorf("rule 1 has %d alerts, want its 2 unchanged", len(alerts[r1.ID]))
		}
		if _, ok := alerts[r2.ID]; ok {
			t.Errorf("rule 2 still has alerts %v after an empty set", alerts[r2.ID])
		}
		if got := statuses[r1.ID]; !reflect.DeepEqual(got, status) {
			t.Errorf("status 1 = %+v, want it unchanged %+v", got, status)
		}
		ts, _, err := s.Transitions(ctx, r1.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 2 || ts[0].To != alerting.StateInactive || ts[1].To != alerting.StateFiring {
			t.Errorf("transitions = %+v, want the two appended, newest first", ts)
		}
	})

	t.Run("a rule deleted meanwhile is skipped", func(t *testing.T) {
		gone, _ := s.CreateRule(ctx, lagRule(t, "gone"))
		if _, err := s.DeleteRule(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		st := alerting.RuleStatus{LastEval: at}
		err := s.SaveCycle(ctx, []alerting.RuleChange{
			{RuleID: gone.ID, Alerts: []alerting.Alert{firing(gone.ID, "x", at)}, Status: &st,
				Transitions: []alerting.Transition{transition("x", alerting.StatePending, alerting.StateFiring, at)}},
			{RuleID: r2.ID, Alerts: []alerting.Alert{firing(r2.ID, "y", at)}},
		})
		if err != nil {
			t.Fatalf("SaveCycle with a deleted rule: %v", err)
		}
		alerts, statuses, _ := s.LoadState(ctx)
		if _, ok := alerts[gone.ID]; ok {
			t.Error("the deleted rule's alerts were stored")
		}
		if _, ok := statuses[gone.ID]; ok {
			t.Error("the deleted rule's status was stored")
		}
		if ts, _, _ := s.Transitions(ctx, gone.ID, 0, 0); len(ts) != 0 {
			t.Errorf("the deleted rule has transitions %v", ts)
		}
		if len(alerts[r2.ID]) != 1 {
			t.Errorf("the other rule's change was not saved: %v", alerts[r2.ID])
		}
	})

	t.Run("a failing change saves nothing of the cycle", func(t *testing.T) {
		before, _, _ := s.LoadState(ctx)
		dup := firing(r1.ID, "dup", at)
		st := alerting.RuleStatus{Error: "changed"}
		err := s.SaveCycle(ctx, []alerting.RuleChange{
			{RuleID: r2.ID, Alerts: []alerting.Alert{}},
			{RuleID: r1.ID, Alerts: []alerting.Alert{dup, dup}, Status: &st}, // one label set twice: an evaluator bug
		})
		if err == nil {
			t.Fatal("SaveCycle stored the same fingerprint twice")
		}
		after, statuses, _ := s.LoadState(ctx)
		if !reflect.DeepEqual(after, before) || statuses[r1.ID].Error != "" {
			t.Errorf("a failed cycle changed the state: %v → %v", before, after)
		}
	})
}

func TestDeleteRuleCascades(t *testing.T) {
	ctx := context.Background()
	s, _, db := mustOpenStore(t)
	keep, _ := s.CreateRule(ctx, lagRule(t, "keep"))
	del, _ := s.CreateRule(ctx, lagRule(t, "delete"))
	st := alerting.RuleStatus{Series: 1}
	var changes []alerting.RuleChange
	for _, r := range []alerting.Rule{keep, del} {
		changes = append(changes, alerting.RuleChange{RuleID: r.ID, Alerts: []alerting.Alert{firing(r.ID, "g", t0)}, Status: &st,
			Transitions: []alerting.Transition{transition("g", alerting.StateInactive, alerting.StatePending, t0), transition("g", alerting.StatePending, alerting.StateFiring, t0)}})
	}
	if err := s.SaveCycle(ctx, changes); err != nil {
		t.Fatal(err)
	}
	got, err := s.DeleteRule(ctx, del.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "delete" {
		t.Errorf("DeleteRule returned %q, want the deleted rule", got.Name)
	}
	_, err = s.GetRule(ctx, del.ID)
	wantCode(t, err, delivery.ENOTFOUND)
	for _, table := range []string{"alert_sets", "alert_rule_status", "alert_transitions"} {
		var n int
		if err := db.QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE rule_id = ?", table), del.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s keeps %d rows of the deleted rule", table, n)
		}
	}
	alerts, statuses, _ := s.LoadState(ctx)
	if len(alerts[keep.ID]) != 1 || statuses[keep.ID].Series != 1 {
		t.Errorf("the other rule lost its state: %v %v", alerts, statuses)
	}
	if ts, _, _ := s.Transitions(ctx, keep.ID, 0, 0); len(ts) != 2 {
		t.Errorf("the other rule has %d transitions, want 2", len(ts))
	}
}

func TestTransitionsPagingAndPrune(t *testing.T) {
	ctx := context.Background()
	s, _, _ := mustOpenStore(t)
	r, _ := s.CreateRule(ctx, lagRule(t, "paged"))
	other, _ := s.CreateRule(ctx, lagRule(t, "other"))
	// 120 transitions of r, one a minute from t0, and 3 of other.
	var ts []alerting.Transition
	for i := range 120 {
		ts = append(ts, transition(fmt.Sprint(i), alerting.StatePending, alerting.StateFiring, t0.Add(time.Duration(i)*time.Minute)))
	}
	if err := s.SaveCycle(ctx, []alerting.RuleChange{{RuleID: r.ID, Transitions: ts}}); err != nil {
		t.Fatal(err)
	}
	var old []alerting.Transition
	for i := range 3 {
		old = append(old, transition(fmt.Sprint(i), alerting.StatePending, alerting.StateFiring, t0.Add(-time.Duration(i+1)*time.Hour)))
	}
	if err := s.SaveCycle(ctx, []alerting.RuleChange{{RuleID: other.ID, Transitions: old}}); err != nil {
		t.Fatal(err)
	}

	t.Run("pages newest first without gaps or repeats", func(t *testing.T) {
		var seen []string
		before, pages := int64(0), 0
		for {
			page, next, err := s.Transitions(ctx, r.ID, before, 50)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, tr := range page {
				if tr.RuleID != r.ID {
					t.Fatalf("transition of rule %d in rule %d's pages", tr.RuleID, r.ID)
				}
				seen = append(seen, tr.Labels["group"])
			}
			if next == 0 {
				break
			}
			before = next
		}
		if pages != 3 || len(seen) != 120 {
			t.Fatalf("%d pages of %d transitions, want 3 pages of 120 in all", pages, len(seen))
		}
		for i, g := range seen {
			if want := fmt.Sprint(119 - i); g != want {
				t.Fatalf("transition %d is group %s, want %s (newest first)", i, g, want)
			}
		}
	})

	t.Run("limits", func(t *testing.T) {
		page, next, _ := s.Transitions(ctx, r.ID, 0, 0)
		if len(page) != alerting.DefaultTransitionsLimit || next == 0 {
			t.Errorf("default page: %d, next %d; want %d and more", len(page), next, alerting.DefaultTransitionsLimit)
		}
		if !page[0].At.Equal(t0.Add(119*time.Minute)) || page[0].At.Location() != time.UTC {
			t.Errorf("newest at %v, want %v in UTC", page[0].At, t0.Add(119*time.Minute))
		}
		page, next, _ = s.Transitions(ctx, r.ID, 0, 10_000)
		if len(page) != 120 || next != 0 {
			t.Errorf("a big limit: %d, next %d; want all 120 and no next page", len(page), next)
		}
		_, _, err := s.Transitions(ctx, r.ID, -1, 10)
		wantCode(t, err, delivery.EINVALID)
	})

	t.Run("prune keeps the newest of each rule", func(t *testing.T) {
		// Older than t0+100m: r's first 100; other's 3. Keep 30 per rule:
		// r keeps its newest 30 (the 20 recent and 10 old ones), other
		// keeps all 3.
		n, err := s.PruneTransitions(ctx, t0.Add(100*time.Minute), 30)
		if err != nil {
			t.Fatal(err)
		}
		if n != 90 {
			t.Errorf("pruned %d, want 90", n)
		}
		page, _, _ := s.Transitions(ctx, r.ID, 0, 500)
		if len(page) != 30 || page[29].Labels["group"] != "90" {
			t.Errorf("rule r keeps %d, oldest %v; want 30 down to group 90", len(page), page[len(page)-1].Labels)
		}
		if page, _, _ := s.Transitions(ctx, other.ID, 0, 500); len(page) != 3 {
			t.Errorf("rule other keeps %d, want its 3 however old", len(page))
		}
		// With keep 0 only age counts.
		if n, err = s.PruneTransitions(ctx, t0.Add(100*time.Minute), 0); err != nil || n != 13 {
			t.Errorf("pruned %d (%v), want the 10 + 3 old ones left", n, err)
		}
	})
}

func TestSilences(t *testing.T) {
	ctx := context.Background()
	s, clock, _ := mustOpenStore(t)
	ms := []tsdb.Matcher{mustMatcher(t, `group="billing"`)}
	mk := func(comment string, from, to time.Duration) alerting.Silence {
		t.Helper()
		sil, err := s.CreateSilence(ctx, alerting.Silence{Matchers: ms, CreatedBy: "ada", Comment: comment, StartsAt: t0.Add(from), EndsAt: t0.Add(to)})
		if err != nil {
			t.Fatal(err)
		}
		return sil
	}
	activeLate := mk("active, ends late", -time.Hour, 3*time.Hour)
	activeSoon := mk("active, ends soon", -time.Hour, time.Hour)
	pending := mk("pending", time.Hour, 2*time.Hour)
	expiredOld := mk("expired long ago", -5*time.Hour, -4*time.Hour)
	expiredNew := mk("expired lately", -2*time.Hour, -time.Minute)
	edge := mk("ends right now", -time.Hour, 0)

	if !activeLate.CreatedAt.Equal(t0) || activeLate.ID == 0 {
		t.Errorf("created = %+v, want an id and CreatedAt %v", activeLate, t0)
	}
	got, err := s.GetSilence(ctx, pending.ID)
	if err != nil || !reflect.DeepEqual(got, pending) {
		t.Errorf("GetSilence = %+v (%v), want %+v", got, err, pending)
	}
	_, err = s.GetSilence(ctx, 999)
	wantCode(t, err, delivery.ENOTFOUND)

	ids := func(ss []alerting.Silence) []int64 {
		var out []int64
		for _, x := range ss {
			out = append(out, x.ID)
		}
		return out
	}
	for _, tt := range []struct {
		state string
		want  []int64
	}{
		{"active", []int64{activeSoon.ID, activeLate.ID}},
		{"pending", []int64{pending.ID}},
		{"expired", []int64{edge.ID, expiredNew.ID, expiredOld.ID}},
		{"", []int64{activeSoon.ID, activeLate.ID, pending.ID, edge.ID, expiredNew.ID, expiredOld.ID}},
	} {
		t.Run("state "+tt.state, func(t *testing.T) {
			got, err := s.ListSilences(ctx, alerting.SilenceFilter{State: tt.state})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids(got), tt.want) {
				t.Errorf("ids = %v, want %v", ids(got), tt.want)
			}
			for _, x := range got {
				if tt.state != "" && x.State(clock.Now()) != tt.state {
					t.Errorf("silence %q listed as %s is %s", x.Comment, tt.state, x.State(clock.Now()))
				}
			}
		})
	}
	_, err = s.ListSilences(ctx, alerting.SilenceFilter{State: "muted"})
	wantCode(t, err, delivery.EINVALID)

	t.Run("the clock moves silences between states", func(t *testing.T) {
		clock.Advance(90 * time.Minute) // pending starts, activeSoon ends
		got, _ := s.ListSilences(ctx, alerting.SilenceFilter{State: "active"})
		if want := []int64{pending.ID, activeLate.ID}; !reflect.DeepEqual(ids(got), want) {
			t.Errorf("active after 90m = %v, want %v", ids(got), want)
		}
		clock.Advance(-90 * time.Minute)
	})

	t.Run("expire", func(t *testing.T) {
		clock.Advance(time.Minute)
		now := clock.Now()
		exp, err := s.ExpireSilence(ctx, activeLate.ID, "grace")
		if err != nil {
			t.Fatal(err)
		}
		if !exp.EndsAt.Equal(now) || !exp.StartsAt.Equal(activeLate.StartsAt) || exp.ExpiredBy != "grace" || exp.State(now) != "expired" {
			t.Errorf("expired active silence = %+v", exp)
		}
		_, err = s.ExpireSilence(ctx, activeLate.ID, "grace")
		wantCode(t, err, delivery.ECONFLICT)

		exp, err = s.ExpireSilence(ctx, pending.ID, "ada")
		if err != nil {
			t.Fatal(err)
		}
		if !exp.StartsAt.Equal(now) || !exp.EndsAt.Equal(now) {
			t.Errorf("an expired pending silence spans %v–%v, want both now (%v)", exp.StartsAt, exp.EndsAt, now)
		}
		_, err = s.ExpireSilence(ctx, expiredOld.ID, "ada")
		wantCode(t, err, delivery.ECONFLICT)
		_, err = s.ExpireSilence(ctx, 999, "ada")
		wantCode(t, err, delivery.ENOTFOUND)

		active, _ := s.ListSilences(ctx, alerting.SilenceFilter{State: "active"})
		if want := []int64{activeSoon.ID}; !reflect.DeepEqual(ids(active), want) {
			t.Errorf("active after expiring = %v, want %v", ids(active), want)
		}
	})

	t.Run("prune", func(t *testing.T) {
		n, err := s.PruneSilences(ctx, t0.Add(-30*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("pruned %d (%v), want the one that ended more than 30m ago", n, err)
		}
		_, err = s.GetSilence(ctx, expiredOld.ID)
		wantCode(t, err, delivery.ENOTFOUND)
		if _, err := s.GetSilence(ctx, expiredNew.ID); err != nil {
			t.Errorf("a silence that ended lately was pruned: %v", err)
		}
	})

	t.Run("invalid matchers are refused", func(t *testing.T) {
		_, err := s.CreateSilence(ctx, alerting.Silence{Matchers: []tsdb.Matcher{mustMatcher(t, `group=~".*"`)}, Comment: "all", StartsAt: t0, EndsAt: t0.Add(time.Hour)})
		wantCode(t, err, delivery.EINVALID)
	})
}

func TestExpiredSilencesAreCapped(t *testing.T) {
	ctx := context.Background()
	s, _, _ := mustOpenStore(t)
	ms := []tsdb.Matcher{mustMatcher(t, `group="billing"`)}
	var last int64
	for i := range 510 {
		end := t0.Add(-time.Duration(510-i) * time.Minute) // later ids end later
		sil, err := s.CreateSilence(ctx, alerting.Silence{Matchers: ms, Comment: "c", StartsAt: end.Add(-time.Hour), EndsAt: end})
		if err != nil {
			t.Fatal(err)
		}
		last = sil.ID
	}
	got, err := s.ListSilences(ctx, alerting.SilenceFilter{State: "expired"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 500 || got[0].ID != last {
		t.Errorf("%d expired silences, first %d; want the newest 500 starting with %d", len(got), got[0].ID, last)
	}
}

func TestNotifierState(t *testing.T) {
	ctx := context.Background()
	s, _, _ := mustOpenStore(t)

	t.Run("groups", func(t *testing.T) {
		g1 := alerting.GroupState{Target: "am", Key: "1/{cluster=\"prod\"}", Hash: "h1", LastNotified: t0.In(time.FixedZone("X", -7200))}
		g2 := alerting.GroupState{Target: "hook", Key: "2/{}", Hash: "h2"}
		for _, g := range []alerting.GroupState{g2, g1} {
			if err := s.SaveGroup(ctx, g); err != nil {
				t.Fatal(err)
			}
		}
		g1.Hash, g1.LastNotified = "h1b", t0.Add(time.Minute) // replaces
		if err := s.SaveGroup(ctx, g1); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := []alerting.GroupState{g1, g2}; !reflect.DeepEqual(got, want) {
			t.Errorf("groups = %+v, want %+v", got, want)
		}
		if err := s.DeleteGroup(ctx, "am", g1.Key); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteGroup(ctx, "am", "unknown"); err != nil {
			t.Errorf("deleting an unknown group: %v", err)
		}
		if got, _ := s.LoadGroups(ctx); !reflect.DeepEqual(got, []alerting.GroupState{g2}) {
			t.Errorf("after delete = %+v", got)
		}
	})

	t.Run("remote silences", func(t *testing.T) {
		rs := []alerting.RemoteSilence{
			{Target: "am-eu", SilenceID: 2, RemoteID: "b2"},
			{Target: "am-eu", SilenceID: 1, RemoteID: "b1"},
			{Target: "am-us", SilenceID: 1, RemoteID: "c1"},
		}
		for _, r := range rs {
			if err := s.SetRemoteSilence(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetRemoteSilence(ctx, alerting.RemoteSilence{Target: "am-us", SilenceID: 1, RemoteID: "c1-new"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.RemoteSilences(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []alerting.RemoteSilence{rs[1], rs[0], {Target: "am-us", SilenceID: 1, RemoteID: "c1-new"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("remote silences = %+v, want %+v", got, want)
		}
		if err := s.DeleteRemoteSilence(ctx, "am-eu", 1); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.RemoteSilences(ctx); len(got) != 2 || got[0].SilenceID != 2 {
			t.Errorf("after delete = %+v", got)
		}
	})
}

func TestSchemaReopens(t *testing.T) {
	// console.db is opened with access's schema too; the alerting owner
	// counts its own versions, and reopening applies nothing twice.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "console.db")
	for range 2 {
		db, err := sqldb.Open(ctx, path, access.Schema(), alerting.Schema())
		if err != nil {
			t.Fatal(err)
		}
		var v int
		if err := db.QueryRow(`SELECT MAX(version) FROM schema_migrations WHERE owner = 'alerting'`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != len(alerting.Schema().Migrations) {
			t.Errorf("alerting at version %d, want %d", v, len(alerting.Schema().Migrations))
		}
		db.Close()
	}
}

// BenchmarkSaveCycle saves a cycle in which all of 1,000 rules with 10
// alerts each changed: the evaluator's worst case.
func BenchmarkSaveCycle(b *testing.B) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(b.TempDir(), "console.db"), alerting.Schema())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := alerting.NewStore(db, nil)
	changes := make([]alerting.RuleChange, 1000)
	for i := range changes {
		r, err := s.CreateRule(ctx, lagRule(b, fmt.Sprintf("rule %d", i)))
		if err != nil {
			b.Fatal(err)
		}
		st := alerting.RuleStatus{LastEval: t0, EvalDuration: time.Millisecond, Series: 10, Firing: 10}
		c := alerting.RuleChange{RuleID: r.ID, Status: &st, Alerts: []alerting.Alert{}}
		for j := range 10 {
			c.Alerts = append(c.Alerts, firing(r.ID, fmt.Sprintf("group-%d", j), t0))
		}
		changes[i] = c
	}
	b.ResetTimer()
	for b.Loop() {
		if err := s.SaveCycle(ctx, changes); err != nil {
			b.Fatal(err)
		}
	}
}
