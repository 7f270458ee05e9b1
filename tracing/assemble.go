package tracing

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// The roles of TraceRef.Role.
const (
	RoleAsked      = "asked"
	RoleLinkedFrom = "linked from"
	RoleLinksTo    = "links to"
)

// storyKey identifies a span across traces.
type storyKey struct {
	t TraceID
	s SpanID
}

// Assemble lays out the spans of one message's story as the trace page
// draws it. It is pure, never fails and never panics, whatever the spans
// carry (zero times, end before start, ids that repeat or point in a
// circle): a story is stored whatever its producers sent, so the page
// must draw whatever is stored. spans may come from several traces (the
// asked one and those joined to it by links) in any order; the slice is
// not modified. maxSpans (≤ 0: no limit) keeps the earliest spans by start
// and sets Truncated.
//
// The tree: a span hangs under its parent (same trace, by parent span id).
// A root of its trace, or a span whose parent is missing, that links to a
// span of another trace in the story hangs under that span (Row.ViaLink):
// a consumer's own trace under the producer span, a redrive under the
// dead-lettered message's failing attempt. Other spans whose parent is
// missing are roots flagged FlagUnknownParent. A span repeated with the
// same ids is shown once per copy (FlagDuplicate); children attach to the
// earliest copy. A chain of parents that closes on itself is cut at its
// earliest span, which becomes a root. Children are ordered by start.
//
// Clock skew is corrected as Jaeger does, within a trace and never across
// a link (an async hop legitimately starts later): a child that starts
// before its parent is moved to start with it; a synchronous child (parent
// SERVER or CLIENT, child neither PRODUCER nor CONSUMER) of another
// service that does not fit in its parent but is no longer than it is
// centred in it, the network latency split equally on both sides (a
// longer one only gets the first rule). A child of the same service that
// ends after its parent is left alone: one process, one clock, so that
// is work outliving the request, not skew. The move carries the child's
// subtree with it; every moved span gets FlagSkewed and Span.Skew, and
// Row.Offset draws the corrected time while Span keeps the received one.
//
// The critical path is Jaeger's walk back from the end, extended across
// links: it starts at the span that ends last in the whole story. On
// entering a span with a bound T (its own end, or the end of the part of
// it that is on the path), the next step is its child (by parent id or
// link) that started before T and ends latest, its end cut to T; the span
// is on the path from that child's end to T and the walk enters the child.
// With no such child the span is on the path from its start to T and the
// walk returns to its parent with T = the span's start (cut to the
// parent's end: an async hop such as a consumer under its producer re-enters
// the producer at the producer's end), where it picks among the children
// that ended before T, as Jaeger does. When the walk leaves a root (or a
// parent it already left), it continues at the latest-ending span that
// ended by then, so a story whose parts are not joined by ids or links
// still has one path. Gaps between spans on the path (time in the broker,
// retry backoff) belong to no span and are not counted in
// TraceView.Critical, which sums the rows' parts.
func Assemble(asked TraceID, spans []Span, maxSpans int) *TraceView {
	v := &TraceView{TraceID: asked}
	// Sort positions, not spans: a Span is a few hundred bytes, and the
	// store's rows usually arrive in order already (one run per trace).
	order := make([]int, len(spans))
	for k := range order {
		order[k] = k
	}
	byStart := func(x, y int) int { return spans[x].Start.Compare(spans[y].Start) }
	if !slices.IsSortedFunc(order, byStart) {
		slices.SortStableFunc(order, byStart)
	}
	if maxSpans > 0 && len(order) > maxSpans {
		order, v.Truncated = order[:maxSpans], true
	}
	sp := make([]Span, len(order))
	for k, i := range order {
		sp[k] = spans[i]
	}
	a := newAssembly(sp)
	a.link()
	a.breakCycles()
	a.buildChildren()
	a.correctSkew()
	a.layout(v)
	a.measure(v)
	a.criticalPath(v)
	a.describe(v, asked)
	return v
}

// assembly holds the per-span working state of Assemble in parallel
// slices indexed like sp (sorted by received start).
type assembly struct {
	sp         []Span
	first      map[storyKey]int // earliest copy of each (trace, span) id
	parent     []int            // -1: root
	via        []bool           // parent is a link target
	start, end []time.Time      // corrected; end ≥ start
	skew       []time.Duration
	// kids[kidAt[i]:kidAt[i+1]] are the children of i, by corrected start.
	kids, kidAt []int
	roots       []int
	row         []int // row index of span i
	order       []int // span index of row r
	cycles      int
	skews       []skewNote
}

// skewNote gathers the corrections between one pair of services for the
// warning line.
type skewNote struct {
	child, parent string
	max           time.Duration // the largest move (sign kept)
	moved         int
}

func newAssembly(sp []Span) *assembly {
	n := len(sp)
	a := &assembly{
		sp: sp, first: make(map[storyKey]int, n),
		parent: make([]int, n), via: make([]bool, n),
		start: make([]time.Time, n), end: make([]time.Time, n), skew: make([]time.Duration, n),
	}
	for i := range sp {
		s := &sp[i]
		a.start[i], a.end[i] = s.Start, s.End
		if !s.End.After(s.Start) {
			s.Flags |= FlagNonPositive
			a.end[i] = s.Start // drawn with length 0
		}
		k := storyKey{s.TraceID, s.SpanID}
		if _, dup := a.first[k]; dup {
			s.Flags |= FlagDuplicate
			a.sp[a.first[k]].Flags |= FlagDuplicate
		} else {
			a.first[k] = i
		}
	}
	return a
}

// link finds each span's parent: by parent id in its trace, else (a root
// or an orphan) by its first link to a span of another trace in the story.
func (a *assembly) link() {
	for i := range a.sp {
		s := &a.sp[i]
		a.parent[i] = -1
		if !s.ParentSpanID.IsZero() {
			if j, ok := a.first[storyKey{s.TraceID, s.ParentSpanID}]; ok && j != i {
				a.parent[i] = j
				continue
			}
		}
		for _, l := range s.Links {
			if l.TraceID == s.TraceID {
				continue
			}
			if j, ok := a.first[storyKey{l.TraceID, l.SpanID}]; ok {
				a.parent[i], a.via[i] = j, true
				break
			}
		}
		if a.parent[i] < 0 && !s.ParentSpanID.IsZero() {
			s.Flags |= FlagUnknownParent
		}
	}
}

// breakCycles cuts every chain of parents that closes on itself (corrupt
// ids, or two traces linking to each other) at its earliest span, which
// becomes a root, so that the layout is a forest.
func (a *assembly) breakCycles() {
	const (
		unseen = iota
		onPath
		placed
	)
	state := make([]uint8, len(a.sp))
	var path []int
	for i := range a.sp {
		if state[i] != unseen {
			continue
		}
		path = path[:0]
		j := i
		for j >= 0 && state[j] == unseen {
			state[j] = onPath
			path = append(path, j)
			j = a.parent[j]
		}
		if j >= 0 && state[j] == onPath {
			ring := path[slices.Index(path, j):]
			m := slices.Min(ring) // the earliest by start
			a.parent[m], a.via[m] = -1, false
			if !a.sp[m].ParentSpanID.IsZero() {
				a.sp[m].Flags |= FlagUnknownParent
			}
			a.cycles++
		}
		for _, k := range path {
			state[k] = placed
		}
	}
}

// buildChildren fills kids/kidAt (compressed rows, children in start
// order as sp is) and roots.
func (a *assembly) buildChildren() {
	n := len(a.sp)
	a.kidAt = make([]int, n+1)
	for i := range n {
		if p := a.parent[i]; p >= 0 {
			a.kidAt[p+1]++
		}
	}
	for i := range n {
		a.kidAt[i+1] += a.kidAt[i]
	}
	a.kids = make([]int, a.kidAt[n])
	fill := slices.Clone(a.kidAt[:n])
	for i := range n {
		if p := a.parent[i]; p >= 0 {
			a.kids[fill[p]] = i
			fill[p]++
		} else {
			a.roots = append(a.roots, i)
		}
	}
}

func (a *assembly) children(i int) []int { return a.kids[a.kidAt[i]:a.kidAt[i+1]] }

// correctSkew moves children that start before their parent (and
// synchronous children of another service that overflow it) as Assemble
// describes, parents before children, so that a move carries the subtree.
func (a *assembly) correctSkew() {
	origin := make([]int, len(a.sp)) // index into a.skews of the move a span took part in
	stack := slices.Clone(a.roots)
	for _, r := range a.roots {
		origin[r] = -1
	}
	moved := false
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if a.skew[p] != 0 {
			a.start[p], a.end[p] = a.start[p].Add(a.skew[p]), a.end[p].Add(a.skew[p])
			a.sp[p].Flags |= FlagSkewed
			a.sp[p].Skew = a.skew[p]
			a.skews[origin[p]].moved++
			moved = true
		}
		for _, c := range a.children(p) {
			stack = append(stack, c)
			if a.via[c] {
				origin[c] = -1
				continue
			}
			base := a.skew[p]
			d := a.skewDelta(p, c, a.start[c].Add(base), a.end[c].Add(base))
			a.skew[c], origin[c] = addDur(base, d), origin[p]
			if d != 0 {
				origin[c] = a.note(c, p, d)
			}
		}
	}
	if !moved {
		return
	}
	for i := range a.sp {
		kids := a.children(i)
		slices.SortStableFunc(kids, func(x, y int) int { return a.start[x].Compare(a.start[y]) })
	}
}

// skewDelta is how far child c (at cs–ce once its parent's move is
// applied) must move against parent p.
func (a *assembly) skewDelta(p, c int, cs, ce time.Time) time.Duration {
	ps, pe := a.start[p], a.end[p]
	pk, ck := a.sp[p].Kind, a.sp[c].Kind
	sync := (pk == KindServer || pk == KindClient) && ck != KindProducer && ck != KindConsumer &&
		a.sp[p].Service != a.sp[c].Service
	if sync && (cs.Before(ps) || ce.After(pe)) {
		pd, cd := pe.Sub(ps), ce.Sub(cs)
		if cd <= pd {
			return ps.Add((pd - cd) / 2).Sub(cs)
		}
	}
	if cs.Before(ps) {
		return ps.Sub(cs)
	}
	return 0
}

// note records a correction of c against p for the warnings.
func (a *assembly) note(c, p int, d time.Duration) int {
	cs, ps := a.sp[c].Service, a.sp[p].Service
	for k := range a.skews {
		if n := &a.skews[k]; n.child == cs && n.parent == ps {
			if absDur(d) > absDur(n.max) {
				n.max = d
			}
			return k
		}
	}
	a.skews = append(a.skews, skewNote{child: cs, parent: ps, max: d})
	return len(a.skews) - 1
}

// layout orders the rows depth first (roots and children by corrected
// start) and places them on the axis.
func (a *assembly) layout(v *TraceView) {
	n := len(a.sp)
	a.row, a.order = make([]int, n), make([]int, 0, n)
	v.Rows = make([]Row, 0, n)
	slices.SortStableFunc(a.roots, func(x, y int) int { return a.start[x].Compare(a.start[y]) })
	type frame struct{ span, parentRow, depth int }
	stack := make([]frame, 0, 64)
	for k := len(a.roots) - 1; k >= 0; k-- {
		stack = append(stack, frame{a.roots[k], -1, 0})
	}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		r := len(v.Rows)
		a.row[f.span] = r
		a.order = append(a.order, f.span)
		v.Rows = append(v.Rows, Row{
			Span: a.sp[f.span], Depth: f.depth, Parent: f.parentRow, ViaLink: a.via[f.span],
		})
		kids := a.children(f.span)
		for k := len(kids) - 1; k >= 0; k-- {
			stack = append(stack, frame{kids[k], r, f.depth + 1})
		}
	}
	for r := len(v.Rows) - 1; r >= 0; r-- {
		if p := v.Rows[r].Parent; p >= 0 {
			v.Rows[p].Descendants += v.Rows[r].Descendants + 1
		}
	}
	for i := range a.sp {
		if i == 0 || a.start[i].Before(v.Start) {
			v.Start = a.start[i]
		}
		if i == 0 || a.end[i].After(v.End) {
			v.End = a.end[i]
		}
	}
	for r := range v.Rows {
		i := a.order[r]
		v.Rows[r].Offset = a.start[i].Sub(v.Start)
		v.Rows[r].Length = a.end[i].Sub(a.start[i])
	}
}

// measure fills the rows' derived times and errors: time in the broker,
// retry backoff, the error line.
func (a *assembly) measure(v *TraceView) {
	for r := range v.Rows {
		i := a.order[r]
		s := &a.sp[i]
		row := &v.Rows[r]
		row.Error = errorLine(s)
		if s.Kind == KindConsumer {
			row.BrokerWait = a.brokerWait(i)
		}
	}
	// Backoff: attempts under one parent, in start order.
	for i := range a.sp {
		last := -1
		for _, c := range a.children(i) {
			if a.sp[c].Attempt <= 0 {
				continue
			}
			if a.sp[c].Attempt >= 2 && last >= 0 {
				v.Rows[a.row[c]].Backoff = max(0, a.start[c].Sub(a.end[last]))
			}
			last = c
		}
	}
}

// brokerWait is the time between the end of the producer span a consumer
// span i hangs under (or links to) and the consumer's start.
func (a *assembly) brokerWait(i int) time.Duration {
	prod := -1
	if p := a.parent[i]; p >= 0 && a.sp[p].Kind == KindProducer {
		prod = p
	} else {
		for _, l := range a.sp[i].Links {
			if j, ok := a.first[storyKey{l.TraceID, l.SpanID}]; ok && j != i && a.sp[j].Kind == KindProducer {
				prod = j
				break
			}
		}
	}
	if prod < 0 {
		return 0
	}
	return max(0, a.start[i].Sub(a.end[prod]))
}

// errorLine is Row.Error: the status message, else the first exception's
// type and message; "error" for a failed span that says no more.
func errorLine(s *Span) string {
	if s.Status == StatusError && s.StatusMsg != "" {
		return s.StatusMsg
	}
	for _, e := range s.Events {
		if e.Name != "exception" {
			continue
		}
		var typ, msg string
		for _, at := range e.Attrs {
			switch at.Key {
			case "exception.type":
				typ = at.Value
			case "exception.message":
				msg = at.Value
			}
		}
		switch {
		case typ != "" && msg != "":
			return typ + ": " + msg
		case typ != "" || msg != "":
			return typ + msg
		}
	}
	if s.Status == StatusError {
		return StatusError.String()
	}
	return ""
}

// criticalPath marks the rows on the critical path and sums it; the rule
// is in Assemble's comment.
func (a *assembly) criticalPath(v *TraceView) {
	n := len(a.sp)
	if n == 0 {
		return
	}
	// Children of each span by end, latest first (ties: later start).
	byEnd := slices.Clone(a.kids)
	for i := range n {
		seg := byEnd[a.kidAt[i]:a.kidAt[i+1]]
		slices.SortFunc(seg, func(x, y int) int {
			if c := a.end[y].Compare(a.end[x]); c != 0 {
				return c
			}
			return a.start[y].Compare(a.start[x])
		})
	}
	// Every span by end, for the jumps between unjoined parts.
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	slices.SortFunc(all, func(x, y int) int {
		if c := a.end[x].Compare(a.end[y]); c != 0 {
			return c
		}
		return cmp.Compare(a.row[y], a.row[x]) // among equal ends, the earliest row last
	})
	last, jump := all[n-1], n
	visited, left := make([]bool, n), make([]bool, n)
	crit := make([]time.Duration, n)

	x, bound, entering := last, a.end[last], true
	for steps := 0; x >= 0 && steps < 4*n+4; steps++ {
		visited[x] = true
		c := -1
		seg := byEnd[a.kidAt[x]:a.kidAt[x+1]]
		if entering {
			// The latest-ending child that started before the bound.
			for _, k := range seg {
				if a.start[k].Before(bound) && !visited[k] {
					c = k
					break
				}
			}
		} else {
			// The latest-ending child that ended before the bound.
			at := sort.Search(len(seg), func(k int) bool { return a.end[seg[k]].Before(bound) })
			for at < len(seg) && visited[seg[at]] {
				at++
			}
			if at < len(seg) {
				c = seg[at]
			}
		}
		if c >= 0 {
			e := earlier(a.end[c], bound)
			crit[x] += max(0, bound.Sub(e))
			x, bound, entering = c, e, true
			continue
		}
		crit[x] += max(0, bound.Sub(a.start[x]))
		left[x] = true
		bound = earlier(bound, a.start[x])
		if p := a.parent[x]; p >= 0 && !left[p] {
			entering = !a.start[x].Before(a.end[p]) // an async hop re-enters at the parent's end
			x, bound = p, earlier(bound, a.end[p])
			continue
		}
		// A part of the story not joined to the rest: go on at the span
		// that ended last before it began.
		x = -1
		for ; jump > 0; jump-- {
			k := all[jump-1]
			if !visited[k] && !a.end[k].After(bound) {
				x, bound, entering = k, a.end[k], true
				break
			}
		}
	}
	for i, d := range crit {
		if d > 0 || i == last {
			v.Rows[a.row[i]].Critical = true
			v.Critical = addDur(v.Critical, d)
		}
	}
}

// describe fills the story's traces, services, counts and warnings.
func (a *assembly) describe(v *TraceView, asked TraceID) {
	// Traces: the asked one first, then by start; roles by walking the
	// links out from the asked trace.
	traceIdx := map[TraceID]int{asked: 0}
	v.Traces = []TraceRef{{TraceID: asked, Role: RoleAsked}}
	for r := range v.Rows {
		t := v.Rows[r].Span.TraceID
		if _, ok := traceIdx[t]; !ok {
			traceIdx[t] = len(v.Traces)
			v.Traces = append(v.Traces, TraceRef{TraceID: t})
		}
	}
	type edge struct{ from, to TraceID } // a span of from links to to
	seen := map[edge]bool{}
	var edges []edge
	for i := range a.sp {
		for _, l := range a.sp[i].Links {
			e := edge{a.sp[i].TraceID, l.TraceID}
			if _, ok := traceIdx[l.TraceID]; ok && e.from != e.to && !seen[e] {
				seen[e] = true
				edges = append(edges, e)
			}
		}
	}
	role := map[TraceID]string{asked: RoleAsked}
	queue := []TraceID{asked}
	for len(queue) > 0 {
		t := queue[0]
		queue = queue[1:]
		for _, e := range edges {
			if e.to == t && role[e.from] == "" {
				role[e.from] = RoleLinkedFrom
				queue = append(queue, e.from)
			}
			if e.from == t && role[e.to] == "" {
				role[e.to] = RoleLinksTo
				queue = append(queue, e.to)
			}
		}
	}
	// Each trace's start, size and root: its earliest span whose parent
	// is not in the trace.
	rootOf := make([]int, len(v.Traces))
	for r := range v.Rows {
		k := traceIdx[v.Rows[r].Span.TraceID]
		ref := &v.Traces[k]
		st := a.start[a.order[r]]
		if ref.Spans == 0 || st.Before(ref.Start) {
			ref.Start = st
		}
		ownRoot := v.Rows[r].Parent < 0 || v.Rows[r].ViaLink
		if old := rootOf[k] - 1; ref.Spans == 0 || (ownRoot && (!isOwnRoot(v, old) || st.Before(a.start[a.order[old]]))) {
			rootOf[k] = r + 1 // 0: none yet
		}
		ref.Spans++
	}
	for k := range v.Traces {
		ref := &v.Traces[k]
		ref.Role = cmp.Or(role[ref.TraceID], RoleLinkedFrom)
		if r := rootOf[k] - 1; r >= 0 {
			ref.RootService, ref.RootName = v.Rows[r].Span.Service, v.Rows[r].Span.Name
		}
	}
	slices.SortStableFunc(v.Traces[1:], func(x, y TraceRef) int { return x.Start.Compare(y.Start) })
	for k := range v.Traces {
		traceIdx[v.Traces[k].TraceID] = k
	}
	for r := range v.Rows {
		v.Rows[r].Trace = traceIdx[v.Rows[r].Span.TraceID]
	}

	services := map[string]bool{}
	var unknown, dups, nonPos, future, cut int
	for r := range v.Rows {
		s := &v.Rows[r].Span
		if !s.Flags.Has(FlagRedacted) {
			if s.Service != "" {
				services[s.Service] = true
			}
			if s.Status == StatusError {
				v.Errors++
			}
		}
		countFlag(s.Flags, FlagUnknownParent, &unknown)
		countFlag(s.Flags, FlagDuplicate, &dups)
		countFlag(s.Flags, FlagNonPositive, &nonPos)
		countFlag(s.Flags, FlagFuture, &future)
		countFlag(s.Flags, FlagAttrsCut, &cut)
	}
	for svc := range services {
		v.Services = append(v.Services, svc)
	}
	slices.Sort(v.Services)
	v.Spans = len(v.Rows)

	for _, sk := range a.skews {
		dir := "behind"
		if sk.max < 0 {
			dir = "ahead of"
		}
		v.Warnings = append(v.Warnings, fmt.Sprintf("clock skew: %s is %s %s %s; %s moved",
			serviceName(sk.child), roundDur(absDur(sk.max)), dir, serviceName(sk.parent), numbered(sk.moved, "span")))
	}
	switch {
	case unknown == 1:
		v.Warnings = append(v.Warnings, "1 span whose parent is missing is shown as a root")
	case unknown > 1:
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d spans whose parents are missing are shown as roots", unknown))
	}
	if a.cycles > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%s of parents point in a circle; each is cut at its earliest span",
			numbered(a.cycles, "chain")))
	}
	if dups > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%s share their span id with another span; each copy is shown",
			numbered(dups, "span")))
	}
	if nonPos > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%s end at or before their start (drawn with length 0)",
			numbered(nonPos, "span")))
	}
	if future > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%s start more than a minute after the console received them",
			numbered(future, "span")))
	}
	if cut > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%s had attributes, events or links cut to the store's limits",
			numbered(cut, "span")))
	}
	if v.Truncated {
		v.Warnings = append(v.Warnings, fmt.Sprintf("the story has more spans than shown: the first %s by start time",
			numbered(len(v.Rows), "span")))
	}
}

func isOwnRoot(v *TraceView, r int) bool { return v.Rows[r].Parent < 0 || v.Rows[r].ViaLink }

func countFlag(f, g Flags, n *int) {
	if f.Has(g) {
		*n++
	}
}

func serviceName(s string) string {
	if s == "" {
		return "a hidden service"
	}
	return s
}

func numbered(n int, word string) string { return fmt.Sprintf("%d %s", n, noun(n, word)) }

func noun(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// roundDur keeps warnings readable: microseconds at most.
func roundDur(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d
}

func earlier(x, y time.Time) time.Time {
	if y.Before(x) {
		return y
	}
	return x
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		if d == math.MinInt64 {
			return math.MaxInt64
		}
		return -d
	}
	return d
}

// addSat adds durations, saturating instead of wrapping: skews of spans
// with absurd times must not flip sign.
func addDur(x, y time.Duration) time.Duration {
	s := x + y
	switch {
	case x > 0 && y > 0 && s < 0:
		return math.MaxInt64
	case x < 0 && y < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}
