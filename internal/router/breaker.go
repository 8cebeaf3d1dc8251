package router

import (
	"sync"
	"sync/atomic"
)

// Circuit is the state of a backend's circuit breaker.
type Circuit int32

const (
	// CircuitClosed lets every request through and counts outcomes.
	CircuitClosed Circuit = iota
	// CircuitOpen refuses requests until its open period ends.
	CircuitOpen
	// CircuitHalfOpen lets exactly one trial request through; its outcome closes or reopens
	// the circuit.
	CircuitHalfOpen
)

func (c Circuit) String() string {
	switch c {
	case CircuitOpen:
		return "open"
	case CircuitHalfOpen:
		return "half_open"
	}
	return "closed"
}

// breaker is a sliding-window circuit breaker. It is hand-written rather than taken from a
// library because the balancer must read its state on every pick without a lock, and the
// half-open trial has to be claimed when the backend is picked (so that one trial goes out,
// not one per concurrent request), not when the call starts.
//
// The circuit opens when, within the window, failures ≥ minFailures and
// failures/outcomes ≥ ratio. After openFor it lets one trial through (half-open); the trial's
// success closes the circuit with an empty window, its failure opens it again.
type breaker struct {
	minFailures uint64
	ratio       float64
	openFor     int64

	state     atomic.Int32 // Circuit
	openUntil atomic.Int64 // Unix nanoseconds; meaningful while open
	trial     atomic.Bool  // a half-open trial is out

	mu    sync.Mutex // serialises transitions
	win   window     // a: failures, b: outcomes
	opens atomic.Uint64
}

func newBreaker(minFailures int, ratio float64, window, openFor int64) *breaker {
	return &breaker{minFailures: uint64(minFailures), ratio: ratio, openFor: openFor, win: newWindow(window)}
}

// Circuit returns the state at time now. An open circuit whose period has passed reports
// half-open: the next pick may send the trial.
func (b *breaker) circuit(now int64) Circuit {
	s := Circuit(b.state.Load())
	if s == CircuitOpen && now >= b.openUntil.Load() {
		return CircuitHalfOpen
	}
	return s
}

// available reports, without claiming anything, whether a request could go through at now.
func (b *breaker) available(now int64) bool {
	switch Circuit(b.state.Load()) {
	case CircuitClosed:
		return true
	case CircuitOpen:
		return now >= b.openUntil.Load()
	default:
		return !b.trial.Load()
	}
}

// claim admits one request at now. trial reports that the request is the half-open trial,
// whose outcome must be passed to record (or released with releaseTrial).
func (b *breaker) claim(now int64) (trial, ok bool) {
	for {
		switch Circuit(b.state.Load()) {
		case CircuitClosed:
			return false, true
		case CircuitOpen:
			if now < b.openUntil.Load() {
				return false, false
			}
			b.mu.Lock()
			if Circuit(b.state.Load()) == CircuitOpen && now >= b.openUntil.Load() {
				b.trial.Store(false)
				b.state.Store(int32(CircuitHalfOpen))
			}
			b.mu.Unlock()
		default:
			if b.trial.CompareAndSwap(false, true) {
				return true, true
			}
			return false, false
		}
	}
}

// releaseTrial gives the trial back without an outcome (the client went away), so that the
// next request can be the trial.
func (b *breaker) releaseTrial() { b.trial.Store(false) }

// record counts one outcome at now and reports whether the circuit changed state.
func (b *breaker) record(now int64, ok, trial bool) (changed bool, to Circuit) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Circuit(b.state.Load())
	if trial {
		b.trial.Store(false)
		if s != CircuitHalfOpen {
			return false, s
		}
		if ok {
			b.win.reset()
			b.state.Store(int32(CircuitClosed))
			return true, CircuitClosed
		}
		b.openLocked(now)
		return true, CircuitOpen
	}
	if s != CircuitClosed {
		// A request that started before the circuit opened: its outcome says nothing new.
		return false, s
	}
	var fail uint64
	if !ok {
		fail = 1
	}
	fails, total := b.win.add(now, fail, 1)
	if !ok && fails >= b.minFailures && float64(fails) >= b.ratio*float64(total) {
		b.openLocked(now)
		return true, CircuitOpen
	}
	return false, s
}

func (b *breaker) openLocked(now int64) {
	b.openUntil.Store(now + b.openFor)
	b.state.Store(int32(CircuitOpen))
	b.opens.Add(1)
}
