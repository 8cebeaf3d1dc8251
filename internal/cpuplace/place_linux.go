package cpuplace

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Placer moves the process between one CPU and all of them as its policy says; Stop ends
// it and spreads the process again.
type Placer struct {
	p       Policy
	log     *slog.Logger
	all     unix.CPUSet // the CPUs the process was allowed when it started
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	cpu     atomic.Int32 // the CPU gathered on, -1 when spread; set by place, which only run calls
	gathers atomic.Int64
	spreads atomic.Int64
	moves   atomic.Int64
	resting atomic.Bool // read at the policy's resting pace; set only by run
}

// Start reads the process's CPU time every p.Every and gathers it on one CPU or spreads it
// over the CPUs it was started with, as p says. Changes are logged at debug level.
func Start(p Policy, log *slog.Logger) (*Placer, error) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		return nil, err
	}
	if all.Count() < 2 {
		return nil, ErrTooFew
	}
	pl := &Placer{p: p, log: log, all: all, stop: make(chan struct{}), done: make(chan struct{})}
	pl.cpu.Store(-1)
	go pl.run()
	return pl, nil
}

// Stop ends the placement, spreads the process over its CPUs again and returns once done.
func (pl *Placer) Stop() {
	pl.once.Do(func() { close(pl.stop) })
	<-pl.done
}

// Gathered reports whether the process is gathered on one CPU.
func (pl *Placer) Gathered() bool { return pl.cpu.Load() >= 0 }

// Stats returns the placer's figures.
func (pl *Placer) Stats() Stats {
	cpu := int(pl.cpu.Load())
	return Stats{Gathered: cpu >= 0, Resting: pl.resting.Load(), CPU: cpu, Gathers: pl.gathers.Load(), Spreads: pl.spreads.Load(), Moves: pl.moves.Load()}
}

func (pl *Placer) run() {
	defer close(pl.done)
	defer pl.place(&pl.all, -1)
	t := time.NewTicker(pl.p.Every)
	defer t.Stop()
	last, lastAt := cpuTime(), time.Now()
	// The span the mean use is taken over: restarted at each change of place, and after
	// each Calm.
	from, fromAt := last, lastAt
	busy := cpuBusy() // each CPU's busy time when the span began, for the choice of one
	for {
		select {
		case <-pl.stop:
			return
		case now := <-t.C:
			used := cpuTime()
			use := (used - last).Seconds() / now.Sub(lastAt).Seconds()
			span := now.Sub(fromAt)
			mean := (used - from).Seconds() / span.Seconds()
			last, lastAt = used, now
			gathered := pl.Gathered()
			want := pl.p.decide(gathered, use, mean, span)
			pl.pace(t, want && gathered && pl.p.resting(pl.resting.Load(), use, mean, span >= pl.p.Calm))
			if want == gathered && span < pl.p.Calm {
				continue
			}
			after := cpuBusy()
			switch {
			case want && !gathered:
				pl.gather(choose(&pl.all, busy, after, -1, 0, 0), use, mean)
			case !want && gathered:
				pl.place(&pl.all, -1)
				pl.log.Debug("cpu placement changed", "gathered", false, "cpu_use", use, "mean_cpu_use", mean)
			case want:
				// Gathered through a whole span: move where the rest of the machine left
				// the most room, if that is clearly elsewhere (by a twentieth of the span).
				// The process's own time is taken off its CPU's.
				cur := int(pl.cpu.Load())
				own := uint64((used - from).Seconds() * clockTicks)
				margin := uint64(span.Seconds() * clockTicks / 20)
				if to := choose(&pl.all, busy, after, cur, own, margin); to != cur {
					pl.gather(to, use, mean)
				}
			}
			from, fromAt, busy = used, now, after
		}
	}
}

// pace sets how often t reads: every RestEvery while rest, else every Every.
func (pl *Placer) pace(t *time.Ticker, rest bool) {
	if rest == pl.resting.Load() {
		return
	}
	pl.resting.Store(rest)
	if rest {
		t.Reset(pl.p.RestEvery)
	} else {
		t.Reset(pl.p.Every)
	}
	pl.log.Debug("cpu placement reading pace changed", "resting", rest)
}

// gather places the process on cpu.
func (pl *Placer) gather(cpu int, use, mean float64) {
	var set unix.CPUSet
	set.Set(cpu)
	pl.place(&set, cpu)
	pl.log.Debug("cpu placement changed", "gathered", true, "cpu", cpu, "cpu_use", use, "mean_cpu_use", mean)
}

// clockTicks is /proc/stat's unit: the kernel's USER_HZ, 100 on every Linux.
const clockTicks = 100

// place sets every thread of the process to set: one CPU, cpu (gather), or all of them (cpu
// -1). A thread the runtime starts later inherits its creator's set; one that exits
// meanwhile is passed over.
func (pl *Placer) place(set *unix.CPUSet, cpu int) {
	// Twice, for a thread started from one not yet moved while the first pass ran.
	for range 2 {
		for _, tid := range threads() {
			if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, syscall.ESRCH) {
				pl.log.Debug("cpu placement of a thread failed", "tid", tid, "err", err)
			}
		}
	}
	gather, was := cpu >= 0, pl.cpu.Swap(int32(cpu)) >= 0
	switch {
	case gather && !was:
		pl.gathers.Add(1)
	case !gather && was:
		pl.spreads.Add(1)
	case gather:
		pl.moves.Add(1)
	}
}

// choose is the CPU of all that the rest of the machine kept the least busy between two
// readings of cpuBusy (the lowest of those tied): where the process disturbs, and is
// disturbed by, the least else. cur is the CPU the process is gathered on (-1: none), whose
// reading includes own ticks of the process's own; cur is kept unless another was busy less
// by more than margin ticks. A CPU missing from a reading counts as busy throughout, and with
// no readings at all the lowest CPU is taken.
func choose(all *unix.CPUSet, before, after map[int]uint64, cur int, own, margin uint64) int {
	busy := func(cpu int) uint64 {
		b, okB := before[cpu]
		a, okA := after[cpu]
		if !okB || !okA || a < b {
			return ^uint64(0)
		}
		if cpu == cur {
			return (a - b) - min(own, a-b)
		}
		return a - b
	}
	best, least := -1, uint64(0)
	for cpu, left := 0, all.Count(); left > 0; cpu++ {
		if !all.IsSet(cpu) {
			continue
		}
		left--
		u := busy(cpu)
		if best < 0 || u < least {
			best, least = cpu, u
		}
	}
	if cur >= 0 && best != cur && all.IsSet(cur) {
		if u := busy(cur); u == ^uint64(0) || least+margin >= u {
			return cur
		}
	}
	return best
}

// cpuBusy reads each CPU's busy time from /proc/stat, in clock ticks: everything but idle
// and waiting for I/O. It is nil when the file cannot be read.
func cpuBusy() map[int]uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	return parseStat(b)
}

// parseStat reads the per-CPU lines ("cpuN user nice system idle iowait irq softirq steal
// guest guest_nice") of /proc/stat's text.
func parseStat(b []byte) map[int]uint64 {
	busy := map[int]uint64{}
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("cpu"))
		if !ok || len(rest) == 0 || rest[0] < '0' || rest[0] > '9' {
			continue
		}
		f := strings.Fields(string(rest))
		cpu, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 5 {
			continue
		}
		var sum uint64
		// Guest time (the fields after steal) is counted in user time already.
		for i, v := range f[1:min(len(f), 9)] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				break
			}
			if i != 3 && i != 4 { // idle, iowait
				sum += n
			}
		}
		busy[cpu] = sum
	}
	return busy
}

// threads lists the process's threads.
func threads() []int {
	f, err := os.Open("/proc/self/task")
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	ids := make([]int, 0, len(names))
	for _, n := range names {
		if id, err := strconv.Atoi(n); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
