//go:build !unix

package quant

import "time"

// cpuTime is not measured on this OS; the per-CPU-second figures of the
// benchmarks are then meaningless.
func cpuTime() time.Duration { return 0 }
