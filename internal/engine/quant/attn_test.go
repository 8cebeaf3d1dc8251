package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/fastmath"
)

// matMulRef is MatMulF32 in float64, the reference the kernels are held to.
func matMulRef(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float64, acc bool, c0 []float32, ldc int) {
	for i := range m {
		for j := range n {
			var s float64
			if acc {
				s = float64(c0[i*ldc+j])
			}
			for p := range k {
				s += float64(a[i*lda+p]) * float64(b[p*ldb+j])
			}
			c[i*n+j] = s
		}
	}
}

// checkMatMul runs mul on random m×k and k×n matrices with strides wider
// than the rows and compares it with the float64 reference; it also checks
// that C's padding between rows is left alone.
// checkTile4 holds a four-row tile of MatMulF32 (which returns how many
// columns it did, whole blocks of block columns) to the reference over
// every shape class, the Go form finishing the columns it leaves.
func checkTile4(t *testing.T, tile func(a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k, n int, acc bool) int, block int) {
	t.Helper()
	mm := func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
		i := 0
		for ; i+4 <= m; i += 4 {
			j := tile(a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, k, n, acc)
			if j != n/block*block {
				t.Fatalf("tile did %d of %d columns", j, n)
			}
			matMulGo(4, j, n, k, a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, acc)
		}
		matMulGo(m-i, 0, n, k, a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, acc)
	}
	for _, m := range []int{4, 8} {
		for _, n := range []int{16, 17, 31, 32, 48, 64, 65} {
			for _, k := range []int{1, 3, 64} {
				for _, acc := range []bool{false, true} {
					checkMatMul(t, mm, m, n, k, acc)
				}
			}
		}
	}
}

func checkMatMul(t *testing.T, mul func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool), m, n, k int, acc bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(m*1000+n), uint64(k)))
	lda, ldb, ldc := k+3, n+5, n+7
	a := make([]float32, m*lda)
	b := make([]float32, k*ldb)
	c := make([]float32, m*ldc)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range b {
		b[i] = float32(rng.NormFloat64())
	}
	for i := range c {
		c[i] = float32(rng.NormFloat64())
	}
	c0 := append([]float32(nil), c...)
	want := make([]float64, m*n)
	matMulRef(m, n, k, a, lda, b, ldb, want, acc, c0, ldc)
	mul(m, n, k, a, lda, b, ldb, c, ldc, acc)
	// Each product term is below ~|a||b|; float32 sums of k of them carry
	// a relative error of about k·2^-24 of the sum of magnitudes.
	tol := float64(k+2) * 1e-6 * 16
	for i := range m {
		for j := range ldc {
			got := c[i*ldc+j]
			if j >= n {
				if got != c0[i*ldc+j] {
					t.Fatalf("m=%d n=%d k=%d: padding c[%d][%d] changed", m, n, k, i, j)
				}
				continue
			}
			if d := math.Abs(float64(got) - want[i*n+j]); d > tol {
				t.Fatalf("m=%d n=%d k=%d acc=%v: c[%d][%d] = %g, want %g", m, n, k, acc, i, j, got, want[i*n+j])
			}
		}
	}
}

// TestMatMulF32 covers every row class (whole groups of four and each
// remainder), column class (32- and 16-column blocks and every tail) and
// short and long inner lengths, with and without accumulation.
func TestMatMulF32(t *testing.T) {
	for _, m := range []int{1, 2, 3, 4, 5, 7, 8, 9, 12} {
		for _, n := range []int{1, 7, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 96, 100} {
			for _, k := range []int{1, 2, 5, 64, 129} {
				for _, acc := range []bool{false, true} {
					checkMatMul(t, MatMulF32, m, n, k, acc)
				}
			}
		}
	}
}

func TestMatMulF32Empty(t *testing.T) {
	c := []float32{1, 2, 3, 4}
	MatMulF32(2, 2, 0, nil, 0, nil, 0, c, 2, true)
	if c[0] != 1 || c[3] != 4 {
		t.Fatalf("k=0 with acc changed C: %v", c)
	}
	MatMulF32(2, 2, 0, nil, 0, nil, 0, c, 2, false)
	for _, v := range c {
		if v != 0 {
			t.Fatalf("k=0 without acc left C = %v, want zeros", c)
		}
	}
}

// expCases are softmax-like rows: every length class of the eight-lane
// loop and its tail, with values from 0 down past the flush point.
func expRow(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch i % 5 {
		case 0:
			x[i] = float32(rng.NormFloat64() * 3)
		case 1:
			x[i] = -float32(rng.Float64() * 90)
		case 2:
			x[i] = float32(rng.Float64())
		default:
			x[i] = float32(rng.NormFloat64())
		}
	}
	return x
}

func TestExpSub(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 70; n++ {
		x := expRow(rng, n)
		m := MaxF32(x)
		want := make([]float32, n)
		var wantSum float64
		for i, v := range x {
			want[i] = fastmath.Exp(v - m)
			wantSum += float64(want[i])
		}
		got := append([]float32(nil), x...)
		sum := ExpSub(got, m)
		for i := range got {
			// A few ulp from the Go form (fused multiply-adds), and the
			// flush of arguments below -87.3 to a value below 2^-125.
			d := math.Abs(float64(got[i] - want[i]))
			if d > 4e-7*float64(want[i])+0x1p-125 {
				t.Fatalf("n=%d: e^(%g) = %g, want %g", n, x[i]-m, got[i], want[i])
			}
		}
		if math.Abs(sum-wantSum) > 1e-6*wantSum {
			t.Fatalf("n=%d: sum %g, want %g", n, sum, wantSum)
		}
	}
}

func TestScaleF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, round := range []bool{false, true} {
		for n := 1; n <= 40; n++ {
			x := make([]float32, n)
			for i := range x {
				// Include f16 subnormals, ties and overflow.
				x[i] = float32(rng.NormFloat64()) * float32(math.Pow(2, float64(rng.IntN(40)-25)))
			}
			x[0] = 1 + 1.0/2048 // a tie: rounds to even (1)
			a := float32(0.75)
			got := append([]float32(nil), x...)
			ScaleF32(got, a, round)
			for i, v := range x {
				w := v * a
				if round {
					w = F16ToF32(F32ToF16(w))
				}
				if got[i] != w {
					t.Fatalf("round=%v n=%d: %g·%g = %g, want %g", round, n, v, a, got[i], w)
				}
			}
		}
	}
}

// TestF16RowToF32 decodes every f16 value, in rows of every length class.
func TestF16RowToF32(t *testing.T) {
	src := make([]byte, 2*65536)
	for h := range 65536 {
		src[2*h], src[2*h+1] = byte(h), byte(h>>8)
	}
	dst := make([]float32, 65536)
	F16RowToF32(dst, src)
	for h := range 65536 {
		want := F16ToF32(uint16(h))
		if math.Float32bits(dst[h]) != math.Float32bits(want) && !(want != want && dst[h] != dst[h]) {
			t.Fatalf("f16 %#04x: got %g, want %g", h, dst[h], want)
		}
	}
	for n := 1; n <= 20; n++ {
		d := make([]float32, n)
		F16RowToF32(d, src[2*1000:])
		for i := range d {
			if d[i] != F16ToF32(uint16(1000+i)) {
				t.Fatalf("n=%d: element %d differs", n, i)
			}
		}
	}
}

func TestMaxF32(t *testing.T) {
	for _, c := range []struct {
		x    []float32
		want float32
	}{
		{[]float32{-3}, -3},
		{[]float32{-3, 2, 1}, 2},
		{[]float32{float32(math.Inf(-1)), -1e30}, -1e30},
	} {
		if got := MaxF32(c.x); got != c.want {
			t.Errorf("MaxF32(%v) = %g, want %g", c.x, got, c.want)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 1; n <= 70; n++ {
		x := expRow(rng, n)
		want := x[0]
		for _, v := range x {
			want = max(want, v)
		}
		if got := MaxF32(x); got != want {
			t.Fatalf("n=%d: MaxF32 = %g, want %g", n, got, want)
		}
	}
}

func BenchmarkMatMulF32(b *testing.B) {
	for _, s := range []struct{ m, n, k int }{{112, 64, 64}, {112, 64, 256}} {
		b.Run(fmt.Sprintf("%dx%dx%d", s.m, s.n, s.k), func(b *testing.B) {
			a := make([]float32, s.m*s.k)
			bb := make([]float32, s.k*s.n)
			c := make([]float32, s.m*s.n)
			b.SetBytes(int64(4 * (len(a) + len(bb))))
			for b.Loop() {
				MatMulF32(s.m, s.n, s.k, a, s.k, bb, s.n, c, s.n, false)
			}
			b.ReportMetric(float64(2*s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkExpSub(b *testing.B) {
	x := expRow(rand.New(rand.NewPCG(1, 1)), 2048)
	y := make([]float32, len(x))
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		copy(y, x)
		ExpSub(y, 90)
	}
}
