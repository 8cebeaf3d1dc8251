// Package hugetext moves a running program's machine code onto transparent huge pages.
//
// Why: on the proxy path a request runs through a few hundred kilobytes of code spread over
// the binary's 25+ MiB of text. At a few hundred requests a second every request finds that
// code cold, and on 4 KiB pages each one takes a stream of instruction-TLB misses. Measured on
// the gateway's request path with the kernel's receive timestamps (docs/BENCHMARKS.md), the
// code's own time per request fell by 10-20 % with its text on 2 MiB pages.
//
// How: the 2 MiB-aligned part of the executable's text mapping is copied into anonymous
// memory advised for huge pages, made read-execute, and moved over the original address
// range with one mremap(2). The bytes at every address are the same before and after, so
// threads running that code carry on; the kernel swaps the mapping atomically.
//
// The cost: that part of the text becomes private memory (resident, not shared with the page
// cache, about 26 MiB for autoglm), and tools that read symbols from the executable file
// through /proc/PID/maps (perf) no longer find them for the moved range; Go's own profiles
// are unaffected. Remap does nothing where the kernel's transparent huge pages are off, where
// the huge page is not 2 MiB, or where anonymous executable memory is refused (a policy
// against W^X exceptions), and reports why.
package hugetext

import "errors"

// ErrUnavailable is wrapped by Remap's errors when this system cannot do it (no
// transparent huge pages, another page size, another OS): nothing was changed.
var ErrUnavailable = errors.New("code on huge pages is not available here")

// pageSize is the huge page size the remap is done for.
const pageSize = 2 << 20

// Remap moves the executable's text onto huge pages and returns the bytes moved. On error
// nothing was changed and the program runs on as before.
func Remap() (int, error) { return remap() }
