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
//
// The one CPU is the one the rest of the machine kept the least busy while the process was
// calm, read from /proc/stat: two gathered processes on one machine do not pile onto the
// same CPU, and a process does not gather where something else is busy. Gathered, the
// process looks again every Calm and moves when another CPU was clearly quieter: the kernel
// cannot move a gathered thread away from a neighbour that arrived after it.
//
// What gathering costs: a gathered thread cannot move to an idle CPU when its own is busy.
// Traced at 200 requests/s, its threads' waits to run grew at the 99th percentile (463 against
// 306 µs), most of them behind the process's own other threads; the requests' 99th percentile
// moved within run-to-run noise (docs/BENCHMARKS.md). GOMAXPROCS is left as it is: gathered
// with one processor, a long task (a collection, a batch of usage records written) held up
// the requests behind it, and their 99th percentile rose by 300-440 µs in each of three runs.
package cpuplace

import (
	"errors"
	"time"
)

// ErrTooFew is Start's error for a process allowed fewer than two CPUs: there is nothing to
// gather.
var ErrTooFew = errors.New("fewer than two CPUs")

// Stats are a placer's figures, for metrics.
type Stats struct {
	Gathered bool  // the process is gathered on one CPU now
	Resting  bool  // gathered and idle, read every RestEvery
	CPU      int   // the CPU it is gathered on; -1 when spread
	Gathers  int64 // times it gathered
	Spreads  int64 // times it spread again
	Moves    int64 // times it moved, gathered, to a quieter CPU
}

// Policy says when the process gathers on one CPU and when it spreads.
type Policy struct {
	// Every is how often the process's CPU time is read.
	Every time.Duration
	// Spread is the CPU use over one reading (in CPUs: 0.5 is half of one) at or above which
	// a gathered process spreads.
	Spread float64
	// Gather is the mean CPU use over Calm below which a spread process gathers. The mean,
	// not every reading: a steady load's readings scatter around it (a reading holds a few
	// requests, or a collection), and one that crossed the line would otherwise keep the
	// process spread for good.
	Gather float64
	Calm   time.Duration
	// Rest is the mean CPU use over a Calm below which a gathered process is read only every
	// RestEvery, until a reading finds it using Rest or more. Every reading wakes the
	// placer's thread, and on an idle machine a thread's wake-up costs more than the reading
	// itself: at every 25 ms an idle gathered server used 11 ms of CPU a second, against
	// 0.65 ms spread. A burst from rest is seen within RestEvery rather than Every. Zero
	// RestEvery: the process is read every Every throughout.
	Rest      float64
	RestEvery time.Duration
}

// DefaultPolicy gathers when the process used less than a quarter of one CPU over two
// seconds, and spreads as soon as one reading, every 25 ms, finds it using half of one. At
// 200 requests/s a gateway uses 5-8 % of one CPU and a collection (a few milliseconds of
// marking) takes one reading to about 20 %; a burst spreads it within 25 ms, about as long as
// an admission queue's wait. Half of one CPU leaves a gathered process's requests little
// queueing behind each other; between a quarter and a half, a process stays where it is.
// Under 2 % of one CPU over two seconds (idle: the placer's own readings are about 1 %), it
// reads every 250 ms until a reading finds 2 % or more.
func DefaultPolicy() Policy {
	return Policy{Every: 25 * time.Millisecond, Spread: 0.5, Gather: 0.25, Calm: 2 * time.Second,
		Rest: 0.02, RestEvery: 250 * time.Millisecond}
}

// decide is the policy's state machine: given whether the process is gathered, its CPU use
// over the last reading, and its mean use over the span since the span began (counted by
// the caller), whether it should be gathered now.
func (p Policy) decide(gathered bool, use, mean float64, span time.Duration) bool {
	if gathered {
		return use < p.Spread
	}
	return span >= p.Calm && mean < p.Gather
}

// resting is the reading pace's state machine: given whether the placer reads at the resting
// pace now, the process's use over the last reading, and, when a Calm span has just ended
// (spanEnded), the mean use over it, whether it should read at the resting pace from now on.
// Only a gathered process rests (the caller sees to that); a reading at Rest or more ends
// the rest at once, and the pace is otherwise decided at the end of each span.
func (p Policy) resting(resting bool, use, mean float64, spanEnded bool) bool {
	switch {
	case p.RestEvery <= 0 || use >= p.Rest:
		return false
	case spanEnded:
		return mean < p.Rest
	}
	return resting
}
