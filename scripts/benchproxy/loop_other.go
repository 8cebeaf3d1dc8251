//go:build !linux

package main

import (
	"errors"
	"time"
)

func serveLoops(addr, upstream string, n int, raw bool, idle time.Duration) error {
	return errors.New("benchproxy: -loop needs Linux")
}
