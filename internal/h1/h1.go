// Package h1 is a lean HTTP/1.1 server for the proxy path: one goroutine per connection reads
// each request with a bufio.Reader, calls an ordinary http.Handler on that same goroutine, and
// writes the status line, header and body in one write when the handler returns or flushes.
//
// It does less than net/http's server per request, which is its reason to exist: no
// background read goroutine per request, no hand-off between goroutines, pooled write
// buffers. A client that leaves is noticed when a write to it fails (how a stream learns of
// it) or, once a handler has run for WatchAfter (100 ms) with the body read, by a read on a
// goroutine of its own started then: either cancels the request's context, so that a long
// non-streamed request stops its upstream work too; requests shorter than that pay for a
// timer only. Keep-alive and pipelined requests are served in order; request bodies may be
// chunked; responses are sent with a Content-Length when the handler returns before writing
// 16 KiB or flushing, chunked (HTTP/1.1) otherwise, and http.Flusher and
// http.ResponseController (Flush and deadlines) work as with net/http.
//
// What it does not do it hands to Fallback, a net/http server reading from a HandOff
// listener: a connection that opens with the HTTP/2 preface (h2c with prior knowledge) and
// any request with Upgrade or Expect, with the bytes already read replayed, so that the
// fallback sees the connection from that request on. Without a Fallback such requests are
// refused (505 for HTTP/2, 417 for Expect) or, for Upgrade, served as plain HTTP/1.1.
//
// Limits are checked before anything is allocated for them: a request head longer than
// MaxHeaderBytes or with more than MaxHeaders fields is refused with 431 and the connection
// closed; a malformed head gets 400 (501 for a transfer coding other than chunked, 505 for an
// unknown HTTP version), a plain-text body and a closed connection. Body size limits are the
// handler's (http.MaxBytesReader works as usual).
package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/open-autoglm/autoglm/internal/evloop"
	"github.com/open-autoglm/autoglm/internal/sockio"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

var errTooManyFiles = syscall.EMFILE

// Server serves HTTP/1.1 on the listeners given to Serve. The zero value of every field but
// Handler is usable.
type Server struct {
	Handler http.Handler

	// ReadHeaderTimeout bounds reading a request head from its first byte; ReadTimeout the
	// head and body together; WriteTimeout is set as the write deadline before the handler
	// runs (handlers that stream move it with http.ResponseController); IdleTimeout closes a
	// keep-alive connection that waits this long for its next request. Zero: no limit
	// (IdleTimeout falls back to ReadTimeout, as in net/http). A deadline at least twice
	// WatchAfter away (2 s without a watch) is enforced by the server's sweep instead of by
	// a timer of its own per request (sweep.go), never early and up to a quarter of
	// WatchAfter late (up to a second when no request has come for a second); so are the
	// deadlines handlers set that far ahead.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration

	// MaxHeaderBytes bounds the request line and header together (default 64 KiB);
	// MaxHeaders the number of header fields (default 128).
	MaxHeaderBytes, MaxHeaders int

	// WatchAfter is how long a handler may run before the connection is watched for the
	// client leaving (a read on its own goroutine that cancels the request's context at EOF),
	// so that a long non-streamed request stops its upstream work when its client goes away.
	// Default 100ms; negative: never (a client leaving is then noticed at the next write).
	WatchAfter time.Duration

	// MaxDrainBytes is how much of a body the handler did not read is read and dropped to keep
	// the connection open (default 256 KiB); past it the connection is closed.
	MaxDrainBytes int64

	// BaseContext gives each request's context its parent (default context.Background()).
	BaseContext func() context.Context

	// Fallback, when set, takes the connections and requests this server does not serve (see
	// the package comment); the connection is then the fallback's.
	Fallback func(net.Conn)

	// Inline, when set, names the requests whose handler may run on an event loop itself
	// (ServeLoops): it waits only on the loop's connections, or through evloop.Block. Any other
	// request's handler runs on a goroutine of its own while its connection's coroutine waits
	// (evloop.Block), so that a handler waiting on a channel, a lock or a socket of its own
	// does not hold up the loop's other connections. Unset: none runs inline.
	Inline func(*http.Request) bool

	// LoopSpin is how long an event loop (ServeLoops) waits holding its processor after its
	// last event: 0 evloop's default, negative never (see evloop.Group.Spin).
	LoopSpin time.Duration

	// ConnState, when set, is called with http.StateNew for each accepted connection and
	// http.StateClosed or http.StateHijacked (handed to Fallback) at its end.
	ConnState func(net.Conn, http.ConnState)

	// Log receives handler panics and accept errors (default: slog.Default()).
	Log *slog.Logger

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	connsGone chan struct{} // closed when conns empties during shutdown
	inShut    atomic.Bool
	sweeping  bool          // the sweep is running (sweep.go); guarded by mu
	sweepBusy atomic.Bool   // a request began since the sweep last looked
	sweepIdle atomic.Bool   // the sweep rests (ticks once a second)
	sweepWake chan struct{} // wakes a resting sweep; capacity 1
	bufs      sync.Pool     // *[]byte write buffers, taken per request
	date      atomic.Pointer[dateText]
}

func (s *Server) shuttingDown() bool { return s.inShut.Load() }

func (s *Server) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Serve accepts connections on ln and serves each on its own goroutine until Shutdown or
// Close; it then returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(&ln, true) {
		return ErrServerClosed
	}
	defer s.track(&ln, false)
	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.shuttingDown() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger().Warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		// Reads and writes as raw system calls: see internal/sockio.
		c := s.newConn(sockio.Wrap(rwc))
		if c == nil {
			continue
		}
		go c.serve()
	}
}

// ServeLoops serves the connections accepted on ln on n event loops (GOMAXPROCS when n <=
// 0) rather than a goroutine each: each connection runs as a coroutine of its loop, and its
// requests' contexts carry the loop (evloop.NewContext), so that an upstream client dialling
// from the handler keeps the whole request on it (see internal/evloop). A connection handed
// to Fallback leaves its loop first. It returns ErrServerClosed after Shutdown or Close, once
// the loops' connections have ended.
func (s *Server) ServeLoops(ln net.Listener, n int) error {
	g, err := evloop.NewGroup(ln, n, func(ec *evloop.Conn) {
		c := s.newConn(ec)
		if c == nil {
			return
		}
		c.loop = ec.Loop()
		c.serve()
	})
	if err != nil {
		return err
	}
	g.Spin = s.LoopSpin
	var gl net.Listener = groupListener{Listener: ln, g: g}
	if !s.track(&gl, true) {
		_ = g.Close()
		return ErrServerClosed
	}
	defer s.track(&gl, false)
	_ = g.Serve()
	return ErrServerClosed
}

// groupListener closes a loop group with its listener, so that Shutdown and Close stop the
// loops accepting.
type groupListener struct {
	net.Listener
	g *evloop.Group
}

func (l groupListener) Close() error {
	_ = l.g.Close()
	return l.Listener.Close()
}

func (s *Server) track(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.shuttingDown() {
			return false
		}
		if s.listeners == nil {
			s.listeners = map[*net.Listener]struct{}{}
		}
		s.listeners[ln] = struct{}{}
		return true
	}
	delete(s.listeners, ln)
	return true
}

func (s *Server) newConn(rwc net.Conn) *conn {
	c := &conn{srv: s, rwc: rwc, remote: rwc.RemoteAddr().String()}
	s.mu.Lock()
	if s.shuttingDown() {
		s.mu.Unlock()
		_ = rwc.Close()
		return nil
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
		s.sweepWake = make(chan struct{}, 1)
	}
	s.conns[c] = struct{}{}
	s.startSweep()
	s.mu.Unlock()
	if s.ConnState != nil {
		s.ConnState(rwc, http.StateNew)
	}
	return c
}

func (s *Server) forget(c *conn, state http.ConnState) {
	s.mu.Lock()
	delete(s.conns, c)
	if len(s.conns) == 0 {
		s.wakeSweep() // a resting sweep finds the server without connections at once, and ends
		if s.connsGone != nil {
			close(s.connsGone)
			s.connsGone = nil
		}
	}
	s.mu.Unlock()
	if s.ConnState != nil {
		s.ConnState(c.rwc, state)
	}
}

// Shutdown stops accepting, closes idle connections, lets each active one finish its current
// response (sent with Connection: close) and waits until all are gone or ctx ends, when it
// returns ctx's error and leaves the rest to Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.inShut.Store(true)
	for ln := range s.listeners {
		_ = (*ln).Close()
	}
	gone := make(chan struct{})
	if len(s.conns) == 0 {
		close(gone)
	} else {
		s.connsGone = gone
	}
	for c := range s.conns {
		c.closeIfIdle()
	}
	s.mu.Unlock()
	select {
	case <-gone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inShut.Store(true)
	for ln := range s.listeners {
		_ = (*ln).Close()
	}
	for c := range s.conns {
		_ = c.rwc.Close()
	}
	return nil
}

func (s *Server) getBuf() []byte {
	if p, ok := s.bufs.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 4096)
}

func (s *Server) putBuf(b []byte) {
	if cap(b) > 64<<10 {
		return
	}
	b = b[:0]
	s.bufs.Put(&b)
}

type connPhase int

const (
	phaseActive connPhase = iota
	phaseIdle
	phaseClosed
)

type conn struct {
	srv    *Server
	rwc    net.Conn
	loop   *evloop.Loop // the event loop serving the connection (ServeLoops); nil: its own goroutine
	remote string
	br     *bufio.Reader
	raw    []byte // the current request's head as read, for a hand-off
	out    []byte // the spare write buffer (see response.writeHead)
	cancel context.CancelFunc
	stash  []byte // bytes a watch read past the request (a pipelined request), read first
	head   head   // the current request's head
	watch  watch  // the current request's watch, re-armed for each
	linger bool   // closing with part of a request body unread (see closeLingering)

	mu    sync.Mutex
	phase connPhase

	// The read and write deadlines (sweep.go), and handed: the connection was handed off
	// and is no longer this server's.
	dmu    sync.Mutex
	rd, wd deadline
	handed bool
}

func (c *conn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase == phaseIdle {
		c.phase = phaseClosed
		_ = c.rwc.Close()
	}
}

// setPhase moves the connection between idle and active; false means it must end (the
// server is shutting down, or shutdown closed it while idle).
func (c *conn) setPhase(p connPhase) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase == phaseClosed || p == phaseIdle && c.srv.shuttingDown() {
		return false
	}
	c.phase = p
	return true
}

func (c *conn) serve() {
	s := c.srv
	endState := http.StateClosed
	defer func() {
		if endState == http.StateClosed {
			if c.linger {
				c.closeLingering()
			} else {
				_ = c.rwc.Close()
			}
		}
		s.forget(c, endState)
	}()
	c.br = bufio.NewReaderSize(stashReader{c}, 4096)
	maxHead := s.MaxHeaderBytes
	if maxHead <= 0 {
		maxHead = 64 << 10
	}
	maxFields := s.MaxHeaders
	if maxFields <= 0 {
		maxFields = 128
	}
	idle := s.IdleTimeout
	if idle == 0 {
		idle = s.ReadTimeout
	}
	base := context.Background()
	if s.BaseContext != nil {
		base = s.BaseContext()
	}
	if c.loop != nil {
		base = evloop.NewContext(base, c.loop)
	}
	for first := true; ; first = false {
		if !c.setPhase(phaseIdle) {
			return
		}
		if c.br.Buffered() == 0 {
			switch {
			case first && s.ReadHeaderTimeout > 0:
				// A new connection must start its first request within ReadHeaderTimeout.
				c.setReadBy(time.Now().Add(s.ReadHeaderTimeout))
			case idle > 0:
				c.setReadBy(time.Now().Add(idle))
			}
			if _, err := c.br.Peek(1); err != nil {
				return
			}
		}
		if !c.setPhase(phaseActive) {
			return
		}
		s.noteRequest()
		start := time.Now()
		// A head already whole in the buffer is parsed without reading the socket, so the
		// deadline that bounds reading it is not set: one timer change fewer per request.
		headBuffered := headInBuffer(c.br)
		switch {
		case s.ReadHeaderTimeout > 0 && !headBuffered:
			c.setReadBy(start.Add(s.ReadHeaderTimeout))
		case s.ReadHeaderTimeout > 0:
		case s.ReadTimeout > 0:
			c.setReadBy(start.Add(s.ReadTimeout))
		case idle > 0:
			c.setReadBy(time.Time{})
		}
		h := &c.head
		raw, err := readHead(c.br, h, c.raw, maxHead, maxFields)
		c.raw = raw
		if err != nil {
			var pe *parseError
			if errors.As(err, &pe) {
				c.refuse(pe.status, pe.msg)
			}
			return
		}
		if h.handOff {
			switch {
			case s.Fallback != nil:
				c.handOff()
				endState = http.StateHijacked
				return
			case h.major == 2:
				c.refuse(http.StatusHTTPVersionNotSupported, "HTTP/2 is not served on this connection")
				return
			case h.header.Get("Expect") != "":
				c.refuse(http.StatusExpectationFailed, "Expect is not supported")
				return
			}
			delete(h.header, "Upgrade")
		}
		// The body's deadline. Without ReadHeaderTimeout the head was read under this very
		// deadline (or under none), which is left as it is.
		switch {
		case s.ReadHeaderTimeout <= 0:
		case s.ReadTimeout > 0:
			c.setReadBy(start.Add(s.ReadTimeout))
		default:
			c.setReadBy(time.Time{})
		}
		if s.WriteTimeout > 0 {
			c.setWriteBy(time.Now().Add(s.WriteTimeout))
		}
		if !c.serveOne(base, h, maxHead) {
			return
		}
	}
}

// serveOne runs the handler for one request and finishes its response; false means the
// connection must close.
func (c *conn) serveOne(base context.Context, h *head, maxHead int) bool {
	s := c.srv
	u, err := parseTarget(h.method, h.target)
	if err != nil {
		c.refuse(http.StatusBadRequest, "malformed request target")
		return false
	}
	host := h.host
	if host == "" && u.Host != "" {
		host = u.Host
	}
	ctx, cancel := context.WithCancel(base)
	c.cancel = cancel
	// Built in place and copied once, with its context, by WithContext: one request
	// allocated rather than two.
	hreq := http.Request{
		Method:        h.method,
		URL:           u,
		Proto:         h.proto,
		ProtoMajor:    h.major,
		ProtoMinor:    h.minor,
		Header:        h.header,
		ContentLength: h.contentLength,
		Close:         h.close,
		Host:          host,
		RemoteAddr:    c.remote,
		RequestURI:    h.target,
	}
	var b *body
	if h.contentLength == 0 {
		hreq.Body = http.NoBody
	} else {
		b = newBody(c.br, h, maxHead)
		hreq.Body = b
		if h.chunked {
			hreq.TransferEncoding = []string{"chunked"}
		}
	}
	req := hreq.WithContext(ctx)
	w := &response{c: c, req: req, header: make(http.Header, 4), contentLen: -1,
		noBody: h.method == http.MethodHead, close: h.close, buf: s.getBuf()}
	c.out = s.getBuf()
	watchAfter := s.watchAfter()
	var wt *watch
	if watchAfter > 0 {
		wt = &c.watch
		wt.arm(c, b, watchAfter)
	}
	ok := c.runHandler(w, req)
	if wt != nil && wt.stop() {
		w.close = true // the client left while the handler ran
	}
	if ok {
		w.finish()
	}
	cancel()
	s.putBuf(w.buf)
	s.putBuf(c.out)
	w.buf, c.out = nil, nil
	if !ok || w.close || w.err != nil {
		c.linger = b != nil && !b.eof && w.err == nil
		return false
	}
	if b != nil {
		drain := s.MaxDrainBytes
		if drain <= 0 {
			drain = 256 << 10
		}
		if !b.drain(drain) {
			c.linger = true
			return false
		}
	}
	return true
}

// lingerDelay is how long a connection closed with part of a request body unread waits after
// its answer and its half-close before the full close.
const lingerDelay = 500 * time.Millisecond

// closeLingering closes a connection whose client may still be sending a body the server
// will not read (an answer given early, such as 413): closing at once with unread bytes makes
// the kernel reset the connection, and a reset that reaches the client before it has read the
// answer destroys the answer. So the server half-closes, the client reads the answer and the
// end of it, and the connection is closed a moment later, as net/http does.
func (c *conn) closeLingering() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		if c.loop != nil {
			// A loop's coroutine must not sleep: a timer closes it later.
			time.AfterFunc(lingerDelay, func() { _ = c.rwc.Close() })
			return
		}
		time.Sleep(lingerDelay)
	}
	_ = c.rwc.Close()
}

// runHandler calls the handler, recovering a panic: the connection is closed (a response
// already begun cannot be taken back). A panic with http.ErrAbortHandler is how a handler
// says its answer must not look complete (an upstream broke off mid-answer): nothing more
// is written, so the client sees the connection cut, as with net/http. Any other panic is
// logged and, when nothing was sent yet, answered with a plain 500.
func (c *conn) runHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v == http.ErrAbortHandler {
				return
			}
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.srv.logger().Error("handler panic", "remote", c.remote, "panic", v, "stack", string(buf))
			if !w.sentHead && w.err == nil {
				c.refuse(http.StatusInternalServerError, "internal error")
			}
		}
	}()
	if c.loop != nil && (c.srv.Inline == nil || !c.srv.Inline(req)) {
		c.runBlocked(w, req)
		return true
	}
	c.srv.Handler.ServeHTTP(w, req)
	return true
}

// runBlocked runs the handler on a goroutine of its own while the connection's coroutine is
// parked (evloop.Block); a panic there is carried back and raised here, for runHandler.
func (c *conn) runBlocked(w *response, req *http.Request) {
	var panicked any
	evloop.Block(req.Context(), func() {
		defer func() { panicked = recover() }()
		c.srv.Handler.ServeHTTP(w, req)
	})
	if panicked != nil {
		panic(panicked)
	}
}

// refuse answers a request the server itself rejects, with a plain-text body, and marks the
// connection for closing.
func (c *conn) refuse(status int, msg string) {
	text := strconv.Itoa(status) + " " + http.StatusText(status)
	out := "HTTP/1.1 " + text + "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(msg)) + "\r\n\r\n" + msg
	c.setWriteBy(time.Now().Add(time.Second))
	_, _ = c.rwc.Write([]byte(out))
}

// handOff gives the connection to the fallback server with the bytes read so far replayed.
func (c *conn) handOff() {
	pre := make([]byte, 0, len(c.raw)+c.br.Buffered())
	pre = append(pre, c.raw...)
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		pre = append(pre, b...)
	}
	c.release()
	nc := c.rwc
	if ec, ok := nc.(*evloop.Conn); ok {
		// The fallback runs the connection on goroutines of its own: it leaves the loop.
		var err error
		if nc, err = ec.Detach(); err != nil {
			return
		}
	}
	c.srv.Fallback(&replayConn{Conn: nc, pre: pre})
}

// replayConn reads pre before the connection's own bytes.
type replayConn struct {
	net.Conn
	pre []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.pre) > 0 {
		n := copy(p, r.pre)
		r.pre = r.pre[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// stashReader is what the connection's bufio.Reader reads: the bytes a watch read, then the
// connection.
type stashReader struct{ c *conn }

func (r stashReader) Read(p []byte) (int, error) {
	if c := r.c; len(c.stash) > 0 {
		n := copy(p, c.stash)
		c.stash = c.stash[n:]
		return n, nil
	}
	return r.c.rwc.Read(p)
}

// watch notices a client leaving while a handler runs long: once the handler has run for
// WatchAfter with the request body read to its end, a goroutine reads the connection; EOF
// or an error cancels the request's context, and bytes (the next, pipelined request) are kept
// for the connection's reader. The sweep (sweep.go) starts it when it is due; stop ends the
// read before the connection reads again.
type watch struct {
	c     *conn
	b     *body
	after time.Duration

	mu    sync.Mutex
	at    int64         // when the sweep starts the read (Unix nanoseconds); 0: not armed
	state int           // 0 armed, 1 reading, 2 stopped
	done  chan struct{} // closed when the read returns
	gone  bool          // the client closed or reset the connection
}

// arm sets the watch for a new request.
func (w *watch) arm(c *conn, b *body, after time.Duration) {
	at := time.Now().Add(after).UnixNano()
	w.mu.Lock()
	w.c, w.b, w.after, w.state, w.gone, w.at = c, b, after, 0, false, at
	w.mu.Unlock()
}

// due starts the watch's read if it is armed and its time has come (the sweep calls it).
func (w *watch) due(now int64) {
	w.mu.Lock()
	if w.state != 0 || w.at == 0 || now < w.at {
		w.mu.Unlock()
		return
	}
	if w.b != nil && !w.b.read.Load() {
		// The handler is still reading the body: the connection is its; look again later.
		w.at = now + int64(w.after)
		w.mu.Unlock()
		return
	}
	w.at = 0
	w.state, w.done = 1, make(chan struct{})
	// The watch outlives ReadTimeout, which bounds the request, not the handler. Under the
	// lock, so that stop's deadline comes after this one.
	w.c.setReadBy(time.Time{})
	w.mu.Unlock()
	go w.read()
}

func (w *watch) read() {
	defer close(w.done)
	buf := make([]byte, 512)
	n, err := w.c.rwc.Read(buf)
	if n > 0 {
		w.c.stash = buf[:n]
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return // stopped by stop's deadline (or the read deadline passed)
	}
	w.gone = true
	w.c.cancel()
}

// stop ends the watch and reports whether the client left.
func (w *watch) stop() bool {
	w.mu.Lock()
	prev := w.state
	w.state, w.at = 2, 0
	if prev == 1 {
		w.c.setReadBy(aLongTimeAgo)
	}
	w.mu.Unlock()
	if prev != 1 {
		return false
	}
	<-w.done
	w.c.setReadBy(time.Time{})
	return w.gone
}

// headInBuffer reports whether the bytes br holds contain the empty line that ends a request
// head ("\r\n\r\n"; a head with bare line feeds is not looked for). The head comes first, and
// no field value can hold that sequence, so the first one found ends it.
func headInBuffer(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, crlfcrlf)
}

var crlfcrlf = []byte("\r\n\r\n")
