package cpuplace

import (
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// allowed reads each thread's CPU list as the kernel reports it.
func allowed(t *testing.T) map[string]int {
	t.Helper()
	lists := map[string]int{}
	for _, tid := range threads() {
		b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/status")
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				lists[strings.TrimSpace(v)]++
			}
		}
	}
	return lists
}

// waitUntil polls cond for a few seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s (threads' CPU lists: %v)", what, allowed(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGatherAndSpread runs a placer on this test process: idle, every thread ends up allowed
// one CPU; burning two CPUs' worth, every thread is allowed all of them again; Stop leaves
// them all allowed.
func TestGatherAndSpread(t *testing.T) {
	var start unix.CPUSet
	if err := unix.SchedGetaffinity(0, &start); err != nil {
		t.Fatal(err)
	}
	if start.Count() < 2 {
		t.Skip("the test process is allowed one CPU")
	}
	whole := allowed(t)
	if len(whole) != 1 {
		t.Fatalf("threads start with different CPU lists: %v", whole)
	}
	var wholeList string
	for l := range whole {
		wholeList = l
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Rest is high enough that the test's own polling of the threads' CPU lists stays under
	// it.
	pl, err := Start(Policy{Every: 20 * time.Millisecond, Spread: 0.5, Gather: 0.3, Calm: 100 * time.Millisecond,
		Rest: 0.2, RestEvery: 60 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Stop()
	onOne := func() bool {
		lists := allowed(t)
		if len(lists) != 1 {
			return false
		}
		for l := range lists {
			return !strings.ContainsAny(l, ",-") && l != wholeList
		}
		return false
	}
	waitUntil(t, "gathered on one CPU while idle", func() bool { return pl.Gathered() && onOne() })
	if s := pl.Stats(); !s.Gathered || s.CPU < 0 || !start.IsSet(s.CPU) || s.Gathers != 1 || s.Spreads != 0 {
		t.Errorf("gathered: stats %+v", s)
	}
	waitUntil(t, "resting while gathered and idle", func() bool { return pl.Stats().Resting })

	var stop atomic.Bool
	for range 2 {
		go func() {
			for !stop.Load() {
				runtime.Gosched()
			}
		}()
	}
	spread := func() bool {
		lists := allowed(t)
		return len(lists) == 1 && lists[wholeList] > 0
	}
	waitUntil(t, "spread again under load", func() bool { return !pl.Gathered() && spread() })
	stop.Store(true)
	if s := pl.Stats(); s.Gathered || s.Resting || s.CPU != -1 || s.Gathers != 1 || s.Spreads != 1 {
		t.Errorf("spread: stats %+v", s)
	}

	waitUntil(t, "gathered again once idle", func() bool { return pl.Gathered() && onOne() })
	pl.Stop()
	if pl.Gathered() || !spread() {
		t.Fatalf("after Stop: gathered %v, threads' CPU lists %v, want all %q", pl.Gathered(), allowed(t), wholeList)
	}
}

func TestParseStat(t *testing.T) {
	stat := "cpu  400 0 100 900 10 0 5 0 0 0\n" +
		"cpu0 300 1 50 400 5 0 4 2 7 0\n" +
		"cpu1 100 0 50 500 5 0 1 0 0 0\n" +
		"cpu10 1 2 3 4 5 6 7 8 9 10\n" +
		"cpux 1 2 3\n" +
		"intr 12345 0 0\n" +
		"ctxt 999\n"
	got := parseStat([]byte(stat))
	// Busy is user+nice+system+irq+softirq+steal; idle, iowait and the guest fields are left out.
	want := map[int]uint64{0: 300 + 1 + 50 + 4 + 2, 1: 100 + 50 + 1, 10: 1 + 2 + 3 + 6 + 7 + 8}
	if len(got) != len(want) {
		t.Fatalf("parseStat = %v, want %v", got, want)
	}
	for cpu, w := range want {
		if got[cpu] != w {
			t.Errorf("cpu%d busy %d, want %d", cpu, got[cpu], w)
		}
	}
}

func TestChoose(t *testing.T) {
	var all unix.CPUSet
	for _, c := range []int{1, 2, 3} {
		all.Set(c)
	}
	for _, c := range []struct {
		name          string
		before, after map[int]uint64
		cur           int
		own, margin   uint64
		want          int
	}{
		{"the least busy", map[int]uint64{0: 0, 1: 10, 2: 10, 3: 10}, map[int]uint64{0: 0, 1: 90, 2: 30, 3: 50}, -1, 0, 0, 2},
		{"a CPU outside the set is never taken", map[int]uint64{0: 0, 1: 0, 2: 0, 3: 0}, map[int]uint64{0: 0, 1: 9, 2: 8, 3: 7}, -1, 0, 0, 3},
		{"ties go to the lowest", map[int]uint64{1: 5, 2: 5, 3: 5}, map[int]uint64{1: 6, 2: 6, 3: 6}, -1, 0, 0, 1},
		{"a CPU missing from a reading counts as busy", map[int]uint64{1: 0, 3: 0}, map[int]uint64{1: 50, 2: 0, 3: 60}, -1, 0, 0, 1},
		{"no readings: the lowest", nil, nil, -1, 0, 0, 1},
		{"gathered: the process's own time is not held against its CPU", map[int]uint64{1: 0, 2: 0, 3: 0}, map[int]uint64{1: 80, 2: 40, 3: 50}, 1, 50, 5, 1},
		{"gathered: moves when another was clearly quieter", map[int]uint64{1: 0, 2: 0, 3: 0}, map[int]uint64{1: 80, 2: 10, 3: 50}, 1, 50, 5, 2},
		{"gathered: stays within the margin", map[int]uint64{1: 0, 2: 0, 3: 0}, map[int]uint64{1: 80, 2: 26, 3: 50}, 1, 50, 5, 1},
		{"gathered: stays when a reading lacks its CPU", map[int]uint64{2: 0, 3: 0}, map[int]uint64{2: 0, 3: 0}, 1, 0, 5, 1},
	} {
		if got := choose(&all, c.before, c.after, c.cur, c.own, c.margin); got != c.want {
			t.Errorf("%s: choose = %d, want %d", c.name, got, c.want)
		}
	}
}
