package web

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// quietListener tracks the connections it accepts so that Shutdown can
// close the ones no request has begun on. fasthttp counts a new
// connection as active before it reads a byte, and waits for it up to
// ReadTimeout (30 s): a browser's speculative connection (Chrome opens one
// ahead of the next click) held a graceful shutdown past its deadline, and
// `console` took 15 s to stop and then failed.
type quietListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[*quietConn]struct{}
}

func newQuietListener(ln net.Listener) *quietListener {
	return &quietListener{Listener: ln, conns: map[*quietConn]struct{}{}}
}

func (l *quietListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	qc := &quietConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[qc] = struct{}{}
	l.mu.Unlock()
	return qc, nil
}

// closeQuiet closes every connection that has not sent a byte. A request
// whose first bytes arrive at that moment is lost as one arriving after
// the listener closed would be.
func (l *quietListener) closeQuiet() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if c.state.CompareAndSwap(connQuiet, connShut) {
			c.Conn.Close()
			delete(l.conns, c)
		}
	}
}

// open is how many accepted connections are still open.
func (l *quietListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

const (
	connQuiet int32 = iota // no byte read yet
	connUsed               // a request has begun
	connShut               // closed by closeQuiet
)

type quietConn struct {
	net.Conn
	l     *quietListener
	state atomic.Int32
}

func (c *quietConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.state.Load() == connQuiet {
		c.state.CompareAndSwap(connQuiet, connUsed)
	}
	if err != nil && n == 0 && c.state.Load() == connShut {
		// As if the client had hung up: fasthttp ends the connection
		// quietly instead of answering "use of closed network
		// connection" with a 502 that the error log would show.
		return 0, io.EOF
	}
	return n, err
}

func (c *quietConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
