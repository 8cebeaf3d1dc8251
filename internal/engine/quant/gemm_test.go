package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/hugepage"
)

// actsValue returns activation element j of row t as the kernels see it
// (the dequantised companion value).
func actsValue(a *Acts, t, j int) float64 {
	switch a.kind {
	case actsQ8:
		nb := a.cols / 32
		return float64(a.dv[(t*nb+j/32)*8]) * float64(a.qs[t*a.cols+j])
	case actsQ8K:
		nb := a.cols / qkK
		return float64(a.dv[(t*nb+j/qkK)*16]) * float64(a.qs[t*a.cols+j])
	}
	return float64(a.f[t*a.cols+j])
}

// colsFor lists the row lengths that exercise each length class of a type:
// one block, two, an odd count (the assembly takes blocks in pairs), the
// model widths, and for float types lengths off the 16-element vector.
func colsFor(t Type) []int {
	switch t.BlockSize() {
	case 32:
		return []int{32, 64, 96, 32 * 7, 896}
	case qkK:
		return []int{256, 512, 768, 4864}
	}
	return []int{1, 7, 16, 17, 64, 100, 896}
}

// genericKernel is k without its assembly tiles: the portable reference.
func genericKernel(k *Kernel) *Kernel {
	g := *k
	g.tiles = [tileMax + 1][tileMax + 1]tileFunc{}
	g.gemv = nil
	return &g
}

// TestMulRowsMatchesReference checks every kernel (assembly where the CPU
// has it, and the portable tiles) against a float64 product of the
// dequantised weights and dequantised activations, for every type, length
// class, tile shape and row range.
func TestMulRowsMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, typ := range supportedTypes {
		k, err := KernelFor(typ)
		if err != nil {
			t.Fatal(err)
		}
		for _, cols := range colsFor(typ) {
			t.Run(fmt.Sprintf("%v/%d", typ, cols), func(t *testing.T) {
				const rows = 11
				w := testData(rng, rows*cols)
				enc, err := Quantize(typ, w)
				if err != nil {
					t.Fatal(err)
				}
				deq := make([]float32, len(w))
				if err := Dequantize(typ, enc, deq); err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{1, 2, 3, 4, 5, 9} {
					x := testData(rng, n*cols)
					var a Acts
					k.QuantizeActs(&a, x, n, cols)
					for _, kern := range []*Kernel{k, genericKernel(k)} {
						for _, rr := range [][2]int{{0, rows}, {1, 4}, {3, 10}, {5, 6}} {
							lo, hi := rr[0], rr[1]
							ldy := rows + 3
							y := make([]float32, n*ldy)
							for i := range y {
								y[i] = float32(math.NaN())
							}
							kern.MulRows(enc, lo, hi, &a, y, ldy)
							for tt := range n {
								for r := range rows {
									got := y[tt*ldy+r]
									if r < lo || r >= hi {
										if !math.IsNaN(float64(got)) {
											t.Fatalf("n=%d rows [%d,%d): wrote row %d", n, lo, hi, r)
										}
										continue
									}
									var want, mag float64
									for j := range cols {
										p := float64(deq[r*cols+j]) * actsValue(&a, tt, j)
										want += p
										mag += math.Abs(p)
									}
									if math.Abs(float64(got)-want) > 2e-5*mag+1e-30 {
										t.Fatalf("n=%d rows [%d,%d) y[%d][%d] = %g, want %g (Σ|w·x| = %g)", n, lo, hi, tt, r, got, want, mag)
									}
								}
							}
						}
					}
				}
			})
		}
	}
}

// The quantised activations must stay close to the floats they came from:
// within half a step of each block's scale.
func TestQuantizeActsError(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	x := testData(rng, 3*512)
	for _, typ := range []Type{Q8_0, Q4_K} {
		k, _ := KernelFor(typ)
		var a Acts
		k.QuantizeActs(&a, x, 3, 512)
		checkActs(t, &a, x)
	}
}

// checkActs verifies the invariants of a quantised activation buffer
// against its source: every value within half a step, quants in range,
// and the stored sums and corrections consistent with the quants.
func checkActs(t *testing.T, a *Acts, x []float32) {
	t.Helper()
	bs := 32
	if a.kind == actsQ8K {
		bs = qkK
	}
	for r := range a.n {
		for b := 0; b < a.cols; b += bs {
			var amax float64
			for _, v := range x[r*a.cols+b : r*a.cols+b+bs] {
				amax = max(amax, math.Abs(float64(v)))
			}
			step := amax / 127
			var sum int32
			for j := b; j < b+bs; j++ {
				q := a.qs[r*a.cols+j]
				if q < -127 {
					t.Fatalf("quant %d out of range", q)
				}
				sum += int32(q)
				got := actsValue(a, r, j)
				// The Q8 scale is rounded to f16: 2^-11 relative, or 2^-25
				// absolute where it is subnormal, times up to 127.
				if e := math.Abs(got - float64(x[r*a.cols+j])); e > step*0.5+amax*1e-3+127*0x1p-25 {
					t.Fatalf("row %d element %d: %g quantised as %g (step %g)", r, j, x[r*a.cols+j], got, step)
				}
			}
			switch a.kind {
			case actsQ8:
				i := (r*a.cols/32 + b/32) * 8
				if a.cv[i] != -16*sum {
					t.Fatalf("row %d block %d: correction %d, want %d", r, b/32, a.cv[i], -16*sum)
				}
			case actsQ8K:
				i := (r*a.cols/qkK + b/qkK) * 16
				var tot int32
				for g := range 16 {
					tot += a.bs[i+g]
				}
				if tot != sum {
					t.Fatalf("row %d super-block %d: group sums %d, want %d", r, b/qkK, tot, sum)
				}
			}
		}
	}
}

func FuzzQuantizeActs(f *testing.F) {
	f.Add(make([]byte, 1024), false)
	f.Add([]byte{0x7f, 0x7f, 0x7f, 0x7f, 1, 2, 3, 4}, true)
	f.Fuzz(func(t *testing.T, data []byte, k bool) {
		bs := 32
		typ := Q8_0
		if k {
			bs, typ = qkK, Q4_K
		}
		n := len(data) / 4 / bs * bs
		if n == 0 {
			return
		}
		x := make([]float32, n)
		for i := range x {
			v := math.Float32frombits(uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24)
			if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 1e6 {
				v = 0 // activations are finite, and the f16 scale caps them (see Acts)
			}
			x[i] = v
		}
		kern, _ := KernelFor(typ)
		var a Acts
		kern.QuantizeActs(&a, x, 1, n)
		checkActs(t, &a, x)
		if !k {
			// The assembly quantiser, where it ran, matches the Go one.
			var b Acts
			kern.PrepareActs(&b, x, 1, n)
			b.quantQ8Row(0)
			for i := range a.qs {
				if a.qs[i] != b.qs[i] {
					t.Fatalf("quant %d = %d, portable %d", i, a.qs[i], b.qs[i])
				}
			}
			for i := range a.dv {
				if a.dv[i] != b.dv[i] || a.cv[i] != b.cv[i] || a.sv[i] != b.sv[i] {
					t.Fatalf("lane %d differs from the portable quantiser", i)
				}
			}
		}
	})
}

func TestDotF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, n := range []int{0, 1, 15, 16, 17, 63, 64, 65, 200, 1000} {
		a, b := testData(rng, n), testData(rng, n)
		var want, mag float64
		for i := range a {
			want += float64(a[i]) * float64(b[i])
			mag += math.Abs(float64(a[i]) * float64(b[i]))
		}
		if got := DotF32(a, b); math.Abs(float64(got)-want) > 1e-5*mag {
			t.Errorf("n=%d: DotF32 = %g, want %g", n, got, want)
		}
		y := append([]float32(nil), b...)
		AxpyF32(0.5, a, y)
		for i := range y {
			if w := b[i] + 0.5*a[i]; math.Abs(float64(y[i]-w)) > 1e-6*math.Abs(float64(w))+1e-7 {
				t.Fatalf("n=%d: AxpyF32 y[%d] = %g, want %g", n, i, y[i], w)
			}
		}
	}
}

func BenchmarkMulRows(b *testing.B) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, typ := range []Type{F16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K} {
		for _, n := range []int{1, 4, 16} {
			rows, cols := 1024, 896
			if typ.BlockSize() == qkK {
				cols = 1024
			}
			b.Run(fmt.Sprintf("%v/n=%d", typ, n), func(b *testing.B) {
				w := make([]float32, rows*cols)
				for i := range w {
					w[i] = float32(rng.NormFloat64())
				}
				enc, _ := Quantize(typ, w)
				k, _ := KernelFor(typ)
				var a Acts
				x := w[:n*cols]
				y := make([]float32, n*rows)
				k.QuantizeActs(&a, x, n, cols)
				b.SetBytes(int64(len(enc)))
				b.ReportAllocs()
				for b.Loop() {
					k.MulRows(enc, 0, rows, &a, y, rows)
				}
				b.ReportMetric(float64(rows*cols*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gmac/s")
			})
		}
	}
}

// On a CPU with AVX-512 VNNI the kernels above must have run the assembly
// tiles, not only the portable ones.
func TestAssemblyInUse(t *testing.T) {
	t.Logf("kernels: %s", Kernels())
	if Kernels() != "avx512vnni" {
		t.Skip("no AVX-512 VNNI assembly on this CPU or build")
	}
	for _, typ := range []Type{F32, F16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K} {
		k, _ := KernelFor(typ)
		for R := 1; R <= tileMax; R++ {
			for T := 1; T <= tileMax; T++ {
				if k.tiles[R][T] == nil {
					t.Errorf("%v: no assembly for the %dx%d tile", typ, R, T)
				}
			}
		}
	}
}

// Every assembly tile shape agrees with the portable tile of the same
// shape (MulRows picks only some shapes for a given batch size).
func TestTilesMatchPortable(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for _, typ := range supportedTypes {
		k, _ := KernelFor(typ)
		g := genericKernel(k)
		for _, cols := range colsFor(typ) {
			w := testData(rng, tileMax*cols)
			enc, _ := Quantize(typ, w)
			rb := len(enc) / tileMax
			x := testData(rng, tileMax*cols)
			var a Acts
			k.QuantizeActs(&a, x, tileMax, cols)
			for R := 1; R <= tileMax; R++ {
				for T := 1; T <= tileMax; T++ {
					if k.tiles[R][T] == nil {
						continue
					}
					got := make([]float32, tileMax*tileMax)
					want := make([]float32, tileMax*tileMax)
					k.tile(R, T)(k, enc, rb, 0, R, &a, 0, T, got, tileMax)
					g.tile(R, T)(g, enc, rb, 0, R, &a, 0, T, want, tileMax)
					for i := range got {
						if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*math.Abs(float64(want[i]))+1e-3 {
							t.Fatalf("%v cols %d tile %dx%d: y[%d] = %g, portable %g", typ, cols, R, T, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// The vectorised activation quantiser gives exactly the bytes of the
// portable one.
func TestQuantizeActsVecExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, cols := range []int{32, 64, 96, 896} {
		x := testData(rng, 3*cols)
		x[5] = 0
		for i := 32; i < 64 && i < cols; i++ {
			x[i] = 0 // an all-zero block
		}
		for _, typ := range []Type{Q8_0, Q4_0, Q5_0, Q4_1} {
			k, _ := KernelFor(typ)
			var a, b Acts
			k.PrepareActs(&a, x, 3, cols)
			k.PrepareActs(&b, x, 3, cols)
			for r := range 3 {
				quantQ8RowVec(&a, r)
				b.quantQ8Row(r)
			}
			if !quantQ8RowVec(&a, 0) {
				t.Skip("no vectorised quantiser on this CPU or build")
			}
			for i := range a.qs {
				if a.qs[i] != b.qs[i] {
					t.Fatalf("%v cols %d: quant %d = %d, portable %d", typ, cols, i, a.qs[i], b.qs[i])
				}
			}
			for i := range a.dv {
				if a.dv[i] != b.dv[i] || a.cv[i] != b.cv[i] || a.sv[i] != b.sv[i] {
					t.Fatalf("%v cols %d: lane %d: (%g %d %g), portable (%g %d %g)", typ, cols, i, a.dv[i], a.cv[i], a.sv[i], b.dv[i], b.cv[i], b.sv[i])
				}
			}
		}
	}
}

// The AVX2 tiles run only on CPUs without AVX-512 VNNI; this machine may
// have it, so they are installed into a copy of the kernel and checked
// against the portable tiles here.
func TestAVX2TilesMatchPortable(t *testing.T) {
	if !cpuHasAVX2() {
		t.Skip("no AVX2 assembly on this CPU or build")
	}
	matchTier(t, installAVX2, []Type{F32, F16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K})
}

// matchTier installs a tier's tiles into a copy of each type's kernel and
// checks its products against the portable tiles, for every length class
// and batch sizes that use each tile width.
func matchTier(t *testing.T, install func(*Kernel), types []Type) {
	t.Helper()
	rng := rand.New(rand.NewPCG(23, 24))
	for _, typ := range types {
		k, _ := KernelFor(typ)
		g := genericKernel(k)
		v := genericKernel(k)
		install(v)
		if v.tiles[1][1] == nil {
			t.Fatalf("%v: the tier installed no tile", typ)
		}
		for _, cols := range colsFor(typ) {
			const rows = 6
			w := testData(rng, rows*cols)
			enc, _ := Quantize(typ, w)
			for _, n := range []int{1, 3, 4, 9} {
				x := testData(rng, n*cols)
				var a Acts
				k.QuantizeActs(&a, x, n, cols)
				got := make([]float32, n*rows)
				want := make([]float32, n*rows)
				v.MulRows(enc, 0, rows, &a, got, rows)
				g.MulRows(enc, 0, rows, &a, want, rows)
				for i := range got {
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*math.Abs(float64(want[i]))+1e-3 {
						t.Fatalf("%v cols %d n %d: y[%d] = %g, portable %g", typ, cols, n, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// BenchmarkPrompt times the prompt-processing shapes of a Qwen2.5-0.5B
// layer (128 activation rows) per weight type.
func BenchmarkPrompt(b *testing.B) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, typ := range []Type{F16, Q8_0, Q4_0, Q6_K} {
		for _, sh := range [][2]int{{896, 896}, {4864, 896}, {896, 4864}} {
			rows, cols := sh[0], sh[1]
			if cols%typ.BlockSize() != 0 {
				continue
			}
			const n = 128
			b.Run(fmt.Sprintf("%v/%dx%d", typ, rows, cols), func(b *testing.B) {
				w := make([]float32, rows*cols)
				for i := range w {
					w[i] = float32(rng.NormFloat64())
				}
				enc, _ := Quantize(typ, w)
				k, _ := KernelFor(typ)
				var a Acts
				y := make([]float32, n*rows)
				k.QuantizeActs(&a, w[:n*cols], n, cols)
				c0 := cpuTime()
				for b.Loop() {
					k.MulRows(enc, 0, rows, &a, y, rows)
				}
				mac := float64(rows*cols*n) * float64(b.N)
				b.ReportMetric(mac/b.Elapsed().Seconds()/1e9, "Gmac/s")
				if c := (cpuTime() - c0).Seconds(); c > 0 {
					b.ReportMetric(mac/c/1e9, "Gmac/cpu-s")
				}
			})
		}
	}
}

// SwiGLU's vector loop agrees with the scalar formula across the range
// where e^-x moves from overflow to underflow, and on the tail elements.
func TestSwiGLU(t *testing.T) {
	const n = 16*40 + 7
	g := make([]float32, n)
	u := make([]float32, n)
	for i := range g {
		g[i] = -100 + 200*float32(i)/n
		u[i] = 1 + float32(i%5)
	}
	g[3], g[4], g[5] = 0, -1e-30, 1e-20
	dst := make([]float32, n)
	SwiGLU(dst, g, u)
	for i := range dst {
		x := float64(g[i])
		want := x / (1 + math.Exp(-x)) * float64(u[i])
		if math.Abs(float64(dst[i])-want) > 1e-6*math.Abs(want)+1e-30 {
			t.Fatalf("SwiGLU(%g)·%g = %g, want %g", g[i], u[i], dst[i], want)
		}
	}
}

// The vectorised Q8K quantiser gives exactly the bytes of the portable
// one: ties in magnitude (the first wins), an all-zero block, a block so
// small that its scale overflows, and a NaN, which the maximum skips.
func TestQuantizeActsQ8KVecExact(t *testing.T) {
	if quantQ8KRowAsm == nil {
		t.Skip("no vectorised Q8K quantiser on this CPU or build")
	}
	rng := rand.New(rand.NewPCG(27, 28))
	const n, cols = 3, 6 * qkK
	x := testData(rng, n*cols)
	x[10], x[200] = 50, -50 // the first of equal magnitudes sets the sign
	x[qkK+5], x[qkK+77] = -60, 60
	for i := 2 * qkK; i < 3*qkK; i++ {
		x[i] = 0
	}
	for i := 3 * qkK; i < 4*qkK; i++ {
		x[i] = 1e-40 * float32(i%7-3) // subnormal: -127/m overflows
	}
	x[4*qkK+9] = float32(math.NaN())
	x[cols+qkK] = float32(math.Inf(-1))
	k, _ := KernelFor(Q6_K)
	var a, b Acts
	k.PrepareActs(&a, x, n, cols)
	k.PrepareActs(&b, x, n, cols)
	k.QuantizeActsRows(&a, 0, n)
	for r := range n {
		b.quantQ8KRow(r)
	}
	for i := range a.qs {
		if a.qs[i] != b.qs[i] {
			t.Fatalf("quant %d = %d, portable %d", i, a.qs[i], b.qs[i])
		}
	}
	for i := range a.dv {
		if math.Float32bits(a.dv[i]) != math.Float32bits(b.dv[i]) || a.bs[i] != b.bs[i] {
			t.Fatalf("lane %d: scale %g sum %d, portable %g %d", i, a.dv[i], a.bs[i], b.dv[i], b.bs[i])
		}
	}
}

// The matrix-vector kernels (one activation row, what decoding runs) give
// every row exactly what the one-row tile gives: summation order and all,
// so that greedy text does not change with the path a product takes.
func TestGemvMatchesTileExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, typ := range supportedTypes {
		k, _ := KernelFor(typ)
		if k.gemv == nil {
			continue
		}
		cols := []int{64, 896, 4864}
		if typ.BlockSize() == qkK {
			cols = []int{256, 768, 4864}
		}
		for _, c := range cols {
			const rows = 37
			enc, _ := Quantize(typ, testData(rng, rows*c))
			rb := len(enc) / rows
			var a Acts
			k.QuantizeActs(&a, testData(rng, c), 1, c)
			for _, rr := range [][2]int{{0, rows}, {5, 6}, {3, 30}, {2, 36}, {1, rows}, {4, 7}} {
				lo, hi := rr[0], rr[1]
				got := make([]float32, rows)
				want := make([]float32, rows)
				if !k.gemv(enc, rb, lo, hi, &a, got) {
					t.Fatalf("%v cols %d: gemv declined an even row", typ, c)
				}
				for r := lo; r < hi; r++ {
					k.tile(1, 1)(k, enc, rb, r, 1, &a, 0, 1, want, rows)
				}
				for r := range rows {
					if math.Float32bits(got[r]) != math.Float32bits(want[r]) {
						t.Fatalf("%v cols %d rows [%d,%d): y[%d] = %g, one-row tile %g", typ, c, lo, hi, r, got[r], want[r])
					}
				}
			}
		}
	}
}

// BenchmarkGemv multiplies a weight matrix by one activation row, as
// decoding does, with the matrix-vector kernel and with the one-row tiles
// it replaces: "mem" streams 96 MiB, more than the last-level cache, so
// MB/s against the machine's memory read bandwidth says how close each is
// to the bound; "huge" is the same matrix in memory advised for 2 MiB
// pages (package hugepage, as a packed copy of 2 MiB or more always is),
// against the Go heap's 4 KiB pages of "mem"; "l2" repeats 512 KiB that
// stay in the L2 cache, which shows what the kernel's instructions alone
// allow (GB/cpu-s counts only the time the process ran, so it is the
// steadier figure on a shared machine).
func BenchmarkGemv(b *testing.B) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, c := range []struct {
		typ  Type
		size int
		name string
	}{{Q8_0, 96 << 20, "mem"}, {Q8_0, 96 << 20, "huge"}, {Q8_0, 512 << 10, "l2"},
		{Q4_0, 96 << 20, "mem"}, {Q4_0, 96 << 20, "huge"}, {Q4_0, 512 << 10, "l2"},
		{Q5_0, 96 << 20, "mem"}, {Q5_0, 96 << 20, "huge"}, {Q5_0, 512 << 10, "l2"},
		{Q4_K, 96 << 20, "mem"}, {Q4_K, 96 << 20, "huge"}, {Q4_K, 512 << 10, "l2"},
		{Q6_K, 96 << 20, "mem"}, {Q6_K, 96 << 20, "huge"}, {Q6_K, 512 << 10, "l2"},
		{F16, 96 << 20, "mem"}, {F16, 512 << 10, "l2"}} {
		typ := c.typ
		cols := 896
		if typ.BlockSize() == qkK {
			cols = 4864
		}
		rb, _ := RowBytes(typ, cols)
		rows := c.size / rb
		var enc []byte
		var a Acts
		k, _ := KernelFor(typ)
		tiles := *k
		tiles.gemv = nil
		ptiles := *k
		ptiles.pgemv = nil
		ptiles.pgemvF = nil
		y := make([]float32, rows)
		var p *Packed
		var hold *hugepage.Buffer
		// The matrix is made on first use, so that a -bench filter that
		// leaves this size out does not pay for it.
		setup := func() {
			if enc != nil {
				return
			}
			defer func() {
				if c.name == "huge" {
					h := hugepage.Alloc(len(enc))
					hold = h
					enc = append(h.Bytes()[:0], enc...)
				}
				p = k.Pack(enc, rows, cols)
			}()
			w := make([]float32, cols)
			enc = make([]byte, 0, rows*rb)
			for range rows {
				for i := range w {
					w[i] = float32(rng.NormFloat64())
				}
				e, _ := Quantize(typ, w)
				enc = append(enc, e...)
			}
			k.QuantizeActs(&a, w, 1, cols)
		}
		// packed: the layout decoding reads where the type has packed
		// tiles ([Kernel.Pack]); skipped where it has none.
		for _, kern := range []struct {
			name   string
			k      *Kernel
			packed bool
		}{{"gemv", k, false}, {"tiles", &tiles, false}, {"packed", k, true}, {"packedtile", &ptiles, true}} {
			b.Run(fmt.Sprintf("%v/%s/%s", typ, c.name, kern.name), func(b *testing.B) {
				setup()
				if kern.packed && p == nil {
					b.Skip("no packed tiles for this type on this CPU or build")
				}
				b.SetBytes(int64(len(enc)))
				cpu := cpuTime()
				for b.Loop() {
					if kern.packed {
						kern.k.MulRowsPacked(enc, p, 0, rows, &a, y, rows)
					} else {
						kern.k.MulRows(enc, 0, rows, &a, y, rows)
					}
				}
				b.ReportMetric(float64(len(enc))*float64(b.N)/(cpuTime()-cpu).Seconds()/1e9, "GB/cpu-s")
				runtime.KeepAlive(hold)
			})
		}
	}
}
