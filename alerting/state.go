package alerting

import (
	"encoding/hex"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	"switchyard/tsdb"
)

// This file is the alert state machine: Prometheus 2.42's
// AlertingRule.Eval (rules/alerting.go) over the samples for which a rule
// holds, and its needsSending and endsAt rules for notifiers.

// AlertLabels returns the labels of the alert a sample raises: the
// sample's labels without __name__, plus r.Labels (the rule's win, and one
// with an empty value removes the label, as in Prometheus), plus
// alertname=r.Name and severity=r.Severity (when set). Rule label values
// are taken literally, not expanded as templates.
func AlertLabels(r *Rule, ls tsdb.Labels) map[string]string {
	out := make(map[string]string, len(ls)+len(r.Labels)+2)
	for _, l := range ls {
		if l.Name != tsdb.MetricName {
			out[l.Name] = l.Value
		}
	}
	for k, v := range r.Labels {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	if r.Severity != "" {
		out["severity"] = r.Severity
	}
	out["alertname"] = r.Name
	delete(out, tsdb.MetricName)
	return out
}

// Fingerprint returns a stable hex hash of labels: the same labels give the
// same string in every process, so stored alerts find their label set
// again after a restart.
func Fingerprint(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Apply advances the alerts of one rule by one evaluation at ts, exactly as
// Prometheus's AlertingRule.Eval (v2.42 rules/alerting.go) does. active is
// keyed by fingerprint and is mutated: a holding sample updates the value
// and annotations of its pending or firing alert, or starts a new pending
// one (replacing a resolved one); an alert whose sample no longer holds is
// deleted when pending, kept firing while keep_firing_for lasts, else
// resolved (inactive with ResolvedAt), and deleted ResolvedRetention after
// it resolved; a pending alert fires once it has held for For (at once when
// For is 0). Annotations are expanded on every evaluation.
//
// It returns the transitions it made (inactive→pending, pending→firing,
// pending→inactive, firing→inactive), with labels and value, ordered by
// fingerprint. holding should not hold two samples that give the same
// alert labels (Eval refuses those, as Prometheus does); if it does, the
// first wins.
func Apply(r *Rule, active map[string]*Alert, holding []Sample, ts time.Time) []Transition {
	var trans []Transition
	note := func(a *Alert, from, to State) {
		trans = append(trans, Transition{
			RuleID: r.ID, Fingerprint: a.Fingerprint, Labels: a.Labels,
			From: from, To: to, At: ts, Value: a.Value,
		})
	}
	anns := newAnnotator(r)
	seen := make(map[string]bool, len(holding))
	for _, s := range holding {
		labels := AlertLabels(r, s.Labels)
		fp := Fingerprint(labels)
		if seen[fp] {
			continue
		}
		seen[fp] = true
		annotations := anns.expand(s)
		if a, ok := active[fp]; ok && a.State != StateInactive {
			a.Value, a.Annotations = s.V, annotations
			continue
		}
		a := &Alert{
			RuleID: r.ID, Fingerprint: fp, Labels: labels, Annotations: annotations,
			State: StatePending, Value: s.V, ActiveAt: ts,
		}
		active[fp] = a
		note(a, StateInactive, StatePending)
	}

	keepFor := time.Duration(r.KeepFiringFor)
	for _, fp := range slices.Sorted(maps.Keys(active)) {
		a := active[fp]
		if !seen[fp] {
			keepFiring := false
			if a.State == StateFiring && keepFor > 0 {
				if a.KeepFiringSince.IsZero() {
					a.KeepFiringSince = ts
				}
				keepFiring = ts.Sub(a.KeepFiringSince) < keepFor
			}
			if a.State == StatePending || (!a.ResolvedAt.IsZero() && ts.Sub(a.ResolvedAt) > ResolvedRetention) {
				delete(active, fp)
			}
			if a.State != StateInactive && !keepFiring {
				note(a, a.State, StateInactive)
				a.State, a.ResolvedAt = StateInactive, ts
			}
			if !keepFiring {
				continue
			}
		} else {
			a.KeepFiringSince = time.Time{}
		}
		if a.State == StatePending && ts.Sub(a.ActiveAt) >= time.Duration(r.For) {
			a.State, a.FiredAt = StateFiring, ts
			note(a, StatePending, StateFiring)
		}
	}
	// Stable order: by fingerprint, each alert's own changes in the order
	// they happened.
	slices.SortStableFunc(trans, func(a, b Transition) int { return strings.Compare(a.Fingerprint, b.Fingerprint) })
	return trans
}

// annotator expands a rule's annotations, each template parsed once per
// evaluation rather than once per alert.
type annotator struct {
	keys  []string
	texts []string
	tmpls []*template.Template // nil: no template syntax, or it does not parse
	errs  []error
}

func newAnnotator(r *Rule) *annotator {
	an := &annotator{keys: slices.Sorted(maps.Keys(r.Annotations))}
	for _, k := range an.keys {
		text := r.Annotations[k]
		var t *template.Template
		var err error
		if strings.Contains(text, "{{") {
			t, err = parseTemplate(text)
		}
		an.texts, an.tmpls, an.errs = append(an.texts, text), append(an.tmpls, t), append(an.errs, err)
	}
	return an
}

func (an *annotator) expand(s Sample) map[string]string {
	if len(an.keys) == 0 {
		return nil
	}
	out := make(map[string]string, len(an.keys))
	var labels map[string]string
	for i, k := range an.keys {
		switch {
		case an.errs[i] != nil:
			out[k] = expandError(an.errs[i])
		case an.tmpls[i] == nil:
			out[k] = an.texts[i]
		default:
			if labels == nil {
				labels = s.Labels.Map()
			}
			out[k] = execTemplate(an.tmpls[i], labels, s.V)
		}
	}
	return out
}

// NeedsSending is Prometheus's needsSending: never while pending; when it
// resolved after the last send; else when the last send is more than
// resendDelay before ts (strictly, as Prometheus's Before).
func NeedsSending(a *Alert, ts time.Time, resendDelay time.Duration) bool {
	if a.State == StatePending {
		return false
	}
	if a.ResolvedAt.After(a.LastSentAt) {
		return true
	}
	return a.LastSentAt.Add(resendDelay).Before(ts)
}

// ValidUntil is Prometheus's endsAt for a firing alert sent at ts:
// ts + 4*max(resendDelay, interval), which survives two failed
// evaluations or sends before the Alertmanager resolves it by itself.
func ValidUntil(ts time.Time, resendDelay, interval time.Duration) time.Time {
	return ts.Add(4 * max(resendDelay, interval))
}
