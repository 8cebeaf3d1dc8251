package quant

import (
	"encoding/binary"
	"math"
)

// Plain float types: F32 (4 bytes), F16 and BF16 (2 bytes), little-endian,
// block size 1. The dot kernels keep four accumulators to break the
// dependency chain of a single running sum.

func dequantF32(src []byte, dst []float32) {
	src = src[:len(dst)*4]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[i*4:]))
	}
}

func quantF32(src []float32, dst []byte) {
	dst = dst[:len(src)*4]
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[i*4:], math.Float32bits(v))
	}
}

func dotF32(row []byte, x []float32) float32 {
	n := len(x)
	row = row[:n*4]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		b := (*[16]byte)(row[i*4:])
		v := (*[4]float32)(x[i:])
		s0 += math.Float32frombits(binary.LittleEndian.Uint32(b[0:])) * v[0]
		s1 += math.Float32frombits(binary.LittleEndian.Uint32(b[4:])) * v[1]
		s2 += math.Float32frombits(binary.LittleEndian.Uint32(b[8:])) * v[2]
		s3 += math.Float32frombits(binary.LittleEndian.Uint32(b[12:])) * v[3]
	}
	for ; i < n; i++ {
		s0 += math.Float32frombits(binary.LittleEndian.Uint32(row[i*4:])) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dequantF16(src []byte, dst []float32) {
	src = src[:len(dst)*2]
	for i := range dst {
		dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[i*2:]))
	}
}

func quantF16(src []float32, dst []byte) {
	dst = dst[:len(src)*2]
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[i*2:], F32ToF16(v))
	}
}

// f16Table maps every binary16 bit pattern to its float32 value. A table
// lookup beats the bit manipulation in F16ToF32 on the dot product's hot
// path; the 256 KiB it costs is paid once at init.
var f16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = F16ToF32(uint16(i))
	}
	return &t
}()

func dotF16(row []byte, x []float32) float32 {
	tab := f16Table
	n := len(x)
	row = row[:n*2]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		b := (*[8]byte)(row[i*2:])
		v := (*[4]float32)(x[i:])
		s0 += tab[binary.LittleEndian.Uint16(b[0:])] * v[0]
		s1 += tab[binary.LittleEndian.Uint16(b[2:])] * v[1]
		s2 += tab[binary.LittleEndian.Uint16(b[4:])] * v[2]
		s3 += tab[binary.LittleEndian.Uint16(b[6:])] * v[3]
	}
	for ; i < n; i++ {
		s0 += tab[binary.LittleEndian.Uint16(row[i*2:])] * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dequantBF16(src []byte, dst []float32) {
	src = src[:len(dst)*2]
	for i := range dst {
		dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[i*2:]))
	}
}

func quantBF16(src []float32, dst []byte) {
	dst = dst[:len(src)*2]
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[i*2:], F32ToBF16(v))
	}
}

func dotBF16(row []byte, x []float32) float32 {
	n := len(x)
	row = row[:n*2]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		// Four bf16 values are the top halves of four float32s.
		w := binary.LittleEndian.Uint64(row[i*2:])
		v := (*[4]float32)(x[i:])
		s0 += math.Float32frombits(uint32(w)<<16) * v[0]
		s1 += math.Float32frombits(uint32(w)&0xffff0000) * v[1]
		s2 += math.Float32frombits(uint32(w>>32)<<16) * v[2]
		s3 += math.Float32frombits(uint32(w>>32)&0xffff0000) * v[3]
	}
	for ; i < n; i++ {
		s0 += BF16ToF32(binary.LittleEndian.Uint16(row[i*2:])) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}
