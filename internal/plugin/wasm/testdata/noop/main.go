//go:build wasip1

// Command noop is a Wasm plugin whose on_request changes nothing, without reading its input:
// BenchmarkWasmHook measures with it what the host and the ABI cost apart from a module's
// own work. Its one buffer is reused, so a call allocates nothing.
package main

import "unsafe"

func main() {}

var buf []byte

//go:wasmexport alloc
func alloc(size uint32) uint32 {
	if cap(buf) < int(size) || cap(buf) == 0 {
		buf = make([]byte, max(size, 1024))
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
}

//go:wasmexport free
func free(uint32) {}

//go:wasmexport on_request
func onRequest(p, n uint32) uint64 { return 0 }
