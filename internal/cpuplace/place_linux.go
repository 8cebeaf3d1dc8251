package cpuplace

import (
	"errors"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Placer moves the process between one CPU and all of them as its policy says; Stop ends
// it and spreads the process again.
type Placer struct {
	p        Policy
	log      *slog.Logger
	all      unix.CPUSet // the CPUs the process was allowed when it started
	one      unix.CPUSet // the one it gathers on: the lowest of all
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	gathered atomic.Bool // set by place, which only run calls
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
	for cpu := 0; ; cpu++ {
		if all.IsSet(cpu) {
			pl.one.Set(cpu)
			break
		}
	}
	go pl.run()
	return pl, nil
}

// Stop ends the placement, spreads the process over its CPUs again and returns once done.
func (pl *Placer) Stop() {
	pl.once.Do(func() { close(pl.stop) })
	<-pl.done
}

// Gathered reports whether the process is gathered on one CPU.
func (pl *Placer) Gathered() bool { return pl.gathered.Load() }

func (pl *Placer) run() {
	defer close(pl.done)
	defer pl.place(false)
	t := time.NewTicker(pl.p.Every)
	defer t.Stop()
	last, lastAt := cpuTime(), time.Now()
	var calm time.Duration // how long the readings up to now have stayed below Gather
	for {
		select {
		case <-pl.stop:
			return
		case now := <-t.C:
			used := cpuTime()
			use := (used - last).Seconds() / now.Sub(lastAt).Seconds()
			if use < pl.p.Gather {
				calm += now.Sub(lastAt)
			} else {
				calm = 0
			}
			last, lastAt = used, now
			gathered := pl.gathered.Load()
			if want := pl.p.decide(gathered, use, calm); want != gathered {
				pl.place(want)
				pl.log.Debug("cpu placement changed", "gathered", want, "cpu_use", use)
			}
		}
	}
}

// place sets every thread of the process to one CPU or to all of them. A thread the runtime
// starts later inherits its creator's set; one that exits meanwhile is passed over.
func (pl *Placer) place(gather bool) {
	set := &pl.all
	if gather {
		set = &pl.one
	}
	// Twice, for a thread started from one not yet moved while the first pass ran.
	for range 2 {
		for _, tid := range threads() {
			if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, syscall.ESRCH) {
				pl.log.Debug("cpu placement of a thread failed", "tid", tid, "err", err)
			}
		}
	}
	pl.gathered.Store(gather)
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
