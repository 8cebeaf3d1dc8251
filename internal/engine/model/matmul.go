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
	// k is the type's matrix-product kernel, resolved at load.
	k *quant.Kernel
	// packed is the copy of data rearranged at load for the CPU's packed
	// tiles, or nil where the type has none here (quant.PackAll, once the
	// loader has every matrix).
	packed *quant.Packed
}

func newWeight(name string, typ quant.Type, rows, cols int, data []byte) (*weight, error) {
	rb, err := quant.RowBytes(typ, cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	if len(data) < rb*rows {
		return nil, fmt.Errorf("tensor %s: %d bytes, want %d", name, len(data), rb*rows)
	}
	k, err := quant.KernelFor(typ)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	w := &weight{name: name, typ: typ, rows: rows, cols: cols, rowBytes: rb, data: data[:rb*rows], k: k}
	if typ == quant.F32 {
		w.f32 = float32View(w.data)
		// The kernels read F32 rows in place; a copy made for alignment
		// is what they must see.
		if littleEndian && len(w.f32) > 0 {
			w.data = unsafe.Slice((*byte)(unsafe.Pointer(&w.f32[0])), len(w.data))
		}
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

// dot returns a·b over len(a) elements: the engine's one float32 dot
// product (vectorised in quant).
func dot(a, b []float32) float32 { return quant.DotF32(a, b) }

// matmul computes y = x·wᵀ for n rows of x (y has w.rows values per row),
// split across the pool. x is first converted to the companion format of
// w's type; prev, when not nil, is that conversion from an earlier product
// on the same x, reused when w's kernel takes the same format. It returns
// the converted x for the next product on the same input.
func (m *Model) matmul(w *weight, x []float32, n int, y []float32, prev *quant.Acts) *quant.Acts {
	a := prev
	if a == nil || !w.k.ActsMatch(a) {
		a = &m.buf.acts[0]
		if a == prev {
			a = &m.buf.acts[1]
		}
		w.k.PrepareActs(a, x, n, w.cols)
		if n > 1 {
			m.pool.run(n, m.pool.grainFor(n, 1), func(_, lo, hi int) {
				w.k.QuantizeActsRows(a, lo, hi)
			})
		} else {
			w.k.QuantizeActsRows(a, 0, n)
		}
	}
	// Grains of whole tiles (4 rows, or a packed group of 16), so each
	// worker reads its weight rows once for all n inputs.
	align := 4
	if w.packed != nil {
		align = 16
	}
	m.pool.run(w.rows, m.pool.grainFor(w.rows, align), func(_, lo, hi int) {
		w.k.MulRowsPacked(w.data, w.packed, lo, hi, a, y, w.rows)
	})
	return a
}
