package quant

import (
	"math"
	"testing"
)

func TestF16ToF32(t *testing.T) {
	tests := []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.333251953125},
		{0x7bff, 65504},                  // largest finite
		{0x0400, 6.103515625e-05},        // smallest normal, 2^-14
		{0x0001, 5.960464477539063e-08},  // smallest subnormal, 2^-24
		{0x03ff, 6.097555160522461e-05},  // largest subnormal, 1023*2^-24
		{0x8001, -5.960464477539063e-08}, // negative subnormal
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
	}
	for _, tt := range tests {
		if got := F16ToF32(tt.h); got != tt.want {
			t.Errorf("F16ToF32(%#04x) = %g, want %g", tt.h, got, tt.want)
		}
	}
	if b := math.Float32bits(F16ToF32(0x8000)); b != 0x80000000 {
		t.Errorf("F16ToF32(0x8000) bits = %#x, want negative zero", b)
	}
	for _, h := range []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff} {
		if f := F16ToF32(h); f == f {
			t.Errorf("F16ToF32(%#04x) = %g, want NaN", h, f)
		}
	}
}

func TestF32ToF16(t *testing.T) {
	tests := []struct {
		f    float32
		want uint16
	}{
		{0, 0x0000},
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65519, 0x7bff},                            // rounds down to the largest finite
		{65520, 0x7c00},                            // halfway to 65536: even is Inf
		{1e10, 0x7c00},                             // overflow
		{-1e10, 0xfc00},                            // negative overflow
		{1 + 1.0/2048, 0x3c00},                     // tie, round to even (down)
		{1 + 3.0/2048, 0x3c02},                     // tie, round to even (up)
		{6.103515625e-05, 0x0400},                  // smallest normal
		{5.960464477539063e-08, 0x0001},            // smallest subnormal
		{2.9802322387695312e-08, 0x0000},           // 2^-25: tie between 0 and 2^-24, even is 0
		{3e-08, 0x0001},                            // just above the tie
		{8.940696716308594e-08, 0x0002},            // 1.5*2^-24: tie, even is 2
		{1e-9, 0x0000},                             // underflow
		{-1e-9, 0x8000},                            // negative underflow keeps the sign
		{6.097555160522461e-05, 0x03ff},            // largest subnormal
		{6.102e-05, 0x0400},                        // rounds up into the normals
		{float32(math.Inf(1)), 0x7c00},             // +Inf
		{float32(math.Inf(-1)), 0xfc00},            // -Inf
		{math.Float32frombits(0x80000000), 0x8000}, // -0
		{math.Float32frombits(0x00000001), 0x0000}, // f32 subnormal
	}
	for _, tt := range tests {
		if got := F32ToF16(tt.f); got != tt.want {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tt.f, got, tt.want)
		}
	}
	for _, bits := range []uint32{0x7fc00000, 0x7f800001, 0xffc00000, 0x7f802000} {
		h := F32ToF16(math.Float32frombits(bits))
		if h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
			t.Errorf("F32ToF16(NaN %#x) = %#04x, want a NaN", bits, h)
		}
	}
}

// Every finite half survives a trip through float32 and back.
func TestF16RoundTripAll(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		if f != f {
			if g := F32ToF16(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, g)
			}
			continue
		}
		if g := F32ToF16(f); g != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)=%g) = %#04x", h, f, g)
		}
	}
}

func TestBF16(t *testing.T) {
	tests := []struct {
		h    uint16
		want float32
	}{
		{0x3f80, 1},
		{0xc000, -2},
		{0x7f80, float32(math.Inf(1))},
		{0xff80, float32(math.Inf(-1))},
		{0x0001, math.Float32frombits(0x00010000)}, // subnormal
		{0x4049, 3.140625},
	}
	for _, tt := range tests {
		if got := BF16ToF32(tt.h); got != tt.want {
			t.Errorf("BF16ToF32(%#04x) = %g, want %g", tt.h, got, tt.want)
		}
		if got := F32ToBF16(tt.want); got != tt.h {
			t.Errorf("F32ToBF16(%g) = %#04x, want %#04x", tt.want, got, tt.h)
		}
	}
	if f := BF16ToF32(0x7fc0); f == f {
		t.Errorf("BF16ToF32(0x7fc0) = %g, want NaN", f)
	}
	rounding := []struct {
		f    float32
		want uint16
	}{
		{1 + 1.0/256, 0x3f80}, // tie, even is down
		{1 + 3.0/256, 0x3f82}, // tie, even is up
		{1 + 1.0/256 + 1.0/65536, 0x3f81},
		{math.MaxFloat32, 0x7f80}, // rounds up to Inf
	}
	for _, tt := range rounding {
		if got := F32ToBF16(tt.f); got != tt.want {
			t.Errorf("F32ToBF16(%g) = %#04x, want %#04x", tt.f, got, tt.want)
		}
	}
	// A NaN whose payload lives only in the low bits must not become Inf.
	if h := F32ToBF16(math.Float32frombits(0x7f800001)); h&0x7f80 != 0x7f80 || h&0x7f == 0 {
		t.Errorf("F32ToBF16(NaN) = %#04x, want a NaN", h)
	}
}
