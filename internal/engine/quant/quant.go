package quant

import (
	"encoding/binary"
	"fmt"
)

// kernel is the set of routines one supported type provides. All of them
// receive whole blocks only: the public wrappers check lengths first, so the
// kernels may assume len(x) (or len(dst), len(src)) is a multiple of the
// block size and that the byte slice is long enough.
type kernel struct {
	dequant func(src []byte, dst []float32)
	quant   func(src []float32, dst []byte)
	dot     func(row []byte, x []float32) float32
}

// kernels is indexed by Type; it is filled at init and never changed.
var kernels [BF16 + 1]kernel

func init() {
	kernels[F32] = kernel{dequantF32, quantF32, dotF32}
	kernels[F16] = kernel{dequantF16, quantF16, dotF16}
	kernels[BF16] = kernel{dequantBF16, quantBF16, dotBF16}
	kernels[Q8_0] = kernel{dequantQ8_0, quantQ8_0, dotQ8_0}
	kernels[Q4_0] = kernel{dequantQ4_0, quantQ4_0, dotQ4_0}
	kernels[Q4_1] = kernel{dequantQ4_1, quantQ4_1, dotQ4_1}
	kernels[Q5_0] = kernel{dequantQ5_0, quantQ5_0, dotQ5_0}
	kernels[Q5_1] = kernel{dequantQ5_1, quantQ5_1, dotQ5_1}
	kernels[Q4_K] = kernel{dequantQ4_K, quantQ4_K, dotQ4_K}
	kernels[Q5_K] = kernel{dequantQ5_K, quantQ5_K, dotQ5_K}
	kernels[Q6_K] = kernel{dequantQ6_K, quantQ6_K, dotQ6_K}
}

func kernelFor(t Type) (*kernel, bool) {
	if !t.Supported() {
		return nil, false
	}
	return &kernels[t], true
}

// Dequantize decodes len(dst) elements of type t from src into dst. It fails
// if t is not supported, len(dst) is not a multiple of t's block size, or src
// holds fewer than RowBytes(t, len(dst)) bytes. Extra bytes in src are
// ignored.
func Dequantize(t Type, src []byte, dst []float32) error {
	k, ok := kernelFor(t)
	if !ok {
		return fmt.Errorf("quant: no kernels for type %v", t)
	}
	need, err := RowBytes(t, len(dst))
	if err != nil {
		return err
	}
	if len(src) < need {
		return fmt.Errorf("quant: %d %v elements need %d bytes, have %d", len(dst), t, need, len(src))
	}
	k.dequant(src[:need], dst)
	return nil
}

// Quantize encodes src as type t and returns the new bytes. It fails if t is
// not supported or len(src) is not a multiple of t's block size. Encoding is
// round-to-nearest with a per-block scale; see the package comment.
func Quantize(t Type, src []float32) ([]byte, error) {
	k, ok := kernelFor(t)
	if !ok {
		return nil, fmt.Errorf("quant: no kernels for type %v", t)
	}
	n, err := RowBytes(t, len(src))
	if err != nil {
		return nil, err
	}
	dst := make([]byte, n)
	k.quant(src, dst)
	return dst, nil
}

// Dot returns the dot product of the first len(x) elements encoded in row
// with x. It panics if t is not supported, len(x) is not a multiple of t's
// block size, or row is too short: those are programming errors on a path
// that must not pay for error returns.
func Dot(t Type, row []byte, x []float32) float32 {
	k := mustKernel(t, len(x))
	return k.dot(row, x)
}

// MatVec computes y[r] = dot(row r of w, x) for r in [0, rows), where w holds
// rows consecutive rows of cols elements each (RowBytes(t, cols) bytes per
// row) and only x[:cols] is read. It runs on the calling goroutine; callers
// split rows across goroutines themselves. It panics on unsupported types or
// short slices, like Dot.
func MatVec(t Type, w []byte, rows, cols int, x, y []float32) {
	k := mustKernel(t, cols)
	rb := cols / t.BlockSize() * t.BlockBytes()
	if rows < 0 || len(w) < rows*rb || len(x) < cols || len(y) < rows {
		panic(fmt.Sprintf("quant: MatVec %v %dx%d with len(w)=%d len(x)=%d len(y)=%d", t, rows, cols, len(w), len(x), len(y)))
	}
	x = x[:cols]
	y = y[:rows]
	dot := k.dot
	for r := range y {
		y[r] = dot(w[r*rb:(r+1)*rb], x)
	}
}

func mustKernel(t Type, n int) *kernel {
	k, ok := kernelFor(t)
	if !ok {
		panic(fmt.Sprintf("quant: no kernels for type %v", t))
	}
	if n%t.BlockSize() != 0 {
		panic(fmt.Sprintf("quant: %d elements is not a multiple of the %v block size", n, t))
	}
	return k
}

// le16 reads a little-endian uint16; short helper for block headers.
func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }

// f16 reads a little-endian binary16 and widens it.
func f16(b []byte) float32 { return F16ToF32(binary.LittleEndian.Uint16(b)) }

func putF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, F32ToF16(f)) }

// roundHalfAway rounds to the nearest integer, halves away from zero, like
// C's roundf; used by the encoders.
func roundHalfAway(f float32) int32 {
	if f < 0 {
		return -int32(-f + 0.5)
	}
	return int32(f + 0.5)
}

func clamp(v, lo, hi int32) int32 {
	return min(max(v, lo), hi)
}
