package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// packedTypes are the weight types that may have packed tiles (Q8_0, Q5_0,
// Q4_K, Q6_K: a whole copy in huge pages).
var packedTypes = []Type{Q4_0, F16, Q8_0, Q5_0, Q4_K, Q6_K}

// TestMulRowsPackedMatchesReference checks the packed tiles, where this CPU
// has them, against a float64 product of the dequantised weights and
// activations, for every length class, activation row count (full and
// partial groups of 8), and row ranges that start and end inside a group
// of 16 or hold no whole group.
func TestMulRowsPackedMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, typ := range packedTypes {
		k, _ := KernelFor(typ)
		for _, cols := range colsFor(typ) {
			for _, rows := range []int{16, 35, 48, 67} {
				t.Run(fmt.Sprintf("%v/%dx%d", typ, rows, cols), func(t *testing.T) {
					w := testData(rng, rows*cols)
					enc, err := Quantize(typ, w)
					if err != nil {
						t.Fatal(err)
					}
					p := k.Pack(enc, rows, cols)
					if p == nil {
						t.Skip("no packed tiles on this CPU or build")
					}
					deq := make([]float32, len(w))
					if err := Dequantize(typ, enc, deq); err != nil {
						t.Fatal(err)
					}
					for _, n := range []int{1, 2, 4, 5, 7, 8, 9, 17} {
						x := testData(rng, n*cols)
						var a Acts
						k.QuantizeActs(&a, x, n, cols)
						for _, rr := range [][2]int{{0, rows}, {3, rows - 2}, {16, rows}, {5, 12}, {0, 16}} {
							lo, hi := rr[0], rr[1]
							ldy := rows + 5
							y := make([]float32, n*ldy)
							for i := range y {
								y[i] = float32(math.NaN())
							}
							k.MulRowsPacked(enc, p, lo, hi, &a, y, ldy)
							for tt := range n {
								for r := range ldy {
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
				})
			}
		}
	}
}

// Activations prepared for a packed kernel hold the same rows in both
// layouts, whether quantised in one call or in row ranges (as the model's
// workers do).
func TestPackedActsLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	k, _ := KernelFor(Q4_0)
	if !k.packs() {
		t.Skip("no packed tiles on this CPU or build")
	}
	const n, cols = 11, 96
	x := testData(rng, n*cols)
	var a, b Acts
	k.QuantizeActs(&a, x, n, cols)
	k.PrepareActs(&b, x, n, cols)
	for _, r := range [][2]int{{5, 11}, {0, 3}, {3, 5}} {
		k.QuantizeActsRows(&b, r[0], r[1])
	}
	if string(a.pk) != string(b.pk) {
		t.Fatal("packed activations differ between one call and row ranges")
	}
	nb := cols / 32
	for r := range n {
		for bl := range nb {
			blk := a.pk[((r/pkRows)*nb+bl)*pkBlock:]
			var sum int32
			for j := range 32 {
				q := int8(blk[(r%pkRows)*32+j])
				if q != a.qs[r*cols+bl*32+j] {
					t.Fatalf("row %d block %d quant %d = %d, want %d", r, bl, j, q, a.qs[r*cols+bl*32+j])
				}
				sum += int32(q)
			}
			d := math.Float32frombits(uint32(blk[256+4*(r%pkRows)]) | uint32(blk[257+4*(r%pkRows)])<<8 | uint32(blk[258+4*(r%pkRows)])<<16 | uint32(blk[259+4*(r%pkRows)])<<24)
			if d != a.dv[(r*nb+bl)*8] {
				t.Fatalf("row %d block %d scale %g, want %g", r, bl, d, a.dv[(r*nb+bl)*8])
			}
			c := int32(uint32(blk[288+4*(r%pkRows)]) | uint32(blk[289+4*(r%pkRows)])<<8 | uint32(blk[290+4*(r%pkRows)])<<16 | uint32(blk[291+4*(r%pkRows)])<<24)
			if c != -8*sum {
				t.Fatalf("row %d block %d correction %d, want %d", r, bl, c, -8*sum)
			}
		}
	}
}

// BenchmarkPacked compares the packed tiles with the ordinary ones on the
// same matrix in one run (prompt: 128 activation rows; generation: 1),
// reporting multiply-adds per wall second and per CPU second (the machine
// may be shared).
func BenchmarkPacked(b *testing.B) {
	rng := rand.New(rand.NewPCG(35, 36))
	for _, typ := range packedTypes {
		k, _ := KernelFor(typ)
		for _, sh := range [][2]int{{896, 896}, {4864, 896}, {896, 4864}, {151936, 896}} {
			if sh[0] > 10000 && typ != F16 {
				continue
			}
			rows, cols := sh[0], sh[1]
			w := make([]float32, rows*cols)
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			enc, _ := Quantize(typ, w)
			p := k.Pack(enc, rows, cols)
			for _, n := range []int{1, 128} {
				if n > 1 && rows > 10000 {
					continue
				}
				var a Acts
				y := make([]float32, n*rows)
				k.QuantizeActs(&a, w[:n*cols], n, cols)
				for _, packed := range []bool{false, true} {
					if packed && p == nil {
						continue
					}
					b.Run(fmt.Sprintf("%v/%dx%d/n=%d/packed=%v", typ, rows, cols, n, packed), func(b *testing.B) {
						c0 := cpuTime()
						for b.Loop() {
							if packed {
								k.MulRowsPacked(enc, p, 0, rows, &a, y, rows)
							} else {
								k.MulRows(enc, 0, rows, &a, y, rows)
							}
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
	}
}

// TestPackedGemvMatchesTileExactly checks the packed matrix-vector kernels
// of decoding (Q4_0, F16), where this CPU has them, against the one-row
// packed tiles they stand in for, bit for bit (so greedy text does not change with it), for
// every length class and row ranges that start and end inside a group.
func TestPackedGemvMatchesTileExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(37, 38))
	for _, typ := range packedTypes {
		k, _ := KernelFor(typ)
		if k.pgemv == nil && k.pgemvF == nil {
			continue
		}
		tiles := *k
		tiles.pgemv = nil
		tiles.pgemvF = nil
		for _, cols := range colsFor(typ) {
			for _, rows := range []int{16, 48, 67, 149} {
				enc, err := Quantize(typ, testData(rng, rows*cols))
				if err != nil {
					t.Fatal(err)
				}
				p := k.Pack(enc, rows, cols)
				var a Acts
				k.QuantizeActs(&a, testData(rng, cols), 1, cols)
				for _, rr := range [][2]int{{0, rows}, {3, rows - 2}, {16, rows}, {0, 16}, {5, 12}} {
					lo, hi := rr[0], rr[1]
					got := make([]float32, rows)
					want := make([]float32, rows)
					k.MulRowsPacked(enc, p, lo, hi, &a, got, rows)
					tiles.MulRowsPacked(enc, p, lo, hi, &a, want, rows)
					for r := range rows {
						if math.Float32bits(got[r]) != math.Float32bits(want[r]) {
							t.Fatalf("%v %dx%d rows [%d,%d): y[%d] = %g, packed tile %g", typ, rows, cols, lo, hi, r, got[r], want[r])
						}
					}
				}
			}
		}
	}
}

// TestPackAllMatchesPack checks that packing several matrices into one
// allocation gives each the bytes Pack gives it alone, nil where Pack
// gives nil, and a total that holds them all.
func TestPackAllMatchesPack(t *testing.T) {
	rng := rand.New(rand.NewPCG(39, 40))
	var jobs []PackJob
	for _, typ := range packedTypes {
		k, _ := KernelFor(typ)
		for _, sh := range [][2]int{{35, 96}, {8, 64}, {16, 896}, {67, 32 * 7}} {
			rows, cols := sh[0], sh[1]
			if typ.BlockSize() == qkK {
				cols = colsFor(typ)[rows%3]
			}
			enc, err := Quantize(typ, testData(rng, rows*cols))
			if err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, PackJob{K: k, W: enc, Rows: rows, Cols: cols})
		}
	}
	got, total := PackAll(jobs)
	var sum int64
	for i, j := range jobs {
		want := j.K.Pack(j.W, j.Rows, j.Cols)
		if (want == nil) != (got[i] == nil) {
			t.Fatalf("job %d (%v %dx%d): PackAll nil=%v, Pack nil=%v", i, j.K.Type(), j.Rows, j.Cols, got[i] == nil, want == nil)
		}
		if want == nil {
			continue
		}
		if string(got[i].buf) != string(want.buf) {
			t.Fatalf("job %d (%v %dx%d): PackAll's bytes differ from Pack's", i, j.K.Type(), j.Rows, j.Cols)
		}
		if uintptr(unsafe.Pointer(&got[i].buf[0]))%64 != 0 {
			t.Fatalf("job %d: packed copy not 64-byte aligned", i)
		}
		sum += got[i].Bytes()
	}
	if sum == 0 && total != 0 || sum > total {
		t.Fatalf("PackAll holds %d bytes for copies of %d", total, sum)
	}
}
