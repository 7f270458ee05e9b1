package alerting

import (
	"context"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/tsdb"
)

// Reader reads samples of the history store; *tsdb.Store implements it.
type Reader interface {
	// Select returns the samples of the series of q.Name matching q's
	// matchers within [q.From, q.To], sorted by labels. Errors: EINVALID
	// for a bad query, others are the store's failures.
	Select(ctx context.Context, q tsdb.SelectQ) ([]tsdb.Series, error)
}

// CycleReader is a Reader for one evaluation cycle of many rules: Plan it
// with the rules and the evaluation time; it then reads each distinct
// (metric, matchers) once, over the widest range any rule needs, and serves
// every Select of that cycle from memory (slicing the range). Selects it
// was not planned for go to the underlying Reader.
//
// A thousand rules often read the same few selections (every lag rule
// reads the lag gauge, every ratio rule the processed counter): reading
// each once is what keeps a cycle within its interval.
//
// Plan must not run concurrently with Select; Selects may run concurrently
// with each other once Plan has returned. The underlying Reader must be
// safe for concurrent use (*tsdb.Store is): Plan reads with a worker per
// CPU.
type CycleReader struct {
	rd    Reader
	at    int64 // the planned evaluation time, in Unix milliseconds
	sets  map[string]*plannedSet
	reads atomic.Int64
}

// plannedSet is one distinct selection of a cycle.
type plannedSet struct {
	name     string
	matchers []tsdb.Matcher
	from     int64 // ms, the widest range's start
	series   []tsdb.Series
	err      error
}

// NewCycleReader returns a CycleReader over rd.
func NewCycleReader(rd Reader) *CycleReader {
	return &CycleReader{rd: rd, sets: map[string]*plannedSet{}}
}

// selectionKey identifies a selection regardless of the order its
// matchers are written in.
func selectionKey(name string, ms []tsdb.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	slices.Sort(parts)
	return name + "\xff" + strings.Join(slices.Compact(parts), "\xff")
}

// Plan reads, for the evaluation of rules at t, every distinct selection
// their selectors make once, over the widest range any of them needs. A
// selection that fails to read is not an error of Plan: the error is
// returned to each Select that needs it, so that one bad selection fails
// only the rules that read it. Plan returns only ctx's error, which then
// fails every Select of the cycle.
func (c *CycleReader) Plan(ctx context.Context, rules []*Rule, t time.Time) error {
	c.at = t.UnixMilli()
	c.sets = map[string]*plannedSet{}
	for _, r := range rules {
		for _, sel := range r.Selectors() {
			name, need := storedMetric(&sel), selectorNeed(&sel)
			key := selectionKey(name, sel.Matchers)
			ps := c.sets[key]
			if ps == nil {
				ps = &plannedSet{name: name, matchers: sel.Matchers, from: c.at}
				c.sets[key] = ps
			}
			ps.from = min(ps.from, c.at-need)
		}
	}
	sets := slices.Collect(maps.Values(c.sets))
	// The reads are independent and the store serves them concurrently: a
	// worker per CPU, all done (or stopped by ctx) when Plan returns.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(sets)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(sets) {
					return
				}
				ps := sets[i]
				c.reads.Add(1)
				ps.series, ps.err = c.rd.Select(ctx, tsdb.SelectQ{
					Name: ps.name, Matchers: ps.matchers,
					From: time.UnixMilli(ps.from).UTC(), To: time.UnixMilli(c.at).UTC(),
				})
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		// A selection left unread, or read as the context ended, must not
		// read as "no series".
		for _, ps := range sets {
			ps.err = err
		}
		return err
	}
	return nil
}

// Select serves a planned selection from memory: the raw samples of
// q.Name's series matching q.Matchers (in any order) within [q.From,
// q.To], when q.To is the planned time and the planned range covers
// q.From. Anything else is read from the underlying Reader.
func (c *CycleReader) Select(ctx context.Context, q tsdb.SelectQ) ([]tsdb.Series, error) {
	ps := c.sets[selectionKey(q.Name, q.Matchers)]
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	if ps == nil || q.Or != nil || q.Resolution != 0 || to != c.at || from < ps.from || from > to {
		c.reads.Add(1)
		return c.rd.Select(ctx, q)
	}
	if ps.err != nil {
		return nil, ps.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]tsdb.Series, 0, len(ps.series))
	for _, s := range ps.series {
		// Every point read is at most the planned time, so only the
		// start needs cutting.
		i := sort.Search(len(s.Points), func(i int) bool { return s.Points[i].T.UnixMilli() >= from })
		if i < len(s.Points) {
			out = append(out, tsdb.Series{Labels: s.Labels, Points: s.Points[i:len(s.Points):len(s.Points)], Rollup: s.Rollup})
		}
	}
	return out, nil
}

// Reads returns how many reads were made against the underlying Reader
// since NewCycleReader: one per distinct planned selection, plus one per
// Select it could not serve.
func (c *CycleReader) Reads() int { return int(c.reads.Load()) }
