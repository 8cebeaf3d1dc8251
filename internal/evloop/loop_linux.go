//go:build linux && (amd64 || arm64)

package evloop

import (
	"context"
	"errors"
	"iter"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported reports whether this platform has event loops.
const Supported = true

// SpinFor is how long a loop keeps waiting in epoll while holding its P after its last
// event, unless Group.Spin says otherwise (see the package comment).
const SpinFor = 5 * time.Millisecond

// Group is a set of loops that accept connections from one listening socket.
type Group struct {
	// Spin is how long a loop waits holding its P after its last event (set before Serve):
	// 0 means SpinFor, a negative value never (every wait then goes through the runtime's
	// hooks, leaving the P to other goroutines: for a process whose CPUs other work needs,
	// such as the built-in engine's).
	Spin time.Duration

	ln    net.Listener
	lnfd  int // a duplicate of ln's socket, shared by the loops' epoll sets
	serve func(*Conn)
	loops []*Loop

	closed     atomic.Bool
	unlistened atomic.Int32 // loops that have taken the listening socket out of their epoll set
	wg         sync.WaitGroup
	once       sync.Once
}

// NewGroup makes n loops (GOMAXPROCS when n <= 0) that accept connections from ln, a TCP
// listener, and run serve for each on its loop as a coroutine. The connection is serve's: it
// must close it (or Detach it), when it returns or later. ln stays the caller's: Close does
// not close it.
func NewGroup(ln net.Listener, n int, serve func(*Conn)) (*Group, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, errors.New("evloop: not a TCP listener")
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, err
	}
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	g := &Group{ln: ln, lnfd: dup, serve: serve}
	for range n {
		l, err := newLoop(g)
		if err != nil {
			for _, l := range g.loops {
				l.release()
			}
			unix.Close(dup)
			return nil, err
		}
		g.loops = append(g.loops, l)
	}
	return g, nil
}

// Addr is the listener's address.
func (g *Group) Addr() net.Addr { return g.ln.Addr() }

// Serve runs the loops until Close and until every connection they accepted has ended;
// it then returns ErrClosed.
func (g *Group) Serve() error {
	for _, l := range g.loops {
		g.wg.Go(l.run)
	}
	g.wg.Wait()
	return ErrClosed
}

// Close stops accepting. Connections already accepted are served on until they end (their
// server closes them); Serve returns when they have.
func (g *Group) Close() error {
	g.once.Do(func() {
		g.closed.Store(true)
		for _, l := range g.loops {
			l.mu.Lock()
			if !l.dead {
				l.wake()
			}
			l.mu.Unlock()
		}
	})
	return nil
}

// Loop is one event loop: an epoll set, the connections registered in it and the coroutines
// that serve them.
type Loop struct {
	g  *Group
	ep int
	ev int // an eventfd: other goroutines wake the loop through it

	cur     atomic.Uintptr // the running coroutine's goroutine (getg), 0 between them
	curTask *task          // the running coroutine; read only by that coroutine

	// Owned by the loop's goroutine.
	conns     []*Conn // by file descriptor
	ready     []*task
	running   []*task
	tasks     int // coroutines alive
	listening bool
	letGo     bool      // the group is closed and the loop no longer waits on the listening socket
	pausedTo  time.Time // accepting paused (out of descriptors) until then
	events    [128]unix.EpollEvent

	mu    sync.Mutex
	posts []post
	spare []post
	dead  bool // the loop has ended: posts are handled by the poster
}

// post is a request from another goroutine, handled on the loop: wake c's waiters, close
// c, or resume t.
type post struct {
	c     *Conn
	close bool
	t     *task
}

func newLoop(g *Group) (*Loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	ev, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, err
	}
	l := &Loop{g: g, ep: ep, ev: ev}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, ev, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ev)}); err != nil {
		l.release()
		return nil, err
	}
	if err := l.listen(true); err != nil {
		l.release()
		return nil, err
	}
	return l, nil
}

// listen adds the shared listening socket to the loop's epoll set or takes it out. Every
// loop waits on it; EPOLLEXCLUSIVE wakes one of them for a new connection, not all.
func (l *Loop) listen(on bool) error {
	if on == l.listening {
		return nil
	}
	var err error
	if on {
		err = unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, l.g.lnfd,
			&unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(l.g.lnfd)})
	} else {
		err = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, l.g.lnfd, nil)
	}
	if err == nil {
		l.listening = on
	}
	return err
}

func (l *Loop) release() {
	unix.Close(l.ev)
	unix.Close(l.ep)
}

// wake makes the loop look at its posts now; l.mu is held (so that the eventfd is not closed
// under it) and the loop has not ended.
func (l *Loop) wake() {
	one := uint64(1)
	for {
		_, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(l.ev), uintptr(unsafe.Pointer(&one)), 8)
		if e != unix.EINTR {
			return
		}
	}
}

// postReq hands p to the loop. After the loop has ended it is handled here: waiters are
// released at once, closes done at once.
func (l *Loop) postReq(p post) {
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		if p.close {
			p.c.shutFD(true)
		}
		return
	}
	l.posts = append(l.posts, p)
	if len(l.posts) == 1 {
		l.wake()
	}
	l.mu.Unlock()
}

// onLoop reports whether the caller is the loop's running coroutine.
func (l *Loop) onLoop() bool {
	g := l.cur.Load()
	return g != 0 && g == getg()
}

// runningTask is the caller's task when it is the loop's running coroutine, else nil.
func (l *Loop) runningTask() *task {
	if !l.onLoop() {
		return nil
	}
	return l.curTask
}

// task is one coroutine of a loop.
type task struct {
	l      *Loop
	next   func() (struct{}, bool)
	stop   func()
	yield  func(struct{}) bool
	g      uintptr
	queued bool
	ended  bool
}

// park returns to the loop until something readies the task; false when the loop is
// stopping the coroutine.
func (t *task) park() bool { return t.yield(struct{}{}) }

// readyTask queues t to run; on the loop only.
func (l *Loop) readyTask(t *task) {
	if t != nil && !t.queued {
		t.queued = true
		l.ready = append(l.ready, t)
	}
}

// spawn starts fn as a coroutine of the loop; it first runs at the loop's next turn.
func (l *Loop) spawn(fn func()) {
	t := &task{l: l}
	t.next, t.stop = iter.Pull(func(yield func(struct{}) bool) {
		t.yield = yield
		t.g = getg()
		l.cur.Store(t.g)
		fn()
	})
	l.tasks++
	l.readyTask(t)
}

// resume runs t until it parks or ends.
func (l *Loop) resume(t *task) {
	t.queued = false
	if t.ended {
		return // a late wake (a Block's helper posting after the coroutine went on)
	}
	l.curTask = t
	l.cur.Store(t.g) // 0 on the first run: the coroutine stores its own
	_, alive := t.next()
	l.cur.Store(0)
	l.curTask = nil
	if !alive {
		t.ended = true
		l.tasks--
	}
}

func (l *Loop) run() {
	// The loop keeps its thread: a loop that waited in the kernel and came back on another
	// thread would wake that thread, and the coroutines follow the loop.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer l.end()
	spinFor := l.g.Spin
	if spinFor == 0 {
		spinFor = SpinFor
	}
	spinUntil := time.Now().Add(spinFor)
	for {
		l.running, l.ready = l.ready, l.running[:0]
		for i, t := range l.running {
			l.resume(t)
			l.running[i] = nil
		}
		l.takePosts()
		if l.g.closed.Load() {
			if !l.letGo {
				l.letGo = true
				_ = l.listen(false)
				if l.g.unlistened.Add(1) == int32(len(l.g.loops)) {
					// The last loop to let go of the listening socket closes it.
					unix.Close(l.g.lnfd)
				}
			}
			if l.tasks == 0 {
				return
			}
		} else if !l.pausedTo.IsZero() && !time.Now().Before(l.pausedTo) {
			l.pausedTo = time.Time{}
			_ = l.listen(true)
		}
		timeout := -1
		switch {
		case len(l.ready) > 0:
			timeout = 0
		case !l.pausedTo.IsZero():
			timeout = max(1, int(time.Until(l.pausedTo)/time.Millisecond))
		}
		var n int
		if timeout != 0 {
			n = l.spin(spinUntil)
		}
		if n == 0 {
			n = l.waitHooked(timeout)
		}
		if n > 0 && spinFor > 0 {
			spinUntil = time.Now().Add(spinFor)
		}
		for i := range n {
			l.event(&l.events[i])
		}
	}
}

// spin waits for events holding the P, out of the runtime's sight, until spinUntil: one raw
// epoll wait for the time left (each wait that times out is a wake-up of the thread for
// nothing, so not shorter ones).
func (l *Loop) spin(spinUntil time.Time) int {
	for {
		left := time.Until(spinUntil)
		if left <= 0 {
			return 0
		}
		ms := int((left + time.Millisecond - 1) / time.Millisecond)
		r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])),
			uintptr(len(l.events)), uintptr(ms), 0, 0)
		if e == 0 && r > 0 {
			return int(r)
		}
		if e != 0 && e != unix.EINTR {
			return 0
		}
	}
}

// waitHooked waits through the runtime's system-call hooks: the P is handed on while the
// thread sleeps in the kernel.
func (l *Loop) waitHooked(timeout int) int {
	for {
		n, err := unix.EpollWait(l.ep, l.events[:], timeout)
		if err == nil {
			return n
		}
		if err != unix.EINTR {
			return 0
		}
	}
}

func (l *Loop) event(ev *unix.EpollEvent) {
	fd := int(ev.Fd)
	switch {
	case fd == l.ev:
		var b [8]byte
		_, _, _ = syscall.RawSyscall(unix.SYS_READ, uintptr(l.ev), uintptr(unsafe.Pointer(&b[0])), 8)
		return
	case l.listening && fd == l.g.lnfd:
		l.accept()
		return
	case fd >= len(l.conns):
		return
	}
	c := l.conns[fd]
	if c == nil {
		return
	}
	const rd = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
	const wr = unix.EPOLLOUT | unix.EPOLLHUP | unix.EPOLLERR
	if ev.Events&rd != 0 {
		l.signal(&c.r)
	}
	if ev.Events&wr != 0 {
		l.signal(&c.w)
	}
}

// signal records an event on s and wakes its waiters.
func (l *Loop) signal(s *side) {
	s.seq.Add(1)
	l.wakeSide(s)
}

func (l *Loop) wakeSide(s *side) {
	if s.task != nil {
		l.readyTask(s.task)
	}
}

// takePosts handles what other goroutines asked of the loop.
func (l *Loop) takePosts() {
	l.mu.Lock()
	posts := l.posts
	l.posts = l.spare[:0]
	l.mu.Unlock()
	for i := range posts {
		p := &posts[i]
		switch {
		case p.t != nil:
			l.readyTask(p.t)
		case p.close:
			p.c.shutFD(false)
		case p.c != nil:
			l.wakeSide(&p.c.r)
			l.wakeSide(&p.c.w)
		}
		*p = post{}
	}
	l.spare = posts[:0]
}

// accept takes the connections waiting on the listening socket (up to a batch, so that one
// loop does not take a burst the others could share).
func (l *Loop) accept() {
	for range 32 {
		fd, sa, err := unix.Accept4(l.g.lnfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == nil:
		case err == unix.EINTR || err == unix.ECONNABORTED:
			continue
		case err == unix.EMFILE || err == unix.ENFILE || err == unix.ENOBUFS || err == unix.ENOMEM:
			// Out of descriptors: the socket stays readable, so stop waiting on it for a
			// moment rather than spin.
			_ = l.listen(false)
			l.pausedTo = time.Now().Add(100 * time.Millisecond)
			return
		default:
			return // EAGAIN: taken by another loop or none left
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c, err := l.register(fd, sockaddrAddr(sa))
		if err != nil {
			unix.Close(fd)
			continue
		}
		serve := l.g.serve
		l.spawn(func() { serve(c) })
	}
}

// register makes a Conn of fd and adds it to the epoll set, edge-triggered for both
// directions.
func (l *Loop) register(fd int, raddr net.Addr) (*Conn, error) {
	c := &Conn{l: l, fd: fd, raddr: raddr}
	if fd >= len(l.conns) {
		grown := make([]*Conn, max(fd+1, 2*len(l.conns), 64))
		copy(grown, l.conns)
		l.conns = grown
	}
	l.conns[fd] = c
	err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)})
	if err != nil {
		l.conns[fd] = nil
		return nil, err
	}
	return c, nil
}

// end runs when the loop's last coroutine has ended after Close: the connections left (an
// upstream pool's idle ones) are closed, and later posts are handled by their posters.
func (l *Loop) end() {
	for _, c := range l.conns {
		if c != nil {
			c.closed.Store(true)
			c.shut.Store(true)
			c.shutFD(false)
		}
	}
	l.mu.Lock()
	l.dead = true
	posts := l.posts
	l.posts = nil
	l.release()
	l.mu.Unlock()
	for _, p := range posts {
		if p.close {
			p.c.shutFD(true)
		}
	}
}

// Block runs fn, which may wait on other goroutines, without holding up the loop: called by
// a loop's coroutine, fn runs on a goroutine of its own while the coroutine is parked and
// the loop serves its other connections. Called elsewhere, it just calls fn.
func Block(ctx context.Context, fn func()) {
	l := FromContext(ctx)
	if l == nil {
		fn()
		return
	}
	t := l.curTask
	done := make(chan struct{})
	go func() {
		defer func() {
			close(done)
			l.postReq(post{t: t})
		}()
		fn()
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		if !t.park() {
			<-done // the loop is stopping this coroutine: fn still uses the caller's memory
			return
		}
	}
}

// Dial opens a TCP connection to addr (host:port, the host an IP address or a name) owned by
// the caller's loop: only a loop's coroutine may call it (FromContext gives its loop). ctx
// bounds the connect; a name is resolved off the loop (Block).
func (l *Loop) Dial(ctx context.Context, addr string) (*Conn, error) {
	if !l.onLoop() {
		return nil, errors.New("evloop: Dial called off its loop")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ta *net.TCPAddr
	if ip := net.ParseIP(host); ip != nil {
		pn, err := net.LookupPort("tcp", port)
		if err != nil {
			return nil, err
		}
		ta = &net.TCPAddr{IP: ip, Port: pn}
	} else {
		Block(ctx, func() { ta, err = net.ResolveTCPAddr("tcp", addr) })
		if err != nil {
			return nil, err
		}
	}
	dialErr := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Addr: ta, Err: err} }
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ip4 := ta.IP.To4(); ip4 != nil {
		s := &unix.SockaddrInet4{Port: ta.Port}
		copy(s.Addr[:], ip4)
		sa = s
	} else {
		s := &unix.SockaddrInet6{Port: ta.Port}
		copy(s.Addr[:], ta.IP.To16())
		sa, family = s, unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, dialErr(err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c, err := l.register(fd, ta)
	if err != nil {
		unix.Close(fd)
		return nil, dialErr(err)
	}
	err = unix.Connect(fd, sa)
	for err == unix.EINTR {
		err = unix.Connect(fd, sa)
	}
	if err == nil {
		return c, nil
	}
	if err != unix.EINPROGRESS {
		_ = c.Close()
		return nil, dialErr(err)
	}
	// Connecting: writable once done; SO_ERROR says how it went.
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		seq := c.w.seq.Load()
		v, gerr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if gerr == nil && v != 0 {
			_ = c.Close()
			return nil, dialErr(syscall.Errno(v))
		}
		if connected(fd) {
			_ = c.SetWriteDeadline(time.Time{})
			return c, nil
		}
		if err := c.wait(&c.w, seq); err != nil {
			_ = c.Close()
			if cerr := ctx.Err(); cerr != nil {
				return nil, dialErr(cerr)
			}
			return nil, dialErr(err)
		}
	}
}

// connected reports whether a socket's non-blocking connect has completed.
func connected(fd int) bool {
	_, err := unix.Getpeername(fd)
	return err == nil
}

func sockaddrAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return &net.TCPAddr{}
}
