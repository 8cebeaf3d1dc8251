package model

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// weight is a matrix of rows × cols elements stored row-major in one of
// quant's types, as it lies in the GGUF file.
type weight struct {
	name       string
	typ        quant.Type
	rows, cols int
	rowBytes   int
	data       []byte
	// f32 views data as float32 when typ is F32 (copied when data is not
	// 4-byte aligned or the host is big-endian).
	f32 []float32
}

func newWeight(name string, typ quant.Type, rows, cols int, data []byte) (*weight, error) {
	rb, err := quant.RowBytes(typ, cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	if len(data) < rb*rows {
		return nil, fmt.Errorf("tensor %s: %d bytes, want %d", name, len(data), rb*rows)
	}
	w := &weight{name: name, typ: typ, rows: rows, cols: cols, rowBytes: rb, data: data[:rb*rows]}
	if typ == quant.F32 {
		w.f32 = float32View(w.data)
	}
	return w, nil
}

// float32View reinterprets little-endian float32 bytes without copying when
// the host allows it. GGUF aligns tensor data (32 bytes by default), so the
// mapped file normally qualifies.
func float32View(b []byte) []float32 {
	n := len(b) / 4
	if n == 0 {
		return nil
	}
	if littleEndian && uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]float32, n)
	if err := quant.Dequantize(quant.F32, b, out); err != nil {
		panic(err) // sizes were checked by the caller
	}
	return out
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// row decodes row r into dst (len cols).
func (w *weight) row(r int, dst []float32) {
	if w.f32 != nil {
		copy(dst, w.f32[r*w.cols:(r+1)*w.cols])
		return
	}
	if err := quant.Dequantize(w.typ, w.data[r*w.rowBytes:(r+1)*w.rowBytes], dst[:w.cols]); err != nil {
		panic(err) // sizes were validated at load
	}
}

// tileRows is how many F32 rows a batched product walks at a time: few
// enough that the tile stays in cache while every input row is multiplied
// with it.
const tileFloats = 16 << 10

func (w *weight) tileRows() int {
	return max(1, min(32, tileFloats/w.cols))
}

// mulRows computes y[b*w.rows+r] = row r · x[b*w.cols:(b+1)*w.cols] for the
// n input rows b and the weight rows r in [lo, hi). Each weight row is
// fetched from memory once for all n inputs and then reused from cache.
//
// Quantised rows go through quant's fused kernels once per input: in pure
// Go the multiply-adds, not memory, bound a single core, and decoding a
// row to float32 first (to share the decoding across inputs) measured
// slower than the fused kernel even at four inputs. F32 rows are used in
// place, four inputs at a time.
func (w *weight) mulRows(x []float32, n int, y []float32, lo, hi int) {
	cols, rows := w.cols, w.rows
	if w.f32 == nil {
		for r := lo; r < hi; r++ {
			row := w.data[r*w.rowBytes : (r+1)*w.rowBytes]
			for b := range n {
				y[b*rows+r] = quant.Dot(w.typ, row, x[b*cols:(b+1)*cols])
			}
		}
		return
	}
	tr := w.tileRows()
	for r0 := lo; r0 < hi; r0 += tr {
		r1 := min(r0+tr, hi)
		tile := w.f32[r0*cols : r1*cols]
		b := 0
		for ; b+4 <= n; b += 4 {
			x0 := x[b*cols : (b+1)*cols]
			x1 := x[(b+1)*cols : (b+2)*cols]
			x2 := x[(b+2)*cols : (b+3)*cols]
			x3 := x[(b+3)*cols : (b+4)*cols]
			for r := r0; r < r1; r++ {
				s0, s1, s2, s3 := dot4(tile[(r-r0)*cols:(r-r0+1)*cols], x0, x1, x2, x3)
				y[b*rows+r] = s0
				y[(b+1)*rows+r] = s1
				y[(b+2)*rows+r] = s2
				y[(b+3)*rows+r] = s3
			}
		}
		for ; b < n; b++ {
			xb := x[b*cols : (b+1)*cols]
			for r := r0; r < r1; r++ {
				y[b*rows+r] = dot(tile[(r-r0)*cols:(r-r0+1)*cols], xb)
			}
		}
	}
}

// dot returns a·b over len(a) elements, with eight partial sums to keep the
// floating-point pipeline busy.
func dot(a, b []float32) float32 {
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

// dot4 returns w·x0 … w·x3: each weight element is loaded once for four
// inputs, which is what makes batched steps cheaper per token.
func dot4(w, x0, x1, x2, x3 []float32) (float32, float32, float32, float32) {
	n := len(w)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	var a0, a1, b0, b1, c0, c1, d0, d1 float32
	i := 0
	for ; i+2 <= n; i += 2 {
		w0, w1 := w[i], w[i+1]
		a0 += w0 * x0[i]
		a1 += w1 * x0[i+1]
		b0 += w0 * x1[i]
		b1 += w1 * x1[i+1]
		c0 += w0 * x2[i]
		c1 += w1 * x2[i+1]
		d0 += w0 * x3[i]
		d1 += w1 * x3[i+1]
	}
	if i < n {
		a0 += w[i] * x0[i]
		b0 += w[i] * x1[i]
		c0 += w[i] * x2[i]
		d0 += w[i] * x3[i]
	}
	return a0 + a1, b0 + b1, c0 + c1, d0 + d1
}
