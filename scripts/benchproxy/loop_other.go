//go:build !linux

package main

import "errors"

func serveLoops(addr, upstream string, n int, raw bool) error {
	return errors.New("benchproxy: -loop needs Linux")
}
