//go:build unix

package gguf

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
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

// releasePages advises MADV_DONTNEED for the whole pages of data[off :
// off+n]. Advice is best effort: a refusal leaves the pages resident.
func releasePages(data []byte, off, n int) {
	page := os.Getpagesize()
	start := (off + page - 1) / page * page
	end := (off + n) / page * page
	if end <= start {
		return
	}
	_ = unix.Madvise(data[start:end], unix.MADV_DONTNEED)
}
