// Package cpuplace keeps a lightly loaded process on one CPU and spreads it over all of its
// CPUs as soon as its load needs them.
//
// At a few hundred requests a second a gateway's threads sleep between requests, and the
// kernel wakes whichever is next on whichever CPU is idle: the goroutine that wrote a request
// upstream reads the answer on another CPU, and the runtime's own hand-offs between its
// threads cross CPUs too. Each crossing is an inter-processor wake-up (costly in a virtual
// machine) and a CPU whose caches hold none of the request's code and data. Gathered on one
// CPU, the same process added 29-57 µs less at the median at 200 requests/s; nginx gained
// 33 µs the same way (docs/BENCHMARKS.md, "Gathered on one CPU"). Under load one CPU would
// cap the throughput, so the process spreads again once it uses more than a share of one CPU,
// within one reading of its CPU time.
package cpuplace

import (
	"errors"
	"time"
)

// ErrTooFew is Start's error for a process allowed fewer than two CPUs: there is nothing to
// gather.
var ErrTooFew = errors.New("fewer than two CPUs")

// Policy says when the process gathers on one CPU and when it spreads.
type Policy struct {
	// Every is how often the process's CPU time is read.
	Every time.Duration
	// Spread is the CPU use (in CPUs: 0.5 is half of one) at or above which a gathered
	// process spreads, at the next reading.
	Spread float64
	// Gather is the CPU use below which a spread process gathers, once it has stayed below
	// for Calm.
	Gather float64
	Calm   time.Duration
}

// DefaultPolicy gathers below a tenth of a CPU held for two seconds and spreads at half of one,
// read every 25 ms: at 200 requests/s a gateway uses about 5 % of one CPU, and a collection
// (a few milliseconds of marking) takes one reading to about 20 %. A burst is spread within
// 25 ms, about as long as an admission queue's wait.
func DefaultPolicy() Policy {
	return Policy{Every: 25 * time.Millisecond, Spread: 0.5, Gather: 0.1, Calm: 2 * time.Second}
}

// decide is the policy's state machine: given whether the process is gathered, its CPU use
// over the last reading, and how long its use has stayed below Gather (calm, counted by the
// caller), whether it should be gathered now.
func (p Policy) decide(gathered bool, use float64, calm time.Duration) bool {
	if gathered {
		return use < p.Spread
	}
	return use < p.Gather && calm >= p.Calm
}
