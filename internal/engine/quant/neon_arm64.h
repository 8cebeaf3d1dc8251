// Encodings of the NEON instructions the Go assembler lacks, shared by the
// arm64 kernels (gemm_arm64.s, attn_arm64.s).
//
// The Go assembler lacks the integer dot product, widening multiplies,
// pairwise adds, conversions, by-element multiplies and most vector
// floating-point arithmetic, so those are WORD encodings built by the
// macros below from the register numbers. Each macro is named after the
// instruction it encodes, with its operands in the usual order
// (destination first).

// sdot vd.4s, vn.16b, vm.16b
#define SDOT(d, n, m) WORD $(0x4e809400 | (m)<<16 | (n)<<5 | (d))
// smull vd.8h, vn.8b, vm.8b
#define SMULL8(d, n, m) WORD $(0x0e20c000 | (m)<<16 | (n)<<5 | (d))
// smlal vd.8h, vn.8b, vm.8b
#define SMLAL8(d, n, m) WORD $(0x0e208000 | (m)<<16 | (n)<<5 | (d))
// smlal2 vd.8h, vn.16b, vm.16b
#define SMLAL2_8(d, n, m) WORD $(0x4e208000 | (m)<<16 | (n)<<5 | (d))
// saddlp vd.4s, vn.8h
#define SADDLP(d, n) WORD $(0x4e602800 | (n)<<5 | (d))
// sadalp vd.4s, vn.8h
#define SADALP(d, n) WORD $(0x4e606800 | (n)<<5 | (d))
// scvtf vd.4s, vn.4s
#define SCVTF(d, n) WORD $(0x4e21d800 | (n)<<5 | (d))
// fmla vd.4s, vn.4s, vm.s[0]
#define FMLAE(d, n, m) WORD $(0x4f801000 | (m)<<16 | (n)<<5 | (d))
// fmls vd.4s, vn.4s, vm.s[0]
#define FMLSE(d, n, m) WORD $(0x4f805000 | (m)<<16 | (n)<<5 | (d))
// mla vd.4s, vn.4s, vm.s[i]
#define MLAE(d, n, m, i) WORD $(0x6f800000 | ((i)&1)<<21 | ((i)>>1)<<11 | (m)<<16 | (n)<<5 | (d))
// mul vd.4s, vn.4s, vm.4s
#define MUL4(d, n, m) WORD $(0x4ea09c00 | (m)<<16 | (n)<<5 | (d))
// mla vd.4s, vn.4s, vm.4s
#define MLA4(d, n, m) WORD $(0x4ea09400 | (m)<<16 | (n)<<5 | (d))
// addp vd.4s, vn.4s, vm.4s
#define ADDP4(d, n, m) WORD $(0x4ea0bc00 | (m)<<16 | (n)<<5 | (d))
// faddp vd.4s, vn.4s, vm.4s
#define FADDP4(d, n, m) WORD $(0x6e20d400 | (m)<<16 | (n)<<5 | (d))
// faddp sd, vn.2s
#define FADDP2(d, n) WORD $(0x7e30d800 | (n)<<5 | (d))
// fcvtl vd.4s, vn.4h
#define FCVTL(d, n) WORD $(0x0e217800 | (n)<<5 | (d))
// fcvtl2 vd.4s, vn.8h
#define FCVTL2(d, n) WORD $(0x4e217800 | (n)<<5 | (d))
// sxtl vd.8h, vn.8b (sshll #0)
#define SXTL8(d, n) WORD $(0x0f08a400 | (n)<<5 | (d))
// sxtl2 vd.8h, vn.16b
#define SXTL2_8(d, n) WORD $(0x4f08a400 | (n)<<5 | (d))
// sxtl vd.4s, vn.4h
#define SXTL16(d, n) WORD $(0x0f10a400 | (n)<<5 | (d))
// sxtl2 vd.4s, vn.8h
#define SXTL2_16(d, n) WORD $(0x4f10a400 | (n)<<5 | (d))

// The floating-point arithmetic of the attention kernels, four single
// lanes unless named otherwise.
// fadd vd.4s, vn.4s, vm.4s
#define FADD4(d, n, m) WORD $(0x4e20d400 | (m)<<16 | (n)<<5 | (d))
// fadd vd.2d, vn.2d, vm.2d
#define FADD2D(d, n, m) WORD $(0x4e60d400 | (m)<<16 | (n)<<5 | (d))
// fsub vd.4s, vn.4s, vm.4s
#define FSUB4(d, n, m) WORD $(0x4ea0d400 | (m)<<16 | (n)<<5 | (d))
// fmul vd.4s, vn.4s, vm.4s
#define FMUL4(d, n, m) WORD $(0x6e20dc00 | (m)<<16 | (n)<<5 | (d))
// fmax vd.4s, vn.4s, vm.4s
#define FMAX4(d, n, m) WORD $(0x4e20f400 | (m)<<16 | (n)<<5 | (d))
// fmaxv sd, vn.4s
#define FMAXV(d, n) WORD $(0x6e30f800 | (n)<<5 | (d))
// faddp dd, vn.2d
#define FADDPD(d, n) WORD $(0x7e70d800 | (n)<<5 | (d))
// frintm vd.4s, vn.4s (round toward minus infinity)
#define FRINTM4(d, n) WORD $(0x4e219800 | (n)<<5 | (d))
// fcvtzs vd.4s, vn.4s
#define FCVTZS4(d, n) WORD $(0x4ea1b800 | (n)<<5 | (d))
// fcvtn vd.4h, vn.4s (rounds as FPCR says: to nearest, ties to even)
#define FCVTN(d, n) WORD $(0x0e216800 | (n)<<5 | (d))
// fcvtl vd.2d, vn.2s
#define FCVTLD(d, n) WORD $(0x0e617800 | (n)<<5 | (d))
// fcvtl2 vd.2d, vn.4s
#define FCVTL2D(d, n) WORD $(0x4e617800 | (n)<<5 | (d))
