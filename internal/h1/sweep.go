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
// the watch's timer. Measured at 200 requests/s, interleaved with the old build: the lean
// floor (this server and the upstream transport alone) adds 30-50 µs less at p50 with the
// sweep, autoglm 14-17 µs less.
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
		select {
		case s.sweepWake <- struct{}{}:
		default:
		}
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
		if c.readBy != 0 && now >= c.readBy {
			c.readBy, c.rSet = 0, true
			_ = c.rwc.SetReadDeadline(aLongTimeAgo)
		}
		if c.writeBy != 0 && now >= c.writeBy {
			c.writeBy, c.wSet = 0, true
			_ = c.rwc.SetWriteDeadline(aLongTimeAgo)
		}
	}
	c.dmu.Unlock()
	c.watch.due(now)
}

// setReadBy sets the connection's read deadline (the zero time: none), coarse or on the
// socket (see the comment at the top of this file).
func (c *conn) setReadBy(t time.Time) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.handed {
		return
	}
	c.readBy, c.rSet = c.setBy(t, c.rSet, c.rwc.SetReadDeadline)
}

// setWriteBy is setReadBy for the write deadline.
func (c *conn) setWriteBy(t time.Time) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.handed {
		return
	}
	c.writeBy, c.wSet = c.setBy(t, c.wSet, c.rwc.SetWriteDeadline)
}

// setBy is the common part of setReadBy and setWriteBy: set says whether the socket holds a
// deadline of ours; it returns the coarse deadline and the new set. c.dmu is held.
func (c *conn) setBy(t time.Time, set bool, socket func(time.Time) error) (int64, bool) {
	if !t.IsZero() && c.srv.coarse(t) {
		if set {
			_ = socket(time.Time{})
		}
		return t.UnixNano(), false
	}
	if t.IsZero() && !set {
		return 0, false // nothing to clear: no timer to touch
	}
	_ = socket(t)
	return 0, !t.IsZero()
}

// release leaves the connection's deadlines to whoever takes the connection over (a
// hand-off): the sweep no longer touches it, and the socket has none.
func (c *conn) release() {
	c.dmu.Lock()
	c.handed = true
	c.readBy, c.writeBy, c.rSet, c.wSet = 0, 0, false, false
	c.dmu.Unlock()
	_ = c.rwc.SetDeadline(time.Time{})
}
