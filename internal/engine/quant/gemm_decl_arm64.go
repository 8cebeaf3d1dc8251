//go:build !purego

package quant

// Declarations of the NEON kernels in gemm_arm64.s; gemm_arm64.go
// describes their arguments.

//go:noescape
func tileQ8_0SDOT(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)

//go:noescape
func tileQ8_0NEON(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)

//go:noescape
func tileQ4_0SDOT(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)

//go:noescape
func tileQ4_0NEON(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)

//go:noescape
func tileQ5_0SDOT(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)

//go:noescape
func tileQ5_0NEON(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)

//go:noescape
func tileQ4_KSDOT(w *byte, x *int8, xs int, dv *float32, bs *int32, vs int, nb int, T int, y *float32, ys int)

//go:noescape
func tileQ4_KNEON(w *byte, x *int8, xs int, dv *float32, bs *int32, vs int, nb int, T int, y *float32, ys int)

//go:noescape
func tileQ6_KSDOT(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)

//go:noescape
func tileQ6_KNEON(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)

//go:noescape
func tileF16NEON(w *byte, x *float32, xs int, n16 int, T int, y *float32, ys int)

//go:noescape
func dotF32NEON(a *float32, b *float32, n16 int) float32

//go:noescape
func axpyF32NEON(alpha float32, x *float32, y *float32, n16 int)
