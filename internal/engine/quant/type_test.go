package quant

import (
	"math"
	"testing"
)

func TestTypeTable(t *testing.T) {
	tests := []struct {
		t         Type
		name      string
		block     int
		bytes     int
		supported bool
	}{
		{F32, "F32", 1, 4, true},
		{F16, "F16", 1, 2, true},
		{Q4_0, "Q4_0", 32, 18, true},
		{Q4_1, "Q4_1", 32, 20, true},
		{Q5_0, "Q5_0", 32, 22, true},
		{Q5_1, "Q5_1", 32, 24, true},
		{Q8_0, "Q8_0", 32, 34, true},
		{Q8_1, "Q8_1", 32, 36, false},
		{Q2_K, "Q2_K", 256, 84, false},
		{Q3_K, "Q3_K", 256, 110, false},
		{Q4_K, "Q4_K", 256, 144, true},
		{Q5_K, "Q5_K", 256, 176, true},
		{Q6_K, "Q6_K", 256, 210, true},
		{Q8_K, "Q8_K", 256, 292, false},
		{IQ2_XXS, "IQ2_XXS", 256, 66, false},
		{IQ4_NL, "IQ4_NL", 32, 18, false},
		{IQ4_XS, "IQ4_XS", 256, 136, false},
		{I32, "I32", 1, 4, false},
		{F64, "F64", 1, 8, false},
		{BF16, "BF16", 1, 2, true},
		{TQ1_0, "TQ1_0", 256, 54, false},
		{MXFP4, "MXFP4", 32, 17, false},
		{NVFP4, "NVFP4", 64, 36, false},
		{Q1_0, "Q1_0", 128, 18, false},
		{Q2_0, "Q2_0", 64, 18, false},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.name {
			t.Errorf("Type(%d).String() = %q, want %q", tt.t, got, tt.name)
		}
		if got := tt.t.BlockSize(); got != tt.block {
			t.Errorf("%v.BlockSize() = %d, want %d", tt.t, got, tt.block)
		}
		if got := tt.t.BlockBytes(); got != tt.bytes {
			t.Errorf("%v.BlockBytes() = %d, want %d", tt.t, got, tt.bytes)
		}
		if got := tt.t.Supported(); got != tt.supported {
			t.Errorf("%v.Supported() = %v, want %v", tt.t, got, tt.supported)
		}
		if !tt.t.Known() {
			t.Errorf("%v.Known() = false", tt.t)
		}
	}
	for _, id := range []Type{4, 5, 31, 32, 33, 36, 37, 38, 43, 1 << 31} {
		if id.Known() || id.Supported() || id.BlockSize() != 0 {
			t.Errorf("withdrawn or unassigned id %d reported as known", uint32(id))
		}
	}
	if got := Type(31).String(); got != "Type(31)" {
		t.Errorf("Type(31).String() = %q", got)
	}
}

func TestRowBytes(t *testing.T) {
	tests := []struct {
		t       Type
		n       int
		want    int
		wantErr bool
	}{
		{F32, 10, 40, false},
		{Q4_0, 64, 36, false},
		{Q4_K, 512, 288, false},
		{Q2_K, 256, 84, false}, // unsupported but known: still sized
		{Q4_K, 0, 0, false},
		{Q4_0, 33, 0, true},
		{Q4_K, 896, 0, true},
		{F32, -4, 0, true},
		{Type(4), 32, 0, true},
		{Q8_0, math.MaxInt &^ 31, 0, true}, // overflow
	}
	for _, tt := range tests {
		got, err := RowBytes(tt.t, tt.n)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("RowBytes(%v, %d) = %d, %v; want %d, error %v", tt.t, tt.n, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestErrors(t *testing.T) {
	if err := Dequantize(Q2_K, make([]byte, 84), make([]float32, 256)); err == nil {
		t.Error("Dequantize(Q2_K) succeeded")
	}
	if err := Dequantize(Q4_0, make([]byte, 18), make([]float32, 31)); err == nil {
		t.Error("Dequantize with a partial block succeeded")
	}
	if err := Dequantize(Q4_0, make([]byte, 17), make([]float32, 32)); err == nil {
		t.Error("Dequantize with short src succeeded")
	}
	if _, err := Quantize(Q4_K, make([]float32, 128)); err == nil {
		t.Error("Quantize with a partial super-block succeeded")
	}
	if _, err := Quantize(IQ2_XXS, make([]float32, 256)); err == nil {
		t.Error("Quantize(IQ2_XXS) succeeded")
	}
	mustPanic(t, "Dot unsupported", func() { Dot(Q3_K, make([]byte, 110), make([]float32, 256)) })
	mustPanic(t, "Dot partial block", func() { Dot(Q8_0, make([]byte, 34), make([]float32, 16)) })
	mustPanic(t, "Dot short row", func() { Dot(Q8_0, make([]byte, 33), make([]float32, 32)) })
	mustPanic(t, "MatVec short y", func() { MatVec(F32, make([]byte, 32), 2, 4, make([]float32, 4), make([]float32, 1)) })
}

func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: did not panic", name)
		}
	}()
	f()
}
