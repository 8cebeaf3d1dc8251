package openai

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/open-autoglm/autoglm/internal/evloop"
	"github.com/open-autoglm/autoglm/internal/sockio"

	"golang.org/x/net/http/httpguts"
)

// Transport is the upstream client's http.RoundTripper. A request to a plain-HTTP upstream
// reached without a proxy takes a direct HTTP/1.1 path: the caller's goroutine writes the
// request on a pooled keep-alive connection and reads the answer from it. Everything else —
// https (and with it HTTP/2), a proxy, a body of unknown length, Expect or Upgrade headers —
// goes to Std, net/http's Transport, unchanged.
//
// Why: net/http's Transport runs a reader and a writer goroutine per connection and hands each
// request and answer between them and the caller over channels. On an idle machine each
// hand-off is a wake-up of a parked thread; traced at 200 requests/s it was five of the nine
// wake-ups of a proxied request, and the largest share of the latency autoglm adds (see
// docs/BENCHMARKS.md). The direct path has one: the network poller waking the caller when the
// answer arrives.
type Transport struct {
	// Std serves every request the direct path does not. Required.
	Std *http.Transport
	// Dial opens a connection for the direct path. Required. A request served on an event
	// loop (internal/evloop) dials through its loop instead.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ConnectTimeout bounds a dial through a loop (Dial carries its own bound). 0: none but
	// the request's.
	ConnectTimeout time.Duration
	// Proxy is consulted like http.Transport.Proxy: a request it sends to a proxy goes to Std.
	Proxy func(*http.Request) (*url.URL, error)
	// MaxIdlePerHost caps the idle connections kept per upstream address. Default 256.
	MaxIdlePerHost int
	// IdleTimeout drops connections idle longer than this. Default 90s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds an answer's status line and headers. Default 1 MiB.
	MaxHeaderBytes int64

	mu   sync.Mutex
	idle map[poolKey][]*conn // most recently used last
}

// poolKey names a pool of idle connections: an upstream's host:port and, for a request served
// on an event loop, the loop. A loop's connections are its own (evloop.Loop.Dial), so that a
// request it runs is forwarded and answered without leaving it.
type poolKey struct {
	addr string
	loop *evloop.Loop
}

var _ http.RoundTripper = (*Transport)(nil)

const (
	defaultMaxIdlePerHost = 256
	defaultIdleTimeout    = 90 * time.Second
	defaultMaxHeaderBytes = 1 << 20
)

// maxHeader is MaxHeaderBytes or its default.
func (t *Transport) maxHeader() int64 {
	if t.MaxHeaderBytes > 0 {
		return t.MaxHeaderBytes
	}
	return defaultMaxHeaderBytes
}

// errHeaderTooLarge ends an answer whose headers pass Transport.MaxHeaderBytes.
var errHeaderTooLarge = errors.New("upstream response headers too large")

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.direct(req) {
		if evloop.FromContext(req.Context()) != nil {
			return t.stdOffLoop(req)
		}
		return t.Std.RoundTrip(req)
	}
	return t.roundTrip(req)
}

// stdOffLoop sends a request made on an event loop through Std, whose connections the
// runtime's poller serves: the exchange and each read of the answer wait off the loop
// (evloop.Block), so that the loop's other connections are not held up meanwhile.
func (t *Transport) stdOffLoop(req *http.Request) (*http.Response, error) {
	var resp *http.Response
	var err error
	evloop.Block(req.Context(), func() { resp, err = t.Std.RoundTrip(req) })
	if err != nil {
		return nil, err
	}
	resp.Body = &offLoopBody{ctx: req.Context(), rc: resp.Body}
	return resp, nil
}

// offLoopBody reads an answer of Std off the event loop (stdOffLoop).
type offLoopBody struct {
	ctx context.Context
	rc  io.ReadCloser
}

func (b *offLoopBody) Read(p []byte) (n int, err error) {
	evloop.Block(b.ctx, func() { n, err = b.rc.Read(p) })
	return n, err
}

func (b *offLoopBody) Close() error { return b.rc.Close() }

// direct reports whether req can take the direct path.
func (t *Transport) direct(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.URL.Host == "" || req.URL.User != nil || req.Close || req.Trailer != nil ||
		(req.Method != http.MethodGet && req.Method != http.MethodPost) {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength <= 0 {
		return false // length unknown: Std sends it chunked
	}
	if passedToStd(req.Header) {
		return false
	}
	if t.Proxy != nil {
		if u, err := t.Proxy(req); err != nil || u != nil {
			return false
		}
	}
	return true
}

// stdFields are the request header fields the direct path leaves to net/http, which knows
// what they ask of the connection.
var stdFields = []string{"Expect", "Upgrade", "Connection", "Transfer-Encoding", "Te"}

// CloseIdleConnections closes the idle connections of both paths.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			_ = c.nc.Close()
		}
	}
	t.Std.CloseIdleConnections()
}

// conn is one keep-alive connection of the direct path.
type conn struct {
	key   poolKey
	nc    net.Conn
	rc    syscall.RawConn // nc's, for alive; nil when it has none
	lr    limitedReader
	br    *bufio.Reader
	bw    *bufio.Writer
	idle  time.Time // when it was last put back
	reuse bool      // taken from the pool rather than dialled for this request
}

// limitedReader reads from a connection, failing once left reaches zero: it bounds the
// answer's headers while they are read, and is lifted for the body.
type limitedReader struct {
	nc   net.Conn
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.nc.Read(p)
	l.left -= int64(n)
	return n, err
}

const unlimited = 1<<63 - 1

func (t *Transport) get(ctx context.Context, addr string) (*conn, error) {
	timeout := t.IdleTimeout
	if timeout <= 0 {
		timeout = defaultIdleTimeout
	}
	now := time.Now()
	key := poolKey{addr: addr, loop: evloop.FromContext(ctx)}
	for {
		t.mu.Lock()
		cs := t.idle[key]
		if len(cs) == 0 {
			t.mu.Unlock()
			break
		}
		c := cs[len(cs)-1]
		cs[len(cs)-1] = nil
		t.idle[key] = cs[:len(cs)-1]
		t.mu.Unlock()
		if now.Sub(c.idle) < timeout && alive(c.rc) {
			c.reuse = true
			return c, nil
		}
		_ = c.nc.Close()
	}
	var nc net.Conn
	var err error
	if key.loop != nil {
		nc, err = t.loopDial(ctx, key.loop, addr)
	} else {
		nc, err = t.Dial(ctx, "tcp", addr)
		if err == nil {
			nc = sockio.Wrap(nc) // reads and writes as raw system calls: see internal/sockio
		}
	}
	if err != nil {
		return nil, err
	}
	c := &conn{key: key, nc: nc, rc: rawConn(nc), lr: limitedReader{nc: nc}}
	c.br = bufio.NewReaderSize(&c.lr, 4<<10)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c, nil
}

// loopDial dials addr on loop l, bounded by ConnectTimeout, with TCP keep-alive probes as
// net.Dialer's.
func (t *Transport) loopDial(ctx context.Context, l *evloop.Loop, addr string) (net.Conn, error) {
	if t.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.ConnectTimeout)
		defer cancel()
	}
	c, err := l.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	keepAlive(c)
	return c, nil
}

// put keeps c for the next request to its address (on its loop), or closes it when the pool
// is full.
func (t *Transport) put(c *conn) {
	limit := t.MaxIdlePerHost
	if limit <= 0 {
		limit = defaultMaxIdlePerHost
	}
	c.idle = time.Now()
	t.mu.Lock()
	if t.idle == nil {
		t.idle = make(map[poolKey][]*conn)
	}
	cs := t.idle[c.key]
	// The oldest connections sit at the bottom: drop those past the idle timeout, so a pool
	// that shrank after a burst does not hold sockets the upstream has long closed.
	timeout := t.IdleTimeout
	if timeout <= 0 {
		timeout = defaultIdleTimeout
	}
	var stale []*conn
	for len(cs) > 0 && c.idle.Sub(cs[0].idle) >= timeout {
		stale = append(stale, cs[0])
		cs[0] = nil
		cs = cs[1:]
	}
	t.idle[c.key] = cs
	if len(cs) < limit {
		t.idle[c.key] = append(cs, c)
		c = nil
	}
	t.mu.Unlock()
	for _, s := range stale {
		_ = s.nc.Close()
	}
	if c != nil {
		_ = c.nc.Close()
	}
}

func (t *Transport) roundTrip(req *http.Request) (*http.Response, error) {
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	// RoundTrip closes the request's body in every case, once.
	closed := req.Body == nil
	closeBody := func() {
		if !closed {
			closed = true
			_ = req.Body.Close()
		}
	}
	resp, err := t.exchange(req.Context(), addr, req.Method, func(w *bufio.Writer) error {
		err := writeRequest(w, req)
		closeBody()
		return err
	})
	closeBody()
	if err != nil {
		return nil, err
	}
	resp.Request = req
	return resp, nil
}

// exchange is one request and answer on a pooled connection to addr: write puts the whole
// request (head and body) into the connection's buffer, which is then flushed; the answer's
// head is read and its body handed back framed. method is the request's, which decides
// whether the answer has a body.
func (t *Transport) exchange(ctx context.Context, addr, method string, write func(*bufio.Writer) error) (*http.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := t.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	// A canceled request unblocks the connection's reads and writes at once; the connection is
	// then closed rather than reused.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = c.nc.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	err = write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		return fail(err)
	}
	c.lr.left = t.maxHeader()
	var resp *http.Response
	var f framing
	for {
		resp, f, err = readResponse(c.br, method)
		if err != nil {
			return fail(err)
		}
		// 1xx answers (Early Hints, an unasked-for 100 Continue) come before the real one.
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	c.lr.left = unlimited
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("upstream switched protocols unasked"))
	}
	b := &body{t: t, c: c, stop: stop, keep: !resp.Close, left: f.length}
	if f.none {
		resp.Body = http.NoBody
		b.release(true)
		return resp, nil
	}
	if f.chunked {
		b.chunks = httputil.NewChunkedReader(c.br)
	}
	resp.Body = b
	return resp, nil
}

// writeRequest writes req's head and body into w; the caller flushes them in one write.
func writeRequest(w *bufio.Writer, req *http.Request) error {
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	w.WriteString(host)
	w.WriteString("\r\n")
	if _, ok := req.Header["User-Agent"]; !ok {
		w.WriteString("User-Agent: Go-http-client/1.1\r\n")
	}
	if req.Body != nil && req.Body != http.NoBody {
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(req.ContentLength, 10))
		w.WriteString("\r\n")
	}
	writeHeader(w, req.Header)
	w.WriteString("\r\n")
	if req.Body != nil && req.Body != http.NoBody {
		n, err := io.Copy(w, req.Body)
		if err != nil {
			return err
		}
		if n != req.ContentLength {
			return errors.New("request body length differs from its ContentLength")
		}
	}
	return nil
}

// lineBreaks turns the line breaks in a header value into spaces.
var lineBreaks = strings.NewReplacer("\r", " ", "\n", " ")

// writeHeader writes h as http.Header.Write does — a field with an invalid name is dropped,
// line breaks in a value become spaces and the value is trimmed, so that no value can start a
// field of its own — but in the map's order: Header.Write sorts the names first, work the
// upstream has no use for.
//
// Host and Content-Length in h are dropped: the request's framing is the transport's own, and
// a second Content-Length would let the upstream and the gateway disagree on where the body
// ends.
func writeHeader(w *bufio.Writer, h http.Header) {
	for k, vs := range h {
		if k == "Host" || k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			writeField(w, k, v)
		}
	}
}

// writeField writes one header field "k: v", as writeHeader says: nothing for an invalid
// name, v trimmed and its line breaks made spaces.
func writeField(w *bufio.Writer, k, v string) {
	if !httpguts.ValidHeaderFieldName(k) {
		return
	}
	w.WriteString(k)
	w.WriteString(": ")
	v = strings.Trim(v, " \t\r\n")
	if strings.ContainsAny(v, "\r\n") {
		v = lineBreaks.Replace(v)
	}
	w.WriteString(v)
	w.WriteString("\r\n")
}

// body is an answer read on the direct path, framed as readResponse found. Its end hands the
// connection back to the pool; closing it before the end closes the connection instead of
// reading the rest (a stream the client abandoned may run for minutes).
type body struct {
	t      *Transport
	c      *conn
	stop   func() bool
	keep   bool
	chunks io.Reader // the chunked body's reader; nil otherwise
	left   int64     // bytes left of a body of known length; -1: chunked, or to the connection's end
	err    error     // the error every read returns once the body has ended or failed
	done   atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	var n int
	var err error
	switch {
	case b.chunks != nil:
		n, err = b.chunks.Read(p)
		if err == io.EOF {
			// The last chunk: the trailer, if any, and the blank line that ends the answer.
			b.c.lr.left = b.t.maxHeader()
			if terr := readTrailer(b.c.br); terr != nil {
				err = terr
			}
		}
	case b.left >= 0:
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
		if len(p) == 0 {
			err = io.EOF
			break
		}
		n, err = b.c.br.Read(p)
		b.left -= int64(n)
		switch {
		case b.left == 0:
			err = io.EOF // the end comes with the last bytes
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
	default:
		n, err = b.c.br.Read(p) // to the connection's end
	}
	if err != nil {
		b.err = err
		if err != io.EOF {
			b.release(false)
		}
		// At the end the connection goes back to the pool at Close, after the caller's
		// own last write rather than before it.
	}
	return n, err
}

// Ready reports whether the next Read returns without waiting for the upstream: the body
// has ended, or its bytes are framed by length (or by the connection's end) and some are
// buffered. A chunked body's reader may need more than is buffered, so it is never ready
// before its end.
func (b *body) Ready() bool {
	return b.err != nil || b.chunks == nil && b.c.br.Buffered() > 0
}

// Interrupt ends a read in progress from another goroutine (the router's idle watch): the
// connection is closed, and the read fails on it. It touches nothing a read changes.
func (b *body) Interrupt() { b.release(false) }

// Close ends the body: after its end, the connection goes back to the pool; before it, the
// connection is closed (and a read after that fails on it).
func (b *body) Close() error {
	b.release(b.err == io.EOF)
	return nil
}

// release ends the body's hold on its connection: back to the pool when the answer was read
// to its end, the upstream did not ask to close, and no cancellation touched it; closed
// otherwise.
func (b *body) release(complete bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	if b.stop() && complete && b.keep && b.c.br.Buffered() == 0 {
		b.t.put(b.c)
		return
	}
	_ = b.c.nc.Close()
}
