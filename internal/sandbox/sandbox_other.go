//go:build !unix

package sandbox

import "os/exec"

// hostError is ErrUnsupported: off Unix there is no bubblewrap, no rlimits and no process
// group to kill, so New refuses before running anything (see the package comment).
func hostError() error { return ErrUnsupported }

// sandboxUser is nil: there is no user to switch to.
func sandboxUser() *account { return nil }

// isolate refuses, so that nothing starts unisolated even if a run got past New's refusal.
func isolate(*exec.Cmd, *account) error { return ErrUnsupported }
