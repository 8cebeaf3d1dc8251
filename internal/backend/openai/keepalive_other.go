//go:build unix && !linux

package openai

// setKeepAliveIdle leaves the system's timing: event loops exist only on Linux.
func setKeepAliveIdle(int, int) error { return nil }
