// Package hugepage allocates large, long-lived buffers (weights copied at
// model load) so that the kernel can back them with 2 MiB pages.
//
// A decoding step streams every weight once. With 4 KiB pages a 330 MiB
// model is about 85,000 TLB entries per token, and the CPU's hardware
// prefetchers stop at every 4 KiB boundary; with 2 MiB pages both costs
// nearly vanish. Go's heap gives no such guarantee (its allocations are
// not 2 MiB aligned, and transparent huge pages in the common "madvise"
// mode need an explicit request), so on Linux a Buffer is an anonymous
// mapping aligned to 2 MiB and advised MADV_HUGEPAGE. Elsewhere, or when
// the mapping fails, it is ordinary Go memory.
package hugepage

import (
	"runtime"
	"strings"
)

// Size is the huge page size the buffers are aligned to.
const Size = 2 << 20

// Buffer is memory from [Alloc]. Its bytes stay valid while the Buffer is
// reachable: a caller that keeps only Bytes must keep the Buffer alive too
// (runtime.KeepAlive), since the mapping is released when the Buffer is
// collected.
type Buffer struct {
	b        []byte
	reserved int64
	huge     bool
}

// Alloc returns a zeroed buffer of n bytes. On Linux, from n = Size up, it
// is an anonymous mapping that starts on a 2 MiB boundary, advised
// MADV_HUGEPAGE, so that transparent huge pages back its whole 2 MiB
// stretches where the system allows them
// (/sys/kernel/mm/transparent_hugepage/enabled "always" or "madvise"); the
// part past the last whole huge page stays in 4 KiB pages, so no memory is
// held beyond n rounded up to 4 KiB. Smaller buffers, and all of them
// elsewhere, are Go memory.
func Alloc(n int) *Buffer {
	if n < 0 {
		panic("hugepage: negative size")
	}
	if n >= Size {
		if b, release, ok := mapHuge(n); ok {
			buf := &Buffer{b: b[:n:n], reserved: int64(len(b)), huge: true}
			runtime.AddCleanup(buf, func(struct{}) { release() }, struct{}{})
			return buf
		}
	}
	b := make([]byte, n)
	return &Buffer{b: b, reserved: int64(cap(b))}
}

// Bytes returns the buffer's n bytes.
func (b *Buffer) Bytes() []byte { return b.b }

// Reserved returns the memory the buffer holds: n rounded up to whole
// 4 KiB pages when it is a mapping.
func (b *Buffer) Reserved() int64 {
	if b == nil {
		return 0
	}
	return b.reserved
}

// Mapped reports whether the buffer is a huge-page-aligned mapping advised
// for huge pages (whether the kernel granted them is up to the system:
// AnonHugePages in /proc/meminfo counts them).
func (b *Buffer) Mapped() bool { return b != nil && b.huge }

// Available reports whether buffers from [Alloc] of Size and more can get
// huge pages here: on Linux with transparent huge pages in "always" or
// "madvise" mode. Callers that copy memory only to place it in huge pages
// skip the copy where this is false.
func Available() bool { return available() }

// thpEnabled parses /sys/kernel/mm/transparent_hugepage/enabled, whose
// selected mode is the bracketed word ("always [madvise] never").
func thpEnabled(s string) bool {
	i := strings.IndexByte(s, '[')
	j := strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return false
	}
	mode := s[i+1 : j]
	return mode == "always" || mode == "madvise"
}
