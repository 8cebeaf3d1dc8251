package gctune_test

import (
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/gctune"
)

func TestPercent(t *testing.T) {
	p := gctune.Policy{Low: 100, High: 400, Every: time.Second}
	const mib = 1 << 20
	for _, c := range []struct {
		name string
		base uint64
		rate float64
		want int
	}{
		{"idle", 4 * mib, 0, 100},
		{"a low rate", 4 * mib, 1 * mib, 100},
		{"a second's growth is the heap", 4 * mib, 4 * mib, 100},
		{"a second's growth is twice the heap", 4 * mib, 8 * mib, 200},
		{"rounded to steps of 25", 4 * mib, 9 * mib, 225},
		{"a high rate", 4 * mib, 100 * mib, 400},
		{"a large heap at the same rate", 400 * mib, 100 * mib, 100},
		{"no heap, no allocation", 0, 0, 100},
		{"no heap, allocating", 0, 1, 400},
	} {
		if got := p.Percent(c.base, c.rate); got != c.want {
			t.Errorf("%s: Percent(%d, %.0f) = %d, want %d", c.name, c.base, c.rate, got, c.want)
		}
	}
	half := gctune.Policy{Low: 50, High: 800, Every: 500 * time.Millisecond}
	if got := half.Percent(4*mib, 100*mib); got != 800 {
		t.Errorf("Percent with High 800 = %d, want 800", got)
	}
	if got := half.Percent(4*mib, 8*mib); got != 100 {
		t.Errorf("Percent over half a second = %d, want 100", got)
	}
}

// gogc reads the collector's GOGC as the runtime has it.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitFor collects until the runtime's GOGC is want, or fails t after a few seconds. Each
// round runs alloc first, then a collection, whose cleanup retunes.
func waitFor(t *testing.T, tu *gctune.Tuner, want int, alloc func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for gogc() != want {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d (the tuner's last: %d), want %d", gogc(), tu.Percent(), want)
		}
		alloc()
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the cleanup runs on a goroutine of its own
	}
}

var sink []byte

// TestTunerFollowsAllocationRate runs the tuner in this process: a burst of allocation raises
// GOGC to High, a quiet spell brings it back to Low, and Stop restores what was there before.
func TestTunerFollowsAllocationRate(t *testing.T) {
	before := debug.SetGCPercent(150)
	defer debug.SetGCPercent(before)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tu := gctune.Start(gctune.Policy{Low: 100, High: 400, Every: time.Second}, log)
	defer tu.Stop()
	if got := gogc(); got != 100 {
		t.Fatalf("GOGC after Start = %d, want Low (100)", got)
	}
	// About 1 GB a second for 100 ms, against a live heap of a few MB.
	burst := func() {
		for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
			sink = make([]byte, 64<<10)
		}
	}
	waitFor(t, tu, 400, burst)
	if got := tu.Percent(); got != 400 {
		t.Errorf("Percent() = %d after the burst, want 400", got)
	}
	quiet := func() { time.Sleep(300 * time.Millisecond) }
	waitFor(t, tu, 100, quiet)
	tu.Stop()
	if got := gogc(); got != 150 {
		t.Errorf("GOGC after Stop = %d, want the 150 set before Start", got)
	}
	// Stopped, the tuner leaves GOGC alone through later collections.
	burst()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if got := gogc(); got != 150 {
		t.Errorf("GOGC after collections past Stop = %d, want 150", got)
	}
}
