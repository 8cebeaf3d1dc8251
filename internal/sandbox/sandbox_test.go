package sandbox

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// need returns a working sandbox, skipping the test when bubblewrap cannot run here (and
// failing it under CI=true, where the test script installs bubblewrap, unless the host is not
// Unix, where no sandbox can run at all).
func need(t *testing.T, o Options) *Sandbox {
	t.Helper()
	s := New(context.Background(), o)
	if err := s.Available(); err != nil {
		if os.Getenv("CI") == "true" && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("the sandbox must run under CI=true: %v", err)
		}
		t.Skipf("sandbox unavailable: %v", err)
	}
	return s
}

func TestRunsAndIsolates(t *testing.T) {
	s := need(t, Options{Limits: Limits{Timeout: 5 * time.Second}})
	ctx := context.Background()
	res, err := s.Run(ctx, Spec{
		Files:   map[string][]byte{"in.txt": []byte("hello\n"), "sub/x.sh": []byte("cat in.txt\n")},
		Command: []string{"/bin/sh", "sub/x.sh"},
	})
	if err != nil || !res.Passed() || string(res.Stdout) != "hello\n" {
		t.Fatalf("run: %v %+v", err, res)
	}
	script := strings.Join([]string{
		"echo x > /etc/autoglm-sandbox-test 2>/dev/null && echo WROTE_ROOT",
		"echo x > /tmp/t && echo TMP_OK",
		"echo x > w && echo WORK_OK",
		// No network: only a loopback without routes (a connect fails at once).
		"(exec 3<>/dev/tcp/1.1.1.1/80) 2>/dev/null && echo NET",
		"echo PROCS=$(ls /proc | grep -c '^[0-9]')",
		"env | sort | tr '\\n' ' '",
	}, "\n")
	res, err = s.Run(ctx, Spec{Command: []string{"/bin/bash", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Stdout)
	lines := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		lines[l] = true
	}
	if !lines["PROCS=3"] && !lines["PROCS=4"] && !lines["PROCS=5"] {
		t.Errorf("the sandbox sees the host's processes: %q", out)
	}
	for _, bad := range []string{"WROTE_ROOT", "NET"} {
		if lines[bad] {
			t.Errorf("sandbox allowed %s: %q", bad, out)
		}
	}
	for _, good := range []string{"TMP_OK", "WORK_OK"} {
		if !strings.Contains(out, good) {
			t.Errorf("sandbox refused %s: %q %q", good, out, res.Stderr)
		}
	}
	if strings.Contains(out, "AUTOGLM") || strings.Contains(out, "GOFLAGS") {
		t.Errorf("host environment leaked: %q", out)
	}
	if _, err := os.Stat("/etc/autoglm-sandbox-test"); err == nil {
		t.Error("the sandbox wrote to the host's /etc")
	}
}

func TestLimits(t *testing.T) {
	s := need(t, Options{})
	ctx := context.Background()
	t.Run("time", func(t *testing.T) {
		start := time.Now()
		res, err := s.Run(ctx, Spec{Command: []string{"/bin/sh", "-c", "while :; do :; done"}, Limits: Limits{Timeout: time.Second}})
		if err != nil || !res.TimedOut || res.Passed() {
			t.Fatalf("%v %+v", err, res)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("killed after %v", d)
		}
	})
	t.Run("output", func(t *testing.T) {
		res, err := s.Run(ctx, Spec{Command: []string{"/bin/sh", "-c", "yes"}, Limits: Limits{OutputBytes: 4096}})
		if err != nil || !res.OutputExceeded || res.Passed() || len(res.Stdout) > 4096 {
			t.Fatalf("%v exceeded=%v len=%d", err, res.OutputExceeded, len(res.Stdout))
		}
	})
	t.Run("processes", func(t *testing.T) {
		res, err := s.Run(ctx, Spec{Command: []string{"/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & done; wait"},
			Limits: Limits{Processes: 4, Timeout: 5 * time.Second}})
		if err != nil || res.Passed() {
			t.Fatalf("a fork bomb's start was not stopped: %v %+v", err, res)
		}
	})
	t.Run("memory", func(t *testing.T) {
		res, err := s.Run(ctx, Spec{Command: []string{"/usr/bin/python3", "-c", "b = bytearray(512 << 20)"},
			Limits: Limits{MemoryBytes: 256 << 20}})
		if err != nil || res.Passed() {
			t.Fatalf("512 MiB allocated under a 256 MiB limit: %v %+v", err, res)
		}
	})
	t.Run("file size", func(t *testing.T) {
		res, err := s.Run(ctx, Spec{Command: []string{"/bin/sh", "-c", "head -c 2000000 /dev/zero > big"}, Limits: Limits{FileBytes: 1 << 20}})
		if err != nil || res.Passed() {
			t.Fatalf("wrote 2 MB under a 1 MiB limit: %v %+v", err, res)
		}
	})
}

func TestRefusesWhenUnavailable(t *testing.T) {
	s := New(context.Background(), Options{Bwrap: "/nonexistent/bwrap"})
	if s.Available() == nil {
		t.Fatal("available without bubblewrap")
	}
	marker := t.TempDir() + "/ran"
	_, err := s.Run(context.Background(), Spec{Command: []string{"/bin/sh", "-c", "touch " + marker}})
	if err == nil {
		t.Fatal("Run without bubblewrap did not fail")
	}
	if _, serr := os.Stat(marker); serr == nil {
		t.Fatal("the program ran outside the sandbox")
	}
}

func TestRejectsEscapingFileNames(t *testing.T) {
	s := need(t, Options{})
	for _, name := range []string{"../x", "/etc/x", "a/../../x"} {
		if _, err := s.Run(context.Background(), Spec{Files: map[string][]byte{name: nil}, Command: []string{"/bin/true"}}); err == nil {
			t.Errorf("file %q accepted", name)
		}
	}
}
