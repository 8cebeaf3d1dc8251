//go:build !purego

package quant

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// The AVX-VNNI tiles run only on CPUs with AVX-VNNI and without AVX-512
// VNNI; they are installed into a copy of each kernel and checked against
// the portable tiles wherever the CPU can run them.
func TestAVXVNNITilesMatchPortable(t *testing.T) {
	if !cpuHasAVX2() || !cpu.X86.HasAVXVNNI {
		t.Skip("no AVX-VNNI on this CPU")
	}
	matchTier(t, installAVXVNNI, []Type{Q8_0, Q4_0, Q5_0, Q4_K, Q6_K})
}

// BenchmarkTiers times one matrix-vector product (a decoding step's
// shape) and a 4-row product per weight type on each tier this CPU can
// run: the portable tiles, AVX2, AVX-VNNI and the tier chosen at init.
func BenchmarkTiers(b *testing.B) {
	rng := rand.New(rand.NewPCG(27, 28))
	const rows, cols = 896, 4864
	tiers := []struct {
		name    string
		ok      bool
		install func(*Kernel)
	}{
		{"go", true, func(*Kernel) {}},
		{"avx2", cpuHasAVX2(), installAVX2},
		{"avxvnni", cpuHasAVX2() && cpu.X86.HasAVXVNNI, installAVXVNNI},
		{"chosen-" + asmLevel, true, nil},
	}
	for _, typ := range []Type{Q8_0, Q4_0, Q4_K, Q6_K} {
		w := make([]float32, rows*cols)
		for i := range w {
			w[i] = float32(rng.NormFloat64())
		}
		enc, _ := Quantize(typ, w)
		k, _ := KernelFor(typ)
		for _, n := range []int{1, 4} {
			var a Acts
			k.QuantizeActs(&a, w[:n*cols], n, cols)
			y := make([]float32, n*rows)
			for _, tr := range tiers {
				if !tr.ok {
					continue
				}
				v := k
				if tr.install != nil {
					v = genericKernel(k)
					tr.install(v)
				}
				b.Run(fmt.Sprintf("%v/n=%d/%s", typ, n, tr.name), func(b *testing.B) {
					c0 := cpuTime()
					for b.Loop() {
						v.MulRows(enc, 0, rows, &a, y, rows)
					}
					b.ReportMetric(float64(len(enc))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
					if c := (cpuTime() - c0).Seconds(); c > 0 {
						b.ReportMetric(float64(len(enc))*float64(b.N)/c/1e9, "GB/cpu-s")
					}
				})
			}
		}
	}
}
