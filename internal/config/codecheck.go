package config

import "time"

// CodeCheck is the "code_check" section: checks of generated code, the repair loop of code
// tasks, and the operator's opt-in sandbox.
type CodeCheck struct {
	// Disabled turns off the checks (and so the repairs) of code tasks. Default false: code
	// tasks check every block of their answer.
	Disabled bool `yaml:"disabled"`
	// RepairRounds is how many times a code task whose answer fails its checks asks the model
	// for a corrected block, unless the request asks for fewer or more (up to
	// MaxRepairRounds). 0 checks without repairing. Default 2.
	RepairRounds *int `yaml:"repair_rounds"`
	// MaxRepairRounds is the most repair rounds a request may ask for. Default 3; at most 3.
	MaxRepairRounds int `yaml:"max_repair_rounds"`
	// Sandbox runs external parse-only checkers and user-supplied tests in a bubblewrap
	// sandbox. Off unless the operator turns it on; a request alone never can.
	Sandbox Sandbox `yaml:"sandbox"`
}

// Sandbox configures the bubblewrap sandbox (see docs/CODECHECK.md for what it protects
// against and what it does not).
type Sandbox struct {
	// Enabled turns the sandbox on. Default false. When on and bubblewrap cannot run, the
	// server still starts, and every sandboxed check reports the sandbox as unavailable.
	Enabled bool `yaml:"enabled"`
	// Bwrap is the bubblewrap executable. Default "bwrap" (found on PATH).
	Bwrap string `yaml:"bwrap"`
	// Timeout bounds one sandboxed run (wall clock; CPU time is limited to the same).
	// Default 10s.
	Timeout Duration `yaml:"timeout"`
	// MemoryMB caps the address space of each sandboxed process. Default 1024.
	MemoryMB int `yaml:"memory_mb"`
	// MaxProcesses caps the processes of the sandbox's user. Default 256.
	MaxProcesses int `yaml:"max_processes"`
	// MaxOutputBytes caps what a run may print; more is cut off and the run fails.
	// Default 1 MiB.
	MaxOutputBytes int `yaml:"max_output_bytes"`
	// ExternalCheckers adds parse-only checks by real compilers and interpreters found on
	// the machine (python3, node, gcc, g++) for their languages. Default false.
	ExternalCheckers bool `yaml:"external_checkers"`
}

// Code-check defaults.
const (
	DefaultRepairRounds      = 2
	MaxRepairRoundsLimit     = 3
	DefaultSandboxTimeout    = 10 * time.Second
	DefaultSandboxMemoryMB   = 1024
	DefaultSandboxProcesses  = 256
	DefaultSandboxOutputSize = 1 << 20
)

// WithDefaults returns a copy with empty fields set to their defaults.
func (x CodeCheck) WithDefaults() CodeCheck { return x.withDefaults() }

func (x CodeCheck) withDefaults() CodeCheck {
	if x.RepairRounds == nil {
		n := DefaultRepairRounds
		x.RepairRounds = &n
	}
	if x.MaxRepairRounds == 0 {
		x.MaxRepairRounds = MaxRepairRoundsLimit
	}
	if x.Sandbox.Bwrap == "" {
		x.Sandbox.Bwrap = "bwrap"
	}
	setDur(&x.Sandbox.Timeout, DefaultSandboxTimeout)
	if x.Sandbox.MemoryMB == 0 {
		x.Sandbox.MemoryMB = DefaultSandboxMemoryMB
	}
	if x.Sandbox.MaxProcesses == 0 {
		x.Sandbox.MaxProcesses = DefaultSandboxProcesses
	}
	if x.Sandbox.MaxOutputBytes == 0 {
		x.Sandbox.MaxOutputBytes = DefaultSandboxOutputSize
	}
	return x
}

func (x CodeCheck) validate(bad func(path, format string, args ...any)) {
	if x.MaxRepairRounds < 0 || x.MaxRepairRounds > MaxRepairRoundsLimit {
		bad("code_check.max_repair_rounds", "must be between 0 and %d", MaxRepairRoundsLimit)
	}
	if x.RepairRounds != nil && (*x.RepairRounds < 0 || *x.RepairRounds > x.MaxRepairRounds) {
		bad("code_check.repair_rounds", "must be between 0 and max_repair_rounds (%d)", x.MaxRepairRounds)
	}
	if x.Sandbox.Timeout.D() < 0 || x.Sandbox.Timeout.D() > 10*time.Minute {
		bad("code_check.sandbox.timeout", "must be between 0 and 10m")
	}
	if x.Sandbox.MemoryMB < 0 || x.Sandbox.MaxProcesses < 0 || x.Sandbox.MaxOutputBytes < 0 {
		bad("code_check.sandbox", "limits must not be negative")
	}
}

// Repair returns the configured default number of repair rounds.
func (x CodeCheck) Repair() int {
	if x.RepairRounds == nil {
		return DefaultRepairRounds
	}
	return *x.RepairRounds
}
