// Package gctune sets the garbage collector's GOGC from the allocation rate, at every
// collection.
//
// A gateway's live heap is small and its garbage is made per request, so one fixed GOGC is a
// poor fit for both ends of its load. A low GOGC keeps the heap small: the memory each new
// request allocates into was freed a short while before and is more likely still in the
// processor's caches, which at a low request rate, when every request runs cold, is worth about
// 10 µs of added latency at the median (docs/BENCHMARKS.md, "The collector's target follows
// the allocation rate"). A high GOGC makes collections rarer: under a high request rate each
// collection lands in some request's tail, and GOGC=400 measured a lower p99 there than 100.
//
// The tuner picks GOGC so that collections come about once per Policy.Every at the current
// allocation rate, between Policy.Low and Policy.High. It has no goroutine or timer of its
// own: a cleanup attached to a throwaway object runs after each collection, reads the
// runtime's metrics and sets the next GOGC. An idle process, which does not collect, costs it
// nothing.
package gctune

import (
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Policy bounds GOGC and says how often collections may come.
type Policy struct {
	// Low is GOGC at a low allocation rate: the least the tuner sets.
	Low int
	// High is the most the tuner raises GOGC to.
	High int
	// Every is the shortest time between collections the tuner aims for: GOGC is raised,
	// up to High, as far as it takes for the heap's growth to last that long.
	Every time.Duration
}

// Percent is the GOGC under p for a heap whose collections find base bytes to scan (the live
// heap, stacks and globals) and that allocates rate bytes a second: the growth that rate
// reaches in p.Every, as a percentage of base, within [p.Low, p.High].
func (p Policy) Percent(base uint64, rate float64) int {
	if base == 0 {
		if rate > 0 {
			return p.High
		}
		return p.Low
	}
	g := 100 * rate * p.Every.Seconds() / float64(base)
	switch {
	case math.IsNaN(g) || g <= float64(p.Low):
		return p.Low
	case g >= float64(p.High):
		return p.High
	}
	// Steps of 25 keep the collector's setting from moving at every collection when the
	// rate wavers.
	step := int(math.Round(g/25)) * 25
	return min(max(step, p.Low), p.High)
}

// Tuner is a running tuner; Stop ends it.
type Tuner struct {
	p   Policy
	log *slog.Logger

	mu        sync.Mutex
	stopped   bool
	prior     int // GOGC before Start, restored by Stop
	percent   int // the GOGC last set
	lastAlloc uint64
	lastAt    time.Time
	samples   []metrics.Sample
}

// The runtime metrics a cycle reads.
const (
	metricAllocs  = "/gc/heap/allocs:bytes"
	metricLive    = "/gc/heap/live:bytes"
	metricStacks  = "/gc/scan/stack:bytes"
	metricGlobals = "/gc/scan/globals:bytes"
)

// Start sets GOGC to p.Low and retunes it after every collection but the first until Stop.
// Changes are logged at debug level on log.
func Start(p Policy, log *slog.Logger) *Tuner {
	t := &Tuner{p: p, log: log, percent: p.Low, samples: []metrics.Sample{
		{Name: metricAllocs}, {Name: metricLive}, {Name: metricStacks}, {Name: metricGlobals},
	}}
	t.prior = debug.SetGCPercent(p.Low)
	t.arm()
	return t
}

// Stop ends the tuning and sets GOGC back to what it was before Start.
func (t *Tuner) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	debug.SetGCPercent(t.prior)
}

// Percent is the GOGC the tuner set last.
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}

// sentinel is the object whose collection marks the end of a cycle. It holds a pointer so
// that it is never placed in the allocator's tiny blocks, where a cleanup may not run.
type sentinel struct{ _ *sentinel }

// arm attaches the next cycle to a fresh object that only the runtime knows of: the next
// collection finds it unreachable and runs the cleanup.
func (t *Tuner) arm() {
	runtime.AddCleanup(&sentinel{}, (*Tuner).cycle, t)
}

// cycle runs after a collection: it measures the allocation rate since the previous one and
// sets GOGC for it.
func (t *Tuner) cycle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	defer t.arm()
	metrics.Read(t.samples)
	now := time.Now()
	allocs := t.samples[0].Value.Uint64()
	last, lastAt := t.lastAlloc, t.lastAt
	t.lastAlloc, t.lastAt = allocs, now
	// The first collection only starts the count: what came before it is the program's
	// start-up (reading the configuration, opening stores), a burst that says nothing about
	// the rate to come.
	elapsed := now.Sub(lastAt).Seconds()
	if lastAt.IsZero() || elapsed <= 0 {
		return
	}
	rate := float64(allocs-last) / elapsed
	var base uint64
	for _, s := range t.samples[1:] {
		if s.Value.Kind() == metrics.KindUint64 {
			base += s.Value.Uint64()
		}
	}
	next := t.p.Percent(base, rate)
	if next == t.percent {
		return
	}
	t.log.Debug("garbage collector target changed", "gogc", next, "was", t.percent,
		"alloc_bytes_per_second", int64(rate), "scan_bytes", base)
	debug.SetGCPercent(next)
	t.percent = next
}
