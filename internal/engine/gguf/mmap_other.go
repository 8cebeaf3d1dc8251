//go:build !unix

package gguf

import (
	"io"
	"os"
)

// mapFile is the portable fallback: it reads the whole file into memory.
func mapFile(fd *os.File, size int64) ([]byte, func() error, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(fd, data); err != nil {
		return nil, nil, err
	}
	return data, nil, nil
}

// releasePages does nothing: the file was read into the Go heap.
func releasePages([]byte, int, int) {}
