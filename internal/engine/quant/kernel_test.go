package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

var supportedTypes = []Type{F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K}

// maxErr is the largest allowed |decoded - original| per element, as a
// fraction of the largest magnitude in the element's (super-)block. The
// numbers follow from each format's step size: e.g. Q4_0 steps by amax/8
// and its clamped end can be one full step off; K-quants add the error of
// their 6-bit (or int8) sub-block scales.
var maxErr = map[Type]float64{
	F32:  0,
	F16:  1.0 / 2048,
	BF16: 1.0 / 256,
	Q8_0: 0.0045,
	Q4_0: 0.126,
	Q4_1: 0.07,
	Q5_0: 0.063,
	Q5_1: 0.034,
	Q4_K: 0.1,
	Q5_K: 0.05,
	Q6_K: 0.04,
}

// testData returns n values mixing blocks of different characters: normal
// noise, all-positive, all-negative, constant, zero, and one outlier.
func testData(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	seg := func(k int) []float32 { // k-th 256-element chunk, if present
		if (k+1)*256 <= n {
			return x[k*256 : (k+1)*256]
		}
		return nil
	}
	if s := seg(1); s != nil {
		for i := range s {
			s[i] = float32(rng.Float64()*3 + 0.5)
		}
	}
	if s := seg(2); s != nil {
		for i := range s {
			s[i] = -float32(rng.Float64() * 0.01)
		}
	}
	if s := seg(3); s != nil {
		for i := range s {
			s[i] = 0.25
		}
	}
	if s := seg(4); s != nil {
		clear(s)
	}
	if s := seg(5); s != nil {
		s[7] = 40
	}
	return x
}

func TestQuantizeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := testData(rng, 256*8)
	for _, typ := range supportedTypes {
		t.Run(typ.String(), func(t *testing.T) {
			enc, err := Quantize(typ, x)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := RowBytes(typ, len(x)); len(enc) != want {
				t.Fatalf("encoded %d bytes, want %d", len(enc), want)
			}
			got := make([]float32, len(x))
			if err := Dequantize(typ, enc, got); err != nil {
				t.Fatal(err)
			}
			bs := max(typ.BlockSize(), 32)
			var worst float64
			for b := 0; b < len(x); b += bs {
				var amax float64
				for _, v := range x[b : b+bs] {
					amax = max(amax, math.Abs(float64(v)))
				}
				for i := b; i < b+bs; i++ {
					e := math.Abs(float64(got[i] - x[i]))
					if amax > 0 {
						worst = max(worst, e/amax)
					}
					if e > maxErr[typ]*amax {
						t.Fatalf("element %d: %g decoded as %g (error %.3g of block max %g, limit %g)",
							i, x[i], got[i], e/amax, amax, maxErr[typ])
					}
				}
			}
			t.Logf("worst error %.4g of block max", worst)
		})
	}
}

func TestDotMatchesDequantized(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const rows, cols = 7, 512
	w := testData(rng, rows*cols)
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, typ := range supportedTypes {
		t.Run(typ.String(), func(t *testing.T) {
			enc, err := Quantize(typ, w)
			if err != nil {
				t.Fatal(err)
			}
			deq := make([]float32, len(w))
			if err := Dequantize(typ, enc, deq); err != nil {
				t.Fatal(err)
			}
			rb, _ := RowBytes(typ, cols)
			y := make([]float32, rows)
			MatVec(typ, enc, rows, cols, x, y)
			for r := 0; r < rows; r++ {
				var want, mag float64
				for c := 0; c < cols; c++ {
					p := float64(deq[r*cols+c]) * float64(x[c])
					want += p
					mag += math.Abs(p)
				}
				got := Dot(typ, enc[r*rb:(r+1)*rb], x)
				if math.Abs(float64(got)-want) > 1e-5*mag {
					t.Errorf("row %d: Dot = %g, want %g (|w|·|x| = %g)", r, got, want, mag)
				}
				if y[r] != got {
					t.Errorf("row %d: MatVec = %g, Dot = %g", r, y[r], got)
				}
			}
		})
	}
}

// Odd lengths exercise the scalar tails of the unrolled float kernels.
func TestDotTails(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, typ := range []Type{F32, F16, BF16} {
		for n := 1; n <= 9; n++ {
			w := testData(rng, n)
			x := testData(rng, n)
			enc, _ := Quantize(typ, w)
			deq := make([]float32, n)
			_ = Dequantize(typ, enc, deq)
			var want float64
			for i := range deq {
				want += float64(deq[i]) * float64(x[i])
			}
			if got := Dot(typ, enc, x); !closeRel(float64(got), want, 1e-5) {
				t.Errorf("%v n=%d: Dot = %g, want %g", typ, n, got, want)
			}
		}
	}
}

func TestKernelsDoNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const rows, cols = 4, 256
	w := testData(rng, rows*cols)
	x := testData(rng, cols)
	y := make([]float32, rows)
	for _, typ := range supportedTypes {
		enc, _ := Quantize(typ, w)
		if n := testing.AllocsPerRun(10, func() { MatVec(typ, enc, rows, cols, x, y) }); n != 0 {
			t.Errorf("%v: MatVec allocates %v times per call", typ, n)
		}
		if n := testing.AllocsPerRun(10, func() { _ = Dot(typ, enc, x) }); n != 0 {
			t.Errorf("%v: Dot allocates %v times per call", typ, n)
		}
	}
}

func TestQuantizeConstantAndZero(t *testing.T) {
	for _, typ := range supportedTypes {
		for _, v := range []float32{0, 1, -3} {
			x := make([]float32, 256)
			for i := range x {
				x[i] = v
			}
			enc, _ := Quantize(typ, x)
			got := make([]float32, len(x))
			_ = Dequantize(typ, enc, got)
			for i := range got {
				if math.Abs(float64(got[i]-v)) > maxErr[typ]*math.Abs(float64(v)) {
					t.Fatalf("%v: constant %g decoded as %g at %d", typ, v, got[i], i)
				}
			}
		}
	}
}

// benchCols rounds cols up to a whole number of blocks: the K-quants cannot
// encode a 896-wide row (ggml falls back to other types for such tensors).
func benchCols(t Type, cols int) int {
	bs := t.BlockSize()
	return (cols + bs - 1) / bs * bs
}

func BenchmarkMatVec(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, typ := range supportedTypes {
		for _, shape := range [][2]int{{896, 896}, {4864, 896}} {
			rows, cols := shape[0], benchCols(typ, shape[1])
			b.Run(fmt.Sprintf("%v/%dx%d", typ, rows, cols), func(b *testing.B) {
				w := make([]float32, rows*cols)
				for i := range w {
					w[i] = float32(rng.NormFloat64())
				}
				enc, err := Quantize(typ, w)
				if err != nil {
					b.Fatal(err)
				}
				x := w[:cols]
				y := make([]float32, rows)
				b.SetBytes(int64(len(enc)))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					MatVec(typ, enc, rows, cols, x, y)
				}
				b.ReportMetric(float64(rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gmac/s")
			})
		}
	}
}
