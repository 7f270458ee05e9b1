package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"switchyard/alerting"
)

// Webhook payloads are Alertmanager's (v0.25 notify/webhook Message and
// template.Data), field for field, so that receivers written for
// Alertmanager work unchanged.
type webhookMessage struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []webhookAlert    `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

type webhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // zero ("0001-01-01T00:00:00Z") while firing, as Alertmanager sends it
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

// labelsFingerprint is Alertmanager's fingerprint of a label set, so that
// the payload's fingerprint is the one Alertmanager would show for the
// same alert.
func labelsFingerprint(ls map[string]string) string {
	return labelSet(ls).Fingerprint().String()
}

func labelSet(ls map[string]string) model.LabelSet {
	out := make(model.LabelSet, len(ls))
	for k, v := range ls {
		out[model.LabelName(k)] = model.LabelValue(v)
	}
	return out
}

// hookAlert is an alert as the webhook groups take it from Notify,
// computed once for every webhook target.
type hookAlert struct {
	key          string // group key
	groupLabels  map[string]string
	fp           string // Alertmanager's fingerprint
	labels       map[string]string
	annotations  map[string]string
	startsAt     time.Time
	endsAt       time.Time // the resolve time; zero while firing
	resolved     bool
	silenced     bool
	generatorURL string
}

// derived is what webhookAlerts works out of an alert, kept from one
// evaluation to the next: the same alerts come every evaluation, and
// Notify must stay cheap.
type derived struct {
	labels, annotations map[string]string // copies: the evaluator owns its maps
	groupLabels         map[string]string
	fp, key, url        string
	version             int64 // of the rule
	groupBy             []string
	seen                uint64
}

// webhookAlerts turns ns into hookAlerts: firing and resolved alerts, each
// with its group (the rule and its GroupBy label values).
func (d *Dispatcher) webhookAlerts(at time.Time, ns []alerting.Notification) []hookAlert {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hookSeq++
	var out []hookAlert
	for _, n := range ns {
		if n.Rule == nil {
			continue
		}
		for i := range n.Alerts {
			a := &n.Alerts[i]
			h := hookAlert{startsAt: a.FiredAt, silenced: len(a.Silenced) > 0}
			switch {
			case a.State == alerting.StateFiring:
			case a.State == alerting.StateInactive && !a.ResolvedAt.IsZero():
				h.resolved, h.endsAt = true, a.ResolvedAt
			default:
				continue // pending alerts are never sent
			}
			if h.startsAt.IsZero() {
				h.startsAt = a.ActiveAt
			}
			x := d.derive(n.Rule, a)
			h.labels, h.annotations, h.fp = x.labels, x.annotations, x.fp
			h.groupLabels, h.key, h.generatorURL = x.groupLabels, x.key, x.url
			out = append(out, h)
		}
	}
	maps.DeleteFunc(d.hookCache, func(_ alertKey, x *derived) bool { return x.seen != d.hookSeq })
	return out
}

// derive returns what the webhooks need of a, from the cache while a's
// labels and rule are unchanged. Callers hold d.mu.
func (d *Dispatcher) derive(r *alerting.Rule, a *alerting.Alert) *derived {
	k := keyOf(r, a)
	x := d.hookCache[k]
	if x == nil || x.version != r.Version || !slices.Equal(x.groupBy, r.GroupBy) || !maps.Equal(x.labels, a.Labels) {
		x = &derived{labels: maps.Clone(a.Labels), version: r.Version, groupBy: slices.Clone(r.GroupBy)}
		if x.labels == nil {
			x.labels = map[string]string{}
		}
		x.fp = labelsFingerprint(x.labels)
		x.groupLabels = groupLabels(r, x.labels)
		x.key = groupKey(r.ID, x.groupLabels)
		x.url = d.link(r, a)
		d.hookCache[k] = x
	}
	if x.annotations == nil || !maps.Equal(x.annotations, a.Annotations) {
		x.annotations = maps.Clone(a.Annotations)
		if x.annotations == nil {
			x.annotations = map[string]string{}
		}
	}
	x.seen = d.hookSeq
	return x
}

// groupLabels are what an alert is grouped by: its alertname (the rule)
// and the rule's GroupBy labels it has, as Alertmanager's group_by.
func groupLabels(r *alerting.Rule, ls map[string]string) map[string]string {
	out := map[string]string{}
	if v, ok := ls[string(model.AlertNameLabel)]; ok {
		out[string(model.AlertNameLabel)] = v
	}
	for _, l := range r.GroupBy {
		if v, ok := ls[l]; ok {
			out[l] = v
		}
	}
	return out
}

// groupKey names a group: the rule's id (which survives a rename) and the
// group labels, in Alertmanager's "route:labels" form.
func groupKey(ruleID int64, gl map[string]string) string {
	return "rule/" + strconv.FormatInt(ruleID, 10) + ":" + labelSet(gl).String()
}

// groups are one webhook target's aggregation groups: Alertmanager's
// dispatch.aggrGroup with its notification log (dedup) entry.
type groups struct {
	d      *Dispatcher
	target string

	mu       sync.Mutex
	m        map[string]*group
	loaded   bool
	restored map[string]alerting.GroupState // persisted entries no group has claimed yet
	// notified: Notify ran since the state was loaded, so a restored
	// entry no group claimed is of a group that is gone.
	notified bool
	seq      uint64 // Notify calls, to tell the alerts a call left out
}

type group struct {
	key         string
	labels      map[string]string
	alerts      map[string]*groupAlert // by fingerprint
	next        time.Time              // the next flush
	outstanding bool                   // a payload is queued or being sent
	entry       *entry                 // what the receiver was last told; nil: nothing
	persisted   bool
}

type groupAlert struct {
	hookAlert
	seen uint64
}

// entry is Alertmanager's notification log entry: the firing and resolved
// alerts of the last notification and its time. A restored entry knows
// only hashes of the two sets (firing and resolved nil).
type entry struct {
	firing, resolved         map[string]bool
	firingHash, resolvedHash string
	at                       time.Time
}

func newEntry(firing, resolved map[string]bool, at time.Time) *entry {
	return &entry{firing: firing, resolved: resolved, firingHash: setHash(firing), resolvedHash: setHash(resolved), at: at}
}

// hash is what GroupState.Hash holds: the two sets' hashes.
func (e *entry) hash() string { return e.firingHash + "/" + e.resolvedHash }

func restoredEntry(gs alerting.GroupState) *entry {
	f, r, ok := strings.Cut(gs.Hash, "/")
	if !ok {
		f, r = gs.Hash, gs.Hash // unreadable: matches no set, so the group is told again
	}
	return &entry{firingHash: f, resolvedHash: r, at: gs.LastNotified}
}

func setHash(s map[string]bool) string {
	h := sha256.New()
	for _, fp := range slices.Sorted(maps.Keys(s)) {
		h.Write([]byte(fp))
		h.Write([]byte{','})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// hasFiring: the last notification had firing alerts.
func (e *entry) hasFiring() bool {
	if e.firing != nil {
		return len(e.firing) > 0
	}
	return e.firingHash != setHash(nil)
}

// firingHas: every alert of s was firing at the last notification. With
// only a hash, an unequal set counts as new: telling a receiver twice is
// better than not at all.
func (e *entry) firingHas(s map[string]bool) bool {
	if e.firing == nil {
		return setHash(s) == e.firingHash
	}
	return subset(s, e.firing)
}

func (e *entry) resolvedHas(s map[string]bool) bool {
	if e.resolved == nil {
		return len(s) == 0 || setHash(s) == e.resolvedHash
	}
	return subset(s, e.resolved)
}

func subset(s, of map[string]bool) bool {
	for k := range s {
		if !of[k] {
			return false
		}
	}
	return true
}

// needsUpdate is Alertmanager's DedupStage.needsUpdate with send_resolved:
// notify about a new firing alert, about every alert having resolved,
// about a newly resolved one, and else once RepeatInterval has passed.
func needsUpdate(e *entry, firing, resolved map[string]bool, now time.Time, repeat time.Duration) bool {
	switch {
	case e == nil:
		return len(firing) > 0
	case !e.firingHas(firing):
		return true
	case len(firing) == 0:
		return e.hasFiring()
	case !e.resolvedHas(resolved):
		return true
	}
	return e.at.Before(now.Add(-repeat))
}

// note is one payload for one group, and what the group must learn when
// it has been delivered.
type note struct {
	key      string
	body     []byte
	entry    *entry
	resolved map[string]time.Time // resolved alerts of the group at the flush, with their endsAt
}

func newGroups(d *Dispatcher, target string) *groups {
	return &groups{d: d, target: target, m: map[string]*group{}}
}

// restore takes the persisted entries of this target; groups created from
// now on (or before, by an early Notify) claim theirs by key.
func (g *groups) restore(gs []alerting.GroupState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.restored = map[string]alerting.GroupState{}
	for _, s := range gs {
		if gr := g.m[s.Key]; gr != nil {
			if gr.entry == nil {
				gr.entry = restoredEntry(s)
			}
			gr.persisted = true
			continue
		}
		g.restored[s.Key] = s
	}
	g.loaded = true
}

// update takes one evaluation's alerts into the groups. An alert the
// evaluation no longer has resolves at `at` (as an Alertmanager resolves
// one whose endsAt has passed).
func (g *groups) update(at time.Time, in []hookAlert) {
	o := &g.d.opts
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	if g.loaded {
		g.notified = true
	}
	for _, h := range in {
		gr := g.m[h.key]
		if gr == nil {
			gr = &group{key: h.key, labels: h.groupLabels, alerts: map[string]*groupAlert{}, next: at.Add(o.GroupWait)}
			// As Alertmanager: an alert older than group_wait is
			// notified at once, it has waited long enough.
			if h.startsAt.Add(o.GroupWait).Before(at) {
				gr.next = at
			}
			if s, ok := g.restored[h.key]; ok {
				gr.entry, gr.persisted = restoredEntry(s), true
				delete(g.restored, h.key)
			}
			g.m[h.key] = gr
		}
		if a := gr.alerts[h.fp]; a != nil {
			a.hookAlert, a.seen = h, g.seq
		} else {
			gr.alerts[h.fp] = &groupAlert{hookAlert: h, seen: g.seq}
		}
	}
	for _, gr := range g.m {
		for _, a := range gr.alerts {
			if a.seen != g.seq && !a.resolved {
				a.resolved, a.endsAt = true, at
			}
		}
	}
}

// flush is one tick of every group due at now: Alertmanager's
// aggrGroup.flush through its dedup stage. It returns the payloads to
// queue.
func (g *groups) flush(now time.Time) []*note {
	o := &g.d.opts
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.loaded {
		return nil
	}
	if g.notified {
		for key := range g.restored {
			g.d.persist.delete(g.target, key)
		}
		clear(g.restored)
	}
	var due []string
	for key, gr := range g.m {
		if !gr.outstanding && !now.Before(gr.next) {
			due = append(due, key)
		}
	}
	slices.Sort(due) // payloads queue in a stable order
	var out []*note
	for _, key := range due {
		gr := g.m[key]
		gr.next = now.Add(o.GroupInterval)
		firing, resolved := map[string]bool{}, map[string]bool{}
		sent := map[string]time.Time{}
		var send []*groupAlert
		for fp, a := range gr.alerts {
			if a.resolved {
				sent[fp] = a.endsAt
			}
			if a.silenced {
				continue // muted, as Alertmanager's silences mute
			}
			if a.resolved {
				resolved[fp] = true
			} else {
				firing[fp] = true
			}
			send = append(send, a)
		}
		if !needsUpdate(gr.entry, firing, resolved, now, o.RepeatInterval) {
			g.delivered(gr, nil, sent)
			continue
		}
		e := newEntry(firing, resolved, now)
		if len(send) == 0 {
			// Every alert the receiver knows of is silenced now: nothing
			// to send, but the receiver is left with a quiet group, so
			// that an alert unmuted later is news to it again.
			g.delivered(gr, e, sent)
			continue
		}
		body, err := json.Marshal(g.message(gr, send))
		if err != nil {
			g.d.log.Error("encode webhook payload", "target", g.target, "err", err)
			continue
		}
		gr.outstanding = true
		out = append(out, &note{key: key, body: body, entry: e, resolved: sent})
	}
	return out
}

// done is told how a note's delivery ended.
func (g *groups) done(n *note, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gr := g.m[n.key]
	if gr == nil {
		return
	}
	gr.outstanding = false
	if ok {
		g.delivered(gr, n.entry, n.resolved)
	}
}

// delivered records that the receiver now knows e (nil: what it knew
// stays), and drops the resolved alerts it was told of, as Alertmanager
// does after a flush; a group left empty is gone. Callers hold g.mu.
func (g *groups) delivered(gr *group, e *entry, resolved map[string]time.Time) {
	for fp, end := range resolved {
		// Unless it fired again (or resolved anew) meanwhile.
		if a := gr.alerts[fp]; a != nil && a.resolved && a.endsAt.Equal(end) {
			delete(gr.alerts, fp)
		}
	}
	if e != nil {
		gr.entry = e
	}
	if len(gr.alerts) == 0 {
		delete(g.m, gr.key)
		if gr.persisted {
			g.d.persist.delete(g.target, gr.key)
		}
		return
	}
	if e != nil {
		gr.persisted = true
		g.d.persist.save(alerting.GroupState{Target: g.target, Key: gr.key, Hash: e.hash(), LastNotified: e.at})
	}
}

// message builds the payload of a group, as Alertmanager's template.Data.
func (g *groups) message(gr *group, as []*groupAlert) webhookMessage {
	sort.Slice(as, func(i, j int) bool { return alertLess(as[i].labels, as[j].labels) })
	m := webhookMessage{
		// Alertmanager quotes the receiver name as a regexp; a target
		// name has nothing to quote, but the payload stays the same.
		Receiver:          regexp.QuoteMeta(g.target),
		Status:            statusResolved,
		Alerts:            make([]webhookAlert, 0, len(as)),
		GroupLabels:       maps.Clone(gr.labels),
		CommonLabels:      map[string]string{},
		CommonAnnotations: map[string]string{},
		ExternalURL:       g.d.opts.ExternalURL,
		Version:           "4",
		GroupKey:          gr.key,
	}
	for _, a := range as {
		w := webhookAlert{
			Status:       statusFiring,
			Labels:       a.labels,
			Annotations:  a.annotations,
			StartsAt:     a.startsAt.UTC(),
			GeneratorURL: a.generatorURL,
			Fingerprint:  a.fp,
		}
		if a.resolved {
			w.Status, w.EndsAt = statusResolved, a.endsAt.UTC()
		} else {
			m.Status = statusFiring
		}
		m.Alerts = append(m.Alerts, w)
	}
	if len(as) > 0 {
		maps.Copy(m.CommonLabels, as[0].labels)
		maps.Copy(m.CommonAnnotations, as[0].annotations)
		for _, a := range as[1:] {
			maps.DeleteFunc(m.CommonLabels, func(k, v string) bool { w, ok := a.labels[k]; return !ok || w != v })
			maps.DeleteFunc(m.CommonAnnotations, func(k, v string) bool { w, ok := a.annotations[k]; return !ok || w != v })
		}
	}
	return m
}

// alertLess is Alertmanager's types.AlertSlice order: by job, then
// instance, then the whole label set.
func alertLess(a, b map[string]string) bool {
	for _, k := range []string{"job", "instance"} {
		av, aok := a[k]
		bv, bok := b[k]
		switch {
		case !aok && !bok:
			continue
		case !aok:
			return false
		case !bok:
			return true
		case av != bv:
			return av < bv
		}
	}
	return labelSet(a).Before(labelSet(b))
}

// postNote delivers one payload and tells its group how it went.
func (t *target) postNote(ctx context.Context, n *note) {
	_, _, err := t.send(ctx, "notify", http.MethodPost, t.cfg.URL, n.body)
	if err != nil && ctx.Err() == nil {
		t.d.log.Warn("webhook notification not delivered", "target", t.cfg.Name, "group", n.key, "err", err)
	}
	t.wh.done(n, err == nil)
}

// persister writes group state on a goroutine of its own, so that neither
// Notify nor a flush waits for SQLite. Only the latest operation per group
// is kept: a save followed by a delete is a delete.
type persister struct {
	st  StateStore
	log *slog.Logger

	mu   sync.Mutex
	ops  map[[2]string]*alerting.GroupState // nil: delete
	wake chan struct{}
}

func newPersister(st StateStore, log *slog.Logger) *persister {
	return &persister{st: st, log: log, ops: map[[2]string]*alerting.GroupState{}, wake: make(chan struct{}, 1)}
}

func (p *persister) save(g alerting.GroupState) { p.put(g.Target, g.Key, &g) }

func (p *persister) delete(target, key string) { p.put(target, key, nil) }

func (p *persister) put(target, key string, g *alerting.GroupState) {
	if p.st == nil {
		return
	}
	p.mu.Lock()
	p.ops[[2]string{target, key}] = g
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run writes until ctx is done, then writes what is left. Run cancels ctx
// only once the targets have stopped, so that a delivery that ended during
// shutdown is recorded too; and no write is cut short by it.
func (p *persister) run(ctx context.Context) {
	wctx := context.WithoutCancel(ctx)
	for {
		select {
		case <-ctx.Done():
			p.write(wctx)
			return
		case <-p.wake:
			p.write(wctx)
		}
	}
}

func (p *persister) write(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	p.mu.Lock()
	ops := p.ops
	p.ops = map[[2]string]*alerting.GroupState{}
	p.mu.Unlock()
	for k, g := range ops {
		var err error
		if g == nil {
			err = p.st.DeleteGroup(ctx, k[0], k[1])
		} else {
			err = p.st.SaveGroup(ctx, *g)
		}
		if err != nil {
			p.log.Error("persist notification group", "target", k[0], "group", k[1], "err", err)
		}
	}
}
