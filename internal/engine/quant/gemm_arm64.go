//go:build !purego

package quant

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// asmLevel names the kernels chosen at init: "neon-dotprod" where the CPU
// has the dot product extension (ASIMDDP), "neon" where it has only the
// base Advanced SIMD, "go" where it reports neither.
var asmLevel = "go"

// hasNEON gates every arm64 kernel, hasDotProd the SDOT tiles.
var hasNEON, hasDotProd bool

// neonTileQ8 is the shape of the NEON integer tiles without block sums
// (Q8_0, Q4_0, Q5_0, Q6_K): one weight row w of nb blocks by T activation rows
// (quants from x, xs bytes apart; block scales from dv, vs bytes apart),
// results to y, ys bytes apart.
type neonTileQ8 func(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)

// neonTileQ8K adds the Q8_K block sums bs (laid out like dv), for the
// K-quants with mins (Q4_K).
type neonTileQ8K func(w *byte, x *int8, xs int, dv *float32, bs *int32, vs int, nb int, T int, y *float32, ys int)

func initAsm() {
	hasNEON = cpu.ARM64.HasASIMD
	hasDotProd = hasNEON && cpu.ARM64.HasASIMDDP
	if !hasNEON {
		return
	}
	asmLevel = "neon"
	if hasDotProd {
		asmLevel = "neon-dotprod"
	}
	for t := range gemmKernels {
		installNEON(&gemmKernels[t], hasDotProd)
	}
}

// installNEON puts the NEON tiles of k's type into k: one weight row by
// up to four activation rows, so MulRows keeps to one-row tiles. With
// dotprod false it installs the tiles that avoid SDOT (tests install them
// on any arm64 CPU to check them too).
func installNEON(k *Kernel, dotprod bool) {
	var f tileFunc
	switch k.typ {
	case Q8_0:
		f = neonQ8Tile(tileQ8_0NEON, 32)
		if dotprod {
			f = neonQ8Tile(tileQ8_0SDOT, 32)
		}
	case Q4_0:
		f = neonQ8Tile(tileQ4_0NEON, 32)
		if dotprod {
			f = neonQ8Tile(tileQ4_0SDOT, 32)
		}
	case Q5_0:
		f = neonQ8Tile(tileQ5_0NEON, 32)
		if dotprod {
			f = neonQ8Tile(tileQ5_0SDOT, 32)
		}
	case Q6_K:
		f = neonQ8Tile(tileQ6_KNEON, qkK)
		if dotprod {
			f = neonQ8Tile(tileQ6_KSDOT, qkK)
		}
	case Q4_K:
		f = neonQ8KTile(tileQ4_KNEON)
		if dotprod {
			f = neonQ8KTile(tileQ4_KSDOT)
		}
	case F16:
		f = neonF16Tile
	default:
		return
	}
	k.tiles = [tileMax + 1][tileMax + 1]tileFunc{}
	for T := 1; T <= tileMax; T++ {
		k.tiles[1][T] = f
	}
	k.maxR = 1
}

// neonQ8Tile adapts a tile over blocks of bs elements (32, or qkK for
// Q6_K, whose activation scales come sixteen to a super-block) to
// tileFunc, one weight row at a time.
func neonQ8Tile(f neonTileQ8, bs int) tileFunc {
	lanes := 8
	if bs == qkK {
		lanes = 16
	}
	return func(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int) {
		nb := a.cols / bs
		if nb == 0 {
			zeroTile(r0, R, T, y, ldy)
			return
		}
		v := t0 * nb * lanes
		for r := range R {
			f(&w[(r0+r)*rb], &a.qs[t0*a.cols], a.cols, &a.dv[v], nb*lanes*4, nb, T, &y[r0+r], ldy*4)
		}
	}
}

// neonQ8KTile adapts a Q4_K tile to tileFunc.
func neonQ8KTile(f neonTileQ8K) tileFunc {
	return func(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int) {
		nb := a.cols / qkK
		if nb == 0 {
			zeroTile(r0, R, T, y, ldy)
			return
		}
		v := t0 * nb * 16
		for r := range R {
			f(&w[(r0+r)*rb], &a.qs[t0*a.cols], a.cols, &a.dv[v], &a.bs[v], nb*64, nb, T, &y[r0+r], ldy*4)
		}
	}
}

// neonF16Tile runs the F16 tile over the first cols/16·16 elements and
// adds the rest in Go.
func neonF16Tile(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int) {
	cols := a.cols
	n16 := cols / 16
	if n16 == 0 {
		goTileFloat(k, w, rb, r0, R, a, t0, T, y, ldy)
		return
	}
	tail := n16 * 16
	for r := range R {
		row := w[(r0+r)*rb : (r0+r+1)*rb]
		tileF16NEON(&row[0], &a.f[t0*cols], cols*4, n16, T, &y[r0+r], ldy*4)
		if tail < cols {
			for t := range T {
				y[t*ldy+r0+r] += dotF16(row[tail*2:], a.f[(t0+t)*cols+tail:(t0+t+1)*cols])
			}
		}
	}
}

// zeroTile stores the empty products of zero-length rows.
func zeroTile(r0, R, T int, y []float32, ldy int) {
	for t := range T {
		for r := range R {
			y[t*ldy+r0+r] = 0
		}
	}
}

func dotF32Vec(a, b []float32) float32 {
	n := len(a)
	if !hasNEON || n < 16 {
		return dotF32Go(a, b)
	}
	n16 := n / 16
	s := dotF32NEON(unsafe.SliceData(a), unsafe.SliceData(b), n16)
	if m := n16 * 16; m < n {
		s += dotF32Go(a[m:], b[m:])
	}
	return s
}

func axpyF32Vec(alpha float32, x, y []float32) {
	n := len(y)
	if !hasNEON || n < 16 {
		axpyF32Go(alpha, x, y)
		return
	}
	n16 := n / 16
	axpyF32NEON(alpha, unsafe.SliceData(x), unsafe.SliceData(y), n16)
	if m := n16 * 16; m < n {
		axpyF32Go(alpha, x[m:], y[m:])
	}
}

// quantQ8RowVec: the activations are quantised in Go on arm64.
func quantQ8RowVec(a *Acts, r int) bool { return false }

// cpuHasAVX2 and installAVX2 exist for the amd64 tests' sake.
func cpuHasAVX2() bool { return false }

func installAVX2(k *Kernel) {}
