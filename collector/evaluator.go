package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Status is the verdict on a consumer, in Burrow's vocabulary. Partitions get
// OK, WARN, STOP, STALL or REWIND; groups get OK, WARN or ERR.
type Status uint8

// The statuses. The order of the constants is not their severity; use
// Severity to rank and MetricValue to export.
const (
	StatusOK     Status = iota // caught up, or lag going down now and then
	StatusWarn                 // committing, but lag never went down across the window
	StatusStop                 // no commit for longer than the window spans, and behind
	StatusStall                // committing the same offset while behind
	StatusRewind               // the committed offset went backwards
	StatusErr                  // group level: some partition is STOP, STALL or REWIND
)

var statusNames = [...]string{"OK", "WARN", "STOP", "STALL", "REWIND", "ERR"}

// String is the status's upper-case name, as Burrow prints it.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// MarshalText makes a status read "STALL" rather than 3 in JSON.
func (s Status) MarshalText() ([]byte, error) {
	if int(s) >= len(statusNames) {
		return nil, fmt.Errorf("marshal status %d: unknown", uint8(s))
	}
	return []byte(statusNames[s]), nil
}

// UnmarshalText parses a name written by MarshalText.
func (s *Status) UnmarshalText(b []byte) error {
	i := slices.Index(statusNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("unmarshal status %q: unknown", b)
	}
	*s = Status(i)
	return nil
}

// Severity ranks statuses for "worst partition" and sorting: OK 0, WARN 1,
// STOP 2, STALL 3, REWIND 4, and ERR 2. A stalled or rewound consumer ranks
// above a stopped one because it is still running and doing damage (a
// rewind re-processes messages), whereas a stop is often a deliberate
// shutdown. ERR only ever compares with OK and WARN (groups), so sharing 2
// with STOP is harmless.
func (s Status) Severity() int {
	switch s {
	case StatusWarn:
		return 1
	case StatusStop, StatusErr:
		return 2
	case StatusStall:
		return 3
	case StatusRewind:
		return 4
	}
	return 0
}

// MetricValue is the status as a Prometheus gauge value, one distinct,
// stable number per status so that partition and group series share one
// encoding and alert rules can test for equality:
//
//	OK=0 WARN=1 ERR=2 STOP=3 STALL=4 REWIND=5
//
// "> 1" means "an error of some kind" at both levels. These numbers are part
// of the exported metrics' contract; do not renumber.
func (s Status) MetricValue() float64 {
	switch s {
	case StatusWarn:
		return 1
	case StatusErr:
		return 2
	case StatusStop:
		return 3
	case StatusStall:
		return 4
	case StatusRewind:
		return 5
	}
	return 0
}

// groupLevel maps a partition status to what the group shows.
func (s Status) groupLevel() Status {
	switch s {
	case StatusStop, StatusStall, StatusRewind, StatusErr:
		return StatusErr
	}
	return s
}

// PartitionKey names one consumer group's position on one partition.
type PartitionKey struct {
	Cluster   string `json:"cluster"`
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// Commit is one observed commit in a partition's window: the committed
// offset, the lag behind the high watermark at the time, and when it was
// observed.
type Commit struct {
	Offset int64     `json:"offset"`
	Lag    int64     `json:"lag"`
	Time   time.Time `json:"time"`
}

// PartitionWindow is what the evaluator keeps of one partition, and what a
// WindowStore persists: the last commits, and the partition's high
// watermarks at the last polls.
type PartitionWindow struct {
	// Commits are the window's commits, oldest first.
	Commits []Commit `json:"commits"`
	// Watermarks are the high watermarks seen at the last Window polls,
	// oldest first, one per poll whether or not the group committed:
	// Burrow's "broker offsets", which the recent-lag-zero rule reads
	// (judge). They are kept across restarts with the commits, since a
	// consumer that was caught up at the polls before a restart is still
	// one that was caught up recently.
	Watermarks []int64 `json:"watermarks"`
}

// PartitionStatus is the verdict on one partition.
type PartitionStatus struct {
	Key    PartitionKey `json:"key"`
	Status Status       `json:"status"`
	// Reason is one line naming the offsets and times that decided Status,
	// starting with the status: "STALL: offset 1842 unchanged for ...".
	Reason string `json:"reason"`
	// CurrentLag is the lag at the latest observation, which may be newer
	// than the window's last commit (a stopped consumer's lag keeps growing).
	CurrentLag int64 `json:"current_lag"`
	// Complete is true when the window holds the full number of commits;
	// until then the status is OK by rule.
	Complete bool `json:"complete"`
	// Commits is how many commits the window holds.
	Commits int `json:"commits"`
}

// PartitionLag names a partition and its lag.
type PartitionLag struct {
	Key PartitionKey `json:"key"`
	Lag int64        `json:"lag"`
}

// GroupStatus is the verdict on a consumer group: its worst partition.
type GroupStatus struct {
	Cluster string `json:"cluster"`
	Group   string `json:"group"`
	// Status is OK, WARN or ERR (any partition STOP, STALL or REWIND).
	Status Status `json:"status"`
	// Reason is the worst partition's reason prefixed by topic/partition:
	// "orders.v1/3: STALL: offset 1842 unchanged ...".
	Reason   string `json:"reason"`
	TotalLag int64  `json:"total_lag"`
	// MaxLag is the partition with the largest current lag (the first in
	// order among equals); zero when there are no partitions.
	MaxLag PartitionLag `json:"max_lag"`
	// Complete is the fraction (0..1) of partitions whose window is
	// complete; 0 with no partitions.
	Complete   float64           `json:"complete"`
	Partitions []PartitionStatus `json:"partitions"`
}

// EvaluatorOptions configures an Evaluator. The zero value is Burrow's
// defaults with no persistence.
type EvaluatorOptions struct {
	// Window is how many commits per partition the rules look at; default
	// DefaultWindow, at least 2.
	Window int
	// MinDistance: a commit observed less than this after the previous one
	// replaces it instead of being appended, so a consumer committing every
	// second does not shrink the window to a few seconds. Default 0 (every
	// commit is kept). Set it near the collection interval or above.
	MinDistance time.Duration
	// AllowedLag is the lag that still counts as caught up wherever the
	// rules say "lag 0". Default 0. Set it to 1 for transactional
	// (exactly-once) producers, whose commit marker occupies the last
	// offset, so a consumer that read everything still shows lag 1.
	AllowedLag int64
	// ForgetAfter drops a partition not observed for this long (its group
	// deleted, the topic gone), so memory and the store stay bounded;
	// default 24h.
	ForgetAfter time.Duration
	// Store persists windows across restarts; nil keeps them in memory only.
	Store WindowStore
	Now   func() time.Time
}

// DefaultWindow is Burrow's default number of commits per window.
const DefaultWindow = 10

// Evaluator judges consumers by Burrow's rules over a sliding window of the
// last Window commits per (cluster, group, topic, partition). It is safe for
// concurrent use: the collector observes while handlers evaluate.
//
// A cycle is: Observe (or ObserveSnapshot) every partition, then Flush,
// which forgets partitions not seen for ForgetAfter and saves every window
// that changed in one store transaction. Evaluate and EvaluateGroup can be
// called at any time.
type Evaluator struct {
	opts EvaluatorOptions

	mu         sync.Mutex
	groups     map[groupID]*groupState
	forgotten  []PartitionKey // pruned, not yet deleted from the store
	highsSaved time.Time      // when Flush last saved watermark-only changes
}

type groupID struct{ cluster, group string }

type topicPartition struct {
	topic     string
	partition int32
}

type groupState struct {
	parts map[topicPartition]*partState
}

type partState struct {
	window []Commit  // oldest first, at most opts.Window
	highs  []int64   // high watermarks of the last opts.Window observations, oldest first
	lag    int64     // at the latest observation
	seen   time.Time // latest observation
	dirty  bool      // window changed since the last Flush
	// highsDirty: highs changed since they were last saved. They are
	// saved with any window change, and otherwise at most every
	// highsSaveEvery (Flush).
	highsDirty bool
}

// NewEvaluator validates opts and returns an Evaluator. Call Restore before
// the first Observe when opts.Store is set.
func NewEvaluator(opts EvaluatorOptions) (*Evaluator, error) {
	switch {
	case opts.Window == 0:
		opts.Window = DefaultWindow
	case opts.Window < 2:
		return nil, fmt.Errorf("evaluator: window %d: need at least 2 commits to judge a trend", opts.Window)
	}
	if opts.MinDistance < 0 {
		return nil, fmt.Errorf("evaluator: negative min distance %v", opts.MinDistance)
	}
	if opts.AllowedLag < 0 {
		return nil, fmt.Errorf("evaluator: negative allowed lag %d", opts.AllowedLag)
	}
	if opts.ForgetAfter < 0 {
		return nil, fmt.Errorf("evaluator: negative forget-after %v", opts.ForgetAfter)
	}
	if opts.ForgetAfter == 0 {
		opts.ForgetAfter = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Evaluator{opts: opts, groups: make(map[groupID]*groupState)}, nil
}

// Observe records that key's group had committed offset committed while the
// partition's high watermark was high, as seen at time at. A negative
// committed (no commit yet) or high (watermark unknown) is ignored.
//
// Polling cannot see individual commits, only the committed offset at each
// collection. Observe therefore counts an unchanged offset seen at a later
// time as a new commit. That is Burrow's behaviour for a live consumer,
// which stores every commit including repeats, and it is what lets STALL
// (the same offset committed again and again) be told apart at all: were
// only changes recorded, a stuck consumer's window would never fill. A
// consumer that is not running does not commit; ObserveSnapshot knows which
// partitions have no live member and does not count repeats for them, so
// they turn STOP instead. Callers without membership data get the Observe
// behaviour.
//
// An observation at the same time as the window's last commit replaces it;
// one less than MinDistance after it replaces it too (offset, lag and
// time); an older one is dropped.
func (e *Evaluator) Observe(key PartitionKey, committed, high int64, at time.Time) {
	e.observe(key, committed, high, at, true)
}

// ObserveSnapshot observes every committed partition of every readable group
// in snap, at snap.TakenAt (the evaluator's Now when that is zero). A
// partition without a live member (an empty group, or a consumer that
// commits through assign() without joining) only records a commit when its
// offset moved: nobody is there to repeat a commit, so an unchanged offset is
// not a new one. Consumers that commit without membership and then get stuck
// therefore show STOP rather than STALL; both are ERR for the group.
func (e *Evaluator) ObserveSnapshot(snap ClusterSnapshot) {
	at := snap.TakenAt
	if at.IsZero() {
		at = e.opts.Now()
	}
	for _, g := range snap.Groups {
		if g.Error != "" {
			continue
		}
		for _, p := range g.Partitions {
			if p.Error != "" {
				continue
			}
			key := PartitionKey{Cluster: snap.Cluster, Group: g.Name, Topic: p.Topic, Partition: p.Partition}
			e.observe(key, p.Committed, p.High, at, p.Member != "")
		}
	}
}

func (e *Evaluator) observe(key PartitionKey, committed, high int64, at time.Time, repeats bool) {
	if committed < 0 || high < 0 {
		return
	}
	at = at.Round(0) // wall clock only: the same arithmetic before and after a restore
	lag := max(0, high-committed)

	e.mu.Lock()
	defer e.mu.Unlock()
	gid := groupID{key.Cluster, key.Group}
	g := e.groups[gid]
	if g == nil {
		g = &groupState{parts: make(map[topicPartition]*partState)}
		e.groups[gid] = g
	}
	tp := topicPartition{key.Topic, key.Partition}
	st := g.parts[tp]
	if st == nil {
		st = &partState{window: make([]Commit, 0, e.opts.Window)}
		g.parts[tp] = st
	}
	switch {
	case at.After(st.seen) || len(st.highs) == 0:
		st.pushHigh(high, e.opts.Window)
		st.lag, st.seen = lag, at
	case at.Equal(st.seen):
		if last := &st.highs[len(st.highs)-1]; *last != high {
			*last = high
			st.highsDirty = true
		}
		st.lag = lag
	}

	c := Commit{Offset: committed, Lag: lag, Time: at}
	n := len(st.window)
	if n == 0 {
		st.window = append(st.window, c)
		st.dirty = true
		return
	}
	last := &st.window[n-1]
	switch {
	case at.Before(last.Time):
		return // out of order
	case at.Equal(last.Time):
		if *last != c {
			*last = c
			st.dirty = true
		}
		return
	case committed == last.Offset && !repeats:
		return
	case at.Sub(last.Time) < e.opts.MinDistance:
		*last = c
		st.dirty = true
		return
	}
	if n >= e.opts.Window {
		copy(st.window, st.window[n-e.opts.Window+1:])
		st.window = st.window[:e.opts.Window-1]
	}
	st.window = append(st.window, c)
	st.dirty = true
}

// pushHigh appends one poll's high watermark, keeping the last size. An
// idle partition's ring (the same watermark again) does not change, so a
// quiet topic costs no writes.
func (st *partState) pushHigh(high int64, size int) {
	if len(st.highs) == size && !slices.ContainsFunc(st.highs, func(h int64) bool { return h != high }) {
		return
	}
	if len(st.highs) >= size {
		copy(st.highs, st.highs[len(st.highs)-size+1:])
		st.highs = st.highs[:size-1]
	}
	st.highs = append(st.highs, high)
	st.highsDirty = true
}

// highsSaveEvery bounds how often a partition whose commits did not change
// has its polls' watermarks saved: every poll would rewrite every window of
// a cluster each cycle while the rings fill (the first Window polls after
// a start) and, on a busy topic, for every group without a member — for
// the sake of a restart, which then at worst judges recent lag zero on
// watermarks up to this much older.
const highsSaveEvery = time.Minute

// Evaluate judges key's partition at now. A partition never observed is OK
// with an incomplete window, like one just started.
func (e *Evaluator) Evaluate(key PartitionKey, now time.Time) PartitionStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.evaluateLocked(key, now)
}

func (e *Evaluator) evaluateLocked(key PartitionKey, now time.Time) PartitionStatus {
	var ps PartitionStatus
	if st := e.lookupLocked(key); st != nil {
		ps = judge(st.window, st.highs, st.lag, now, e.opts.Window, e.opts.AllowedLag)
	} else {
		ps = judge(nil, nil, 0, now, e.opts.Window, e.opts.AllowedLag)
	}
	ps.Key = key
	return ps
}

// judge applies Burrow's rules, in Burrow's order, to a window (oldest
// first), the high watermarks of the last polls (highs) and the current
// lag. The first rule that matches decides, with one exception, Burrow's
// recent-lag-zero rule (Burrow #303): STOP does not apply while some
// recent poll's high watermark was at or below the last committed offset
// (plus the allowed lag), because then the consumer had read everything a
// few polls ago, and an old last commit only means that nothing arrived
// to commit. Evaluation then goes on with the rules after STOP. Without it
// a consumer that commits only when it has something to commit (one that
// commits on checkpoints, or through assign() without a live member, whose
// unchanged offsets ObserveSnapshot does not count as commits) would turn
// STOP — its group ERR — at the first message after an idle spell. Once
// the watermarks of the last Window polls are all above the last commit,
// STOP applies again.
func judge(w []Commit, highs []int64, lag int64, now time.Time, size int, allowed int64) PartitionStatus {
	n := len(w)
	ps := PartitionStatus{CurrentLag: lag, Complete: n >= size, Commits: n}
	ok := func(format string, args ...any) PartitionStatus {
		ps.Status, ps.Reason = StatusOK, "OK: "+fmt.Sprintf(format, args...)
		return ps
	}
	if n == 0 {
		return ok("no commits observed yet")
	}
	// 1. Too little history to judge a trend.
	if n < size {
		return ok("window incomplete (%d of %d commits)", n, size)
	}
	// 2. Caught up now.
	if lag <= allowed {
		if lag == 0 {
			return ok("lag 0")
		}
		return ok("lag %d, within the allowed %d", lag, allowed)
	}
	first, last := w[0], w[n-1]
	span := last.Time.Sub(first.Time)
	// 3. Behind, and silent for longer than the window took to fill —
	// unless a recent poll found it caught up (recent lag zero).
	since := now.Sub(last.Time)
	recentHigh, recent := recentLagZero(highs, last.Offset, allowed)
	if since > span && !recent {
		ps.Status = StatusStop
		ps.Reason = fmt.Sprintf("STOP: last commit at offset %d was %s ago, longer than the window's %s span; lag %d",
			last.Offset, fmtDuration(since), fmtDuration(span), lag)
		return ps
	}
	// 4. Caught up at some point in the window: a burst being worked off,
	// or an idle topic whose offsets rightly do not move.
	for i := n - 1; i >= 0; i-- {
		if w[i].Lag <= allowed {
			if since > span { // STOP was set aside by rule 3's exception: say why
				return ok("last commit at offset %d was %s ago, but a recent poll found it caught up (high watermark %d); now %d",
					last.Offset, fmtDuration(since), recentHigh, lag)
			}
			return ok("lag was %d at offset %d at %s, within the window; now %d", w[i].Lag, w[i].Offset, fmtClock(w[i].Time, now), lag)
		}
	}
	// 5. The offset went backwards (a reset, a rollback); the latest
	// rewind is the one to look at.
	for i := n - 1; i > 0; i-- {
		if w[i].Offset < w[i-1].Offset {
			ps.Status = StatusRewind
			ps.Reason = fmt.Sprintf("REWIND: offset went back from %d to %d at %s", w[i-1].Offset, w[i].Offset, fmtClock(w[i].Time, now))
			return ps
		}
	}
	// 6. Committing without progress. With no rewind, offsets never
	// decrease, so first == last means all are equal.
	if first.Offset == last.Offset {
		verb := "grew to"
		if lag <= first.Lag {
			verb = "stayed at"
		}
		ps.Status = StatusStall
		ps.Reason = fmt.Sprintf("STALL: offset %d unchanged for %d commits over %s while lag %s %d",
			last.Offset, n, fmtDuration(span), verb, lag)
		return ps
	}
	// 7. Progress, but never enough to bring lag down.
	dec := -1 // the latest commit whose lag fell
	for i := n - 1; i > 0; i-- {
		if w[i].Lag < w[i-1].Lag {
			dec = i
			break
		}
	}
	if dec < 0 {
		ps.Status = StatusWarn
		if last.Lag > first.Lag {
			ps.Reason = fmt.Sprintf("WARN: lag rose from %d to %d over %d commits in %s", first.Lag, last.Lag, n, fmtDuration(span))
		} else {
			ps.Reason = fmt.Sprintf("WARN: lag stuck at %d over %d commits in %s while the offset moved from %d to %d",
				last.Lag, n, fmtDuration(span), first.Offset, last.Offset)
		}
		return ps
	}
	return ok("lag fell from %d to %d at %s (offset %d); now %d", w[dec-1].Lag, w[dec].Lag, fmtClock(w[dec].Time, now), w[dec].Offset, lag)
}

// recentLagZero is Burrow's checkIfRecentLagZero: whether some recent
// poll's high watermark was at or below the last committed offset, with
// allowed lag counting as caught up as everywhere else. It returns that
// watermark (the newest such one).
func recentLagZero(highs []int64, lastOffset, allowed int64) (int64, bool) {
	for i := len(highs) - 1; i >= 0; i-- {
		if highs[i]-allowed <= lastOffset {
			return highs[i], true
		}
	}
	return 0, false
}

// fmtDuration prints whole seconds without trailing zero units: "9m40s",
// "12m", "1h", "1h5m".
func fmtDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// fmtClock prints t in UTC, with the date only when it is not now's day.
func fmtClock(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}

// EvaluateGroup judges a group at now from the given partitions, in that
// order; nil means every partition observed for the group, sorted by topic
// and partition. The caller passes the partitions the group currently
// commits to (from the latest snapshot), so partitions it dropped do not
// haunt it until ForgetAfter.
func (e *Evaluator) EvaluateGroup(cluster, group string, partitions []PartitionKey, now time.Time) GroupStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	gs := GroupStatus{Cluster: cluster, Group: group}
	if partitions == nil {
		if g := e.groups[groupID{cluster, group}]; g != nil {
			partitions = make([]PartitionKey, 0, len(g.parts))
			for tp := range g.parts {
				partitions = append(partitions, PartitionKey{Cluster: cluster, Group: group, Topic: tp.topic, Partition: tp.partition})
			}
			slices.SortFunc(partitions, func(a, b PartitionKey) int {
				return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
			})
		}
	}
	if len(partitions) == 0 {
		gs.Reason = "OK: no partitions observed"
		return gs
	}
	gs.Partitions = make([]PartitionStatus, 0, len(partitions))
	worst, complete := 0, 0
	for i, k := range partitions {
		ps := e.evaluateLocked(k, now)
		gs.Partitions = append(gs.Partitions, ps)
		gs.TotalLag += ps.CurrentLag
		if i == 0 || ps.CurrentLag > gs.MaxLag.Lag {
			gs.MaxLag = PartitionLag{Key: k, Lag: ps.CurrentLag}
		}
		if ps.Complete {
			complete++
		}
		w := gs.Partitions[worst]
		if sv, wv := ps.Status.Severity(), w.Status.Severity(); sv > wv || sv == wv && ps.CurrentLag > w.CurrentLag {
			worst = i
		}
	}
	w := gs.Partitions[worst]
	gs.Status = w.Status.groupLevel()
	gs.Reason = fmt.Sprintf("%s/%d: %s", w.Key.Topic, w.Key.Partition, w.Reason)
	gs.Complete = float64(complete) / float64(len(partitions))
	return gs
}

// Window returns a copy of key's window, oldest commit first; for pages
// that chart it and for tests.
func (e *Evaluator) Window(key PartitionKey) []Commit {
	e.mu.Lock()
	defer e.mu.Unlock()
	if g := e.groups[groupID{key.Cluster, key.Group}]; g != nil {
		if st := g.parts[topicPartition{key.Topic, key.Partition}]; st != nil {
			return slices.Clone(st.window)
		}
	}
	return nil
}

// Len is the number of partitions the evaluator holds a window for.
func (e *Evaluator) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, g := range e.groups {
		n += len(g.parts)
	}
	return n
}

// Restore loads the persisted windows, so a restarted console judges at once
// instead of showing "window incomplete" for Window cycles. Call it once,
// before the first Observe; partitions already observed keep their state.
// A store that could read only part of its rows returns an error alongside
// them: Restore keeps what was read and returns the error for the caller to
// log, since a partial history beats none.
func (e *Evaluator) Restore(ctx context.Context) error {
	if e.opts.Store == nil {
		return nil
	}
	windows, loadErr := e.opts.Store.Load(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, pw := range windows {
		w := pw.Commits
		if len(w) == 0 {
			continue
		}
		gid := groupID{k.Cluster, k.Group}
		g := e.groups[gid]
		if g == nil {
			g = &groupState{parts: make(map[topicPartition]*partState)}
			e.groups[gid] = g
		}
		tp := topicPartition{k.Topic, k.Partition}
		if g.parts[tp] != nil {
			continue
		}
		w = w[max(0, len(w)-e.opts.Window):] // the window may have been larger before a restart
		st := &partState{window: make([]Commit, len(w), e.opts.Window)}
		for i, c := range w {
			c.Time = c.Time.Round(0)
			st.window[i] = c
		}
		last := st.window[len(w)-1]
		st.lag, st.seen = last.Lag, last.Time
		highs := pw.Watermarks[max(0, len(pw.Watermarks)-e.opts.Window):]
		st.highs = append(make([]int64, 0, e.opts.Window), highs...)
		if n := len(highs); n > 0 {
			// The latest poll's lag: the offset did not move since the
			// last commit (or that poll was the commit), so it is the
			// newest watermark minus it. A memberless consumer's last
			// commit can be hours older than that poll.
			st.lag = max(0, highs[n-1]-last.Offset)
		}
		g.parts[tp] = st
	}
	if loadErr != nil {
		return fmt.Errorf("restore lag windows: %w", loadErr)
	}
	return nil
}

// Flush ends a cycle: it forgets partitions not observed for ForgetAfter and,
// with a Store, saves every window that changed since the last Flush in one
// Save call (one transaction) and deletes the forgotten ones. Call it once
// per cycle even without a Store, since it is what bounds memory. The store
// is written outside the evaluator's lock, so evaluation is not held up by
// disk I/O. After a failed save the windows stay marked for the next Flush.
func (e *Evaluator) Flush(ctx context.Context) error {
	e.mu.Lock()
	now := e.opts.Now()
	for gid, g := range e.groups {
		for tp, st := range g.parts {
			if now.Sub(st.seen) > e.opts.ForgetAfter {
				delete(g.parts, tp)
				if e.opts.Store != nil {
					e.forgotten = append(e.forgotten, PartitionKey{Cluster: gid.cluster, Group: gid.group, Topic: tp.topic, Partition: tp.partition})
				}
			}
		}
		if len(g.parts) == 0 {
			delete(e.groups, gid)
		}
	}
	if e.opts.Store == nil {
		e.mu.Unlock()
		return nil
	}
	save := make(map[PartitionKey]PartitionWindow)
	saveHighs := now.Sub(e.highsSaved) >= highsSaveEvery
	if saveHighs {
		e.highsSaved = now
	}
	for gid, g := range e.groups {
		for tp, st := range g.parts {
			if st.dirty || (st.highsDirty && saveHighs) {
				save[PartitionKey{Cluster: gid.cluster, Group: gid.group, Topic: tp.topic, Partition: tp.partition}] = PartitionWindow{
					Commits: slices.Clone(st.window), Watermarks: slices.Clone(st.highs),
				}
				st.dirty, st.highsDirty = false, false
			}
		}
	}
	var forget []PartitionKey
	for _, k := range e.forgotten {
		if e.lookupLocked(k) == nil { // observed again since: keep its row
			forget = append(forget, k)
		}
	}
	e.forgotten = nil
	e.mu.Unlock()

	var errs []error
	if len(save) > 0 {
		if err := e.opts.Store.Save(ctx, save); err != nil {
			errs = append(errs, fmt.Errorf("save %d lag windows: %w", len(save), err))
			e.mu.Lock()
			for k := range save {
				if st := e.lookupLocked(k); st != nil {
					st.dirty = true
				}
			}
			e.mu.Unlock()
		}
	}
	if len(forget) > 0 {
		if err := e.opts.Store.Forget(ctx, forget...); err != nil {
			errs = append(errs, fmt.Errorf("forget %d lag windows: %w", len(forget), err))
			e.mu.Lock()
			e.forgotten = append(e.forgotten, forget...)
			e.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

func (e *Evaluator) lookupLocked(k PartitionKey) *partState {
	if g := e.groups[groupID{k.Cluster, k.Group}]; g != nil {
		return g.parts[topicPartition{k.Topic, k.Partition}]
	}
	return nil
}
