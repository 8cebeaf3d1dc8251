// Package sandbox runs untrusted programs — external parse-only checkers and user-supplied
// tests of generated code — inside bubblewrap: no network, a read-only view of the root file
// system, a private writable work directory and /tmp, and resource limits (address space, CPU
// time, processes, file size, wall-clock time, output).
//
// The sandbox is an operator's opt-in (code_check.sandbox.enabled); it is never turned on by a
// request. New probes bubblewrap once; when it cannot run, every Run returns ErrUnavailable
// instead of running anything outside the sandbox. docs/CODECHECK.md says what the sandbox
// protects against and what it does not.
//
// The isolation needs a Unix host: bubblewrap and prlimit, a process group that the wall
// clock kills as a whole, and, as root, a switch to an unprivileged user (sandbox_unix.go).
// Elsewhere (Windows) none of these exists and a child process would run with the server's
// rights, its network and no limits that hold for its children. There is no "unsandboxed"
// mode to fall back on, and running generated code that way while calling it sandboxed would
// be a lie, so New refuses there: Available and every Run return ErrUnsupported, which
// callers already handle as an unavailable sandbox (sandboxed checks off, eval --sandbox
// fails) because it also matches ErrUnavailable.
package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrUnavailable is returned by Run when bubblewrap cannot run here.
var ErrUnavailable = errors.New("sandbox: bubblewrap is not available")

// ErrUnsupported is returned by Available and Run on a host that is not Unix (Windows), where
// nothing can be isolated and New therefore runs nothing, not even the probe. It matches
// errors.ErrUnsupported and, since the sandbox cannot run there either, ErrUnavailable.
var ErrUnsupported error = unsupportedError{}

type unsupportedError struct{}

func (unsupportedError) Error() string {
	return "sandbox: sandboxed execution needs a Unix host (bubblewrap, rlimits, process groups); refusing to run code without isolation"
}

func (unsupportedError) Unwrap() []error { return []error{errors.ErrUnsupported, ErrUnavailable} }

// killedExit is the exit code reported for a run killed at a limit, as a shell reports a
// process killed by SIGKILL.
const killedExit = 128 + 9

// account is a user and group that sandboxed programs run as.
type account struct{ uid, gid uint32 }

// Limits bound one run.
type Limits struct {
	// Timeout bounds the run's wall-clock time and its CPU time. Default 10s.
	Timeout time.Duration
	// MemoryBytes caps the address space of each process. Default 1 GiB.
	MemoryBytes int64
	// Processes caps the processes of the sandbox's user. Default 256.
	Processes int
	// OutputBytes caps stdout and stderr together; more fails the run. Default 1 MiB.
	OutputBytes int
	// FileBytes caps the size of any file a process writes. Default 64 MiB.
	FileBytes int64
}

func (l Limits) withDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = 10 * time.Second
	}
	if l.MemoryBytes <= 0 {
		l.MemoryBytes = 1 << 30
	}
	if l.Processes <= 0 {
		l.Processes = 256
	}
	if l.OutputBytes <= 0 {
		l.OutputBytes = 1 << 20
	}
	if l.FileBytes <= 0 {
		l.FileBytes = 64 << 20
	}
	return l
}

// Options configure a Sandbox.
type Options struct {
	// Bwrap is the bubblewrap executable. Default "bwrap".
	Bwrap string
	// Limits are the default limits of every run.
	Limits Limits
	// Binds are host directories made writable inside the sandbox at the same path (a
	// build cache shared by runs), created when missing. Programs of one run can change what
	// later runs find there. Default none.
	Binds []string
}

// Sandbox runs programs under bubblewrap. It is safe for concurrent use.
type Sandbox struct {
	bwrap   string
	prlimit string
	limits  Limits
	binds   []string
	asUser  *account // nil: the server's own user
	err     error    // why the sandbox is unavailable, or nil
}

// New probes bubblewrap by running a trivial program in a sandbox. The returned Sandbox is
// never nil: when the probe failed, Available reports why and Run refuses.
func New(ctx context.Context, o Options) *Sandbox {
	s := &Sandbox{bwrap: o.Bwrap, limits: o.Limits.withDefaults(), binds: o.Binds}
	if s.err = hostError(); s.err != nil {
		return s
	}
	if s.bwrap == "" {
		s.bwrap = "bwrap"
	}
	path, err := exec.LookPath(s.bwrap)
	if err != nil {
		s.err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		return s
	}
	s.bwrap = path
	if s.prlimit, err = exec.LookPath("prlimit"); err != nil {
		s.err = fmt.Errorf("%w: prlimit (util-linux) is needed for the resource limits: %v", ErrUnavailable, err)
		return s
	}
	s.asUser = sandboxUser()
	for _, b := range s.binds {
		if err := os.MkdirAll(b, 0o755); err != nil {
			s.err = fmt.Errorf("%w: %v", ErrUnavailable, err)
			return s
		}
		if s.asUser != nil {
			_ = os.Chown(b, int(s.asUser.uid), int(s.asUser.gid))
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := s.run(pctx, Spec{Command: []string{"/bin/sh", "-c", "echo ok"}}, false)
	if err != nil || res.ExitCode != 0 || strings.TrimSpace(string(res.Stdout)) != "ok" {
		s.err = fmt.Errorf("%w: probe failed: %v %s", ErrUnavailable, err, bytes.TrimSpace(res.Stderr))
	}
	return s
}

// Available returns nil when the sandbox can run programs, or why it cannot (wrapping
// ErrUnavailable).
func (s *Sandbox) Available() error { return s.err }

// Spec is one program to run.
type Spec struct {
	// Files are written into the work directory (relative paths) before the run.
	Files map[string][]byte
	// Command is the program and its arguments; it runs in the work directory.
	Command []string
	// Stdin is the program's standard input.
	Stdin []byte
	// Env adds variables to the minimal environment (PATH, HOME=work dir, TMPDIR=/tmp).
	Env []string
	// Limits override the sandbox's defaults where set.
	Limits Limits
}

// Result is the outcome of a run.
type Result struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	// TimedOut: the run was killed at its time limit.
	TimedOut bool
	// OutputExceeded: the run was killed for printing more than its output limit.
	OutputExceeded bool
	Duration       time.Duration
}

// Passed reports whether the program exited 0 within its limits.
func (r Result) Passed() bool { return r.ExitCode == 0 && !r.TimedOut && !r.OutputExceeded }

// Run runs sp in a fresh sandbox. It returns ErrUnavailable (wrapped) without running
// anything when bubblewrap cannot run. A program that fails or is killed is not an error:
// see the Result.
func (s *Sandbox) Run(ctx context.Context, sp Spec) (Result, error) {
	if s.err != nil {
		return Result{}, s.err
	}
	return s.run(ctx, sp, true)
}

// workRoot is where the work directory appears inside the sandbox (inside its private /tmp).
const workRoot = "/tmp/work"

func (s *Sandbox) run(ctx context.Context, sp Spec, useFiles bool) (Result, error) {
	if len(sp.Command) == 0 {
		return Result{}, errors.New("sandbox: no command")
	}
	lim := s.limits
	if sp.Limits.Timeout > 0 {
		lim.Timeout = sp.Limits.Timeout
	}
	if sp.Limits.MemoryBytes > 0 {
		lim.MemoryBytes = sp.Limits.MemoryBytes
	}
	if sp.Limits.Processes > 0 {
		lim.Processes = sp.Limits.Processes
	}
	if sp.Limits.OutputBytes > 0 {
		lim.OutputBytes = sp.Limits.OutputBytes
	}
	if sp.Limits.FileBytes > 0 {
		lim.FileBytes = sp.Limits.FileBytes
	}
	dir, err := os.MkdirTemp("", "autoglm-sandbox-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	if useFiles {
		for name, data := range sp.Files {
			clean := filepath.Clean(name)
			if filepath.IsAbs(clean) || clean == "." || strings.HasPrefix(clean, "..") {
				return Result{}, fmt.Errorf("sandbox: file name %q leaves the work directory", name)
			}
			p := filepath.Join(dir, clean)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return Result{}, err
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return Result{}, err
			}
		}
	}
	if s.asUser != nil {
		// The sandboxed user must own its work directory.
		_ = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				_ = os.Lchown(p, int(s.asUser.uid), int(s.asUser.gid))
			}
			return nil
		})
	}
	args := []string{
		"--ro-bind", "/", "/",
		"--dev", "/dev",
		"--proc", "/proc",
		"--tmpfs", "/tmp",
		"--bind", dir, workRoot,
		"--chdir", workRoot,
		"--unshare-all", // network, PID, IPC, UTS, cgroup and user namespaces
		"--die-with-parent",
		"--new-session",
		"--cap-drop", "ALL",
		"--clearenv",
		"--setenv", "PATH", "/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin",
		"--setenv", "HOME", workRoot,
		"--setenv", "TMPDIR", "/tmp",
		"--setenv", "LANG", "C.UTF-8",
	}
	for _, b := range s.binds {
		args = append(args, "--bind", b, b)
	}
	for _, kv := range sp.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Result{}, fmt.Errorf("sandbox: environment entry %q has no '='", kv)
		}
		args = append(args, "--setenv", k, v)
	}
	cpu := int64(lim.Timeout/time.Second) + 1
	args = append(args, "--", s.prlimit,
		"--as="+strconv.FormatInt(lim.MemoryBytes, 10),
		"--cpu="+strconv.FormatInt(cpu, 10),
		"--nproc="+strconv.Itoa(lim.Processes),
		"--fsize="+strconv.FormatInt(lim.FileBytes, 10),
		"--core=0",
		"--")
	args = append(args, sp.Command...)

	rctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, s.bwrap, args...)
	if err := isolate(cmd, s.asUser); err != nil {
		return Result{}, err
	}
	cmd.WaitDelay = 2 * time.Second
	out := &limitedOutput{limit: lim.OutputBytes, kill: cancel}
	cmd.Stdout = out.writer(&out.stdout)
	cmd.Stderr = out.writer(&out.stderr)
	cmd.Stdin = bytes.NewReader(sp.Stdin)
	start := time.Now()
	err = cmd.Run()
	res := Result{Duration: time.Since(start), Stdout: out.stdout.Bytes(), Stderr: out.stderr.Bytes()}
	res.OutputExceeded = out.exceeded()
	if rctx.Err() != nil && ctx.Err() == nil && !res.OutputExceeded {
		res.TimedOut = true
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		if res.ExitCode < 0 {
			res.ExitCode = killedExit
		}
	case ctx.Err() != nil:
		return res, ctx.Err()
	case res.TimedOut || res.OutputExceeded:
		res.ExitCode = killedExit
	default:
		return res, fmt.Errorf("sandbox: %w", err)
	}
	return res, nil
}

// limitedOutput collects stdout and stderr up to a shared limit and stops the run past it.
type limitedOutput struct {
	mu             sync.Mutex
	stdout, stderr bytes.Buffer
	n, limit       int
	over           bool
	kill           func()
}

type outWriter struct {
	o   *limitedOutput
	buf *bytes.Buffer
}

func (o *limitedOutput) writer(buf *bytes.Buffer) *outWriter { return &outWriter{o: o, buf: buf} }

func (w *outWriter) Write(p []byte) (int, error) {
	o := w.o
	o.mu.Lock()
	defer o.mu.Unlock()
	room := o.limit - o.n
	if len(p) > room {
		if room > 0 {
			w.buf.Write(p[:room])
			o.n += room
		}
		if !o.over {
			o.over = true
			o.kill()
		}
		return len(p), nil
	}
	w.buf.Write(p)
	o.n += len(p)
	return len(p), nil
}

func (o *limitedOutput) exceeded() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.over
}
