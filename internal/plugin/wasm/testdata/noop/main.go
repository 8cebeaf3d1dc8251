//go:build wasip1

// Command noop is a Wasm plugin whose on_request changes nothing, without reading its input:
// BenchmarkWasmHook measures with it what the host and the ABI cost apart from a module's
// own work.
package main

import "unsafe"

func main() {}

var pinned = map[uint32][]byte{}

//go:wasmexport alloc
func alloc(size uint32) uint32 {
	b := make([]byte, max(size, 1))
	p := uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	pinned[p] = b
	return p
}

//go:wasmexport free
func free(p uint32) { delete(pinned, p) }

//go:wasmexport on_request
func onRequest(p, n uint32) uint64 { return 0 }
