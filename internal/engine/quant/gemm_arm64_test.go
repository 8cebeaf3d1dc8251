//go:build !purego

package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"golang.org/x/sys/cpu"
)

// The kernels chosen at init follow the CPU's features: SDOT tiles where it
// has the dot product extension, the plain NEON ones where it does not.
// AUTOGLM_TEST_KERNELS, when set, names the choice the test run expects
// (the test script runs this package on emulated CPUs with and without
// the extension).
func TestNEONDispatch(t *testing.T) {
	want := "go"
	switch {
	case cpu.ARM64.HasASIMD && cpu.ARM64.HasASIMDDP:
		want = "neon-dotprod"
	case cpu.ARM64.HasASIMD:
		want = "neon"
	}
	if got := Kernels(); got != want {
		t.Fatalf("Kernels() = %q on a CPU with ASIMD=%v ASIMDDP=%v, want %q", got, cpu.ARM64.HasASIMD, cpu.ARM64.HasASIMDDP, want)
	}
	if env := os.Getenv("AUTOGLM_TEST_KERNELS"); env != "" && env != want {
		t.Fatalf("Kernels() = %q, the test run expects %q", want, env)
	}
	if want == "go" {
		return
	}
	for _, typ := range []Type{F16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K} {
		k, _ := KernelFor(typ)
		for T := 1; T <= tileMax; T++ {
			if k.tiles[1][T] == nil {
				t.Errorf("%v: no NEON tile for one row by %d", typ, T)
			}
		}
	}
}

// Both NEON variants (the SDOT one only where the CPU has it) agree with
// the portable tiles for every type, length class, batch size and row
// range; the variant init chose is also held to the float64 reference by
// TestMulRowsMatchesReference.
func TestNEONTilesMatchPortable(t *testing.T) {
	if !hasNEON {
		t.Skip("no NEON on this CPU")
	}
	variants := []bool{false}
	if hasDotProd {
		variants = append(variants, true)
	}
	rng := rand.New(rand.NewPCG(25, 26))
	for _, dotprod := range variants {
		for _, typ := range []Type{F32, F16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K} {
			k, _ := KernelFor(typ)
			g := genericKernel(k)
			v := genericKernel(k)
			installNEON(v, dotprod)
			for _, cols := range colsFor(typ) {
				t.Run(fmt.Sprintf("dotprod=%v/%v/%d", dotprod, typ, cols), func(t *testing.T) {
					const rows = 7
					w := testData(rng, rows*cols)
					enc, _ := Quantize(typ, w)
					for _, n := range []int{1, 2, 3, 4, 5, 9} {
						x := testData(rng, n*cols)
						var a Acts
						k.QuantizeActs(&a, x, n, cols)
						for _, rr := range [][2]int{{0, rows}, {2, 5}} {
							lo, hi := rr[0], rr[1]
							got := make([]float32, n*rows)
							want := make([]float32, n*rows)
							v.MulRows(enc, lo, hi, &a, got, rows)
							g.MulRows(enc, lo, hi, &a, want, rows)
							for i := range got {
								if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*math.Abs(float64(want[i]))+1e-3 {
									t.Fatalf("n %d rows [%d,%d): y[%d] = %g, portable %g", n, lo, hi, i, got[i], want[i])
								}
							}
						}
					}
				})
			}
		}
	}
}
