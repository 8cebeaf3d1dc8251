//go:build linux

package hugepage

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapHuge maps n bytes rounded up to whole 4 KiB pages at a 2 MiB aligned
// address (it maps one huge page more and unmaps the ends) and advises
// MADV_HUGEPAGE before any page is touched, so the first write to each
// whole 2 MiB stretch faults in a huge page when the kernel has one free.
func mapHuge(n int) (b []byte, release func(), ok bool) {
	const page = 4096
	size := uintptr(n+page-1) / page * page
	if size == 0 {
		return nil, nil, false
	}
	raw, err := unix.MmapPtr(-1, 0, nil, size+Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, false
	}
	start := uintptr(raw)
	off := (Size - start%Size) % Size
	if off > 0 {
		_ = unix.MunmapPtr(raw, off)
	}
	if tail := Size - off; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(raw, off+size), tail)
	}
	p := unsafe.Add(raw, off)
	b = unsafe.Slice((*byte)(p), size)
	// The advice may be refused (THP compiled out, or "never"): the
	// mapping is still good memory, in 4 KiB pages.
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	return b, func() { _ = unix.MunmapPtr(p, size) }, true
}

// available reads the transparent huge page mode: "always" and "madvise"
// (the advice mapHuge gives) back whole 2 MiB stretches with huge pages,
// "never" (or a kernel without the file) does not.
func available() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && thpEnabled(string(b))
}
