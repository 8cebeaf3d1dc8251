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
	pl, err := Start(Policy{Every: 20 * time.Millisecond, Spread: 0.5, Gather: 0.3, Calm: 100 * time.Millisecond}, log)
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

	waitUntil(t, "gathered again once idle", func() bool { return pl.Gathered() && onOne() })
	pl.Stop()
	if pl.Gathered() || !spread() {
		t.Fatalf("after Stop: gathered %v, threads' CPU lists %v, want all %q", pl.Gathered(), allowed(t), wholeList)
	}
}
