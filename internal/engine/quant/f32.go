package quant

import (
	"encoding/binary"
	"unsafe"

	"github.com/open-autoglm/autoglm/internal/engine/fastmath"
)

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// f32View reinterprets little-endian float32 bytes in place, or returns nil
// when the host or the alignment does not allow it.
func f32View(b []byte) []float32 {
	n := len(b) / 4
	if n == 0 || !littleEndian || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

// DotF32 returns a·b over len(a) elements (b must be at least as long). It
// is the one float32 dot product of the engine: the F32 weight kernels and
// the model's attention use it. It uses vector instructions where the CPU
// has them.
func DotF32(a, b []float32) float32 {
	b = b[:len(a)]
	return dotF32Vec(a, b)
}

// dotF32Go is the portable DotF32, with eight partial sums to keep the
// floating-point pipeline busy.
func dotF32Go(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		av := (*[8]float32)(a[i:])
		bv := (*[8]float32)(b[i:])
		s0 += av[0] * bv[0]
		s1 += av[1] * bv[1]
		s2 += av[2] * bv[2]
		s3 += av[3] * bv[3]
		s4 += av[4] * bv[4]
		s5 += av[5] * bv[5]
		s6 += av[6] * bv[6]
		s7 += av[7] * bv[7]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// AxpyF32 adds alpha·x to y over len(y) elements (x must be at least as
// long).
func AxpyF32(alpha float32, x, y []float32) {
	x = x[:len(y)]
	axpyF32Vec(alpha, x, y)
}

func axpyF32Go(alpha float32, x, y []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += alpha * x[i]
	}
}

// SwiGLU sets dst[i] = silu(g[i])·u[i] over len(dst) elements (g and u
// must be at least as long), with silu(x) = x/(1+e^-x) and e^x as
// fastmath.Exp computes it: the gated feed-forward activation. It uses
// vector instructions where the CPU has them.
func SwiGLU(dst, g, u []float32) {
	n := len(dst)
	g, u = g[:n], u[:n]
	i := 0
	if swigluAsm != nil && n >= 16 {
		n16 := n / 16
		swigluAsm(&dst[0], &g[0], &u[0], n16)
		i = n16 * 16
	}
	for ; i < n; i++ {
		x := g[i]
		dst[i] = x / (1 + fastmath.Exp(-x)) * u[i]
	}
}

// swigluAsm is SwiGLU's vector loop over n16 steps of 16 elements, set at
// init where the CPU has one.
var swigluAsm func(dst, g, u *float32, n16 int)
