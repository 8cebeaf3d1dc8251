//go:build !purego

package quant

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate go run asm_gen.go

// asmLevel names the kernels chosen at init.
var asmLevel = "go"

// hasAVX512 gates the float32 vector routines, hasVNNI the integer tiles.
var hasAVX512, hasVNNI bool

type asmTileQ8 func(w *byte, ws int, x *int8, xs int, dv *float32, cv *int32, vs int, nb2 int, y *float32, ys int)

type asmTileFloat func(w *byte, ws int, x *float32, xs int, n16 int, y *float32, ys int)

func initAsm() {
	x := &cpu.X86
	hasAVX512 = x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX512DQ && x.HasFMA && x.HasAVX2
	hasVNNI = hasAVX512 && x.HasAVX512VNNI
	if !hasAVX512 {
		return
	}
	asmLevel = "avx512"
	for R := 1; R <= tileMax; R++ {
		for T := 1; T <= tileMax; T++ {
			gemmKernels[F16].tiles[R][T] = floatTileFunc(tilesF16AVX512[R][T])
			gemmKernels[F32].tiles[R][T] = floatTileFunc(tilesF32AVX512[R][T])
		}
	}
	if !hasVNNI {
		return
	}
	asmLevel = "avx512vnni"
	for R := 1; R <= tileMax; R++ {
		for T := 1; T <= tileMax; T++ {
			gemmKernels[Q8_0].tiles[R][T] = q8TileFunc(tilesQ8_0VNNI[R][T])
			gemmKernels[Q4_0].tiles[R][T] = q8TileFunc(tilesQ4_0VNNI[R][T])
			gemmKernels[Q5_0].tiles[R][T] = q8TileFunc(tilesQ5_0VNNI[R][T])
			gemmKernels[Q4_K].tiles[R][T] = kTileFunc(tilesQ4_KVNNI[R][T])
			gemmKernels[Q6_K].tiles[R][T] = kTileFunc(tilesQ6_KVNNI[R][T])
		}
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

// floatTileFunc adapts an assembly float tile, which takes 16 elements at
// a time, to tileFunc; the last cols%16 elements are added in Go.
func floatTileFunc(f asmTileFloat) tileFunc {
	return func(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int) {
		cols := a.cols
		n16 := cols / 16
		if n16 == 0 {
			goTileFloat(k, w, rb, r0, R, a, t0, T, y, ldy)
			return
		}
		f(&w[r0*rb], rb, &a.f[t0*cols], cols*4, n16, &y[r0], ldy*4)
		if tail := n16 * 16; tail < cols {
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
