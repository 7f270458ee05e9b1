package alerting

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/tsdb"
)

// stateLetter is how the state tables write an alert's state after an
// evaluation: P pending, F firing, R resolved (inactive, still kept), -
// gone.
func stateLetter(a *Alert) string {
	if a == nil {
		return "-"
	}
	switch a.State {
	case StatePending:
		return "P"
	case StateFiring:
		return "F"
	}
	return "R"
}

// transText writes a transition as "step:from>to".
func transText(k int, tr Transition) string { return fmt.Sprintf("%d:%s>%s", k, tr.From, tr.To) }

// holdingAt is the sample of one label set when its letter is H.
func holdingAt(pattern string, k int, ls tsdb.Labels, v float64) []Sample {
	if k < len(pattern) && pattern[k] == 'H' {
		return []Sample{{Labels: ls, V: v}}
	}
	return nil
}

// TestApplyStateMachine runs Apply over sequences of evaluations 15 s apart
// for one label set: H the rule holds for it, . it does not.
func TestApplyStateMachine(t *testing.T) {
	cases := []struct {
		name      string
		forD      time.Duration
		keep      time.Duration
		holds     string
		states    string   // after each evaluation
		trans     []string // every transition, "step:from>to"
		evalsMore int      // evaluations after holds ends (not holding)
	}{
		{name: "pending, then firing once it held for 1m", forD: time.Minute,
			holds: "HHHHHHH", states: "PPPPFFF", trans: []string{"0:inactive>pending", "4:pending>firing"}},
		{name: "for 0 fires on the first evaluation", holds: "HH.", states: "FFR",
			trans: []string{"0:inactive>pending", "0:pending>firing", "2:firing>inactive"}},
		{name: "a pending alert that stops is forgotten", forD: time.Minute, holds: "HH.H", states: "PP-P",
			trans: []string{"0:inactive>pending", "2:pending>inactive", "3:inactive>pending"}},
		{name: "flapping before for never fires", forD: time.Minute, holds: "HHH.HHH.HHH.", states: "PPP-PPP-PPP-",
			trans: []string{"0:inactive>pending", "3:pending>inactive", "4:inactive>pending", "7:pending>inactive", "8:inactive>pending", "11:pending>inactive"}},
		{name: "keep_firing_for holds a firing alert, counted from the first miss", keep: 30 * time.Second,
			holds: "HH...H....", states: "FFFFRFFFRR",
			trans: []string{"0:inactive>pending", "0:pending>firing", "4:firing>inactive", "5:inactive>pending", "5:pending>firing", "8:firing>inactive"}},
		{name: "keep_firing_for restarts when it holds again", keep: 30 * time.Second,
			holds: "H..H...", states: "FFFFFFR",
			trans: []string{"0:inactive>pending", "0:pending>firing", "6:firing>inactive"}},
		{name: "keep_firing_for does not hold a pending alert", forD: time.Minute, keep: time.Minute,
			holds: "HH.H", states: "PP-P", trans: []string{"0:inactive>pending", "2:pending>inactive", "3:inactive>pending"}},
		{name: "a resolved alert is kept 15m, then forgotten", holds: "H", evalsMore: 62,
			states: "F" + strings.Repeat("R", 61) + "-", trans: []string{"0:inactive>pending", "0:pending>firing", "1:firing>inactive"}},
		{name: "holding again after a resolve starts a new alert", forD: 30 * time.Second,
			holds: "HHH.HHH", states: "PPFRPPF",
			trans: []string{"0:inactive>pending", "2:pending>firing", "3:firing>inactive", "4:inactive>pending", "6:pending>firing"}},
	}
	ls := lagLabels("demo", "billing")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Rule{ID: 7, Name: "lag", For: Duration(tc.forD), KeepFiringFor: Duration(tc.keep), Severity: SeverityWarning,
				Annotations: map[string]string{"summary": "{{ $labels.group }} at {{ $value }}"}}
			active := map[string]*Alert{}
			var states strings.Builder
			var trans []string
			var activeSince time.Time
			for k := range len(tc.holds) + tc.evalsMore {
				at := engAt(k)
				for _, tr := range Apply(r, active, holdingAt(tc.holds, k, ls, float64(100+k)), at) {
					trans = append(trans, transText(k, tr))
					if tr.RuleID != 7 || !tr.At.Equal(at) || tr.Labels["group"] != "billing" {
						t.Errorf("step %d: transition %+v", k, tr)
					}
					if tr.From == StateInactive {
						activeSince = at
					}
				}
				if len(active) > 1 {
					t.Fatalf("step %d: %d alerts for one label set", k, len(active))
				}
				var a *Alert
				for _, x := range active {
					a = x
				}
				states.WriteString(stateLetter(a))
				if a == nil || a.State == StateInactive {
					continue
				}
				if !a.ActiveAt.Equal(activeSince) {
					t.Errorf("step %d: ActiveAt %s, want %s", k, a.ActiveAt.Format(time.TimeOnly), activeSince.Format(time.TimeOnly))
				}
				if k < len(tc.holds) && tc.holds[k] == 'H' {
					// A holding evaluation refreshes value and annotations.
					if a.Value != float64(100+k) || a.Annotations["summary"] != fmt.Sprintf("billing at %d", 100+k) {
						t.Errorf("step %d: value %v, annotations %v", k, a.Value, a.Annotations)
					}
				}
			}
			if states.String() != tc.states {
				t.Errorf("states\n got %s\nwant %s", states.String(), tc.states)
			}
			if !slices.Equal(trans, tc.trans) {
				t.Errorf("transitions\n got %q\nwant %q", trans, tc.trans)
			}
		})
	}
}

// TestApplyAlertFields: an alert carries the series' labels without the
// metric name plus the rule's, its fingerprint is its key, and FiredAt and
// ResolvedAt say when.
func TestApplyAlertFields(t *testing.T) {
	r := &Rule{ID: 3, Name: "Lag", For: Duration(15 * time.Second), Severity: SeverityCritical, Labels: map[string]string{"team": "payments"}}
	active := map[string]*Alert{}
	billing, shipping := lagLabels("demo", "billing"), lagLabels("demo", "shipping")
	Apply(r, active, []Sample{{billing, 90}, {shipping, 70}}, engAt(0))
	Apply(r, active, []Sample{{billing, 95}}, engAt(1))
	Apply(r, active, nil, engAt(2))

	want := map[string]string{"alertname": "Lag", "severity": "critical", "team": "payments", "cluster": "demo", "group": "billing"}
	fp := Fingerprint(want)
	a := active[fp]
	if a == nil || len(active) != 1 {
		t.Fatalf("alerts = %v, want one for %v", active, want)
	}
	if !maps.Equal(a.Labels, want) || a.Fingerprint != fp || a.RuleID != 3 {
		t.Errorf("alert = %+v", a)
	}
	if a.State != StateInactive || !a.ActiveAt.Equal(engAt(0)) || !a.FiredAt.Equal(engAt(1)) || !a.ResolvedAt.Equal(engAt(2)) || a.Value != 95 {
		t.Errorf("alert times and value: active %s fired %s resolved %s value %v", a.ActiveAt, a.FiredAt, a.ResolvedAt, a.Value)
	}
}

// TestApplyRestart: state saved mid-sequence (as the store keeps it, JSON
// of the Alert structs) and loaded into a fresh map continues exactly as
// an uninterrupted run, whatever the step it is saved at: a restart
// neither re-fires nor forgets.
func TestApplyRestart(t *testing.T) {
	r := &Rule{ID: 1, Name: "lag", For: Duration(30 * time.Second), KeepFiringFor: Duration(30 * time.Second), Severity: SeverityWarning,
		Annotations: map[string]string{"summary": "{{ $value }}"}}
	a, b := lagLabels("demo", "a"), lagLabels("demo", "b")
	pa, pb := "HHHHH..HHHH......HH.HHHH"+strings.Repeat(".", 64), "..HHH.HHHHHHHHHH.....HHH"
	n := len(pa)
	run := func(restartAt int) (trans []string, final map[string]*Alert) {
		active := map[string]*Alert{}
		for k := range n {
			if k == restartAt {
				list := make([]Alert, 0, len(active))
				for _, fp := range slices.Sorted(maps.Keys(active)) {
					list = append(list, *active[fp])
				}
				b, err := json.Marshal(list)
				if err != nil {
					t.Fatal(err)
				}
				var loaded []Alert
				if err := json.Unmarshal(b, &loaded); err != nil {
					t.Fatal(err)
				}
				active = map[string]*Alert{}
				for i := range loaded {
					active[loaded[i].Fingerprint] = &loaded[i]
				}
			}
			holding := append(holdingAt(pa, k, a, float64(k)), holdingAt(pb, k, b, float64(k)+0.5)...)
			for _, tr := range Apply(r, active, holding, engAt(k)) {
				trans = append(trans, transText(k, tr)+tr.Labels["group"])
			}
		}
		return trans, active
	}
	wantTrans, wantFinal := run(-1)
	if !slices.Contains(wantTrans, "20:inactive>pendinga") || !slices.Contains(wantTrans, "2:pending>firinga") {
		t.Fatalf("the sequence does not fire and re-fire: %q", wantTrans)
	}
	for m := 1; m < n; m++ {
		gotTrans, gotFinal := run(m)
		if !slices.Equal(gotTrans, wantTrans) {
			t.Errorf("restart at step %d: transitions\n got %q\nwant %q", m, gotTrans, wantTrans)
		}
		got, _ := json.Marshal(gotFinal)
		want, _ := json.Marshal(wantFinal)
		if string(got) != string(want) {
			t.Errorf("restart at step %d: final alerts\n got %s\nwant %s", m, got, want)
		}
	}
}

// TestApplyGapsThroughTheStore: a series missing for longer than the 5m
// lookback ends and its alert resolves; a shorter gap leaves it firing.
func TestApplyGapsThroughTheStore(t *testing.T) {
	gap := func(from, to int) []float64 {
		return engValues(60, func(k int) float64 {
			if k >= from && k < to {
				return engGap
			}
			return 100
		})
	}
	h := engHistory(t,
		engSeries{lagLabels("demo", "long"), gap(10, 40)},  // 7.5 minutes without samples
		engSeries{lagLabels("demo", "short"), gap(10, 26)}, // 4 minutes
	)
	r := &Rule{Name: "lag", Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds"}, Op: OpGT, Threshold: 60, Severity: SeverityWarning}
	active := map[string]*Alert{}
	states := map[string]*strings.Builder{"long": {}, "short": {}}
	for k := range 60 {
		Apply(r, active, mustEval(t, h, r, engAt(k)).Holding, engAt(k))
		for g, sb := range states {
			ls := AlertLabels(r, lagLabels("demo", g))
			sb.WriteString(stateLetter(active[Fingerprint(ls)]))
		}
	}
	// long's last sample before the gap is at scrape 9; it is seen up to
	// scrape 29 (exactly 5m later) and gone at 30; samples return at 40.
	if got, want := states["long"].String(), strings.Repeat("F", 30)+strings.Repeat("R", 10)+strings.Repeat("F", 20); got != want {
		t.Errorf("long gap\n got %s\nwant %s", got, want)
	}
	if got, want := states["short"].String(), strings.Repeat("F", 60); got != want {
		t.Errorf("short gap\n got %s\nwant %s", got, want)
	}
}

func TestAlertLabelsAndFingerprint(t *testing.T) {
	r := &Rule{Name: "Lag", Severity: SeverityWarning, Labels: map[string]string{"team": "payments", "cluster": "renamed", "group": ""}}
	got := AlertLabels(r, tsdb.L(tsdb.MetricName, "m", "cluster", "demo", "group", "billing", "severity", "low", "alertname", "x", "topic", "t"))
	want := map[string]string{"alertname": "Lag", "severity": "warning", "team": "payments", "cluster": "renamed", "topic": "t"}
	if !maps.Equal(got, want) {
		t.Errorf("AlertLabels = %v, want %v (rule labels win, an empty one removes, no __name__)", got, want)
	}
	r.Severity = ""
	if got := AlertLabels(r, tsdb.L(tsdb.MetricName, "m", "severity", "low")); got["severity"] != "low" {
		t.Errorf("without a rule severity the series' stays: %v", got)
	}

	// The same labels give the same fingerprint in every process and
	// release: this value is stored.
	ls := map[string]string{"alertname": "Lag", "cluster": "demo", "group": "billing"}
	if fp := Fingerprint(ls); fp != "9a7adbb4e1cd1813" {
		t.Errorf("Fingerprint(%v) = %s, it must never change", ls, fp)
	}
	if Fingerprint(map[string]string{"a": "bc"}) == Fingerprint(map[string]string{"ab": "c"}) {
		t.Error("label boundaries do not separate fingerprints")
	}
}

func TestNeedsSendingAndValidUntil(t *testing.T) {
	at := engT0
	cases := []struct {
		name string
		a    Alert
		want bool
	}{
		{"pending never", Alert{State: StatePending}, false},
		{"firing, never sent", Alert{State: StateFiring}, true},
		{"firing, sent just now", Alert{State: StateFiring, LastSentAt: at}, false},
		{"firing, sent exactly resendDelay ago: not yet (Prometheus's strict Before)", Alert{State: StateFiring, LastSentAt: at.Add(-time.Minute)}, false},
		{"firing, sent longer ago", Alert{State: StateFiring, LastSentAt: at.Add(-time.Minute - time.Millisecond)}, true},
		{"resolved after the last send", Alert{State: StateInactive, ResolvedAt: at, LastSentAt: at.Add(-time.Second)}, true},
		{"resolved and sent since", Alert{State: StateInactive, ResolvedAt: at.Add(-time.Second), LastSentAt: at}, false},
		{"resolved, sent, and resent while retained", Alert{State: StateInactive, ResolvedAt: at.Add(-3 * time.Minute), LastSentAt: at.Add(-2 * time.Minute)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeedsSending(&tc.a, at, time.Minute); got != tc.want {
				t.Errorf("NeedsSending = %v, want %v", got, tc.want)
			}
		})
	}
	if got := ValidUntil(at, time.Minute, 15*time.Second); !got.Equal(at.Add(4 * time.Minute)) {
		t.Errorf("ValidUntil(1m resend, 15s interval) = %s, want 4m later", got)
	}
	if got := ValidUntil(at, time.Minute, 2*time.Minute); !got.Equal(at.Add(8 * time.Minute)) {
		t.Errorf("ValidUntil(1m resend, 2m interval) = %s, want 8m later", got)
	}
}

func TestExpand(t *testing.T) {
	labels := map[string]string{"group": "billing", "cluster": "demo"}
	cases := []struct {
		tmpl  string
		value float64
		want  string
	}{
		{"{{ $labels.group }} on {{ $labels.cluster }}", 1, "billing on demo"},
		{"[{{ $labels.missing }}]", 1, "[]"},
		{"{{ $value }}", 2.0 / 3, "0.6666666666666666"},
		{"{{ $value }}", 1e6, "1e+06"},
		{"{{ $value | humanize }}", 1234567, "1.235M"},
		{"{{ $value | humanize }}", 0.00123, "1.23m"},
		{"{{ $value | humanize }}", 0, "0"},
		{"{{ $value | humanize1024 }}", 2048, "2ki"},
		{"{{ $value | humanizeDuration }}", 90061, "1d 1h 1m 1s"},
		{"{{ $value | humanizeDuration }}", 75, "1m 15s"},
		{"{{ $value | humanizeDuration }}", 1.5, "1.5s"},
		{"{{ $value | humanizeDuration }}", 0.25, "250ms"},
		{"{{ $value | humanizeDuration }}", 0, "0s"},
		{"{{ $value | humanizePercentage }}", 0.1234, "12.34%"},
		{"{{ $value | humanizeTimestamp }}", 1700000000.5, "2023-11-14 22:13:20.5 +0000 UTC"},
		{`{{ printf "%.1f" $value }}`, 2.25, "2.2"},
		{"{{ $labels.group | toUpper }}", 0, "BILLING"},
		{"{{ $value | humanize }}", math.NaN(), "NaN"},
		{"no template", 0, "no template"},
		{"{{ $externalURL }}", 0, ""},
	}
	for _, tc := range cases {
		if got := Expand(tc.tmpl, labels, tc.value); got != tc.want {
			t.Errorf("Expand(%q, %v) = %q, want %q", tc.tmpl, tc.value, got, tc.want)
		}
	}
	for _, bad := range []string{"{{ $labels.group ", "{{ nosuchfunc }}", "{{ $undefined }}"} {
		if err := CheckTemplate(bad); err == nil {
			t.Errorf("CheckTemplate(%q) = nil, want a parse error", bad)
		}
		if got := Expand(bad, labels, 1); !strings.HasPrefix(got, "<error expanding template: ") {
			t.Errorf("Expand(%q) = %q, want Prometheus's error text", bad, got)
		}
	}
	// Failing while executing, not parsing: an error text, no panic.
	for _, bad := range []string{`{{ reReplaceAll "(" "x" "y" }}`, `{{ "x" | humanize }}`} {
		if err := CheckTemplate(bad); err != nil {
			t.Errorf("CheckTemplate(%q) = %v, it parses", bad, err)
		}
		if got := Expand(bad, labels, 1); !strings.HasPrefix(got, "<error expanding template: ") {
			t.Errorf("Expand(%q) = %q, want Prometheus's error text", bad, got)
		}
	}
}
