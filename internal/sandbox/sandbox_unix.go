//go:build unix

package sandbox

import (
	"os"
	"os/exec"
	"syscall"
)

// hostError is nil: a Unix host can build the sandbox; whether bubblewrap and prlimit run
// here is for New's probe to find out.
func hostError() error { return nil }

// sandboxUser is the user sandboxed programs run as, or nil for the server's own. The process
// limit counts per user, and root is exempt from it: as root, sandboxed programs run as nobody
// (bubblewrap then uses an unprivileged user namespace).
func sandboxUser() *account {
	if os.Geteuid() == 0 {
		return &account{uid: 65534, gid: 65534}
	}
	return nil
}

// isolate starts cmd in a process group of its own, as u when u is not nil, and makes
// cancelling it (the wall clock, the output limit, the caller) kill the whole group, not just
// bubblewrap.
func isolate(cmd *exec.Cmd, u *account) error {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if u != nil {
		attr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid, NoSetGroups: true}
	}
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return nil
}
