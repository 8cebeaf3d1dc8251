//go:build ignore

// This part of asm_gen writes gemm_avx2_amd64.s and
// gemm_avx2_decl_amd64.go: the tiles for amd64 CPUs without AVX-512 VNNI.
//
//   - K-quant tiles (Q4_K, Q6_K) for AVX2+FMA: one weight row by one to four
//     activation rows, 32 quants a step.
//   - vpdpbusdVEX, for the AVX-VNNI variants of the AVX2 tiles of the
//     32-element types (Q8_0, Q4_0, Q5_0; q8TileAVX2 in asm_gen.go writes
//     them into gemm_amd64.s): VPDPBUSD in its VEX (256-bit) form multiplies
//     unsigned weight bytes by signed activation bytes and sums groups of
//     four into int32 lanes, replacing VPMADDUBSW + VPMADDWD. CPUs with
//     AVX-VNNI but without AVX-512 (Intel's hybrid cores from Alder Lake on)
//     get them. The Go assembler encodes VPDPBUSD only in its EVEX form
//     (which needs AVX-512 VL), so the VEX form is written out as bytes.
//
// Register plan of the AVX2 K-quant tile:
//
//	Y0-Y3    integer sums of the row against each activation row
//	X4       the row's sub-block scales as bytes
//	Y5, Y6   the row's per-16-element min weights (Q4_K) or 32·scale
//	         offsets (Q6_K) as int32, groups 0-7 and 8-15
//	Y7       d broadcast
//	Y8-Y11   the T float32 accumulators
//	Y12      the quants of the current 32-element chunk
//	Y13      the chunk's scales spread over its int16 lanes
//	Y14, Y15 temporaries
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"log"
	"os"
	"strings"
)

// kTypeAVX2 describes one K-quant type for the AVX2 tile.
type kTypeAVX2 struct {
	name  string
	bytes int
	row   func()      // fills X4, Y5, Y6, Y7
	chunk func(k int) // leaves chunk k's quants in Y12 and its scales in Y13
	epi   func(t int) // folds Yt into the accumulator Y(8+t)
}

// tokDisp is activation row t from base at displacement d, with stride s1
// and 3*stride s3.
func tokDisp(base, s1, s3 string, t, d int) string {
	switch t {
	case 0:
		return fmt.Sprintf("%d(%s)", d, base)
	case 1:
		return fmt.Sprintf("%d(%s)(%s*1)", d, base, s1)
	case 2:
		return fmt.Sprintf("%d(%s)(%s*2)", d, base, s1)
	}
	return fmt.Sprintf("%d(%s)(%s*1)", d, base, s3)
}

// minSums multiplies the activation rows' 16-element sums (bs) by Y5/Y6
// and leaves their lane sums in Y14.
func minSums(t int) {
	p("VPMULLD %s, Y5, Y14", tokDisp("DI", "BX", "R12", t, 0))
	p("VPMULLD %s, Y6, Y15", tokDisp("DI", "BX", "R12", t, 32))
	p("VPADDD Y15, Y14, Y14")
}

var kTypesAVX2 = []kTypeAVX2{
	{
		name: "Q4_K", bytes: 144,
		row: func() {
			// The same unpacking of the 6-bit scales and mins as the
			// AVX-512 tile: X13 = [sc0-7 | mn0-7] as bytes.
			p("VMOVDQU 4(AX), X12")
			p("VPAND a2mask3f<>(SB), X12, X13")
			p("VPSHUFD $0xaa, X12, X14")
			p("VPSRLVD a2shift04<>(SB), X14, X14")
			p("VPAND a2mask0f<>(SB), X14, X14")
			p("VPSRLD $2, X12, X15")
			p("VPAND a2mask30<>(SB), X15, X15")
			p("VPOR X15, X14, X14")
			p("VPUNPCKLDQ X14, X13, X4")
			p("VPSRLDQ $8, X4, X14")
			p("VPUNPCKLBW X14, X14, X14")
			p("VPMOVZXBD X14, Y5")
			p("VPSRLDQ $8, X14, X14")
			p("VPMOVZXBD X14, Y6")
			p("VPBROADCASTW (AX), X7")
			p("VCVTPH2PS X7, Y7")
		},
		chunk: func(k int) {
			// Sub-block k: the low (k even) or high nibbles of 32 bytes.
			p("VMOVDQU %d(AX), Y12", 16+32*(k/2))
			if k%2 == 1 {
				p("VPSRLW $4, Y12, Y12")
			}
			p("VPAND a2mask0f<>(SB), Y12, Y12")
			p("VPSHUFB a2sel4<>+%d(SB), X4, X13", 16*k)
			p("VPMOVZXBW X13, Y13")
		},
		epi: func(t int) {
			minSums(t)
			p("VCVTDQ2PS Y14, Y14")
			p("VCVTDQ2PS Y%d, Y%d", t, t)
			p("VMULPS Y7, Y%d, Y%d", t, t)
			p("VPBROADCASTW 2(AX), X15")
			p("VCVTPH2PS X15, Y15")
			p("VFNMADD231PS Y15, Y14, Y%d", t)
			p("VFMADD231PS %s, Y%d, Y%d", tokDisp("CX", "BX", "R12", t, 0), t, 8+t)
		},
	},
	{
		name: "Q6_K", bytes: 210,
		row: func() {
			p("VMOVDQU 192(AX), X4")
			p("VPMOVSXBD 192(AX), Y5")
			p("VPSLLD $5, Y5, Y5")
			p("VPMOVSXBD 200(AX), Y6")
			p("VPSLLD $5, Y6, Y6")
			p("VPBROADCASTW 208(AX), X7")
			p("VCVTPH2PS X7, Y7")
		},
		chunk: func(k int) {
			// Elements 32k..32k+31: half n = k/4 of the super-block,
			// quarter m: the low (m < 2) or high nibbles of ql bytes
			// 64n + 32(m&1), with bits 2m, 2m+1 of qh bytes 32n.. on top.
			n, m := k/4, k%4
			p("VMOVDQU %d(AX), Y12", 64*n+32*(m&1))
			if m >= 2 {
				p("VPSRLW $4, Y12, Y12")
			}
			p("VPAND a2mask0f<>(SB), Y12, Y12")
			p("VMOVDQU %d(AX), Y14", 128+32*n)
			switch m {
			case 0:
				p("VPSLLW $4, Y14, Y14")
			case 1:
				p("VPSLLW $2, Y14, Y14")
			case 3:
				p("VPSRLW $2, Y14, Y14")
			}
			p("VPAND a2mask30<>(SB), Y14, Y14")
			p("VPOR Y14, Y12, Y12")
			p("VPSHUFB a2sel6<>+%d(SB), X4, X13", 16*k)
			p("VPMOVSXBW X13, Y13")
		},
		epi: func(t int) {
			minSums(t)
			p("VPSUBD Y14, Y%d, Y%d", t, t)
			p("VCVTDQ2PS Y%d, Y%d", t, t)
			p("VMULPS Y7, Y%d, Y%d", t, t)
			p("VFMADD231PS %s, Y%d, Y%d", tokDisp("CX", "BX", "R12", t, 0), t, 8+t)
		},
	},
}

func kTileAVX2(ty kTypeAVX2, T int) string {
	name := fmt.Sprintf("tile%sAVX2x%d", ty.name, T)
	fmt.Fprintf(&s, "\n// func %s(w *byte, ws int, x *int8, xs int, dv *float32, bs *int32, vs int, nsb int, y *float32, ys int)\n", name)
	fmt.Fprintf(&s, "TEXT ·%s(SB), NOSPLIT, $0-80\n", name)
	p("MOVQ w+0(FP), AX")
	p("MOVQ x+16(FP), SI")
	p("MOVQ xs+24(FP), DX")
	p("LEAQ (DX)(DX*2), R11")
	p("MOVQ dv+32(FP), CX")
	p("MOVQ bs+40(FP), DI")
	p("MOVQ vs+48(FP), BX")
	p("LEAQ (BX)(BX*2), R12")
	p("MOVQ nsb+56(FP), R10")
	for t := range T {
		p("VXORPS Y%d, Y%d, Y%d", 8+t, 8+t, 8+t)
	}
	p("TESTQ R10, R10")
	p("JZ %s_reduce", name)
	label(name + "_loop")
	ty.row()
	for t := range T {
		p("VPXOR Y%d, Y%d, Y%d", t, t, t)
	}
	for k := range 8 {
		ty.chunk(k)
		for t := range T {
			p("VPMADDUBSW %s, Y12, Y14", kx(t, 32*k))
			p("VPMADDWD Y13, Y14, Y14")
			p("VPADDD Y14, Y%d, Y%d", t, t)
		}
	}
	for t := range T {
		ty.epi(t)
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
	reduceAVX2(T)
	p("VZEROUPPER")
	p("RET")
	return name
}

// vpdpbusdVEX writes VPDPBUSD ymm(dst), ymm(src1), ymm(src2) in its VEX
// form (VEX.256.66.0F38.W0 50 /r): dst += the sums of four products of
// src1's unsigned bytes and src2's signed bytes, per int32 lane.
func vpdpbusdVEX(dst, src1, src2 int) {
	b1 := 0x02 // map 0F38
	if dst < 8 {
		b1 |= 0x80 // R̄
	}
	b1 |= 0x40 // X̄
	if src2 < 8 {
		b1 |= 0x20 // B̄
	}
	b2 := (^src1&0xf)<<3 | 1<<2 | 0x01 // W0, vvvv, L=256, pp=66
	modrm := 0xc0 | (dst&7)<<3 | src2&7
	p("BYTE $0xc4; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x50; BYTE $0x%02x // VPDPBUSD Y%d, Y%d, Y%d (VEX)",
		b1, b2, modrm, src2, src1, dst)
}

// avx2KConsts writes this file's constants (the .s file's own: the other
// file's are private to it).
func avx2KConsts() {
	data := func(name string, b []byte) {
		for i := 0; i < len(b); i += 8 {
			fmt.Fprintf(&s, "DATA %s+%d(SB)/8, $0x%016x\n", name, i, le64(b[i:]))
		}
		fmt.Fprintf(&s, "GLOBL %s(SB), RODATA|NOPTR, $%d\n\n", name, len(b))
	}
	fill := func(v byte, n int) []byte { return bytes.Repeat([]byte{v}, n) }
	s.WriteString("\n")
	data("a2mask3f<>", fill(0x3f, 16))
	data("a2mask0f<>", fill(0x0f, 32))
	data("a2mask30<>", fill(0x30, 32))
	data("a2shift04<>", []byte{0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	// VPSHUFB selectors, 16 bytes per chunk: Q4_K repeats sub-block
	// scale k; Q6_K repeats group scale 2k eight times, then 2k+1.
	var sel4, sel6 []byte
	for k := range 8 {
		sel4 = append(sel4, fill(byte(k), 16)...)
		sel6 = append(sel6, fill(byte(2*k), 8)...)
		sel6 = append(sel6, fill(byte(2*k+1), 8)...)
	}
	data("a2sel4<>", sel4)
	data("a2sel6<>", sel6)
}

// genAVX2Tiles writes gemm_avx2_amd64.s and gemm_avx2_decl_amd64.go.
func genAVX2Tiles() {
	s.Reset()
	s.WriteString("// Code generated by asm_gen.go; DO NOT EDIT.\n\n//go:build !purego\n\n#include \"textflag.h\"\n")
	var decl strings.Builder
	decl.WriteString("// Code generated by asm_gen.go; DO NOT EDIT.\n\n//go:build !purego\n\npackage quant\n\n")
	for _, ty := range kTypesAVX2 {
		fmt.Fprintf(&decl, "var tiles%sAVX2 = [tileMax + 1]asmTileQ8{", ty.name)
		for T := 1; T <= 4; T++ {
			fmt.Fprintf(&decl, "%d: %s, ", T, kTileAVX2(ty, T))
		}
		decl.WriteString("}\n\n")
	}
	avx2KConsts()
	for _, ty := range kTypesAVX2 {
		for T := 1; T <= 4; T++ {
			fmt.Fprintf(&decl, "//go:noescape\nfunc tile%sAVX2x%d(w *byte, ws int, x *int8, xs int, dv *float32, bs *int32, vs int, nsb int, y *float32, ys int)\n\n", ty.name, T)
		}
	}
	src, err := format.Source([]byte(decl.String()))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("gemm_avx2_decl_amd64.go", src, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("gemm_avx2_amd64.s", s.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
