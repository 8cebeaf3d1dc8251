package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// TestPrepareDataDir: a new data directory is 0750; an existing one that others may enter or
// the group may write to is tightened; a tight one is left as it is.
func TestPrepareDataDir(t *testing.T) {
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	root := t.TempDir()
	for _, tc := range []struct {
		name     string
		existing os.FileMode // 0: does not exist yet
		want     os.FileMode
	}{
		{"new", 0, 0o750},
		{"world-open", 0o777, 0o750},
		{"world-readable", 0o755, 0o750},
		{"group-writable", 0o770, 0o750},
		{"owner-only", 0o700, 0o700},
		{"tight", 0o750, 0o750},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, tc.name)
			if tc.existing != 0 {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			if err := prepareDataDir(dir, log); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			// MkdirAll's mode passes through the umask, which may only remove bits.
			if got := fi.Mode().Perm(); got&^tc.want != 0 || (tc.existing != 0 && got != tc.want) {
				t.Errorf("mode %v, want %v", got, tc.want)
			}
		})
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := prepareDataDir(file, log); err == nil || !strings.Contains(err.Error(), "data dir") {
		t.Errorf("a file as data dir: %v", err)
	}
}

// TestProfileContention: the configuration turns the mutex profile on (and leaves it off by
// default); what /debug/pprof/mutex serves then has samples to show.
func TestProfileContention(t *testing.T) {
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	prev := runtime.SetMutexProfileFraction(-1)
	t.Cleanup(func() {
		runtime.SetMutexProfileFraction(prev)
		runtime.SetBlockProfileRate(0)
	})
	runtime.SetMutexProfileFraction(0)
	profileContention(config.Server{}, log)
	if got := runtime.SetMutexProfileFraction(-1); got != 0 {
		t.Errorf("off by default: fraction %d", got)
	}
	profileContention(config.Server{ProfileMutexFraction: 7, ProfileBlockRate: config.Duration(time.Microsecond)}, log)
	if got := runtime.SetMutexProfileFraction(-1); got != 7 {
		t.Errorf("fraction %d, want 7", got)
	}
	// With the block profile on, a goroutine blocked on a channel shows up in it.
	ch := make(chan struct{})
	go func() { time.Sleep(20 * time.Millisecond); close(ch) }()
	<-ch
	var buf bytes.Buffer
	if err := pprof.Lookup("block").WriteTo(&buf, 1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "TestProfileContention") {
		t.Errorf("the block profile does not show the blocked test:\n%.500s", buf.String())
	}
}
