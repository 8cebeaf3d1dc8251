//go:build ignore

// asm_gen writes gemm_amd64.s and gemm_decl_amd64.go: the amd64 tile
// kernels, one function per weight type and tile shape (R weight rows × T
// activation rows, 1 ≤ R, T ≤ 4), the packed tiles (16 or 32 rows of the
// layouts in pack.go × 1 to 8 activation rows) and the vector helpers
// (activation quantisers, dot, axpy, SwiGLU). Run it with `go generate`
// in this directory after changing it; its output is committed so that a
// plain `go build` needs nothing else.
//
// Register plan of every tile (AVX-512, 32 vector registers):
//
//	Z0-Z3    the R weight blocks of this step
//	Z4-Z7    their scales (one per 32-element block, spread over 8 lanes)
//	Z8-Z10   temporaries
//	Z11-Z13  one activation row's quants, corrections and scales
//	Z14-Z15  byte masks
//	Z16-Z31  the R×T float32 accumulators
//
// The 32-element kernels take two blocks per step, so one 512-bit register
// holds 64 quants; VPDPBUSD multiplies unsigned weight bytes by signed
// activation bytes and sums groups of four into 16 int32 lanes (8 per
// block). Weights are made unsigned by an offset (Q8_0: XOR 0x80, i.e.
// +128; Q4_0: the stored nibble, i.e. +8; Q5_0: +16), and the activations
// carry the matching correction -off·Σx/8 per lane as the starting value
// of the integer sum, so each lane group ends at exactly Σq·x.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"log"
	"os"
	"strings"
)

var s bytes.Buffer

func p(format string, args ...any) { fmt.Fprintf(&s, "\t"+format+"\n", args...) }
func label(l string)               { fmt.Fprintf(&s, "%s:\n", l) }

// rowAddr is weight row r at displacement d: AX + r*ws with rowWS = ws and
// rowWS3 = 3*ws (R8 and R9 in the tiles; the matrix-vector kernels'
// second row is R14 bytes on).
func rowAddr(r, d int) string {
	switch r {
	case 0:
		return fmt.Sprintf("%d(AX)", d)
	case 1:
		return fmt.Sprintf("%d(AX)(%s*1)", d, rowWS)
	case 2:
		return fmt.Sprintf("%d(AX)(%s*2)", d, rowWS)
	}
	return fmt.Sprintf("%d(AX)(%s*1)", d, rowWS3)
}

var rowWS, rowWS3 = "R8", "R9"

// tokAddr is activation row t from base with stride s1 and 3*stride s3.
func tokAddr(base, s1, s3 string, t int) string {
	switch t {
	case 0:
		return fmt.Sprintf("(%s)", base)
	case 1:
		return fmt.Sprintf("(%s)(%s*1)", base, s1)
	case 2:
		return fmt.Sprintf("(%s)(%s*2)", base, s1)
	}
	return fmt.Sprintf("(%s)(%s*1)", base, s3)
}

func acc(r, t, T int) int { return 16 + r*T + t }

// reduce sums each accumulator's 16 lanes and stores it at
// y[t*ys + r] (AX = y, BX = ys in bytes, R9 = 3*ys).
func reduce(R, T int) {
	for r := range R {
		for t := range T {
			a := acc(r, t, T)
			p("VEXTRACTF64X4 $1, Z%d, Y8", a)
			p("VADDPS Y8, Y%d, Y8", a)
			p("VEXTRACTF128 $1, Y8, X9")
			p("VADDPS X9, X8, X8")
			p("VHADDPS X8, X8, X8")
			p("VHADDPS X8, X8, X8")
			var addr string
			switch t {
			case 0:
				addr = fmt.Sprintf("%d(AX)", 4*r)
			case 1:
				addr = fmt.Sprintf("%d(AX)(BX*1)", 4*r)
			case 2:
				addr = fmt.Sprintf("%d(AX)(BX*2)", 4*r)
			default:
				addr = fmt.Sprintf("%d(AX)(R9*1)", 4*r)
			}
			p("VMOVSS X8, %s", addr)
		}
	}
}

func zeroAcc(R, T int) {
	for r := range R {
		for t := range T {
			a := acc(r, t, T)
			p("VPXORD Z%d, Z%d, Z%d", a, a, a)
		}
	}
}

// q8Type describes how one 32-element weight type is loaded two blocks at
// a time into Z(r) as unsigned bytes in element order.
type q8Type struct {
	name  string
	bytes int // bytes per block
	load  func(r int)
	setup func()
}

var q8Types = []q8Type{
	{
		name: "Q8_0", bytes: 34,
		setup: func() {
			p("MOVL $0x80808080, R13")
			p("VPBROADCASTD R13, Z14")
		},
		load: func(r int) {
			p("VMOVDQU %s, Y%d", rowAddr(r, 2), r)
			p("VINSERTI64X4 $1, %s, Z%d, Z%d", rowAddr(r, 36), r, r)
			p("VPXORD Z14, Z%d, Z%d", r, r)
		},
	},
	{
		name: "Q4_0", bytes: 18,
		setup: func() {
			p("MOVL $0x0f0f0f0f, R13")
			p("VPBROADCASTD R13, Z14")
		},
		load: func(r int) {
			// [qs0 | qs1] → [lo0 hi0 lo1 hi1]: low nibbles are elements
			// 0-15 of a block, high nibbles 16-31.
			p("VMOVDQU %s, X%d", rowAddr(r, 2), r)
			p("VINSERTI128 $1, %s, Y%d, Y%d", rowAddr(r, 20), r, r)
			p("VPSRLW $4, Y%d, Y10", r)
			p("VINSERTI64X4 $1, Y10, Z%d, Z%d", r, r)
			p("VPANDD Z14, Z%d, Z%d", r, r)
			p("VSHUFI64X2 $0xd8, Z%d, Z%d, Z%d", r, r, r)
		},
	},
	{
		name: "Q5_0", bytes: 22,
		setup: func() {
			p("MOVL $0x0f0f0f0f, R13")
			p("VPBROADCASTD R13, Z14")
			p("MOVL $0x10101010, R13")
			p("VPBROADCASTD R13, Z15")
		},
		load: func(r int) {
			p("VMOVDQU %s, X%d", rowAddr(r, 6), r)
			p("VINSERTI128 $1, %s, Y%d, Y%d", rowAddr(r, 28), r, r)
			p("VPSRLW $4, Y%d, Y10", r)
			p("VINSERTI64X4 $1, Y10, Z%d, Z%d", r, r)
			p("VPANDD Z14, Z%d, Z%d", r, r)
			p("VSHUFI64X2 $0xd8, Z%d, Z%d, Z%d", r, r, r)
			// Bit j of qh is the fifth bit of element j: the two
			// blocks' qh words form a 64-bit byte mask, under which
			// 16 is added to the nibbles (an OR, as they are < 16).
			p("KMOVD %s, K1", rowAddr(r, 2))
			p("KMOVD %s, K2", rowAddr(r, 24))
			p("KUNPCKDQ K1, K2, K1")
			p("VPADDB Z15, Z%d, K1, Z%d", r, r)
		},
	},
}

func q8Tile(ty q8Type, R, T int) string {
	name := fmt.Sprintf("tile%sVNNI%dx%d", ty.name, R, T)
	fmt.Fprintf(&s, "\n// func %s(w *byte, ws int, x *int8, xs int, dv *float32, cv *int32, vs int, nb2 int, y *float32, ys int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-80\n", name)
	p("MOVQ w+0(FP), AX")
	p("MOVQ ws+8(FP), R8")
	p("LEAQ (R8)(R8*2), R9")
	p("MOVQ x+16(FP), SI")
	p("MOVQ xs+24(FP), DX")
	p("LEAQ (DX)(DX*2), R11")
	p("MOVQ dv+32(FP), DI")
	p("MOVQ cv+40(FP), CX")
	p("MOVQ vs+48(FP), BX")
	p("LEAQ (BX)(BX*2), R12")
	p("MOVQ nb2+56(FP), R10")
	ty.setup()
	zeroAcc(R, T)
	p("TESTQ R10, R10")
	p("JZ %s_reduce", name)
	label(name + "_loop")
	for r := range R {
		ty.load(r)
		p("VPBROADCASTW %s, X8", rowAddr(r, 0))
		p("VPBROADCASTW %s, X9", rowAddr(r, ty.bytes))
		p("VINSERTI128 $1, X9, Y8, Y8")
		p("VCVTPH2PS Y8, Z%d", 4+r)
	}
	// Each activation row's quants, correction and scales are loaded once
	// per step into Z11-Z13 and used for all R weight rows.
	for t := range T {
		p("VMOVDQU32 %s, Z12", tokAddr("CX", "BX", "R12", t))
		p("VMOVUPS %s, Z13", tokAddr("DI", "BX", "R12", t))
		q8Dots(R, tokAddr("SI", "DX", "R11", t), t, T)
	}
	p("ADDQ $%d, AX", 2*ty.bytes)
	p("ADDQ $64, SI")
	p("ADDQ $64, DI")
	p("ADDQ $64, CX")
	p("DECQ R10")
	p("JNZ %s_loop", name)
	label(name + "_reduce")
	p("MOVQ y+64(FP), AX")
	p("MOVQ ys+72(FP), BX")
	p("LEAQ (BX)(BX*2), R9")
	reduce(R, T)
	p("VZEROUPPER")
	p("RET")
	return name
}

// gemvPrefetch is how far ahead of the weight rows being read the matrix-
// vector kernels of Q8_0 and Q6_K ask for the cache lines, in bytes: every
// line of a step's weights, gemvPrefetch bytes on (rows lie end to end, so
// past a row's end the lines ahead are the next rows'). Those two kernels
// also read their rows as four streams (gemvRows). They run at 40-60 GB per
// CPU second from L2, about twice one core's memory read bandwidth, so
// decoding waits on memory, and the hardware prefetchers stop at every 4
// KiB boundary even inside a 2 MiB page. One-thread tg32 of the Q8_0 file
// (tokens per CPU second, loaded machine, three alternated rounds; the
// matrices copied into huge pages, one stream): no prefetch 28.3, 29.3,
// 31.2; 4 KiB 29.5, 30.1, 32.7; 8 KiB 33.1, 33.8, 34.9; 16 KiB 34.3, 34.9,
// 35.8. Earlier measurements, before the copies, on the file mapping's 4
// KiB pages, had shown no gain. The Q5_0 and Q4_K kernels reach only 16-28
// GB per CPU second from L2: they are bound by their instructions, and the
// prefetches cost them 5-10% there, so they have neither (nor the Q4_0
// one, which reads only the rows outside the packed groups).
const gemvPrefetch = 8192

// gemvStreams reports whether the matrix-vector kernel of typ reads four
// streams of rows with gemvPrefetch (gemvRows).
//
// Two rows at a time, each with its own accumulator, run 10-25% faster
// from L2 (Q8_0: 53-63 GB per CPU second against 46-51 for one), but two or
// four consecutive rows at a time streamed from memory at 8-9 GB/s without
// prefetch and 13-23 with it, against 17-28 for one row (96 MiB in huge
// pages, loaded machine): the hardware prefetchers follow a sequential
// stream, not several rows' pieces of it. Two rows from the two halves of
// the range are two sequential streams: one-thread tg32 of the Q8_0 file
// with them and the prefetch against one stream with the prefetch,
// alternated, 8 rounds: 34.3-36.0 against 28.3-31.8 tokens per CPU second,
// ahead in every round (loaded machine). Four streams (the quarters)
// against one, alternated on a quiet machine: Q8_0 file 43.5-52.9 against
// 35.4-44.9 tokens per CPU second in 7 rounds, Q6_K file 42.4-47.1 against
// 39.7-43.8 in 3, ahead in every round.
// q8Dots adds, for each of R weight rows, the dot product of its step (bytes in Z0..Z(R-1),
// scales in Z4..Z(4+R-1)) with the activation step at xs (bias in Z12, scales in Z13) into
// the accumulator of row r and token t.
func q8Dots(R int, xs string, t, T int) {
	if R > 1 {
		p("VMOVDQU64 %s, Z11", xs)
		xs = "Z11"
	}
	for r := range R {
		a, b := 8, 9
		if r%2 == 1 {
			a, b = 10, 9
		}
		p("VMOVDQA32 Z12, Z%d", a)
		p("VPDPBUSD %s, Z%d, Z%d", xs, r, a)
		p("VCVTDQ2PS Z%d, Z%d", a, a)
		p("VMULPS Z13, Z%d, Z%d", 4+r, b)
		p("VFMADD231PS Z%d, Z%d, Z%d", b, a, acc(r, t, T))
	}
}

func gemvStreams(typ string) bool { return typ == "Q8_0" || typ == "Q6_K" }

// q8Gemv is the 1×1 tile of q8Tile run over rows consecutive weight rows
// in one call, for one activation row (decoding); with streams, four rows
// at a time (gemvRows), each with its own accumulator. Each row gets the
// same instructions in the same order as in the 1×1 tile, so each y[r] is
// bit for bit the tile's, less a Go call, a bounds check and a register
// setup per row. With streams each row asks for the cache lines
// gemvPrefetch bytes ahead of the ones it reads. The rows must hold an
// even number of blocks (w advances from one row to the next).
func q8Gemv(name string, ty q8Type, streams bool) string {
	fmt.Fprintf(&s, "\n// func %s(w *byte, x *int8, dv *float32, cv *int32, nb2 int, y *float32, rows int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	p("MOVQ w+0(FP), AX")
	p("MOVQ x+8(FP), DX")
	p("MOVQ dv+16(FP), R11")
	p("MOVQ cv+24(FP), R12")
	p("MOVQ nb2+32(FP), R9")
	p("MOVQ y+40(FP), BX")
	p("MOVQ rows+48(FP), R8")
	ty.setup()
	step := func(R int) {
		if streams {
			gemvPrefetchRows(R, 2*ty.bytes)
		}
		for r := range R {
			ty.load(r)
			p("VPBROADCASTW %s, X8", rowAddr(r, 0))
			p("VPBROADCASTW %s, X9", rowAddr(r, ty.bytes))
			p("VINSERTI128 $1, X9, Y8, Y8")
			p("VCVTPH2PS Y8, Z%d", 4+r)
		}
		p("VMOVDQU32 (CX), Z12")
		p("VMOVUPS (DI), Z13")
		q8Dots(R, "(SI)", 0, 1)
		p("ADDQ $%d, AX", 2*ty.bytes)
		p("ADDQ $64, SI")
		p("ADDQ $64, DI")
		p("ADDQ $64, CX")
	}
	if streams {
		p("IMUL3Q $%d, R9, R14", 2*ty.bytes)
	}
	gemvRows(name, streams, step, "R11", "R12")
	return name
}

// gemvPrefetchRows asks for the cache lines gemvPrefetch bytes ahead of
// each of R rows' next stepBytes bytes.
func gemvPrefetchRows(R, stepBytes int) {
	for r := range R {
		for d := 0; d < stepBytes; d += 64 {
			p("PREFETCHT0 %s", rowAddr(r, gemvPrefetch+d))
		}
	}
}

// gemvRows writes the loops of a row-major matrix-vector kernel. step(R)
// is one loop step of R rows (1 or 4), accumulating row r in acc(r, 0, 1)
// and advancing AX, SI, DI and CX; row r is rowAddr(r, ·), r times R14
// bytes past the first. With split, the rows are taken as four streams,
// the quarters [kn, (k+1)n) for n = rows/4, a row of each at a time, then
// the rows left over (rows mod 4) one at a time; without, one row at a
// time. On entry AX is the first row, DX, di and cx the activation
// pointers SI, DI and CX start from at each row, R9 the steps per row, R14
// the bytes per row, BX y and R8 the row count; R13 is free.
func gemvRows(name string, split bool, step func(R int), di, cx string) {
	start := func() {
		p("MOVQ DX, SI")
		p("MOVQ %s, DI", di)
		p("MOVQ %s, CX", cx)
		p("MOVQ R9, R10")
	}
	rowWS, rowWS3 = "R14", "R13"
	defer func() { rowWS, rowWS3 = "R8", "R9" }()
	if split {
		p("CMPQ R8, $4")
		p("JLT %s_rest", name)
		p("MOVQ R8, R13")
		p("SHRQ $2, R13")
		p("IMULQ R13, R14") // the distance between streams, n rows
		p("MOVQ R13, R8")   // rows left in each stream
		p("LEAQ (R14)(R14*2), R13")
		label(name + "_four")
		start()
		zeroAcc(4, 1)
		label(name + "_floop")
		step(4)
		p("DECQ R10")
		p("JNZ %s_floop", name)
		p("MOVQ rows+48(FP), R10") // the streams' distance in y
		p("SHRQ $2, R10")
		p("SHLQ $2, R10")
		gemvReduceTo(0, "(BX)")
		gemvReduceTo(1, "(BX)(R10*1)")
		gemvReduceTo(2, "(BX)(R10*2)")
		p("LEAQ (R10)(R10*2), R10")
		gemvReduceTo(3, "(BX)(R10*1)")
		p("ADDQ $4, BX")
		p("DECQ R8")
		p("JNZ %s_four", name)
		// AX and BX are at the second stream's first row: past the
		// fourth's last.
		p("ADDQ R13, AX")
		p("ADDQ R10, BX")
		p("MOVQ rows+48(FP), R8")
		p("ANDQ $3, R8")
		label(name + "_rest")
	}
	p("TESTQ R8, R8")
	p("JZ %s_done", name)
	label(name + "_row")
	start()
	zeroAcc(1, 1)
	label(name + "_loop")
	step(1)
	p("DECQ R10")
	p("JNZ %s_loop", name)
	gemvEnd(name)
}

// gemvReduce is reduce(1, 1) storing to (BX) and advancing BX.
func gemvReduce() {
	gemvReduceTo(0, "(BX)")
	p("ADDQ $4, BX")
}

// gemvReduceTo is reduce's sum of acc(r, 0, 1), stored at addr.
func gemvReduceTo(r int, addr string) {
	a := acc(r, 0, 1)
	p("VEXTRACTF64X4 $1, Z%d, Y8", a)
	p("VADDPS Y8, Y%d, Y8", a)
	p("VEXTRACTF128 $1, Y8, X9")
	p("VADDPS X9, X8, X8")
	p("VHADDPS X8, X8, X8")
	p("VHADDPS X8, X8, X8")
	p("VMOVSS X8, %s", addr)
}

// floatTile multiplies F16 or F32 rows by float32 activations, 16 elements
// per step.
func floatTile(typ string, R, T int) string {
	name := fmt.Sprintf("tile%sAVX512%dx%d", typ, R, T)
	fmt.Fprintf(&s, "\n// func %s(w *byte, ws int, x *float32, xs int, n16 int, y *float32, ys int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	p("MOVQ w+0(FP), AX")
	p("MOVQ ws+8(FP), R8")
	p("LEAQ (R8)(R8*2), R9")
	p("MOVQ x+16(FP), SI")
	p("MOVQ xs+24(FP), DX")
	p("LEAQ (DX)(DX*2), R11")
	p("MOVQ n16+32(FP), R10")
	zeroAcc(R, T)
	step := 64
	if typ == "F16" {
		step = 32
	}
	load := func(r, d int) {
		if typ == "F16" {
			p("VCVTPH2PS %s, Z%d", rowAddr(r, d), r)
		} else {
			p("VMOVUPS %s, Z%d", rowAddr(r, d), r)
		}
	}
	// Small tiles have few accumulators, so their add chains would bound
	// the loop: they take two 16-element steps at a time into a second
	// set of accumulators (Z8-Z15), folded in at the end.
	if R*T <= 4 {
		for r := range R {
			for t := range T {
				a := 8 + r*T + t
				p("VPXORD Z%d, Z%d, Z%d", a, a, a)
			}
		}
		p("CMPQ R10, $2")
		p("JLT %s_one", name)
		label(name + "_two")
		for r := range R {
			load(r, 0)
			if typ == "F16" {
				p("VCVTPH2PS %s, Z%d", rowAddr(r, step), 4+r)
			} else {
				p("VMOVUPS %s, Z%d", rowAddr(r, step), 4+r)
			}
		}
		for t := range T {
			x := tokAddr("SI", "DX", "R11", t)
			for r := range R {
				p("VFMADD231PS %s, Z%d, Z%d", x, r, acc(r, t, T))
				p("VFMADD231PS 64%s, Z%d, Z%d", x, 4+r, 8+r*T+t)
			}
		}
		p("ADDQ $%d, AX", 2*step)
		p("ADDQ $128, SI")
		p("SUBQ $2, R10")
		p("CMPQ R10, $2")
		p("JGE %s_two", name)
		label(name + "_one")
		for r := range R {
			for t := range T {
				p("VADDPS Z%d, Z%d, Z%d", 8+r*T+t, acc(r, t, T), acc(r, t, T))
			}
		}
	}
	p("TESTQ R10, R10")
	p("JZ %s_reduce", name)
	label(name + "_loop")
	for r := range R {
		load(r, 0)
	}
	for t := range T {
		for r := range R {
			p("VFMADD231PS %s, Z%d, Z%d", tokAddr("SI", "DX", "R11", t), r, acc(r, t, T))
		}
	}
	p("ADDQ $%d, AX", step)
	p("ADDQ $64, SI")
	p("DECQ R10")
	p("JNZ %s_loop", name)
	label(name + "_reduce")
	p("MOVQ y+40(FP), AX")
	p("MOVQ ys+48(FP), BX")
	p("LEAQ (BX)(BX*2), R9")
	reduce(R, T)
	p("VZEROUPPER")
	p("RET")
	return name
}

// q4PackedTile multiplies one packed group of 16 Q4_0 rows (pack.go) by T
// activation rows of one packed activation group (acts.go), one block per
// step. Each lane of a 512-bit register is one weight row:
//
//	Z0       64 bytes of quants: bytes 4j..4j+3 of each row's block
//	Z1, Z2   their low and high nibbles (elements 4j.., 16+4j..)
//	Z3       the 16 rows' block scales
//	Z4       0x0f bytes
//	Z5       temporary
//	Z8-Z15   the T integer sums of this block (low-nibble halves for T ≤ 4)
//	Z16-Z19  the high-nibble halves for T ≤ 4 (two chains per row halve
//	         the dependent VPDPBUSDs)
//	Z24-Z31  the T float32 accumulators, one row per lane
//
// Each VPDPBUSD takes four int8 activations broadcast from memory and
// multiplies them by four nibbles of each of the 16 rows. The integer sum
// starts at the activations' correction -8·Σq, which turns the stored
// nibbles (q+8) into q.
func q4PackedTile(T int) string {
	name := fmt.Sprintf("tileQ4_0P16x%d", T)
	fmt.Fprintf(&s, "\n// func %s(sc, qs *byte, nb int, x *byte, y *float32, ys int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-48\n", name)
	p("MOVQ sc+0(FP), AX")
	p("MOVQ qs+8(FP), SI")
	p("MOVQ nb+16(FP), CX")
	p("MOVQ x+24(FP), DI")
	p("MOVL $0x0f0f0f0f, R13")
	p("VPBROADCASTD R13, Z4")
	split := T <= 4
	hi := func(t int) int {
		if split {
			return 16 + t
		}
		return 8 + t
	}
	for t := range T {
		p("VPXORD Z%d, Z%d, Z%d", 24+t, 24+t, 24+t)
	}
	p("TESTQ CX, CX")
	p("JZ %s_store", name)
	label(name + "_loop")
	p("VCVTPH2PS (AX), Z3")
	for t := range T {
		p("VPBROADCASTD %d(DI), Z%d", 8*36+4*t, 8+t)
		if split {
			p("VPXORD Z%d, Z%d, Z%d", hi(t), hi(t), hi(t))
		}
	}
	for j := range 4 {
		p("VMOVDQU64 %d(SI), Z0", 64*j)
		p("VPSRLW $4, Z0, Z2")
		p("VPANDD Z4, Z0, Z1")
		p("VPANDD Z4, Z2, Z2")
		for t := range T {
			p("VPDPBUSD.BCST %d(DI), Z1, Z%d", 32*t+4*j, 8+t)
		}
		for t := range T {
			p("VPDPBUSD.BCST %d(DI), Z2, Z%d", 32*t+16+4*j, hi(t))
		}
	}
	for t := range T {
		if split {
			p("VPADDD Z%d, Z%d, Z%d", hi(t), 8+t, 8+t)
		}
		p("VCVTDQ2PS Z%d, Z%d", 8+t, 8+t)
		p("VMULPS.BCST %d(DI), Z3, Z5", 8*32+4*t)
		p("VFMADD231PS Z5, Z%d, Z%d", 8+t, 24+t)
	}
	p("ADDQ $32, AX")
	p("ADDQ $256, SI")
	p("ADDQ $%d, DI", 8*40)
	p("DECQ CX")
	p("JNZ %s_loop", name)
	label(name + "_store")
	p("MOVQ y+32(FP), AX")
	p("MOVQ ys+40(FP), BX")
	for t := range T {
		p("VMOVUPS Z%d, (AX)", 24+t)
		if t < T-1 {
			p("ADDQ BX, AX")
		}
	}
	p("VZEROUPPER")
	p("RET")
	return name
}

// fourStreams emits the start of a packed kernel's four-stream loop: with fewer than four
// groups (DX) it jumps to name+"_rest"; else DX becomes the groups in each stream, R14 the
// distance between streams (DX times the group stride R9) and far three times it. It returns
// the four streams' offsets from AX.
func fourStreams(name, far string) []string {
	p("CMPQ DX, $4")
	p("JLT %s_rest", name)
	p("SHRQ $2, DX") // groups in each stream
	p("MOVQ R9, R14")
	p("IMULQ DX, R14") // the distance between streams
	p("LEAQ (R14)(R14*2), %s", far)
	return []string{"", "(R14*1)", "(R14*2)", "(" + far + "*1)"}
}

// q4PackedGemv4 is q4PackedGemv's group loop over four streams of groups,
// the quarters of the range, a group of each at a time (group g's scales
// in Z8+g, its integer sums in Z12+g and Z16+g, its accumulator Z24+g; the
// same instructions per group in the same order, so each result is bit
// for bit the one-group loop's); it leaves R8, BX and DX at the groups
// left over (groups mod 4), as f16PackedGemv4 does.
func q4PackedGemv4(name string, dist int) {
	off := fourStreams(name, "R13")
	label(name + "_four")
	p("MOVQ R8, AX")
	p("LEAQ (R8)(R10*1), SI")
	p("MOVQ R11, CX")
	p("MOVQ R12, DI")
	for g := range 4 {
		p("VPXORD Z%d, Z%d, Z%d", 24+g, 24+g, 24+g)
	}
	p("TESTQ CX, CX")
	p("JZ %s_fstore", name)
	label(name + "_floop")
	for g := range 4 {
		for j := range 4 {
			p("PREFETCHT0 %d(SI)%s", dist+64*j, off[g])
		}
	}
	for g := range 4 {
		p("VCVTPH2PS (AX)%s, Z%d", off[g], 8+g)
		p("VPBROADCASTD %d(DI), Z%d", 8*36, 12+g)
		p("VPXORD Z%d, Z%d, Z%d", 16+g, 16+g, 16+g)
		for j := range 4 {
			p("VMOVDQU64 %d(SI)%s, Z0", 64*j, off[g])
			p("VPSRLW $4, Z0, Z2")
			p("VPANDD Z4, Z0, Z1")
			p("VPANDD Z4, Z2, Z2")
			p("VPDPBUSD.BCST %d(DI), Z1, Z%d", 4*j, 12+g)
			p("VPDPBUSD.BCST %d(DI), Z2, Z%d", 16+4*j, 16+g)
		}
		p("VPADDD Z%d, Z%d, Z%d", 16+g, 12+g, 12+g)
		p("VCVTDQ2PS Z%d, Z%d", 12+g, 12+g)
		p("VMULPS.BCST %d(DI), Z%d, Z5", 8*32, 8+g)
		p("VFMADD231PS Z5, Z%d, Z%d", 12+g, 24+g)
	}
	p("ADDQ $32, AX")
	p("ADDQ $256, SI")
	p("ADDQ $%d, DI", 8*40)
	p("DECQ CX")
	p("JNZ %s_floop", name)
	label(name + "_fstore")
	p("MOVQ groups+48(FP), CX") // the distance in y
	p("SHRQ $2, CX")
	p("SHLQ $6, CX")
	p("VMOVUPS Z24, (BX)")
	p("VMOVUPS Z25, (BX)(CX*1)")
	p("VMOVUPS Z26, (BX)(CX*2)")
	p("LEAQ (CX)(CX*2), CX")
	p("VMOVUPS Z27, (BX)(CX*1)")
	p("ADDQ $64, BX")
	p("ADDQ R9, R8")
	p("DECQ DX")
	p("JNZ %s_four", name)
	// R8 and BX are at the second stream's first group: past the fourth's
	// last.
	p("ADDQ R13, R8")
	p("ADDQ CX, BX")
	p("MOVQ groups+48(FP), DX")
	p("ANDQ $3, DX")
	label(name + "_rest")
}

// q4PackedGemv multiplies whole packed groups of 16 Q4_0 rows (pack.go)
// by one activation row, as decoding does: the body of tileQ4_0P16x1 run
// over groups consecutive groups in one call, so each row's result is bit
// for bit the tile's. The weights are one sequential stream (a group's
// scales, then its quants, then the next group); every step asks for the
// cache lines dist bytes ahead of the quants it reads (PREFETCHT0), which
// keeps more lines in flight than the hardware prefetchers do alone.
// Registers as in q4PackedTile, plus:
//
//	R8   the group's first byte     R9   the group stride
//	R10  bytes of the scale region  R11  blocks per row
//	R12  the activation group       BX   y (16 floats per group)
//	DX   groups left
func q4PackedGemv(name string, dist int) string {
	fmt.Fprintf(&s, "\n// func %s(w *byte, stride, scBytes, nb int, x *byte, y *float32, groups int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	p("MOVQ w+0(FP), R8")
	p("MOVQ stride+8(FP), R9")
	p("MOVQ scBytes+16(FP), R10")
	p("MOVQ nb+24(FP), R11")
	p("MOVQ x+32(FP), R12")
	p("MOVQ y+40(FP), BX")
	p("MOVQ groups+48(FP), DX")
	p("MOVL $0x0f0f0f0f, R13")
	p("VPBROADCASTD R13, Z4")
	q4PackedGemv4(name, dist)
	p("TESTQ DX, DX")
	p("JZ %s_done", name)
	label(name + "_group")
	p("MOVQ R8, AX")
	p("LEAQ (R8)(R10*1), SI")
	p("MOVQ R11, CX")
	p("MOVQ R12, DI")
	p("VPXORD Z24, Z24, Z24")
	p("TESTQ CX, CX")
	p("JZ %s_store", name)
	label(name + "_loop")
	if dist > 0 {
		for j := range 4 {
			p("PREFETCHT0 %d(SI)", dist+64*j)
		}
	}
	p("VCVTPH2PS (AX), Z3")
	p("VPBROADCASTD %d(DI), Z8", 8*36)
	p("VPXORD Z16, Z16, Z16")
	for j := range 4 {
		p("VMOVDQU64 %d(SI), Z0", 64*j)
		p("VPSRLW $4, Z0, Z2")
		p("VPANDD Z4, Z0, Z1")
		p("VPANDD Z4, Z2, Z2")
		p("VPDPBUSD.BCST %d(DI), Z1, Z8", 4*j)
		p("VPDPBUSD.BCST %d(DI), Z2, Z16", 16+4*j)
	}
	p("VPADDD Z16, Z8, Z8")
	p("VCVTDQ2PS Z8, Z8")
	p("VMULPS.BCST %d(DI), Z3, Z5", 8*32)
	p("VFMADD231PS Z5, Z8, Z24")
	p("ADDQ $32, AX")
	p("ADDQ $256, SI")
	p("ADDQ $%d, DI", 8*40)
	p("DECQ CX")
	p("JNZ %s_loop", name)
	label(name + "_store")
	packedGemvEnd(name, "Z24")
	return name
}

// f16PackedTile multiplies one packed group of 16 F16 rows (pack.go: for
// each column, the 16 rows' halves) by T float32 activation rows, four
// columns per step. Each lane is one weight row: a column's 16 halves
// become one register and each activation element is broadcast into the
// FMA from memory. Small T keep several accumulators per activation row
// (over alternate columns) so that the FMAs are not one dependent chain.
//
//	Z0-Z3    four columns of the 16 rows
//	Z16-Z23  accumulators
//
// Activation row t is at SI + t·DX for t < 4 and R13 + (t-4)·DX after.
func f16PackedTile(T int) string {
	name := fmt.Sprintf("tileF16P16x%d", T)
	fmt.Fprintf(&s, "\n// func %s(w *byte, x *float32, xs int, n int, y *float32, ys int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-48\n", name)
	p("MOVQ w+0(FP), AX")
	p("MOVQ x+8(FP), SI")
	p("MOVQ xs+16(FP), DX")
	p("LEAQ (DX)(DX*2), R11")
	p("LEAQ (SI)(DX*4), R13")
	p("MOVQ n+24(FP), CX")
	split := 1
	switch {
	case T == 1:
		split = 4
	case T <= 4:
		split = 2
	}
	acc := func(t, u int) int { return 16 + t*split + u%split }
	xa := func(t, d int) string {
		base := "SI"
		if t >= 4 {
			base = "R13"
		}
		switch t % 4 {
		case 0:
			return fmt.Sprintf("%d(%s)", d, base)
		case 1:
			return fmt.Sprintf("%d(%s)(DX*1)", d, base)
		case 2:
			return fmt.Sprintf("%d(%s)(DX*2)", d, base)
		}
		return fmt.Sprintf("%d(%s)(R11*1)", d, base)
	}
	for a := 16; a < 16+T*split; a++ {
		p("VPXORD Z%d, Z%d, Z%d", a, a, a)
	}
	p("MOVQ CX, R10")
	p("SHRQ $2, R10")
	p("JZ %s_tail", name)
	label(name + "_loop")
	for u := range 4 {
		p("VCVTPH2PS %d(AX), Z%d", 32*u, u)
	}
	for u := range 4 {
		for t := range T {
			p("VFMADD231PS.BCST %s, Z%d, Z%d", xa(t, 4*u), u, acc(t, u))
		}
	}
	p("ADDQ $128, AX")
	p("ADDQ $16, SI")
	p("ADDQ $16, R13")
	p("DECQ R10")
	p("JNZ %s_loop", name)
	label(name + "_tail")
	p("ANDQ $3, CX")
	p("JZ %s_store", name)
	label(name + "_one")
	p("VCVTPH2PS (AX), Z0")
	for t := range T {
		p("VFMADD231PS.BCST %s, Z0, Z%d", xa(t, 0), acc(t, 0))
	}
	p("ADDQ $32, AX")
	p("ADDQ $4, SI")
	p("ADDQ $4, R13")
	p("DECQ CX")
	p("JNZ %s_one", name)
	label(name + "_store")
	p("MOVQ y+32(FP), AX")
	p("MOVQ ys+40(FP), BX")
	for t := range T {
		for u := 1; u < split; u++ {
			p("VADDPS Z%d, Z%d, Z%d", acc(t, u), acc(t, 0), acc(t, 0))
		}
		p("VMOVUPS Z%d, (AX)", acc(t, 0))
		if t < T-1 {
			p("ADDQ BX, AX")
		}
	}
	p("VZEROUPPER")
	p("RET")
	return name
}

// f16PackedTile2 is f16PackedTile over two consecutive groups (32 rows,
// the second ws bytes after the first): each activation element is
// broadcast once into a register and used for both, which halves the
// loads per FMA.
//
//	Z0-Z7    four columns of the two groups
//	Z8-Z15   the T broadcast activation elements of a column
//	Z16-Z31  accumulators
func f16PackedTile2(T int) string {
	name := fmt.Sprintf("tileF16P32x%d", T)
	fmt.Fprintf(&s, "\n// func %s(w *byte, ws int, x *float32, xs int, n int, y *float32, ys int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	p("MOVQ w+0(FP), AX")
	p("MOVQ ws+8(FP), R8")
	p("MOVQ x+16(FP), SI")
	p("MOVQ xs+24(FP), DX")
	p("LEAQ (DX)(DX*2), R11")
	p("LEAQ (SI)(DX*4), R13")
	p("MOVQ n+32(FP), CX")
	split := 1
	switch {
	case T == 1:
		split = 4
	case T == 2:
		split = 2
	}
	acc := func(g, t, u int) int { return 16 + (g*T+t)*split + u%split }
	xa := func(t, d int) string {
		base := "SI"
		if t >= 4 {
			base = "R13"
		}
		switch t % 4 {
		case 0:
			return fmt.Sprintf("%d(%s)", d, base)
		case 1:
			return fmt.Sprintf("%d(%s)(DX*1)", d, base)
		case 2:
			return fmt.Sprintf("%d(%s)(DX*2)", d, base)
		}
		return fmt.Sprintf("%d(%s)(R11*1)", d, base)
	}
	for a := 16; a < 16+2*T*split; a++ {
		p("VPXORD Z%d, Z%d, Z%d", a, a, a)
	}
	step := func(us int) {
		for u := range us {
			p("VCVTPH2PS %d(AX), Z%d", 32*u, 2*u)
			p("VCVTPH2PS %d(AX)(R8*1), Z%d", 32*u, 2*u+1)
		}
		for u := range us {
			for t := range T {
				p("VBROADCASTSS %s, Z%d", xa(t, 4*u), 8+t)
				p("VFMADD231PS Z%d, Z%d, Z%d", 8+t, 2*u, acc(0, t, u))
				p("VFMADD231PS Z%d, Z%d, Z%d", 8+t, 2*u+1, acc(1, t, u))
			}
		}
		p("ADDQ $%d, AX", 32*us)
		p("ADDQ $%d, SI", 4*us)
		p("ADDQ $%d, R13", 4*us)
	}
	p("MOVQ CX, R10")
	p("SHRQ $2, R10")
	p("JZ %s_tail", name)
	label(name + "_loop")
	step(4)
	p("DECQ R10")
	p("JNZ %s_loop", name)
	label(name + "_tail")
	p("ANDQ $3, CX")
	p("JZ %s_store", name)
	label(name + "_one")
	step(1)
	p("DECQ CX")
	p("JNZ %s_one", name)
	label(name + "_store")
	p("MOVQ y+40(FP), AX")
	p("MOVQ ys+48(FP), BX")
	for t := range T {
		for g := range 2 {
			for u := 1; u < split; u++ {
				p("VADDPS Z%d, Z%d, Z%d", acc(g, t, u), acc(g, t, 0), acc(g, t, 0))
			}
			p("VMOVUPS Z%d, %d(AX)", acc(g, t, 0), 64*g)
		}
		if t < T-1 {
			p("ADDQ BX, AX")
		}
	}
	p("VZEROUPPER")
	p("RET")
	return name
}

// f16PackedGemv4 is f16PackedGemv's group loop over four streams of
// groups, the quarters of the range, a group of each at a time (Z0-Z15 the
// four groups' weights, Z16-Z31 their accumulators, each group's four
// summed in the one-group loop's order, so each result is bit for bit
// that loop's); it leaves R8, BX and DX at the groups left over (groups
// mod 4). Four sequential streams keep more cache lines in flight than
// one (gemvStreams).
func f16PackedGemv4(name string, dist int) {
	off := fourStreams(name, "R11")
	p("MOVQ DX, DI")
	p("SHLQ $6, DI") // the distance in y
	label(name + "_four")
	p("MOVQ R8, AX")
	p("MOVQ R12, SI")
	f16GroupSums(name, "f", off, dist)
	label(name + "_fstore")
	p("LEAQ (DI)(DI*2), R10")
	ys := []string{"(BX)", "(BX)(DI*1)", "(BX)(DI*2)", "(BX)(R10*1)"}
	for g := range 4 {
		a := 16 + 4*g
		for u := 1; u < 4; u++ {
			p("VADDPS Z%d, Z%d, Z%d", a+u, a, a)
		}
		p("VMOVUPS Z%d, %s", a, ys[g])
	}
	p("ADDQ $64, BX")
	p("ADDQ R9, R8")
	p("DECQ DX")
	p("JNZ %s_four", name)
	// R8 and BX are at the second stream's first group: past the fourth's
	// last.
	p("ADDQ R11, R8")
	p("ADDQ R10, BX")
	p("MOVQ groups+40(FP), DX")
	p("ANDQ $3, DX")
	label(name + "_rest")
}

// f16GroupSums emits the column loop of the packed F16 matrix-vector kernels for one group
// from each of len(off) streams (AX plus off[g]): the accumulators Z16.. zeroed, steps of four
// columns (two cache lines a stream, prefetched dist bytes ahead when dist > 0), then the
// columns left over one at a time, up to label name+"_"+pfx+"store", with each group's four
// accumulators Z16+4g.. still apart.
func f16GroupSums(name, pfx string, off []string, dist int) {
	G := len(off)
	for a := 16; a < 16+4*G; a++ {
		p("VPXORD Z%d, Z%d, Z%d", a, a, a)
	}
	p("MOVQ CX, R10")
	p("SHRQ $2, R10")
	p("JZ %s_%stail", name, pfx)
	label(name + "_" + pfx + "loop")
	if dist > 0 {
		for g := range G {
			p("PREFETCHT0 %d(AX)%s", dist, off[g])
			p("PREFETCHT0 %d(AX)%s", dist+64, off[g])
		}
	}
	for g := range G {
		for u := range 4 {
			p("VCVTPH2PS %d(AX)%s, Z%d", 32*u, off[g], 4*g+u)
		}
	}
	for g := range G {
		for u := range 4 {
			p("VFMADD231PS.BCST %d(SI), Z%d, Z%d", 4*u, 4*g+u, 16+4*g+u)
		}
	}
	p("ADDQ $128, AX")
	p("ADDQ $16, SI")
	p("DECQ R10")
	p("JNZ %s_%sloop", name, pfx)
	label(name + "_" + pfx + "tail")
	p("MOVQ CX, R10")
	p("ANDQ $3, R10")
	p("JZ %s_%sstore", name, pfx)
	label(name + "_" + pfx + "one")
	for g := range G {
		p("VCVTPH2PS (AX)%s, Z%d", off[g], 4*g)
		p("VFMADD231PS.BCST (SI), Z%d, Z%d", 4*g, 16+4*g)
	}
	p("ADDQ $32, AX")
	p("ADDQ $4, SI")
	p("DECQ R10")
	p("JNZ %s_%sone", name, pfx)
}

// f16PackedGemv multiplies whole packed groups of 16 F16 rows (pack.go) by
// one float32 activation row, as decoding does: the body of tileF16P16x1
// (four accumulators over alternate columns, added in the same order)
// run over groups consecutive groups in one call, so each row's result is
// bit for bit the tile's. The groups are read as four sequential streams
// (f16PackedGemv4), then the groups left over as one; every step of four
// columns (two cache lines per stream) asks for the lines dist bytes ahead
// (PREFETCHT0), as q4PackedGemv does, instead of the two-group tile's two
// interleaved streams the hardware prefetchers alone follow.
//
//	AX   the weights read        SI   the activation element
//	R8   the group's first byte  R9   the group stride
//	R12  the activation row      BX   y (16 floats per group)
//	CX   columns per row         DX   groups left
//	Z0-Z3 four columns           Z16-Z19 accumulators
func f16PackedGemv(name string, dist int) string {
	fmt.Fprintf(&s, "\n// func %s(w *byte, stride, n int, x *float32, y *float32, groups int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-48\n", name)
	p("MOVQ w+0(FP), R8")
	p("MOVQ stride+8(FP), R9")
	p("MOVQ n+16(FP), CX")
	p("MOVQ x+24(FP), R12")
	p("MOVQ y+32(FP), BX")
	p("MOVQ groups+40(FP), DX")
	f16PackedGemv4(name, dist)
	p("TESTQ DX, DX")
	p("JZ %s_done", name)
	label(name + "_group")
	p("MOVQ R8, AX")
	p("MOVQ R12, SI")
	f16GroupSums(name, "", []string{""}, dist)
	label(name + "_store")
	for u := 1; u < 4; u++ {
		p("VADDPS Z%d, Z16, Z16", 16+u)
	}
	packedGemvEnd(name, "Z16")
	return name
}

func vecF32() {
	s.WriteString(`
// func quantQ8RowAVX512(x *float32, qs *int8, dv *float32, cv *int32, sv *float32, nb int, c int32)
//
// Quantises nb blocks of 32 floats exactly as quantBlockQ8 does (the same
// float32 operations in the same order), writing the quants, the scale
// eight times, c·Σq eight times and d·Σq/8 eight times per block.
TEXT ·quantQ8RowAVX512(SB), NOSPLIT, $0-52
	MOVQ x+0(FP), SI
	MOVQ qs+8(FP), DI
	MOVQ dv+16(FP), R8
	MOVQ cv+24(FP), R9
	MOVQ sv+32(FP), R10
	MOVQ nb+40(FP), CX
	MOVL c+48(FP), AX
	VPBROADCASTD AX, Y15
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z14
	MOVL $0x42fe0000, AX // 127.0
	VMOVD AX, X13
	MOVL $0x3e000000, AX // 0.125
	VMOVD AX, X12
	TESTQ CX, CX
	JZ q8_done
q8_loop:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VANDPS Z14, Z0, Z2
	VANDPS Z14, Z1, Z3
	VMAXPS Z3, Z2, Z2
	VEXTRACTF64X4 $1, Z2, Y3
	VMAXPS Y3, Y2, Y2
	VEXTRACTF128 $1, Y2, X3
	VMAXPS X3, X2, X2
	VPERMILPS $0x4e, X2, X3
	VMAXPS X3, X2, X2
	VPERMILPS $0xb1, X2, X3
	VMAXPS X3, X2, X2
	// d = f16(amax/127); id = 127/amax, or 0 where d is 0.
	VDIVSS X13, X2, X4
	VCVTPS2PH $0, X4, X4
	VCVTPH2PS X4, X4
	VXORPS X5, X5, X5
	VUCOMISS X5, X4
	JEQ q8_zero
	VDIVSS X2, X13, X5
q8_zero:
	VBROADCASTSS X5, Z5
	VMULPS Z5, Z0, Z0
	VMULPS Z5, Z1, Z1
	VCVTPS2DQ Z0, Z0
	VCVTPS2DQ Z1, Z1
	VPMOVSDB Z0, X6
	VPMOVSDB Z1, X7
	VMOVDQU X6, (DI)
	VMOVDQU X7, 16(DI)
	VPADDD Z1, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPADDD Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPADDD X1, X0, X0
	VPBROADCASTD X0, Y1
	VPMULLD Y15, Y1, Y1
	VMOVDQU Y1, (R9)
	VBROADCASTSS X4, Y2
	VMOVUPS Y2, (R8)
	VCVTDQ2PS X0, X0
	VMULSS X0, X4, X0
	VMULSS X12, X0, X0
	VBROADCASTSS X0, Y0
	VMOVUPS Y0, (R10)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	ADDQ $32, R10
	DECQ CX
	JNZ q8_loop
q8_done:
	VZEROUPPER
	RET

// func swigluAVX512(dst, gate, u *float32, n16 int)
//
// dst = g/(1+e^-g)·u, 16 elements per step, with e^-g computed as
// fastmath.Exp computes it (Cephes range reduction and polynomial), the
// argument clamped to the range where that is finite and non-zero.
TEXT ·swigluAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ u+16(FP), DX
	MOVQ n16+24(FP), CX
	MOVL $0x3fb8aa3b, AX // log2(e)
	VPBROADCASTD AX, Z16
	MOVL $0x3f000000, AX // 0.5
	VPBROADCASTD AX, Z17
	MOVL $0x3f318000, AX // 0.693359375
	VPBROADCASTD AX, Z18
	MOVL $0xb95e8083, AX // -2.12194440e-4
	VPBROADCASTD AX, Z19
	MOVL $0x39506967, AX // 1.9875691500e-4
	VPBROADCASTD AX, Z20
	MOVL $0x3ab743ce, AX // 1.3981999507e-3
	VPBROADCASTD AX, Z21
	MOVL $0x3c088908, AX // 8.3334519073e-3
	VPBROADCASTD AX, Z22
	MOVL $0x3d2aa9c1, AX // 4.1665795894e-2
	VPBROADCASTD AX, Z23
	MOVL $0x3e2aaaaa, AX // 1.6666665459e-1
	VPBROADCASTD AX, Z24
	MOVL $0x3f000000, AX // 5.0000001201e-1
	VPBROADCASTD AX, Z25
	MOVL $0x3f800000, AX // 1
	VPBROADCASTD AX, Z26
	MOVL $0x42b16666, AX // 88.7
	VPBROADCASTD AX, Z27
	MOVL $0xc2ae999a, AX // -87.3
	VPBROADCASTD AX, Z28
	VPXORD Z29, Z29, Z29
	TESTQ CX, CX
	JZ swiglu_done
swiglu_loop:
	VMOVUPS (SI), Z0
	VSUBPS Z0, Z29, Z1
	VMAXPS Z28, Z1, Z1
	VMINPS Z27, Z1, Z1
	VMOVAPS Z17, Z2
	VFMADD231PS Z16, Z1, Z2
	VRNDSCALEPS $9, Z2, Z2
	VMOVAPS Z1, Z3
	VFNMADD231PS Z18, Z2, Z3
	VFNMADD231PS Z19, Z2, Z3
	VMOVAPS Z20, Z4
	VFMADD213PS Z21, Z3, Z4
	VFMADD213PS Z22, Z3, Z4
	VFMADD213PS Z23, Z3, Z4
	VFMADD213PS Z24, Z3, Z4
	VFMADD213PS Z25, Z3, Z4
	VMULPS Z3, Z3, Z5
	VFMADD213PS Z3, Z5, Z4
	VADDPS Z26, Z4, Z4
	VSCALEFPS Z2, Z4, Z4
	VADDPS Z26, Z4, Z4
	VDIVPS Z4, Z0, Z0
	VMULPS (DX), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	DECQ CX
	JNZ swiglu_loop
swiglu_done:
	VZEROUPPER
	RET

// func quantQ8KRowAVX512(x *float32, qs *int8, dv *float32, bs *int32, nb int)
//
// Quantises nb super-blocks of 256 floats exactly as quantBlockQ8K does:
// m is the first element of the largest magnitude (NaNs skipped), the
// quants are min(127, round-to-even(x·(-127/m))), the scale 1/(-127/m)
// is written sixteen times and the sums of every 16 quants once each; a
// block whose m is 0 or whose -127/m overflows is all zeros.
TEXT ·quantQ8KRowAVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ qs+8(FP), DI
	MOVQ dv+16(FP), R8
	MOVQ bs+24(FP), R9
	MOVQ nb+32(FP), CX
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	MOVL $127, AX
	VPBROADCASTD AX, Z30
	TESTQ CX, CX
	JZ q8k_done
q8k_loop:
	// amax over the 16 vectors; the running maximum is kept where the
	// new value is NaN.
	VPXORD Z0, Z0, Z0
	MOVQ $0, DX
q8k_amax:
	VANDPS (SI)(DX*1), Z31, Z1
	VMAXPS Z0, Z1, Z0
	ADDQ $64, DX
	CMPQ DX, $1024
	JLT q8k_amax
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS Y0, Y1, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X0, X1, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X0, X1, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X0, X1, X0
	VXORPS X2, X2, X2
	VUCOMISS X2, X0
	JEQ q8k_zero
	VBROADCASTSS X0, Z0
	// m: the first element whose magnitude equals amax.
	MOVQ $0, DX
q8k_find:
	VANDPS (SI)(DX*1), Z31, Z1
	VCMPPS $0, Z0, Z1, K1
	KMOVW K1, AX
	TESTL AX, AX
	JNZ q8k_found
	ADDQ $64, DX
	JMP q8k_find
q8k_found:
	TZCNTL AX, AX
	LEAQ (SI)(DX*1), R10
	VMOVSS (R10)(AX*4), X1
	// iscale = -127/m; zero block where it is infinite.
	MOVL $0xc2fe0000, AX // -127
	VMOVD AX, X2
	VDIVSS X1, X2, X3
	VMOVD X3, AX
	ANDL $0x7fffffff, AX
	CMPL AX, $0x7f800000
	JEQ q8k_zero
	MOVL $0x3f800000, AX // 1
	VMOVD AX, X4
	VDIVSS X3, X4, X4
	VBROADCASTSS X4, Z4
	VMOVUPS Z4, (R8)
	VBROADCASTSS X3, Z3
	MOVQ $0, DX
	MOVQ $0, R11
q8k_quant:
	VMULPS (SI)(DX*4), Z3, Z1
	VCVTPS2DQ Z1, Z1
	VPMINSD Z30, Z1, Z1
	// Truncating, as Go's int8 conversion is (it matters only for the
	// 0x80000000 that a NaN product converts to).
	VPMOVDB Z1, X2
	VMOVDQU X2, (DI)(DX*1)
	VPMOVSXBD X2, Z1
	VEXTRACTI64X4 $1, Z1, Y2
	VPADDD Y1, Y2, Y1
	VEXTRACTI128 $1, Y1, X2
	VPADDD X1, X2, X1
	VPSHUFD $0x4e, X1, X2
	VPADDD X1, X2, X1
	VPSHUFD $0xb1, X1, X2
	VPADDD X1, X2, X1
	VMOVD X1, (R9)(R11*4)
	INCQ R11
	ADDQ $16, DX
	CMPQ DX, $256
	JLT q8k_quant
	JMP q8k_next
q8k_zero:
	VPXORD Z1, Z1, Z1
	VMOVDQU64 Z1, (DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z1, 128(DI)
	VMOVDQU64 Z1, 192(DI)
	VMOVUPS Z1, (R8)
	VMOVDQU64 Z1, (R9)
q8k_next:
	ADDQ $1024, SI
	ADDQ $256, DI
	ADDQ $64, R8
	ADDQ $64, R9
	DECQ CX
	JNZ q8k_loop
q8k_done:
	VZEROUPPER
	RET

// func dotF32AVX512(a, b *float32, n64 int) float32
TEXT ·dotF32AVX512(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), SI
	MOVQ n64+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	TESTQ CX, CX
	JZ dot_reduce
dot_loop:
	VMOVUPS (AX), Z4
	VMOVUPS 64(AX), Z5
	VMOVUPS 128(AX), Z6
	VMOVUPS 192(AX), Z7
	VFMADD231PS (SI), Z4, Z0
	VFMADD231PS 64(SI), Z5, Z1
	VFMADD231PS 128(SI), Z6, Z2
	VFMADD231PS 192(SI), Z7, Z3
	ADDQ $256, AX
	ADDQ $256, SI
	DECQ CX
	JNZ dot_loop
dot_reduce:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func axpyF32AVX512(alpha float32, x, y *float32, n16 int)
TEXT ·axpyF32AVX512(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Z0
	MOVQ x+8(FP), AX
	MOVQ y+16(FP), SI
	MOVQ n16+24(FP), CX
	TESTQ CX, CX
	JZ axpy_done
axpy_loop:
	VMOVUPS (SI), Z1
	VFMADD231PS (AX), Z0, Z1
	VMOVUPS Z1, (SI)
	ADDQ $64, AX
	ADDQ $64, SI
	DECQ CX
	JNZ axpy_loop
axpy_done:
	VZEROUPPER
	RET
`)
}

// The K-quant tiles take one 256-element super-block per step and one
// weight row at a time within it (so the per-row scale state fits in
// registers), multiplying it by all T activation rows before the next
// row: each weight super-block is still read once per tile. Register plan:
//
//	Z0-Z3    integer sums of the current row, one per activation row
//	Z4       the row's sub-block scales as int16 (a VPERMW table)
//	Z5       the row's per-16-element min weights as int32
//	Z6, Z7   d and dmin broadcast
//	Z8-Z11   temporaries (the unpacked quants of a 64-element chunk, the
//	         chunk's scales spread over its int16 lanes, products)
//	Z12-Z15  VPERMW indexes that spread chunk c's scales over its lanes
//	Z16-Z31  the R×T float32 accumulators
//
// Quants are unsigned bytes; VPMADDUBSW multiplies them by the signed
// activations in pairs (at most 2·63·127, no saturation) and VPMADDWD
// applies the int16 scales. The activations carry the sum of every 16
// quants, which turns the mins (and Q6_K's offset of 32) into one
// multiply per 16 lanes.

type kType struct {
	name  string
	bytes int
	idx   string // symbol of the four index vectors
	row   func(r int)
	chunk func(r, c int) // leaves the quants in Z8 (or Z10 for Q6_K) and scales in Z9 (Z7)
	epi   func(t, a int)
	w, sc string // registers holding the quants and the chunk scales
}

var kTypes = []kType{
	{
		name: "Q4_K", bytes: 144, idx: "kidx4<>", w: "Z8", sc: "Z9",
		row: func(r int) {
			// Unpack the 6-bit scales and mins (layout in kscale.go) in
			// 32-bit lanes: [sc0-3, mn0-3] from bytes 0-7, [sc4-7,
			// mn4-7] from the low/high nibbles of bytes 8-11 and the
			// top bits of bytes 0-7.
			p("VMOVDQU %s, X8", rowAddr(r, 4))
			p("VPAND kmask3f<>(SB), X8, X9")
			p("VPSHUFD $0xaa, X8, X10")
			p("VPSRLVD kshift04<>(SB), X10, X10")
			p("VPAND kmask0f<>(SB), X10, X10")
			p("VPSRLD $2, X8, X11")
			p("VPAND kmask30<>(SB), X11, X11")
			p("VPOR X11, X10, X10")
			p("VPUNPCKLDQ X10, X9, X9")
			p("VPMOVZXBW X9, X4")
			p("VPSRLDQ $8, X9, X10")
			p("VPUNPCKLBW X10, X10, X10")
			p("VPMOVZXBD X10, Z5")
			p("VPBROADCASTW %s, Y6", rowAddr(r, 0))
			p("VCVTPH2PS Y6, Z6")
			p("VPBROADCASTW %s, Y7", rowAddr(r, 2))
			p("VCVTPH2PS Y7, Z7")
		},
		chunk: func(r, c int) {
			p("VMOVDQU %s, Y8", rowAddr(r, 16+32*c))
			p("VPSRLW $4, Y8, Y9")
			p("VINSERTI64X4 $1, Y9, Z8, Z8")
			p("VPANDD.BCST kmask0f<>(SB), Z8, Z8")
			p("VPERMW Z4, Z%d, Z9", 12+c)
		},
		epi: func(t, a int) {
			p("VPMULLD %s, Z5, Z11", tokAddr("DI", "BX", "R12", t))
			p("VCVTDQ2PS Z11, Z11")
			p("VCVTDQ2PS Z%d, Z%d", t, t)
			p("VMULPS Z6, Z%d, Z%d", t, t)
			p("VFNMADD231PS Z7, Z11, Z%d", t)
			p("VFMADD231PS %s, Z%d, Z%d", tokAddr("CX", "BX", "R12", t), t, a)
		},
	},
	{
		name: "Q6_K", bytes: 210, idx: "kidx6<>", w: "Z10", sc: "Z7",
		row: func(r int) {
			p("VPMOVSXBW %s, Y4", rowAddr(r, 192))
			p("VPMOVSXBD %s, Z5", rowAddr(r, 192))
			p("VPSLLD $5, Z5, Z5")
			p("VPBROADCASTW %s, Y6", rowAddr(r, 208))
			p("VCVTPH2PS Y6, Z6")
		},
		chunk: func(r, c int) {
			n := c / 2
			if c%2 == 0 {
				// 64 low-nibble bytes and the matching qh bit pairs.
				p("VMOVDQU64 %s, Z8", rowAddr(r, 64*n))
				p("VMOVDQU %s, Y9", rowAddr(r, 128+32*n))
				p("VPSRLW $2, Y9, Y10")
				p("VINSERTI64X4 $1, Y10, Z9, Z9")
				p("VPANDD.BCST kmask0f<>(SB), Z8, Z10")
				p("VPSLLW $4, Z9, Z11")
				p("VPANDD.BCST kmask30<>(SB), Z11, Z11")
			} else {
				p("VPSRLW $4, Z8, Z10")
				p("VPANDD.BCST kmask0f<>(SB), Z10, Z10")
				p("VPANDD.BCST kmask30<>(SB), Z9, Z11")
			}
			p("VPORD Z11, Z10, Z10")
			p("VPERMW Z4, Z%d, Z7", 12+c)
		},
		epi: func(t, a int) {
			p("VPMULLD %s, Z5, Z11", tokAddr("DI", "BX", "R12", t))
			p("VPSUBD Z11, Z%d, Z%d", t, t)
			p("VCVTDQ2PS Z%d, Z%d", t, t)
			p("VMULPS Z6, Z%d, Z%d", t, t)
			p("VFMADD231PS %s, Z%d, Z%d", tokAddr("CX", "BX", "R12", t), t, a)
		},
	},
}

func kTile(ty kType, R, T int) string {
	name := fmt.Sprintf("tile%sVNNI%dx%d", ty.name, R, T)
	fmt.Fprintf(&s, "\n// func %s(w *byte, ws int, x *int8, xs int, dv *float32, bs *int32, vs int, nsb int, y *float32, ys int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-80\n", name)
	p("MOVQ w+0(FP), AX")
	p("MOVQ ws+8(FP), R8")
	p("LEAQ (R8)(R8*2), R9")
	p("MOVQ x+16(FP), SI")
	p("MOVQ xs+24(FP), DX")
	p("LEAQ (DX)(DX*2), R11")
	p("MOVQ dv+32(FP), CX")
	p("MOVQ bs+40(FP), DI")
	p("MOVQ vs+48(FP), BX")
	p("LEAQ (BX)(BX*2), R12")
	p("MOVQ nsb+56(FP), R10")
	for c := range 4 {
		p("VMOVDQU64 %s+%d(SB), Z%d", ty.idx, 64*c, 12+c)
	}
	zeroAcc(R, T)
	p("TESTQ R10, R10")
	p("JZ %s_reduce", name)
	label(name + "_loop")
	for r := range R {
		ty.row(r)
		for t := range T {
			p("VPXORD Z%d, Z%d, Z%d", t, t, t)
		}
		for c := range 4 {
			ty.chunk(r, c)
			for t := range T {
				p("VPMADDUBSW %s, %s, Z11", kx(t, 64*c), ty.w)
				p("VPMADDWD %s, Z11, Z11", ty.sc)
				p("VPADDD Z11, Z%d, Z%d", t, t)
			}
		}
		for t := range T {
			ty.epi(t, acc(r, t, T))
		}
	}
	p("ADDQ $%d, AX", ty.bytes)
	p("ADDQ $256, SI")
	p("ADDQ $64, DI")
	p("ADDQ $64, CX")
	p("DECQ R10")
	p("JNZ %s_loop", name)
	label(name + "_reduce")
	p("MOVQ y+64(FP), AX")
	p("MOVQ ys+72(FP), BX")
	p("LEAQ (BX)(BX*2), R9")
	reduce(R, T)
	p("VZEROUPPER")
	p("RET")
	return name
}

// kGemv is the R×1 tile of kTile run over rows consecutive weight rows in
// one call, for one activation row, bit for bit as q8Gemv is to q8Tile.
func kGemv(name string, ty kType, streams bool) string {
	fmt.Fprintf(&s, "\n// func %s(w *byte, x *int8, dv *float32, bs *int32, nsb int, y *float32, rows int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	p("MOVQ w+0(FP), AX")
	p("MOVQ x+8(FP), DX")
	p("MOVQ dv+16(FP), R11")
	p("MOVQ bs+24(FP), R12")
	p("MOVQ nsb+32(FP), R9")
	p("MOVQ y+40(FP), BX")
	p("MOVQ rows+48(FP), R8")
	for c := range 4 {
		p("VMOVDQU64 %s+%d(SB), Z%d", ty.idx, 64*c, 12+c)
	}
	step := func(R int) {
		if streams {
			gemvPrefetchRows(R, ty.bytes)
		}
		for r := range R {
			ty.row(r)
			p("VPXORD Z0, Z0, Z0")
			for c := range 4 {
				ty.chunk(r, c)
				p("VPMADDUBSW %s, %s, Z11", kx(0, 64*c), ty.w)
				p("VPMADDWD %s, Z11, Z11", ty.sc)
				p("VPADDD Z11, Z0, Z0")
			}
			ty.epi(0, acc(r, 0, 1))
		}
		p("ADDQ $%d, AX", ty.bytes)
		p("ADDQ $256, SI")
		p("ADDQ $64, DI")
		p("ADDQ $64, CX")
	}
	if streams {
		p("IMUL3Q $%d, R9, R14", ty.bytes)
	}
	gemvRows(name, streams, step, "R12", "R11")
	return name
}

// kx is activation row t at displacement d.
func kx(t, d int) string {
	switch t {
	case 0:
		return fmt.Sprintf("%d(SI)", d)
	case 1:
		return fmt.Sprintf("%d(SI)(DX*1)", d)
	case 2:
		return fmt.Sprintf("%d(SI)(DX*2)", d)
	}
	return fmt.Sprintf("%d(SI)(R11*1)", d)
}

func kConsts() {
	data := func(name string, vals []uint32) {
		for i, v := range vals {
			fmt.Fprintf(&s, "DATA %s+%d(SB)/4, $0x%08x\n", name, 4*i, v)
		}
		fmt.Fprintf(&s, "GLOBL %s(SB), RODATA|NOPTR, $%d\n\n", name, 4*len(vals))
	}
	s.WriteString("\n")
	data("kmask3f<>", []uint32{0x3f3f3f3f, 0x3f3f3f3f, 0x3f3f3f3f, 0x3f3f3f3f})
	data("kmask0f<>", []uint32{0x0f0f0f0f, 0x0f0f0f0f, 0x0f0f0f0f, 0x0f0f0f0f})
	data("kmask30<>", []uint32{0x30303030, 0x30303030, 0x30303030, 0x30303030})
	data("kshift04<>", []uint32{0, 4, 0, 0})
	// VPERMW indexes, 32 words per chunk: Q4_K spreads sub-block scale
	// 2c over the first 16 int16 lanes and 2c+1 over the last 16; Q6_K
	// spreads group scales 4c..4c+3 over 8 lanes each.
	idx := func(name string, f func(c, k int) int) {
		var v []uint32
		for c := range 4 {
			for k := 0; k < 32; k += 2 {
				v = append(v, uint32(f(c, k))|uint32(f(c, k+1))<<16)
			}
		}
		data(name, v)
	}
	idx("kidx4<>", func(c, k int) int { return 2*c + k/16 })
	idx("kidx6<>", func(c, k int) int { return 4*c + k/8 })
}

// The AVX2 tiles (for CPUs without AVX-512) are one weight row by up to
// four activation rows, one 32-element block (one 256-bit register) per
// step; there are 16 vector registers:
//
//	Y0       the weight block (unsigned bytes; signed for Q8_0)
//	Y1       |weights| (Q8_0)
//	Y2       the block's scale, 8 lanes
//	Y3-Y5    temporaries
//	Y6       int16 ones, for VPMADDWD
//	Y7       0x0f bytes
//	Y8-Y11   the T float32 accumulators
//	Y12-Y15  Q5_0's bit-expansion constants
//
// Without VPDPBUSD, VPMADDUBSW multiplies pairs into int16 and VPMADDWD
// by ones sums them into the same 8 int32 lanes. Q8_0's weights would
// overflow int16 as unsigned bytes, so it uses |w| and the activations
// with w's sign instead, and needs no correction.

// With vnni (the AVX-VNNI tiles) the products are summed by VPDPBUSD in its
// VEX form instead (vpdpbusdVEX, asm_gen_avx2.go), Y4 holding the
// activation bytes.
func q8TileAVX2(ty q8Type, T int, vnni bool) string {
	name := fmt.Sprintf("tile%sAVX2x%d", ty.name, T)
	if vnni {
		name = fmt.Sprintf("tile%sAVXVNNIx%d", ty.name, T)
	}
	fmt.Fprintf(&s, "\n// func %s(w *byte, ws int, x *int8, xs int, dv *float32, cv *int32, vs int, nb int, y *float32, ys int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-80\n", name)
	p("MOVQ w+0(FP), AX")
	p("MOVQ x+16(FP), SI")
	p("MOVQ xs+24(FP), DX")
	p("LEAQ (DX)(DX*2), R11")
	p("MOVQ dv+32(FP), DI")
	p("MOVQ cv+40(FP), CX")
	p("MOVQ vs+48(FP), BX")
	p("LEAQ (BX)(BX*2), R12")
	p("MOVQ nb+56(FP), R10")
	p("MOVL $0x00010001, R13")
	p("MOVD R13, X6")
	p("VPBROADCASTD X6, Y6")
	p("MOVL $0x0f0f0f0f, R13")
	p("MOVD R13, X7")
	p("VPBROADCASTD X7, Y7")
	if ty.name == "Q5_0" {
		p("VMOVDQU q5shuf<>(SB), Y12")
		p("VMOVDQU q5bits<>(SB), Y13")
		p("VPCMPEQB Y14, Y14, Y14")
		p("MOVL $0x10101010, R13")
		p("MOVD R13, X15")
		p("VPBROADCASTD X15, Y15")
	}
	for t := range T {
		p("VXORPS Y%d, Y%d, Y%d", 8+t, 8+t, 8+t)
	}
	p("TESTQ R10, R10")
	p("JZ %s_reduce", name)
	label(name + "_loop")
	switch ty.name {
	case "Q8_0":
		p("VMOVDQU 2(AX), Y0")
		p("VPABSB Y0, Y1")
	case "Q4_0":
		p("VMOVDQU 2(AX), X0")
		p("VPSRLW $4, X0, X3")
		p("VINSERTI128 $1, X3, Y0, Y0")
		p("VPAND Y7, Y0, Y0")
	case "Q5_0":
		p("VMOVDQU 6(AX), X0")
		p("VPSRLW $4, X0, X3")
		p("VINSERTI128 $1, X3, Y0, Y0")
		p("VPAND Y7, Y0, Y0")
		// Byte j of qh's 32 bits → 0x10 where bit j is set.
		p("VPBROADCASTD 2(AX), Y3")
		p("VPSHUFB Y12, Y3, Y3")
		p("VPOR Y13, Y3, Y3")
		p("VPCMPEQB Y14, Y3, Y3")
		p("VPAND Y15, Y3, Y3")
		p("VPOR Y3, Y0, Y0")
	}
	p("VPBROADCASTW (AX), X2")
	p("VCVTPH2PS X2, Y2")
	for t := range T {
		xa := tokAddr("SI", "DX", "R11", t)
		switch {
		case vnni && ty.name == "Q8_0":
			// |w| times x with w's sign: no correction needed.
			p("VMOVDQU %s, Y4", xa)
			p("VPSIGNB Y0, Y4, Y4")
			p("VPXOR Y3, Y3, Y3")
			vpdpbusdVEX(3, 1, 4)
		case vnni:
			// The stored (offset) quants times x, from the correction.
			p("VMOVDQU %s, Y4", xa)
			p("VMOVDQU %s, Y3", tokAddr("CX", "BX", "R12", t))
			vpdpbusdVEX(3, 0, 4)
		case ty.name == "Q8_0":
			p("VMOVDQU %s, Y3", xa)
			p("VPSIGNB Y0, Y3, Y3")
			p("VPMADDUBSW Y3, Y1, Y3")
			p("VPMADDWD Y6, Y3, Y3")
		default:
			p("VPMADDUBSW %s, Y0, Y3", xa)
			p("VPMADDWD Y6, Y3, Y3")
			p("VPADDD %s, Y3, Y3", tokAddr("CX", "BX", "R12", t))
		}
		p("VCVTDQ2PS Y3, Y3")
		p("VMULPS %s, Y2, Y4", tokAddr("DI", "BX", "R12", t))
		p("VFMADD231PS Y4, Y3, Y%d", 8+t)
	}
	p("ADDQ $%d, AX", ty.bytes)
	p("ADDQ $32, SI")
	p("ADDQ $32, DI")
	p("ADDQ $32, CX")
	p("DECQ R10")
	p("JNZ %s_loop", name)
	label(name + "_reduce")
	p("MOVQ y+64(FP), AX")
	p("MOVQ ys+72(FP), BX")
	p("LEAQ (BX)(BX*2), R9")
	reduceAVX2(T)
	p("VZEROUPPER")
	p("RET")
	return name
}

// reduceAVX2 stores the sum of each Y(8+t) at y[t*ys].
func reduceAVX2(T int) {
	for t := range T {
		p("VEXTRACTF128 $1, Y%d, X3", 8+t)
		p("VADDPS X3, X%d, X3", 8+t)
		p("VHADDPS X3, X3, X3")
		p("VHADDPS X3, X3, X3")
		switch t {
		case 0:
			p("VMOVSS X3, (AX)")
		case 1:
			p("VMOVSS X3, (AX)(BX*1)")
		case 2:
			p("VMOVSS X3, (AX)(BX*2)")
		default:
			p("VMOVSS X3, (AX)(R9*1)")
		}
	}
}

// floatTileAVX2 multiplies one F16 or F32 row by T float32 rows, 8
// elements per step.
func floatTileAVX2(typ string, T int) string {
	name := fmt.Sprintf("tile%sAVX2x%d", typ, T)
	fmt.Fprintf(&s, "\n// func %s(w *byte, ws int, x *float32, xs int, n8 int, y *float32, ys int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	p("MOVQ w+0(FP), AX")
	p("MOVQ x+16(FP), SI")
	p("MOVQ xs+24(FP), DX")
	p("LEAQ (DX)(DX*2), R11")
	p("MOVQ n8+32(FP), R10")
	for t := range T {
		p("VXORPS Y%d, Y%d, Y%d", 8+t, 8+t, 8+t)
	}
	p("TESTQ R10, R10")
	p("JZ %s_reduce", name)
	label(name + "_loop")
	step := 32
	if typ == "F16" {
		p("VCVTPH2PS (AX), Y0")
		step = 16
	} else {
		p("VMOVUPS (AX), Y0")
	}
	for t := range T {
		p("VFMADD231PS %s, Y0, Y%d", tokAddr("SI", "DX", "R11", t), 8+t)
	}
	p("ADDQ $%d, AX", step)
	p("ADDQ $32, SI")
	p("DECQ R10")
	p("JNZ %s_loop", name)
	label(name + "_reduce")
	p("MOVQ y+40(FP), AX")
	p("MOVQ ys+48(FP), BX")
	p("LEAQ (BX)(BX*2), R9")
	reduceAVX2(T)
	p("VZEROUPPER")
	p("RET")
	return name
}

func avx2Consts() {
	var shuf, bits []byte
	for j := range 32 {
		shuf = append(shuf, byte(j/8))
		bits = append(bits, ^byte(1<<(j%8)))
	}
	for i := 0; i < 32; i += 8 {
		fmt.Fprintf(&s, "DATA q5shuf<>+%d(SB)/8, $0x%016x\n", i, le64(shuf[i:]))
	}
	s.WriteString("GLOBL q5shuf<>(SB), RODATA|NOPTR, $32\n\n")
	for i := 0; i < 32; i += 8 {
		fmt.Fprintf(&s, "DATA q5bits<>+%d(SB)/8, $0x%016x\n", i, le64(bits[i:]))
	}
	s.WriteString("GLOBL q5bits<>(SB), RODATA|NOPTR, $32\n\n")
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// packedGemvPrefetch is how far ahead of the weights being read the packed
// Q4_0 and F16 matrix-vector kernels ask for cache lines, in bytes.
// Measured on 96 MiB of packed Q4_0 (BenchmarkGemv, AVX-512 VNNI, loaded
// machine): no prefetch 10-13 GB per CPU second, 1 KiB 13-16, 4 KiB
// 13-17, 8 KiB 14-16, 16 KiB 14-15. On 96 MiB of packed F16 (six
// alternated rounds, load 8-10, medians): the two-group tile 15.7, no
// prefetch 18.5, 1 KiB 16.9, 2 KiB 19.7, 4 KiB 22.3, 8 KiB 26.0, 16 KiB
// 23.2.
const packedGemvPrefetch = 8192

func main() {
	s.WriteString("// Code generated by asm_gen.go; DO NOT EDIT.\n\n//go:build !purego\n\n#include \"textflag.h\"\n")
	var decl strings.Builder
	decl.WriteString("// Code generated by asm_gen.go; DO NOT EDIT.\n\n//go:build !purego\n\npackage quant\n\n")
	for _, ty := range q8Types {
		fmt.Fprintf(&decl, "var tiles%sVNNI = [tileMax + 1][tileMax + 1]asmTileQ8{\n", ty.name)
		for R := 1; R <= 4; R++ {
			fmt.Fprintf(&decl, "%d: {", R)
			for T := 1; T <= 4; T++ {
				fmt.Fprintf(&decl, "%d: %s, ", T, q8Tile(ty, R, T))
			}
			decl.WriteString("},\n")
		}
		decl.WriteString("}\n\n")
	}
	for _, typ := range []string{"F16", "F32"} {
		fmt.Fprintf(&decl, "var tiles%sAVX512 = [tileMax + 1][tileMax + 1]asmTileFloat{\n", typ)
		for R := 1; R <= 4; R++ {
			fmt.Fprintf(&decl, "%d: {", R)
			for T := 1; T <= 4; T++ {
				fmt.Fprintf(&decl, "%d: %s, ", T, floatTile(typ, R, T))
			}
			decl.WriteString("},\n")
		}
		decl.WriteString("}\n\n")
	}
	for _, ty := range kTypes {
		fmt.Fprintf(&decl, "var tiles%sVNNI = [tileMax + 1][tileMax + 1]asmTileQ8{\n", ty.name)
		for R := 1; R <= 4; R++ {
			fmt.Fprintf(&decl, "%d: {", R)
			for T := 1; T <= 4; T++ {
				fmt.Fprintf(&decl, "%d: %s, ", T, kTile(ty, R, T))
			}
			decl.WriteString("},\n")
		}
		decl.WriteString("}\n\n")
	}
	kConsts()
	for _, ty := range q8Types {
		q8Gemv("gemv"+ty.name+"VNNI", ty, gemvStreams(ty.name))
	}
	for _, ty := range kTypes {
		kGemv("gemv"+ty.name+"VNNI", ty, gemvStreams(ty.name))
	}
	for _, ty := range q8Types {
		fmt.Fprintf(&decl, "//go:noescape\nfunc gemv%sVNNI(w *byte, x *int8, dv *float32, cv *int32, nb2 int, y *float32, rows int)\n\n", ty.name)
	}
	for _, ty := range kTypes {
		fmt.Fprintf(&decl, "//go:noescape\nfunc gemv%sVNNI(w *byte, x *int8, dv *float32, bs *int32, nsb int, y *float32, rows int)\n\n", ty.name)
	}
	for _, ty := range q8Types {
		fmt.Fprintf(&decl, "var tiles%sAVX2 = [tileMax + 1]asmTileQ8{", ty.name)
		for T := 1; T <= 4; T++ {
			fmt.Fprintf(&decl, "%d: %s, ", T, q8TileAVX2(ty, T, false))
		}
		decl.WriteString("}\n\n")
		fmt.Fprintf(&decl, "var tiles%sAVXVNNI = [tileMax + 1]asmTileQ8{", ty.name)
		for T := 1; T <= 4; T++ {
			fmt.Fprintf(&decl, "%d: %s, ", T, q8TileAVX2(ty, T, true))
		}
		decl.WriteString("}\n\n")
	}
	for _, typ := range []string{"F16", "F32"} {
		fmt.Fprintf(&decl, "var tiles%sAVX2 = [tileMax + 1]asmTileFloat{", typ)
		for T := 1; T <= 4; T++ {
			fmt.Fprintf(&decl, "%d: %s, ", T, floatTileAVX2(typ, T))
		}
		decl.WriteString("}\n\n")
	}
	avx2Consts()
	decl.WriteString("var tilesQ4_0Packed = [pkRows + 1]packedTile{")
	for T := 1; T <= 8; T++ {
		fmt.Fprintf(&decl, "%d: %s, ", T, q4PackedTile(T))
	}
	decl.WriteString("}\n\n")
	for T := 1; T <= 8; T++ {
		fmt.Fprintf(&decl, "//go:noescape\nfunc tileQ4_0P16x%d(sc, qs *byte, nb int, x *byte, y *float32, ys int)\n\n", T)
	}
	q4PackedGemv("gemvQ4_0P16", packedGemvPrefetch)
	decl.WriteString("//go:noescape\nfunc gemvQ4_0P16(w *byte, stride, scBytes, nb int, x *byte, y *float32, groups int)\n\n")
	decl.WriteString("var tilesF16Packed = [pkRows + 1]packedTileF{")
	for T := 1; T <= 8; T++ {
		fmt.Fprintf(&decl, "%d: %s, ", T, f16PackedTile(T))
	}
	decl.WriteString("}\n\n")
	for T := 1; T <= 8; T++ {
		fmt.Fprintf(&decl, "//go:noescape\nfunc tileF16P16x%d(w *byte, x *float32, xs int, n int, y *float32, ys int)\n\n", T)
	}
	decl.WriteString("var tilesF16Packed2 = [pkRows + 1]packedTileF2{")
	for T := 1; T <= 8; T++ {
		fmt.Fprintf(&decl, "%d: %s, ", T, f16PackedTile2(T))
	}
	decl.WriteString("}\n\n")
	for T := 1; T <= 8; T++ {
		fmt.Fprintf(&decl, "//go:noescape\nfunc tileF16P32x%d(w *byte, ws int, x *float32, xs int, n int, y *float32, ys int)\n\n", T)
	}
	f16PackedGemv("gemvF16P16", packedGemvPrefetch)
	decl.WriteString("//go:noescape\nfunc gemvF16P16(w *byte, stride, n int, x *float32, y *float32, groups int)\n\n")
	vecF32()
	for _, ty := range q8Types {
		for R := 1; R <= 4; R++ {
			for T := 1; T <= 4; T++ {
				fmt.Fprintf(&decl, "//go:noescape\nfunc tile%sVNNI%dx%d(w *byte, ws int, x *int8, xs int, dv *float32, cv *int32, vs int, nb2 int, y *float32, ys int)\n\n", ty.name, R, T)
			}
		}
	}
	for _, ty := range kTypes {
		for R := 1; R <= 4; R++ {
			for T := 1; T <= 4; T++ {
				fmt.Fprintf(&decl, "//go:noescape\nfunc tile%sVNNI%dx%d(w *byte, ws int, x *int8, xs int, dv *float32, bs *int32, vs int, nsb int, y *float32, ys int)\n\n", ty.name, R, T)
			}
		}
	}
	for _, typ := range []string{"F16", "F32"} {
		for R := 1; R <= 4; R++ {
			for T := 1; T <= 4; T++ {
				fmt.Fprintf(&decl, "//go:noescape\nfunc tile%sAVX512%dx%d(w *byte, ws int, x *float32, xs int, n16 int, y *float32, ys int)\n\n", typ, R, T)
			}
		}
	}
	for _, ty := range q8Types {
		for T := 1; T <= 4; T++ {
			fmt.Fprintf(&decl, "//go:noescape\nfunc tile%sAVX2x%d(w *byte, ws int, x *int8, xs int, dv *float32, cv *int32, vs int, nb int, y *float32, ys int)\n\n", ty.name, T)
			fmt.Fprintf(&decl, "//go:noescape\nfunc tile%sAVXVNNIx%d(w *byte, ws int, x *int8, xs int, dv *float32, cv *int32, vs int, nb int, y *float32, ys int)\n\n", ty.name, T)
		}
	}
	for _, typ := range []string{"F16", "F32"} {
		for T := 1; T <= 4; T++ {
			fmt.Fprintf(&decl, "//go:noescape\nfunc tile%sAVX2x%d(w *byte, ws int, x *float32, xs int, n8 int, y *float32, ys int)\n\n", typ, T)
		}
	}
	decl.WriteString("//go:noescape\nfunc quantQ8RowAVX512(x *float32, qs *int8, dv *float32, cv *int32, sv *float32, nb int, c int32)\n\n")
	decl.WriteString("//go:noescape\nfunc dotF32AVX512(a, b *float32, n64 int) float32\n\n")
	decl.WriteString("//go:noescape\nfunc quantQ8KRowAVX512(x *float32, qs *int8, dv *float32, bs *int32, nb int)\n\n")
	decl.WriteString("//go:noescape\nfunc swigluAVX512(dst, gate, u *float32, n16 int)\n\n")
	decl.WriteString("//go:noescape\nfunc axpyF32AVX512(alpha float32, x, y *float32, n16 int)\n")
	src, err := format.Source([]byte(decl.String()))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("gemm_decl_amd64.go", src, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("gemm_amd64.s", s.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	genAVX2Tiles() // asm_gen_avx2.go
}

// packedGemvEnd ends a packed one-row kernel's group loop: the group's 16 sums in acc are
// stored, the output and weight pointers step to the next group, and the function returns
// after the last.
func packedGemvEnd(name, acc string) {
	p("VMOVUPS %s, (BX)", acc)
	p("ADDQ $64, BX")
	p("ADDQ R9, R8")
	p("DECQ DX")
	p("JNZ %s_group", name)
	label(name + "_done")
	p("VZEROUPPER")
	p("RET")
}

// gemvEnd ends a row-major matrix-vector kernel's row: the row's sum is reduced and stored,
// and the function returns after the last row.
func gemvEnd(name string) {
	label(name + "_reduce")
	gemvReduce()
	p("DECQ R8")
	p("JNZ %s_row", name)
	label(name + "_done")
	p("VZEROUPPER")
	p("RET")
}
