//go:build unix

package quant

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time: on a shared machine,
// tokens per CPU-second compare kernels where wall time mostly measures
// the scheduler.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
