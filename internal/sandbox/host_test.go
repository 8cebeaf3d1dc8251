package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestErrUnsupported: the refusal off Unix says why, and callers recognize it both as
// errors.ErrUnsupported and as the unavailable sandbox they already handle.
func TestErrUnsupported(t *testing.T) {
	if !errors.Is(ErrUnsupported, errors.ErrUnsupported) || !errors.Is(ErrUnsupported, ErrUnavailable) {
		t.Fatalf("%v matches neither errors.ErrUnsupported nor ErrUnavailable", ErrUnsupported)
	}
	if errors.Is(ErrUnavailable, ErrUnsupported) {
		t.Fatal("a missing bubblewrap reads as an unsupported host")
	}
	if !strings.Contains(ErrUnsupported.Error(), "needs a Unix host") {
		t.Fatalf("unclear message: %q", ErrUnsupported)
	}
}

// TestRefusesOffUnix: on a host that is not Unix, New runs nothing (no probe, no bind
// directory) and Run refuses every program with ErrUnsupported instead of running it without
// isolation; the external checkers step aside. It runs only on such builds.
func TestRefusesOffUnix(t *testing.T) {
	if runtime.GOOS != "windows" && hostError() == nil {
		t.Skip("a Unix host: the other tests cover the sandbox and its refusal without bubblewrap")
	}
	dir := t.TempDir()
	bind := filepath.Join(dir, "cache")
	s := New(context.Background(), Options{Binds: []string{bind}})
	if err := s.Available(); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Available() = %v, want ErrUnsupported", err)
	}
	if _, err := os.Stat(bind); err == nil {
		t.Error("New created a bind directory on a host it refuses")
	}
	marker := filepath.Join(dir, "ran")
	cmd := []string{"/bin/sh", "-c", "echo x > " + marker}
	if runtime.GOOS == "windows" {
		cmd = []string{"cmd", "/c", "echo x > " + marker}
	}
	_, err := s.Run(context.Background(), Spec{Command: cmd})
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Run: %v, want ErrUnsupported", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the program ran without isolation")
	}
	if err := isolate(exec.Command(cmd[0], cmd[1:]...), nil); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("isolate: %v, want ErrUnsupported", err)
	}
	if _, _, _, ok := NewExternal(s).Check(context.Background(), "python", "x = 1\n"); ok {
		t.Fatal("an external checker ran")
	}
}
