//go:build unix

package gguf

import (
	"os"
	"syscall"
)

// mapFile maps the whole file read-only and shared, so the page cache backs
// the tensors and several processes can share one copy.
func mapFile(fd *os.File, size int64) ([]byte, func() error, error) {
	if size == 0 {
		return nil, nil, nil // mmap refuses empty files; parsing reports it
	}
	if int64(int(size)) != size {
		return nil, nil, syscall.EFBIG
	}
	data, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
