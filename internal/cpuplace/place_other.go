//go:build !linux

package cpuplace

import (
	"errors"
	"log/slog"
)

// Placer is not available off Linux: Start reports ErrUnsupported.
type Placer struct{}

// Start reports errors.ErrUnsupported: thread placement is Linux's.
func Start(Policy, *slog.Logger) (*Placer, error) { return nil, errors.ErrUnsupported }

// Stop does nothing.
func (*Placer) Stop() {}

// Gathered reports false.
func (*Placer) Gathered() bool { return false }

// Stats reports a process never gathered.
func (*Placer) Stats() Stats { return Stats{CPU: -1} }
