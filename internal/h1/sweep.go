package h1

import (
	"time"
)

// Deadlines and the watch without a timer per request.
//
// A socket deadline is a runtime timer: setting one takes the timer heap's lock, and a timer
// that becomes the earliest on its heap wakes an idle thread to watch it, a futex wake-up
// and a second core's spin on every request of an otherwise idle server. The request path
// used to set three deadlines (the read deadline twice, the write deadline once) and reset
// the watch's timer. Measured interleaved with the old build, each endpoint at about 28
// requests/s: the lean floor (this server and the upstream transport alone) added 28-36 µs
// less at p50 with the sweep, autoglm 14-17 µs less; at 200 requests/s to each, autoglm's
// timer heaps were never empty and the difference was within 4 µs.
//
// So each server runs one sweep while it has connections: every tick (a quarter of
// WatchAfter, at most 250 ms, at least 1 ms) it looks at each connection's coarse deadlines
// and its watch; after a second without a request it rests at one tick a second until the
// next request wakes it. A deadline at least eight ticks away is only noted on the connection (a
// store under an uncontended lock) and enforced by the sweep, which sets the socket's
// deadline in the past once it is due, at most one tick late and never early. A nearer one
// (and any the sweep cannot time well enough) goes to the socket as before.

// aLongTimeAgo is a deadline in the past: it ends a read or write in progress at once.
var aLongTimeAgo = time.Unix(1, 0)

// tick is the sweep's period.
func (s *Server) tick() time.Duration {
	t := time.Second
	if w := s.watchAfter(); w > 0 {
		t = min(t, w)
	}
	return max(t/4, time.Millisecond)
}

// watchAfter is WatchAfter with its default: negative means no watch.
func (s *Server) watchAfter() time.Duration {
	if s.WatchAfter == 0 {
		return 100 * time.Millisecond
	}
	return s.WatchAfter
}

// coarse reports whether deadline t is for the sweep to enforce.
func (s *Server) coarse(t time.Time) bool { return time.Until(t) >= 8*s.tick() }

// startSweep starts the sweep if it is not running; s.mu is held.
func (s *Server) startSweep() {
	if !s.sweeping {
		s.sweeping = true
		s.sweepIdle.Store(false)
		go s.sweep()
	}
}

// restAfter is how long the sweep goes without a request before it slows to one tick a
// second; the next request wakes it (noteRequest).
const restAfter = time.Second

// noteRequest tells the sweep a request has begun: it keeps the sweep at its full rate, and
// wakes a resting one so that the request's watch and deadlines are timed at that rate.
func (s *Server) noteRequest() {
	s.sweepBusy.Store(true)
	if s.sweepIdle.Load() {
		s.wakeSweep()
	}
}

// wakeSweep makes the sweep look now rather than at its next tick; a wake already pending
// stands for this one.
func (s *Server) wakeSweep() {
	select {
	case s.sweepWake <- struct{}{}:
	default:
	}
}

// sweep enforces the coarse deadlines and starts the watches that are due, until the server
// has no connection left (newConn starts it again). After restAfter without a request it
// rests, ticking once a second (enough for deadlines of seconds), until a request wakes it.
// The request sets sweepBusy before it looks at sweepIdle, and the sweep sets sweepIdle
// before it looks at sweepBusy again: with both atomic, a request either finds the sweep
// resting and wakes it, or is seen by it and keeps it at full rate.
func (s *Server) sweep() {
	tick := s.tick()
	t := time.NewTimer(tick)
	defer t.Stop()
	var cs []*conn
	quiet := time.Duration(0) // time since the last request was noted
	for {
		select {
		case <-t.C:
		case <-s.sweepWake:
		}
		s.mu.Lock()
		if len(s.conns) == 0 {
			s.sweeping = false
			s.mu.Unlock()
			return
		}
		cs = cs[:0]
		for c := range s.conns {
			cs = append(cs, c)
		}
		s.mu.Unlock()
		now := time.Now().UnixNano()
		for _, c := range cs {
			c.expire(now)
		}
		clear(cs)
		next := tick
		switch {
		case s.sweepBusy.Swap(false):
			quiet = 0
			s.sweepIdle.Store(false)
		case s.sweepIdle.Load():
			next = time.Second
		default:
			quiet += tick
			if quiet >= restAfter {
				s.sweepIdle.Store(true)
				if s.sweepBusy.Load() {
					s.sweepIdle.Store(false) // a request came in meanwhile
				} else {
					next = time.Second
				}
			}
		}
		t.Reset(next)
	}
}

// expire ends the reads and writes whose coarse deadline has passed and starts the watch when
// it is due.
func (c *conn) expire(now int64) {
	c.dmu.Lock()
	if !c.handed {
		c.rd.expire(now, c.rwc.SetReadDeadline)
		c.wd.expire(now, c.rwc.SetWriteDeadline)
	}
	c.dmu.Unlock()
	c.watch.due(now)
}

// setReadBy sets the connection's read deadline (the zero time: none), coarse or on the
// socket (see the comment at the top of this file).
func (c *conn) setReadBy(t time.Time) { c.setDeadline(&c.rd, t, c.rwc.SetReadDeadline) }

// setWriteBy is setReadBy for the write deadline.
func (c *conn) setWriteBy(t time.Time) { c.setDeadline(&c.wd, t, c.rwc.SetWriteDeadline) }

func (c *conn) setDeadline(d *deadline, t time.Time, socket func(time.Time) error) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if !c.handed {
		d.setTo(c.srv, t, socket)
	}
}

// deadline is one direction's deadline (read or write) as a connection keeps it; the
// connection's dmu guards it.
type deadline struct {
	by  int64 // the coarse deadline the sweep enforces, Unix nanoseconds; 0: none
	set bool  // the socket holds a deadline set through this one
}

// setTo sets the deadline to t (the zero time: none): coarse when it is far enough ahead for
// s's sweep, else on the socket through socket.
func (d *deadline) setTo(s *Server, t time.Time, socket func(time.Time) error) {
	if !t.IsZero() && s.coarse(t) {
		if d.set {
			_ = socket(time.Time{})
		}
		d.by, d.set = t.UnixNano(), false
		return
	}
	d.by = 0
	if t.IsZero() && !d.set {
		return // nothing to clear: no timer to touch
	}
	_ = socket(t)
	d.set = !t.IsZero()
}

// expire ends the reads or writes in progress through socket once the coarse deadline has
// passed.
func (d *deadline) expire(now int64, socket func(time.Time) error) {
	if d.by != 0 && now >= d.by {
		d.by, d.set = 0, true
		_ = socket(aLongTimeAgo)
	}
}

// release leaves the connection's deadlines to whoever takes the connection over (a
// hand-off): the sweep no longer touches it, and the socket has none.
func (c *conn) release() {
	c.dmu.Lock()
	c.handed = true
	c.rd, c.wd = deadline{}, deadline{}
	c.dmu.Unlock()
	_ = c.rwc.SetDeadline(time.Time{})
}
