package quant

import (
	"encoding/binary"
	"math"
)

// Activations are quantised once per matrix product to the weight type's
// companion format, so that the inner loops multiply small integers:
//
//   - Q8 (for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): 32-element blocks, d = amax/127
//     rounded to f16 as ggml's Q8_0 does, quants rounded to nearest even.
//     Like ggml, this caps activations at 65504·127 ≈ 8.3e6 in magnitude
//     (a block beyond that decodes as ±Inf).
//   - Q8K (for Q4_K, Q5_K, Q6_K): 256-element super-blocks with a float32
//     scale chosen so the largest-magnitude element maps to -127 (ggml's
//     Q8_K), plus the sums of every 16 quants.
//
// The layouts are this package's own, not ggml's bytes: besides the int8
// quants they hold, per 32-element block, the scale repeated eight times
// and an integer correction repeated eight times, so that the assembly
// kernels can use them as full vector operands (one 32-element block fills
// eight 32-bit lanes).

// actsKind is the companion format of a weight type.
type actsKind uint8

const (
	actsF32 actsKind = iota // float32 as given (F32, F16 and BF16 weights)
	actsQ8                  // 32-element blocks
	actsQ8K                 // 256-element super-blocks
)

// Acts holds n rows of cols activations quantised for one weight type. Its
// buffers are reused by later calls to [Kernel.QuantizeActs], so a caller
// keeps one per worker or per step. The zero value is ready to use.
type Acts struct {
	kind    actsKind
	off     int32
	n, cols int
	src     []float32

	// f aliases the caller's float32 rows for actsF32.
	f []float32
	// qs holds the int8 quants, cols per row.
	qs []int8
	// dv holds each 32-element block's scale eight times (actsQ8), or
	// each super-block's scale sixteen times (actsQ8K).
	dv []float32
	// cv holds, eight times per block, -off/8 times the block's quant sum:
	// the correction that turns Σ(q+off)·x into Σq·x for weights stored
	// with an unsigned offset off (actsQ8).
	cv []int32
	// sv holds, eight times per block, d·Σq/8: an eighth of the block's
	// sum, for the weight types with a per-block min (actsQ8).
	sv []float32
	// bs holds the sum of every 16 quants (actsQ8K).
	bs []int32
	// pk holds the rows again, interleaved for the packed tiles (actsQ8,
	// when the weight type has them): see packActsRow.
	pk []byte
}

// The packed tiles read activations interleaved by groups of pkRows rows:
// for row group g and block b, at (g*nb+b)*pkBlock bytes, the 32 quants of
// each of the group's rows (pkRows × 32 bytes), then each row's scale
// (float32) and each row's integer correction -off·Σq (int32). One
// pointer walks a tile's rows block by block, and every operand is a
// single element the kernel broadcasts. A last, partial group leaves its
// unused rows' slots as they were.
const (
	pkRows  = 8
	pkBlock = pkRows * (32 + 4 + 4)
)

// Rows returns the number of rows held.
func (a *Acts) Rows() int { return a.n }

func growI8(b []int8, n int) []int8 {
	if cap(b) < n {
		return make([]int8, n)
	}
	return b[:n]
}

func growI32(b []int32, n int) []int32 {
	if cap(b) < n {
		return make([]int32, n)
	}
	return b[:n]
}

func growF32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// prepare sizes the buffers for n rows of cols elements of x.
// With pack it also sizes the interleaved copy the packed tiles read.
func (a *Acts) prepare(kind actsKind, off int32, pack bool, x []float32, n, cols int) {
	a.kind, a.off, a.n, a.cols, a.src = kind, off, n, cols, x
	a.pk = a.pk[:0]
	switch kind {
	case actsQ8:
		nb := cols / 32
		a.qs = growI8(a.qs, n*cols)
		a.dv = growF32(a.dv, n*nb*8)
		a.cv = growI32(a.cv, n*nb*8)
		a.sv = growF32(a.sv, n*nb*8)
		a.f = nil
		if pack {
			sz := (n + pkRows - 1) / pkRows * nb * pkBlock
			if cap(a.pk) < sz {
				a.pk = make([]byte, sz)
			}
			a.pk = a.pk[:sz]
		}
	case actsQ8K:
		nb := cols / qkK
		a.qs = growI8(a.qs, n*cols)
		a.dv = growF32(a.dv, n*nb*16)
		a.bs = growI32(a.bs, n*nb*16)
		a.f = nil
	default:
		a.f = x
	}
}

// quantRows converts rows [lo, hi) of the source.
func (a *Acts) quantRows(lo, hi int) {
	switch a.kind {
	case actsQ8:
		for r := lo; r < hi; r++ {
			if !quantQ8RowVec(a, r) {
				a.quantQ8Row(r)
			}
			if len(a.pk) > 0 {
				a.packActsRow(r)
			}
		}
	case actsQ8K:
		for r := lo; r < hi; r++ {
			a.quantQ8KRow(r)
		}
	}
}

// quantQ8Row quantises row r to 32-element Q8 blocks.
func (a *Acts) quantQ8Row(r int) {
	cols := a.cols
	nb := cols / 32
	for b := range nb {
		i := r*nb + b
		src := (*[32]float32)(a.src[r*cols+b*32:])
		dst := (*[32]int8)(a.qs[r*cols+b*32:])
		d, sum := quantBlockQ8(src, dst)
		c := -a.off / 8 * sum
		dv := (*[8]float32)(a.dv[i*8:])
		cv := (*[8]int32)(a.cv[i*8:])
		sv := (*[8]float32)(a.sv[i*8:])
		s := d * float32(sum) / 8
		for l := range 8 {
			dv[l], cv[l], sv[l] = d, c, s
		}
	}
}

// packActsRow copies row r, already quantised, into its slots of pk.
func (a *Acts) packActsRow(r int) {
	nb := a.cols / 32
	g, s := r/pkRows, r%pkRows
	for b := range nb {
		dst := a.pk[(g*nb+b)*pkBlock:][:pkBlock]
		for j, q := range a.qs[r*a.cols+b*32 : r*a.cols+b*32+32] {
			dst[s*32+j] = byte(q)
		}
		i := (r*nb + b) * 8
		binary.LittleEndian.PutUint32(dst[pkRows*32+4*s:], math.Float32bits(a.dv[i]))
		// cv holds -off/8·Σq for the eight lanes of a block; a packed
		// lane sums a whole block.
		binary.LittleEndian.PutUint32(dst[pkRows*36+4*s:], uint32(8*a.cv[i]))
	}
}

// quantBlockQ8 rounds one block like ggml's Q8_0 activations: the scale is
// amax/127 rounded to f16 and the quants are x·127/amax rounded to nearest
// even. It returns the (f16-exact) scale and the sum of the quants.
func quantBlockQ8(x *[32]float32, q *[32]int8) (float32, int32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	d := F16ToF32(F32ToF16(amax / 127))
	// Where the f16 scale is 0 (amax below about 3.8e-6) every element
	// decodes to 0 whatever its quant, so the quants are 0 too; this also
	// keeps 127/amax from overflowing for subnormal blocks.
	var id float32
	if d != 0 {
		id = 127 / amax
	}
	var sum int32
	for j, v := range x {
		qi := int32(math.RoundToEven(float64(v * id)))
		qi = clamp(qi, -127, 127)
		q[j] = int8(qi)
		sum += qi
	}
	return d, sum
}

// quantQ8KRow quantises row r to Q8K super-blocks.
func (a *Acts) quantQ8KRow(r int) {
	cols := a.cols
	nb := cols / qkK
	for b := range nb {
		i := r*nb + b
		src := (*[qkK]float32)(a.src[r*cols+b*qkK:])
		dst := (*[qkK]int8)(a.qs[r*cols+b*qkK:])
		d := quantBlockQ8K(src, dst, (*[16]int32)(a.bs[i*16:]))
		dv := (*[16]float32)(a.dv[i*16:])
		for l := range dv {
			dv[l] = d
		}
	}
}

// quantBlockQ8K maps the largest-magnitude element to -127 (the sign kept,
// as ggml does) and rounds to nearest even. It returns the scale.
func quantBlockQ8K(x *[qkK]float32, q *[qkK]int8, bsums *[16]int32) float32 {
	m := signedAbsMax(x[:])
	// A block so small that -127/m overflows is taken as zero, as an
	// all-zero block is.
	if m == 0 || math.IsInf(float64(-127/m), 0) {
		*q = [qkK]int8{}
		*bsums = [16]int32{}
		return 0
	}
	iscale := -127 / m
	for j, v := range x {
		q[j] = int8(min(127, int32(math.RoundToEven(float64(iscale*v)))))
	}
	for g := range bsums {
		var s int32
		for _, v := range q[16*g : 16*g+16] {
			s += int32(v)
		}
		bsums[g] = s
	}
	return 1 / iscale
}
