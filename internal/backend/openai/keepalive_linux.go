package openai

import "syscall"

// setKeepAliveIdle sets when probes start and how often they repeat, in seconds.
func setKeepAliveIdle(fd, secs int) error {
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, secs); err != nil {
		return err
	}
	return syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, secs)
}
