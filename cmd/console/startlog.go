package main

import (
	"bytes"
	"io"
	"sync"
)

// startLog is the console's log output while it starts. A start that fails
// ends with one error line (main prints it), so what was logged on the way
// (a broker that is slow, a component that got cancelled when the start
// was abandoned) is held back: released to the real output once the start
// succeeds, dropped when it fails, unless debug logging asks to see it.
type startLog struct {
	out   io.Writer
	debug bool

	mu    sync.Mutex
	buf   bytes.Buffer
	state int // holding, passing or dropping
}

const (
	holding = iota
	passing
	dropping
)

// maxStartLog bounds what a start may hold back; beyond it lines are lost
// rather than memory.
const maxStartLog = 1 << 20

func newStartLog(out io.Writer, debug bool) *startLog {
	return &startLog{out: out, debug: debug}
}

func (l *startLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case passing:
		return l.out.Write(p)
	case holding:
		if l.buf.Len()+len(p) <= maxStartLog {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}

// started writes what was held back and lets everything after through.
func (l *startLog) started() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != holding {
		return
	}
	l.out.Write(l.buf.Bytes()) //nolint:errcheck // nowhere to report a failing stderr
	l.buf.Reset()
	l.state = passing
}

// failed drops what was held back, and everything logged after it (the
// shutdown of a half-started console), so that the start's error is the
// one line; with debug logging it passes everything instead.
func (l *startLog) failed() {
	if l.debug {
		l.started()
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
	l.state = dropping
}
