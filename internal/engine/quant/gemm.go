package quant

import "fmt"

// Kernel is the matrix-product machinery of one weight type, resolved once
// (per weight, at model load) with [KernelFor]: how activations are
// quantised for it (its companion format) and the tiled kernels that
// multiply its rows by those activations. Like ggml's per-type CPU traits,
// it lets the hot loop call straight into the right code.
//
// A Kernel is immutable and safe for concurrent use.
type Kernel struct {
	typ  Type
	acts actsKind
	// off is the unsigned offset of the weight quants (actsQ8), fed into
	// the activations' correction vector.
	off int32
	// tiles[R][T] multiplies R weight rows by T activation rows with
	// assembly, when the CPU has it (nil entries fall back to Go).
	tiles [tileMax + 1][tileMax + 1]tileFunc
	// hasMin marks the types whose blocks carry a min (Q4_1, Q5_1).
	hasMin bool
	// maxR is the tallest tile MulRows may use (the assembly may offer
	// only one-row tiles); 0 means tileMax.
	maxR int
	// ptiles[T] multiplies a packed group of weight rows by T activation
	// rows (see Pack), when the CPU has them.
	ptiles [pkRows + 1]packedTile
	// ptilesF are the packed tiles of the float types.
	ptilesF [pkRows + 1]packedTileF
	// ptilesF2 take two consecutive groups at once.
	ptilesF2 [pkRows + 1]packedTileF2
	// pgemv multiplies whole packed groups by one activation row
	// (decoding), when the CPU has it; each row gets exactly what
	// ptiles[1] gives.
	pgemv packedGemv
	// pgemvF is pgemv of the float types; each row gets exactly what
	// ptilesF[1] (and ptilesF2[1]) give.
	pgemvF packedGemvF
	// copies marks the types whose matrices Pack copies whole, in their
	// own layout, into huge-page memory (Packed.whole) when the system
	// gives huge pages: decoding then reads them without the 4 KiB pages
	// of the file mapping.
	copies bool
	// gemv multiplies a run of consecutive weight rows by one activation
	// row in one call (decoding), when the CPU has it; it gives each row
	// exactly what the R=1, T=1 tile gives.
	gemv gemvFunc
}

// gemvFunc computes y[r] = row r · activation row 0 for r in [lo, hi) and
// reports whether it did (false: the shape is one it does not take, and
// the tiles must).
type gemvFunc func(w []byte, rb, lo, hi int, a *Acts, y []float32) bool

// tileMax is the largest tile side: a 4×4 tile keeps 16 accumulators in
// vector registers.
const tileMax = 4

// tileFunc computes y[t*ldy+r] = row (r0+r) · activation row (t0+t) for r
// in [0, R) and t in [0, T), for the whole row length.
type tileFunc func(k *Kernel, w []byte, rb, r0, R int, a *Acts, t0, T int, y []float32, ldy int)

// KernelFor returns the kernel of weight type t, or an error if t has no
// kernels.
func KernelFor(t Type) (*Kernel, error) {
	if !t.Supported() {
		return nil, fmt.Errorf("quant: no kernels for type %v", t)
	}
	return &gemmKernels[t], nil
}

// Type returns the weight type.
func (k *Kernel) Type() Type { return k.typ }

// VecType returns the type activations are converted to for this weight
// type: Q8_0 for the 32-element quants, Q8_K for the K-quants, F32 for the
// float types. (The buffers are this package's layout of those formats.)
func (k *Kernel) VecType() Type {
	switch k.acts {
	case actsQ8:
		return Q8_0
	case actsQ8K:
		return Q8_K
	}
	return F32
}

// QuantizeActs converts n rows of cols activations (x[:n*cols], row-major)
// to the kernel's companion format in a, reusing a's buffers. cols must be
// a multiple of the weight type's block size. For the float weight types a
// keeps a reference to x, which must then stay unchanged while a is used.
func (k *Kernel) QuantizeActs(a *Acts, x []float32, n, cols int) {
	k.PrepareActs(a, x, n, cols)
	k.QuantizeActsRows(a, 0, n)
}

// PrepareActs sizes a for n rows of cols activations from x without
// converting them; QuantizeActsRows then converts row ranges, possibly on
// several goroutines at once (on disjoint ranges).
func (k *Kernel) PrepareActs(a *Acts, x []float32, n, cols int) {
	if cols%k.typ.BlockSize() != 0 || n < 0 || len(x) < n*cols {
		panic(fmt.Sprintf("quant: PrepareActs %v: %d rows of %d with len(x)=%d", k.typ, n, cols, len(x)))
	}
	a.prepare(k.acts, k.off, k.packsActs(), x[:n*cols], n, cols)
}

// QuantizeActsRows converts rows [lo, hi) of the activations a was
// prepared for.
func (k *Kernel) QuantizeActsRows(a *Acts, lo, hi int) {
	if a.kind != k.acts || a.off != k.off || lo < 0 || hi > a.n {
		panic(fmt.Sprintf("quant: QuantizeActsRows %v rows [%d,%d) of %d", k.typ, lo, hi, a.n))
	}
	a.quantRows(lo, hi)
}

// ActsMatch reports whether a holds activations in this kernel's companion
// format, so that a product with this kernel can reuse them (weights of
// different types often share one: Q5_0 and Q8_0 differ, Q4_K and Q6_K do
// not).
func (k *Kernel) ActsMatch(a *Acts) bool {
	return a.kind == k.acts && a.off == k.off && (!k.packsActs() || len(a.pk) > 0 || a.n == 0)
}

// MulRows computes y[t*ldy+r] = (row r of w) · (activation row t) for the
// weight rows r in [lo, hi) and every row t of a. w holds the whole matrix,
// row r at r*RowBytes(k.Type(), a.cols); a must come from k.QuantizeActs.
// Each tile of up to 4 weight rows is read once for up to 4 activation
// rows. It panics on mismatched sizes.
func (k *Kernel) MulRows(w []byte, lo, hi int, a *Acts, y []float32, ldy int) {
	rb := a.cols / k.typ.BlockSize() * k.typ.BlockBytes()
	want := actsF32
	switch {
	case k.acts == actsQ8:
		want = actsQ8
	case k.acts == actsQ8K:
		want = actsQ8K
	}
	if a.kind != want || lo < 0 || hi < lo || len(w) < hi*rb || (a.n > 0 && len(y) < (a.n-1)*ldy+hi) {
		panic(fmt.Sprintf("quant: MulRows %v rows [%d,%d) × %d with len(w)=%d len(y)=%d ldy=%d", k.typ, lo, hi, a.n, len(w), len(y), ldy))
	}
	// Rows are taken in chunks of about 128 KiB of weights: a chunk stays
	// in the L2 cache while every tile of activation rows passes over it
	// (32 KiB chunks made long rows, such as ffn_down's, stream all the
	// activations from L3 once per few rows). With
	// few activation rows the product is a stream through memory, and one
	// weight row at a time streams about twice as fast as four
	// interleaved rows (the hardware prefetchers follow one stream
	// better), so the tiles are one row high; with many, the chunk is
	// reused from cache and 4-row tiles measure faster.
	n := a.n
	if n == 1 && k.gemv != nil && hi > lo && k.gemv(w, rb, lo, hi, a, y) {
		return
	}
	rmax := tileMax
	if n <= 2*tileMax {
		rmax = 1
	}
	if k.maxR > 0 {
		rmax = min(rmax, k.maxR)
	}
	chunk := max(tileMax, (128<<10)/max(rb, 1)/tileMax*tileMax)
	for c0 := lo; c0 < hi; c0 += chunk {
		c1 := min(c0+chunk, hi)
		for t := 0; t < n; t += tileMax {
			T := min(tileMax, n-t)
			for r := c0; r < c1; r += rmax {
				R := min(rmax, c1-r)
				k.tile(R, T)(k, w, rb, r, R, a, t, T, y[t*ldy:], ldy)
			}
		}
	}
}

// tile returns the R×T tile kernel: assembly where available, else Go.
func (k *Kernel) tile(R, T int) tileFunc {
	if f := k.tiles[R][T]; f != nil {
		return f
	}
	switch k.acts {
	case actsQ8:
		return goTileQ8
	case actsQ8K:
		return goTileQ8K
	}
	return goTileFloat
}

// gemmKernels is indexed by Type; filled at init, never changed after.
var gemmKernels [BF16 + 1]Kernel

func init() {
	for t := range gemmKernels {
		if Type(t).Supported() {
			gemmKernels[t] = Kernel{typ: Type(t), acts: actsF32}
		}
	}
	q8 := func(t Type, off int32, hasMin bool) {
		gemmKernels[t] = Kernel{typ: t, acts: actsQ8, off: off, hasMin: hasMin}
	}
	q8(Q8_0, 128, false)
	q8(Q4_0, 8, false)
	q8(Q5_0, 16, false)
	q8(Q4_1, 0, true)
	q8(Q5_1, 0, true)
	for _, t := range []Type{Q4_K, Q5_K, Q6_K} {
		gemmKernels[t] = Kernel{typ: t, acts: actsQ8K}
	}
	initAsm()
}

// Kernels reports which code the matrix products use on this machine, for
// logs and benchmarks: "avx512vnni" or "avx2" on amd64, "neon-dotprod" or
// "neon" on arm64, else "go".
func Kernels() string { return asmLevel }
