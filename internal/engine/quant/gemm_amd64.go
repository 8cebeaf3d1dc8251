//go:build !purego

package quant

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate go run asm_gen.go asm_gen_avx2.go

// asmLevel names the kernels chosen at init.
var asmLevel = "go"

// hasAVX512 gates the float32 vector routines, hasVNNI the integer tiles.
var hasAVX512, hasVNNI bool

type asmTileQ8 func(w *byte, ws int, x *int8, xs int, dv *float32, cv *int32, vs int, nb2 int, y *float32, ys int)

type asmTileFloat func(w *byte, ws int, x *float32, xs int, n16 int, y *float32, ys int)

func initAsm() {
	x := &cpu.X86
	hasAVX2 := x.HasAVX2 && x.HasFMA
	hasAVX512 = hasAVX2 && x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX512DQ
	hasVNNI = hasAVX512 && x.HasAVX512VNNI
	if hasAVX512 {
		swigluAsm = swigluAVX512
		quantQ8KRowAsm = quantQ8KRowAVX512
	}
	switch {
	case hasVNNI:
		asmLevel = "avx512vnni"
		for t := range gemmKernels {
			installAVX512(&gemmKernels[t])
		}
	case hasAVX2 && x.HasAVXVNNI:
		// AVX-VNNI without AVX-512 (Intel's hybrid cores): the AVX2 tiles,
		// with VPDPBUSD in its VEX form for the 32-element types.
		asmLevel = "avxvnni"
		for t := range gemmKernels {
			installAVXVNNI(&gemmKernels[t])
		}
	case hasAVX2:
		// AVX2 machines (F16C comes with them) get the AVX2 tiles; an
		// AVX-512 machine without VNNI too (Skylake-SP): its float
		// routines above still use AVX-512, its integer tiles AVX2.
		asmLevel = "avx2"
		for t := range gemmKernels {
			installAVX2(&gemmKernels[t])
		}
	}
}

// installAVXVNNI puts the AVX2 tiles of k's type into k, with the AVX-VNNI
// ones for the types that have them.
func installAVXVNNI(k *Kernel) {
	installAVX2(k)
	var q8 *[tileMax + 1]asmTileQ8
	switch k.typ {
	case Q8_0:
		q8 = &tilesQ8_0AVXVNNI
	case Q4_0:
		q8 = &tilesQ4_0AVXVNNI
	case Q5_0:
		q8 = &tilesQ5_0AVXVNNI
	default:
		return
	}
	for T := 1; T <= tileMax; T++ {
		k.tiles[1][T] = q8TileFuncAVX2(q8[T])
	}
}

// installAVX512 puts the AVX-512 (VNNI) tiles of k's type into k.
func installAVX512(k *Kernel) {
	var q8 *[tileMax + 1][tileMax + 1]asmTileQ8
	var kq *[tileMax + 1][tileMax + 1]asmTileQ8
	var fl *[tileMax + 1][tileMax + 1]asmTileFloat
	switch k.typ {
	case Q8_0:
		q8 = &tilesQ8_0VNNI
		k.copies = true
	case Q4_0:
		q8 = &tilesQ4_0VNNI
		k.ptiles = tilesQ4_0Packed
		k.pgemv = gemvQ4_0P16
	case Q5_0:
		q8 = &tilesQ5_0VNNI
		k.copies = true
	case Q4_K:
		kq = &tilesQ4_KVNNI
		k.copies = true
	case Q6_K:
		kq = &tilesQ6_KVNNI
		k.copies = true
	case F16:
		fl = &tilesF16AVX512
		k.ptilesF = tilesF16Packed
		k.ptilesF2 = tilesF16Packed2
		k.pgemvF = gemvF16P16
	case F32:
		fl = &tilesF32AVX512
	default:
		return
	}
	switch k.typ {
	case Q8_0:
		k.gemv = q8Gemv(gemvQ8_0VNNI)
	case Q4_0:
		k.gemv = q8Gemv(gemvQ4_0VNNI)
	case Q5_0:
		k.gemv = q8Gemv(gemvQ5_0VNNI)
	case Q4_K:
		k.gemv = kGemv(gemvQ4_KVNNI)
	case Q6_K:
		k.gemv = kGemv(gemvQ6_KVNNI)
	}
	for R := 1; R <= tileMax; R++ {
		for T := 1; T <= tileMax; T++ {
			switch {
			case q8 != nil:
				k.tiles[R][T] = q8TileFunc(q8[R][T])
			case kq != nil:
				k.tiles[R][T] = kTileFunc(kq[R][T])
			default:
				k.tiles[R][T] = floatTileFunc(fl[R][T], 16)
			}
		}
	}
	k.maxR = tileMax
}

// installAVX2 puts the AVX2 tiles (one row by up to four) of k's type into
// k; MulRows then keeps to one-row tiles.
func installAVX2(k *Kernel) {
	var q8, kq *[tileMax + 1]asmTileQ8
	var fl *[tileMax + 1]asmTileFloat
	switch k.typ {
	case Q4_K:
		kq = &tilesQ4_KAVX2
	case Q6_K:
		kq = &tilesQ6_KAVX2
	case Q8_0:
		q8 = &tilesQ8_0AVX2
	case Q4_0:
		q8 = &tilesQ4_0AVX2
	case Q5_0:
		q8 = &tilesQ5_0AVX2
	case F16:
		fl = &tilesF16AVX2
	case F32:
		fl = &tilesF32AVX2
	default:
		return
	}
	k.tiles = [tileMax + 1][tileMax + 1]tileFunc{}
	for T := 1; T <= tileMax; T++ {
		switch {
		case kq != nil:
			k.tiles[1][T] = kTileFunc(kq[T])
		case q8 != nil:
			k.tiles[1][T] = q8TileFuncAVX2(q8[T])
		default:
			k.tiles[1][T] = floatTileFunc(fl[T], 8)
		}
	}
	k.maxR = 1
}

type asmGemv func(w *byte, x *int8, dv *float32, cv *int32, nb2 int, y *float32, rows int)

// q8Gemv adapts an assembly matrix-vector kernel of a 32-element type,
// which takes blocks two at a time and steps from one row to the next by
// the row's length: rows of an odd number of blocks go to the tiles.
func q8Gemv(f asmGemv) gemvFunc {
	return func(w []byte, rb, lo, hi int, a *Acts, y []float32) bool {
		nb := a.cols / 32
		if nb == 0 || nb%2 == 1 {
			return false
		}
		f(&w[lo*rb], &a.qs[0], &a.dv[0], &a.cv[0], nb/2, &y[lo], hi-lo)
		return true
	}
}

// kGemv adapts an assembly matrix-vector kernel of a K-quant type.
func kGemv(f asmGemv) gemvFunc {
	return func(w []byte, rb, lo, hi int, a *Acts, y []float32) bool {
		nb := a.cols / qkK
		if nb == 0 {
			return false
		}
		f(&w[lo*rb], &a.qs[0], &a.dv[0], &a.bs[0], nb, &y[lo], hi-lo)
		return true
	}
}

// q8TileFuncAVX2 adapts an AVX2 tile, one block per step and one row.
func q8TileFuncAVX2(f asmTileQ8) tileFunc {
	return func(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int) {
		nb := a.cols / 32
		if nb == 0 {
			goTileQ8(k, w, rb, r0, R, a, t0, T, y, ldy)
			return
		}
		v := t0 * nb * 8
		f(&w[r0*rb], rb, &a.qs[t0*a.cols], a.cols, &a.dv[v], &a.cv[v], nb*32, nb, &y[r0], ldy*4)
	}
}

// q8TileFunc adapts an assembly tile, which takes blocks two at a time, to
// tileFunc; an odd last block is left to the Go tile.
func q8TileFunc(f asmTileQ8) tileFunc {
	return func(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int) {
		cols := a.cols
		nb := cols / 32
		if nb == 0 {
			for t := range T {
				for r := range R {
					y[t*ldy+r0+r] = 0
				}
			}
			return
		}
		v := t0 * nb * 8
		f(&w[r0*rb], rb, &a.qs[t0*cols], cols, &a.dv[v], &a.cv[v], nb*32, nb/2, &y[r0], ldy*4)
		if nb%2 == 1 {
			goTileQ8From(k, w, rb, r0, R, a, t0, T, y, ldy, nb-1, true)
		}
	}
}

// kTileFunc adapts an assembly K-quant tile to tileFunc.
func kTileFunc(f asmTileQ8) tileFunc {
	return func(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int) {
		nb := a.cols / qkK
		if nb == 0 {
			goTileQ8K(k, w, rb, r0, R, a, t0, T, y, ldy)
			return
		}
		v := t0 * nb * 16
		f(&w[r0*rb], rb, &a.qs[t0*a.cols], a.cols, &a.dv[v], &a.bs[v], nb*64, nb, &y[r0], ldy*4)
	}
}

// floatTileFunc adapts an assembly float tile, which takes step elements
// at a time, to tileFunc; the last cols%step elements are added in Go.
func floatTileFunc(f asmTileFloat, step int) tileFunc {
	return func(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int) {
		cols := a.cols
		n := cols / step
		if n == 0 {
			goTileFloat(k, w, rb, r0, R, a, t0, T, y, ldy)
			return
		}
		f(&w[r0*rb], rb, &a.f[t0*cols], cols*4, n, &y[r0], ldy*4)
		if tail := n * step; tail < cols {
			dot := kernels[k.typ].dot
			es := k.typ.BlockBytes()
			for r := range R {
				row := w[(r0+r)*rb+tail*es : (r0+r+1)*rb]
				for t := range T {
					y[t*ldy+r0+r] += dot(row, a.f[(t0+t)*cols+tail:(t0+t+1)*cols])
				}
			}
		}
	}
}

func dotF32Vec(a, b []float32) float32 {
	n := len(a)
	if !hasAVX512 || n < 64 {
		return dotF32Go(a, b)
	}
	n64 := n / 64
	s := dotF32AVX512(unsafe.SliceData(a), unsafe.SliceData(b), n64)
	if m := n64 * 64; m < n {
		s += dotF32Go(a[m:], b[m:])
	}
	return s
}

func axpyF32Vec(alpha float32, x, y []float32) {
	n := len(y)
	if !hasAVX512 || n < 16 {
		axpyF32Go(alpha, x, y)
		return
	}
	n16 := n / 16
	axpyF32AVX512(alpha, unsafe.SliceData(x), unsafe.SliceData(y), n16)
	if m := n16 * 16; m < n {
		axpyF32Go(alpha, x[m:], y[m:])
	}
}

// quantQ8RowVec quantises row r of a with AVX-512 when the CPU has it,
// bit for bit as quantQ8Row does, and reports whether it did.
func quantQ8RowVec(a *Acts, r int) bool {
	nb := a.cols / 32
	if !hasAVX512 || nb == 0 {
		return false
	}
	v := r * nb * 8
	quantQ8RowAVX512(&a.src[r*a.cols], &a.qs[r*a.cols], &a.dv[v], &a.cv[v], &a.sv[v], nb, -a.off/8)
	return true
}

// cpuHasAVX2 reports whether the AVX2 tiles can run here (for tests).
func cpuHasAVX2() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA }
