// The constants of the attention kernels' exponential (fastmath.Exp's
// Cephes range reduction and polynomial), one float32 each, for both
// assembly files (attn_amd64.s, attn_arm64.s), which read them by these
// offsets.
DATA attnExpC<>+0(SB)/4, $0xc2ae999a  // -87.3
DATA attnExpC<>+4(SB)/4, $0x3fb8aa3b  // log2(e)
DATA attnExpC<>+8(SB)/4, $0x3f000000  // 0.5
DATA attnExpC<>+12(SB)/4, $0x3f318000 // 0.693359375
DATA attnExpC<>+16(SB)/4, $0xb95e8083 // -2.12194440e-4
DATA attnExpC<>+20(SB)/4, $0x39506967 // 1.9875691500e-4
DATA attnExpC<>+24(SB)/4, $0x3ab743ce // 1.3981999507e-3
DATA attnExpC<>+28(SB)/4, $0x3c088908 // 8.3334519073e-3
DATA attnExpC<>+32(SB)/4, $0x3d2aa9c1 // 4.1665795894e-2
DATA attnExpC<>+36(SB)/4, $0x3e2aaaaa // 1.6666665459e-1
DATA attnExpC<>+40(SB)/4, $0x3f800000 // 1
DATA attnExpC<>+44(SB)/4, $127        // exponent bias
GLOBL attnExpC<>(SB), RODATA|NOPTR, $48
