//go:build linux && (amd64 || arm64)

package evloop

// getg is the calling goroutine's identity: the address of its runtime descriptor, which no
// other live goroutine shares. A loop compares it with the coroutine it is running to tell
// its own coroutine from any other goroutine that touches one of its connections. Assembly,
// because the runtime does not export it; both architectures keep it where any assembly
// function can read it (the TLS slot on amd64, register g on arm64).
func getg() uintptr
